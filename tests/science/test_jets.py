"""The FPGA jet tagger: features, the network, fixed-point arithmetic, pruning, latency, hls4ml."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from erumlab.science import modelio
from erumlab.science import nn as architectures
from erumlab.science.jets import experiment, features, fixedpoint, latency, metrics, model
from erumlab.science.jets.features import FEATURES, Constituents
from erumlab.science.jets.fixedpoint import FixedPointMLP, FixedType

TEMPLATE = Path(__file__).resolve().parents[2] / "notebooks_templates" / "jet-tagger.ipynb"


def massless(pt: float, y: float, phi: float) -> np.ndarray:
    return np.array([pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(y),
                     pt * math.cosh(y)])


def random_jets(sizes: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    jets = []
    for n in sizes:
        pt, y, phi = rng.exponential(20, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)
        mass = rng.uniform(0, 0.5, n)
        mt = np.sqrt(pt**2 + mass**2)
        jets.append(np.stack([pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y),
                              mt * np.cosh(y)], axis=1))
    return jets


# Features ---------------------------------------------------------------------------------


def test_two_back_to_back_massless_constituents_have_the_known_mass():
    # Two massless particles of pT 100 at the same rapidity, 1 rad apart in azimuth:
    # m^2 = 2 pT1 pT2 (cosh dy - cos dphi).
    jet = np.stack([massless(100, 0.2, 0.0), massless(100, 0.2, 1.0)])
    c = Constituents.from_jets([jet])
    f = dict(zip(FEATURES, features.compute(c, c)[0], strict=True))
    assert f["mass_mmdt"] == pytest.approx(math.sqrt(2 * 100 * 100 * (1 - math.cos(1.0))))
    assert f["multiplicity"] == 2
    assert f["zlogz"] == pytest.approx(math.log(0.5))
    # z = 1/2 each, R = 1: e2 = 1/4 for every beta; no triplet, so C2, D2, M2, N2 vanish.
    for name in ("c1_b0", "c1_b1", "c1_b2"):
        assert f[name] == pytest.approx(0.25)
    for name in ("c2_b1", "c2_b2", "d2_b1", "d2_b2", "m2_b1", "m2_b2", "n2_b1", "n2_b2"):
        assert f[name] == 0.0


def test_a_single_constituent_gives_zero_correlators_and_its_own_mass():
    p = np.array([[3.0, 4.0, 12.0, 14.0]])  # m^2 = 196 - 169 = 27
    c = Constituents.from_jets([p])
    f = dict(zip(FEATURES, features.compute(c, c)[0], strict=True))
    assert f["mass_mmdt"] == pytest.approx(math.sqrt(27.0))
    assert f["zlogz"] == 0.0 and f["multiplicity"] == 1
    assert all(f[name] == 0.0 for name in FEATURES[1:14])
    assert np.all(np.isfinite(features.compute(c, c)))


def test_equilateral_triplet_correlators_by_hand():
    # Three equal-pT constituents on a triangle of side d in (y, phi).
    d = 0.3
    points = [(0.0, 0.0), (d, 0.0), (d / 2, d * math.sqrt(3) / 2)]
    jet = np.stack([massless(50, y, phi) for y, phi in points])
    c = features.correlators(Constituents.from_jets([jet]), (1.0, 2.0))
    for beta in (1.0, 2.0):
        a = d**beta
        assert c[beta].e2[0] == pytest.approx(3 * a / 9)
        assert c[beta].e3[0] == pytest.approx(a**3 / 27)
        assert c[beta].e3_min1[0] == pytest.approx(a / 27)
        assert c[beta].e3_min2[0] == pytest.approx(a**2 / 27)


def _brute_force(jet: np.ndarray, beta: float) -> tuple[float, float, float, float]:
    pt, y, phi = features.kinematics(jet)
    z = pt / pt.sum()

    def angle(i: int, j: int) -> float:
        dphi = abs(phi[i] - phi[j])
        return math.hypot(y[i] - y[j], min(dphi, 2 * math.pi - dphi))

    n = len(jet)
    e2 = sum(z[i] * z[j] * angle(i, j) ** beta for i, j in itertools.combinations(range(n), 2))
    e3 = m1 = m2 = 0.0
    for i, j, k in itertools.combinations(range(n), 3):
        angles = sorted([angle(i, j), angle(i, k), angle(j, k)])
        w = z[i] * z[j] * z[k]
        e3 += w * (angles[0] * angles[1] * angles[2]) ** beta
        m1 += w * angles[0] ** beta
        m2 += w * (angles[0] * angles[1]) ** beta
    return e2, e3, m1, m2


def test_correlators_match_brute_force_pair_and_triplet_sums():
    jets = random_jets([3, 4, 7, 12, 12, 25], seed=3)
    jets[1][:, 1] *= -1
    jets[1][:, 0] *= -1  # one jet near phi = pi, to exercise the azimuth wrap
    result = features.correlators(Constituents.from_jets(jets), (0.0, 1.0, 2.0))
    for index, jet in enumerate(jets):
        for beta in (0.0, 1.0, 2.0):
            expected = _brute_force(jet, beta)
            got = [getattr(result[beta], name)[index]
                   for name in ("e2", "e3", "e3_min1", "e3_min2")]
            np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-15)


def test_feature_ratios_follow_their_definitions():
    jets = random_jets([6, 20, 33], seed=5)
    c = Constituents.from_jets(jets)
    f = features.compute(c, c)
    r = features.correlators(c, (0.0, 1.0, 2.0))
    col = {name: f[:, i] for i, name in enumerate(FEATURES)}
    np.testing.assert_allclose(col["c1_b0"], [(1 - np.sum((features.kinematics(j)[0]
                                                           / features.kinematics(j)[0].sum())
                                                          ** 2)) / 2 for j in jets])
    np.testing.assert_allclose(col["c2_b2"], r[2.0].e3 / r[2.0].e2 ** 2)
    np.testing.assert_allclose(col["d2_b1"], r[1.0].e3 / r[1.0].e2 ** 3)
    np.testing.assert_allclose(col["d2_a1_b1"], col["d2_b1"])
    np.testing.assert_allclose(col["d2_a1_b2"], r[1.0].e3 / r[2.0].e2 ** 1.5)
    np.testing.assert_allclose(col["m2_b2"], r[2.0].e3_min1 / r[2.0].e2)
    np.testing.assert_allclose(col["n2_b1"], r[1.0].e3_min2 / r[1.0].e2 ** 2)
    np.testing.assert_array_equal(col["multiplicity"], [6, 20, 33])


@pytest.mark.skipif(importlib.util.find_spec("fastjet") is None, reason="fastjet not installed")
def test_correlators_agree_with_fjcontrib_energy_correlator():
    import awkward as ak
    import fastjet

    jets = random_jets([5, 9, 30], seed=7)
    ours = features.correlators(Constituents.from_jets(jets), (1.0, 2.0))
    records = ak.zip({k: ak.Array([j[:, i] for j in jets])
                      for i, k in enumerate(("px", "py", "pz", "E"))}, with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(records, fastjet.JetDefinition(
        fastjet.cambridge_algorithm, 10.0))
    for beta in (1, 2):
        for npoint, angles, name in ((2, -1, "e2"), (3, -1, "e3"), (3, 1, "e3_min1"),
                                     (3, 2, "e3_min2")):
            theirs = np.asarray(sequence.exclusive_jets_energy_correlator(
                njets=1, beta=beta, npoint=npoint, angles=angles, func="generalized",
                normalized=True))
            np.testing.assert_allclose(getattr(ours[float(beta)], name), theirs, rtol=1e-6)
    n2 = np.asarray(sequence.exclusive_jets_energy_correlator(njets=1, beta=1, npoint=2,
                                                              func="nseries"))
    np.testing.assert_allclose(ours[1.0].e3_min2 / ours[1.0].e2 ** 2, n2, rtol=1e-6)


# The network -------------------------------------------------------------------------------


def test_reference_network_has_4389_parameters_and_round_trips_through_safetensors(tmp_path):
    tagger = model.build_tagger(seed=1)
    assert architectures.parameter_count(tagger) == 4389 == 1088 + 2080 + 1056 + 165
    assert architectures.architecture_of(tagger) == ("jet-tagger",
                                                     {"layers": [16, 64, 32, 32, 5]})
    assert "jet-tagger" in architectures.names() and "jet-tagger-fixed" in architectures.names()
    tagger.mean.fill_(3.0)
    path = modelio.save_weights(tagger, tmp_path / "w.safetensors")
    loaded = modelio.load_weights(path, "jet-tagger", {"layers": [16, 64, 32, 32, 5]})
    x = torch.randn(7, 16)
    torch.testing.assert_close(loaded(x), tagger(x))
    assert model.build_tagger([16, 8, 5]).widths == [16, 8, 5]


def _trained_small(seed: int = 0) -> tuple[model.JetTagger, np.ndarray, np.ndarray]:
    """A tagger trained briefly on a separable toy problem (features in jet-like ranges)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (5, 16))
    labels = rng.integers(0, 5, 3000)
    x = (centres[labels] + rng.normal(0, 1.0, (3000, 16))) * rng.uniform(0.1, 80, 16)
    tagger = model.build_tagger(seed=seed)
    model.train(tagger, x[:2000], labels[:2000], x[2000:2500], labels[2000:2500], epochs=8,
                seed=seed)
    return tagger, x[2500:], labels[2500:]


