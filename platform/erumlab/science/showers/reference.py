"""Grindhammer-Peters (GFlash) longitudinal profiles: the cross-check of the cascade's mean.

Grindhammer, Rudowicz, Peters, NIM A290 (1990) 469 and hep-ex/0001020: the
longitudinal energy profile of an electromagnetic shower in a homogeneous
medium is a gamma distribution in t (X0),
dE/dt = E f(t), f(t) = (beta t)^(alpha-1) beta exp(-beta t) / Gamma(alpha),
with shower maximum T = (alpha - 1) / beta. For the individual profiles
<ln T> = ln(ln y - 0.812) and <ln alpha> = ln(0.81 + (0.458 + 2.26/Z) ln y);
the average profile has T = ln y - 0.858 and alpha = 0.21 + (0.492 + 2.38/Z) ln y,
with y = E / E_c.
"""

from __future__ import annotations

import math

import numpy as np


def shower_maximum(energy_mev: float, critical_energy_mev: float) -> float:
    """exp(<ln T>) in X0 for individual showers: ln y - 0.812."""
    return math.log(energy_mev / critical_energy_mev) - 0.812


def mean_profile_parameters(energy_mev: float, critical_energy_mev: float,
                            z: float) -> tuple[float, float, float]:
    """(T, alpha, beta) of the average profile."""
    ln_y = math.log(energy_mev / critical_energy_mev)
    t_max = ln_y - 0.858
    alpha = 0.21 + (0.492 + 2.38 / z) * ln_y
    return t_max, alpha, (alpha - 1.0) / t_max


def mean_profile(t: np.ndarray, energy_mev: float, critical_energy_mev: float,
                 z: float) -> np.ndarray:
    """dE/dt / E of the average profile at depths ``t`` (X0)."""
    _, alpha, beta = mean_profile_parameters(energy_mev, critical_energy_mev, z)
    t = np.asarray(t, dtype=np.float64)
    bt = np.clip(beta * t, 1e-12, None)
    log_f = (alpha - 1.0) * np.log(bt) + math.log(beta) - bt - math.lgamma(alpha)
    return np.where(t > 0, np.exp(log_f), 0.0)


def gamma_maximum_from_moments(depths: np.ndarray, energies: np.ndarray) -> float:
    """Shower maximum (alpha-1)/beta of the gamma with the profile's mean and variance.

    Using moments rather than the peak bin keeps the estimate free of the
    binning and robust against the fluctuations of a finite sample.
    """
    weights = np.asarray(energies, dtype=np.float64)
    depths = np.asarray(depths, dtype=np.float64)
    mean = float(np.sum(weights * depths) / np.sum(weights))
    var = float(np.sum(weights * (depths - mean) ** 2) / np.sum(weights))
    return mean - var / mean
