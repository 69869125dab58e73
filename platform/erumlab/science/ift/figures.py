"""Figures for the information-field-theory template and bench (matplotlib, no display needed).

Each function returns a matplotlib Figure; the caller saves it (the template
writes PNGs into the job's working directory, where they become artifacts).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # servers and workers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from erumlab.science.ift.demos import PoissonSetup, WienerSetup  # noqa: E402
from erumlab.science.ift.operators import fourier_power  # noqa: E402
from erumlab.science.ift.poisson import PoissonPosterior  # noqa: E402
from erumlab.science.ift.spectrum import SpectrumResult  # noqa: E402
from erumlab.science.ift.wiener import Posterior  # noqa: E402


def _gaps(axes: plt.Axes, x: np.ndarray, observed: np.ndarray) -> None:
    """Shade the stretches of a 1D grid without data."""
    edges = np.diff(np.concatenate([[0], (~observed).astype(int), [0]]))
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        axes.axvspan(x[start], x[stop - 1], color="grey", alpha=0.15, lw=0)


def wiener_1d(setup: WienerSetup, posterior: Posterior, *, shown_samples: int = 3,
              reference: dict[str, np.ndarray] | None = None) -> Figure:
    """Truth, data, posterior mean with its 1-sigma band and samples; the uncertainty growing
    in the gap; the residuals in units of sigma. ``reference`` (nifty8's mean and std) is
    drawn dashed on top if given."""
    x = setup.grid.coordinates()[0]
    observed = setup.observed
    std = posterior.std
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 8), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 1.4, 1.4]})
    top.plot(x[observed], setup.data, ".", ms=2, color="grey", alpha=0.6, label="data")
    top.plot(x, setup.signal, color="k", lw=1.2, label="true signal")
    top.fill_between(x, posterior.mean - std, posterior.mean + std, color="C0", alpha=0.3,
                     lw=0, label="posterior mean +- 1 sigma")
    top.plot(x, posterior.mean, color="C0", lw=1.5)
    for i in range(min(shown_samples, len(posterior.samples))):
        top.plot(x, posterior.samples[i], color="C1", lw=0.6, alpha=0.8,
                 label="posterior samples" if i == 0 else None)
    if reference is not None:
        top.plot(x, reference["mean"], "--", color="C3", lw=1, label="nifty8 mean")
    _gaps(top, x, observed)
    top.set_ylabel("s(x)")
    top.legend(loc="upper right", fontsize=8, ncol=2, frameon=False)
    top.set_title(f"Wiener filter, {setup.grid.size} pixels, noise variance "
                  f"{setup.noise_variance:g}, {len(posterior.samples)} samples (gap shaded)",
                  fontsize=10)
    middle.plot(x, std, color="C0", label="erumlab")
    if reference is not None and reference.get("std") is not None:
        middle.plot(x, reference["std"], "--", color="C3", lw=1, label="nifty8")
        middle.legend(fontsize=8, frameon=False)
    _gaps(middle, x, observed)
    middle.set_ylabel("posterior std")
    middle.set_yscale("log")
    residual = (posterior.mean - setup.signal) / std
    bottom.plot(x, residual, lw=0.8, color="C2")
    for level in (-1, 1):
        bottom.axhline(level, color="grey", ls=":", lw=0.8)
    _gaps(bottom, x, observed)
    bottom.set_ylabel("(mean - truth) / sigma")
    bottom.set_xlabel("x")
    figure.tight_layout()
    return figure


def _image(axes: plt.Axes, values: np.ndarray, title: str, **options: object) -> None:
    shown = axes.imshow(values, origin="lower", **options)
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    plt.colorbar(shown, ax=axes, fraction=0.046, pad=0.03)


def wiener_2d(setup: WienerSetup, posterior: Posterior, title: str = "Wiener filter") -> Figure:
    """Truth, masked data, posterior mean, uncertainty map, one sample and the residual."""
    limits = {"vmin": float(setup.signal.min()), "vmax": float(setup.signal.max()),
              "cmap": "viridis"}
    data = np.full(setup.grid.shape, np.nan)
    data[setup.observed] = setup.data
    figure, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    _image(axes[0, 0], setup.signal, "true signal", **limits)
    _image(axes[0, 1], data, f"data (noise variance {setup.noise_variance:g}; mask white)",
           **limits)
    _image(axes[0, 2], posterior.mean, "posterior mean", **limits)
    _image(axes[1, 0], posterior.std, "posterior std (uncertainty)", cmap="magma")
    if len(posterior.samples):
        _image(axes[1, 1], posterior.samples[0], "a posterior sample", **limits)
    residual = posterior.mean - setup.signal
    bound = float(np.abs(residual).max())
    _image(axes[1, 2], residual, "residual: mean - truth", cmap="RdBu_r", vmin=-bound,
           vmax=bound)
    figure.suptitle(f"{title}: {setup.grid.shape[0]}x{setup.grid.shape[1]} pixels, "
                    f"{len(posterior.samples)} samples", fontsize=11)
    figure.tight_layout()
    return figure


def power_spectrum(result: SpectrumResult, setup: WienerSetup) -> Figure:
    """The critical filter's spectrum against the true one and the realisation's own power."""
    bins = result.bins
    use = bins.occupied.copy()
    use[0] = False
    k = bins.centres[use]
    realised = bins.average(fourier_power(setup.grid, setup.signal))[use]
    fine = np.geomspace(k.min(), k.max(), 200)
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    axes.loglog(fine, setup.power(fine), color="k", lw=1.5, label="true P(k)")
    axes.loglog(k, realised, "s", ms=4, mfc="none", color="grey",
                label="power of this realisation")
    axes.loglog(k, result.history[0][use], ":", color="C7", label="initial guess (data)")
    axes.loglog(k, result.power[use], "o-", ms=4, color="C3",
                label=f"critical filter ({result.iterations} iterations)")
    noise_level = None
    if setup.noise_variance:
        noise_level = setup.noise_variance / setup.grid.eigenvalue_factor
        axes.axhline(noise_level, color="C0", ls="--", lw=0.8, label="noise level")
    axes.set_xlabel("|k| (cycles per domain)")
    axes.set_ylabel("P(k)")
    axes.legend(fontsize=8, frameon=False)
    axes.set_title("Reconstructed power spectrum", fontsize=10)
    figure.tight_layout()
    return figure


def poisson(setup: PoissonSetup, posterior: PoissonPosterior,
            map_estimate: PoissonPosterior | None = None) -> Figure:
    """Exposure, counts, naive flux, true flux, reconstructed flux, its uncertainty, residuals."""
    flux = setup.flux
    limits = {"vmin": 0.0, "vmax": float(np.percentile(flux, 99.5)), "cmap": "inferno"}
    figure, axes = plt.subplots(2, 4, figsize=(15, 7.5))
    _image(axes[0, 0], setup.exposure, "exposure", cmap="gray")
    _image(axes[0, 1], setup.counts, f"photon counts (total {int(setup.counts.sum())})",
           cmap="inferno")
    _image(axes[0, 2], setup.naive_flux, "counts / exposure", **limits)
    _image(axes[0, 3], flux, "true flux", **limits)
    _image(axes[1, 0], posterior.flux, f"posterior mean flux ({posterior.method.upper()})",
           **limits)
    _image(axes[1, 1], posterior.std, "posterior std of log-flux", cmap="magma")
    if map_estimate is not None:
        _image(axes[1, 2], np.exp(map_estimate.offset + map_estimate.mean), "MAP flux", **limits)
    else:
        axes[1, 2].axis("off")
    log_truth = setup.offset + setup.log_flux
    residual = (posterior.offset + posterior.mean - log_truth) / posterior.std
    _image(axes[1, 3], residual, "(mean - truth) / sigma, log-flux", cmap="RdBu_r", vmin=-3,
           vmax=3)
    figure.suptitle("Log-normal sky through Poisson counts", fontsize=11)
    figure.tight_layout()
    return figure
