"""Seeding performance against the simulation truth: efficiency, fake rate, duplicate rate.

Definitions (the same for every algorithm):

- a particle is **reconstructable** when it is charged, produced within
  ``PRIMARY_DISPLACEMENT`` (1 mm, transverse) of its interaction's vertex
  (the hard scatter or a pileup vertex: all are primary) and left hits on at
  least three seeding layers; the headline efficiency adds pT > 1 GeV;
- a seed is **matched** to a particle when at least 75 % of its hits (all
  three of a triplet, three of a quadruplet) come from that particle;
- **efficiency**: reconstructable particles with at least one matched seed,
  over reconstructable particles;
- **fake rate**: seeds matched to no particle, over all seeds;
- **duplicate rate**: seeds matched to a particle that already has another
  matched seed (every matched seed but one per particle), over all seeds.

Binned versions use the particle's true pT and eta for the efficiency and
the seed's own estimate (circle through its first three hits, r-z line
through its first and last hit) for the fake and duplicate rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from erumlab.science.tracking.detector import C_CM, Detector
from erumlab.science.tracking.generation import Event

PRIMARY_DISPLACEMENT = 0.1  # cm
MATCH_FRACTION = 0.75
PT_BINS = np.array([0.5, 0.7, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0])
ETA_BINS = np.linspace(-3.0, 3.0, 13)


def reconstructable(event: Event, det: Detector, pt_min: float = 0.0) -> np.ndarray:
    """Mask of the event's particles a seeding should find (see the module docstring)."""
    p = event.particles
    return ((p.charge != 0) & (p.displacement < PRIMARY_DISPLACEMENT)
            & (event.layers_hit(det.layers) >= 3) & (p.pt > pt_min))


def match_seeds(seed_hits: np.ndarray, hit_particle: np.ndarray) -> np.ndarray:
    """Per seed: the particle it is matched to, or -1 (a fake)."""
    out = np.full(len(seed_hits), -1, dtype=np.int64)
    for k, row in enumerate(seed_hits):
        owners = hit_particle[row[row >= 0]]
        owners = owners[owners >= 0]
        if len(owners) == 0:
            continue
        values, counts = np.unique(owners, return_counts=True)
        best = counts.argmax()
        if counts[best] >= MATCH_FRACTION * (row >= 0).sum():
            out[k] = values[best]
    return out


def duplicates(matched: np.ndarray) -> np.ndarray:
    """Mask of matched seeds whose particle already has an earlier matched seed."""
    seen: set[int] = set()
    out = np.zeros(len(matched), dtype=bool)
    for k, particle in enumerate(matched):
        if particle < 0:
            continue
        if particle in seen:
            out[k] = True
        seen.add(int(particle))
    return out


