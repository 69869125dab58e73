"""Events: a hard scatter plus Poisson pileup from Pythia 8, propagated through the barrel.

Each event is a hard-scatter interaction (ttbar by default) overlaid with N
minimum-bias interactions (SoftQCD:inelastic at 13.6 TeV), N drawn from a
Poisson distribution with the chosen mean pileup; every interaction gets its
own vertex in the luminous region (Gaussian, sigma_z 4.5 cm). Charged
final-state particles are propagated as helices through the layers in the
solenoidal field, with a Highland multiple-scattering kink at the beam pipe
and at every layer and Gaussian hit smearing; every hit keeps the index of
the particle that made it. Pythia is imported only when events are generated,
so the package imports (and the seeding runs on cached events) without it.

Events are cached as npz files keyed by everything that determines them, in
``cache_dir`` (default: $ERUMLAB_CACHE_DIR/tracking, else ~/.cache/erumlab/tracking).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from erumlab.science.tracking.detector import (
    C_CM,
    HIGHLAND_MEV,
    LANDAU_WIDTH,
    Detector,
    cluster_size_z,
)

GENERATOR_VERSION = 2  # bump when the simulation changes: old cache entries stop matching
ECM_GEV = 13600.0
HARD_PROCESSES = {
    "ttbar": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"],
    "none": [],
}
MAX_PATH_FACTOR = 10.0  # caps x/X0 at grazing incidence


# Particles and propagation ------------------------------------------------------------


@dataclass
class Particles:
    """Charged final-state particles of one event (arrays of equal length; cm, GeV)."""

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    x: np.ndarray  # production point
    y: np.ndarray
    z: np.ndarray
    vertex: np.ndarray  # interaction index: 0 is the hard scatter
    pdg: np.ndarray
    displacement: np.ndarray  # transverse distance of production from its interaction vertex

    def __len__(self) -> int:
        return len(self.px)

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        return np.arcsinh(self.pz / np.maximum(self.pt, 1e-12))

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)


@dataclass
class Hits:
    """Measured hits (x, y, z in cm), their layer and the particle that made them (-1: noise).

    ``size_z``: the cluster's length along z in pixels (None where unknown,
    e.g. hand-made hits: the cluster-shape cut then accepts them).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    layer: np.ndarray
    particle: np.ndarray
    size_z: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def r(self) -> np.ndarray:
        return np.hypot(self.x, self.y)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.y, self.x)


@dataclass
class Event:
    """One bunch crossing: particles, hits with truth links, and the interaction vertices."""

    particles: Particles
    hits: Hits
    vertex_z: np.ndarray
    pileup: int  # mean pileup this event was drawn at
    interactions: int  # pileup interactions actually overlaid (Poisson draw)

    def layers_hit(self, layers: int) -> np.ndarray:
        """Per particle: how many distinct layers it left a hit on."""
        real = self.hits.particle >= 0
        counts = np.zeros((len(self.particles), layers), dtype=bool)
        counts[self.hits.particle[real], self.hits.layer[real]] = True
        return counts.sum(axis=1)


