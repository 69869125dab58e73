"""The jet-tagger study as the template and the benchmark run it: float vs fixed point, pruned, QAT.

Keeping the steps here (rather than in the notebook) means the bench and the
job measure exactly the same thing, and that the tests exercise them.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from erumlab.science.jets import latency, metrics
from erumlab.science.jets.fixedpoint import FixedPointMLP, FixedType
from erumlab.science.jets.model import (  # noqa: F401  (re-exported for the template)
    FixedPointJetTagger,
    JetTagger,
    predict_logits,
    softmax,
    standardised,
    to_fixed_point_model,
)


@dataclass
class Evaluation:
    name: str
    precision: str  # "float" or the ap_fixed type
    accuracy: float
    auc: dict[str, float]
    nonzero_weights: int
    scores: np.ndarray = field(repr=False)

    def row(self) -> dict[str, Any]:
        width = 0 if self.precision == "float" else FixedType.parse(self.precision).width
        return {"variant": self.name, "precision": self.precision, "width": width,
                "accuracy": self.accuracy, "auc": self.auc,
                "nonzero_weights": self.nonzero_weights}


def evaluate(model: JetTagger, name: str, x_test: np.ndarray, y_test: np.ndarray,
             precisions: list[str], class_names: tuple[str, ...]) -> list[Evaluation]:
    """The model in float, then emulated in each precision, on the same test jets."""
    scores = softmax(predict_logits(model, x_test))
    summary = metrics.summary(y_test, scores, class_names)
    weights = int(sum(int((m.weight != 0).sum()) for m in model.net
                      if isinstance(m, torch.nn.Linear)))
    out = [Evaluation(name, "float", summary["accuracy"], summary["auc"], weights, scores)]
    x_std = standardised(model, x_test)
    for precision in precisions:
        emulator = FixedPointMLP.from_torch(model.net, precision)
        fixed_scores = softmax(emulator.predict(x_std))
        s = metrics.summary(y_test, fixed_scores, class_names)
        out.append(Evaluation(name, str(FixedType.parse(precision)), s["accuracy"], s["auc"],
                              emulator.nonzero_weights(), fixed_scores))
    return out


def throughput(model: torch.nn.Module, x: np.ndarray, *, batch_size: int = 4096,
               repeats: int = 5) -> float:
    """Jets per second of a torch module over ``x`` in batches (best of ``repeats``)."""
    inputs = torch.as_tensor(np.asarray(x, dtype=np.float32))
    model.eval()
    best = float("inf")
    with torch.no_grad():
        model(inputs[:batch_size])  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            for s in range(0, inputs.shape[0], batch_size):
                model(inputs[s:s + batch_size])
            best = min(best, time.perf_counter() - started)
    return inputs.shape[0] / best


def emulation_throughput(emulator: FixedPointMLP, x_standardised: np.ndarray, *,
                         batch_size: int = 2048, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        emulator.predict(x_standardised, batch_size=batch_size)
        best = min(best, time.perf_counter() - started)
    return x_standardised.shape[0] / best


def latency_of(model: JetTagger, precision: str | None = None, **options: Any
               ) -> latency.LatencyEstimate:
    """The fully parallel design's latency (non-zero weights after quantisation when given)."""
    if precision:
        emulator = FixedPointMLP.from_torch(model.net, precision)
        fan_in, mults = emulator.fan_in(), emulator.nonzero_weights()
    else:
        linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
        fan_in = [int((m.weight != 0).sum(dim=1).max()) for m in linears]
        mults = int(sum(int((m.weight != 0).sum()) for m in linears))
    return latency.estimate(fan_in, classes=model.widths[-1], multiplications=mults, **options)


def copy_model(model: JetTagger) -> JetTagger:
    return copy.deepcopy(model)
