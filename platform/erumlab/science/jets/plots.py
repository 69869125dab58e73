"""Figures of the jet-tagger example: ROC curves per class, confusion matrices, accuracy vs bits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from erumlab.science import plots as _backend  # noqa: F401  (selects the Agg backend)
from erumlab.science.jets.metrics import confusion_matrix, per_class_roc


def roc_curves(labels: np.ndarray, scored: dict[str, np.ndarray],
               class_names: Sequence[str]) -> Any:
    """One-versus-rest ROC per class; one line style per model (e.g. float vs ap_fixed<16,6>)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.0, 4.8))
    styles = ["-", "--", ":", "-."]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for m, (model_name, scores) in enumerate(scored.items()):
        for c, (fpr, tpr, auc) in enumerate(per_class_roc(labels, scores)):
            axes.plot(tpr, np.maximum(fpr, 1e-5), styles[m % len(styles)],
                      color=colours[c % len(colours)], linewidth=1.3,
                      label=f"{class_names[c]} {model_name} (AUC {auc:.3f})")
    axes.set_yscale("log")
    axes.set_xlabel("signal efficiency (true positive rate)")
    axes.set_ylabel("background efficiency (false positive rate)")
    axes.set_ylim(1e-4, 1.0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6.5, ncol=2, frameon=False)
    figure.tight_layout()
    return figure


def confusion(labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
              title: str) -> Any:
    import matplotlib.pyplot as plt

    matrix = confusion_matrix(labels, predicted, len(class_names))
    figure, axes = plt.subplots(figsize=(4.6, 4.0))
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            axes.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if matrix[i, j] > 0.5 else "black")
    axes.set_xticks(range(len(class_names)), class_names)
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure


def accuracy_vs_bits(rows: list[dict[str, Any]], float_accuracy: float) -> Any:
    """Accuracy against total width W, one line per variant (plain, pruned, QAT...)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.4, 3.8))
    def series(r: dict[str, Any]) -> str:
        # Types with non-default modes (e.g. AP_RND,AP_SAT) are a separate line.
        modes = r["precision"].split(",", 2)[2].rstrip(">") if r["precision"].count(",") > 1 else ""
        return r["variant"] + (f" ({modes})" if modes else "")

    for name in sorted({series(r) for r in rows}):
        chosen = sorted((r for r in rows if series(r) == name), key=lambda r: r["width"])
        axes.plot([r["width"] for r in chosen], [r["accuracy"] for r in chosen],
                  "o-" if len(chosen) > 1 else "s", label=name)
    axes.axhline(float_accuracy, color="k", linestyle="--", linewidth=0.9, label="float")
    axes.set_xlabel("total bits W of ap_fixed<W,I>")
    axes.set_ylabel("test accuracy")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return figure
