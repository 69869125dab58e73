"""Detector geometry, the magnetic field and the seeding cuts, in cm, GeV and tesla.

Two barrel pixel detectors: a CMS-Phase-1-like barrel (four layers at 2.9, 6.8,
10.9 and 16.0 cm in 3.8 T) and a TrackML-like one (32, 72, 116 and 172 mm in
2 T). Only the barrel is modelled: it is where pileup makes seeding
combinatorial, and it keeps every particle's hits on consecutive layers.

The helper functions here are the physics every other module shares: the
transverse radius of a helix, R[m] = pT[GeV] / (0.3 B[T]) (0.88 m per GeV at
3.8 T), Highland's multiple-scattering angle, and the length of a pixel
cluster along the beam (``cluster_size_z``). The seeding windows are derived
from the cuts and the geometry (never tuned per event), so the cellular
automaton and the triplet baseline see exactly the same windows.

Cluster shapes: a track crossing a barrel sensor of thickness t at
cot(theta) spreads its charge over t |cot(theta)| along z, so the number of
pixels over threshold along z tells |dz/dr| to about one pitch / t (0.5 for
CMS's 150 um x 285 um pixels). ``cluster_slopes`` inverts the same model the
simulation uses into, per layer and cluster size, the range of |dz/dr| a
primary track above pt_min can have; a doublet whose slope falls outside
either hit's range is not a track (CMS's cluster-shape filter does this with
tables made from its full simulation).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

# R[cm] = pT[GeV] / (C_CM * B[T]): 0.3 GeV/(T m) is 0.003 GeV/(T cm).
C_CM = 0.003
HIGHLAND_MEV = 13.6e-3  # GeV


def helix_radius_cm(pt: float, field_tesla: float, charge: float = 1.0) -> float:
    """Radius of curvature in the transverse plane, in cm (R[m] = pT / (0.3 |q| B))."""
    return pt / (C_CM * abs(charge) * field_tesla)


def pt_from_radius(radius_cm: float, field_tesla: float) -> float:
    """The inverse of ``helix_radius_cm`` for unit charge."""
    return C_CM * field_tesla * radius_cm


def highland(p: float, x_over_x0: float, beta: float = 1.0, charge: float = 1.0) -> float:
    """Highland's width of the projected multiple-scattering angle (rad), PDG eq. 34.15."""
    if x_over_x0 <= 0:
        return 0.0
    return (HIGHLAND_MEV / (beta * p) * abs(charge) * math.sqrt(x_over_x0)
            * (1.0 + 0.038 * math.log(x_over_x0 * charge * charge / (beta * beta))))


# Charge of a crossing relative to its most probable value: 1 + LANDAU_WIDTH * m with m
# Moyal-distributed (Landau-like tail of delta rays). The slope tables cover
# CHARGE_RANGE, i.e. all but ~1e-4 of the crossings.
LANDAU_WIDTH = 0.12
CHARGE_RANGE = (0.6, 4.0)


def cluster_size_z(cot_z: np.ndarray, cot_phi: np.ndarray, start: np.ndarray,
                   charge: np.ndarray, det: Detector) -> np.ndarray:
    """Pixels over threshold along z for crossings of a barrel sensor (vectorised).

    ``cot_z`` = |p_z / p_n| and ``cot_phi`` = |p_phi / p_n| are the track's
    slopes against the sensor's normal, ``start`` the entry point's offset
    inside its pixel (cm, in [0, pitch)), ``charge`` the deposit relative to a
    normal MIP's most probable one. The charge, proportional to the path
    t sqrt(1 + cot_z^2 + cot_phi^2), is shared along z in proportion to each
    pixel's share of the length L = t cot_z; a pixel fires above
    ``pixel_threshold`` MIPs. At least one pixel fires (the whole charge is
    above threshold).
    """
    pitch, t = det.pixel_pitch_z, det.sensor_thickness
    length = t * np.abs(cot_z)
    path = np.sqrt(1.0 + cot_z**2 + cot_phi**2)
    # Overlap a pixel needs to collect the threshold: thr * Q_mip * L / Q.
    need = det.pixel_threshold * length / (charge * path)
    end = start + length
    touched = np.floor(end / pitch).astype(np.int64) + 1
    first = np.minimum(pitch - start, length)
    last = end - (touched - 1) * pitch
    size = np.where(touched == 1, 1,
                    (first >= need).astype(np.int64) + (last >= need)
                    + np.maximum(touched - 2, 0) * (pitch >= need))
    return np.maximum(size, 1).astype(np.int16)


