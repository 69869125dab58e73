"""Track seeding on CPU: hit doublets, the cellular automaton and the triplet baseline (numba).

Both algorithms see the same ``HitIndex`` (hits sorted by layer, phi bin and
z) and call the same two cut functions, ``_doublet_ok`` and ``_triplet_ok``:

- a doublet (inner hit a on layer l, outer hit b on layer l+1) passes when
  |phi_b - phi_a| is inside the pair's phi window (``detector.windows``), the
  straight line through a and b meets the beam line within |z0| <= z0_max,
  and its |dz/dr| lies inside the range both hits' cluster lengths allow
  (``detector.cluster_slopes``; the search box in z is cut to that range too);
- a triplet (a, b, c) on three consecutive layers passes the r-z alignment
  cut (c within ``rz_sigmas`` of the line through a and b, multiple scattering
  at b for pt_min and the hit resolution in quadrature), and the circle
  through the three hits has pT >= pt_min and passes within d0_max of the
  beam line.

Seeds are chains of hits on consecutive layers, every consecutive triplet
passing, that start from a doublet with no compatible hit further in (a root)
and are extended outwards as long as a compatible hit exists; each maximal
chain of >= 3 hits is a candidate. The two algorithms differ only in how they
find them:

- the **cellular automaton** builds every doublet once (a cell), connects
  cells that share a hit when their triplet passes (neighbours), marks the
  cells that have an inner neighbour, and walks the neighbour graph from the
  root cells. Its work is the doublet search plus, per hit, the products of
  the compatible doublets ending and starting there.
- the **triplet baseline** starts from every doublet and searches the third
  hit inside the next layer's window afresh (doublet + third hit), then the
  fourth from each triplet, and decides whether a doublet is a root by
  searching the layer inside it the same way. Its work grows with the hit
  combinations inside the windows.

Duplicates are removed by the same function for both (``clean``): candidates
sorted longest first, then by fit quality, and a candidate is dropped when it
shares a doublet with one already kept (a triplet inside a quadruplet, or two
chains that differ only in one hit).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from erumlab.science.tracking.detector import Detector, SeedingCuts, cluster_slopes, windows
from erumlab.science.tracking.generation import Hits

MAX_PHI_BINS = 4096
BOX_EPS = 1e-6  # cm: the search box is a hair wider than the cut, never narrower

# Layout of the float parameter vector shared by every kernel.
P_Z0, P_PT, P_B, P_D0, P_RZ, P_SIGMA_Z, P_RMIN = range(7)


@dataclass
class HitIndex:
    """Hits sorted by (layer, phi bin, z), with per-layer phi-bin offsets, for window searches."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    r: np.ndarray
    phi: np.ndarray
    layer: np.ndarray
    original: np.ndarray  # sorted position -> index in the event's hit arrays
    layer_start: np.ndarray  # (layers + 1,)
    nbins: np.ndarray  # (layers,)
    bin_offset: np.ndarray  # (layers,) start of each layer's rows in bin_start
    bin_start: np.ndarray  # absolute sorted index where each phi bin starts (+ one end row)
    radius: np.ndarray  # nominal layer radii
    material: np.ndarray
    half_length: np.ndarray
    dphi: np.ndarray  # phi-window half-width per layer pair
    params: np.ndarray  # float parameters, see P_*
    slope_lo: np.ndarray  # per hit: the lowest |dz/dr| its cluster length allows (0: any)
    slope_hi: np.ndarray  # per hit: the highest (inf: any)

    @property
    def size(self) -> int:
        return len(self.x)


