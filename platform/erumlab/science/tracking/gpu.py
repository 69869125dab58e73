"""The cellular automaton as PyTorch tensor operations, for a GPU when there is one.

The same doublet (cluster shapes included) and triplet cuts as ``seeding``
(float64, the same formulas), written as whole-array operations: doublets from a phi-sorted
outer layer (searchsorted ranges, expanded), neighbours by expanding every
cell against the cells leaving its outer hit (in chunks, to bound memory),
root cells by scattering "has an inner neighbour" flags, and the chains by
extending all of them one layer per step. The chains then go through the
same duplicate removal as the CPU algorithms, so its seeds are directly
comparable with the CPU reference (numba), which stays the reference.

``select_backend("auto")`` picks CUDA when torch sees a GPU and the numba CPU
path otherwise; a GPU that is asked for but missing falls back to the CPU
with a warning (``erumlab.science.device``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from erumlab.science.tracking import seeding
from erumlab.science.tracking.seeding import HitIndex, Seeds

CHUNK_PAIRS = 4_000_000  # candidate triplets per step of the neighbour search


def select_backend(preferred: str = "auto") -> str:
    """"cuda" (PyTorch tensors on the GPU) or "cpu" (numba); "auto" takes CUDA when available."""
    choice = preferred.strip().lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"backend: expected auto, cpu or cuda, got {preferred!r}")
    if choice == "cpu":
        return "cpu"
    from erumlab.science.device import select_device

    device = select_device("cuda" if choice == "cuda" else "auto")
    return "cuda" if device.type == "cuda" else "cpu"


def _wrap(torch: Any, angle: Any) -> Any:
    angle = torch.where(angle > math.pi, angle - 2 * math.pi, angle)
    return torch.where(angle < -math.pi, angle + 2 * math.pi, angle)


def _triplet_ok(torch: Any, a: Any, b: Any, c: Any, t: dict[str, Any], material_b: Any,
                params: np.ndarray) -> Any:
    """``seeding._triplet_ok`` on tensors of hit indices (same formulas, same order)."""
    x, y, r, z = t["x"], t["y"], t["r"], t["z"]
    slope = (z[b] - z[a]) / (r[b] - r[a])
    lever = r[c] - r[b]
    stretch = 1.0 + slope * slope
    thickness = material_b * torch.sqrt(stretch)
    p_min = params[seeding.P_PT] * torch.sqrt(stretch)
    theta0 = 0.0136 / p_min * torch.sqrt(thickness) * (1.0 + 0.038 * torch.log(thickness))
    ms = lever * theta0 * stretch
    ratio = lever / (r[b] - r[a])
    res = params[seeding.P_SIGMA_Z] * torch.sqrt(1.0 + (1.0 + ratio) ** 2 + ratio * ratio)
    tolerance = torch.sqrt(ms * ms + res * res)
    residual = torch.abs(z[c] - (z[b] + slope * lever))
    ok = residual <= params[seeding.P_RZ] * tolerance
    ax, ay, bx, by, cx, cy = x[a], y[a], x[b], y[b], x[c], y[c]
    d = 2.0 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    ab = torch.hypot(bx - ax, by - ay)
    bc = torch.hypot(cx - bx, cy - by)
    ca = torch.hypot(ax - cx, ay - cy)
    straight = torch.abs(d) < 1e-14 * ab * bc * ca
    safe_d = torch.where(straight, torch.ones_like(d), d)
    radius = torch.where(straight, torch.full_like(d, math.inf), ab * bc * ca / torch.abs(safe_d))
    sa, sb, sc = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
    ux = (sa * (by - cy) + sb * (cy - ay) + sc * (ay - by)) / safe_d
    uy = (sa * (cx - bx) + sb * (ax - cx) + sc * (bx - ax)) / safe_d
    d0 = torch.where(straight, torch.abs(ax * cy - ay * cx) / ca,
                     torch.abs(torch.hypot(ux, uy) - radius))
    return ok & (radius >= params[seeding.P_RMIN]) & (d0 <= params[seeding.P_D0])


def _expand(torch: Any, starts: Any, counts: Any) -> tuple[Any, Any]:
    """For ranges [start, start + count): (owner of each element, element index)."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return owner, starts[owner] + torch.arange(len(owner), device=counts.device) - first[owner]