@pytest.fixture(scope="module")
def trained():
    return _trained_small()


def test_training_learns_the_toy_problem(trained):
    tagger, x, y = trained
    assert metrics.accuracy(y, model.softmax(model.predict_logits(tagger, x))) > 0.8


# Fixed point -------------------------------------------------------------------------------


def test_parse_and_describe_types():
    t = FixedType.parse("ap_fixed<16,6>")
    assert (t.width, t.integer, t.fraction, t.rounding, t.overflow) == (16, 6, 10, "TRN", "WRAP")
    assert (t.min_value, t.max_value, t.lsb) == (-32.0, 32.0 - 2**-10, 2**-10)
    r = FixedType.parse("ap_fixed<8,3,AP_RND,AP_SAT>")
    assert (r.rounding, r.overflow, str(r)) == ("RND", "SAT", "ap_fixed<8,3,AP_RND,AP_SAT>")
    u = FixedType.parse("ap_ufixed<4,2>")
    assert (u.min_int, u.max_int) == (0, 15)
    for bad in ("ap_fixed<16>", "ap_fixed<16,6,AP_RND_CONV>", "float", "ap_fixed<40,6>"):
        with pytest.raises(ValueError):
            FixedType.parse(bad)


def test_quantisation_against_exact_integers():
    trn = FixedType(8, 3)  # LSB 1/32, range [-4, 4 - 1/32]
    rnd = trn.with_modes(rounding="RND")
    x = np.array([0.1, -0.1, 1 / 64, -1 / 64, 3 / 64, 2.5 / 32, -2.5 / 32, 3.99, 0.0])
    # floor(x * 32)
    np.testing.assert_array_equal(trn.quantize(x), [3, -4, 0, -1, 1, 2, -3, 127, 0])
    # floor(x * 32 + 1/2): ties go up
    np.testing.assert_array_equal(rnd.quantize(x), [3, -3, 1, 0, 2, 3, -2, 128 - 256, 0])
    sat = rnd.with_modes(overflow="SAT")
    assert sat.quantize(np.array([3.99]))[0] == 127


