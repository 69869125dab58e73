"""Validation of generated showers against simulated ones: the observables used in the field.

Total visible energy and its resolution versus energy, per-layer energy
fractions and their correlations, longitudinal and radial profiles, shower
depth and per-layer centre of gravity, occupancy, the shower maximum, and a
classifier test (the CaloChallenge's two: 2x512 LeakyReLU networks trained to
tell generated from simulated showers by their cells and by high-level
features; AUC 0.5 means they cannot).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn as tnn

from erumlab.science.showers.geometry import Geometry, get

# Visible energy above which a cell counts as hit: half a MIP's most probable deposit.
OCCUPANCY_THRESHOLD_MEV = 0.042
RADIAL_EDGES_MM = np.array([0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0, 100.0])


def layer_energies(cells: np.ndarray) -> np.ndarray:
    return np.asarray(cells, dtype=np.float64).sum(axis=(2, 3))


def layer_centres_and_widths(cells: np.ndarray, geometry: str | Geometry
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per shower and layer: energy-weighted centre (x, y) and width (x, y) [mm], axis at 0."""
    geo = get(geometry)
    cells = np.asarray(cells, dtype=np.float64)
    layers = layer_energies(cells)
    safe = np.where(layers > 0, layers, 1.0)
    xc, yc = geo.cell_centres_mm()
    px, py = cells.sum(axis=2), cells.sum(axis=3)  # (n, layers, cols), (n, layers, rows)
    cx, cy = (px * xc).sum(axis=2) / safe, (py * yc).sum(axis=2) / safe
    wx = np.sqrt(np.clip((px * xc ** 2).sum(axis=2) / safe - cx ** 2, 0.0, None))
    wy = np.sqrt(np.clip((py * yc ** 2).sum(axis=2) / safe - cy ** 2, 0.0, None))
    return cx, cy, wx, wy