def prepare(hits: Hits, det: Detector, cuts: SeedingCuts) -> HitIndex:
    """Sort one event's hits for the window searches (shared by both algorithms, and timed)."""
    win = windows(det, cuts)
    layers = det.layers
    r = np.hypot(hits.x, hits.y)
    phi = np.arctan2(hits.y, hits.x)
    layer = hits.layer.astype(np.int64)
    # A layer's bins are as wide as the phi window of the pair where it is the outer layer
    # (layer 0: of its own pair), so a window search visits two or three bins.
    width = np.array([win.dphi[max(layer_ - 1, 0)] for layer_ in range(layers)])
    nbins = np.clip(np.floor(2 * np.pi / width), 1, MAX_PHI_BINS).astype(np.int64)
    in_range = (layer >= 0) & (layer < layers)
    bins = np.zeros(len(r), dtype=np.int64)
    bins[in_range] = np.minimum(
        ((phi[in_range] + np.pi) / (2 * np.pi) * nbins[layer[in_range]]).astype(np.int64),
        nbins[layer[in_range]] - 1)
    order = np.lexsort((hits.z, bins, layer))
    order = order[in_range[order]]
    layer_sorted, bins_sorted = layer[order], bins[order]
    layer_start = np.searchsorted(layer_sorted, np.arange(layers + 1)).astype(np.int64)
    bin_offset = np.zeros(layers, dtype=np.int64)
    starts = []
    for k in range(layers):
        bin_offset[k] = sum(len(s) for s in starts)
        lo, hi = layer_start[k], layer_start[k + 1]
        starts.append(lo + np.searchsorted(bins_sorted[lo:hi], np.arange(nbins[k] + 1)))
    slope_lo, slope_hi = _slope_ranges(hits, layer, det, cuts)
    params = np.zeros(7)
    params[[P_Z0, P_PT, P_B, P_D0, P_RZ, P_SIGMA_Z, P_RMIN]] = (
        cuts.z0_max, cuts.pt_min, det.field_tesla, cuts.d0_max, cuts.rz_sigmas, det.sigma_z,
        win.min_radius_cm)
    return HitIndex(
        x=hits.x[order].astype(np.float64), y=hits.y[order].astype(np.float64),
        z=hits.z[order].astype(np.float64), r=r[order], phi=phi[order], layer=layer_sorted,
        original=order.astype(np.int64), layer_start=layer_start, nbins=nbins,
        bin_offset=bin_offset, bin_start=np.concatenate(starts).astype(np.int64),
        radius=np.array(det.radii, dtype=np.float64),
        material=np.array(det.material, dtype=np.float64),
        half_length=np.array(det.half_lengths, dtype=np.float64),
        dphi=np.array(win.dphi, dtype=np.float64), params=params,
        slope_lo=slope_lo[order], slope_hi=slope_hi[order])


def _slope_ranges(hits: Hits, layer: np.ndarray, det: Detector,
                  cuts: SeedingCuts) -> tuple[np.ndarray, np.ndarray]:
    """Each hit's allowed |dz/dr| from its cluster length (everything without cluster data)."""
    lo, hi = np.zeros(len(layer)), np.full(len(layer), np.inf)
    if not cuts.cluster_shape or hits.size_z is None:
        return lo, hi
    table = cluster_slopes(det, cuts)
    ok = (layer >= 0) & (layer < det.layers)
    size = np.clip(hits.size_z[ok].astype(np.int64), 0, table.shape[1] - 1)
    lo[ok], hi[ok] = table[layer[ok], size, 0], table[layer[ok], size, 1]
    return lo, hi


# Cuts (shared by every algorithm) ------------------------------------------------------


@njit(cache=True, inline="always")
def _wrap(angle: float) -> float:
    if angle > math.pi:
        return angle - 2 * math.pi
    if angle < -math.pi:
        return angle + 2 * math.pi
    return angle


@njit(cache=True)
def _doublet_ok(a: int, b: int, r: np.ndarray, z: np.ndarray, phi: np.ndarray, dphi: float,
                z0_max: float, slo: np.ndarray, shi: np.ndarray) -> bool:
    if abs(_wrap(phi[b] - phi[a])) > dphi:
        return False
    slope = (z[b] - z[a]) / (r[b] - r[a])
    if abs(z[a] - r[a] * slope) > z0_max:
        return False
    steep = abs(slope)
    return max(slo[a], slo[b]) <= steep <= min(shi[a], shi[b])