@dataclass(frozen=True)
class Detector:
    """A barrel of cylindrical pixel layers around the beam line, in a solenoidal field."""

    name: str
    radii: tuple[float, ...]  # cm
    half_lengths: tuple[float, ...]  # cm, |z| covered by each layer
    material: tuple[float, ...]  # x/X0 of each layer at normal incidence
    sigma_rphi: float  # cm, hit resolution along the layer's circumference
    sigma_z: float  # cm, hit resolution along the beam
    field_tesla: float
    beam_pipe_radius: float  # cm (material only, no hits)
    beam_pipe_material: float  # x/X0
    beam_spot_sigma_xy: float = 0.0015  # cm, transverse size of the luminous region
    beam_spot_sigma_z: float = 4.5  # cm, length of the luminous region
    pixel_pitch_z: float = 0.0150  # cm, pixel size along the beam
    sensor_thickness: float = 0.0285  # cm, depleted silicon
    pixel_threshold: float = 0.10  # a pixel fires above this fraction of a normal MIP's charge

    def __post_init__(self) -> None:
        n = len(self.radii)
        if n < 3 or len(self.half_lengths) != n or len(self.material) != n:
            raise ValueError("a detector needs >= 3 layers, each with a half-length and material")
        if any(b <= a for a, b in zip(self.radii, self.radii[1:], strict=False)):
            raise ValueError("layer radii must increase outwards")
        if self.beam_pipe_radius >= self.radii[0]:
            raise ValueError("the beam pipe must lie inside the first layer")
        if self.field_tesla <= 0:
            raise ValueError("the field must be positive (tesla)")
        if self.pixel_pitch_z <= 0 or self.sensor_thickness <= 0 or \
                not 0 < self.pixel_threshold < 1:
            raise ValueError("pixels need a positive pitch and thickness and a threshold "
                             "between 0 and 1 MIP")

    @property
    def layers(self) -> int:
        return len(self.radii)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DETECTORS: dict[str, Detector] = {
    # CMS Phase-1 pixel barrel (BPix): 4 layers, modules cover |z| < ~26.7 cm, ~2 % X0 per
    # layer with services, 100x150 um pixels (285 um thick, threshold ~2000 e of a MIP's
    # ~22000) give ~10 um (r-phi) and ~20 um (z) with charge sharing; beryllium beam pipe
    # at 2.2 cm.
    "cms-phase1": Detector(
        name="cms-phase1", radii=(2.9, 6.8, 10.9, 16.0), half_lengths=(26.5, 26.5, 26.5, 26.5),
        material=(0.02, 0.02, 0.02, 0.02), sigma_rphi=0.0010, sigma_z=0.0020, field_tesla=3.8,
        beam_pipe_radius=2.2, beam_pipe_material=0.0025),
    # TrackML pixel barrel (volume 8): 32, 72, 116, 172 mm, |z| < ~45 cm, 50x50 um pixels,
    # taken 150 um thick.
    "trackml": Detector(
        name="trackml", radii=(3.2, 7.2, 11.6, 17.2), half_lengths=(45.5, 45.5, 45.5, 45.5),
        material=(0.015, 0.015, 0.015, 0.015), sigma_rphi=0.0015, sigma_z=0.0015,
        field_tesla=2.0, beam_pipe_radius=2.5, beam_pipe_material=0.0025,
        pixel_pitch_z=0.0050, sensor_thickness=0.0150),
}


def detector(name: str = "cms-phase1", field_tesla: float | None = None) -> Detector:
    """A named detector, optionally in another field (the geometry stays)."""
    key = name.strip().lower()
    if key not in DETECTORS:
        raise ValueError(f"detector: expected one of {', '.join(DETECTORS)}, got {name!r}")
    found = DETECTORS[key]
    return found if field_tesla is None else replace(found, field_tesla=float(field_tesla))


@dataclass(frozen=True)
class SeedingCuts:
    """The cuts both seeding algorithms apply (CMS Patatrack-like defaults).

    Doublets: a phi window from the lowest seed pT and the largest transverse
    impact parameter (plus multiple scattering and resolution), and a z window
    from the luminous region (the doublet's straight line must meet the beam
    line within |z0| < z0_max). Triplets: r-z alignment (the outer hit within
    ``rz_sigmas`` of the straight-line prediction, multiple scattering at the
    middle layer and hit resolution added in quadrature), the circle through
    the three hits must have pT >= pt_min and pass the beam line within d0_max.
    With ``cluster_shape``, a doublet's |dz/dr| must also lie in the range
    each hit's cluster length allows (``cluster_slopes``).
    """

    pt_min: float = 0.9  # GeV
    d0_max: float = 0.2  # cm
    z0_max: float = 15.0  # cm
    rz_sigmas: float = 4.0
    phi_sigmas: float = 3.0  # width of the multiple-scattering margin of the phi window
    min_hits: int = 3
    cluster_shape: bool = True  # doublets must match both hits' cluster lengths along z

    def __post_init__(self) -> None:
        if self.pt_min <= 0 or self.d0_max < 0 or self.z0_max <= 0 or self.rz_sigmas <= 0:
            raise ValueError("seeding cuts must be positive")
        if self.min_hits < 3:
            raise ValueError("seeds have at least three hits")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Windows:
    """Per layer pair (l, l+1): the half-width of the phi window (rad).

    The z window needs no table: it is the set of outer hits whose straight
    line through the inner hit meets the beam line within |z0| <= z0_max.
    """

    dphi: tuple[float, ...]
    radii: tuple[float, ...]
    min_radius_cm: float  # helix radius at pt_min
    ms_theta_pt_min: tuple[float, ...] = field(default=())  # Highland at pt_min, per layer


