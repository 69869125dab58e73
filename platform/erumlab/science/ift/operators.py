"""Linear operators on regular grids: what a field-theory inference is written in.

Every operator maps arrays whose trailing axes have ``domain_shape`` to arrays
whose trailing axes have ``target_shape``; leading axes are a batch (many
samples at once), which is what makes posterior sampling fast: one FFT over a
stack of fields costs far less than a Python loop over them.

Each operator knows its adjoint, so a response and its transpose can never
drift apart, and ``to_matrix`` makes the dense matrix of a small one for tests.

    grid = RegularGrid(512)
    S = power_covariance(grid, lambda k: 2e4 / (1 + (k / 5) ** 2) ** 2)
    R = MaskResponse(observed)                 # field -> observed pixels
    s = S.draw(np.random.default_rng(0))       # a signal with spectrum P
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.fft

from erumlab.science.ift.grids import RegularGrid

# scipy's FFT threads over a batch of fields; -1 means one worker per CPU.
FFT_WORKERS = -1


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


class LinearOperator:
    """A linear map with its adjoint; ``A @ B``, ``A + B``, ``c * A`` and ``A.adjoint`` compose."""

    domain_shape: tuple[int, ...]
    target_shape: tuple[int, ...]

    def times(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def adjoint_times(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.times(x)

    @property
    def adjoint(self) -> LinearOperator:
        return _Adjoint(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        return ChainOperator(self, other)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        return SumOperator(self, other)

    def __mul__(self, factor: float) -> LinearOperator:
        return ScaledOperator(self, factor)

    __rmul__ = __mul__

    def _check(self, x: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
            raise ValueError(f"{type(self).__name__}: {what} must end in shape {shape}, "
                             f"got {x.shape}")
        return x

    def to_matrix(self) -> np.ndarray:
        """The dense matrix (target size x domain size); for tests on small grids only."""
        n = int(np.prod(self.domain_shape))
        if n > 1 << 13:
            raise ValueError(f"{n} columns: too large for a dense matrix")
        basis = np.eye(n).reshape((n, *self.domain_shape))
        return self.times(basis).reshape(n, -1).T


class _Adjoint(LinearOperator):
    def __init__(self, op: LinearOperator) -> None:
        self.op = op
        self.domain_shape, self.target_shape = op.target_shape, op.domain_shape

    def times(self, x: np.ndarray) -> np.ndarray:
        return self.op.adjoint_times(x)

    def adjoint_times(self, y: np.ndarray) -> np.ndarray:
        return self.op.times(y)

    @property
    def adjoint(self) -> LinearOperator:
        return self.op


class ChainOperator(LinearOperator):
    """``outer @ inner``: apply ``inner`` first."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if outer.domain_shape != inner.target_shape:
            raise ValueError(f"cannot chain: {inner.target_shape} into {outer.domain_shape}")
        self.outer, self.inner = outer, inner
        self.domain_shape, self.target_shape = inner.domain_shape, outer.target_shape

    def times(self, x: np.ndarray) -> np.ndarray:
        return self.outer.times(self.inner.times(x))

    def adjoint_times(self, y: np.ndarray) -> np.ndarray:
        return self.inner.adjoint_times(self.outer.adjoint_times(y))


class SumOperator(LinearOperator):
    def __init__(self, first: LinearOperator, second: LinearOperator) -> None:
        if (first.domain_shape, first.target_shape) != (second.domain_shape, second.target_shape):
            raise ValueError("cannot add operators between different spaces")
        self.first, self.second = first, second
        self.domain_shape, self.target_shape = first.domain_shape, first.target_shape

    def times(self, x: np.ndarray) -> np.ndarray:
        return self.first.times(x) + self.second.times(x)

    def adjoint_times(self, y: np.ndarray) -> np.ndarray:
        return self.first.adjoint_times(y) + self.second.adjoint_times(y)


class ScaledOperator(LinearOperator):
    def __init__(self, op: LinearOperator, factor: float) -> None:
        self.op, self.factor = op, float(factor)
        self.domain_shape, self.target_shape = op.domain_shape, op.target_shape

    def times(self, x: np.ndarray) -> np.ndarray:
        return self.factor * self.op.times(x)

    def adjoint_times(self, y: np.ndarray) -> np.ndarray:
        return self.factor * self.op.adjoint_times(y)


class DiagonalOperator(LinearOperator):
    """Pointwise multiplication: exposure maps, noise covariances, pixel weights."""

    def __init__(self, diagonal: np.ndarray) -> None:
        self.diagonal = np.asarray(diagonal, dtype=np.float64)
        self.domain_shape = self.target_shape = self.diagonal.shape

    def times(self, x: np.ndarray) -> np.ndarray:
        return self._check(x, self.domain_shape, "input") * self.diagonal

    adjoint_times = times  # real and diagonal: its own adjoint

    @property
    def inverse(self) -> DiagonalOperator:
        if np.any(self.diagonal == 0):
            raise ZeroDivisionError("a diagonal with zeros has no inverse")
        return DiagonalOperator(1.0 / self.diagonal)


class MaskResponse(LinearOperator):
    """Keeps the observed pixels: field (grid shape) -> data vector (one entry per observed pixel).

    Like nifty8's MaskOperator, the data space holds only what was measured,
    so a masked pixel contributes nothing to the likelihood by construction
    (not by an infinite noise variance). The adjoint puts data back on the
    grid with zeros where nothing was observed.
    """

    def __init__(self, observed: np.ndarray) -> None:
        self.observed = np.asarray(observed, dtype=bool)
        self.domain_shape = self.observed.shape
        self.target_shape = (int(self.observed.sum()),)

    def times(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x, self.domain_shape, "input")
        return x[..., self.observed]

    def adjoint_times(self, y: np.ndarray) -> np.ndarray:
        y = self._check(y, self.target_shape, "input")
        out = np.zeros((*y.shape[:-1], *self.domain_shape), dtype=y.dtype)
        out[..., self.observed] = y
        return out