def test_overflow_wraps_as_twos_complement_or_saturates():
    wrap = FixedType(8, 3)
    sat = wrap.with_modes(overflow="SAT")
    x = np.array([4.0, 5.0, -4.0, -4.03125, -5.0, 100.0])
    # 4.0 -> 128 -> -128; 5.0 -> 160 -> -96; -4.03125 -> -129 -> 127; 100 -> 3200 -> 3200-13*256
    np.testing.assert_array_equal(wrap.quantize(x), [-128, -96, -128, 127, 96, 3200 - 13 * 256])
    np.testing.assert_array_equal(sat.quantize(x), [127, 127, -128, -128, -128, 127])
    np.testing.assert_array_equal(wrap.handle_overflow(np.array([255, 256, -257])), [-1, 0, -1])


def test_requantisation_between_grids_is_exact_shifting():
    acc = FixedType(16, 6)  # 10 fractional bits
    products = np.array([1 << 20, (1 << 20) - 1, -1, -(1 << 9), 3 << 9, -(3 << 9)])  # 20 bits
    np.testing.assert_array_equal(acc.requantize(products, 20), [1024, 1023, -1, -1, 1, -2])
    rnd = acc.with_modes(rounding="RND")
    np.testing.assert_array_equal(rnd.requantize(products, 20), [1024, 1024, 0, 0, 2, -1])
    np.testing.assert_array_equal(acc.requantize(np.array([5]), 8), [20])  # more bits: exact