@njit(cache=True)
def _rz_prediction(a: int, b: int, r_c: float, r: np.ndarray, z: np.ndarray,
                   material_b: float, params: np.ndarray) -> tuple[float, float]:
    """z at radius r_c on the line through a and b, and its tolerance (1 sigma).

    The tolerance adds in quadrature the multiple-scattering kink at b for a
    track of pt_min (delta cot(theta) = theta0 / sin^2(theta)) and the z
    resolution of the three hits propagated through the straight line.
    """
    slope = (z[b] - z[a]) / (r[b] - r[a])
    lever = r_c - r[b]
    stretch = 1.0 + slope * slope  # 1 / sin^2(theta)
    thickness = material_b * math.sqrt(stretch)  # path through the cylinder ~ 1 / sin(theta)
    p_min = params[P_PT] * math.sqrt(stretch)
    theta0 = 0.0136 / p_min * math.sqrt(thickness) * (1.0 + 0.038 * math.log(thickness))
    ms = lever * theta0 * stretch
    ratio = lever / (r[b] - r[a])
    res = params[P_SIGMA_Z] * math.sqrt(1.0 + (1.0 + ratio) ** 2 + ratio * ratio)
    return z[b] + slope * lever, math.sqrt(ms * ms + res * res)


@njit(cache=True)
def _rz_residual(a: int, b: int, c: int, r: np.ndarray, z: np.ndarray, material_b: float,
                 params: np.ndarray) -> tuple[float, float]:
    """|z_c - prediction from the line a-b| and its tolerance (1 sigma)."""
    predicted, tolerance = _rz_prediction(a, b, r[c], r, z, material_b, params)
    return abs(z[c] - predicted), tolerance


