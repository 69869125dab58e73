"""Track seeding with a cellular automaton, against the combinatorial triplet baseline.

A CMS-Phase-1-like (or TrackML-like) pixel barrel in a solenoidal field;
events are a Pythia 8 hard scatter plus Poisson pileup, propagated as helices
with multiple scattering and smearing (``generation``). Seeds are found by
the cellular automaton and by doublet + third-hit search with identical hits
and cuts (``seeding``; a tensorised CA for GPUs in ``gpu``), scored against
the truth (``metrics``) and timed side by side over a pileup scan (``study``).
NumPy, numba and (optionally) PyTorch; no Django.

    from erumlab.science.tracking import SeedingCuts, detector, run_scan
    scan = run_scan(detector("cms-phase1"), SeedingCuts(), [0, 50, 200], events=5)
    scan.summary()["ca_exponent"], scan.results[-1].ca.efficiency

References: the CMS Patatrack pixel tracking (Pantaleo et al., CA-based
seeding: triplet propagation 66 ms/event vs CA 22 ms on CPU); Highland, NIM
129 (1975) 497 for the multiple-scattering angle.
"""

from __future__ import annotations

from erumlab.science.tracking.detector import DETECTORS, Detector, SeedingCuts, detector
from erumlab.science.tracking.study import Scan, parse_pileups, run_scan

__all__ = ["DETECTORS", "Detector", "Scan", "SeedingCuts", "detector", "parse_pileups",
           "run_scan"]
