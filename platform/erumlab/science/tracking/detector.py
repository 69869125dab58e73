"""Detector geometry, the magnetic field and the seeding cuts, in cm, GeV and tesla.

Two barrel pixel detectors: a CMS-Phase-1-like barrel (four layers at 2.9, 6.8,
10.9 and 16.0 cm in 3.8 T) and a TrackML-like one (32, 72, 116 and 172 mm in
2 T). Only the barrel is modelled: it is where pileup makes seeding
combinatorial, and it keeps every particle's hits on consecutive layers.

The helper functions here are the physics every other module shares: the
transverse radius of a helix, R[m] = pT[GeV] / (0.3 B[T]) (0.88 m per GeV at
3.8 T), and Highland's multiple-scattering angle. The seeding windows are
derived from the cuts and the geometry (never tuned per event), so the cellular
automaton and the triplet baseline see exactly the same windows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

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

    @property
    def layers(self) -> int:
        return len(self.radii)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DETECTORS: dict[str, Detector] = {
    # CMS Phase-1 pixel barrel (BPix): 4 layers, modules cover |z| < ~26.7 cm, ~2 % X0 per
    # layer with services, 100x150 um pixels give ~10 um (r-phi) and ~20 um (z) with charge
    # sharing; beryllium beam pipe at 2.2 cm.
    "cms-phase1": Detector(
        name="cms-phase1", radii=(2.9, 6.8, 10.9, 16.0), half_lengths=(26.5, 26.5, 26.5, 26.5),
        material=(0.02, 0.02, 0.02, 0.02), sigma_rphi=0.0010, sigma_z=0.0020, field_tesla=3.8,
        beam_pipe_radius=2.2, beam_pipe_material=0.0025),
    # TrackML pixel barrel (volume 8): 32, 72, 116, 172 mm, |z| < ~45 cm, 50x50 um pixels.
    "trackml": Detector(
        name="trackml", radii=(3.2, 7.2, 11.6, 17.2), half_lengths=(45.5, 45.5, 45.5, 45.5),
        material=(0.015, 0.015, 0.015, 0.015), sigma_rphi=0.0015, sigma_z=0.0015,
        field_tesla=2.0, beam_pipe_radius=2.5, beam_pipe_material=0.0025),
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
    """

    pt_min: float = 0.9  # GeV
    d0_max: float = 0.2  # cm
    z0_max: float = 15.0  # cm
    rz_sigmas: float = 4.0
    phi_sigmas: float = 3.0  # width of the multiple-scattering margin of the phi window
    min_hits: int = 3

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