@njit(cache=True)
def _circle(a: int, b: int, c: int, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Radius of the circle through three hits and its distance of closest approach to (0, 0)."""
    ax, ay, bx, by, cx, cy = x[a], y[a], x[b], y[b], x[c], y[c]
    d = 2.0 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    ab = math.hypot(bx - ax, by - ay)
    bc = math.hypot(cx - bx, cy - by)
    ca = math.hypot(ax - cx, ay - cy)
    if abs(d) < 1e-14 * ab * bc * ca:  # collinear: a straight line
        return math.inf, abs(ax * cy - ay * cx) / ca
    radius = ab * bc * ca / abs(d)
    sa, sb, sc = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
    ux = (sa * (by - cy) + sb * (cy - ay) + sc * (ay - by)) / d
    uy = (sa * (cx - bx) + sb * (ax - cx) + sc * (bx - ax)) / d
    return radius, abs(math.hypot(ux, uy) - radius)


@njit(cache=True)
def _triplet_ok(a: int, b: int, c: int, x: np.ndarray, y: np.ndarray, r: np.ndarray,
                z: np.ndarray, material_b: float, params: np.ndarray) -> bool:
    residual, tolerance = _rz_residual(a, b, c, r, z, material_b, params)
    if residual > params[P_RZ] * tolerance:
        return False
    radius, d0 = _circle(a, b, c, x, y)
    return radius >= params[P_RMIN] and d0 <= params[P_D0]


# Window search --------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _bins(layer: int, centre: float, half: float, nbins: np.ndarray) -> tuple[int, int]:
    """First (unwrapped) phi bin of the window and how many bins it spans."""
    n = nbins[layer]
    width = 2 * math.pi / n
    first = int(math.floor((centre - half + math.pi) / width))
    last = int(math.floor((centre + half + math.pi) / width))
    return first, min(last - first + 1, n)


@njit(cache=True, inline="always")
def _bin_slice(layer: int, unwrapped: int, nbins: np.ndarray, bin_offset: np.ndarray,
               bin_start: np.ndarray) -> tuple[int, int]:
    b = unwrapped % nbins[layer]
    row = bin_offset[layer] + b
    return bin_start[row], bin_start[row + 1]


@njit(cache=True, inline="always")
def _z_range_out(za: float, ra: float, r_out: float, z0_max: float,
                 steep: float) -> tuple[float, float]:
    """z on the outer layer: the line from the beam line (|z0| <= z0_max) and |dz/dr| <= steep."""
    k = r_out / ra - 1.0
    reach = steep * (r_out - ra)
    lo = max(za + (za - z0_max) * k, za - reach)
    hi = min(za + (za + z0_max) * k, za + reach)
    return lo - BOX_EPS, hi + BOX_EPS


@njit(cache=True, inline="always")
def _z_range_in(zb: float, rb: float, r_in: float, z0_max: float,
                steep: float) -> tuple[float, float]:
    f = r_in / rb
    reach = steep * (rb - r_in)
    lo = max(zb * f - z0_max * (1.0 - f), zb - reach)
    hi = min(zb * f + z0_max * (1.0 - f), zb + reach)
    return lo - BOX_EPS, hi + BOX_EPS


# Growable buffers -------------------------------------------------------------------------


@njit(cache=True)
def _grow(buffer: np.ndarray, used: int) -> np.ndarray:
    bigger = np.empty((2 * buffer.shape[0] + 16,) + buffer.shape[1:], dtype=buffer.dtype)
    bigger[:used] = buffer[:used]
    return bigger


# The cellular automaton -------------------------------------------------------------------


@njit(cache=True)
def _build_cells(z, r, phi, layer_start, nbins, bin_offset, bin_start, radius, dphi,
                 z0_max, slo, shi):  # noqa: ANN001, ANN202 (numba kernel)
    """Every doublet between adjacent layers, found once: (inner, outer, count, out_start).

    Inner hits are visited in sorted order, so the cells leaving a hit are
    contiguous and ``out_start`` indexes them (CSR).
    """
    n_layers = radius.shape[0]
    n_hits = z.shape[0]
    cell_in = np.empty(max(n_hits, 16), np.int64)
    cell_out = np.empty(max(n_hits, 16), np.int64)
    n_cells = 0
    out_start = np.zeros(n_hits + 1, np.int64)
    for lay in range(n_layers - 1):
        r_out = radius[lay + 1]
        for a in range(layer_start[lay], layer_start[lay + 1]):
            out_start[a] = n_cells
            zlo, zhi = _z_range_out(z[a], r[a], r_out, z0_max, shi[a])
            first, count = _bins(lay + 1, phi[a], dphi[lay], nbins)
            for k in range(count):
                lo, hi = _bin_slice(lay + 1, first + k, nbins, bin_offset, bin_start)
                j = lo + np.searchsorted(z[lo:hi], zlo)
                while j < hi and z[j] <= zhi:
                    if _doublet_ok(a, j, r, z, phi, dphi[lay], z0_max, slo, shi):
                        if n_cells == cell_in.shape[0]:
                            cell_in = _grow(cell_in, n_cells)
                            cell_out = _grow(cell_out, n_cells)
                        cell_in[n_cells] = a
                        cell_out[n_cells] = j
                        n_cells += 1
                    j += 1
    last_inner = layer_start[n_layers - 1]
    for a in range(last_inner, n_hits + 1):
        out_start[a] = n_cells
    return cell_in, cell_out, n_cells, out_start


@njit(cache=True)
def _ca_kernel(x, y, z, r, phi, layer, layer_start, nbins, bin_offset, bin_start, radius, material,
               dphi, params, slo, shi):  # noqa: ANN001, ANN202 (numba kernel)
    n_layers = radius.shape[0]
    n_hits = x.shape[0]
    z0_max = params[P_Z0]
    # 1. Cells: every doublet between adjacent layers, found once.
    cell_in, cell_out, n_cells, out_start = _build_cells(
        z, r, phi, layer_start, nbins, bin_offset, bin_start, radius, dphi, z0_max, slo, shi)
    # 2. Neighbours: cells sharing a hit whose triplet passes the cuts. The cells leaving each
    #    hit are sorted by the z of their outer hit, so an inner cell looks only at those
    #    inside its r-z alignment window (binary search), not at every cell leaving the hit.
    for h in range(n_hits):
        lo, hi = out_start[h], out_start[h + 1]
        for i in range(lo + 1, hi):  # insertion sort: runs of a few dozen, sorted per phi bin
            moving = cell_out[i]
            key = z[moving]
            j = i - 1
            while j >= lo and z[cell_out[j]] > key:
                cell_out[j + 1] = cell_out[j]
                j -= 1
            cell_out[j + 1] = moving
    out_z = np.empty(n_cells)
    for c in range(n_cells):
        out_z[c] = z[cell_out[c]]
    neighbour = np.empty(max(n_cells, 16), np.int64)
    nb_start = np.zeros(n_cells + 1, np.int64)
    has_inner = np.zeros(n_cells, np.bool_)
    n_nb = 0
    tests = 0
    for c in range(n_cells):
        nb_start[c] = n_nb
        a, b = cell_in[c], cell_out[c]
        lay = layer[b]
        lo, hi = out_start[b], out_start[b + 1]
        if lo == hi:
            continue
        mat = material[lay]
        predicted, tolerance = _rz_prediction(a, b, radius[lay + 1], r, z, mat, params)
        reach = params[P_RZ] * tolerance * (1.0 + 1e-9) + BOX_EPS
        d = lo + np.searchsorted(out_z[lo:hi], predicted - reach)
        while d < hi and out_z[d] <= predicted + reach:
            tests += 1
            if _triplet_ok(a, b, cell_out[d], x, y, r, z, mat, params):
                if n_nb == neighbour.shape[0]:
                    neighbour = _grow(neighbour, n_nb)
                neighbour[n_nb] = d
                n_nb += 1
                has_inner[d] = True
            d += 1
    nb_start[n_cells] = n_nb
    # 3. Walk from the root cells (no inner neighbour) along neighbours; emit maximal chains.
    paths = np.full((64, n_layers), -1, np.int64)
    n_paths = 0
    stack = np.empty(n_layers, np.int64)
    position = np.empty(n_layers, np.int64)
    for root in range(n_cells):
        if has_inner[root] or nb_start[root] == nb_start[root + 1]:
            continue
        depth = 0
        stack[0] = root
        position[0] = nb_start[root]
        while depth >= 0:
            cell = stack[depth]
            if nb_start[cell] == nb_start[cell + 1]:  # a leaf: the chain ends here
                if n_paths == paths.shape[0]:
                    paths = _grow(paths, n_paths)
                    paths[n_paths:] = -1
                paths[n_paths, 0] = cell_in[stack[0]]
                for k in range(depth + 1):
                    paths[n_paths, k + 1] = cell_out[stack[k]]
                n_paths += 1
                depth -= 1
                continue
            if position[depth] == nb_start[cell + 1]:
                depth -= 1
                continue
            nxt = neighbour[position[depth]]
            position[depth] += 1
            depth += 1
            stack[depth] = nxt
            position[depth] = nb_start[nxt]
    return paths[:n_paths], n_cells, n_nb, tests


# The combinatorial triplet baseline ---------------------------------------------------------


@njit(cache=True)
def _has_inner_hit(a: int, b: int, lay: int, x, y, z, r, phi, nbins, bin_offset, bin_start,
                   radius, material, dphi, params, slo, shi) -> bool:  # noqa: ANN001
    """Is there a hit on layer lay-1 that makes a valid triplet with the doublet (a, b)?"""
    z0_max = params[P_Z0]
    zlo, zhi = _z_range_in(z[a], r[a], radius[lay - 1], z0_max, shi[a])
    first, count = _bins(lay - 1, phi[a], dphi[lay - 1], nbins)
    for k in range(count):
        lo, hi = _bin_slice(lay - 1, first + k, nbins, bin_offset, bin_start)
        i = lo + np.searchsorted(z[lo:hi], zlo)
        while i < hi and z[i] <= zhi:
            if _doublet_ok(i, a, r, z, phi, dphi[lay - 1], z0_max, slo, shi) and \
                    _triplet_ok(i, a, b, x, y, r, z, material[lay], params):
                return True
            i += 1
    return False


@njit(cache=True)
def _triplet_kernel(x, y, z, r, phi, layer, layer_start, nbins, bin_offset, bin_start, radius,
                    material, dphi, params, slo, shi):  # noqa: ANN001, ANN202 (numba kernel)
    n_layers = radius.shape[0]
    z0_max = params[P_Z0]
    frontier = np.full((64, n_layers), -1, np.int64)
    n_front = 0
    tests = 0
    doublets = 0
    # Doublet + third hit, from every start layer; the window of the third hit is searched
    # afresh for every doublet.
    for lay in range(n_layers - 2):
        for a in range(layer_start[lay], layer_start[lay + 1]):
            zlo, zhi = _z_range_out(z[a], r[a], radius[lay + 1], z0_max, shi[a])
            first, count = _bins(lay + 1, phi[a], dphi[lay], nbins)
            for k in range(count):
                lo, hi = _bin_slice(lay + 1, first + k, nbins, bin_offset, bin_start)
                b = lo + np.searchsorted(z[lo:hi], zlo)
                while b < hi and z[b] <= zhi:
                    if not _doublet_ok(a, b, r, z, phi, dphi[lay], z0_max, slo, shi):
                        b += 1
                        continue
                    doublets += 1
                    if lay > 0 and _has_inner_hit(a, b, lay, x, y, z, r, phi, nbins, bin_offset,
                                                  bin_start, radius, material, dphi, params,
                                                  slo, shi):
                        b += 1
                        continue
                    zlo2, zhi2 = _z_range_out(z[b], r[b], radius[lay + 2], z0_max, shi[b])
                    first2, count2 = _bins(lay + 2, phi[b], dphi[lay + 1], nbins)
                    for k2 in range(count2):
                        lo2, hi2 = _bin_slice(lay + 2, first2 + k2, nbins, bin_offset, bin_start)
                        c = lo2 + np.searchsorted(z[lo2:hi2], zlo2)
                        while c < hi2 and z[c] <= zhi2:
                            tests += 1
                            if _doublet_ok(b, c, r, z, phi, dphi[lay + 1], z0_max, slo, shi) and \
                                    _triplet_ok(a, b, c, x, y, r, z, material[lay + 1], params):
                                if n_front == frontier.shape[0]:
                                    frontier = _grow(frontier, n_front)
                                    frontier[n_front:] = -1
                                frontier[n_front, lay] = a
                                frontier[n_front, lay + 1] = b
                                frontier[n_front, lay + 2] = c
                                n_front += 1
                            c += 1
                    b += 1
    # Extend every chain outwards by one more hit per pass; chains that cannot grow are done.
    done = np.full((64, n_layers), -1, np.int64)
    n_done = 0
    while n_front > 0:
        grown = np.full((max(n_front, 16), n_layers), -1, np.int64)
        n_grown = 0
        for p in range(n_front):
            end = n_layers - 1
            while frontier[p, end] < 0:
                end -= 1
            extended = False
            if end + 1 < n_layers:
                b, c = frontier[p, end - 1], frontier[p, end]
                zlo, zhi = _z_range_out(z[c], r[c], radius[end + 1], z0_max, shi[c])
                first, count = _bins(end + 1, phi[c], dphi[end], nbins)
                for k in range(count):
                    lo, hi = _bin_slice(end + 1, first + k, nbins, bin_offset, bin_start)
                    d = lo + np.searchsorted(z[lo:hi], zlo)
                    while d < hi and z[d] <= zhi:
                        tests += 1
                        if _doublet_ok(c, d, r, z, phi, dphi[end], z0_max, slo, shi) and \
                                _triplet_ok(b, c, d, x, y, r, z, material[end], params):
                            if n_grown == grown.shape[0]:
                                grown = _grow(grown, n_grown)
                                grown[n_grown:] = -1
                            grown[n_grown] = frontier[p]
                            grown[n_grown, end + 1] = d
                            n_grown += 1
                            extended = True
                        d += 1
            if not extended:
                if n_done == done.shape[0]:
                    done = _grow(done, n_done)
                    done[n_done:] = -1
                done[n_done] = frontier[p]
                n_done += 1
        frontier, n_front = grown, n_grown
    # Left-align (chains may start on any layer) like the CA's output.
    out = np.full((n_done, n_layers), -1, np.int64)
    for p in range(n_done):
        k = 0
        for lay in range(n_layers):
            if done[p, lay] >= 0:
                out[p, k] = done[p, lay]
                k += 1
    return out, doublets, 0, tests


# Duplicate removal (shared) ------------------------------------------------------------------


@njit(cache=True)
def _qualities(paths, x, y, z, r, layer, material, params):  # noqa: ANN001, ANN202
    """Mean normalised r-z residual squared plus mean (d0 / d0_max)^2 over a chain's triplets."""
    out = np.empty(paths.shape[0])
    for p in range(paths.shape[0]):
        total = 0.0
        n = 0
        k = 0
        while k + 2 < paths.shape[1] and paths[p, k + 2] >= 0:
            a, b, c = paths[p, k], paths[p, k + 1], paths[p, k + 2]
            residual, tolerance = _rz_residual(a, b, c, r, z, material[layer[b]], params)
            _, d0 = _circle(a, b, c, x, y)
            total += (residual / tolerance) ** 2 + (d0 / params[P_D0]) ** 2
            n += 1
            k += 1
        out[p] = total / max(n, 1)
    return out


@njit(cache=True)
def _complete(paths, z, r, layer, radius, half_length, material, params):  # noqa: ANN001, ANN202
    """Chains that end (start) early only where their r-z line leaves the barrel.

    With every layer efficient, a track inside the next layer's length leaves a
    hit there, so a chain that stops short of the outermost layer (or starts
    beyond the innermost) while its straight r-z line still meets that layer,
    within the alignment tolerance, is a random combination, not a track.
    """
    n_layers = radius.shape[0]
    keep = np.ones(paths.shape[0], np.bool_)
    for p in range(paths.shape[0]):
        n = 0
        while n < paths.shape[1] and paths[p, n] >= 0:
            n += 1
        first, last = layer[paths[p, 0]], layer[paths[p, n - 1]]
        if last < n_layers - 1:
            b, c = paths[p, n - 2], paths[p, n - 1]
            predicted, tolerance = _rz_prediction(b, c, radius[last + 1], r, z, material[last],
                                                  params)
            if abs(predicted) < half_length[last + 1] - params[P_RZ] * tolerance:
                keep[p] = False
        if first > 0:
            b, a = paths[p, 1], paths[p, 0]
            predicted, tolerance = _rz_prediction(b, a, radius[first - 1], r, z, material[first],
                                                  params)
            if abs(predicted) < half_length[first - 1] - params[P_RZ] * tolerance:
                keep[p] = False
    return keep


@njit(cache=True)
def _greedy(paths, order, n_hits):  # noqa: ANN001, ANN202
    used = {np.int64(-1)}  # typed for numba; no real key is negative
    keep = np.zeros(paths.shape[0], np.bool_)
    for p in order:
        clash = False
        k = 0
        while k + 1 < paths.shape[1] and paths[p, k + 1] >= 0:
            if paths[p, k] * n_hits + paths[p, k + 1] in used:
                clash = True
                break
            k += 1
        if clash:
            continue
        keep[p] = True
        k = 0
        while k + 1 < paths.shape[1] and paths[p, k + 1] >= 0:
            used.add(paths[p, k] * n_hits + paths[p, k + 1])
            k += 1
    return keep


def clean(paths: np.ndarray, index: HitIndex) -> np.ndarray:
    """Complete chains without duplicates: longest first, then best quality, no shared doublet."""
    paths = paths[_complete(paths, index.z, index.r, index.layer, index.radius,
                            index.half_length, index.material, index.params)]
    if len(paths) == 0:
        return paths
    quality = _qualities(paths, index.x, index.y, index.z, index.r, index.layer,
                         index.material, index.params)
    length = (paths >= 0).sum(axis=1)
    keys = [paths[:, k] for k in range(paths.shape[1] - 1, -1, -1)] + [quality, -length]
    order = np.lexsort(keys)
    return paths[_greedy(paths, order, index.size)]


# Public interface ---------------------------------------------------------------------------


@dataclass
class Seeds:
    """Seeds of one event: each row lists hit indices (into the event's hits), -1 padded."""

    hits: np.ndarray  # (n_seeds, layers) int64
    candidates: int  # chains before duplicate removal
    cells: int  # CA: doublets built; baseline: doublets enumerated
    neighbours: int  # CA: compatible doublet pairs; baseline: 0
    tests: int  # triplet cut evaluations
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hits)

    def as_sets(self) -> set[tuple[int, ...]]:
        return {tuple(int(h) for h in row if h >= 0) for row in self.hits}

    @property
    def lengths(self) -> np.ndarray:
        return (self.hits >= 0).sum(axis=1)


