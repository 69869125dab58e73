"""Sampling-calorimeter geometries: absorber/active layers read out in a grid of cells.

A layer is an absorber slab (thickness in radiation lengths X0 of the absorber)
followed by a thin active plane (silicon) that sees only the ionisation of the
charged particles crossing it; the cells tile that plane. Depth in the
cascade is measured in absorber X0 (the active planes add a negligible amount
of material), lateral distances in mm.

Two geometries are offered:

- ``"hgcal-7x12x15"`` (default): close to the HGCAL test-beam prototype of the
  reference (Erdmann, Glombitza, Quast, arXiv:1807.01954): 7 layers of 12x15
  cells of 10 mm, lead absorber of 2.8 X0 per layer (19.6 X0 in all);
- ``"fine-24x20x20"``: a larger, finer one: 24 layers of 1.25 X0 (30 X0, so
  the longitudinal profile is contained and resolved) of 20x20 cells of 8 mm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Material:
    """An absorber's constants for the cascade (PDG values)."""

    name: str
    z: float                 # atomic number (for Grindhammer-Peters)
    a: float                 # atomic mass [g/mol]
    x0_g_cm2: float          # radiation length [g/cm^2]
    density: float           # [g/cm^3]
    dedx_mev_per_x0: float   # minimum-ionising loss per radiation length [MeV]

    @property
    def x0_mm(self) -> float:
        return 10.0 * self.x0_g_cm2 / self.density

    @property
    def critical_energy(self) -> float:
        """E_c ~ 2.66 (X0 Z/A)^1.1 MeV (the parametrisation the GFlash constants go with)."""
        return 2.66 * (self.x0_g_cm2 * self.z / self.a) ** 1.1

    @property
    def moliere_radius_mm(self) -> float:
        """R_M = 21 MeV X0 / E_c."""
        return 21.0 * self.x0_mm / self.critical_energy


LEAD = Material("lead", 82.0, 207.2, 6.37, 11.35, 1.122 * 6.37)


@dataclass(frozen=True)
class Geometry:
    """Layers of ``absorber_x0`` absorber, each read out by ``rows`` x ``cols`` cells."""

    name: str
    layers: int
    rows: int
    cols: int
    cell_mm: float
    absorber_x0: float
    material: Material = LEAD
    # Silicon active plane: most probable and Landau width of a MIP's deposit [MeV] (300 um Si).
    mip_mpv_mev: float = 0.084
    mip_width_mev: float = 0.0053
    # Zero suppression of the readout: cells below half a MIP's most probable deposit read 0.
    threshold_mev: float = 0.042

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.layers, self.rows, self.cols)

    @property
    def cells(self) -> int:
        return self.layers * self.rows * self.cols

    @property
    def depth_x0(self) -> float:
        return self.layers * self.absorber_x0

    @property
    def layer_depths_x0(self) -> np.ndarray:
        """Depth of each active plane (end of its absorber) in X0."""
        return self.absorber_x0 * np.arange(1, self.layers + 1, dtype=np.float64)

    @property
    def sampling_fraction(self) -> float:
        """Expected visible / deposited energy: mean MIP deposit per crossing over the loss per layer."""
        mean_mip = self.mip_mpv_mev + 1.27 * self.mip_width_mev  # the Moyal mean
        return mean_mip / (self.material.dedx_mev_per_x0 * self.absorber_x0)

    def cell_centres_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """x (columns) and y (rows) of cell centres, the calorimeter axis at 0."""
        x = (np.arange(self.cols) - (self.cols - 1) / 2.0) * self.cell_mm
        y = (np.arange(self.rows) - (self.rows - 1) / 2.0) * self.cell_mm
        return x, y

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["material"] = asdict(self.material)
        return out


GEOMETRIES: dict[str, Geometry] = {
    "hgcal-7x12x15": Geometry("hgcal-7x12x15", 7, 12, 15, 10.0, 2.8),
    "fine-24x20x20": Geometry("fine-24x20x20", 24, 20, 20, 8.0, 1.25),
}
DEFAULT_GEOMETRY = "hgcal-7x12x15"


def get(name: str | Geometry) -> Geometry:
    if isinstance(name, Geometry):
        return name
    if name not in GEOMETRIES:
        raise ValueError(f"unknown geometry {name!r}; known: {', '.join(GEOMETRIES)}")
    return GEOMETRIES[name]