def exposure_response(exposure: np.ndarray) -> LinearOperator:
    """Exposure times flux at the exposed pixels: the response of a counting instrument."""
    exposure = np.asarray(exposure, dtype=np.float64)
    if np.any(exposure < 0):
        raise ValueError("exposure must be non-negative")
    return MaskResponse(exposure > 0) @ DiagonalOperator(exposure)


class HarmonicTransform(LinearOperator):
    """Harmonic coefficients -> field, by the real Hartley transform (nifty8's convention).

    The kernel cas(2 pi k.x) = cos + sin keeps a real field real with real
    coefficients, and the transform is symmetric, so it is its own adjoint.
    With NumPy's FFT sign (exp(-i...)) nifty's (ducc's) Hartley transform is
    Re F + Im F. Scaled by the
    harmonic pixel volume 1/V, it is exactly nifty8's
    ``HarmonicTransformOperator`` on an ``RGSpace``: applied to coefficients
    with variance P(|k|) it gives a field whose covariance is
    ``power_covariance(grid, P)``.
    """

    def __init__(self, grid: RegularGrid) -> None:
        self.grid = grid
        self.domain_shape = self.target_shape = grid.shape

    def times(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x, self.domain_shape, "input")
        spectrum = scipy.fft.fftn(x, axes=_axes(self.grid.ndim), workers=FFT_WORKERS)
        return (spectrum.real + spectrum.imag) / self.grid.volume

    adjoint_times = times


class FourierDiagonal(LinearOperator):
    """A stationary (translation-invariant) operator: diagonal in Fourier space.

    ``eigenvalues`` are in the real-FFT layout of ``grid`` (see
    ``RegularGrid.k_lengths``). A signal covariance with power spectrum P
    is one; so is its inverse, its square root (to draw samples) and the
    preconditioner of the Wiener filter.
    """

    def __init__(self, grid: RegularGrid, eigenvalues: np.ndarray) -> None:
        eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        if eigenvalues.shape != grid.k_lengths.shape:
            raise ValueError(f"eigenvalues: expected the real-FFT shape {grid.k_lengths.shape}, "
                             f"got {eigenvalues.shape}")
        self.grid = grid
        self.eigenvalues = eigenvalues
        self.domain_shape = self.target_shape = grid.shape

    def times(self, x: np.ndarray) -> np.ndarray:
        x = self._check(x, self.domain_shape, "input")
        axes = _axes(self.grid.ndim)
        spectrum = scipy.fft.rfftn(x, axes=axes, workers=FFT_WORKERS)
        spectrum *= self.eigenvalues
        return scipy.fft.irfftn(spectrum, s=self.grid.shape, axes=axes, workers=FFT_WORKERS)

    adjoint_times = times  # real, even eigenvalues: self-adjoint

    @property
    def inverse(self) -> FourierDiagonal:
        if np.any(self.eigenvalues <= 0):
            raise ZeroDivisionError("a covariance with zero modes has no inverse")
        return FourierDiagonal(self.grid, 1.0 / self.eigenvalues)

    @property
    def sqrt(self) -> FourierDiagonal:
        return FourierDiagonal(self.grid, np.sqrt(np.clip(self.eigenvalues, 0.0, None)))

    def draw(self, rng: np.random.Generator, count: int | None = None) -> np.ndarray:
        """Gaussian fields with this operator as covariance (``count`` of them, or one)."""
        shape = self.grid.shape if count is None else (count, *self.grid.shape)
        return self.sqrt.times(rng.standard_normal(shape))


def power_covariance(grid: RegularGrid,
                     power: Callable[[np.ndarray], np.ndarray] | np.ndarray) -> FourierDiagonal:
    """The signal covariance S of a statistically homogeneous and isotropic field with spectrum P."""
    return FourierDiagonal(grid, grid.covariance_spectrum(power))


def fourier_power(grid: RegularGrid, fields: np.ndarray) -> np.ndarray:
    """|FFT|^2 of fields in P(|k|) units, real-FFT layout (averaged over a leading batch axis).

    The raw material of every power-spectrum estimate: for a field drawn
    with spectrum P its expectation is P(|k|) at every k.
    """
    fields = np.asarray(fields, dtype=np.float64)
    spectrum = scipy.fft.rfftn(fields, axes=_axes(grid.ndim), workers=FFT_WORKERS)
    power = (spectrum.real**2 + spectrum.imag**2) / grid.size
    if fields.ndim > grid.ndim:
        power = power.reshape(-1, *grid.k_lengths.shape).mean(axis=0)
    return grid.power_from_eigenvalues(power)


def checkerboard_mask(shape: Sequence[int], tiles: int = 4) -> np.ndarray:
    """nifty8's 2D demo mask: a ``tiles`` x ``tiles`` checkerboard, half of it unobserved.

    As in the demo, the tiles with an even index sum are the observed ones
    (the demo's flags are 1 on the others, and nifty's MaskOperator drops
    flagged pixels).
    """
    rows, cols = shape
    observed = np.zeros((rows, cols), dtype=bool)
    for i in range(tiles):
        for j in range(tiles):
            if (i + j) % 2 == 0:
                observed[i * rows // tiles:(i + 1) * rows // tiles,
                         j * cols // tiles:(j + 1) * cols // tiles] = True
    return observed