def _arguments(index: HitIndex) -> tuple[np.ndarray, ...]:
    return (index.x, index.y, index.z, index.r, index.phi, index.layer, index.layer_start,
            index.nbins,
            index.bin_offset, index.bin_start, index.radius, index.material, index.dphi,
            index.params, index.slope_lo, index.slope_hi)


def _finish(paths: np.ndarray, index: HitIndex) -> np.ndarray:
    """Sorted positions -> the event's own hit indices (-1 stays -1)."""
    return np.where(paths >= 0, index.original[np.maximum(paths, 0)], -1)


def cellular_automaton(index: HitIndex) -> Seeds:
    """Seeds by the cellular automaton (numba, CPU)."""
    started = time.perf_counter()
    paths, cells, neighbours, tests = _ca_kernel(*_arguments(index))
    found = time.perf_counter()
    kept = clean(paths, index)
    ended = time.perf_counter()
    return Seeds(_finish(kept, index), len(paths), int(cells), int(neighbours), int(tests),
                 ended - started, {"chains": found - started, "clean": ended - found})


def triplet_baseline(index: HitIndex) -> Seeds:
    """Seeds by combinatorial doublet + third-hit search (numba, CPU), same cuts and cleaning."""
    started = time.perf_counter()
    paths, doublets, _, tests = _triplet_kernel(*_arguments(index))
    found = time.perf_counter()
    kept = clean(paths, index)
    ended = time.perf_counter()
    return Seeds(_finish(kept, index), len(paths), int(doublets), 0, int(tests),
                 ended - started, {"chains": found - started, "clean": ended - found})


