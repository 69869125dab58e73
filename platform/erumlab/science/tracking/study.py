"""A pileup scan: both algorithms on the same events with the same cuts, timed side by side.

For every pileup the events come from the cache (or Pythia), each event's
hits are indexed once (``seeding.prepare``, timed and charged to both
algorithms), and the cellular automaton and the triplet baseline run on that
index in alternating order, ``repeats`` times each; an event's time is the
best of its repeats (the least disturbed by other work on the machine). The
seeds of both are compared (they must be identical) and scored against the
truth. When a GPU is selected, the tensorised CA runs too and its seeds are
compared with the CPU reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from erumlab.science.tracking import gpu, seeding
from erumlab.science.tracking.detector import Detector, SeedingCuts
from erumlab.science.tracking.generation import Event, PythiaSource, events_for
from erumlab.science.tracking.metrics import Performance, evaluate


@dataclass
class PileupResult:
    pileup: int
    events: list[Event]
    cache_path: Path
    cached: bool
    generation_seconds: float
    hits: float  # mean per event
    prepare_ms: float
    ca_ms: float  # per event, index preparation included
    baseline_ms: float
    gpu_ms: float | None
    ca_seeds: list[np.ndarray]
    baseline_seeds: list[np.ndarray]
    identical: bool
    gpu_identical: bool | None
    cells: float  # CA doublets per event
    neighbours: float
    ca_tests: float
    baseline_tests: float
    ca: Performance
    baseline: Performance

    def summary(self) -> dict[str, Any]:
        return {
            "pileup": self.pileup, "events": len(self.events), "hits_per_event": round(self.hits, 1),
            "ca_ms_per_event": round(self.ca_ms, 3),
            "baseline_ms_per_event": round(self.baseline_ms, 3),
            "gpu_ca_ms_per_event": None if self.gpu_ms is None else round(self.gpu_ms, 3),
            "prepare_ms_per_event": round(self.prepare_ms, 3),
            "speedup": round(self.baseline_ms / max(self.ca_ms, 1e-9), 3),
            "identical_seeds": self.identical, "gpu_identical_seeds": self.gpu_identical,
            "ca_doublets_per_event": round(self.cells, 1),
            "ca_neighbours_per_event": round(self.neighbours, 1),
            "ca_triplet_tests_per_event": round(self.ca_tests, 1),
            "baseline_triplet_tests_per_event": round(self.baseline_tests, 1),
            "cached": self.cached, "generation_seconds": round(self.generation_seconds, 2),
            "ca": self.ca.summary(), "baseline": self.baseline.summary(),
        }


@dataclass
class Scan:
    detector: Detector
    cuts: SeedingCuts
    results: list[PileupResult] = field(default_factory=list)
    backend: str = "cpu"

    def exponent(self, which: str) -> float | None:
        """Fitted a in time ~ hits^a over the scan's non-zero pileups (None with < 2 points)."""
        points = [(r.hits, getattr(r, f"{which}_ms")) for r in self.results if r.pileup > 0]
        points = [(h, t) for h, t in points if t is not None and t > 0 and h > 0]
        if len(points) < 2:
            return None
        hits, times = np.array(points).T
        return float(np.polyfit(np.log(hits), np.log(times), 1)[0])

    def doublet_exponent(self) -> float | None:
        """Fitted a in CA time ~ doublets^a over the non-zero pileups.

        The CA's own claim: its work grows with the compatible doublets (its
        cells), not with hit combinations. How the doublets grow with the hits
        is the detector's and the windows' business (see ``exponent``).
        """
        points = [(r.cells, r.ca_ms) for r in self.results
                  if r.pileup > 0 and r.cells > 0 and r.ca_ms > 0]
        if len(points) < 2:
            return None
        cells, times = np.array(points).T
        return float(np.polyfit(np.log(cells), np.log(times), 1)[0])

    def at(self, pileup: int) -> PileupResult | None:
        return next((r for r in self.results if r.pileup == pileup), None)

    def summary(self) -> dict[str, Any]:
        top = self.results[-1] if self.results else None
        return {
            "detector": self.detector.as_dict(), "cuts": self.cuts.as_dict(),
            "backend": self.backend,
            "pileups": [r.summary() for r in self.results],
            "ca_exponent": _round(self.exponent("ca")),
            "baseline_exponent": _round(self.exponent("baseline")),
            "gpu_exponent": _round(self.exponent("gpu")),
            "ca_doublet_exponent": _round(self.doublet_exponent()),
            "highest_pileup": top.pileup if top else None,
            "speedup_at_highest_pileup": (round(top.baseline_ms / max(top.ca_ms, 1e-9), 3)
                                          if top else None),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def run_scan(det: Detector, cuts: SeedingCuts, pileups: Sequence[int], events: int, *,
             seed: int = 0, hard_process: str = "ttbar", cache_dir: str | Path | None = None,
             repeats: int = 1, backend: str = "auto", pt_threshold: float = 1.0,
             progress: Callable[[str], None] | None = None) -> Scan:
    """Generate (or load) the events of every pileup and run both algorithms on them."""
    say = progress or (lambda _message: None)
    chosen = gpu.select_backend(backend)
    scan = Scan(det, cuts, backend=chosen)
    seeding.warm_up(det, cuts)  # compile outside every timing
    source = PythiaSource(hard_process=hard_process)  # Pythia starts only if needed
    for pileup in sorted(int(p) for p in pileups):
        generated = events_for(det, pileup, events, seed=seed, hard_process=hard_process,
                               cache_dir=cache_dir, source=source)
        say(f"pileup {pileup}: {len(generated.events)} events "
            + ("from the cache" if generated.cached else f"generated in {generated.seconds:.1f} s"))
        scan.results.append(_run_pileup(generated.events, det, cuts, repeats, chosen,
                                        pt_threshold, pileup, generated.path, generated.cached,
                                        generated.seconds))
        r = scan.results[-1]
        say(f"  {r.hits:.0f} hits/event: CA {r.ca_ms:.2f} ms, triplets {r.baseline_ms:.2f} ms"
            f" per event; efficiency {r.ca.efficiency:.4f}, fake rate {r.ca.fake_rate:.4f}")
    return scan


def _run_pileup(events: list[Event], det: Detector, cuts: SeedingCuts, repeats: int,
                backend: str, pt_threshold: float, pileup: int, path: Path, cached: bool,
                generation_seconds: float) -> PileupResult:
    prepare_s, ca_s, base_s, gpu_s = [], [], [], []
    ca_seeds, base_seeds = [], []
    identical, gpu_identical = True, True if backend == "cuda" else None
    counts = np.zeros(4)
    for k, event in enumerate(events):
        best = {"prepare": np.inf, "ca": np.inf, "baseline": np.inf, "gpu": np.inf}
        for rep in range(max(repeats, 1)):
            started = time.perf_counter()
            index = seeding.prepare(event.hits, det, cuts)
            best["prepare"] = min(best["prepare"], time.perf_counter() - started)
            order = ("ca", "baseline") if (k + rep) % 2 == 0 else ("baseline", "ca")
            for name in order:
                run = seeding.cellular_automaton if name == "ca" else seeding.triplet_baseline
                found = run(index)
                best[name] = min(best[name], found.seconds)
                if name == "ca":
                    ca = found
                else:
                    base = found
            if backend == "cuda":
                on_gpu = gpu.cellular_automaton(index, "cuda")
                best["gpu"] = min(best["gpu"], on_gpu.seconds)
        if backend == "cuda":
            gpu_identical = gpu_identical and on_gpu.as_sets() == ca.as_sets()
            gpu_s.append(best["gpu"] + best["prepare"])
        identical = identical and ca.as_sets() == base.as_sets()
        prepare_s.append(best["prepare"])
        ca_s.append(best["ca"] + best["prepare"])
        base_s.append(best["baseline"] + best["prepare"])
        ca_seeds.append(ca.hits)
        base_seeds.append(base.hits)
        counts += (ca.cells, ca.neighbours, ca.tests, base.tests)
    n = max(len(events), 1)
    return PileupResult(
        pileup=pileup, events=events, cache_path=path, cached=cached,
        generation_seconds=generation_seconds,
        hits=float(np.mean([len(e.hits) for e in events])) if events else 0.0,
        prepare_ms=1e3 * float(np.mean(prepare_s)), ca_ms=1e3 * float(np.mean(ca_s)),
        baseline_ms=1e3 * float(np.mean(base_s)),
        gpu_ms=1e3 * float(np.mean(gpu_s)) if gpu_s else None,
        ca_seeds=ca_seeds, baseline_seeds=base_seeds, identical=identical,
        gpu_identical=gpu_identical, cells=counts[0] / n, neighbours=counts[1] / n,
        ca_tests=counts[2] / n, baseline_tests=counts[3] / n,
        ca=evaluate(events, ca_seeds, det, pt_threshold),
        baseline=evaluate(events, base_seeds, det, pt_threshold))


def parse_pileups(text: str) -> list[int]:
    """"0,50,100" -> [0, 50, 100] (validated: non-negative integers)."""
    values = [int(part) for part in str(text).replace(" ", "").split(",") if part]
    if not values or any(v < 0 for v in values):
        raise ValueError(f"pileups: expected non-negative integers like '0,50,100', got {text!r}")
    return sorted(set(values))