def observables(cells: np.ndarray, geometry: str | Geometry,
                positions_mm: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-shower observables: totals, layer energies and fractions, depth, centres of gravity, hits."""
    geo = get(geometry)
    cells = np.asarray(cells, dtype=np.float64)
    n = len(cells)
    layers = layer_energies(cells)
    total = layers.sum(axis=1)
    safe_total = np.where(total > 0, total, 1.0)
    fractions = layers / safe_total[:, None]
    depth = (fractions * geo.layer_depths_x0[None, :]).sum(axis=1)
    xc, yc = geo.cell_centres_mm()
    cog_x, cog_y, _, _ = layer_centres_and_widths(cells, geo)
    positions = np.zeros((n, 2)) if positions_mm is None else np.asarray(positions_mm)
    dx = xc[None, None, :] - positions[:, 0][:, None, None]
    dy = yc[None, :, None] - positions[:, 1][:, None, None]
    radius = np.sqrt(dx ** 2 + dy ** 2)  # (n, rows, cols)
    per_cell = cells.sum(axis=1)
    radial = np.stack([np.where((radius >= lo) & (radius < hi), per_cell, 0.0).sum(axis=(1, 2))
                       for lo, hi in zip(RADIAL_EDGES_MM[:-1], RADIAL_EDGES_MM[1:], strict=True)],
                      axis=1)
    return {"total": total, "layers": layers, "fractions": fractions, "depth": depth,
            "cog_x": cog_x - positions[:, :1], "cog_y": cog_y - positions[:, 1:],
            "occupancy": (cells > OCCUPANCY_THRESHOLD_MEV).sum(axis=(1, 2, 3)).astype(np.float64),
            "radial": radial}


def shower_maximum(mean_layer_energies: np.ndarray, layer_depths_x0: np.ndarray) -> float:
    """Depth [X0] of the maximum of a mean longitudinal profile sampled once per layer.

    A parabola through the highest layer and its neighbours, so that the
    maximum moves continuously with the profile instead of jumping layer by layer.
    """
    profile = np.asarray(mean_layer_energies, dtype=np.float64)
    depths = np.asarray(layer_depths_x0, dtype=np.float64)
    peak = int(np.argmax(profile))
    if peak == 0 or peak == len(profile) - 1:
        return float(depths[peak])
    a, b, c = profile[peak - 1], profile[peak], profile[peak + 1]
    denominator = a - 2.0 * b + c
    offset = 0.0 if denominator == 0 else 0.5 * (a - c) / denominator
    pitch = depths[1] - depths[0]
    return float(depths[peak] + np.clip(offset, -0.5, 0.5) * pitch)


def energy_summary(cells: np.ndarray, geometry: str | Geometry) -> dict[str, float]:
    """Mean visible energy, resolution sigma/mean and shower maximum of one energy's showers."""
    geo = get(geometry)
    layers = layer_energies(cells)
    total = layers.sum(axis=1)
    mean = float(np.mean(total))
    return {"mean_mev": mean, "resolution": float(np.std(total) / mean) if mean > 0 else float("nan"),
            "shower_max_x0": shower_maximum(layers.mean(axis=0), geo.layer_depths_x0),
            "count": int(len(total))}


def relative(a: float, b: float) -> float:
    """(a - b) / b: the generated value relative to the simulated one."""
    return float((a - b) / b) if b != 0 else float("nan")


def compare(simulated: np.ndarray, generated: np.ndarray, geometry: str | Geometry,
            positions_sim: np.ndarray | None = None,
            positions_gen: np.ndarray | None = None) -> dict[str, Any]:
    """Generated against simulated showers of one energy: the relative differences of the observables."""
    geo = get(geometry)
    s, g = energy_summary(simulated, geo), energy_summary(generated, geo)
    os_, og = observables(simulated, geo, positions_sim), observables(generated, geo, positions_gen)
    corr_s = correlations(os_["layers"])
    corr_g = correlations(og["layers"])
    return {
        "simulated": s, "generated": g,
        "mean_energy_rel": relative(g["mean_mev"], s["mean_mev"]),
        "resolution_rel": relative(g["resolution"], s["resolution"]),
        "shower_max_rel": relative(g["shower_max_x0"], s["shower_max_x0"]),
        "depth_rel": relative(float(og["depth"].mean()), float(os_["depth"].mean())),
        "occupancy_rel": relative(float(og["occupancy"].mean()), float(os_["occupancy"].mean())),
        "layer_fraction_max_abs": float(np.max(np.abs(og["fractions"].mean(0)
                                                      - os_["fractions"].mean(0)))),
        "layer_correlation_max_abs": float(np.nanmax(np.abs(corr_g - corr_s))),
        "cog_width_rel": relative(float(np.nanmean(og["cog_x"].std(0))),
                                  float(np.nanmean(os_["cog_x"].std(0)))),
        "radial_fraction_max_abs": float(np.max(np.abs(
            og["radial"].sum(0) / og["radial"].sum() - os_["radial"].sum(0) / os_["radial"].sum()))),
    }


def correlations(layers: np.ndarray) -> np.ndarray:
    """Pearson correlations between the layer energies (nan where a layer never varies)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(np.asarray(layers, dtype=np.float64), rowvar=False)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank (Mann-Whitney) statistic, ties averaged."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("roc_auc needs both classes")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def classifier_inputs(cells: np.ndarray, energies_gev: np.ndarray) -> np.ndarray:
    """Cells over the primary energy plus log E: the CaloChallenge low-level classifier's view."""
    energies = np.asarray(energies_gev, dtype=np.float64).reshape(-1)
    flat = np.asarray(cells, dtype=np.float64).reshape(len(energies), -1) / energies[:, None]
    return np.column_stack([flat, np.log(energies)]).astype(np.float32)


def high_level_features(cells: np.ndarray, energies_gev: np.ndarray,
                        geometry: str | Geometry) -> np.ndarray:
    """Per shower: visible total / E, log E and, per layer, log energy, occupancy, centre and width.

    The CaloChallenge high-level classifier's view (layer energies, centres
    of energy and widths) plus the sparsity of every layer (hit cells, as
    the CMS HGCAL challenge adds): 2 + 6 x layers numbers.
    """
    cells = np.asarray(cells, dtype=np.float64)
    energies = np.asarray(energies_gev, dtype=np.float64).reshape(-1)
    layers = layer_energies(cells)
    cx, cy, wx, wy = layer_centres_and_widths(cells, geometry)
    hits = (cells > OCCUPANCY_THRESHOLD_MEV).sum(axis=(2, 3))
    total = layers.sum(axis=1) / (1000.0 * energies)
    return np.column_stack([total, np.log(energies), np.log10(layers + 1e-3), hits, cx, cy,
                            wx, wy]).astype(np.float32)


def high_level_groups(layers: int) -> dict[str, list[int]]:
    """The columns of ``high_level_features`` by what they describe, each with log E."""
    return {"layer energies": [0, 1, *range(2, 2 + layers)],
            "hit cells": [1, *range(2 + layers, 2 + 2 * layers)],
            "centres": [1, *range(2 + 2 * layers, 2 + 4 * layers)],
            "widths": [1, *range(2 + 4 * layers, 2 + 6 * layers)]}


LAYER_FEATURES = ("log10 energy", "hits", "centre x", "centre y", "width x", "width y")


def layer_comparison(simulated: np.ndarray, generated: np.ndarray, energies_gev: np.ndarray,
                     geometry: str | Geometry) -> list[dict[str, Any]]:
    """Per layer, what tells the high-level classifier's features apart.

    For each of ``LAYER_FEATURES``: ``shift``, the generated mean minus the
    simulated, in units of the simulated spread (a shift of 1 alone gives an
    AUC of ~0.76), and ``spread_ratio``, generated spread over simulated; and
    ``hits_energy_corr``, the correlation of the hit count with the log
    layer energy in each sample (how much the firing follows the energy).
    Both samples at the same energies (``energies_gev``, one per shower).
    """
    layers = get(geometry).layers
    found = [high_level_features(c, energies_gev, geometry).astype(np.float64)
             for c in (simulated, generated)]
    rows = []
    for layer in range(layers):
        columns = [2 + layer + k * layers for k in range(len(LAYER_FEATURES))]
        row: dict[str, Any] = {"layer": layer}
        for name, column in zip(LAYER_FEATURES, columns, strict=True):
            sim, gen = found[0][:, column], found[1][:, column]
            spread = max(float(sim.std()), 1e-9)
            row[name] = {"shift": float((gen.mean() - sim.mean()) / spread),
                         "spread_ratio": float(gen.std() / spread)}
        row["hits_energy_corr"] = {
            which: float(np.corrcoef(f[:, columns[1]], f[:, columns[0]])[0, 1])
            if f[:, columns[1]].std() > 0 and f[:, columns[0]].std() > 0 else 0.0
            for which, f in zip(("simulated", "generated"), found, strict=True)}
        rows.append(row)
    return rows


def standardise(train: np.ndarray, *others: np.ndarray,
                floor_quantile: float = 0.05) -> list[np.ndarray]:
    """Subtract the training mean, divide by the training spread, floored.

    A feature (a far halo cell) that fired a few times in the training part
    has a tiny spread; divided by it, one hit in the validation part would be
    a value of 10^3-10^4 and would swamp the network. Its spread is therefore
    raised to the ``floor_quantile`` of all features' spreads.
    """
    mean, spread = train.mean(axis=0), train.std(axis=0)
    positive = spread[spread > 0]
    floor = float(np.quantile(positive, floor_quantile)) if len(positive) else 1.0
    spread = np.maximum(spread, floor)
    return [((a - mean) / spread).astype(np.float32) for a in (train, *others)]


def classifier_auc(simulated: np.ndarray, generated: np.ndarray, *, epochs: int = 30,
                   seed: int = 0, hidden: int = 512, batch_size: int = 256,
                   learning_rate: float = 2e-4) -> dict[str, float]:
    """Train a 2x512 LeakyReLU network to separate the two samples; AUC on a held-out 30 %.

    ``simulated`` and ``generated`` are feature arrays (n, d) (see
    ``classifier_inputs``, ``high_level_features``), standardised on the
    training half (``standardise``). The epoch with the lowest validation
    loss is kept, as in the CaloChallenge evaluation, so overtraining cannot
    lower the AUC; that loss is returned too: above ln 2 = 0.693 the network
    learnt nothing that generalises. 0.5: indistinguishable; 1: always told apart.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    x = np.concatenate([simulated, generated]).astype(np.float32)
    y = np.concatenate([np.zeros(len(simulated)), np.ones(len(generated))]).astype(np.float32)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_train, n_val = int(0.5 * len(x)), int(0.2 * len(x))
    x = np.concatenate(standardise(x[:n_train], x[n_train:]))
    xt = torch.as_tensor(x)
    yt = torch.as_tensor(y)
    net = tnn.Sequential(tnn.Linear(x.shape[1], hidden), tnn.LeakyReLU(0.2),
                         tnn.Linear(hidden, hidden), tnn.LeakyReLU(0.2), tnn.Linear(hidden, 1))
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    loss_fn = tnn.BCEWithLogitsLoss()
    train_x, train_y = xt[:n_train], yt[:n_train]
    val_x, val_y = xt[n_train:n_train + n_val], yt[n_train:n_train + n_val]
    test_x, test_y = xt[n_train + n_val:], yt[n_train + n_val:]
    best, best_state = float("inf"), None
    for _ in range(epochs):
        net.train()
        permutation = torch.randperm(n_train)
        for begin in range(0, n_train, batch_size):
            index = permutation[begin:begin + batch_size]
            loss = loss_fn(net(train_x[index]).squeeze(1), train_y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net(val_x).squeeze(1), val_y))
        if val_loss < best:
            best, best_state = val_loss, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    with torch.no_grad():
        scores = net(test_x).squeeze(1).numpy()
    return {"auc": roc_auc(test_y.numpy(), scores), "validation_loss": best,
            "test_size": int(len(test_y))}


def classifier_test(simulated: np.ndarray, generated: np.ndarray, energies_gev: np.ndarray,
                    geometry: str | Geometry, *, epochs: int = 30, seed: int = 0
                    ) -> dict[str, Any]:
    """Both CaloChallenge classifiers, on the cells and on the high-level features; the worse counts.

    With a few thousand showers the network on a thousand cells overfits
    before it learns sums over them (a 20 % deficit of hits can hide in
    it); the one on 2 + 6 x layers features sees such sums directly. The
    figure (``auc``) is the larger of the two AUCs. ``high_level["by_group"]``
    holds the AUCs of the same network on each group of high-level features
    (``high_level_groups``): which of them tell the samples apart.
    """
    low = classifier_auc(classifier_inputs(simulated, energies_gev),
                         classifier_inputs(generated, energies_gev), epochs=epochs, seed=seed)
    high_simulated = high_level_features(simulated, energies_gev, geometry)
    high_generated = high_level_features(generated, energies_gev, geometry)
    high = classifier_auc(high_simulated, high_generated, epochs=epochs, seed=seed)
    high["by_group"] = {name: classifier_auc(high_simulated[:, columns],
                                             high_generated[:, columns],
                                             epochs=epochs, seed=seed)["auc"]
                        for name, columns in high_level_groups(get(geometry).layers).items()}
    return {"auc": max(low["auc"], high["auc"]), "low_level": low, "high_level": high}


FIDELITY_TARGETS = {"classifier_auc": 0.75, "mean_energy_rel": 0.02, "resolution_rel": 0.10,
                    "shower_max_rel": 0.05}


def fidelity_verdict(figures: dict[str, float]) -> dict[str, bool]:
    """Which of the issue's fidelity targets at the held-out energy are met."""
    return {"classifier_auc": figures["classifier_auc"] <= FIDELITY_TARGETS["classifier_auc"],
            **{key: abs(figures[key]) <= FIDELITY_TARGETS[key]
               for key in ("mean_energy_rel", "resolution_rel", "shower_max_rel")}}
