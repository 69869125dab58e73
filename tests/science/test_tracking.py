"""Track seeding: helix propagation against the known curvature, the doublet windows, the
cellular automaton and the triplet baseline on a hand-built event with a known answer, the
metric definitions on hand-made seeds, pixel cluster lengths and the cut built on them, the
GPU-path selection, Pythia event generation with
its cache, and the papermill template end to end."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from erumlab.science.tracking import gpu, metrics, seeding
from erumlab.science.tracking.detector import (
    SeedingCuts,
    cluster_size_z,
    cluster_slopes,
    detector,
    helix_radius_cm,
    windows,
)
from erumlab.science.tracking.generation import (
    Event,
    Hits,
    Particles,
    events_for,
    load_events,
    propagate,
)
from erumlab.science.tracking.study import parse_pileups

TEMPLATE = Path(__file__).resolve().parents[2] / "notebooks_templates" / "tracking.ipynb"
DET = detector("cms-phase1")
CUTS = SeedingCuts()


def _particles(pt, phi, eta, charge, z0=0.0) -> Particles:
    pt, phi, eta, charge = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (pt, phi, eta, charge))
    n = len(pt)
    z0 = np.broadcast_to(np.asarray(z0, dtype=float), (n,)).copy()
    return Particles(px=pt * np.cos(phi), py=pt * np.sin(phi), pz=pt * np.sinh(eta),
                     mass=np.full(n, 0.13957), charge=charge, x=np.zeros(n), y=np.zeros(n), z=z0,
                     vertex=np.zeros(n, np.int32), pdg=np.full(n, 211, np.int32),
                     displacement=np.zeros(n))


def _circle_radius(x, y) -> float:
    """Least-squares (Kasa) circle through points: its radius."""
    design = np.c_[x, y, np.ones_like(x)]
    a, b, c = np.linalg.lstsq(design, x**2 + y**2, rcond=None)[0]
    return math.sqrt(c + (a / 2) ** 2 + (b / 2) ** 2)


# Helices ------------------------------------------------------------------------------------


def test_helix_radius_is_pt_over_0p3_b():
    assert helix_radius_cm(1.0, 3.8) == pytest.approx(100 / (0.3 * 3.8), rel=1e-12)  # 87.7 cm
    assert helix_radius_cm(2.0, 2.0, charge=-1) == pytest.approx(333.33, rel=1e-4)


@pytest.mark.parametrize(("pt", "field"), [(1.0, 3.8), (0.5, 3.8), (3.0, 2.0)])
def test_propagated_hits_lie_on_the_layers_and_on_the_circle_of_the_known_radius(pt, field):
    det = detector("cms-phase1", field)
    particles = _particles([pt, pt], [0.3, 0.3], [0.4, 0.4], [1, -1])
    hits = propagate(particles, det, np.random.default_rng(0), scatter=False, smear=False)
    assert len(hits) == 8
    for q in (0, 1):
        own = hits.particle == q
        np.testing.assert_allclose(hits.r[own], det.radii, rtol=1e-12)
        # The origin is on the circle too: 5 points, radius pT / (0.3 B).
        radius = _circle_radius(np.r_[0.0, hits.x[own]], np.r_[0.0, hits.y[own]])
        assert radius == pytest.approx(helix_radius_cm(pt, field), rel=1e-6)
        # z advances with the arc length: z = s * pz / pT, s = 2 R asin(r / 2R).
        arc = 2 * radius * np.arcsin(hits.r[own] / (2 * radius))
        np.testing.assert_allclose(hits.z[own], arc * math.sinh(0.4), rtol=1e-9)
    # Positive charges turn clockwise in +z field (phi decreases), negative ones the other way.
    phi_pos, phi_neg = hits.phi[hits.particle == 0], hits.phi[hits.particle == 1]
    assert np.all(np.diff(phi_pos) < 0) and np.all(np.diff(phi_neg) > 0)


def test_loopers_stop_and_tracks_leave_through_the_ends():
    # pT 0.05 GeV at 3.8 T: R = 4.4 cm, the circle reaches r = 8.8 cm (layers 0 and 1 only).
    particles = _particles([0.05, 5.0], [0.0, 1.0], [0.0, 2.5], [1, 1])
    hits = propagate(particles, DET, np.random.default_rng(0), scatter=False, smear=False)
    assert sorted(hits.layer[hits.particle == 0].tolist()) == [0, 1]
    # eta 2.5 from z = 0: |z| = r sinh(2.5) = 6.05 r exceeds 26.5 cm beyond r = 4.4 cm.
    assert hits.layer[hits.particle == 1].tolist() == [0]


def test_multiple_scattering_spreads_hits_by_highlands_width():
    n = 4000
    particles = _particles(np.full(n, 1.0), np.zeros(n), np.zeros(n), np.ones(n))
    det = detector("cms-phase1")
    clean = propagate(particles, det, np.random.default_rng(1), scatter=False, smear=False)
    kinked = propagate(particles, det, np.random.default_rng(1), scatter=True, smear=False)
    on_1 = (clean.layer == 1), (kinked.layer == 1)
    dz = kinked.z[on_1[1]] - clean.z[on_1[0]]
    # Kinks at the beam pipe (2.2 cm) and layer 0 (2.9 cm) seen at 6.8 cm, normal incidence.
    from erumlab.science.tracking.detector import highland

    expected = math.hypot(highland(1.0, 0.0025, beta=1 / math.hypot(1, 0.13957)) * (6.8 - 2.2),
                          highland(1.0, 0.02, beta=1 / math.hypot(1, 0.13957)) * (6.8 - 2.9))
    assert np.std(dz) == pytest.approx(expected, rel=0.06)


# Doublet windows ----------------------------------------------------------------------------


def _hits(points) -> Hits:
    """Hits from (layer, phi, z, particle) rows, exactly on the layers."""
    rows = np.array(points, dtype=float)
    layer = rows[:, 0].astype(np.int8)
    radius = np.array(DET.radii)[layer]
    return Hits(radius * np.cos(rows[:, 1]), radius * np.sin(rows[:, 1]), rows[:, 2], layer,
                rows[:, 3].astype(np.int32))


def test_doublet_windows_keep_pairs_inside_and_drop_pairs_outside():
    half = windows(DET, CUTS).dphi[0]
    assert 0.03 < half < 0.1
    r0, r1 = DET.radii[0], DET.radii[1]
    z_edge = 1.0 + (1.0 + CUTS.z0_max) * (r1 / r0 - 1)  # line to z0 = -z0_max
    hits = _hits([
        (0, 0.0, 1.0, 0),                  # inner hit
        (1, 0.9 * half, 1.0 * r1 / r0, 1),  # inside phi, pointing to z0 = 0: kept
        (1, -0.9 * half, z_edge - 0.01, 2),  # inside both windows, near the z edge: kept
        (1, 1.1 * half, 1.0 * r1 / r0, 3),  # outside the phi window
        (1, 0.0, z_edge + 0.01, 4),        # points to z0 beyond -z0_max
        (1, 2 * np.pi - 0.5 * half, 1.0 * r1 / r0, 5),  # phi given as 2 pi - x: same as -x
    ])
    index = seeding.prepare(hits, DET, CUTS)
    pairs = {tuple(p) for p in seeding.doublets(index).tolist()}
    assert pairs == {(0, 1), (0, 2), (0, 5)}


def test_doublet_window_wraps_around_phi_pi():
    half = windows(DET, CUTS).dphi[0]
    hits = _hits([(0, np.pi - 0.3 * half, 0.0, 0), (1, -np.pi + 0.3 * half, 0.0, 1),
                  (1, -np.pi + 1.5 * half, 0.0, 2)])
    pairs = {tuple(p) for p in seeding.doublets(seeding.prepare(hits, DET, CUTS)).tolist()}
    assert pairs == {(0, 1)}


# The CA on a hand-built event -----------------------------------------------------------------


def _hand_event():
    """Three tracks (one per quadrant), a fourth cut short by the barrel end, noise, and a
    stray hit 40 um (r-phi) and 200 um (z) from track 0's outermost hit: inside the cuts, so it
    makes a second, worse chain that duplicate removal must drop."""
    particles = _particles([2.0, 5.0, 1.5, 3.0], [0.2, 2.2, -1.9, -0.6], [0.1, -0.5, 0.3, 1.45],
                           [1, -1, 1, -1], z0=[0.5, -2.0, 1.0, 0.0])
    hits = propagate(particles, DET, np.random.default_rng(3), scatter=False, smear=True)
    rng = np.random.default_rng(4)
    noise_phi = rng.uniform(0.9, 1.6, 24)
    noise_layer = np.tile(np.arange(4), 6)
    radius = np.array(DET.radii)[noise_layer]
    own = (hits.particle == 0) & (hits.layer == 3)
    stray_phi = float(hits.phi[own][0]) + 0.004 / DET.radii[3]
    stray = (np.array([DET.radii[3] * np.cos(stray_phi)]), np.array([DET.radii[3] * np.sin(stray_phi)]),
             hits.z[own] + 0.02)
    all_hits = Hits(
        np.r_[hits.x, radius * np.cos(noise_phi), stray[0]],
        np.r_[hits.y, radius * np.sin(noise_phi), stray[1]],
        np.r_[hits.z, rng.uniform(-20, 20, 24), stray[2]],
        np.r_[hits.layer, noise_layer, 3].astype(np.int8),
        np.r_[hits.particle, np.full(25, -1)].astype(np.int32))
    return Event(particles, all_hits, np.array([0.0]), pileup=0, interactions=0)


def test_the_ca_finds_exactly_the_tracks_of_the_hand_built_event():
    event = _hand_event()
    hits = event.hits
    # Track 3 (eta 1.45) leaves the barrel after layer 2: a triplet is all it can make.
    assert sorted(hits.layer[hits.particle == 3].tolist()) == [0, 1, 2]
    index = seeding.prepare(hits, DET, CUTS)
    found = seeding.cellular_automaton(index)
    expected = {tuple(int(h) for h in np.flatnonzero(hits.particle == q)) for q in range(4)}
    assert found.as_sets() == expected
    assert found.candidates == 5  # track 0 twice (true and stray outer hit): one removed
    assert found.lengths.tolist().count(4) == 3 and found.lengths.tolist().count(3) == 1


def test_the_triplet_baseline_gives_the_same_seeds_as_the_ca():
    index = seeding.prepare(_hand_event().hits, DET, CUTS)
    ca, baseline = seeding.cellular_automaton(index), seeding.triplet_baseline(index)
    assert ca.as_sets() == baseline.as_sets()
    assert ca.candidates == baseline.candidates
    # The baseline looks at more hit combinations than the CA tests cell pairs.
    assert baseline.tests >= ca.tests


def test_cuts_reject_a_kinked_or_low_pt_or_displaced_triplet():
    event = _hand_event()
    hits = event.hits
    own = np.flatnonzero(hits.particle == 1)
    index = seeding.prepare(hits, DET, CUTS)
    sorted_of = {int(o): k for k, o in enumerate(index.original)}
    a, b, c = (sorted_of[int(h)] for h in own[:3])
    args = (index.x, index.y, index.r, index.z, index.material[1], index.params)
    assert seeding._triplet_ok(a, b, c, *args)
    z_saved = index.z[c]
    index.z[c] += 0.5  # r-z kink of 5 mm at layer 2
    assert not seeding._triplet_ok(a, b, c, *args)
    index.z[c] = z_saved
    tight = seeding.prepare(hits, DET, SeedingCuts(pt_min=20.0)).params  # the track has 5 GeV
    assert not seeding._triplet_ok(a, b, c, index.x, index.y, index.r, index.z,
                                   index.material[1], tight)
    shifted_x = index.x.copy()
    shifted_x[[a, b, c]] += 0.5  # the same track displaced by 5 mm: |d0| > d0_max
    assert not seeding._triplet_ok(a, b, c, shifted_x, index.y, index.r, index.z,
                                   index.material[1], index.params)


# Metrics ---------------------------------------------------------------------------------------


def test_metric_definitions_on_hand_made_seeds():
    # Particles: 0 (pT 2, reconstructable), 1 (pT 3, reconstructable), 2 (pT 0.5, below the
    # 1 GeV threshold), 3 (pT 2 but only two layers: not reconstructable), 4 (pT 2, displaced).
    particles = _particles([2.0, 3.0, 0.5, 2.0, 2.0], [0, 1, 2, 3, -1], [0] * 5, [1] * 5)
    particles.displacement = np.array([0, 0, 0, 0, 0.5])
    layers = [0, 1, 2, 3]
    owner = [0] * 4 + [1] * 4 + [2] * 4 + [3] * 2 + [4] * 4 + [-1] * 2
    layer = layers * 3 + [0, 1] + layers + [2, 3]
    hits = Hits(np.ones(len(owner)), np.zeros(len(owner)), np.zeros(len(owner)),
                np.array(layer, np.int8), np.array(owner, np.int32))
    event = Event(particles, hits, np.zeros(1), 0, 0)
    assert metrics.reconstructable(event, DET, 1.0).tolist() == [True, True, False, False, False]
    seeds = np.array([
        [0, 1, 2, 3],     # particle 0
        [0, 1, 2, -1],    # particle 0 again: a duplicate
        [4, 5, 6, 18],    # 3 of 4 from particle 1: matched
        [4, 5, 18, 19],   # 2 of 4: fake
        [8, 9, 10, -1],   # particle 2 (below threshold, but a real, matched seed)
    ])
    assert metrics.match_seeds(seeds, hits.particle).tolist() == [0, 0, 1, -1, 2]
    perf = metrics.evaluate([event], [seeds], DET, pt_threshold=1.0)
    assert perf.reconstructable == 2 and perf.found == 2
    assert perf.efficiency == 1.0
    assert perf.fake_rate == pytest.approx(1 / 5)
    assert perf.duplicate_rate == pytest.approx(1 / 5)
    missing = metrics.evaluate([event], [seeds[[0, 3]]], DET)
    assert missing.efficiency == 0.5 and missing.fake_rate == 0.5 and missing.duplicate_rate == 0
    summary = perf.summary()
    assert summary["efficiency_vs_pt"][PT_BIN_2GEV] == 1.0


PT_BIN_2GEV = int(np.searchsorted(metrics.PT_BINS, 2.0, side="right") - 1)


# GPU path ---------------------------------------------------------------------------------------


def test_backend_selection_follows_cuda_availability(monkeypatch):
    assert gpu.select_backend("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.select_backend("auto") == "cpu"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert gpu.select_backend("cuda") == "cpu"
    assert any("CPU" in str(w.message) for w in caught)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu.select_backend("auto") == "cuda"
    with pytest.raises(ValueError, match="backend"):
        gpu.select_backend("tpu")


def test_the_tensor_ca_matches_the_cpu_reference():
    event = _hand_event()
    index = seeding.prepare(event.hits, DET, CUTS)
    on_tensors = gpu.cellular_automaton(index, "cpu")
    reference = seeding.cellular_automaton(index)
    assert on_tensors.as_sets() == reference.as_sets()
    assert (on_tensors.cells, on_tensors.neighbours) == (reference.cells, reference.neighbours)


# Cluster shapes -------------------------------------------------------------------------------


def test_cluster_length_is_thickness_times_cot_theta_over_the_pitch():
    n = 20000
    start = np.random.default_rng(0).uniform(0, DET.pixel_pitch_z, n)
    ones, zeros = np.ones(n), np.zeros(n)
    assert np.all(cluster_size_z(zeros, zeros, start, ones, DET) == 1)  # normal incidence
    # cot 2: the charge spreads over 570 um = 3.8 pitches, touching 4 or 5 pixels; an end pixel
    # fires when it holds more than 0.1 MIP, i.e. overlaps by more than 570 um x 0.1 / sqrt(5).
    size = cluster_size_z(np.full(n, 2.0), zeros, start, ones, DET)
    assert set(np.unique(size)) <= {3, 4, 5}
    need = 0.1 * 570e-4 / math.sqrt(5)
    expected = 570e-4 / DET.pixel_pitch_z + 1 - 2 * need / DET.pixel_pitch_z
    assert size.mean() == pytest.approx(expected, abs=0.05)
    # More charge never means fewer pixels over threshold; steeper never shorter on average.
    assert np.all(cluster_size_z(np.full(n, 2.0), zeros, start, np.full(n, 3.0), DET) >= size)
    means = [cluster_size_z(np.full(n, c), zeros, start, ones, DET).mean() for c in (0.5, 1, 2, 4)]
    assert means == sorted(means)


def test_simulated_clusters_follow_the_tracks_angle():
    n = 3000
    particles = _particles(np.full(2 * n, 2.0), np.zeros(2 * n), np.r_[np.zeros(n), np.full(n, 1.5)],
                           np.ones(2 * n))
    hits = propagate(particles, DET, np.random.default_rng(2))
    on_0 = hits.layer == 0
    central = hits.size_z[on_0 & (hits.particle < n)]
    forward = hits.size_z[on_0 & (hits.particle >= n)]
    assert np.mean(central == 1) > 0.95  # at eta 0 nearly every cluster is one pixel long
    length = DET.sensor_thickness * math.sinh(1.5) / DET.pixel_pitch_z  # 4.0 pitches
    # Pixels touched: length + 1 on average; each end pixel misses the threshold when it
    # overlaps by less than 0.1 x 607 um / 2.35 = 26 um, i.e. 2 x 26 / 150 = 0.34 fewer.
    assert forward.mean() == pytest.approx(length + 1 - 0.34, abs=0.15)


def test_the_slope_table_accepts_the_doublets_of_every_primary_track_above_pt_min():
    rng = np.random.default_rng(7)
    n = 20000
    particles = _particles(CUTS.pt_min * np.exp(rng.uniform(0, np.log(20), n)),
                           rng.uniform(-np.pi, np.pi, n), rng.uniform(-2.5, 2.5, n),
                           rng.choice([-1.0, 1.0], n), z0=np.clip(rng.normal(0, 4.5, n), -14, 14))
    hits = propagate(particles, DET, rng)
    table = cluster_slopes(DET, CUTS)
    order = np.lexsort((hits.layer, hits.particle))
    p, lay, r, z, size = (a[order] for a in (hits.particle, hits.layer, hits.r, hits.z,
                                             hits.size_z.astype(int)))
    pair = (p[1:] == p[:-1]) & (lay[1:] == lay[:-1] + 1)
    inner = np.flatnonzero(pair)
    slope = np.abs((z[inner + 1] - z[inner]) / (r[inner + 1] - r[inner]))
    ok = np.ones(pair.sum(), bool)
    for end in (slice(None, -1), slice(1, None)):
        lo_hi = table[lay[end][pair], np.minimum(size[end][pair], table.shape[1] - 1)]
        ok &= (lo_hi[:, 0] <= slope) & (slope <= lo_hi[:, 1])
    assert pair.sum() > 30000
    assert ok.mean() > 0.999, f"{(~ok).sum()} of {len(ok)} true doublets rejected"
    # ... while the ranges are narrow: about one pixel pitch / thickness per pixel of length.
    widths = table[0, 1:8, 1] - table[0, 1:8, 0]
    assert np.all(widths < 3 * DET.pixel_pitch_z / DET.sensor_thickness)


def test_the_cluster_cut_drops_random_doublets_and_keeps_the_tracks(tmp_path):
    event = events_for(DET, 30, 1, seed=3, cache_dir=tmp_path, hard_process="none").events[0]
    loose = seeding.prepare(event.hits, DET, SeedingCuts(cluster_shape=False))
    tight = seeding.prepare(event.hits, DET, CUTS)
    before = {tuple(d) for d in seeding.doublets(loose).tolist()}
    after = {tuple(d) for d in seeding.doublets(tight).tolist()}
    assert after <= before and len(after) < len(before) / 2
    particle = event.hits.particle
    pt = event.particles.pt
    true_before = {d for d in before if particle[d[0]] == particle[d[1]] and pt[particle[d[0]]] > 1}
    assert len(true_before) > 50 and true_before <= after
    # Same seeds from both algorithms with the cut on, and no worse efficiency than without.
    ca, base = seeding.cellular_automaton(tight), seeding.triplet_baseline(tight)
    assert ca.as_sets() == base.as_sets() == gpu.cellular_automaton(tight, "cpu").as_sets()
    with_cut = metrics.evaluate([event], [ca.hits], DET)
    without = metrics.evaluate([event], [seeding.cellular_automaton(loose).hits], DET)
    assert with_cut.efficiency >= without.efficiency - 1e-9
    assert with_cut.fake_rate < without.fake_rate


def test_events_saved_without_cluster_lengths_load_and_pass_the_cluster_cut(tmp_path):
    from erumlab.science.tracking.generation import save_events

    event = _hand_event()  # hand-made hits: no cluster lengths, like generator version 1 files
    assert event.hits.size_z is None
    save_events([event], tmp_path / "v1.npz", {"generator_version": 1})
    (loaded,), _ = load_events(tmp_path / "v1.npz")
    assert loaded.hits.size_z is None
    index = seeding.prepare(loaded.hits, DET, CUTS)
    assert np.all(index.slope_lo == 0) and np.all(np.isinf(index.slope_hi))
    loose = seeding.prepare(loaded.hits, DET, SeedingCuts(cluster_shape=False))
    assert seeding.cellular_automaton(index).as_sets() == \
        seeding.cellular_automaton(loose).as_sets()


# Pythia events, the cache, a small pileup event ----------------------------------------------


def test_pythia_events_are_generated_cached_and_seeded_identically(tmp_path):
    made = events_for(DET, 8, 2, seed=5, cache_dir=tmp_path)
    assert not made.cached and made.path.is_file()
    for event in made.events:
        assert event.interactions >= 1
        hits, particles = event.hits, event.particles
        assert len(particles) > 50 and len(hits) > 50
        assert np.all((hits.particle >= 0) & (hits.particle < len(particles)))
        assert set(np.unique(particles.vertex)) <= set(range(event.interactions + 1))
        np.testing.assert_allclose(hits.r, np.array(DET.radii)[hits.layer], rtol=1e-9)
        assert np.all(np.abs(hits.z) <= 26.5 + 0.01)
    again = events_for(DET, 8, 2, seed=5, cache_dir=tmp_path)
    assert again.cached
    np.testing.assert_array_equal(again.events[1].hits.z, made.events[1].hits.z)
    np.testing.assert_array_equal(again.events[1].hits.size_z, made.events[1].hits.size_z)
    assert made.events[0].hits.size_z.min() >= 1
    loaded, meta = load_events(made.path)
    assert meta["pileup"] == 8 and len(loaded) == 2
    # CA, baseline and the tensor CA agree on a real pileup event.
    for event in made.events:
        index = seeding.prepare(event.hits, DET, CUTS)
        ca = seeding.cellular_automaton(index)
        assert ca.as_sets() == seeding.triplet_baseline(index).as_sets()
        assert ca.as_sets() == gpu.cellular_automaton(index, "cpu").as_sets()
        perf = metrics.evaluate([event], [ca.hits], DET)
        assert perf.reconstructable > 0 and perf.efficiency > 0.9


def test_pileup_parsing():
    assert parse_pileups("200, 0,50,50") == [0, 50, 200]
    with pytest.raises(ValueError):
        parse_pileups("-5")


# The template ---------------------------------------------------------------------------------


def test_the_template_runs_as_a_papermill_job(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ERUMLAB_URL", raising=False)
    monkeypatch.delenv("ERUMLAB_API_TOKEN", raising=False)
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(TEMPLATE), str(output), kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
        parameters={"pileups": "3,8", "events": 1, "hard_process": "none", "display_pileup": 8})
    result = json.loads((tmp_path / "metrics.json").read_text())
    for name in ["timing.png", "performance.png", "event_display.png"]:
        assert (tmp_path / name).stat().st_size > 10_000, name
        assert name in result["figures"]
    assert [p["pileup"] for p in result["pileups"]] == [3, 8]
    assert all(p["identical_seeds"] for p in result["pileups"])
    assert result["ca_exponent"] is not None and "speedup_at_highest_pileup" in result
    assert list((tmp_path / "cache" / "tracking").glob("cms-phase1-pu8-*.npz"))
    assert "no portal configured" in output.read_text()
