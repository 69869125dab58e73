"""Reconstructing an unknown power spectrum together with the field: the critical filter.

When P(k) is not known, it is inferred from the same data (Ensslin & Frommert,
PRD 83, 105014 (2011); Ensslin & Weig, PRE 82, 051112 (2010)). With a flat
(Jeffreys) prior on the power in each band b of |k|, the posterior-maximising
spectrum obeys

    p_b = (1 / rho_b) * sum_{k in b} ( |m_k|^2 + D_kk ),

with rho_b the number of modes in the band, m the Wiener-filter mean for the
current spectrum and D its propagator. The map's own power |m_k|^2 is too
small wherever the data are weak (the filter shrinks the map), and the trace
of D adds back exactly the power the filter is unsure of; without it the
estimate would collapse to zero in noise-dominated bands. The trace comes
from posterior samples, the same ones that give the uncertainty map, and
the iteration m -> p -> m runs to a fixed point.

The bands are logarithmic in |k| so that each holds enough modes at high k
without smearing the few at low k; between band centres the spectrum is
interpolated linearly in log k - log P.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from erumlab.science.ift.grids import RegularGrid
from erumlab.science.ift.operators import LinearOperator, fourier_power, power_covariance
from erumlab.science.ift.wiener import Posterior, WienerFilter


@dataclass(frozen=True)
class PowerBins:
    """Bands of |k| over the real-FFT layout of a grid: |k| = 0 alone, then log-spaced bands."""

    grid: RegularGrid
    edges: np.ndarray  # n_bins + 1 edges in |k| for the bands after the |k| = 0 one
    index: np.ndarray  # band of every real-FFT coefficient (0 is |k| = 0)
    counts: np.ndarray  # Fourier modes per band (rho_b)
    centres: np.ndarray  # mode-weighted geometric mean |k| per band (0 for the first)

    @classmethod
    def logarithmic(cls, grid: RegularGrid, bins: int = 24) -> PowerBins:
        k = grid.k_lengths
        positive = k[k > 0]
        edges = np.geomspace(positive.min() * (1 - 1e-9), grid.k_max * (1 + 1e-9), bins + 1)
        index = np.where(k > 0, np.searchsorted(edges, k, side="right"), 0)
        index = np.clip(index, 0, bins)
        weights = grid.rfft_weights
        counts = np.bincount(index.ravel(), weights.ravel(), minlength=bins + 1)
        log_k = np.where(k > 0, np.log(np.where(k > 0, k, 1.0)), 0.0)
        sums = np.bincount(index.ravel(), (weights * log_k).ravel(), minlength=bins + 1)
        centres = np.where(counts > 0, np.exp(sums / np.where(counts > 0, counts, 1)), 0.0)
        centres[0] = 0.0
        return cls(grid=grid, edges=edges, index=index, counts=counts, centres=centres)

    @property
    def occupied(self) -> np.ndarray:
        """Bands that hold at least one mode (the few lowest log bands can be empty)."""
        return self.counts > 0

    def average(self, power: np.ndarray) -> np.ndarray:
        """Mode-weighted average of a real-FFT-layout array in every band (NaN for empty ones)."""
        weights = self.grid.rfft_weights
        sums = np.bincount(self.index.ravel(), (weights * power).ravel(),
                           minlength=len(self.counts))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.occupied, sums / self.counts, np.nan)

    def expand(self, values: np.ndarray) -> np.ndarray:
        """Band values -> P(|k|) on the real-FFT layout (log-log interpolation between centres)."""
        values = np.asarray(values, dtype=np.float64)
        use = self.occupied.copy()
        use[0] = False
        log_k = np.log(self.centres[use])
        log_p = np.log(values[use])
        k = self.grid.k_lengths
        out = np.exp(np.interp(np.log(np.where(k > 0, k, 1.0)), log_k, log_p))
        return np.where(k > 0, out, values[0])


@dataclass
class SpectrumResult:
    """The critical filter's spectrum (per band), the posterior it implies and its history."""

    bins: PowerBins
    power: np.ndarray  # per band, P units; band 0 is |k| = 0
    posterior: Posterior
    history: list[np.ndarray] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0

    @property
    def k(self) -> np.ndarray:
        return self.bins.centres

    def power_at(self, k: np.ndarray) -> np.ndarray:
        """The reconstructed spectrum interpolated to arbitrary |k| > 0 (for plots)."""
        use = self.bins.occupied.copy()
        use[0] = False
        return np.exp(np.interp(np.log(k), np.log(self.bins.centres[use]),
                                np.log(self.power[use])))


