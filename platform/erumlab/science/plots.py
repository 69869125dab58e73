"""Figures shared by notebooks, jobs and the portal (matplotlib, no display needed)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # servers and workers have no display

import matplotlib.pyplot as plt  # noqa: E402


def curve_png(curve: dict[str, Any], *, title: str = "", value: float | None = None) -> bytes:
    """A metric's curve as PNG: ROC (with the diagonal), a line, or a histogram."""
    x, y = curve["x"], curve["y"]
    kind = curve.get("kind", "line")
    figure, axes = plt.subplots(figsize=(5.0, 3.6), dpi=100)
    try:
        if kind == "histogram":
            axes.stairs(y, x, fill=True, alpha=0.6)
        else:
            axes.plot(x, y, marker="." if len(x) <= 40 else None, linewidth=1.6)
        if kind == "roc":
            axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8,
                      label="random")
            axes.set_xlim(0, 1)
            axes.set_ylim(0, 1.01)
            axes.legend(loc="lower right", frameon=False)
        axes.set_xlabel(curve.get("x_label") or "x")
        axes.set_ylabel(curve.get("y_label") or "y")
        label = title if value is None else f"{title} = {value:.4g}"
        axes.set_title(label, fontsize=10)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)