def test_a_neuron_by_hand():
    # One input, two weights: mult = accum(x * w), acc = bias + mult, res = result(acc).
    t = FixedType(8, 4)  # LSB 1/16
    net = FixedPointMLP.from_weights([(np.array([[0.75], [-0.3]]), np.array([0.5, 0.0]))], t)
    # x = 1.1 -> floor(17.6) = 17; w = 0.75 -> 12, -0.3 -> floor(-4.8) = -5;
    # products 204/256 -> floor(12.75) = 12 and -85/256 -> floor(-5.3) = -6; bias 8.
    np.testing.assert_array_equal(net.forward_int(np.array([[1.1]])), [[20, -6]])
    np.testing.assert_allclose(net.predict(np.array([[1.1]])), [[1.25, -0.375]])


def test_saturating_accumulator_keeps_hls4ml_order():
    # accum ap_fixed<4,4> (integers -8..7), products 7, 7, -7 added in order: 7 -> 7 (sat 14)
    # -> 0, whereas the exact sum 7 would stay 7; wrapping gives 7 (mod 16 arithmetic).
    t = FixedType(4, 4)
    precision = fixedpoint.LayerPrecision(t, t, t.with_modes(overflow="SAT"), t, t)
    net = FixedPointMLP.from_weights([(np.array([[1.0, 1.0, -1.0]]), np.array([0.0]))],
                                     [precision], input_type=t)
    assert net.forward_int(np.array([[7.0, 7.0, 7.0]]))[0, 0] == 0
    wrapping = FixedPointMLP.from_weights([(np.array([[1.0, 1.0, -1.0]]), np.array([0.0]))], t)
    assert wrapping.forward_int(np.array([[7.0, 7.0, 7.0]]))[0, 0] == 7


def test_wide_fixed_point_agrees_with_float(trained):
    tagger, x, _ = trained
    x_std = model.standardised(tagger, x)
    logits = model.predict_logits(tagger.net, x_std).astype(np.float64)
    wide = FixedPointMLP.from_torch(tagger.net, "ap_fixed<32,12,AP_RND,AP_SAT>").predict(x_std)
    np.testing.assert_allclose(wide, logits, atol=1e-4)
    narrow = FixedPointMLP.from_torch(tagger.net, "ap_fixed<16,6>").predict(x_std)
    assert np.mean(narrow.argmax(1) == logits.argmax(1)) > 0.97
    assert np.max(np.abs(narrow - logits)) > 1e-4  # it does quantise
    tiny = FixedPointMLP.from_torch(tagger.net, "ap_fixed<4,2>").predict(x_std)
    assert np.mean(tiny.argmax(1) == logits.argmax(1)) < 0.97


def test_the_zoo_fixed_point_model_computes_the_emulation(trained, tmp_path):
    tagger, x, _ = trained
    fixed = experiment.to_fixed_point_model(tagger, "ap_fixed<16,6>")
    path = modelio.save_weights(fixed, tmp_path / "fixed.safetensors")
    loaded = modelio.load_weights(path, "jet-tagger-fixed",
                                  {"layers": [16, 64, 32, 32, 5], "precision": "ap_fixed<16,6>"})
    expected = FixedPointMLP.from_torch(tagger.net, "ap_fixed<16,6>").predict(
        model.standardised(tagger, x))
    np.testing.assert_array_equal(loaded(torch.as_tensor(x, dtype=torch.float32)).numpy(),
                                  expected.astype(np.float32))


def test_fake_quantisation_matches_the_type_and_passes_gradients():
    t = FixedType.parse("ap_fixed<8,3,AP_RND,AP_SAT>")
    x = torch.tensor([0.1, -0.1, 5.0, -7.0, 1 / 64], requires_grad=True)
    q = fixedpoint.fake_quantize(x, t)
    np.testing.assert_allclose(q.detach().numpy(), t.round_trip(x.detach().numpy()), atol=1e-7)
    q.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(5))


# Pruning, QAT, latency ------------------------------------------------------------------------


def test_pruning_reaches_the_target_sparsity_and_keeps_zeros(trained):
    tagger, x, y = trained
    pruned = experiment.copy_model(tagger)
    history = model.prune(pruned, 0.6, x[:300], y[:300], x[300:], y[300:], steps=2,
                          epochs_per_step=1)
    assert [round(h["sparsity"], 2) for h in history] == [0.3, 0.6]
    assert model.sparsity(pruned) == pytest.approx(0.6, abs=0.01)
    assert model.nonzero_weights(pruned) == pytest.approx(0.4 * (16 * 64 + 64 * 32 + 32 * 32
                                                                 + 32 * 5), abs=3)
    zeros = [(m.weight == 0).clone() for m in pruned.net if isinstance(m, torch.nn.Linear)]
    model.quantisation_aware_training(pruned, "ap_fixed<8,3>", x[:300], y[:300], x[300:],
                                      y[300:], epochs=1)
    after = [(m.weight == 0) for m in pruned.net if isinstance(m, torch.nn.Linear)]
    assert all(bool(torch.all(b[a])) for a, b in zip(zeros, after, strict=True))
    assert experiment.latency_of(pruned).multiplications == model.nonzero_weights(pruned)


