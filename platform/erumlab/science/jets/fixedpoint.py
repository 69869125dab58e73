"""Bit-accurate emulation of ap_fixed<W,I> arithmetic and of a fully connected network in it.

An FPGA trigger does not compute in floating point: hls4ml turns every
weight, bias, activation and accumulator into Xilinx's ``ap_fixed<W,I>``, a
W-bit two's-complement integer q read as q * 2^-(W-I). I counts the integer
bits including the sign, so ap_fixed<16,6> covers [-32, 32) in steps of
2^-10. Whether the network still tags jets as well in that arithmetic is the
question this module answers, so it must reproduce the hardware's numbers
exactly, not approximately: values are held as int64 multiples of the LSB and
every conversion applies the type's quantisation and overflow modes
explicitly:

- rounding ``TRN`` (AP_TRN, the default: floor, towards minus infinity) or
  ``RND`` (AP_RND: to the nearest grid point, ties towards plus infinity);
- overflow ``WRAP`` (AP_WRAP, the default: keep the low W bits, two's
  complement) or ``SAT`` (AP_SAT: clamp to the largest/smallest value).

``FixedPointMLP`` runs a Linear/ReLU stack as hls4ml's latency-strategy dense
layer does (nnet_dense_latency.h): each product of an input and a weight is
computed at full precision and converted to the accumulator type
(``mult[i] = a * w`` with ``mult`` of ``accum_t``), the accumulator starts
from the bias converted to ``accum_t`` and adds the products in input order
(with ``SAT`` each partial sum saturates, so the order matters and is kept),
and the sum is converted to the layer's result type; ReLU then converts to its
own output type. Softmax is not emulated: it is monotonic, so the tagger's
decision (the arg-max) is that of the last layer's outputs, and the scores
are the softmax of those emulated logits computed in floating point.

    from erumlab.science.jets import fixedpoint
    t = fixedpoint.FixedType.parse("ap_fixed<16,6,AP_RND,AP_SAT>")
    t.quantize(np.array([0.1, 40.0]))          # int64 multiples of 2^-10: [102, 32767]
    emulated = fixedpoint.FixedPointMLP.from_torch(model.net, "ap_fixed<16,6>")
    logits = emulated.predict(standardised_features)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn as tnn

ROUNDING = ("TRN", "RND")
OVERFLOW = ("WRAP", "SAT")
MAX_WIDTH = 32  # products of two 32-bit values still fit an int64
_PATTERN = re.compile(
    r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(AP_\w+)\s*)?(?:,\s*(AP_\w+)\s*)?"
    r"(?:,\s*\d+\s*)?>\s*$")


@dataclass(frozen=True)
class FixedType:
    """ap_fixed<width, integer> (signed) or ap_ufixed, with its rounding and overflow modes."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width {self.width}: between 1 and {MAX_WIDTH} bits")
        if self.integer > self.width + 32 or self.integer < -32:
            raise ValueError(f"integer bits {self.integer} out of range for width {self.width}")
        if self.rounding not in ROUNDING:
            raise ValueError(f"rounding {self.rounding!r}: one of {', '.join(ROUNDING)}")
        if self.overflow not in OVERFLOW:
            raise ValueError(f"overflow {self.overflow!r}: one of {', '.join(OVERFLOW)}")

    @classmethod
    def parse(cls, text: str | FixedType) -> FixedType:
        """``ap_fixed<16,6>``, ``ap_fixed<16,6,AP_RND,AP_SAT>`` or ``ap_ufixed<8,0>``."""
        if isinstance(text, FixedType):
            return text
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"{text!r} is not an ap_fixed<W,I[,rounding[,overflow]]> type")
        unsigned, width, integer, rounding, overflow = match.groups()
        modes = {"AP_TRN": "TRN", "AP_RND": "RND", "AP_WRAP": "WRAP", "AP_SAT": "SAT"}
        for mode in (rounding, overflow):
            if mode and mode not in modes:
                raise ValueError(f"{text!r}: mode {mode} is not emulated "
                                 f"(AP_TRN, AP_RND, AP_WRAP, AP_SAT are)")
        return cls(int(width), int(integer), signed=not unsigned,
                   rounding=modes[rounding] if rounding else "TRN",
                   overflow=modes[overflow] if overflow else "WRAP")

    def __str__(self) -> str:
        base = f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}"
        if self.rounding == "TRN" and self.overflow == "WRAP":
            return base + ">"
        return base + f",AP_{self.rounding},AP_{self.overflow}>"

    @property
    def fraction(self) -> int:
        """Fractional bits: the LSB is 2^-fraction."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.fraction

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        return self.min_int * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_int * self.lsb

    def with_modes(self, rounding: str | None = None, overflow: str | None = None) -> FixedType:
        return replace(self, rounding=rounding or self.rounding, overflow=overflow or self.overflow)

    # Conversions ---------------------------------------------------------------------

    def handle_overflow(self, q: np.ndarray) -> np.ndarray:
        """Integers on this type's grid brought into its W bits (wrapped or saturated)."""
        q = np.asarray(q, dtype=np.int64)
        if self.overflow == "SAT":
            return np.clip(q, self.min_int, self.max_int)
        span = np.int64(1) << np.int64(self.width)
        return (q - self.min_int) % span + self.min_int

    def requantize(self, q: np.ndarray, fraction: int) -> np.ndarray:
        """int64 values with ``fraction`` fractional bits, converted to this type exactly.

        Dropping bits is an arithmetic right shift (floor) for TRN, and adds half
        an LSB of the target first for RND; adding bits is a left shift (exact).
        """
        q = np.asarray(q, dtype=np.int64)
        shift = fraction - self.fraction
        if shift > 0:
            if self.rounding == "RND":
                q = q + (np.int64(1) << np.int64(shift - 1))
            q = q >> np.int64(shift)
        elif shift < 0:
            q = q << np.int64(-shift)
        return self.handle_overflow(q)

    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """Real values (float32 or float64) to int64 multiples of the LSB.

        Scaling by 2^fraction is exact in float64, so floor (TRN) is exact; for
        RND, x * 2^F + 1/2 is exact whenever x is a float32 or has fewer than
        about 50 significant bits below the LSB, which covers every value a
        network produces.
        """
        scaled = np.ldexp(np.asarray(x, dtype=np.float64), self.fraction)
        if not np.all(np.isfinite(scaled)):
            raise ValueError("cannot quantise NaN or infinite values")
        if self.rounding == "RND":
            scaled = scaled + 0.5
        floored = np.floor(scaled)
        # Beyond int64 nothing is representable anyway: saturate before the cast, then
        # apply the real overflow mode (wrap keeps the low bits of the true integer).
        limit = float(2**62)
        big = np.abs(floored) >= limit
        if np.any(big) and self.overflow == "WRAP":
            # Exact low bits of huge floats: reduce modulo 2^W in float64 (exact for
            # integers, as fmod is).
            floored = np.where(big, np.fmod(floored, float(2**self.width)), floored)
        return self.handle_overflow(np.clip(floored, -limit, limit).astype(np.int64))

    def to_float(self, q: np.ndarray) -> np.ndarray:
        return np.ldexp(np.asarray(q, dtype=np.float64), -self.fraction)

    def round_trip(self, x: np.ndarray | float) -> np.ndarray:
        """What a real value becomes when stored in this type."""
        return self.to_float(self.quantize(x))


