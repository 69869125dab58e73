"""Figures of a pileup scan (matplotlib, Agg): timing, performance, an event display."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # jobs and workers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from erumlab.science.tracking.detector import Detector  # noqa: E402
from erumlab.science.tracking.generation import Event  # noqa: E402
from erumlab.science.tracking.metrics import match_seeds  # noqa: E402
from erumlab.science.tracking.study import Scan  # noqa: E402


def timing(scan: Scan) -> Figure:
    """Time per event vs pileup, and vs hits with the fitted power laws."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    pileups = [r.pileup for r in scan.results]
    hits = np.array([r.hits for r in scan.results])
    series = [("ca", "cellular automaton (CPU)", "o-"), ("baseline", "triplet baseline (CPU)", "s-")]
    if any(r.gpu_ms is not None for r in scan.results):
        series.append(("gpu", "cellular automaton (GPU)", "^-"))
    for key, label, style in series:
        times = np.array([getattr(r, f"{key}_ms") or np.nan for r in scan.results], dtype=float)
        left.plot(pileups, times, style, label=label)
        exponent = scan.exponent(key)
        fit_label = label if exponent is None else f"{label}: hits^{exponent:.2f}"
        right.loglog(hits, times, style, label=fit_label)
        if exponent is not None:
            mask = np.array([r.pileup > 0 for r in scan.results])
            coeff = np.polyfit(np.log(hits[mask]), np.log(times[mask]), 1)
            grid = np.geomspace(hits[mask].min(), hits[mask].max(), 20)
            right.loglog(grid, np.exp(np.polyval(coeff, np.log(grid))), ":", color="grey")
    left.set_yscale("log")
    left.set_xlabel("mean pileup")
    left.set_ylabel("time per event [ms]")
    left.set_title(f"{scan.detector.name}, B = {scan.detector.field_tesla} T", fontsize=10)
    right.set_xlabel("hits per event")
    right.set_ylabel("time per event [ms]")
    right.set_title("fit over pileup > 0", fontsize=10)
    for axes in (left, right):
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def performance(scan: Scan, pileup: int | None = None) -> Figure:
    """Efficiency, fake and duplicate rate vs pT and eta at one pileup (default: the highest)."""
    result = scan.at(pileup) if pileup is not None else scan.results[-1]
    figure, axes = plt.subplots(3, 2, figsize=(10, 9), sharex="col")
    for name, perf, style in (("cellular automaton", result.ca, "o"),
                              ("triplet baseline", result.baseline, "x")):
        s = perf.summary()
        pt_mid = np.sqrt(np.array(s["pt_bins"][:-1]) * np.array(s["pt_bins"][1:]))
        eta_mid = 0.5 * (np.array(s["eta_bins"][:-1]) + np.array(s["eta_bins"][1:]))
        for row, key in enumerate(("efficiency", "fake_rate", "duplicate_rate")):
            for col, (mid, axis) in enumerate(((pt_mid, "pt"), (eta_mid, "eta"))):
                values = np.array([np.nan if v is None else v for v in s[f"{key}_vs_{axis}"]])
                axes[row, col].plot(mid, values, style, label=name, ms=5, alpha=0.8)
                axes[row, col].set_ylabel(key.replace("_", " "))
    for row in range(3):
        axes[row, 0].set_xscale("log")
        for col in range(2):
            axes[row, col].grid(alpha=0.3)
            axes[row, col].set_ylim(-0.02, 1.05)
    axes[0, 0].axvline(scan.cuts.pt_min, color="grey", ls="--", lw=0.8)
    axes[0, 0].legend(fontsize=8)
    axes[2, 0].set_xlabel("pT [GeV] (efficiency: true; rates: the seed's estimate)")
    axes[2, 1].set_xlabel(f"eta (efficiency: true, pT > {result.ca.pt_threshold} GeV)")
    figure.suptitle(f"pileup {result.pileup}, {len(result.events)} events", fontsize=10)
    figure.tight_layout()
    return figure


def event_display(event: Event, seed_hits: np.ndarray, det: Detector, *,
                  zoom: float | None = None) -> Figure:
    """Hits and found seeds in the transverse plane (matched seeds blue, fakes red)."""
    figure, panels = plt.subplots(1, 2, figsize=(11, 5.4))
    hits = event.hits
    matched = match_seeds(seed_hits, hits.particle)
    reach = det.radii[-1] * 1.05
    for axes, limit in ((panels[0], reach), (panels[1], zoom or det.radii[-1] * 0.35)):
        for radius in det.radii:
            axes.add_patch(plt.Circle((0, 0), radius, fill=False, color="0.8", lw=0.6))
        axes.scatter(hits.x, hits.y, s=1.5, color="0.45", lw=0, label=f"{len(hits)} hits")
        for good, colour, label in ((True, "tab:blue", "matched seeds"),
                                    (False, "tab:red", "fake seeds")):
            rows = seed_hits[(matched >= 0) == good]
            for k, row in enumerate(rows):
                row = row[row >= 0]
                axes.plot(np.r_[0.0, hits.x[row]] if good else hits.x[row],
                          np.r_[0.0, hits.y[row]] if good else hits.y[row], "-", color=colour,
                          lw=0.6, alpha=0.8, label=f"{label} ({len(rows)})" if k == 0 else None)
        if axes is panels[0]:
            axes.set_xlim(-limit, limit)
            axes.set_ylim(-limit, limit)
        else:
            axes.set_xlim(0, limit)
            axes.set_ylim(-limit / 2, limit / 2)
        axes.set_aspect("equal")
        axes.set_xlabel("x [cm]")
        axes.set_ylabel("y [cm]")
    panels[0].legend(loc="upper right", fontsize=7, markerscale=4)
    panels[0].set_title(f"pileup {event.pileup} ({event.interactions} interactions): "
                        "transverse plane", fontsize=10)
    panels[1].set_title("zoom (matched seeds drawn from the beam line)", fontsize=10)
    figure.tight_layout()
    return figure