def propagate(particles: Particles, det: Detector, rng: np.random.Generator, *,
              scatter: bool = True, smear: bool = True) -> Hits:
    """Helices through the beam pipe and the layers; one hit per particle per layer crossed.

    Vectorised over particles, surface by surface: the circle of the helix in
    the transverse plane is intersected with the next cylinder, the first
    crossing along the direction of motion is taken, z advances by the arc
    length times pz/pT, and the momentum turns by the arc's angle. A particle
    stops when its circle no longer reaches the next radius (a looper) or it
    leaves the layer's length in z. At each surface the direction gets two
    independent Gaussian kinks of Highland's width, with x/X0 scaled by the
    path length through the tilted cylinder. Every hit gets its cluster
    length along z (``detector.cluster_size_z``) from the local direction,
    a random entry point in the pixel and a Landau-like (Moyal) charge.
    """
    n = len(particles)
    x, y, z = particles.x.astype(float), particles.y.astype(float), particles.z.astype(float)
    px, py, pz = particles.px.astype(float), particles.py.astype(float), particles.pz.astype(float)
    charge = particles.charge.astype(float)
    p = np.sqrt(px**2 + py**2 + pz**2)
    beta = p / np.sqrt(p**2 + particles.mass.astype(float) ** 2)
    # Rotation sense in the transverse plane: +1 counter-clockwise. F = q v x B with B along
    # +z turns positive charges clockwise.
    sense = -np.sign(charge * det.field_tesla)
    alive = (charge != 0) & (np.hypot(px, py) > 0)
    surfaces = [(det.beam_pipe_radius, math.inf, det.beam_pipe_material, -1)]
    surfaces += [(r, h, m, i) for i, (r, h, m) in
                 enumerate(zip(det.radii, det.half_lengths, det.material, strict=True))]
    out_x, out_y, out_z, out_layer, out_particle, out_size = [], [], [], [], [], []
    index = np.arange(n)
    for radius, half_length, material, layer in surfaces:
        start_r = np.hypot(x, y)
        go = alive & (start_r < radius)
        if not go.any():
            continue
        i = index[go]
        pt = np.hypot(px[i], py[i])
        big_r = pt / (C_CM * np.abs(charge[i]) * det.field_tesla)
        s = sense[i]
        # Centre of the circle: to the left of the motion for counter-clockwise turning.
        cx = x[i] - s * big_r * py[i] / pt
        cy = y[i] + s * big_r * px[i] / pt
        d = np.hypot(cx, cy)
        reach = (d + big_r >= radius) & (np.abs(d - big_r) <= radius) & (d > 0)
        alive[i[~reach]] = False
        i, pt, big_r, s, cx, cy, d = (a[reach] for a in (i, pt, big_r, s, cx, cy, d))
        if len(i) == 0:
            continue
        # Intersections of |P| = radius with |P - C| = R.
        a = (radius**2 - big_r**2 + d**2) / (2 * d)
        height = np.sqrt(np.clip(radius**2 - a**2, 0.0, None))
        ux, uy = cx / d, cy / d
        start_angle = np.arctan2(y[i] - cy, x[i] - cx)
        best_turn = np.full(len(i), np.inf)
        best_x, best_y = np.zeros(len(i)), np.zeros(len(i))
        for sign in (1.0, -1.0):
            qx = a * ux - sign * height * uy
            qy = a * uy + sign * height * ux
            turn = np.mod(s * (np.arctan2(qy - cy, qx - cx) - start_angle), 2 * np.pi)
            better = (turn > 1e-12) & (turn < best_turn)
            best_turn = np.where(better, turn, best_turn)
            best_x = np.where(better, qx, best_x)
            best_y = np.where(better, qy, best_y)
        new_z = z[i] + big_r * best_turn * pz[i] / pt
        inside = np.abs(new_z) <= half_length
        alive[i[~inside]] = False
        i, best_turn, best_x, best_y, new_z, s = (
            v[inside] for v in (i, best_turn, best_x, best_y, new_z, s))
        # Move to the crossing and turn the momentum by the arc's angle.
        c, sn = np.cos(s * best_turn), np.sin(s * best_turn)
        px[i], py[i] = c * px[i] - sn * py[i], sn * px[i] + c * py[i]
        x[i], y[i], z[i] = best_x, best_y, new_z
        if layer >= 0:
            hit_phi = np.arctan2(best_y, best_x)
            hit_z = new_z.copy()
            if smear:
                hit_phi = hit_phi + rng.normal(0.0, det.sigma_rphi, len(i)) / radius
                hit_z = hit_z + rng.normal(0.0, det.sigma_z, len(i))
            out_x.append(radius * np.cos(hit_phi))
            out_y.append(radius * np.sin(hit_phi))
            out_z.append(hit_z)
            out_layer.append(np.full(len(i), layer, dtype=np.int8))
            out_particle.append(i.astype(np.int32))
            out_size.append(_cluster_sizes(px[i], py[i], pz[i], best_x, best_y, det, rng))
        if scatter and material > 0:
            _scatter(i, px, py, pz, x, y, p, beta, charge, material, rng)
    if out_x:
        return Hits(np.concatenate(out_x), np.concatenate(out_y), np.concatenate(out_z),
                    np.concatenate(out_layer), np.concatenate(out_particle),
                    np.concatenate(out_size))
    empty = np.zeros(0)
    return Hits(empty, empty.copy(), empty.copy(), np.zeros(0, np.int8), np.zeros(0, np.int32),
                np.zeros(0, np.int16))


