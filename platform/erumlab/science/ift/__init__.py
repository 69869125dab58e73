"""Information field theory: Bayesian reconstruction of fields, with uncertainties.

A signal field s on a periodic grid is inferred from incomplete, noisy data:
the Wiener filter for a known power spectrum (``wiener``), the critical
filter when the spectrum is unknown too (``spectrum``), and a log-normal sky
behind Poisson counts, by MAP or Metric Gaussian VI (``poisson``). The
operators (``grids``, ``operators``) follow nifty8's conventions, so that
``nifty_compare`` can run the identical problem through nifty8 (an optional
dependency, imported only there). NumPy and SciPy only; no Django.

    from erumlab.science.ift import demos
    setup = demos.wiener_1d(seed=0)                  # nifty8's 1D demo, with mock data
    posterior = setup.wiener_filter().posterior(setup.data, samples=200)
    posterior.mean, posterior.std                    # map and uncertainty map

Reference: Ensslin, Frommert & Kitaura, PRD 80, 105005 (2009).
"""

from __future__ import annotations

from erumlab.science.ift.grids import RegularGrid
from erumlab.science.ift.operators import (
    DiagonalOperator,
    FourierDiagonal,
    HarmonicTransform,
    LinearOperator,
    MaskResponse,
    exposure_response,
    power_covariance,
)
from erumlab.science.ift.wiener import Posterior, WienerFilter, coverage, relative_difference

__all__ = ["DiagonalOperator", "FourierDiagonal", "HarmonicTransform", "LinearOperator",
           "MaskResponse", "Posterior", "RegularGrid", "WienerFilter", "coverage",
           "exposure_response", "power_covariance", "relative_difference"]
