"""Jets of five classes from Pythia 8 and FastJet, truth-matched, groomed, with their features.

Processes (pp at 13 TeV, hard-process pT between ``pt_min`` and 1.2 ``pt_min``):

- gluon: gg -> gg;  light quark: qq -> qq (u, d, s jets kept);
- W: qqbar -> W+W-, Z: qqbar -> ZZ (pure Z, no photon), both decaying to quarks;
- top: gg, qqbar -> ttbar, W -> quarks (fully hadronic).

Final-state visible particles (neutrinos dropped) are clustered with anti-kT,
R = 0.8 (fastjet). A jet is kept when its pT exceeds 0.8 ``pt_min``,
|eta| < 2.5, and it matches its truth object: within Delta R < 0.8 of the
hard-process gluon or light quark, or of the W, Z or top with all of its
decay quarks inside Delta R < 0.8 too (the hadronic decay is contained, as
the class label claims). Each kept jet is reclustered with
Cambridge/Aachen and groomed with soft drop (beta = 0, z_cut = 0.1, i.e.
modified mass drop) by fjcontrib through fastjet's Python interface; the
features come from ``erumlab.science.jets.features``.

pythia8mc and fastjet are imported when a sample is generated, so the rest of
the package works without them. Samples are cached as .npz files keyed by
their settings and the Pythia version, so a second run (or a job reusing a
catalogue dataset) does not generate again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from erumlab.science.jets.features import FEATURES, Constituents, compute, kinematics

CLASSES: tuple[str, ...] = ("gluon", "quark", "W", "Z", "top")
PYTHIA_VERSION = "8.317.2"
JET_R = 0.8
SOFTDROP = {"beta": 0.0, "z_cut": 0.1}
ETA_MAX = 2.5
CACHE_FORMAT = 1

_PROCESSES: dict[str, list[str]] = {
    "gluon": ["HardQCD:gg2gg = on"],
    "quark": ["HardQCD:qq2qq = on"],
    "W": ["WeakDoubleBoson:ffbar2WW = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"],
    "Z": ["WeakDoubleBoson:ffbar2gmZgmZ = on", "WeakZ0:gmZmode = 2", "23:onMode = off",
          "23:onIfAny = 1 2 3 4 5"],
    "top": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off",
            "24:onIfAny = 1 2 3 4 5"],
}
_TRUTH_ID = {"W": 24, "Z": 23, "top": 6}


@dataclass
class JetSample:
    """Jets with labels, kinematics, features and (optionally) their constituents."""

    features: np.ndarray  # [jets, 16] float64, FEATURES order
    labels: np.ndarray  # [jets] int64, index into classes
    pt: np.ndarray
    eta: np.ndarray
    classes: tuple[str, ...] = CLASSES
    settings: dict[str, Any] = field(default_factory=dict)
    constituents: Constituents | None = None
    groomed: Constituents | None = None

    def __len__(self) -> int:
        return int(self.labels.size)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "features": self.features, "labels": self.labels, "pt": self.pt, "eta": self.eta,
            "meta": np.array(json.dumps({"classes": list(self.classes), "features": FEATURES,
                                         "settings": self.settings, "format": CACHE_FORMAT}))}
        for name in ("constituents", "groomed"):
            c = getattr(self, name)
            if c is not None:
                arrays[f"{name}_p4"] = c.p4.astype(np.float32)
                arrays[f"{name}_counts"] = c.counts
        partial = path.with_name(path.name + ".part.npz")
        np.savez_compressed(partial, **arrays)
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> JetSample:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            parts = {name: Constituents(data[f"{name}_p4"], data[f"{name}_counts"])
                     if f"{name}_p4" in data else None for name in ("constituents", "groomed")}
            if tuple(meta["features"]) != FEATURES:
                raise ValueError(f"{path}: features {meta['features']} are not {FEATURES}")
            return cls(features=data["features"], labels=data["labels"], pt=data["pt"],
                       eta=data["eta"], classes=tuple(meta["classes"]),
                       settings=meta["settings"], **parts)

    def split(self, fractions: tuple[float, float] = (0.6, 0.2), seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Index arrays of train, validation and test jets (stratified by class)."""
        rng = np.random.default_rng(seed)
        parts: list[list[np.ndarray]] = [[], [], []]
        for c in range(len(self.classes)):
            idx = rng.permutation(np.flatnonzero(self.labels == c))
            a = int(round(fractions[0] * idx.size))
            b = a + int(round(fractions[1] * idx.size))
            for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:]), strict=True):
                part.append(chunk)
        return tuple(rng.permutation(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def settings(jets_per_class: int, pt_min: float = 1000.0, seed: int = 0,
             ecm: float = 13000.0, classes: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    """Everything that determines a sample (the cache key is their hash)."""
    return {"jets_per_class": int(jets_per_class), "pt_min": float(pt_min), "seed": int(seed),
            "ecm": float(ecm), "classes": list(classes), "pythia": PYTHIA_VERSION,
            "jet_R": JET_R, "softdrop": SOFTDROP, "eta_max": ETA_MAX, "format": CACHE_FORMAT}


def cache_key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("ERUMLAB_CACHE_DIR") or Path.home() / ".cache" / "erumlab") / "jets"


def cache_path(config: dict[str, Any], folder: Path | None = None) -> Path:
    return Path(folder or cache_dir()) / f"jets-{cache_key(config)}.npz"


# Truth --------------------------------------------------------------------------------


def _delta_r(eta1: float, phi1: float, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    dphi = np.abs(phi1 - phi2)
    dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    return np.hypot(eta1 - eta2, dphi)


def _truth_objects(process: Any, kind: str) -> list[tuple[float, float, list[tuple[float, float]]]]:
    """(eta, phi, decay quarks' (eta, phi)) of each object a jet of this class must match.

    Read from Pythia's hard-process record, where resonance decays are listed
    before showering: the direction of the parton or resonance and of its
    final decay quarks.
    """
    objects = []
    for i in range(process.size()):
        p = process[i]
        if kind in ("gluon", "quark"):
            wanted = p.id() == 21 if kind == "gluon" else 1 <= abs(p.id()) <= 3
            if abs(p.status()) == 23 and wanted and p.mother1() in (3, 4):
                objects.append((p.eta(), p.phi(), []))
        elif abs(p.id()) == _TRUTH_ID[kind] and abs(p.status()) == 22:
            quarks = []
            stack = [d for d in p.daughterList()]
            while stack:
                d = process[stack.pop()]
                if abs(d.id()) == 24 and kind == "top":
                    stack.extend(d.daughterList())
                elif 1 <= abs(d.id()) <= 5:
                    quarks.append((d.eta(), d.phi()))
            if quarks:
                objects.append((p.eta(), p.phi(), quarks))
    return objects


def _make_pythia(kind: str, pt_min: float, ecm: float, seed: int) -> Any:
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in [f"Beams:eCM = {ecm}", *_PROCESSES[kind],
                 f"PhaseSpace:pTHatMin = {pt_min}", f"PhaseSpace:pTHatMax = {1.2 * pt_min}",
                 "Random:setSeed = on", f"Random:seed = {seed}", "Print:quiet = on",
                 "Next:numberCount = 0"]:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise the {kind} process")
    return pythia


def _cluster(events: list[np.ndarray], pt_min: float) -> tuple[list[list[np.ndarray]],
                                                                list[np.ndarray]]:
    """anti-kT R=0.8 jets of each event: constituents [n, 4] and jet (pt, eta, phi)."""
    import awkward as ak
    import fastjet

    records = ak.Array([{"px": e[:, 0], "py": e[:, 1], "pz": e[:, 2], "E": e[:, 3]}
                        for e in events])
    records = ak.zip({"px": records.px, "py": records.py, "pz": records.pz, "E": records.E},
                     with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(records, fastjet.JetDefinition(fastjet.antikt_algorithm,
                                                                      JET_R))
    jets = sequence.inclusive_jets(min_pt=0.8 * pt_min)
    constituents = sequence.constituents(min_pt=0.8 * pt_min)
    out_const, out_jets = [], []
    for event_jets, event_consts in zip(ak.to_list(jets), ak.to_list(constituents), strict=True):
        consts, axes = [], []
        for jet, members in zip(event_jets, event_consts, strict=True):
            p4 = np.array([[m["px"], m["py"], m["pz"], m["E"]] for m in members])
            pt, eta, phi = _pt_eta_phi(np.array([jet["px"], jet["py"], jet["pz"], jet["E"]]))
            consts.append(p4)
            axes.append((pt, eta, phi))
        out_const.append(consts)
        out_jets.append(np.array(axes).reshape(-1, 3))
    return out_const, out_jets


def _pt_eta_phi(p4: np.ndarray) -> tuple[float, float, float]:
    px, py, pz = p4[0], p4[1], p4[2]
    pt = float(np.hypot(px, py))
    return pt, float(np.arcsinh(pz / pt)) if pt > 0 else 0.0, float(np.arctan2(py, px))


def soft_drop(jets: list[np.ndarray], beta: float = SOFTDROP["beta"],
              z_cut: float = SOFTDROP["z_cut"]) -> Constituents:
    """Soft-drop-groomed constituents of each jet (fjcontrib, via fastjet's Python interface).

    Each jet's constituents are reclustered with Cambridge/Aachen into exactly
    one jet (a radius far beyond the jet's size), then declustered until the
    softer branch carries at least z_cut of the pT (times (Delta R / R0)^beta).
    """
    import awkward as ak
    import fastjet

    records = ak.zip({"px": ak.Array([j[:, 0] for j in jets]),
                      "py": ak.Array([j[:, 1] for j in jets]),
                      "pz": ak.Array([j[:, 2] for j in jets]),
                      "E": ak.Array([j[:, 3] for j in jets])}, with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(records, fastjet.JetDefinition(
        fastjet.cambridge_algorithm, 10.0))
    groomed = sequence.exclusive_jets_softdrop_grooming(njets=1, beta=beta, symmetry_cut=z_cut,
                                                        R0=JET_R)
    members = groomed.constituents
    counts = ak.to_numpy(ak.num(members.px, axis=1)).astype(np.int64)
    p4 = np.stack([ak.to_numpy(ak.flatten(getattr(members, c), axis=None))
                   for c in ("px", "py", "pz", "E")], axis=1)
    return Constituents(p4, counts)


def generate(jets_per_class: int, *, pt_min: float = 1000.0, seed: int = 0,
             ecm: float = 13000.0, classes: tuple[str, ...] = CLASSES,
             keep_constituents: bool = True, progress: Callable[[str], None] | None = None,
             batch_events: int = 200, max_events_per_jet: int = 20) -> JetSample:
    """Generate ``jets_per_class`` truth-matched jets of every class (deterministic per seed)."""
    if jets_per_class < 1:
        raise ValueError("jets_per_class must be positive")
    unknown = set(classes) - set(_PROCESSES)
    if unknown:
        raise ValueError(f"unknown classes {sorted(unknown)}; known: {', '.join(CLASSES)}")
    started = time.perf_counter()
    config = settings(jets_per_class, pt_min, seed, ecm, classes)
    all_jets: list[np.ndarray] = []
    labels, pts, etas = [], [], []
    events_used: dict[str, int] = {}
    for label, kind in enumerate(classes):
        pythia = _make_pythia(kind, pt_min, ecm, seed * 10 + label + 1)
        kept: list[np.ndarray] = []
        events = 0
        while len(kept) < jets_per_class:
            if events > max_events_per_jet * jets_per_class:
                raise RuntimeError(f"{kind}: only {len(kept)} matched jets after {events} events")
            batch, truths = [], []
            for _ in range(batch_events):
                if not pythia.next():
                    continue
                events += 1
                particles = [(p.px(), p.py(), p.pz(), p.e()) for p in pythia.event
                             if p.isFinal() and p.isVisible()]
                batch.append(np.array(particles, dtype=np.float64).reshape(-1, 4))
                truths.append(_truth_objects(pythia.process, kind))
            event_consts, event_axes = _cluster(batch, pt_min)
            for consts, axes, truth in zip(event_consts, event_axes, truths, strict=True):
                for p4, (pt, eta, phi) in zip(consts, axes, strict=True):
                    if abs(eta) > ETA_MAX or len(kept) >= jets_per_class:
                        continue
                    if _matches(eta, phi, truth):
                        kept.append(p4)
                        pts.append(pt)
                        etas.append(eta)
                        labels.append(label)
        events_used[kind] = events
        all_jets.extend(kept)
        if progress:
            progress(f"{kind}: {len(kept)} jets from {events} events "
                     f"({time.perf_counter() - started:.0f} s)")
    ungroomed = Constituents.from_jets(all_jets)
    groomed = soft_drop(all_jets)
    features = compute(ungroomed, groomed)
    config["events"] = events_used
    config["seconds"] = round(time.perf_counter() - started, 1)
    return JetSample(features=features, labels=np.asarray(labels, dtype=np.int64),
                     pt=np.asarray(pts), eta=np.asarray(etas), classes=tuple(classes),
                     settings=config, constituents=ungroomed if keep_constituents else None,
                     groomed=groomed if keep_constituents else None)


def _matches(eta: float, phi: float, truth: list[tuple[float, float, list[tuple[float, float]]]]
             ) -> bool:
    for t_eta, t_phi, quarks in truth:
        if _delta_r(eta, phi, np.array(t_eta), np.array(t_phi)) >= JET_R:
            continue
        if all(_delta_r(eta, phi, np.array(q_eta), np.array(q_phi)) < JET_R
               for q_eta, q_phi in quarks):
            return True
    return False


def load_or_generate(jets_per_class: int, *, pt_min: float = 1000.0, seed: int = 0,
                     folder: Path | None = None, progress: Callable[[str], None] | None = None,
                     **options: Any) -> tuple[JetSample, Path, bool]:
    """The cached sample for these settings, generating and caching it first if needed.

    Returns the sample, its cache file and whether it was generated now.
    """
    config = settings(jets_per_class, pt_min, seed, options.get("ecm", 13000.0),
                      tuple(options.get("classes", CLASSES)))
    path = cache_path(config, folder)
    if path.is_file():
        return JetSample.load(path), path, False
    sample = generate(jets_per_class, pt_min=pt_min, seed=seed, progress=progress, **options)
    sample.save(path)
    return sample, path, True


def pt_eta_phi_of(constituents: Constituents) -> np.ndarray:
    """Per-jet (pt, rapidity-free eta, phi) of summed constituents, for checks and plots."""
    sums = np.add.reduceat(constituents.p4, constituents.offsets[:-1], axis=0)
    pt, _, phi = kinematics(sums)
    eta = np.arcsinh(sums[:, 2] / np.where(pt > 0, pt, 1.0))
    return np.stack([pt, eta, phi], axis=1)