def fixed(width: int, integer: int, rounding: str = "TRN", overflow: str = "WRAP") -> FixedType:
    return FixedType(width, integer, rounding=rounding, overflow=overflow)


# The network ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerPrecision:
    """The types hls4ml assigns to one dense layer (all equal to the model default unless set)."""

    weight: FixedType
    bias: FixedType
    accum: FixedType
    result: FixedType
    activation: FixedType  # the ReLU's output type (unused after the last layer)

    @classmethod
    def uniform(cls, precision: FixedType | str) -> LayerPrecision:
        t = FixedType.parse(precision)
        return cls(t, t, t, t, t)


@dataclass
class FixedLayer:
    weight_q: np.ndarray  # int64 [n_in, n_out], hls4ml's layout (index = i * n_out + j)
    bias_q: np.ndarray  # int64 [n_out]
    precision: LayerPrecision
    relu: bool

    @property
    def nonzero_weights(self) -> int:
        return int(np.count_nonzero(self.weight_q))

    def forward(self, x_q: np.ndarray, x_type: FixedType) -> tuple[np.ndarray, FixedType]:
        p = self.precision
        frac_in = x_type.fraction + p.weight.fraction
        products = x_q[:, :, None] * self.weight_q[None, :, :]  # exact: < 2^62
        mult = p.accum.requantize(products, frac_in)
        acc = np.broadcast_to(p.accum.requantize(self.bias_q, p.bias.fraction),
                              (x_q.shape[0], self.bias_q.size)).copy()
        if p.accum.overflow == "WRAP":
            # Wrapping is arithmetic modulo 2^W: wrapping once at the end is the same.
            acc = p.accum.handle_overflow(acc + mult.sum(axis=1))
        else:  # saturation at every addition, in hls4ml's order (input index ascending)
            for i in range(mult.shape[1]):
                acc = p.accum.handle_overflow(acc + mult[:, i, :])
        out = p.result.requantize(acc, p.accum.fraction)
        if not self.relu:
            return out, p.result
        out = np.where(out > 0, out, 0)
        return p.activation.requantize(out, p.result.fraction), p.activation


