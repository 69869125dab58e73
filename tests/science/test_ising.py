"""The 2D Ising model: Onsager's exact results, the Metropolis sampler (against exact
enumeration and Onsager), the symmetric CNN, the ROC and crossing helpers and a small
end-to-end training of the phase classifier."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from erumlab.science import ising, nn
from erumlab.science.ising import T_CRITICAL, IsingCNN

# Exact results ----------------------------------------------------------------------------


def test_critical_temperature_is_onsagers():
    critical = T_CRITICAL
    assert critical == pytest.approx(2.0 / math.log(1.0 + math.sqrt(2.0)), rel=1e-15)
    assert critical == pytest.approx(2.269185, abs=1e-6)
    # Kramers-Wannier self-duality: sinh(2/Tc) = 1.
    assert math.sinh(2.0 / critical) == pytest.approx(1.0, abs=1e-12)


def test_onsager_energy_limits():
    assert ising.onsager_energy(T_CRITICAL) == pytest.approx(-math.sqrt(2.0), abs=1e-12)
    assert ising.onsager_energy(0.1) == pytest.approx(-2.0, abs=1e-12)
    # High-temperature series: u = -2 tanh(1/T) + O(tanh^3).
    assert ising.onsager_energy(100.0) == pytest.approx(-2.0 * math.tanh(0.01), abs=1e-5)


def test_onsager_energy_is_continuous_through_tc():
    near = ising.onsager_energy(np.array([T_CRITICAL - 1e-6, T_CRITICAL + 1e-6]))
    np.testing.assert_allclose(near, -math.sqrt(2.0), atol=1e-4)


def test_onsager_energy_matches_the_elliptic_integral_by_quadrature():
    # The same formula with K(k) integrated numerically instead of by the AGM.
    nodes, weights = np.polynomial.legendre.leggauss(400)
    theta, weights = (nodes + 1.0) * np.pi / 4.0, weights * np.pi / 4.0
    for t in [0.5, 1.0, 1.5, 2.0, 2.6, 3.0, 5.0]:
        two_beta = 2.0 / t
        k = 2.0 * math.sinh(two_beta) / math.cosh(two_beta) ** 2
        elliptic_k = float(np.sum(weights / np.sqrt(1.0 - k**2 * np.sin(theta) ** 2)))
        expected = -(1.0 / math.tanh(two_beta)) * (
            1.0 + 2.0 / math.pi * (2.0 * math.tanh(two_beta) ** 2 - 1.0) * elliptic_k)
        assert ising.onsager_energy(t) == pytest.approx(expected, abs=1e-10), t


def test_onsager_energy_rises_with_temperature_and_keeps_array_shape():
    grid = np.linspace(0.5, 6.0, 50)
    u = ising.onsager_energy(grid)
    assert isinstance(u, np.ndarray) and u.shape == grid.shape
    assert np.all(np.diff(u) > 0)
    assert isinstance(ising.onsager_energy(1.5), float)


def test_onsager_magnetisation():
    assert ising.onsager_magnetisation(2.0) == pytest.approx(
        (1.0 - math.sinh(1.0) ** -4) ** 0.125, rel=1e-12)
    assert ising.onsager_magnetisation(2.0) == pytest.approx(0.9113, abs=1e-4)
    assert ising.onsager_magnetisation(1.5) == pytest.approx(0.9865, abs=1e-4)
    assert ising.onsager_magnetisation(0.2) == pytest.approx(1.0, abs=1e-12)
    for t in [T_CRITICAL, T_CRITICAL + 1e-9, 2.5, 10.0]:
        assert ising.onsager_magnetisation(t) == 0.0
    below = ising.onsager_magnetisation(np.linspace(0.5, T_CRITICAL - 1e-3, 30))
    assert below.shape == (30,)
    assert np.all(np.diff(below) < 0) and np.all(below > 0)


def test_deep_in_the_ordered_phase_nothing_overflows_or_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ising.onsager_magnetisation(0.01) == 1.0
        assert ising.onsager_energy(0.01) == pytest.approx(-2.0, abs=1e-12)


@pytest.mark.parametrize("function", [ising.onsager_energy, ising.onsager_magnetisation])
@pytest.mark.parametrize("temperature", [0.0, -1.0, np.array([1.0, 0.0])])
def test_onsager_needs_positive_temperatures(function, temperature):
    with pytest.raises(ValueError, match="positive"):
        function(temperature)


# Observables ------------------------------------------------------------------------------


def test_energy_and_magnetisation_of_hand_made_configurations():
    size = 4
    up = np.ones((size, size))
    checkerboard = np.where(np.add.outer(np.arange(size), np.arange(size)) % 2, -1.0, 1.0)
    stripes = np.repeat(np.array([1.0, -1.0, 1.0, -1.0])[:, None], size, axis=1)
    one_flipped = up.copy()
    one_flipped[1, 2] = -1.0
    batch = np.stack([up, -up, checkerboard, stripes, one_flipped]).astype(np.float32)
    np.testing.assert_allclose(ising.energy(batch), [-2.0, -2.0, 2.0, 0.0, -2.0 + 8 / 16])
    np.testing.assert_allclose(ising.magnetisation(batch), [1.0, -1.0, 0.0, 0.0, 14 / 16])
    assert ising.energy(batch).dtype == np.float64
    assert ising.magnetisation(batch).dtype == np.float64


# The sampler ------------------------------------------------------------------------------


def test_sample_shapes_values_and_order():
    spins, temperatures = ising.sample(6, [3.0, 1.5, 4.0], 5, chains=2, thermalisation=5,
                                       seed=3)
    assert spins.shape == (15, 6, 6) and spins.dtype == np.float32
    assert temperatures.shape == (15,) and temperatures.dtype == np.float32
    assert set(np.unique(spins)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(temperatures, np.repeat([3.0, 1.5, 4.0], 5))


def test_each_configuration_carries_its_own_temperature():
    spins, temperatures = ising.sample(8, [5.0, 1.0], 12, chains=3, sweeps=3,
                                       thermalisation=20, seed=0)
    m = np.abs(ising.magnetisation(spins))
    assert np.all(m[temperatures == 1.0] > 0.9)
    assert m[temperatures == 5.0].mean() < 0.4


def test_chains_start_ordered_with_a_random_sign_below_tc_and_random_above():
    spins, _ = ising.sample(8, [1.0, 4.0], 32, chains=32, thermalisation=0, seed=0)
    m = ising.magnetisation(spins)
    cold, hot = m[:32], m[32:]
    assert np.all(np.abs(cold) == 1.0)
    assert (cold > 0).any() and (cold < 0).any()
    assert np.all(np.abs(hot) < 0.75)


def test_sample_is_deterministic_by_seed():
    first = ising.sample(8, [1.5, 2.5], 8, thermalisation=10, seed=7)
    again = ising.sample(8, [1.5, 2.5], 8, thermalisation=10, seed=7)
    other = ising.sample(8, [1.5, 2.5], 8, thermalisation=10, seed=8)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize(("arguments", "message"), [
    ({"size": 7}, "size"),
    ({"size": 0}, "size"),
    ({"temperatures": []}, "temperatures"),
    ({"temperatures": [1.5, 0.0]}, "temperatures"),
    ({"temperatures": [-2.0]}, "temperatures"),
    ({"temperatures": [float("nan")]}, "temperatures"),
    ({"temperatures": [float("inf")]}, "temperatures"),
    ({"per_temperature": 0}, "per_temperature"),
    ({"sweeps": 0}, "sweeps"),
    ({"thermalisation": -1}, "thermalisation"),
    ({"chains": 0}, "chains"),
    ({"chains": 5}, "chains"),
])
def test_sample_refuses_bad_arguments(arguments, message):
    call = {"size": 4, "temperatures": [2.0], "per_temperature": 4, **arguments}
    with pytest.raises(ValueError, match=message):
        ising.sample(call.pop("size"), call.pop("temperatures"), call.pop("per_temperature"),
                     **call)


@pytest.fixture(scope="module")
def exact_4x4():
    """Energy and |m| per spin of all 2^16 configurations of the periodic 4x4 lattice."""
    codes = np.arange(2**16)
    spins = (((codes[:, None] >> np.arange(16)) & 1) * 2 - 1).reshape(-1, 4, 4)
    return ising.energy(spins), np.abs(ising.magnetisation(spins))


@pytest.mark.parametrize("temperature", [1.8, 2.3, 3.0])
def test_sampler_matches_exact_enumeration_of_a_4x4_lattice(exact_4x4, temperature):
    energies, magnetisations = exact_4x4
    weights = np.exp(-(energies - energies.min()) * 16 / temperature)
    weights /= weights.sum()
    spins, _ = ising.sample(4, [temperature], 4000, sweeps=5, thermalisation=100, seed=11)
    # Over 20 seeds (n = 4000) the means agree with the exact ones within 0.0015, with
    # standard deviations up to 0.0094 (energy) and 0.0047 (|m|), both at T = 3.0.
    assert ising.energy(spins).mean() == pytest.approx(weights @ energies, abs=0.035)
    assert np.abs(ising.magnetisation(spins)).mean() == pytest.approx(
        weights @ magnetisations, abs=0.02)


@pytest.fixture(scope="module")
def lattice_16():
    spins, temperatures = ising.sample(16, [1.5, 3.5, 5.0], 400, sweeps=10,
                                       thermalisation=200, seed=0)
    return {t: spins[temperatures == np.float32(t)] for t in (1.5, 3.5, 5.0)}


def test_sampler_reproduces_onsager_magnetisation_below_tc(lattice_16):
    # Over 30 seeds: mean 0.9865 (Onsager 0.9865), standard deviation 0.0007.
    m = np.abs(ising.magnetisation(lattice_16[1.5])).mean()
    assert m == pytest.approx(ising.onsager_magnetisation(1.5), abs=0.005)


@pytest.mark.parametrize(("temperature", "tolerance"), [(1.5, 0.01), (3.5, 0.02)])
def test_sampler_reproduces_onsager_energy_away_from_tc(lattice_16, temperature, tolerance):
    # Over 30 seeds the means agree with Onsager within 0.001; standard deviations
    # 0.002 (T = 1.5) and 0.005 (T = 3.5).
    u = ising.energy(lattice_16[temperature]).mean()
    assert u == pytest.approx(ising.onsager_energy(temperature), abs=tolerance)


def test_sampler_is_disordered_well_above_tc(lattice_16):
    # Over 30 seeds: mean 0.084, standard deviation 0.003 for L = 16.
    assert np.abs(ising.magnetisation(lattice_16[5.0])).mean() < 0.15


# The CNN ---------------------------------------------------------------------------------


def random_spins(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (batch, size, size), generator=generator).float() * 2 - 1


def cnn(**config) -> IsingCNN:
    torch.manual_seed(0)
    return IsingCNN(**config).eval()


def test_cnn_is_registered_and_gives_one_logit_per_configuration():
    assert isinstance(nn.build("ising-cnn", {"size": 8}), IsingCNN)
    model = cnn(size=8)
    with torch.no_grad():
        assert model(random_spins(5, 8)).shape == (5, 1)
    assert nn.architecture_of(cnn(size=8, channels=[4, 4])) == (
        "ising-cnn", {"size": 8, "channels": [4, 4], "hidden": 32})


@pytest.mark.parametrize("channels", [[8, 16], [4, 4, 4], [4]])
def test_cnn_is_invariant_under_a_global_spin_flip(channels):
    model, spins = cnn(size=8, channels=channels), random_spins(6, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(-spins), model(spins), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("channels", "shifts"), [
    ([8, 16], [(2, 0), (0, 2), (4, 6), (-2, 2)]),  # one pooling: multiples of 2
    ([4, 4, 4], [(4, 0), (0, 4), (4, 4), (-4, 4)]),  # two poolings: multiples of 4
    ([4], [(1, 0), (0, 1), (3, 5)]),  # no pooling: every shift
])
def test_cnn_is_invariant_under_translations_by_multiples_of_the_pooling(channels, shifts):
    # Circular convolutions commute with every periodic shift, 2x2 average pooling only
    # with even ones, so the guarantee is for shifts by multiples of 2^(layers - 1).
    model, spins = cnn(size=8, channels=channels), random_spins(6, 8, seed=1)
    with torch.no_grad():
        reference = model(spins)
        for shift in shifts:
            torch.testing.assert_close(model(torch.roll(spins, shift, dims=(1, 2))), reference,
                                       rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 8, 6), (8, 8), (2, 16, 16)])
def test_cnn_refuses_spins_of_the_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"expected spins of shape \[batch, 8, 8\]"):
        cnn(size=8)(torch.zeros(shape))


@pytest.mark.parametrize(("config", "message"), [
    ({"size": 6, "channels": [4, 4, 4]}, "not divisible by 2"),
    ({"size": 7}, "not divisible by 2"),
    ({"size": 0, "channels": [4]}, "size 0"),
    ({"channels": []}, "at least one layer"),
    ({"channels": [4, 0]}, "positive"),
    ({"hidden": 0}, "positive"),
])
def test_cnn_refuses_a_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        IsingCNN(**config)
    with pytest.raises(nn.ArchitectureConfigError, match=message):
        nn.build("ising-cnn", config)


# Evaluation helpers -------------------------------------------------------------------------


def mann_whitney(labels: np.ndarray, scores: np.ndarray) -> float:
    positives, negatives = scores[labels], scores[~labels]
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return (wins + 0.5 * ties) / (positives.size * negatives.size)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_is_the_mann_whitney_statistic_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.4
    scores = rng.integers(0, 12, 300) + 3.0 * labels  # many ties, some signal
    assert ising.roc_auc(labels, scores) == pytest.approx(mann_whitney(labels, scores),
                                                          abs=1e-12)


def test_roc_curve_runs_from_corner_to_corner_with_a_point_per_distinct_score():
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.5
    scores = rng.integers(0, 20, 200).astype(float)
    fpr, tpr = ising.roc_curve(labels, scores)
    assert fpr.size == tpr.size == np.unique(scores).size + 1
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_roc_auc_extremes():
    labels = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    separating = np.where(labels, 0.9, 0.1) + np.arange(6) * 0.01
    assert ising.roc_auc(labels, separating) == 1.0
    assert ising.roc_auc(labels, -separating) == 0.0
    assert ising.roc_auc(labels, np.full(6, 0.3)) == 0.5


@pytest.mark.parametrize("labels", [np.ones(4, dtype=bool), np.zeros(4, dtype=bool)])
def test_roc_needs_both_classes(labels):
    with pytest.raises(ValueError, match="both classes"):
        ising.roc_auc(labels, np.arange(4.0))


def test_crossing_interpolates_the_first_fall_through_the_level():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([1.0, 0.8, 0.2, 0.9, 0.1, 0.0])
    assert ising.crossing(x, y) == pytest.approx(1.5)
    assert ising.crossing(x, y, level=0.85) == pytest.approx(0.0 + 0.15 / 0.2)
    assert ising.crossing(x, np.array([1.0, 0.5, 0.0, 0.0, 0.0, 0.0])) == 1.0


@pytest.mark.parametrize("y", [np.full(4, 0.9), np.full(4, 0.1), np.linspace(0.0, 1.0, 4)])
def test_crossing_is_nan_when_the_curve_never_falls_through(y):
    assert math.isnan(ising.crossing(np.arange(4.0), y))


def test_downsample_curve_keeps_the_ends_and_limits_the_points():
    x = np.linspace(0.0, 1.0, 1000) ** 2
    y = np.sqrt(x)
    small_x, small_y = ising.downsample_curve(x, y, points=101)
    assert 2 <= len(small_x) == len(small_y) <= 101
    assert (small_x[0], small_y[0]) == (0.0, 0.0) and (small_x[-1], small_y[-1]) == (1.0, 1.0)
    assert np.all(np.diff(small_x) > 0)
    assert set(small_x) <= set(x.tolist())  # the curve's own points
    assert all(isinstance(v, float) for v in small_x + small_y)
    assert ising.downsample_curve(x[:50], y[:50], points=101) == (x[:50].tolist(),
                                                                   y[:50].tolist())
    assert len(ising.downsample_curve(x, y)[0]) <= ising.ROC_POINTS


# Training -------------------------------------------------------------------------------------


SMALL = {"size": 16, "train_temperatures": 14, "train_per_temperature": 40,
         "test_temperatures": 21, "test_per_temperature": 20, "epochs": 6,
         "thermalisation": 100}


@pytest.fixture(scope="module")
def trained():
    return ising.train_phase_classifier(seed=0, **SMALL)


def test_the_classifier_learns_the_phases(trained):
    # Over seeds 0-11 with these settings: accuracy 0.955-0.979, ROC AUC 0.994-0.999,
    # critical temperature 2.21-2.31.
    metrics = {m["name"]: m["value"] for m in trained.metrics}
    assert metrics["accuracy"] > 0.9
    assert metrics["roc_auc"] > 0.98
    assert metrics["critical_temperature"] == pytest.approx(T_CRITICAL, abs=0.15)


def test_the_classifier_generalises_to_fresh_configurations(trained):
    spins, temperatures = ising.sample(16, [1.2, 3.4], 40, seed=123)
    p = ising.predict(trained.model, spins)
    assert p[temperatures < 2].mean() > 0.9
    assert p[temperatures > 3].mean() < 0.1


def test_the_result_describes_its_metrics_and_training(trained):
    assert [m["name"] for m in trained.metrics] == ["accuracy", "roc_auc",
                                                    "critical_temperature"]
    accuracy, auc, critical = trained.metrics
    assert accuracy["curve"] is None
    roc = auc["curve"]
    assert roc["kind"] == "roc" and 2 <= len(roc["x"]) == len(roc["y"]) <= ising.ROC_POINTS
    assert (roc["x"][0], roc["y"][0], roc["x"][-1], roc["y"][-1]) == (0.0, 0.0, 1.0, 1.0)
    line = critical["curve"]
    assert line["kind"] == "line" and critical["unit"] == "J/k_B"
    assert line["x"] == trained.temperatures and line["y"] == trained.mean_ordered
    np.testing.assert_allclose(trained.temperatures, np.linspace(1.0, 3.5, 21))
    assert critical["value"] == ising.crossing(np.array(line["x"]), np.array(line["y"]))
    assert all(0.0 <= p <= 1.0 for p in trained.mean_ordered)

    training = trained.training
    assert (training["architecture"], training["config"]["size"]) == ("ising-cnn", 16)
    assert nn.architecture_of(trained.model) == (training["architecture"], training["config"])
    train_grid = np.array(training["train"]["temperatures"])
    assert np.all(np.abs(train_grid - T_CRITICAL) >= 0.15) and 0 < train_grid.size < 14
    assert training["train"]["configurations"] == train_grid.size * 40
    assert training["test"]["configurations"] == 21 * 20
    assert len(training["epoch_losses"]) == 6
    assert training["epoch_losses"][-1] < training["epoch_losses"][0]


def test_training_is_deterministic_for_a_seed(trained):
    again = ising.train_phase_classifier(seed=0, **SMALL)
    first, second = trained.model.state_dict(), again.model.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert again.metrics == trained.metrics
