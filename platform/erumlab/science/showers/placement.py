"""Generation's placement of the hits on a CPU: one compiled pass per layer (numba).

``ShowerGenerator`` with ``flow_hits`` fires exactly N cells of each layer:
the N largest Gumbel keys, key = shape * exp(correction) / X (X = -log u a
standard exponential draw), each hit carrying its floor and a share of the rest
of the layer's energy in proportion to its shape (times X^-a with
``share_noise``). In PyTorch operations that takes a partial sort
(``topk``, with indices) and half a dozen passes over the batch's cells,
each streaming megabytes through the caches. Here each layer's 180 cells
stay in the first-level cache from the keys to the written energies, and
the N-th largest key is found in one pass over them, the N + 1 largest
kept in a small heap. The shapes and the exponentials of the corrections
still come from PyTorch's vectorised passes (computed here with scalar
exp they made the kernel slower than what it replaced).

The uniforms u are drawn here too (``draw_uniform``: the splitmix64 stream
of a seed, one number per cell, so the showers do not depend on the
threads), and most of them need no logarithm: a cell whose key cannot pass
the smallest of the N + 1 largest so far, m, is one with
X > w / m (w = shape * gain), i.e. u < exp(-w / m); since exp(-t) >= 1 - t,
u < 1 - w / m settles that without the logarithm (a hair of margin for
rounding). Away from the layer's core w / m is small and nearly all cells
are settled so; the logarithm is taken for the first N + 1 cells and the
few that might enter. That spares PyTorch's serial uniform generator and
its logarithm pass: generation 1.22x faster at 20 GeV (docs/examples/calo-wgan.md).

The same draw as the training path (``ShowerGenerator._place_hits``): given
the uniforms (``uniform``) or fed the ones drawn here (``uniforms``), it
gives the same showers (tested); on a GPU generation keeps the PyTorch
operations.
"""

from __future__ import annotations

import math

import numba
import numpy as np

SMALLEST_SHAPE = 1e-30  # as the PyTorch path's clamp: a cell of shape 0 still has a key
# The PyTorch path's clamps, applied here instead of in passes of their own: the gate head's
# centred correction within +-15 (so exp of it within these), uniforms within [1e-7, 1 - 1e-7]
# (a uniform of 0 would give an infinite draw)
GAIN_BOUNDS = (math.exp(-15.0), math.exp(15.0))
UNIFORM_BOUNDS = (1e-7, 1.0 - 1e-7)
# u below 1 - w / m less this cannot enter the heap; the margin covers the keys' float32
# rounding (a relative 1e-7 in a key moves u by at most 1e-7 / e)
SETTLED_MARGIN = 1e-6
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's increment
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = np.float32(1.0 / (1 << 24))


