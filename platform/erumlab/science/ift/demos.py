"""The example setups: nifty8's two Wiener-filter demos and a Poisson sky, with mock data.

Everything random is drawn here with NumPy from one seed, so erumlab and
nifty8 (see ``nifty_compare``) get the very same signal, noise and data.

- ``wiener_1d``: 512 pixels, P(k) = 2e4 / (1 + (k/5)^2)^2, noise variance 0.2
  and a data gap over 20-40 % of the domain.
- ``wiener_2d``: 128 x 128 pixels, P(k) = 100 / (20 + k^3), noise variance 5
  and nifty's 4 x 4 checkerboard mask.
- ``poisson_2d``: a log-normal flux with a smooth spectrum, an exposure map
  that falls off from the centre of the field with an unexposed band across
  it, and Poisson counts of a few per pixel.

Spectra can be given as expressions in k (``parse_spectrum``), which is how
the template's parameters carry them.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from erumlab.science.ift.grids import RegularGrid
from erumlab.science.ift.operators import (
    FourierDiagonal,
    MaskResponse,
    checkerboard_mask,
    power_covariance,
)
from erumlab.science.ift.wiener import WienerFilter

SPECTRUM_1D = "2e4 / (1 + (k / 5)**2)**2"
SPECTRUM_2D = "100 / (20 + k**3)"
SPECTRUM_POISSON = "0.02 / (1 + (k / 5)**2)**2"

_OPERATORS: dict[type, Callable] = {ast.Add: operator.add, ast.Sub: operator.sub,
                                    ast.Mult: operator.mul, ast.Div: operator.truediv,
                                    ast.Pow: operator.pow, ast.USub: operator.neg,
                                    ast.UAdd: operator.pos}
_FUNCTIONS: dict[str, Callable] = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt}


def parse_spectrum(expression: str) -> Callable[[np.ndarray], np.ndarray]:
    """A power spectrum P(k) from an arithmetic expression in ``k``, e.g. ``100 / (20 + k**3)``.

    Only numbers, k, + - * / ** and exp, log, sqrt are accepted (parsed, never
    ``eval``-ed), so a parameter string cannot run code.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"spectrum {expression!r}: not an expression in k ({exc.msg})") from exc

    def build(node: ast.AST) -> Callable[[np.ndarray], np.ndarray]:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            value = float(node.value)
            return lambda k: np.full_like(k, value, dtype=np.float64)
        if isinstance(node, ast.Name) and node.id == "k":
            return lambda k: np.asarray(k, dtype=np.float64)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            fn, left, right = _OPERATORS[type(node.op)], build(node.left), build(node.right)
            return lambda k: fn(left(k), right(k))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            fn, inner = _OPERATORS[type(node.op)], build(node.operand)
            return lambda k: fn(inner(k))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and len(node.args) == 1 and not node.keywords):
            fn, inner = _FUNCTIONS[node.func.id], build(node.args[0])
            return lambda k: fn(inner(k))
        raise ValueError(f"spectrum {expression!r}: only numbers, k, + - * / ** and "
                         f"exp/log/sqrt are allowed")

    spectrum = build(tree.body)
    with np.errstate(divide="ignore", invalid="ignore"):
        probe = spectrum(np.array([0.0, 1.0, 10.0]))
    if not np.all(np.isfinite(probe)) or np.any(probe < 0):
        raise ValueError(f"spectrum {expression!r}: must be finite and non-negative for k >= 0 "
                         f"(got {probe} at k = 0, 1, 10)")
    return spectrum


@dataclass
class WienerSetup:
    """A Gaussian field observed through a mask with white noise, and its mock data."""

    name: str
    grid: RegularGrid
    power: Callable[[np.ndarray], np.ndarray]
    noise_variance: float
    observed: np.ndarray
    signal: np.ndarray
    noise: np.ndarray
    data: np.ndarray  # one value per observed pixel

    @property
    def response(self) -> MaskResponse:
        return MaskResponse(self.observed)

    @property
    def covariance(self) -> FourierDiagonal:
        return power_covariance(self.grid, self.power)

    def wiener_filter(self, **options: float) -> WienerFilter:
        return WienerFilter(self.covariance, self.response, self.noise_variance, **options)