def initial_power(bins: PowerBins, response: LinearOperator, data: np.ndarray) -> np.ndarray:
    """A first guess from the data: the power of the zero-filled data, corrected for coverage.

    It includes the noise power, so it overestimates noise-dominated bands;
    the iteration brings those down.
    """
    filled = response.adjoint_times(np.asarray(data, dtype=np.float64))
    coverage = response.adjoint_times(np.ones(response.target_shape))
    fraction = max(float(np.mean(coverage > 0)), 1e-3)
    guess = bins.average(fourier_power(bins.grid, filled)) / fraction
    floor = np.nanmax(guess) * 1e-12
    return np.where(bins.occupied, np.maximum(np.nan_to_num(guess, nan=floor), floor), floor)


def critical_filter(grid: RegularGrid, response: LinearOperator,
                    noise_variance: float | np.ndarray, data: np.ndarray, *,
                    bins: int | PowerBins = 24, iterations: int = 20, samples: int = 8,
                    final_samples: int = 100, smoothing: float = 0.0, seed: int = 0,
                    initial: np.ndarray | None = None, tolerance: float = 1e-3) -> SpectrumResult:
    """Field and power spectrum from the same data, by the critical filter's fixed point.

    Every iteration solves the Wiener filter for the current spectrum (warm
    started at the previous mean) and ``samples`` posterior samples for the
    trace of D; it stops after ``iterations`` or once no band's power moves by
    more than ``tolerance`` (relative). ``smoothing`` > 0 smooths log P over
    that many bands after each update, a cheap stand-in for a smoothness
    prior (Oppermann et al., PRE 87, 032136 (2013)) where bands hold few
    modes. The returned posterior has ``final_samples`` samples under the
    final spectrum.
    """
    started = time.perf_counter()
    bands = bins if isinstance(bins, PowerBins) else PowerBins.logarithmic(grid, bins)
    rng = np.random.default_rng(seed)
    power = (initial_power(bands, response, data) if initial is None
             else np.asarray(initial, dtype=np.float64).copy())
    history = [power.copy()]
    previous_mean = None
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - the count is reported
        wiener = WienerFilter(power_covariance(grid, bands.expand(power)), response,
                              noise_variance)
        mean = wiener.solve(wiener.source(data), x0=previous_mean).x
        prior, noise = wiener.draw_excitations(rng, samples)
        drawn, _ = wiener.samples_from(mean, prior, noise)
        fluctuation_power = fourier_power(grid, drawn - mean)
        updated = bands.average(fourier_power(grid, mean) + fluctuation_power)
        updated = np.where(bands.occupied, np.maximum(updated, 1e-300), power)
        if smoothing > 0:
            updated = _smooth_log(updated, bands.occupied, smoothing)
        change = np.nanmax(np.abs(updated[bands.occupied] / power[bands.occupied] - 1.0))
        power, previous_mean = updated, mean
        history.append(power.copy())
        if change < tolerance:
            break
    wiener = WienerFilter(power_covariance(grid, bands.expand(power)), response, noise_variance)
    posterior = wiener.posterior(data, final_samples, seed=seed + 1)
    return SpectrumResult(bins=bands, power=power, posterior=posterior, history=history,
                          iterations=done, seconds=time.perf_counter() - started)


def _smooth_log(power: np.ndarray, occupied: np.ndarray, width: float) -> np.ndarray:
    """Gaussian smoothing of log P over the occupied bands with |k| > 0 (|k| = 0 kept)."""
    out = power.copy()
    use = np.flatnonzero(occupied)
    use = use[use > 0]
    position = np.arange(len(use), dtype=np.float64)
    kernel = np.exp(-0.5 * ((position[:, None] - position[None, :]) / width) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    out[use] = np.exp(kernel @ np.log(power[use]))
    return out
