"""The same Wiener-filter problem in nifty8, for a side-by-side check of erumlab's answers.

nifty8 (NIFTy, Arras et al., ascl:1903.008) is the reference implementation of
information field theory. This module builds, from erumlab's arrays, exactly
the problem of nifty8's ``getting_started_1`` demo: an ``RGSpace`` with its
default harmonic partner, ``HarmonicTransformOperator`` (a Hartley
transform), ``create_power_operator`` for S, ``MaskOperator`` for the
response, ``ScalingOperator`` for N and ``WienerFilterCurvature`` for D^-1,
solved with nifty's own ``ConjugateGradient`` preconditioned by S as in the
demo. The signal, noise and data are erumlab's numbers, handed over as
``ift.Field`` objects, so any difference is the codes', not the draws'.

nifty8 is an optional dependency (the ``test`` extra); it is imported here
and nowhere else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from erumlab.science.ift.grids import RegularGrid

# nifty's relative CG tolerances for the comparison: the loosest at which its answers are
# accurate. Its samples start CG from a prior draw, and the tolerance is relative to the
# gradient there, which the large prior fluctuations make big; on the 1D demo 1e-3 leaves
# the spread of its samples 30 % too large where there are data (1e-5 gets it right within
# the Monte-Carlo scatter); on the 2D demo 1e-3 suffices. The mean needs 1e-6 for < 1e-5.
MEAN_TOL = 1e-6
SAMPLE_TOL = {1: 1e-5, 2: 1e-3}


def available() -> bool:
    """Whether nifty8 can be imported (the comparison is skipped where it cannot)."""
    try:
        import nifty8  # noqa: F401
    except ImportError:
        return False
    return True


def _ift() -> Any:
    try:
        import nifty8 as ift
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the nifty8 comparison needs nifty8: pip install nifty8==8.5.7") from exc
    return ift


@dataclass
class NiftyResult:
    mean: np.ndarray
    std: np.ndarray | None
    samples: np.ndarray | None
    mean_seconds: float
    sample_seconds: float
    mean_iterations: int
    sample_iterations: list[int]

    @property
    def seconds(self) -> float:
        return self.mean_seconds + self.sample_seconds


class NiftyWiener:
    """nifty8's Wiener filter for a masked, noisy observation of a field on ``grid``.

    ``observed`` is erumlab's mask (True where there are data); nifty's
    MaskOperator takes flags, True where there are none. ``tol`` and
    ``sample_tol`` are nifty's relative gradient-norm tolerances (its CG
    criterion: ||D^-1 x - b|| / ||D^-1 x0 - b||).
    """

    def __init__(self, grid: RegularGrid, power: Callable[[np.ndarray], np.ndarray],
                 noise_variance: float, observed: np.ndarray, *, tol: float = MEAN_TOL,
                 sample_tol: float | None = None, iteration_limit: int = 20000) -> None:
        ift = _ift()
        self.ift = ift
        self.grid = grid
        self.position = ift.RGSpace(grid.shape, distances=grid.distances)
        self.harmonic = self.position.get_default_codomain()
        self.HT = ift.HarmonicTransformOperator(self.harmonic, target=self.position)
        self.S = ift.create_power_operator(self.harmonic, power_spectrum=power,
                                           sampling_dtype=np.float64)
        flags = ift.makeField(self.position, ~np.asarray(observed, dtype=bool))
        self.R = ift.MaskOperator(flags) @ self.HT
        self.N = ift.ScalingOperator(self.R.target, float(noise_variance),
                                     sampling_dtype=np.float64)
        if sample_tol is None:
            sample_tol = SAMPLE_TOL.get(grid.ndim, 1e-5)
        counting = _counting_controller(ift)
        self.controller = counting(tol_rel_gradnorm=tol, iteration_limit=iteration_limit)
        self.sample_controller = counting(tol_rel_gradnorm=sample_tol,
                                          iteration_limit=iteration_limit)
        self.curvature = ift.WienerFilterCurvature(self.R, self.N, self.S, self.controller,
                                                   self.sample_controller)

    def harmonic_coefficients(self, field: np.ndarray) -> Any:
        """The harmonic coefficients whose transform is ``field`` (the Hartley transform
        squares to N times the identity; HT carries the harmonic volume 1/V)."""
        values = self.HT.adjoint(self.ift.makeField(self.position, np.asarray(field)))
        return values * (self.grid.volume**2 / self.grid.size)

    def mean(self, data: np.ndarray) -> tuple[np.ndarray, float, int]:
        """The Wiener-filter mean in position space, seconds and CG iterations."""
        ift = self.ift
        started = time.perf_counter()
        d = ift.makeField(self.R.target, np.asarray(data, dtype=np.float64))
        j = self.R.adjoint(self.N.inverse(d))
        m = self.HT(self.curvature.inverse(j)).val
        seconds = time.perf_counter() - started
        return m.copy(), seconds, self.controller.iterations

    def draw_samples(self, count: int, seed: int) -> tuple[np.ndarray, float, list[int]]:
        """``count`` zero-mean posterior fluctuations from nifty's own sampler and RNG."""
        ift = self.ift
        ift.random.push_sseq_from_seed(seed)
        started = time.perf_counter()
        drawn, iterations = [], []
        try:
            for _ in range(count):
                drawn.append(self.HT(self.curvature.draw_sample(from_inverse=True)).val)
                iterations.append(self.sample_controller.iterations)
        finally:
            ift.random.pop_sseq()
        return np.array(drawn), time.perf_counter() - started, iterations

    def fluctuations_from(self, prior: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Posterior fluctuations for erumlab's excitations, computed the way nifty samples.

        nifty's ``SamplingEnabler`` draws s ~ S and a likelihood excitation
        nj ~ G(0, R^T N^-1 R) and solves D^-1 x = S^-1 s + nj by CG started at
        s, preconditioned by S. erumlab's fluctuation is D (S^-1 s' - R^T N^-1 n')
        for a prior draw s' and a noise draw n', so with s = s' and
        nj = -R^T N^-1 n' the two must give the same field, sample by sample.
        """
        ift = self.ift
        prior_precision = self.S.inverse
        likelihood = ift.SandwichOperator.make(self.R, self.N.inverse)
        op = likelihood + prior_precision
        minimizer = ift.ConjugateGradient(self.sample_controller)
        out = []
        for s_pos, n in zip(prior, noise, strict=True):
            s = self.harmonic_coefficients(s_pos)
            nj = -self.R.adjoint(self.N.inverse(ift.makeField(self.R.target, n)))
            energy = ift.QuadraticEnergy(s, op, prior_precision(s) + nj)
            energy, _ = minimizer(energy, preconditioner=self.S)
            out.append(self.HT(energy.position).val)
        return np.array(out)


def _counting_controller(ift: Any) -> type:
    """nifty's GradientNormController that also counts the CG iterations of its last run."""

    class Counting(ift.GradientNormController):
        iterations = 0

        def start(self, energy: Any) -> int:
            self.iterations = -1  # start() runs one check() of the starting point
            return super().start(energy)

        def check(self, energy: Any) -> int:
            self.iterations += 1
            return super().check(energy)

    return Counting


def run(grid: RegularGrid, power: Callable[[np.ndarray], np.ndarray], noise_variance: float,
        observed: np.ndarray, data: np.ndarray, *, samples: int, seed: int = 0,
        tol: float = MEAN_TOL, sample_tol: float | None = None) -> NiftyResult:
    """nifty8's posterior mean and ``samples`` samples (its own RNG), timed separately."""
    problem = NiftyWiener(grid, power, noise_variance, observed, tol=tol, sample_tol=sample_tol)
    mean, mean_seconds, mean_iterations = problem.mean(data)
    if samples:
        fluctuations, sample_seconds, iterations = problem.draw_samples(samples, seed)
        std = np.sqrt(np.mean(fluctuations**2, axis=0))
        full = mean + fluctuations
    else:
        std, full, sample_seconds, iterations = None, None, 0.0, []
    return NiftyResult(mean=mean, std=std, samples=full, mean_seconds=mean_seconds,
                       sample_seconds=sample_seconds, mean_iterations=mean_iterations,
                       sample_iterations=iterations)