def _mock(name: str, grid: RegularGrid, power: Callable[[np.ndarray], np.ndarray],
          noise_variance: float, observed: np.ndarray, seed: int) -> WienerSetup:
    if noise_variance <= 0:
        raise ValueError("noise_variance must be positive")
    if not observed.any():
        raise ValueError("the mask leaves no data")
    rng = np.random.default_rng(seed)
    signal = power_covariance(grid, power).draw(rng)
    noise = np.sqrt(noise_variance) * rng.standard_normal(int(observed.sum()))
    data = MaskResponse(observed).times(signal) + noise
    return WienerSetup(name=name, grid=grid, power=power, noise_variance=float(noise_variance),
                       observed=observed, signal=signal, noise=noise, data=data)


def wiener_1d(size: int = 512, *, gap: tuple[float, float] = (0.2, 0.4),
              noise_variance: float = 0.2, spectrum: str = SPECTRUM_1D,
              seed: int = 0) -> WienerSetup:
    """nifty8's 1D demo: a line of ``size`` pixels with no data in the ``gap`` (fractions)."""
    grid = RegularGrid(size)
    observed = np.ones(size, dtype=bool)
    start, stop = (int(round(f * size)) for f in gap)
    if not 0 <= start <= stop <= size:
        raise ValueError(f"gap {gap}: expected 0 <= start <= end <= 1")
    observed[start:stop] = False
    return _mock("1d", grid, parse_spectrum(spectrum), noise_variance, observed, seed)


def wiener_2d(size: int = 128, *, tiles: int = 4, noise_variance: float = 5.0,
              spectrum: str = SPECTRUM_2D, seed: int = 0) -> WienerSetup:
    """nifty8's 2D demo: ``size`` x ``size`` pixels behind a ``tiles`` x ``tiles`` checkerboard
    mask (``tiles`` = 0: everything observed)."""
    grid = RegularGrid((size, size))
    observed = (checkerboard_mask((size, size), tiles) if tiles
                else np.ones((size, size), dtype=bool))
    return _mock("2d", grid, parse_spectrum(spectrum), noise_variance, observed, seed)


@dataclass
class PoissonSetup:
    """A log-normal flux rho = exp(offset + s), its exposure map and Poisson counts."""

    grid: RegularGrid
    power: Callable[[np.ndarray], np.ndarray]
    log_flux: np.ndarray  # s, the Gaussian part (offset not included)
    offset: float  # the true mean log-flux offset
    exposure: np.ndarray
    counts: np.ndarray

    @property
    def flux(self) -> np.ndarray:
        return np.exp(self.offset + self.log_flux)

    @property
    def covariance(self) -> FourierDiagonal:
        return power_covariance(self.grid, self.power)

    @property
    def naive_flux(self) -> np.ndarray:
        """Counts over exposure, pixel by pixel (NaN where nothing was exposed)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.exposure > 0, self.counts / self.exposure, np.nan)


def exposure_map(size: int, *, band: float = 0.1) -> np.ndarray:
    """An instrument's exposure: highest at the centre of the field, falling to 20 % at the
    corners, and zero in a horizontal band (a fraction ``band`` of the rows) with no data."""
    y, x = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    exposure = 0.2 + 0.8 * np.exp(-(x**2 + y**2) / 0.8)
    rows = int(round(band * size))
    if rows:
        start = int(round(0.62 * size))
        exposure[start:start + rows, :] = 0.0
    return exposure


def poisson_2d(size: int = 128, *, mean_counts: float = 5.0, spectrum: str = SPECTRUM_POISSON,
               band: float = 0.1, seed: int = 0) -> PoissonSetup:
    """A diffuse emission map: log-normal flux, ``mean_counts`` per pixel at full exposure."""
    if mean_counts <= 0:
        raise ValueError("mean_counts must be positive")
    grid = RegularGrid((size, size))
    power = parse_spectrum(spectrum)
    rng = np.random.default_rng(seed)
    log_flux = power_covariance(grid, power).draw(rng)
    offset = float(np.log(mean_counts))
    exposure = exposure_map(size, band=band)
    counts = rng.poisson(exposure * np.exp(offset + log_flux)).astype(np.float64)
    return PoissonSetup(grid=grid, power=power, log_flux=log_flux, offset=offset,
                        exposure=exposure, counts=counts)