def _cells(torch: Any, t: dict[str, Any], index: HitIndex) -> tuple[Any, Any]:
    inner_all, outer_all = [], []
    for lay in range(len(index.radius) - 1):
        lo, hi = int(index.layer_start[lay]), int(index.layer_start[lay + 1])
        lo2, hi2 = int(index.layer_start[lay + 1]), int(index.layer_start[lay + 2])
        if hi == lo or hi2 == lo2:
            continue
        window = float(index.dphi[lay])
        outer_phi, order = torch.sort(t["phi"][lo2:hi2])
        outer_ids = order + lo2
        ext_phi = torch.cat([outer_phi - 2 * math.pi, outer_phi, outer_phi + 2 * math.pi])
        ext_ids = torch.cat([outer_ids, outer_ids, outer_ids])
        inner = torch.arange(lo, hi, device=t["phi"].device)
        start = torch.searchsorted(ext_phi, t["phi"][inner] - window - 1e-12)
        end = torch.searchsorted(ext_phi, t["phi"][inner] + window + 1e-12, right=True)
        owner, position = _expand(torch, start, end - start)
        a, b = inner[owner], ext_ids[position]
        r, z, slo, shi = t["r"], t["z"], t["slope_lo"], t["slope_hi"]
        slope = (z[b] - z[a]) / (r[b] - r[a])
        steep = torch.abs(slope)
        ok = (torch.abs(_wrap(torch, t["phi"][b] - t["phi"][a])) <= window) & \
             (torch.abs(z[a] - r[a] * slope) <= index.params[seeding.P_Z0]) & \
             (steep >= torch.maximum(slo[a], slo[b])) & (steep <= torch.minimum(shi[a], shi[b]))
        inner_all.append(a[ok])
        outer_all.append(b[ok])
    if not inner_all:
        empty = torch.zeros(0, dtype=torch.int64, device=t["phi"].device)
        return empty, empty
    a, b = torch.cat(inner_all), torch.cat(outer_all)
    order = torch.argsort(a * (len(index.x) + 1) + b)
    return a[order], b[order]


def cellular_automaton(index: HitIndex, device: str = "cuda") -> Seeds:
    """Seeds by the tensorised cellular automaton on ``device`` (any torch device)."""
    import torch

    dev = torch.device(device)
    started = time.perf_counter()
    t = {name: torch.as_tensor(getattr(index, name), dtype=torch.float64, device=dev)
         for name in ("x", "y", "z", "r", "phi", "slope_lo", "slope_hi")}
    layer = torch.as_tensor(index.layer, device=dev)
    material = torch.as_tensor(index.material, dtype=torch.float64, device=dev)
    n_hits = len(index.x)
    cell_in, cell_out = _cells(torch, t, index)
    n_cells = len(cell_in)
    # Neighbours: each cell against the cells whose inner hit is its outer hit.
    first_out = torch.searchsorted(cell_in, torch.arange(n_hits + 1, device=dev))
    counts = first_out[cell_out + 1] - first_out[cell_out] if n_cells else cell_in
    src_all, dst_all, tests = [], [], 0
    bounds = torch.cumsum(counts, 0).cpu().numpy() if n_cells else np.zeros(0)
    begin = 0
    while begin < n_cells:
        base = bounds[begin - 1] if begin else 0
        end = int(np.searchsorted(bounds, base + CHUNK_PAIRS, side="right"))
        end = max(end, begin + 1)
        cells = torch.arange(begin, min(end, n_cells), device=dev)
        owner, d = _expand(torch, first_out[cell_out[cells]], counts[cells])
        c = cells[owner]
        tests += len(c)
        ok = _triplet_ok(torch, cell_in[c], cell_out[c], cell_out[d], t,
                         material[layer[cell_out[c]]], index.params)
        src_all.append(c[ok])
        dst_all.append(d[ok])
        begin = int(cells[-1]) + 1
    src = torch.cat(src_all) if src_all else torch.zeros(0, dtype=torch.int64, device=dev)
    dst = torch.cat(dst_all) if dst_all else src.clone()
    order = torch.argsort(src * (n_cells + 1) + dst)
    src, dst = src[order], dst[order]
    nb_start = torch.searchsorted(src, torch.arange(n_cells + 1, device=dev))
    nb_count = nb_start[1:] - nb_start[:-1]
    has_inner = torch.zeros(n_cells, dtype=torch.bool, device=dev)
    has_inner[dst] = True
    # Chains: start at root cells with neighbours, extend every chain by one cell per step.
    n_layers = len(index.radius)
    roots = torch.nonzero(~has_inner & (nb_count > 0)).flatten()
    paths = torch.full((len(roots), n_layers), -1, dtype=torch.int64, device=dev)
    paths[:, 0], paths[:, 1] = cell_in[roots], cell_out[roots]
    last, length = roots, 2
    finished = []
    while len(last):
        count = nb_count[last]
        done = count == 0
        finished.append(paths[done])
        owner, position = _expand(torch, nb_start[last[~done]], count[~done])
        if len(owner) == 0:
            break
        paths = paths[~done][owner]
        last = dst[position]
        paths[:, length] = cell_out[last]
        length += 1
    chains = torch.cat(finished) if finished else paths[:0]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    found = time.perf_counter()
    kept = seeding.clean(chains.cpu().numpy(), index)
    ended = time.perf_counter()
    return Seeds(seeding._finish(kept, index), len(chains), n_cells, len(src), tests,
                 ended - started, {"chains": found - started, "clean": ended - found})