def _cluster_sizes(px: np.ndarray, py: np.ndarray, pz: np.ndarray, x: np.ndarray,
                   y: np.ndarray, det: Detector, rng: np.random.Generator) -> np.ndarray:
    """Cluster lengths along z of crossings at (x, y) with momenta (px, py, pz)."""
    r = np.hypot(x, y)
    normal = np.abs(px * x + py * y) / r
    along = np.abs(py * x - px * y) / r
    normal = np.maximum(normal, 1e-9)
    start = rng.uniform(0.0, det.pixel_pitch_z, len(r))
    moyal = -np.log(rng.standard_normal(len(r)) ** 2 + 1e-300)  # Moyal(0, 1)
    charge = np.maximum(1.0 + LANDAU_WIDTH * moyal, 0.05)
    return cluster_size_z(np.abs(pz) / normal, along / normal, start, charge, det)


def _scatter(i: np.ndarray, px: np.ndarray, py: np.ndarray, pz: np.ndarray, x: np.ndarray,
             y: np.ndarray, p: np.ndarray, beta: np.ndarray, charge: np.ndarray,
             material: float, rng: np.random.Generator) -> None:
    """Two Highland kinks perpendicular to the direction, in place (|p| is kept)."""
    ux, uy, uz = px[i] / p[i], py[i] / p[i], pz[i] / p[i]
    r = np.hypot(x[i], y[i])
    incidence = np.abs(ux * x[i] + uy * y[i]) / r  # cosine to the cylinder's normal
    thickness = material / np.maximum(incidence, 1.0 / MAX_PATH_FACTOR)
    q2 = charge[i] ** 2
    theta0 = (HIGHLAND_MEV / (beta[i] * p[i]) * np.sqrt(q2 * thickness)
              * (1.0 + 0.038 * np.log(thickness * q2 / beta[i] ** 2)))
    t1 = rng.normal(0.0, 1.0, len(i)) * theta0
    t2 = rng.normal(0.0, 1.0, len(i)) * theta0
    norm = np.hypot(ux, uy)
    e1x, e1y = -uy / norm, ux / norm  # transverse, perpendicular to u
    e2x, e2y, e2z = uy * 0 - uz * e1y, uz * e1x, ux * e1y - uy * e1x  # u x e1
    nx, ny, nz = ux + t1 * e1x + t2 * e2x, uy + t1 * e1y + t2 * e2y, uz + t2 * e2z
    scale = p[i] / np.sqrt(nx**2 + ny**2 + nz**2)
    px[i], py[i], pz[i] = nx * scale, ny * scale, nz * scale


# Pythia ---------------------------------------------------------------------------------


class PythiaSource:
    """Minimum-bias and hard-scatter interactions from pythia8mc (imported on first use)."""

    def __init__(self, seed: int = 0, hard_process: str = "ttbar", ecm: float = ECM_GEV) -> None:
        if hard_process not in HARD_PROCESSES:
            raise ValueError(f"hard_process: expected one of {', '.join(HARD_PROCESSES)}")
        self.seed, self.hard_process, self.ecm = seed, hard_process, ecm
        self._minbias: Any = None
        self._hard: Any = None

    def reseed(self, seed: int) -> None:
        """Restart both random streams (cheap: initialising Pythia takes seconds, this doesn't).

        One source then serves a whole pileup scan while each pileup's events
        depend only on their own seed.
        """
        self.seed = seed
        for offset, pythia in ((1, self._minbias), (2, self._hard)):
            if pythia is not None:
                pythia.rndm.init(self._seed_for(offset))

    def _seed_for(self, offset: int) -> int:
        return (self.seed * 7919 + offset) % 900_000_000 + 1

    def _pythia(self, settings: list[str], offset: int) -> Any:
        try:
            import pythia8mc
        except ImportError as exc:  # pragma: no cover - a dependency of erumlab
            raise RuntimeError("event generation needs pythia8mc: pip install pythia8mc==8.317.2") \
                from exc
        pythia = pythia8mc.Pythia("", False)
        seed = self._seed_for(offset)
        for line in [f"Beams:eCM = {self.ecm}", "Random:setSeed = on", f"Random:seed = {seed}",
                     "Print:quiet = on",
                     "Next:numberCount = 0", "Next:numberShowEvent = 0",
                     "Next:numberShowInfo = 0", "Next:numberShowProcess = 0", *settings]:
            if not pythia.readString(line):
                raise RuntimeError(f"Pythia rejected the setting {line!r}")
        if not pythia.init():
            raise RuntimeError("Pythia failed to initialise")
        return pythia

    def minbias(self) -> tuple[np.ndarray, ...]:
        if self._minbias is None:
            self._minbias = self._pythia(["SoftQCD:inelastic = on"], offset=1)
        return _charged_final(self._minbias)

    def hard(self) -> tuple[np.ndarray, ...]:
        if self.hard_process == "none":
            return tuple(np.zeros(0) for _ in range(9))
        if self._hard is None:
            self._hard = self._pythia(HARD_PROCESSES[self.hard_process], offset=2)
        return _charged_final(self._hard)


