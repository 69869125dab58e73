"""The detailed simulation: a stochastic particle-level electromagnetic cascade (numba).

Every electron, positron and photon above a cutoff is followed through the
absorber step by step, as a full simulation does, so the cost grows with
the primary energy (the number of particles is about E / cutoff):

- e+-: continuous ionisation (the material's minimum-ionising dE/dx per X0),
  bremsstrahlung with the complete-screening Bethe-Heitler spectrum
  dN/(dk dt) = (4/3 - 4/3 k + k^2) / k above the photon cutoff, multiple
  scattering with the Highland angle, and a Landau (Moyal) distributed
  deposit in each active silicon plane they cross (divided by the cosine of
  the crossing angle); below the electron cutoff the rest is deposited where
  the particle stops;
- photons: pair production (mean free path 9/7 X0, Bethe-Heitler energy
  sharing) above 10 MeV, Compton scattering with Klein-Nishina angles below
  it (attenuation length ``compton_x0``), absorption below the photon cutoff.

Only the deposits in the active planes are visible; they give the cell
images (zero-suppressed below half a MIP, as a readout does), while
``layer_total`` books every MeV (absorber and active, per layer) and
``leakage`` what leaves the calorimeter, so that
sum(layer_total) + leakage = E exactly (checked by the tests). The sampling
fluctuations that set the resolution come out of counting crossings.

    from erumlab.science.showers import simulation
    sample = simulation.simulate("hgcal-7x12x15", [50.0] * 1000, seed=1)
    sample.cells.shape          # (1000, 7, 12, 15), MeV visible
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

from erumlab.science.showers.geometry import Geometry, get

ELECTRON_MASS = 0.51099895  # MeV
PAIR_MIN_MEV = 10.0          # below: Compton scattering dominates in lead
STACK = 1 << 16
CACHE_FORMAT = 2
DEFAULT_CUTS = {"electron_cut_mev": 1.0, "photon_cut_mev": 0.5, "compton_x0": 2.0}


@numba.njit(cache=False, inline="always")
def _rotate(ux: float, uy: float, uz: float, cost: float, phi: float) -> tuple[float, float, float]:
    sint = math.sqrt(max(0.0, 1.0 - cost * cost))
    cp, sp = math.cos(phi), math.sin(phi)
    if abs(uz) > 0.99999:
        sign = 1.0 if uz > 0 else -1.0
        return sint * cp, sint * sp, cost * sign
    tmp = math.sqrt(1.0 - uz * uz)
    nx = sint * (ux * uz * cp - uy * sp) / tmp + ux * cost
    ny = sint * (uy * uz * cp + ux * sp) / tmp + uy * cost
    nz = -sint * cp * tmp + uz * cost
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / norm, ny / norm, nz / norm


@numba.njit(cache=False)
def _layer_of(z: float, pitch: float, layers: int) -> int:
    index = int(z / pitch)
    return min(max(index, 0), layers - 1)


@numba.njit(cache=False)
def _shower(e0: float, x_start: float, y_start: float, layers: int, rows: int, cols: int,
            cell_mm: float, pitch: float, x0_mm: float, dedx: float, mip_mpv: float,
            mip_width: float, e_cut: float, g_cut: float, compton_x0: float,
            cells: np.ndarray, totals: np.ndarray) -> tuple[float, int]:
    depth = layers * pitch
    half_x = 0.5 * cols * cell_mm
    half_y = 0.5 * rows * cell_mm
    kind = np.empty(STACK, np.int8)
    st = np.empty((STACK, 7), np.float64)  # E, z, x, y, ux, uy, uz
    n = 1
    kind[0] = 0
    st[0, 0], st[0, 1], st[0, 2], st[0, 3] = e0, 0.0, x_start, y_start
    st[0, 4], st[0, 5], st[0, 6] = 0.0, 0.0, 1.0
    leak = 0.0
    steps = 0
    max_step = min(0.5, 0.25 * pitch)
    while n > 0:
        n -= 1
        e, z, x, y = st[n, 0], st[n, 1], st[n, 2], st[n, 3]
        ux, uy, uz = st[n, 4], st[n, 5], st[n, 6]
        if kind[n] == 0:  # electron or positron
            while True:
                steps += 1
                if e <= e_cut:
                    totals[_layer_of(z, pitch, layers)] += e
                    break
                kmin = g_cut / e
                s_brem = 1e30
                if kmin < 1.0:
                    rate = (4.0 / 3.0) * math.log(1.0 / kmin) - (4.0 / 3.0) * (1.0 - kmin) \
                        + 0.5 * (1.0 - kmin * kmin)
                    s_brem = -math.log(1.0 - np.random.random()) / rate
                s = min(s_brem, 0.2 * e / dedx, max_step)
                brem = s == s_brem
                z1 = z + s * uz
                x1 = x + s * x0_mm * ux
                y1 = y + s * x0_mm * uy
                # active planes crossed: at m * pitch, m = 1..layers
                lo, hi = min(z, z1), max(z, z1)
                m_first = int(math.floor(lo / pitch)) + 1
                m_last = int(math.floor(hi / pitch))
                for m in range(max(m_first, 1), min(m_last, layers) + 1):
                    if e <= 0.0:
                        break
                    f = (m * pitch - z) / (z1 - z)
                    px = x + f * (x1 - x)
                    py = y + f * (y1 - y)
                    g = np.random.normal()
                    moyal = min(-math.log(g * g + 1e-300), 30.0)
                    deposit = (mip_mpv + mip_width * moyal) / max(abs(uz), 0.1)
                    deposit = min(deposit, e)
                    e -= deposit
                    totals[m - 1] += deposit
                    if abs(px) < half_x and abs(py) < half_y:
                        col = int((px + half_x) / cell_mm)
                        row = int((py + half_y) / cell_mm)
                        cells[m - 1, min(row, rows - 1), min(col, cols - 1)] += deposit
                loss = min(dedx * s, e)
                zm = 0.5 * (z + z1)
                if zm < 0.0 or zm > depth:
                    leak += loss
                else:
                    totals[_layer_of(zm, pitch, layers)] += loss
                e0_step = e
                e -= loss
                z, x, y = z1, x1, y1
                if z < 0.0 or z > depth:
                    leak += e
                    break
                if e <= 0.0:
                    break
                # Highland multiple-scattering angle for this step
                theta0 = 13.6 / e0_step * math.sqrt(s) * max(0.5, 1.0 + 0.038 * math.log(s))
                tx = theta0 * np.random.normal()
                ty = theta0 * np.random.normal()
                theta = min(math.sqrt(tx * tx + ty * ty), math.pi)
                ux, uy, uz = _rotate(ux, uy, uz, math.cos(theta), math.atan2(ty, tx))
                if brem and e > g_cut:
                    kmin = g_cut / e
                    while True:  # (4/3 - 4/3 k + k^2)/k by log-uniform proposal and rejection
                        k = kmin ** np.random.random()
                        if np.random.random() * (4.0 / 3.0) <= 4.0 / 3.0 - 4.0 / 3.0 * k + k * k:
                            break
                    photon = k * e
                    e -= photon
                    if n >= STACK:
                        raise RuntimeError("particle stack overflow")
                    kind[n] = 1
                    st[n, 0], st[n, 1], st[n, 2], st[n, 3] = photon, z, x, y
                    st[n, 4], st[n, 5], st[n, 6] = ux, uy, uz
                    n += 1
        else:  # photon
            while True:
                steps += 1
                if e <= g_cut:
                    totals[_layer_of(z, pitch, layers)] += e
                    break
                pair = e > PAIR_MIN_MEV
                lam = 9.0 / 7.0 if pair else compton_x0
                s = -lam * math.log(1.0 - np.random.random())
                z = z + s * uz
                x = x + s * x0_mm * ux
                y = y + s * x0_mm * uy
                if z < 0.0 or z > depth:
                    leak += e
                    break
                if pair:
                    while True:  # Bethe-Heitler sharing: 1 - 4/3 x (1 - x)
                        share = np.random.random()
                        if np.random.random() <= 1.0 - (4.0 / 3.0) * share * (1.0 - share):
                            break
                    kinetic = e - 2.0 * ELECTRON_MASS
                    totals[_layer_of(z, pitch, layers)] += 2.0 * ELECTRON_MASS  # annihilation, local
                    if n + 2 > STACK:
                        raise RuntimeError("particle stack overflow")
                    for part in (share * kinetic, (1.0 - share) * kinetic):
                        angle = ELECTRON_MASS / max(part, ELECTRON_MASS) * abs(np.random.normal())
                        vx, vy, vz = _rotate(ux, uy, uz, math.cos(angle),
                                             2.0 * math.pi * np.random.random())
                        kind[n] = 0
                        st[n, 0], st[n, 1], st[n, 2], st[n, 3] = part, z, x, y
                        st[n, 4], st[n, 5], st[n, 6] = vx, vy, vz
                        n += 1
                    break
                # Compton scattering, Klein-Nishina angle by rejection
                kappa = e / ELECTRON_MASS
                while True:
                    cost = 2.0 * np.random.random() - 1.0
                    r = 1.0 / (1.0 + kappa * (1.0 - cost))
                    if 2.0 * np.random.random() <= r * r * (r + 1.0 / r - (1.0 - cost * cost)):
                        break
                electron = e * (1.0 - r)
                if n >= STACK:
                    raise RuntimeError("particle stack overflow")
                kind[n] = 0
                st[n, 0], st[n, 1], st[n, 2], st[n, 3] = electron, z, x, y
                st[n, 4], st[n, 5], st[n, 6] = ux, uy, uz
                n += 1
                e = e * r
                ux, uy, uz = _rotate(ux, uy, uz, cost, 2.0 * math.pi * np.random.random())
    return leak, steps


@numba.njit(parallel=True, cache=False)
def _batch(energies: np.ndarray, xs: np.ndarray, ys: np.ndarray, seeds: np.ndarray,
           layers: int, rows: int, cols: int, cell_mm: float, pitch: float, x0_mm: float,
           dedx: float, mip_mpv: float, mip_width: float, e_cut: float, g_cut: float,
           compton_x0: float, cells: np.ndarray, totals: np.ndarray, leak: np.ndarray,
           steps: np.ndarray) -> None:
    for i in numba.prange(energies.shape[0]):
        np.random.seed(seeds[i])  # per shower: the result does not depend on the thread count
        leak[i], steps[i] = _shower(energies[i], xs[i], ys[i], layers, rows, cols, cell_mm,
                                    pitch, x0_mm, dedx, mip_mpv, mip_width, e_cut, g_cut,
                                    compton_x0, cells[i], totals[i])


@dataclass
class ShowerSample:
    """Simulated showers: visible cell energies and the bookkeeping of every MeV.

    ``energies`` are the primaries' energies [GeV], ``positions`` their impact
    points (x, y) [mm], ``cells`` the visible energies [MeV] (n, layers, rows,
    cols), ``layer_total`` all energy deposited per layer [MeV] (absorber and
    active), ``leakage`` what left the calorimeter [MeV], ``steps`` the number
    of transport steps per shower (the simulation's cost).
    """

    geometry: str
    energies: np.ndarray
    positions: np.ndarray
    cells: np.ndarray
    layer_total: np.ndarray
    leakage: np.ndarray
    steps: np.ndarray
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.energies))

    def select(self, mask: np.ndarray) -> ShowerSample:
        return ShowerSample(self.geometry, self.energies[mask], self.positions[mask],
                            self.cells[mask], self.layer_total[mask], self.leakage[mask],
                            self.steps[mask], self.seconds, dict(self.settings))

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(temporary, energies=self.energies, positions=self.positions,
                            cells=self.cells, layer_total=self.layer_total.astype(np.float32),
                            leakage=self.leakage.astype(np.float32), steps=self.steps,
                            meta=np.array(json.dumps({"geometry": self.geometry,
                                                      "seconds": self.seconds,
                                                      "settings": self.settings})))
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, path: Path) -> ShowerSample:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(meta["geometry"], data["energies"], data["positions"], data["cells"],
                       data["layer_total"].astype(np.float64), data["leakage"].astype(np.float64),
                       data["steps"], meta["seconds"], meta["settings"])


def set_threads(threads: int | None) -> None:
    """Use ``threads`` numba threads (None: all numba allows)."""
    if threads:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def simulate(geometry: str | Geometry, energies_gev: np.ndarray | list[float],
             positions_mm: np.ndarray | None = None, *, seed: int = 0,
             electron_cut_mev: float = DEFAULT_CUTS["electron_cut_mev"],
             photon_cut_mev: float = DEFAULT_CUTS["photon_cut_mev"],
             compton_x0: float = DEFAULT_CUTS["compton_x0"], threads: int | None = None
             ) -> ShowerSample:
    """Simulate one shower per entry of ``energies_gev`` (electrons entering along z).

    ``positions_mm`` (n, 2) are the impact points (default: the axis). Each
    shower is seeded from ``seed`` and its index, so a sample is reproducible
    whatever the number of threads.
    """
    geo = get(geometry)
    energies = np.ascontiguousarray(energies_gev, dtype=np.float64).reshape(-1)
    count = len(energies)
    if np.any(energies <= 0):
        raise ValueError("energies must be positive (GeV)")
    positions = (np.zeros((count, 2)) if positions_mm is None
                 else np.ascontiguousarray(positions_mm, dtype=np.float64).reshape(count, 2))
    seeds = np.random.SeedSequence(seed).generate_state(count, dtype=np.uint32).astype(np.int64)
    cells = np.zeros((count, *geo.shape), dtype=np.float64)
    totals = np.zeros((count, geo.layers), dtype=np.float64)
    leak = np.zeros(count, dtype=np.float64)
    steps = np.zeros(count, dtype=np.int64)
    set_threads(threads)
    started = time.perf_counter()
    if count:
        _batch(energies * 1000.0, positions[:, 0].copy(), positions[:, 1].copy(), seeds,
               geo.layers, geo.rows, geo.cols, geo.cell_mm, geo.absorber_x0,
               geo.material.x0_mm, geo.material.dedx_mev_per_x0, geo.mip_mpv_mev,
               geo.mip_width_mev, float(electron_cut_mev), float(photon_cut_mev),
               float(compton_x0), cells, totals, leak, steps)
    seconds = time.perf_counter() - started
    cells[cells < geo.threshold_mev] = 0.0  # the readout's zero suppression
    settings = {"seed": int(seed), "electron_cut_mev": float(electron_cut_mev),
                "photon_cut_mev": float(photon_cut_mev), "compton_x0": float(compton_x0)}
    return ShowerSample(geo.name, energies, positions, cells.astype(np.float32), totals, leak,
                        steps, seconds, settings)


def warm_up(geometry: str | Geometry = "hgcal-7x12x15") -> None:
    """Compile the cascade (a few seconds, once per process) so timings exclude it."""
    simulate(geometry, [1.0], seed=0)


def uniform_positions(count: int, spread_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Impact points uniform in a square of half-width ``spread_mm`` around the axis."""
    return rng.uniform(-spread_mm, spread_mm, size=(count, 2))


# Training samples: settings, cache --------------------------------------------------------


def settings(geometry: str, energies: list[float], showers_per_energy: int, seed: int = 0,
             position_spread_mm: float = 10.0) -> dict[str, Any]:
    """Everything that determines a training sample (the cache key is their hash)."""
    return {"geometry": get(geometry).as_dict(), "energies": [float(e) for e in energies],
            "showers_per_energy": int(showers_per_energy), "seed": int(seed),
            "position_spread_mm": float(position_spread_mm), "cuts": dict(DEFAULT_CUTS),
            "format": CACHE_FORMAT}


def cache_key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("ERUMLAB_CACHE_DIR") or Path.home() / ".cache" / "erumlab") / "showers"


def cache_path(config: dict[str, Any], folder: Path | None = None) -> Path:
    return Path(folder or cache_dir()) / f"showers-{config['geometry']['name']}-{cache_key(config)}.npz"


def generate_sample(config: dict[str, Any], threads: int | None = None) -> ShowerSample:
    """The sample ``config`` describes: ``showers_per_energy`` showers at each energy."""
    rng = np.random.default_rng(config["seed"])
    energies = np.repeat(np.asarray(config["energies"], dtype=np.float64),
                         config["showers_per_energy"])
    positions = uniform_positions(len(energies), config["position_spread_mm"], rng)
    sample = simulate(config["geometry"]["name"], energies, positions, seed=config["seed"],
                      threads=threads, **config["cuts"])
    sample.settings = dict(config)
    return sample


def load_or_generate(config: dict[str, Any], folder: Path | None = None,
                     threads: int | None = None) -> tuple[ShowerSample, Path, bool]:
    """The cached sample for ``config``, simulating and caching it first if needed."""
    path = cache_path(config, folder)
    if path.is_file():
        return ShowerSample.load(path), path, True
    sample = generate_sample(config, threads)
    sample.save(path)
    return sample, path, False