def seed_kinematics(seed_hits: np.ndarray, event: Event, det: Detector) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """Estimated pT (circle through the first three hits) and eta (r-z line) of each seed."""
    if len(seed_hits) == 0:
        return np.zeros(0), np.zeros(0)
    h = event.hits
    a, b, c = seed_hits[:, 0], seed_hits[:, 1], seed_hits[:, 2]
    last = seed_hits[np.arange(len(seed_hits)), (seed_hits >= 0).sum(axis=1) - 1]
    ax, ay, bx, by, cx, cy = h.x[a], h.y[a], h.x[b], h.y[b], h.x[c], h.y[c]
    d = 2.0 * np.abs(ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    sides = np.hypot(bx - ax, by - ay) * np.hypot(cx - bx, cy - by) * np.hypot(ax - cx, ay - cy)
    with np.errstate(divide="ignore"):
        radius = np.where(d > 0, sides / np.maximum(d, 1e-300), np.inf)
    pt = C_CM * det.field_tesla * radius
    r = np.hypot(h.x, h.y)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh((h.z[last] - h.z[a]) / (r[last] - r[a]))
    return pt, eta


@dataclass
class Performance:
    """Counts summed over events; rates are derived from them (so events can be added)."""

    pt_threshold: float
    reconstructable: int = 0
    found: int = 0
    seeds: int = 0
    fakes: int = 0
    duplicate_seeds: int = 0
    pt_den: np.ndarray = field(default_factory=lambda: np.zeros(len(PT_BINS) - 1, int))
    pt_num: np.ndarray = field(default_factory=lambda: np.zeros(len(PT_BINS) - 1, int))
    eta_den: np.ndarray = field(default_factory=lambda: np.zeros(len(ETA_BINS) - 1, int))
    eta_num: np.ndarray = field(default_factory=lambda: np.zeros(len(ETA_BINS) - 1, int))
    seed_pt: np.ndarray = field(default_factory=lambda: np.zeros(len(PT_BINS) - 1, int))
    seed_pt_fake: np.ndarray = field(default_factory=lambda: np.zeros(len(PT_BINS) - 1, int))
    seed_pt_dup: np.ndarray = field(default_factory=lambda: np.zeros(len(PT_BINS) - 1, int))
    seed_eta: np.ndarray = field(default_factory=lambda: np.zeros(len(ETA_BINS) - 1, int))
    seed_eta_fake: np.ndarray = field(default_factory=lambda: np.zeros(len(ETA_BINS) - 1, int))
    seed_eta_dup: np.ndarray = field(default_factory=lambda: np.zeros(len(ETA_BINS) - 1, int))

    @property
    def efficiency(self) -> float:
        return self.found / self.reconstructable if self.reconstructable else float("nan")

    @property
    def fake_rate(self) -> float:
        return self.fakes / self.seeds if self.seeds else float("nan")

    @property
    def duplicate_rate(self) -> float:
        return self.duplicate_seeds / self.seeds if self.seeds else float("nan")

    def add(self, event: Event, seed_hits: np.ndarray, det: Detector) -> None:
        """Count one event's seeds against its truth."""
        particles = event.particles
        matched = match_seeds(seed_hits, event.hits.particle)
        found = np.zeros(len(particles), dtype=bool)
        found[matched[matched >= 0]] = True
        base = reconstructable(event, det)
        headline = base & (particles.pt > self.pt_threshold)
        self.reconstructable += int(headline.sum())
        self.found += int((headline & found).sum())
        dup = duplicates(matched)
        self.seeds += len(seed_hits)
        self.fakes += int((matched < 0).sum())
        self.duplicate_seeds += int(dup.sum())
        pt, eta = particles.pt, particles.eta
        self.pt_den += np.histogram(pt[base], PT_BINS)[0]
        self.pt_num += np.histogram(pt[base & found], PT_BINS)[0]
        self.eta_den += np.histogram(eta[headline], ETA_BINS)[0]
        self.eta_num += np.histogram(eta[headline & found], ETA_BINS)[0]
        seed_pt, seed_eta = seed_kinematics(seed_hits, event, det)
        fake = matched < 0
        for values, bins, total, fakes, dups in (
                (seed_pt, PT_BINS, self.seed_pt, self.seed_pt_fake, self.seed_pt_dup),
                (seed_eta, ETA_BINS, self.seed_eta, self.seed_eta_fake, self.seed_eta_dup)):
            clipped = np.clip(values, bins[0], bins[-1] * 0.999999)
            total += np.histogram(clipped, bins)[0]
            fakes += np.histogram(clipped[fake], bins)[0]
            dups += np.histogram(clipped[dup], bins)[0]

    @staticmethod
    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), np.nan)

    def summary(self) -> dict[str, Any]:
        """Rates, counts and binned curves as plain JSON-able values."""
        def clean(values: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else round(float(v), 5) for v in values]

        return {
            "pt_threshold_gev": self.pt_threshold,
            "efficiency": _finite(self.efficiency), "fake_rate": _finite(self.fake_rate),
            "duplicate_rate": _finite(self.duplicate_rate),
            "reconstructable": self.reconstructable, "found": self.found, "seeds": self.seeds,
            "fakes": self.fakes, "duplicates": self.duplicate_seeds,
            "pt_bins": PT_BINS.tolist(), "eta_bins": ETA_BINS.tolist(),
            "efficiency_vs_pt": clean(self.ratio(self.pt_num, self.pt_den)),
            "efficiency_vs_eta": clean(self.ratio(self.eta_num, self.eta_den)),
            "fake_rate_vs_pt": clean(self.ratio(self.seed_pt_fake, self.seed_pt)),
            "fake_rate_vs_eta": clean(self.ratio(self.seed_eta_fake, self.seed_eta)),
            "duplicate_rate_vs_pt": clean(self.ratio(self.seed_pt_dup, self.seed_pt)),
            "duplicate_rate_vs_eta": clean(self.ratio(self.seed_eta_dup, self.seed_eta)),
        }


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)


def evaluate(events: Sequence[Event], seeds: Sequence[np.ndarray], det: Detector,
             pt_threshold: float = 1.0) -> Performance:
    """Performance of one algorithm's seeds (one array per event) on the events."""
    performance = Performance(pt_threshold)
    for event, seed_hits in zip(events, seeds, strict=True):
        performance.add(event, seed_hits, det)
    return performance
