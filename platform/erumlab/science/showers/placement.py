"""Generation's placement of the hits on a CPU: one compiled pass per layer (numba).

``ShowerGenerator`` with ``flow_hits`` fires exactly N cells of each layer:
the N largest Gumbel keys, key = shape * exp(correction) / X (X a standard
exponential draw), each hit carrying the threshold and a share of the rest
of the layer's energy in proportion to its shape (times X^-a with
``share_noise``). In PyTorch operations that takes a partial sort
(``topk``, with indices) and half a dozen passes over the batch's cells,
each streaming megabytes through the caches. Here each layer's 180 cells
stay in the first-level cache from the keys to the written energies, and
the N-th largest key is found in one pass over them, the N + 1 largest
kept in a small heap. The shapes, the exponentials of the corrections and
the draws still come from PyTorch's vectorised passes (computed here with
scalar exp and log they made the kernel slower than what it replaced).

The same draw as the training path (``ShowerGenerator._place_hits``, tested
to give the same showers); on a GPU generation keeps the PyTorch operations.
"""

from __future__ import annotations

import math

import numba
import numpy as np

SMALLEST_SHAPE = 1e-30  # as the PyTorch path's clamp: a cell of shape 0 still has a key
# The PyTorch path's clamps, applied here instead of in passes of their own: the gate head's
# centred correction within +-15 (so exp of it within these), uniforms within [1e-7, 1 - 1e-7]
# (so their logarithms within these; a uniform of 0, a float32 draw's 2^-24 chance, stays finite)
GAIN_BOUNDS = (math.exp(-15.0), math.exp(15.0))
LOG_U_BOUNDS = (math.log(1e-7), math.log1p(-1e-7))


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


@numba.njit(cache=False, inline="always")
def _cut(keys: np.ndarray, n: int, heap: np.ndarray, order: np.ndarray) -> float:
    """Halfway between the n-th and the (n + 1)-th largest of ``keys`` (0 < n < len(keys)).

    The n + 1 largest are kept in a min-heap while the keys pass once, in
    ``order`` (the cells from the layer's middle outwards, where the largest
    keys mostly lie): in a layer of 180 cells with a few to a few dozen
    hits, a later key then rarely enters the heap, and the pass costs little
    more than reading the keys (a selection by partitioning costs several
    passes of unpredictable branches).
    """
    size = n + 1
    for c in range(size):
        heap[c] = keys[order[c]]
    for at in range(size // 2 - 1, -1, -1):
        _sift_down(heap, size, at)
    for c in range(size, len(keys)):
        key = keys[order[c]]
        if key > heap[0]:
            heap[0] = key
            _sift_down(heap, size, 0)
    # the root is the (n + 1)-th largest, the smaller of its children the n-th
    last = heap[1] if size < 3 else min(heap[1], heap[2])
    return 0.5 * (last + heap[0])


@numba.njit(parallel=True, cache=False)
def place_hits(shape: np.ndarray, gain: np.ndarray, log_u: np.ndarray, counts: np.ndarray,
               floor: np.ndarray, rest: np.ndarray, power: np.ndarray, order: np.ndarray,
               out: np.ndarray) -> None:
    """Fill ``out`` (showers, layers, cells) with the placed hits' energies.

    ``shape`` (each layer's up to a factor), ``gain`` (exp of the gate head's
    centred correction; clamped here), ``log_u`` (log of uniform draws, so
    that X = -log_u is a standard exponential one; clamped here): all
    (showers, layers, cells), the keys being shape * gain / X; ``counts``
    (showers, layers) the hits to fire; ``floor`` (showers, layers) what
    each hit carries at least; ``rest`` (showers, layers) what is shared among the
    hits; ``power`` (layers,) the exponent of the draw in the shares (0: none);
    ``order`` (cells,) the cells from a layer's middle outwards (any order
    gives the same showers, this one the fastest). The transcendental
    functions stay with PyTorch, whose vectorised passes are several times
    faster than scalar ones here.
    """
    showers, layers, cells = shape.shape
    for i in numba.prange(showers):
        keys = np.empty(cells, dtype=np.float32)
        work = np.empty(cells, dtype=np.float32)
        for layer in range(layers):
            n = counts[i, layer]
            if n <= 0:
                out[i, layer, :] = 0.0
                continue
            for c in range(cells):
                draw = -min(max(log_u[i, layer, c], LOG_U_BOUNDS[0]), LOG_U_BOUNDS[1])
                keys[c] = (max(shape[i, layer, c], SMALLEST_SHAPE)
                           * min(max(gain[i, layer, c], GAIN_BOUNDS[0]), GAIN_BOUNDS[1]) / draw)
            cut = -math.inf if n >= cells else _cut(keys, n, work, order)
            total = 0.0
            for c in range(cells):
                if keys[c] > cut:
                    weight = shape[i, layer, c]
                    if power[layer] != 0.0:
                        draw = -min(max(log_u[i, layer, c], LOG_U_BOUNDS[0]), LOG_U_BOUNDS[1])
                        weight *= draw ** power[layer]
                    work[c] = weight
                    total += weight
                else:
                    work[c] = -1.0
            scale = rest[i, layer] / max(total, SMALLEST_SHAPE)
            for c in range(cells):
                out[i, layer, c] = work[c] * scale + floor[i, layer] if work[c] >= 0.0 else 0.0
