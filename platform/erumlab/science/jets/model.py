"""The 16-64-32-32-5 jet tagger of the hls4ml reference: architecture, training, pruning, QAT.

The network is the one Duarte et al. (arXiv:1804.06913) put on an FPGA:
16 inputs, three hidden layers of 64, 32 and 32 ReLU units and 5 outputs,
1088 + 2080 + 1056 + 165 = 4,389 parameters. ``JetTagger`` holds it as
``net`` (a plain Linear/ReLU ``Sequential``, the part that hls4ml converts
and ``fixedpoint`` emulates) behind a standardisation with the training
set's means and standard deviations stored as buffers: the zoo's model takes
the 16 raw features and returns 5 logits, while on an FPGA the
standardisation would be folded into the upstream feature computation.

    from erumlab.science.jets import model
    tagger = model.build_tagger()                         # 4,389 parameters
    result = model.train(tagger, x_train, y_train, x_val, y_val, epochs=30)
    model.prune(tagger, 0.75, x_train, y_train, x_val, y_val)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn as tnn

from erumlab.science import nn
from erumlab.science.jets.fixedpoint import FixedPointMLP, FixedType, QuantizedLinearStack

REFERENCE_LAYERS = (16, 64, 32, 32, 5)
REFERENCE_PARAMETERS = 4389


@nn.register("jet-tagger")
class JetTagger(tnn.Module):
    """Standardise the features, then Linear/ReLU layers; returns logits (softmax them for scores).

    ``layers`` lists every width from the inputs to the outputs (the reference:
    [16, 64, 32, 32, 5]). The ``mean`` and ``scale`` buffers are set from the
    training sample by ``train``; they travel with the weights.
    """

    def __init__(self, *, layers: list[int] | None = None) -> None:
        super().__init__()
        widths = list(layers or REFERENCE_LAYERS)
        if len(widths) < 2 or any(int(w) < 1 for w in widths):
            raise ValueError("layers: at least an input and an output width, all positive")
        self.register_buffer("mean", torch.zeros(widths[0]))
        self.register_buffer("scale", torch.ones(widths[0]))
        stack: list[tnn.Module] = []
        for index, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            stack.append(tnn.Linear(int(a), int(b)))
            if index < len(widths) - 2:
                stack.append(tnn.ReLU())
        self.net = tnn.Sequential(*stack)

    @property
    def widths(self) -> list[int]:
        linears = [m for m in self.net if isinstance(m, tnn.Linear)]
        return [linears[0].in_features] + [m.out_features for m in linears]

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardise(features))


@nn.register("jet-tagger-fixed")
class FixedPointJetTagger(JetTagger):
    """The tagger as the FPGA computes it: ``forward`` runs the bit-accurate ap_fixed emulation.

    Weights are stored already on the ``precision`` grid (so the file says
    what the hardware holds); the standardisation stays in float, as the
    upstream feature computation would do it. Not differentiable.
    """

    def __init__(self, *, layers: list[int] | None = None,
                 precision: str = "ap_fixed<16,6>") -> None:
        super().__init__(layers=layers)
        self.precision = str(FixedType.parse(precision))

    def emulator(self) -> FixedPointMLP:
        return FixedPointMLP.from_torch(self.net, self.precision)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.standardise(features).detach().cpu().numpy()
        return torch.as_tensor(self.emulator().predict(x), dtype=torch.float32)


def to_fixed_point_model(model: JetTagger, precision: str) -> FixedPointJetTagger:
    """A ``jet-tagger-fixed`` copy of ``model`` with its weights rounded onto the type's grid."""
    t = FixedType.parse(precision)
    fixed = nn.build("jet-tagger-fixed", {"layers": model.widths, "precision": str(t)})
    assert isinstance(fixed, FixedPointJetTagger)
    fixed.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer in fixed.net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(torch.as_tensor(t.round_trip(layer.weight.numpy())))
                layer.bias.copy_(torch.as_tensor(t.round_trip(layer.bias.numpy())))
    return fixed.eval()


