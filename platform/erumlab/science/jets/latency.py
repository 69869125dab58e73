"""Latency of the tagger as a fully parallel FPGA design, estimated from its structure.

hls4ml's latency strategy with reuse factor 1 gives every multiplication its
own multiplier and pipelines the whole network, so the latency is the depth
of the longest path in clock cycles, not a count of operations. Per dense
layer that path is:

1. one multiply (``multiply_clocks``, 1 for a DSP or LUT multiplier of
   16-bit operands at 200 MHz);
2. the adder tree that sums the products and the bias: with ``f`` non-zero
   weights feeding the neuron with the most inputs it has
   ceil(log2(f + 1)) levels, and about ``adds_per_clock`` levels of
   16-32-bit additions fit in one clock period (5 ns at 200 MHz) on current
   Xilinx carry chains, so ceil(levels / adds_per_clock) clocks;
3. the activation: ReLU is a comparison registered in ``activation_clocks``.

The output stage is either a softmax built from lookup tables as hls4ml does
(exp table, adder tree over the classes, inverse table, multiply: 1 + tree +
1 + 1 clocks) or an arg-max comparator tree (what a trigger decision needs),
plus ``io_clocks`` to register inputs and outputs. Pruned weights shorten the
adder trees (zero weights are not instantiated) and remove multipliers.

This is a model, not a synthesis result: HLS schedules operations into clock
cycles itself and its numbers depend on the device, widths and tool version.
The reference reports 75-150 ns (15-30 clocks at 200 MHz) for this network
in Duarte et al. 2018 and 14 clocks in the hls4ml tutorial on a U250.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

REFERENCE_NS = (75.0, 150.0)
REFERENCE_TUTORIAL_CLOCKS = 14


@dataclass
class LatencyEstimate:
    clock_mhz: float
    clocks: int
    per_layer: list[dict[str, int]] = field(default_factory=list)
    output_stage: dict[str, int] = field(default_factory=dict)
    multiplications: int = 0

    @property
    def ns(self) -> float:
        return self.clocks * 1000.0 / self.clock_mhz

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ns": self.ns}


def _tree_clocks(inputs: int, adds_per_clock: int) -> int:
    levels = math.ceil(math.log2(inputs)) if inputs > 1 else 0
    return math.ceil(levels / adds_per_clock)


def estimate(fan_in: list[int], *, classes: int | None = None, multiplications: int = 0,
             clock_mhz: float = 200.0, multiply_clocks: int = 1, adds_per_clock: int = 2,
             activation_clocks: int = 1, output: str = "softmax", io_clocks: int = 1
             ) -> LatencyEstimate:
    """Clock cycles of the fully parallel design.

    ``fan_in`` is, per dense layer, the largest number of non-zero weights
    into one neuron (the layer's input width when nothing is pruned);
    ReLU follows every layer but the last. ``output`` is "softmax", "argmax"
    or "none" (logits out); ``classes`` is the output width (for the
    output stage's trees).
    """
    if not fan_in or any(f < 0 for f in fan_in):
        raise ValueError("fan_in: one non-negative width per layer")
    if output not in ("softmax", "argmax", "none"):
        raise ValueError("output: softmax, argmax or none")
    per_layer = []
    total = 2 * io_clocks
    for index, f in enumerate(fan_in):
        tree = _tree_clocks(f + 1, adds_per_clock)  # the bias is one more summand
        activation = activation_clocks if index < len(fan_in) - 1 else 0
        clocks = (multiply_clocks if f else 0) + tree + activation
        per_layer.append({"fan_in": f, "multiply": multiply_clocks if f else 0,
                          "adder_tree": tree, "activation": activation, "clocks": clocks})
        total += clocks
    stage: dict[str, int] = {}
    n = classes or 1
    if output == "softmax":
        stage = {"exp_table": 1, "sum_tree": _tree_clocks(n, adds_per_clock),
                 "inverse_table": 1, "multiply": 1}
    elif output == "argmax":
        stage = {"comparator_tree": max(1, _tree_clocks(n, adds_per_clock))}
    total += sum(stage.values())
    return LatencyEstimate(clock_mhz=clock_mhz, clocks=total, per_layer=per_layer,
                           output_stage=stage, multiplications=multiplications)


def reference_fan_in(layers: list[int] | tuple[int, ...]) -> list[int]:
    """Dense fan-in of a Linear stack of these widths (nothing pruned)."""
    return list(layers[:-1])