@numba.njit(cache=False, inline="always")
def draw_uniform(seed: np.uint64, index: np.uint64) -> np.float32:
    """The ``index``-th number of the splitmix64 stream of ``seed``, as a float32 uniform in
    (0, 1): its top 24 bits, centred in their interval."""
    z = np.uint64(seed) + (np.uint64(index) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (np.float32(z >> np.uint64(40)) + np.float32(0.5)) * _TO_UNIT


@numba.njit(parallel=True, cache=False)
def uniforms(seed: np.uint64, showers: int, layers: int, cells: int) -> np.ndarray:
    """(showers, layers, cells): the uniforms ``place_hits`` draws with ``seed``."""
    out = np.empty((showers, layers, cells), dtype=np.float32)
    per_shower = layers * cells
    for i in numba.prange(showers):
        for layer in range(layers):
            for c in range(cells):
                out[i, layer, c] = draw_uniform(
                    seed, np.uint64(i * per_shower + layer * cells + c))
    return out


@numba.njit(cache=False, inline="always")
def _sift_down(heap: np.ndarray, size: int, at: int) -> None:
    """Restore the min-heap below ``at`` (``heap[:size]``)."""
    value = heap[at]
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= value:
            break
        heap[at] = heap[child]
        at = child
    heap[at] = value


@numba.njit(parallel=True, cache=False)
def place_hits(shape: np.ndarray, gain: np.ndarray, uniform: np.ndarray, seed: np.uint64,
               counts: np.ndarray, floor: np.ndarray, rest: np.ndarray, power: np.ndarray,
               order: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (showers, layers, cells) with the placed hits' energies.

    ``shape`` (each layer's up to a factor), ``gain`` (exp of the gate head's
    centred correction; clamped here): (showers, layers, cells), the keys
    being shape * gain / X, X = -log u; ``uniform`` the u, of the same shape
    (clamped here), or empty: then drawn here from ``seed`` (``draw_uniform``,
    cell k of the batch's flattened cells the stream's k-th number);
    ``counts`` (showers, layers) the hits to fire; ``floor`` (showers, layers)
    what each hit carries at least; ``rest`` (showers, layers) what is shared
    among the hits; ``power`` (layers,) the exponent of the draw in the shares
    (0: none); ``order`` (cells,) the cells from a layer's middle outwards
    (any order gives the same showers; in this one the heap's smallest grows
    soonest, so the most cells are settled without a logarithm).
    """
    showers, layers, cells = shape.shape
    given = uniform.size > 0
    for i in numba.prange(showers):
        keys = np.empty(cells, dtype=np.float32)
        draws = np.empty(cells, dtype=np.float32)  # X, where it was taken
        heap = np.empty(cells + 1, dtype=np.float32)
        for layer in range(layers):
            n = counts[i, layer]
            if n <= 0:
                out[i, layer, :] = 0.0
                continue
            first = np.uint64((i * layers + layer) * cells)
            size = n + 1  # the heap: the n + 1 largest keys so far
            smallest = 0.0  # its smallest key (0: not yet full)
            inverse = math.inf
            for j in range(cells):
                c = order[j]
                u = uniform[i, layer, c] if given else draw_uniform(seed, first + np.uint64(c))
                u = min(max(u, UNIFORM_BOUNDS[0]), UNIFORM_BOUNDS[1])
                weight = (max(shape[i, layer, c], SMALLEST_SHAPE)
                          * min(max(gain[i, layer, c], GAIN_BOUNDS[0]), GAIN_BOUNDS[1]))
                if j >= size and u < 1.0 - weight * inverse - SETTLED_MARGIN:
                    keys[c] = 0.0  # its key is below the heap's smallest: it cannot fire
                    continue
                draw = -math.log(u)
                draws[c] = draw
                key = np.float32(weight / draw)
                keys[c] = key
                if j < size:
                    heap[j] = key
                    if j == size - 1:  # full: make it a heap
                        for at in range(size // 2 - 1, -1, -1):
                            _sift_down(heap, size, at)
                        smallest = heap[0]
                        inverse = 1.0 / smallest if smallest > 0.0 else math.inf
                elif key > smallest:
                    heap[0] = key
                    _sift_down(heap, size, 0)
                    smallest = heap[0]
                    inverse = 1.0 / smallest if smallest > 0.0 else math.inf
            if n >= cells:
                cut = -math.inf
            else:  # halfway between the n-th largest (the root's smaller child) and the root
                last = heap[1] if size < 3 else min(heap[1], heap[2])
                cut = 0.5 * (last + heap[0])
            total = 0.0
            for c in range(cells):
                if keys[c] > cut:
                    weight = shape[i, layer, c]
                    if power[layer] != 0.0:
                        weight *= draws[c] ** power[layer]
                    keys[c] = weight
                    total += weight
                else:
                    keys[c] = -1.0
            scale = rest[i, layer] / max(total, SMALLEST_SHAPE)
            for c in range(cells):
                out[i, layer, c] = keys[c] * scale + floor[i, layer] if keys[c] >= 0.0 else 0.0
