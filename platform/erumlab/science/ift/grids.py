"""Periodic regular grids in one or two (or more) dimensions and their harmonic partners.

The conventions are NIFTy's (Selig et al. 2013, Arras et al. 2019), so that a
power spectrum means the same thing here and in nifty8 and the two codes can be
compared on identical data:

- by default the domain has unit length along each axis, so a grid of N
  points has spacing 1/N and wavenumbers k are integers (cycles per domain);
- a signal s(x) = sum_k s_k exp(2 pi i k x) whose modes have variance
  <|s_k|^2> = P(|k|) (harmonic volume 1/L per axis, L the domain length).

In pixel space the covariance S is then circulant: its eigenvalues under the
discrete Fourier transform are ``P(|k|) / (V dv)`` with V the domain volume and
dv the pixel volume, i.e. ``N P(|k|)`` for the default unit domain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class RegularGrid:
    """A periodic grid of ``shape`` pixels with spacing ``distances`` (default 1/N per axis)."""

    shape: tuple[int, ...]
    distances: tuple[float, ...]

    def __init__(self, shape: int | Sequence[int],
                 distances: float | Sequence[float] | None = None) -> None:
        dims = (int(shape),) if np.isscalar(shape) else tuple(int(n) for n in shape)
        if not dims or any(n < 2 for n in dims):
            raise ValueError(f"shape: at least 2 pixels per axis, got {dims}")
        if distances is None:
            spacing = tuple(1.0 / n for n in dims)
        elif np.isscalar(distances):
            spacing = (float(distances),) * len(dims)
        else:
            spacing = tuple(float(d) for d in distances)
        if len(spacing) != len(dims) or min(spacing) <= 0:
            raise ValueError(f"distances: {len(dims)} positive values expected, got {distances}")
        object.__setattr__(self, "shape", dims)
        object.__setattr__(self, "distances", spacing)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def pixel_volume(self) -> float:
        return float(np.prod(self.distances))

    @property
    def volume(self) -> float:
        """Total volume (length in 1D, area in 2D) of the periodic domain."""
        return self.size * self.pixel_volume

    def coordinates(self) -> list[np.ndarray]:
        """Pixel positions along each axis (for plotting)."""
        return [np.arange(n) * d for n, d in zip(self.shape, self.distances, strict=True)]

    @cached_property
    def k_lengths(self) -> np.ndarray:
        """|k| of every coefficient in the real-FFT layout (``scipy.fft.rfftn``'s output).

        The last axis holds only non-negative frequencies; the others are
        in FFT order. Wavenumbers are in cycles per unit length.
        """
        axes = [np.fft.fftfreq(n, d) for n, d in zip(self.shape[:-1], self.distances[:-1],
                                                       strict=True)]
        axes.append(np.fft.rfftfreq(self.shape[-1], self.distances[-1]))
        squared = np.zeros([len(a) for a in axes])
        for i, a in enumerate(axes):
            view = [1] * len(axes)
            view[i] = len(a)
            squared = squared + (a**2).reshape(view)
        return np.sqrt(squared)

    @cached_property
    def rfft_weights(self) -> np.ndarray:
        """How many Fourier modes each real-FFT coefficient stands for (1 or 2).

        The real FFT stores only half of the (Hermitian) spectrum; every
        coefficient except those on the zero and Nyquist planes of the last
        axis has a mirror image. Mode counts and Parseval sums need this.
        """
        n = self.shape[-1]
        weights = np.full(n // 2 + 1, 2.0)
        weights[0] = 1.0
        if n % 2 == 0:
            weights[-1] = 1.0
        return np.broadcast_to(weights, self.k_lengths.shape).copy()

    @property
    def eigenvalue_factor(self) -> float:
        """Converts P(|k|) into eigenvalues of the pixel-space covariance: 1 / (V dv)."""
        return 1.0 / (self.volume * self.pixel_volume)

    @property
    def k_max(self) -> float:
        """The largest |k| on the grid (the corner of the Nyquist box)."""
        return float(self.k_lengths.max())

    def covariance_spectrum(self, power: Callable[[np.ndarray], np.ndarray] | np.ndarray
                            ) -> np.ndarray:
        """Eigenvalues (real-FFT layout) of the stationary covariance with spectrum ``power``.

        ``power`` is a function of |k| or already an array in the real-FFT layout.
        """
        values = power(self.k_lengths) if callable(power) else np.asarray(power, dtype=np.float64)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), self.k_lengths.shape)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("a power spectrum must be finite and non-negative")
        return values * self.eigenvalue_factor

    def power_from_eigenvalues(self, eigenvalues: np.ndarray) -> np.ndarray:
        """The inverse of ``covariance_spectrum``: eigenvalues back to P(|k|) units."""
        return np.asarray(eigenvalues) / self.eigenvalue_factor