def doublets(index: HitIndex) -> np.ndarray:
    """All cells (inner, outer) as the CA builds them, in event hit indices (for tests/plots)."""
    cell_in, cell_out, n_cells, _ = _build_cells(
        index.z, index.r, index.phi, index.layer_start, index.nbins, index.bin_offset,
        index.bin_start, index.radius, index.dphi, index.params[P_Z0], index.slope_lo,
        index.slope_hi)
    cells = np.stack([cell_in[:n_cells], cell_out[:n_cells]], axis=1)
    return index.original[cells] if n_cells else cells.reshape(0, 2)


def warm_up(det: Detector, cuts: SeedingCuts) -> None:
    """Compile (or load from numba's cache) every kernel on a tiny event, outside any timing."""
    rng = np.random.default_rng(0)
    n = 40
    layer = np.repeat(np.arange(det.layers), n // det.layers).astype(np.int8)
    phi = np.tile(rng.uniform(-0.1, 0.1, n // det.layers), det.layers)
    radius = np.array(det.radii)[layer]
    hits = Hits(radius * np.cos(phi), radius * np.sin(phi), radius * 0.3, layer,
                np.zeros(len(layer), np.int32))
    index = prepare(hits, det, cuts)
    cellular_automaton(index)
    triplet_baseline(index)
    doublets(index)
