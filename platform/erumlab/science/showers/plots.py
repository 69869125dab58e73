"""Validation figures: simulated against generated showers (matplotlib figures, not shown)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from erumlab.science.showers import metrics
from erumlab.science.showers.geometry import Geometry, get

SIM, GAN = "simulation", "WGAN"


def energy_response(by_energy: dict[float, tuple[np.ndarray, np.ndarray]],
                    held_out: float | None = None) -> Figure:
    """Visible-energy distributions per primary energy, and mean and resolution versus energy."""
    energies = sorted(by_energy)
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    rows = []
    for energy in energies:
        sim, gan = (metrics.layer_energies(c).sum(1) / energy for c in by_energy[energy])
        edges = np.linspace(min(sim.min(), gan.min()), max(sim.max(), gan.max()), 60)
        line = axes[0].hist(sim, edges, histtype="step", density=True)[2][0]
        axes[0].hist(gan, edges, histtype="step", density=True, ls="--", color=line.get_edgecolor())
        rows.append((energy, sim.mean(), gan.mean(), sim.std() / sim.mean(), gan.std() / gan.mean()))
    rows_a = np.array(rows)
    axes[0].set(xlabel="visible energy / E [MeV/GeV]", ylabel="density",
                title="solid: simulation, dashed: WGAN")
    axes[1].plot(rows_a[:, 0], rows_a[:, 1], "o-", label=SIM)
    axes[1].plot(rows_a[:, 0], rows_a[:, 2], "s--", label=GAN)
    axes[1].set(xlabel="E [GeV]", ylabel="mean visible / E [MeV/GeV]", title="response")
    axes[2].plot(rows_a[:, 0], rows_a[:, 3], "o-", label=SIM)
    axes[2].plot(rows_a[:, 0], rows_a[:, 4], "s--", label=GAN)
    fit_x = np.linspace(rows_a[:, 0].min(), rows_a[:, 0].max(), 50)
    stochastic = np.mean(rows_a[:, 3] * np.sqrt(rows_a[:, 0]))
    axes[2].plot(fit_x, stochastic / np.sqrt(fit_x), ":", color="grey",
                 label=f"{100 * stochastic:.0f}%/sqrt(E)")
    axes[2].set(xlabel="E [GeV]", ylabel="sigma / mean", title="resolution")
    for ax in axes[1:]:
        if held_out is not None:
            ax.axvline(held_out, color="red", lw=0.8, label=f"held out {held_out:g} GeV")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def layers_and_profiles(sim: np.ndarray, gan: np.ndarray, geometry: str | Geometry,
                        energy: float, positions_sim: np.ndarray | None = None,
                        positions_gen: np.ndarray | None = None) -> Figure:
    """Longitudinal and radial profiles, layer fractions, depth, centre of gravity, occupancy."""
    geo = get(geometry)
    o_s = metrics.observables(sim, geo, positions_sim)
    o_g = metrics.observables(gan, geo, positions_gen)
    figure, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    depths = geo.layer_depths_x0
    ax = axes[0, 0]
    ax.plot(depths, o_s["layers"].mean(0), "o-", label=SIM)
    ax.plot(depths, o_g["layers"].mean(0), "s--", label=GAN)
    ax.set(xlabel="depth [X0]", ylabel="mean visible energy [MeV]", title="longitudinal profile")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    centres = 0.5 * (metrics.RADIAL_EDGES_MM[1:] + metrics.RADIAL_EDGES_MM[:-1])
    ax.semilogy(centres, o_s["radial"].mean(0), "o-", label=SIM)
    ax.semilogy(centres, np.clip(o_g["radial"].mean(0), 1e-6, None), "s--", label=GAN)
    ax.set(xlabel="r from impact point [mm]", ylabel="mean energy in ring [MeV]",
           title="radial profile")
    ax = axes[0, 2]
    ax.errorbar(np.arange(geo.layers), o_s["fractions"].mean(0), o_s["fractions"].std(0),
                fmt="o", label=SIM)
    ax.errorbar(np.arange(geo.layers) + 0.2, o_g["fractions"].mean(0), o_g["fractions"].std(0),
                fmt="s", label=GAN)
    ax.set(xlabel="layer", ylabel="energy fraction (mean, spread)", title="layer fractions")
    hit = f"cells above {metrics.OCCUPANCY_THRESHOLD_MEV} MeV"
    for ax, key, label in ((axes[1, 0], "depth", "shower depth [X0]"),
                           (axes[1, 2], "occupancy", hit)):
        both = np.concatenate([o_s[key], o_g[key]])
        edges = np.linspace(*np.percentile(both, [0.5, 99.5]), 40)
        ax.hist(o_s[key], edges, histtype="step", density=True, label=SIM)
        ax.hist(o_g[key], edges, histtype="step", density=True, ls="--", label=GAN)
        ax.set(xlabel=label, ylabel="density")
    ax = axes[1, 1]
    ax.plot(np.arange(geo.layers), np.nanstd(o_s["cog_x"], 0), "o-", label=f"{SIM} x")
    ax.plot(np.arange(geo.layers), np.nanstd(o_g["cog_x"], 0), "s--", label=f"{GAN} x")
    ax.plot(np.arange(geo.layers), np.nanstd(o_s["cog_y"], 0), "o-", label=f"{SIM} y")
    ax.plot(np.arange(geo.layers), np.nanstd(o_g["cog_y"], 0), "s--", label=f"{GAN} y")
    ax.set(xlabel="layer", ylabel="spread of centre of gravity - impact [mm]",
           title="per-layer centre of gravity")
    ax.legend(fontsize=7)
    figure.suptitle(f"{energy:g} GeV electrons")
    figure.tight_layout()
    return figure


def layer_correlations(sim: np.ndarray, gan: np.ndarray, energy: float) -> Figure:
    """Correlation matrices of the layer energies and their difference."""
    c_s = metrics.correlations(metrics.layer_energies(sim))
    c_g = metrics.correlations(metrics.layer_energies(gan))
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, matrix, title, limits in ((axes[0], c_s, SIM, (-1, 1)), (axes[1], c_g, GAN, (-1, 1)),
                                      (axes[2], c_g - c_s, f"{GAN} - {SIM}", (-0.5, 0.5))):
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=limits[0], vmax=limits[1])
        ax.set(title=title, xlabel="layer", ylabel="layer")
        figure.colorbar(image, ax=ax, shrink=0.8)
    figure.suptitle(f"layer-energy correlations, {energy:g} GeV")
    figure.tight_layout()
    return figure


def mean_images(sim: np.ndarray, gan: np.ndarray, energy: float) -> Figure:
    """Mean cell energies per layer (log scale), simulation above and WGAN below."""
    layers = sim.shape[1]
    figure, axes = plt.subplots(2, layers, figsize=(2.0 * layers, 4.2), squeeze=False)
    top = max(sim.mean(0).max(), gan.mean(0).max())
    for row, (sample, label) in enumerate(((sim, SIM), (gan, GAN))):
        mean = sample.mean(0)
        for layer in range(layers):
            ax = axes[row, layer]
            ax.imshow(np.log10(np.clip(mean[layer], top * 1e-4, None)), vmin=np.log10(top * 1e-4),
                      vmax=np.log10(top), cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label} L{layer}", fontsize=7)
    figure.suptitle(f"mean showers at {energy:g} GeV (log10 MeV)")
    figure.tight_layout()
    return figure


def training_curves(history: dict[str, Any], log_every: int) -> Figure:
    figure, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(len(history["wasserstein"])) * log_every
    ax.plot(steps, history["wasserstein"], label="Wasserstein estimate (critic)")
    ax.plot(steps, history["critic_loss"], alpha=0.6, label="critic loss")
    ax.set(xlabel="generator iteration", ylabel="value", title="WGAN-GP training")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def speedups(rows: list[dict[str, Any]], target: float = 100.0) -> Figure:
    figure, ax = plt.subplots(figsize=(6, 3.5))
    energies = [r["energy_gev"] for r in rows]
    ax.bar(np.arange(len(rows)) - 0.2, [r["speedup_cpu"] for r in rows], 0.4, label="GAN CPU")
    if any("speedup_gpu" in r for r in rows):
        ax.bar(np.arange(len(rows)) + 0.2, [r.get("speedup_gpu", 0) for r in rows], 0.4,
               label="GAN GPU")
    ax.axhline(target, color="red", ls=":", label=f"target {target:g}x")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(rows)), [f"{e:g} GeV" for e in energies])
    ax.set(ylabel="speed-up per shower over the simulation")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