def _charged_final(pythia: Any) -> tuple[np.ndarray, ...]:
    """px, py, pz, m, charge, x, y, z (cm, relative to the interaction), pdg of one event."""
    for _ in range(10):
        if pythia.next():
            break
    else:  # pragma: no cover - Pythia essentially never fails ten times in a row
        raise RuntimeError("Pythia failed to generate an event ten times in a row")
    rows = [(prt.px(), prt.py(), prt.pz(), prt.m(), prt.charge(), prt.xProd(), prt.yProd(),
             prt.zProd(), prt.id())
            for prt in pythia.event if prt.isFinal() and prt.isCharged()]
    table = np.array(rows, dtype=float).reshape(-1, 9)
    table[:, 5:8] *= 0.1  # Pythia's vertices are in mm
    return tuple(table[:, k] for k in range(9))


def generate_event(source: PythiaSource, pileup: float, det: Detector,
                   rng: np.random.Generator) -> Event:
    """One bunch crossing at mean pileup ``pileup`` (hard scatter + Poisson(pileup) min-bias)."""
    interactions = int(rng.poisson(pileup)) if pileup > 0 else 0
    parts = [source.hard()] + [source.minbias() for _ in range(interactions)]
    vx = rng.normal(0.0, det.beam_spot_sigma_xy, len(parts))
    vy = rng.normal(0.0, det.beam_spot_sigma_xy, len(parts))
    vz = rng.normal(0.0, det.beam_spot_sigma_z, len(parts))
    columns: list[list[np.ndarray]] = [[] for _ in range(11)]
    for k, part in enumerate(parts):
        px, py, pz, m, q, x, y, z, pdg = part
        values = [px, py, pz, m, q, x + vx[k], y + vy[k], z + vz[k],
                  np.full(len(px), k, dtype=np.int32), pdg.astype(np.int32), np.hypot(x, y)]
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    particles = Particles(*(np.concatenate(c) if c else np.zeros(0) for c in columns))
    particles.vertex = particles.vertex.astype(np.int32)
    particles.pdg = particles.pdg.astype(np.int32)
    hits = propagate(particles, det, rng)
    return Event(particles=particles, hits=hits, vertex_z=vz, pileup=int(round(pileup)),
                 interactions=interactions)