def windows(det: Detector, cuts: SeedingCuts) -> Windows:
    """Phi windows that keep every track with pT >= pt_min and |d0| <= d0_max.

    For a track from the beam line, phi(r) = phi0 - asin(r / 2R) + d0 / r to
    first order in d0, so between r1 and r2 it turns by at most
    asin(r2/2Rmin) - asin(r1/2Rmin) + d0_max (1/r1 - 1/r2); the margin covers
    a ``phi_sigmas`` multiple-scattering kink at the inner layer at pt_min and
    the hit resolution of both hits.
    """
    rmin = helix_radius_cm(cuts.pt_min, det.field_tesla)
    theta = tuple(highland(cuts.pt_min, x) for x in det.material)
    half: list[float] = []
    for i in range(det.layers - 1):
        r1, r2 = det.radii[i], det.radii[i + 1]
        if r2 >= 2 * rmin:
            raise ValueError(f"pt_min {cuts.pt_min} GeV curls up before {r2} cm in "
                             f"{det.field_tesla} T: lower the field or raise pt_min")
        bend = math.asin(r2 / (2 * rmin)) - math.asin(r1 / (2 * rmin))
        impact = cuts.d0_max * (1.0 / r1 - 1.0 / r2)
        scatter = cuts.phi_sigmas * math.hypot(theta[i] * (r2 - r1) / r2,
                                               det.sigma_rphi * (1.0 / r1 + 1.0 / r2))
        half.append(bend + impact + scatter)
    return Windows(dphi=tuple(half), radii=det.radii, min_radius_cm=rmin, ms_theta_pt_min=theta)


@functools.lru_cache(maxsize=16)
def cluster_slopes(det: Detector, cuts: SeedingCuts) -> np.ndarray:
    """Per layer and cluster size along z: the (lowest, highest) |dz/dr| of a doublet.

    Shape (layers, largest size + 2, 2); the last row stands for every larger
    size. The ranges come from ``cluster_size_z`` itself, scanned over the
    slope, the entry point in the pixel, the charge (``CHARGE_RANGE``) and
    the transverse tilt of tracks above pt_min, then widened by what
    separates a doublet's chord from the track's local slope at the hit: the
    helix's turn (1 / cos psi, psi the crossing angle at pt_min), a
    ``rz_sigmas`` multiple-scattering kink at the layer for pt_min, the z
    resolution over the shortest lever arm, and the scan's own step.
    """
    rmin = helix_radius_cm(cuts.pt_min, det.field_tesla)
    pitch, t = det.pixel_pitch_z, det.sensor_thickness
    steepest = max((h + cuts.z0_max) / r for h, r in zip(det.half_lengths, det.radii,
                                                          strict=True)) + 1.0
    step = 0.02 * pitch / t
    cot = np.arange(0.0, steepest + step, step)
    start = (np.arange(64) + 0.5) / 64 * pitch
    lever = min(b - a for a, b in zip(det.radii, det.radii[1:], strict=False))
    resolution = cuts.rz_sigmas * math.sqrt(2.0) * det.sigma_z / lever
    grid_cot, grid_start = np.meshgrid(cot, start, indexing="ij")
    tables = []
    for layer in range(det.layers):
        outer = det.radii[min(layer + 1, det.layers - 1)]
        tilt = math.tan(math.asin(min(outer / (2 * rmin), 0.999)))
        turn = 1.0 / math.cos(math.atan(tilt))
        sizes = [cluster_size_z(grid_cot, np.full_like(grid_cot, tilt_), grid_start,
                                np.full_like(grid_cot, charge), det)
                 for tilt_ in (0.0, tilt) for charge in CHARGE_RANGE]
        largest = max(int(s.max()) for s in sizes)
        table = np.empty((largest + 2, 2))
        table[:, 0], table[:, 1] = np.inf, -np.inf
        for size in sizes:
            for n in range(1, largest + 1):
                hit = np.any(size == n, axis=1)
                if hit.any():
                    table[n, 0] = min(table[n, 0], cot[hit].min())
                    table[n, 1] = max(table[n, 1], cot[hit].max())
        table[0] = table[1]
        table[largest + 1] = (table[largest, 0], np.inf)
        for n in range(largest + 2):
            lo, hi = table[n]
            kink_lo, kink_hi = (cuts.rz_sigmas * _kink_cot(cuts.pt_min, det.material[layer], c)
                                for c in (lo, min(hi, steepest)))
            table[n, 0] = max(0.0, lo / turn - kink_lo - resolution - step)
            table[n, 1] = hi * turn + kink_hi + resolution + step
        tables.append(table)
    rows = max(len(table) for table in tables)
    out = np.empty((det.layers, rows, 2))
    for layer, table in enumerate(tables):
        out[layer, :len(table)] = table
        out[layer, len(table):] = table[-1]
    return out


def _kink_cot(pt: float, material: float, cot: float) -> float:
    """Change of cot(theta) from one Highland kink at a layer, for a track of transverse pt."""
    stretch = 1.0 + cot * cot  # 1 / sin^2(theta)
    return highland(pt * math.sqrt(stretch), material * math.sqrt(stretch)) * stretch