def test_latency_estimate_of_the_reference_network():
    e = latency.estimate(latency.reference_fan_in(model.REFERENCE_LAYERS), classes=5,
                         multiplications=4288)
    # io 2 + layer 1: 1 + ceil(ceil(log2 17)/2)=3 + 1 -> 5; layer 2 (65 summands): 1 + 4 + 1;
    # layer 3 (33): 1 + 3 + 1; layer 4 (33): 1 + 3; softmax 1 + ceil(3/2) + 1 + 1.
    assert [layer["clocks"] for layer in e.per_layer] == [5, 6, 5, 4]
    assert e.clocks == 2 + 20 + 5
    assert e.ns == pytest.approx(135.0)
    assert latency.REFERENCE_NS[0] <= e.ns <= latency.REFERENCE_NS[1]
    pruned = latency.estimate([4, 16, 8, 8], classes=5, output="argmax")
    assert pruned.clocks < e.clocks


# hls4ml ---------------------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("hls4ml") is None or shutil.which("g++") is None,
                    reason="hls4ml or g++ not installed")
@pytest.mark.parametrize("precision", ["ap_fixed<16,6>", "ap_fixed<10,4,AP_RND,AP_SAT>"])
def test_hls4ml_c_simulation_agrees_with_the_emulation(trained, tmp_path, precision):
    from erumlab.science.jets import hls

    tagger, x, _ = trained
    found = hls.compare(tagger.net, precision, model.standardised(tagger, x), tmp_path)
    assert found.jets == len(x)
    assert found.argmax_agreement >= 0.999
    assert found.exact_agreement >= 0.999


# Generation and the template ---------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("pythia8mc") is None
                    or importlib.util.find_spec("fastjet") is None,
                    reason="pythia8mc or fastjet not installed")
def test_tiny_pythia_fastjet_generation(tmp_path):
    from erumlab.science.jets import generation

    sample = generation.generate(4, classes=("W", "top"), batch_events=12, seed=3)
    assert sample.features.shape == (8, 16) and np.all(np.isfinite(sample.features))
    assert sorted(np.bincount(sample.labels).tolist()) == [4, 4]
    assert np.all(sample.pt > 800)
    mass = sample.features[:, FEATURES.index("mass_mmdt")]
    assert np.all(sample.groomed.counts <= sample.constituents.counts)
    assert np.median(mass[sample.labels == 1]) > np.median(mass[sample.labels == 0]) * 0.8
    np.testing.assert_array_equal(sample.features[:, -1], sample.constituents.counts)
    path = sample.save(tmp_path / "s.npz")
    again = generation.JetSample.load(path)
    np.testing.assert_array_equal(again.features, sample.features)
    assert again.classes == ("W", "top")


@pytest.mark.skipif(importlib.util.find_spec("pythia8mc") is None
                    or importlib.util.find_spec("fastjet") is None,
                    reason="pythia8mc or fastjet not installed")
def test_template_runs_with_tiny_parameters(tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ERUMLAB_URL", raising=False)
    monkeypatch.delenv("ERUMLAB_API_TOKEN", raising=False)
    papermill.execute_notebook(
        str(TEMPLATE), str(tmp_path / "out.ipynb"), cwd=str(tmp_path), kernel_name="python3",
        parameters={"jets_per_class": 30, "epochs": 2, "precisions": ["ap_fixed<8,3>"],
                    "pruning_steps": 1, "pruning_epochs": 1, "qat_epochs": 1,
                    "hls4ml_jets": 50, "use_hls4ml": False}, progress_bar=False)
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["training"]["parameters"] == 4389
    assert {"roc.png", "confusion_float.png", "confusion_ap_fixed_16_6.png",
            "accuracy_vs_bits.png"} <= set(result["figures"])
    for name in result["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    variants = {(r["variant"], r["precision"]) for r in result["evaluations"]}
    assert ("dense", "ap_fixed<16,6>") in variants and ("dense", "ap_fixed<8,3>") in variants
    assert result["latency"]["dense"]["clocks"] > 0
    assert result["published"] == {}