# Cache ----------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """$ERUMLAB_CACHE_DIR/tracking, else ~/.cache/erumlab/tracking (the client's cache root)."""
    root = os.environ.get("ERUMLAB_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "erumlab") / "tracking"


def cache_key(det: Detector, pileup: int, events: int, seed: int, hard_process: str) -> str:
    """A file name that changes whenever anything that shapes the events changes."""
    recipe = {"version": GENERATOR_VERSION, "detector": det.as_dict(), "pileup": pileup,
              "events": events, "seed": seed, "hard_process": hard_process, "ecm": ECM_GEV}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{det.name}-pu{pileup}-n{events}-s{seed}-{digest}.npz"


PARTICLE_FIELDS = ("px", "py", "pz", "mass", "charge", "x", "y", "z", "vertex", "pdg",
                   "displacement")
HIT_FIELDS = ("x", "y", "z", "layer", "particle", "size_z")


def save_events(events: Sequence[Event], path: Path, meta: dict[str, Any]) -> None:
    """Events concatenated into flat arrays with offsets, plus their recipe as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "particle_offsets": np.cumsum([0] + [len(e.particles) for e in events]),
        "hit_offsets": np.cumsum([0] + [len(e.hits) for e in events]),
        "vertex_offsets": np.cumsum([0] + [len(e.vertex_z) for e in events]),
        "vertex_z": np.concatenate([e.vertex_z for e in events]) if events else np.zeros(0),
        "pileup": np.array([e.pileup for e in events], dtype=np.int32),
        "interactions": np.array([e.interactions for e in events], dtype=np.int32),
        "meta": np.array(json.dumps(meta)),
    }
    for name in PARTICLE_FIELDS:
        arrays[f"particle_{name}"] = np.concatenate([getattr(e.particles, name) for e in events])
    for name in HIT_FIELDS:
        columns = [getattr(e.hits, name) for e in events]
        if all(c is not None for c in columns):
            arrays[f"hit_{name}"] = np.concatenate(columns)
    partial = path.with_name(path.name + ".part.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(path)


def load_events(path: str | Path) -> tuple[list[Event], dict[str, Any]]:
    """The events of a file written by ``save_events`` and its recipe."""
    with np.load(path, allow_pickle=False) as data:
        po, ho, vo = data["particle_offsets"], data["hit_offsets"], data["vertex_offsets"]
        particle = {name: data[f"particle_{name}"] for name in PARTICLE_FIELDS}
        hit = {name: data[f"hit_{name}"] for name in HIT_FIELDS if f"hit_{name}" in data}
        vertex_z, pileup, interactions = data["vertex_z"], data["pileup"], data["interactions"]
        meta = json.loads(str(data["meta"]))
    events = []
    for k in range(len(pileup)):
        particles = Particles(**{n: a[po[k]:po[k + 1]] for n, a in particle.items()})
        hits = Hits(**{n: a[ho[k]:ho[k + 1]] for n, a in hit.items()})
        events.append(Event(particles, hits, vertex_z[vo[k]:vo[k + 1]], int(pileup[k]),
                            int(interactions[k])))
    return events, meta


@dataclass
class EventSet:
    """Events at one pileup, with where they are cached and whether they came from there."""

    pileup: int
    events: list[Event]
    path: Path
    cached: bool
    seconds: float  # generation time (0 when read from the cache)


def events_for(det: Detector, pileup: int, events: int, *, seed: int = 0,
               hard_process: str = "ttbar", cache_dir: str | Path | None = None,
               source: PythiaSource | None = None) -> EventSet:
    """``events`` events at mean pileup ``pileup``, from the cache or freshly generated.

    The random streams for the pileup count, the vertices, the scattering and
    the smearing come from ``seed`` and the pileup, so every entry of a scan
    is reproducible on its own.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / cache_key(det, pileup, events, seed, hard_process)
    if path.is_file():
        loaded, _ = load_events(path)
        return EventSet(pileup, loaded, path, cached=True, seconds=0.0)
    started = time.perf_counter()
    source = source or PythiaSource(hard_process=hard_process)
    if source.hard_process != hard_process:
        raise ValueError("the Pythia source was set up for another hard process")
    source.reseed(seed * 1000 + pileup)
    rng = np.random.default_rng([seed, pileup, GENERATOR_VERSION])
    made = [generate_event(source, pileup, det, rng) for _ in range(events)]
    seconds = time.perf_counter() - started
    save_events(made, path, {"detector": det.as_dict(), "pileup": pileup, "events": events,
                             "seed": seed, "hard_process": hard_process, "ecm_gev": ECM_GEV,
                             "generator_version": GENERATOR_VERSION,
                             "generator": "pythia8mc 8.317 (SoftQCD:inelastic pileup)"})
    return EventSet(pileup, made, path, cached=False, seconds=seconds)