class FixedPointMLP:
    """A Linear(+ReLU) stack evaluated bit-accurately in ap_fixed arithmetic."""

    def __init__(self, layers: list[FixedLayer], input_type: FixedType) -> None:
        if not layers:
            raise ValueError("a network needs at least one layer")
        self.layers = layers
        self.input_type = input_type

    @classmethod
    def from_weights(cls, weights: Sequence[tuple[np.ndarray, np.ndarray]],
                     precision: FixedType | str | Sequence[LayerPrecision],
                     input_type: FixedType | str | None = None) -> FixedPointMLP:
        """From (weight [n_out, n_in], bias [n_out]) pairs as torch stores them.

        ReLU follows every layer but the last. ``precision`` is one type for
        everything (hls4ml's model granularity) or one ``LayerPrecision`` per layer.
        """
        if isinstance(precision, (str, FixedType)):
            per_layer = [LayerPrecision.uniform(precision)] * len(weights)
            default = FixedType.parse(precision)
        else:
            per_layer = list(precision)
            default = per_layer[0].result
        if len(per_layer) != len(weights):
            raise ValueError(f"{len(per_layer)} layer precisions for {len(weights)} layers")
        layers = []
        for index, ((w, b), p) in enumerate(zip(weights, per_layer, strict=True)):
            w = np.asarray(w, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            layers.append(FixedLayer(weight_q=p.weight.quantize(w.T), bias_q=p.bias.quantize(b),
                                     precision=p, relu=index < len(weights) - 1))
        return cls(layers, FixedType.parse(input_type) if input_type else default)

    @classmethod
    def from_torch(cls, module: tnn.Module, precision: FixedType | str | Sequence[LayerPrecision],
                   input_type: FixedType | str | None = None) -> FixedPointMLP:
        """From a module whose layers are Linear and ReLU alternating (ReLU after all but the last)."""
        linears = [m for m in module.modules() if isinstance(m, tnn.Linear)]
        kinds = [type(m) for m in module.modules()
                 if isinstance(m, (tnn.Linear, tnn.ReLU))]
        expected = [tnn.Linear, tnn.ReLU] * (len(linears) - 1) + [tnn.Linear]
        if kinds != expected:
            raise ValueError("only stacks of Linear layers with ReLU between them are emulated")
        pairs = [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()
                  if m.bias is not None else np.zeros(m.out_features)) for m in linears]
        return cls.from_weights(pairs, precision, input_type)

    @property
    def output_type(self) -> FixedType:
        return self.layers[-1].precision.result

    def forward_int(self, x: np.ndarray) -> np.ndarray:
        """Real inputs [batch, n_in] -> int64 outputs on the last layer's result grid."""
        q = self.input_type.quantize(np.asarray(x))
        t = self.input_type
        for layer in self.layers:
            q, t = layer.forward(q, t)
        return q

    def predict(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """The emulated outputs (logits) as float64, in batches to bound memory."""
        x = np.asarray(x)
        out = [self.output_type.to_float(self.forward_int(x[s:s + batch_size]))
               for s in range(0, x.shape[0], batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.layers[-1].bias_q.size))

    def nonzero_weights(self) -> int:
        """Multipliers a fully parallel design needs: weights that are not zero after quantisation."""
        return sum(layer.nonzero_weights for layer in self.layers)

    def fan_in(self) -> list[int]:
        """Per layer, the most non-zero weights feeding one output (sets the adder-tree depth)."""
        return [int(np.count_nonzero(layer.weight_q, axis=0).max(initial=0))
                for layer in self.layers]

    def describe(self) -> dict[str, Any]:
        return {"input": str(self.input_type),
                "layers": [{"weight": str(x.precision.weight), "bias": str(x.precision.bias),
                            "accum": str(x.precision.accum), "result": str(x.precision.result),
                            "relu": x.relu, "nonzero_weights": x.nonzero_weights}
                           for x in self.layers]}


# Quantisation-aware training: the same grid in the forward pass, the identity backwards ----


def fake_quantize(x: torch.Tensor, t: FixedType) -> torch.Tensor:
    """x rounded onto t's grid (with t's modes) in the forward pass; straight-through gradient.

    Saturating and wrapping differ for out-of-range values; training sees the
    type's real behaviour, so it learns to stay in range.
    """
    scaled = torch.ldexp(x.detach().double(), torch.tensor(t.fraction, dtype=torch.int32))
    if t.rounding == "RND":
        scaled = scaled + 0.5
    q = torch.floor(scaled)
    if t.overflow == "SAT":
        q = q.clamp(t.min_int, t.max_int)
    else:
        span = float(2**t.width)
        q = torch.remainder(q - t.min_int, span) + t.min_int
    value = torch.ldexp(q, torch.tensor(-t.fraction, dtype=torch.int32)).to(x.dtype)
    return x + (value - x).detach()


class QuantizedLinearStack(tnn.Module):
    """Wraps a Linear/ReLU stack so training sees ap_fixed weights, inputs and layer outputs."""

    def __init__(self, stack: tnn.Module, precision: FixedType | str) -> None:
        super().__init__()
        self.stack = stack
        self.type = FixedType.parse(precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = fake_quantize(x, self.type)
        for layer in self.stack:
            if isinstance(layer, tnn.Linear):
                w = fake_quantize(layer.weight, self.type)
                b = fake_quantize(layer.bias, self.type) if layer.bias is not None else None
                x = fake_quantize(torch.nn.functional.linear(x, w, b), self.type)
            else:
                x = layer(x)
        return x
