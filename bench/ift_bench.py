"""Information field theory: erumlab against nifty8 on nifty8's Wiener-filter demos.

    .venv/bin/python bench/ift_bench.py [--samples 200] [--realisations 20] [--sizes 128,256,512,1024]

Prints, measured side by side in one run (absolute seconds depend on the
machine; the ratios are what carries over):

- agreement on identical signal, noise and data (1D: 512 pixels, a gap over
  20-40 %; 2D: 128x128, checkerboard mask): relative difference of the
  posterior means (target < 1e-3) and of the posterior standard deviations
  (target < 5 %), the latter twice: with the same random excitations fed to
  both codes (sample by sample) and with each code's own sampler and RNG
  (pixel-averaged over the observed and the masked pixels, where Monte-Carlo
  scatter averages out);
- run time for the posterior mean and the samples, erumlab / nifty8
  (target <= 1: erumlab no slower), erumlab timed before and after nifty8 so
  drift on a shared machine shows; CG iterations of both;
- coverage: the fraction of pixels whose true signal lies within one
  posterior standard deviation (target 68 % +- 3 %), on the 2D demo (16384
  pixels) and over independent 1D realisations;
- scaling of the 2D posterior-mean solve from 128^2 to 1024^2 pixels, with
  the fitted exponent of time ~ pixels^a.

nifty8's CG tolerances are the loosest at which its answers are accurate
(see erumlab.science.ift.nifty_compare.SAMPLE_TOL); erumlab's are its defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from erumlab.science.ift import demos, nifty_compare
from erumlab.science.ift.wiener import coverage, relative_difference

ONE_SIGMA = 0.6827


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="posterior samples (demo: 200)")
    parser.add_argument("--realisations", type=int, default=20,
                        help="independent 1D realisations for the coverage")
    parser.add_argument("--sizes", default="128,256,512,1024", help="2D sizes for the scaling")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not nifty_compare.available():
        raise SystemExit("nifty8 is needed: .venv/bin/pip install nifty8==8.5.7")

    setups = {"1D 512": demos.wiener_1d(seed=args.seed), "2D 128x128": demos.wiener_2d(seed=args.seed)}
    results = {}
    for label, setup in setups.items():
        results[label] = compare(setup, args.samples, args.seed)

    print(f"nifty8 demos, {args.samples} posterior samples each; identical signal, noise and data")
    print(f"{'setup':<11} {'mean rel.diff':>13} {'std (same draws)':>17} "
          f"{'std ratio obs/gap (own draws)':>30} {'erumlab s':>10} {'nifty8 s':>9} "
          f"{'ratio':>6} {'CG its e/n (mean)':>18} {'coverage e/n':>13}")
    for label, r in results.items():
        print(f"{label:<11} {r['mean_diff']:>13.2e} {r['std_same']:>17.2e} "
              f"{r['ratio_observed']:>14.3f} / {r['ratio_gap']:<13.3f} {r['ours_s']:>10.2f} "
              f"{r['nifty_s']:>9.2f} {r['ours_s'] / r['nifty_s']:>6.3f} "
              f"{r['ours_its']:>8} / {r['nifty_its']:<8} "
              f"{r['coverage']:>6.3f}/{r['coverage_nifty']:.3f}")
        print(f"{'':<11} erumlab {r['ours_runs'][0]:.2f} s before, {r['ours_runs'][1]:.2f} s after "
              f"nifty8 (mean {r['nifty_mean_s']:.2f} s + samples {r['nifty_samples_s']:.2f} s, "
              f"sample CG <= {r['nifty_sample_its']} its; erumlab samples <= "
              f"{r['ours_sample_its']} its)")

    hits = []
    for i in range(args.realisations):
        setup = demos.wiener_1d(seed=1000 + i)
        posterior = setup.wiener_filter().posterior(setup.data, args.samples, seed=i)
        hits.append(coverage(setup.signal, posterior.mean, posterior.std))
    coverage_1d = float(np.mean(hits))
    coverage_2d = results["2D 128x128"]["coverage"]
    print(f"coverage (truth within 1 sigma): 2D demo {coverage_2d:.3f}; 1D demo, "
          f"{args.realisations} realisations x 512 pixels {coverage_1d:.3f} "
          f"(single realisations {min(hits):.3f} .. {max(hits):.3f})")

    sizes = [int(s) for s in args.sizes.split(",") if s]
    times, pixels, counts = [], [], []
    print(f"2D posterior-mean solve (spectrum {demos.SPECTRUM_2D}, noise 5, checkerboard):")
    for size in sizes:
        setup = demos.wiener_2d(size, seed=args.seed)
        wiener = setup.wiener_filter()
        wiener.mean(setup.data)  # warm-up: FFT plans, page faults
        started = time.perf_counter()
        solved = wiener.mean(setup.data)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        pixels.append(setup.grid.size)
        counts.append(max(solved.max_iterations, 1))
        print(f"  {size:>5}^2 = {setup.grid.size:>8} pixels: {elapsed:8.3f} s, "
              f"{solved.max_iterations} CG iterations, "
              f"{1e3 * elapsed / max(solved.max_iterations, 1):.2f} ms per iteration")
    if len(sizes) > 1:
        exponent = float(np.polyfit(np.log(pixels), np.log(times), 1)[0])
        growth = float(np.polyfit(np.log(pixels), np.log(counts), 1)[0])
        print(f"  fitted scaling: time ~ pixels^{exponent:.2f}; CG iterations ~ pixels^{growth:.2f} "
              f"(the mask's tiles grow with the grid, and ever more modes are signal-dominated)")

    print("targets:")
    for label, r in results.items():
        print(f"  {label}: mean rel. diff {r['mean_diff']:.1e} < 1e-3: "
              f"{verdict(r['mean_diff'] < 1e-3)}; "
              f"std rel. diff (same draws) {r['std_same']:.1e} < 5 %: {verdict(r['std_same'] < 0.05)}; "
              f"pixel-averaged std ratio (own draws) within 5 % where observed: "
              f"{verdict(abs(r['ratio_observed'] - 1) < 0.05)}; "
              f"erumlab / nifty8 time {r['ours_s'] / r['nifty_s']:.3f} <= 1: "
              f"{verdict(r['ours_s'] <= r['nifty_s'])}")
    for label, value in [("2D demo", coverage_2d), (f"1D demo x{args.realisations}", coverage_1d)]:
        print(f"  coverage {label} {value:.3f} in 0.68 +- 0.03: "
              f"{verdict(abs(value - ONE_SIGMA) <= 0.03)}")


def compare(setup: demos.WienerSetup, samples: int, seed: int) -> dict[str, float]:
    """erumlab and nifty8 on one setup: agreement, timing (erumlab before and after), coverage."""
    wiener = setup.wiener_filter()
    wiener.posterior(setup.data, 2, seed=seed)  # warm-up
    started = time.perf_counter()
    ours = wiener.posterior(setup.data, samples, seed=seed + 1)
    before = time.perf_counter() - started

    problem = nifty_compare.NiftyWiener(setup.grid, setup.power, setup.noise_variance,
                                        setup.observed)
    problem.mean(setup.data)  # warm-up
    theirs_mean, mean_seconds, mean_iterations = problem.mean(setup.data)
    fluctuations, sample_seconds, sample_iterations = problem.draw_samples(samples, seed + 2)
    theirs_std = np.sqrt(np.mean(fluctuations**2, axis=0))

    started = time.perf_counter()
    wiener.posterior(setup.data, samples, seed=seed + 1)
    after = time.perf_counter() - started

    prior, noise = wiener.draw_excitations(np.random.default_rng(seed + 3), min(samples, 50))
    our_samples, _ = wiener.samples_from(ours.mean, prior, noise)
    their_fluctuations = problem.fluctuations_from(prior, noise)
    spread = np.sqrt(np.mean((our_samples - ours.mean) ** 2, axis=0))
    gap = ~setup.observed
    return {
        "mean_diff": relative_difference(ours.mean, theirs_mean),
        "std_same": relative_difference(spread, np.sqrt(np.mean(their_fluctuations**2, axis=0))),
        "ratio_observed": float(ours.std[setup.observed].mean()
                                / theirs_std[setup.observed].mean()),
        "ratio_gap": float(ours.std[gap].mean() / theirs_std[gap].mean()) if gap.any() else 1.0,
        "ours_s": min(before, after), "ours_runs": (before, after),
        "nifty_s": mean_seconds + sample_seconds, "nifty_mean_s": mean_seconds,
        "nifty_samples_s": sample_seconds,
        "ours_its": ours.mean_iterations, "nifty_its": mean_iterations,
        "ours_sample_its": int(ours.sample_iterations.max(initial=0)),
        "nifty_sample_its": max(sample_iterations, default=0),
        "coverage": coverage(setup.signal, ours.mean, ours.std),
        "coverage_nifty": coverage(setup.signal, theirs_mean, theirs_std),
    }


if __name__ == "__main__":
    main()