def build_tagger(layers: list[int] | None = None, *, seed: int | None = None) -> JetTagger:
    """A fresh tagger; the reference architecture is checked to have 4,389 parameters."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = nn.build("jet-tagger", {"layers": list(layers or REFERENCE_LAYERS)})
    assert isinstance(model, JetTagger)
    if list(model.widths) == list(REFERENCE_LAYERS):
        count = nn.parameter_count(model)
        if count != REFERENCE_PARAMETERS:
            raise AssertionError(f"the reference network has {REFERENCE_PARAMETERS} "
                                 f"parameters, this one {count}")
    return model


def plain_sequential(model: JetTagger) -> tnn.Sequential:
    """The same network as a bare torch.nn.Sequential on standardised inputs (for comparisons)."""
    return copy.deepcopy(model.net)


def set_standardisation(model: JetTagger, x_train: np.ndarray) -> None:
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
    model.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))


def standardised(model: JetTagger, x: np.ndarray) -> np.ndarray:
    """The network's actual inputs, as float32 (what an FPGA would receive)."""
    with torch.no_grad():
        return model.standardise(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()


def predict_logits(model: tnn.Module, x: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch_size):
            out.append(model(torch.as_tensor(np.asarray(x[s:s + batch_size],
                                                        dtype=np.float32))).numpy())
    return np.concatenate(out) if out else np.zeros((0, 5), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# Training ------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    model: JetTagger
    epoch_losses: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"epoch_losses": self.epoch_losses, "val_accuracy": self.val_accuracy,
                "best_epoch": self.best_epoch, "seconds": self.seconds}


class _Masks:
    """Zeroed weights stay zero: the mask is applied after every optimiser step."""

    def __init__(self, masks: dict[tnn.Linear, torch.Tensor] | None = None) -> None:
        self.masks = masks or {}

    def apply(self) -> None:
        with torch.no_grad():
            for layer, mask in self.masks.items():
                layer.weight.mul_(mask)


def _fit(model: JetTagger, forward: tnn.Module, x_train: np.ndarray, y_train: np.ndarray,
         x_val: np.ndarray, y_val: np.ndarray, *, epochs: int, batch_size: int,
         learning_rate: float, l1: float, seed: int, masks: _Masks | None = None
         ) -> TrainingResult:
    """Adam on cross-entropy; keeps the weights of the epoch with the best validation loss."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
    targets = torch.as_tensor(np.asarray(y_train, dtype=np.int64))
    val_in = torch.as_tensor(np.asarray(x_val, dtype=np.float32))
    val_t = torch.as_tensor(np.asarray(y_val, dtype=np.int64))
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_function = tnn.CrossEntropyLoss()
    weights = [m.weight for m in model.net if isinstance(m, tnn.Linear)]
    result = TrainingResult(model=model)
    best = (float("inf"), copy.deepcopy(model.state_dict()))
    masks = masks or _Masks()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(inputs.shape[0], generator=generator)
        total = 0.0
        for s in range(0, order.numel(), batch_size):
            batch = order[s:s + batch_size]
            optimiser.zero_grad()
            loss = loss_function(forward(inputs[batch]), targets[batch])
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in weights)
            loss.backward()
            optimiser.step()
            masks.apply()
            total += loss.item() * batch.numel()
        model.eval()
        with torch.no_grad():
            logits = forward(val_in)
            val_loss = float(loss_function(logits, val_t))
            accuracy = float((logits.argmax(1) == val_t).float().mean())
        result.epoch_losses.append(total / max(1, order.numel()))
        result.val_accuracy.append(accuracy)
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()))
            result.best_epoch = epoch + 1
    model.load_state_dict(best[1])
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def train(model: JetTagger, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
          y_val: np.ndarray, *, epochs: int = 30, batch_size: int = 256,
          learning_rate: float = 2e-3, l1: float = 0.0, seed: int = 0) -> TrainingResult:
    """Train from the raw features: the standardisation is set from ``x_train`` first."""
    set_standardisation(model, np.asarray(x_train, dtype=np.float64))
    return _fit(model, model, x_train, y_train, x_val, y_val, epochs=epochs,
                batch_size=batch_size, learning_rate=learning_rate, l1=l1, seed=seed)


class _QuantisedTagger(tnn.Module):
    def __init__(self, model: JetTagger, precision: FixedType) -> None:
        super().__init__()
        self.model = model
        self.quantised = QuantizedLinearStack(model.net, precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantised(self.model.standardise(x))


def quantisation_aware_training(model: JetTagger, precision: FixedType | str,
                                x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                                y_val: np.ndarray, *, epochs: int = 10, batch_size: int = 256,
                                learning_rate: float = 5e-4, seed: int = 0) -> TrainingResult:
    """Fine-tune ``model`` (in place) while its forward pass sees ap_fixed weights and outputs.

    Straight-through estimator: the forward pass rounds weights, inputs and
    layer outputs onto the type's grid (with its rounding and overflow modes),
    the backward pass treats rounding as the identity. Zero weights (from
    pruning) stay zero. The standardisation is kept.
    """
    t = FixedType.parse(precision)
    wrapper = _QuantisedTagger(model, t)
    masks = _Masks({m: (m.weight != 0).float() for m in model.net if isinstance(m, tnn.Linear)}
                   if sparsity(model) > 0 else None)
    return _fit(model, wrapper, x_train, y_train, x_val, y_val, epochs=epochs,
                batch_size=batch_size, learning_rate=learning_rate, l1=0.0, seed=seed,
                masks=masks)


# Pruning ----------------------------------------------------------------------------------


def sparsity(model: JetTagger) -> float:
    """Fraction of zero weights over the Linear layers (biases not counted)."""
    weights = [m.weight for m in model.net if isinstance(m, tnn.Linear)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total)


def nonzero_weights(model: JetTagger) -> int:
    return int(sum(int((m.weight != 0).sum()) for m in model.net if isinstance(m, tnn.Linear)))


def prune(model: JetTagger, target: float, x_train: np.ndarray, y_train: np.ndarray,
          x_val: np.ndarray, y_val: np.ndarray, *, steps: int = 4, epochs_per_step: int = 5,
          batch_size: int = 256, learning_rate: float = 1e-3, seed: int = 0
          ) -> list[dict[str, float]]:
    """Iterative magnitude pruning of every Linear layer to ``target`` sparsity (in place).

    The sparsity rises linearly over ``steps`` rounds; each round zeroes the
    smallest-magnitude weights of each layer (each layer to the same fraction,
    so no layer is cut off entirely) and retrains for ``epochs_per_step``
    epochs with the zeroed weights held at zero. Returns each round's
    sparsity and validation accuracy.
    """
    if not 0.0 <= target < 1.0:
        raise ValueError("target sparsity must be in [0, 1)")
    history = []
    linears = [m for m in model.net if isinstance(m, tnn.Linear)]
    for step in range(1, steps + 1):
        fraction = target * step / steps
        masks = {}
        for layer in linears:
            magnitude = layer.weight.detach().abs().flatten()
            drop = int(round(fraction * magnitude.numel()))
            mask = torch.ones_like(magnitude)
            if drop:
                mask[torch.argsort(magnitude, stable=True)[:drop]] = 0.0
            masks[layer] = mask.view_as(layer.weight)
        pruning = _Masks(masks)
        pruning.apply()
        result = _fit(model, model, x_train, y_train, x_val, y_val, epochs=epochs_per_step,
                      batch_size=batch_size, learning_rate=learning_rate, l1=0.0,
                      seed=seed + step, masks=pruning)
        history.append({"step": step, "sparsity": sparsity(model),
                        "val_accuracy": max(result.val_accuracy) if result.val_accuracy else 0.0})
    return history
