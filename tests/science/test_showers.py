"""erumlab.science.showers: the cascade's physics, the WGAN-GP, the metrics and the template."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from erumlab.science import modelio
from erumlab.science import nn as architectures
from erumlab.science.showers import metrics, model, reference, simulation
from erumlab.science.showers.geometry import GEOMETRIES, get

TEMPLATE = Path(__file__).resolve().parents[2] / "notebooks_templates" / "calo-wgan.ipynb"


# The detailed simulation --------------------------------------------------------------------


def test_every_mev_is_booked_and_visible_energy_is_a_small_positive_fraction():
    sample = simulation.simulate("hgcal-7x12x15", [20.0] * 20 + [60.0] * 10, seed=3)
    booked = sample.layer_total.sum(axis=1) + sample.leakage
    np.testing.assert_allclose(booked, 1000.0 * sample.energies, rtol=1e-9)
    visible = sample.cells.sum(axis=(1, 2, 3))
    assert np.all(sample.cells >= 0)
    assert np.all(visible > 0) and np.all(visible < sample.layer_total.sum(axis=1))
    fraction = visible / (1000.0 * sample.energies)
    # Crossings of the silicon planes see a fraction of the order of the MIP sampling fraction.
    sf = get("hgcal-7x12x15").sampling_fraction
    assert 0.3 * sf < fraction.mean() < 1.2 * sf
    # A 20 X0 calorimeter contains 20 GeV showers up to a few per cent.
    assert sample.leakage[:20].mean() < 0.05 * 20000


def test_mean_shower_maximum_agrees_with_grindhammer_peters_at_50_gev():
    fine = GEOMETRIES["fine-24x20x20"]
    sample = simulation.simulate(fine, [50.0] * 60, seed=5)
    assert sample.leakage.mean() < 0.02 * 50000  # 30 X0: contained
    centres = fine.layer_depths_x0 - 0.5 * fine.absorber_x0
    found = reference.gamma_maximum_from_moments(centres, sample.layer_total.mean(axis=0))
    expected = reference.shower_maximum(50000.0, fine.material.critical_energy)
    assert abs(found / expected - 1.0) < 0.10, (found, expected)
    # and the whole mean profile follows the GFlash gamma shape
    profile = sample.layer_total.mean(axis=0) / 50000.0 / fine.absorber_x0
    gflash = reference.mean_profile(centres, 50000.0, fine.material.critical_energy, fine.material.z)
    assert np.max(np.abs(profile - gflash)) < 0.3 * gflash.max()


def test_resolution_scales_like_one_over_sqrt_e_and_cost_grows_with_energy():
    low = simulation.simulate("hgcal-7x12x15", [10.0] * 150, seed=7)
    high = simulation.simulate("hgcal-7x12x15", [80.0] * 150, seed=8)
    resolution = [metrics.energy_summary(s.cells, "hgcal-7x12x15")["resolution"] for s in (low, high)]
    ratio = resolution[0] / resolution[1]
    assert 2.0 < ratio < 3.8, ratio  # sqrt(8) = 2.83
    assert 0.1 < resolution[0] * np.sqrt(10.0) < 0.6  # a stochastic term typical of Si sampling
    steps_ratio = high.steps.mean() / low.steps.mean()
    assert 4.0 < steps_ratio < 10.0, steps_ratio  # ~ linear in E, like a full simulation


def test_showers_are_reproducible_whatever_the_thread_count():
    import numba

    one = simulation.simulate("hgcal-7x12x15", [30.0] * 6, seed=11, threads=1)
    many = simulation.simulate("hgcal-7x12x15", [30.0] * 6, seed=11,
                               threads=numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(one.cells, many.cells)
    other = simulation.simulate("hgcal-7x12x15", [30.0] * 6, seed=12)
    assert not np.array_equal(one.cells, other.cells)


def test_impact_position_moves_the_shower_and_the_sample_round_trips(tmp_path):
    positions = np.array([[0.0, 0.0], [30.0, -20.0]])
    sample = simulation.simulate("hgcal-7x12x15", [40.0, 40.0], positions, seed=2)
    found = metrics.observables(sample.cells, "hgcal-7x12x15")
    assert abs(found["cog_x"][0, 2]) < 5 and abs(found["cog_x"][1, 2] - 30.0) < 5
    assert abs(found["cog_y"][1, 2] + 20.0) < 5
    path = sample.save(tmp_path / "s.npz")
    again = simulation.ShowerSample.load(path)
    np.testing.assert_array_equal(again.cells, sample.cells)
    assert again.geometry == "hgcal-7x12x15"


# The WGAN-GP ---------------------------------------------------------------------------------


class _LinearCritic(torch.nn.Module):
    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(weights)

    def forward(self, cells: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        return cells @ self.w


def test_gradient_penalty_of_a_linear_critic_is_its_norm_minus_one_squared():
    weights = torch.tensor([3.0, 4.0])  # norm 5
    penalty = model.gradient_penalty(_LinearCritic(weights), torch.randn(16, 2), torch.randn(16, 2),
                                     torch.zeros(16, 3))
    assert float(penalty.detach()) == pytest.approx(16.0)
    unit = model.gradient_penalty(_LinearCritic(torch.tensor([0.6, 0.8])), torch.randn(8, 2),
                                  torch.randn(8, 2), torch.zeros(8, 3))
    assert float(unit.detach()) == pytest.approx(0.0, abs=1e-10)


@pytest.fixture(scope="module")
def tiny_sample():
    rng = np.random.default_rng(0)
    energies = np.repeat([20.0, 50.0], 16)
    return simulation.simulate("hgcal-7x12x15", energies, rng.uniform(-10, 10, (32, 2)), seed=1)


def test_training_steps_change_the_networks_and_checkpoints_resume(tiny_sample, tmp_path):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
    before_g = [p.detach().clone() for p in generator.parameters()]
    before_c = [p.detach().clone() for p in critic.parameters()]
    checkpoint = tmp_path / "ck.pt"
    result = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                         tiny_sample.positions, iterations=2, batch_size=8, n_critic=2,
                         device="cpu", checkpoint=checkpoint, progress=False, log_every=1)
    assert len(result.critic_loss) == 2
    assert all(np.isfinite(result.critic_loss)) and all(np.isfinite(result.generator_loss))
    assert any(not torch.equal(a, b) for a, b in zip(before_g, generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_c, critic.parameters(), strict=True))
    assert checkpoint.is_file()
    resumed = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                          tiny_sample.positions, iterations=3, batch_size=8, n_critic=1,
                          device="cpu", checkpoint=checkpoint, progress=False)
    assert resumed.resumed_from == 2
    # a checkpoint of networks of another shape is refused with an error naming the file
    other, other_critic = model.build("hgcal-7x12x15", response=response, sparse_gate=True, seed=0)
    with pytest.raises(ValueError, match="ck.pt: this checkpoint was written by networks of another"):
        model.train(other, other_critic, tiny_sample.cells, tiny_sample.energies,
                    tiny_sample.positions, iterations=4, batch_size=8, n_critic=1, device="cpu",
                    checkpoint=checkpoint, progress=False)


def test_selection_keeps_the_best_scoring_generator_without_changing_the_training(tiny_sample,
                                                                                   tmp_path):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    runs = {}
    for select_every in (0, 2):
        generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
        result = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                             tiny_sample.positions, iterations=6, batch_size=8, n_critic=1,
                             device="cpu", progress=False, log_every=1, select_every=select_every,
                             checkpoint=tmp_path / f"ck{select_every}.pt", checkpoint_every=2)
        runs[select_every] = (generator, result)
    plain, selected = runs[0][1], runs[2][1]
    assert plain.selection == [] and plain.selected_iteration is None
    # scoring draws its own random numbers: the training path is the same
    assert selected.generator_loss == plain.generator_loss
    assert [i for i, _ in selected.selection] == [2, 4, 6]
    scores = dict(selected.selection)
    assert selected.selected_iteration == min(scores, key=scores.get)
    # the returned generator is the one that scored best, on the same yardstick
    yardstick = model.validation_sample(tiny_sample.cells, tiny_sample.energies,
                                         tiny_sample.positions, 500, 0)
    assert model.moment_score(runs[2][0], *yardstick) == pytest.approx(
        scores[selected.selected_iteration], rel=1e-6)
    # a resumed job keeps the best state seen before the interruption
    state = torch.load(tmp_path / "ck2.pt", weights_only=True)
    assert int(state["best"]["iteration"]) == selected.selected_iteration


def test_classifier_selection_keeps_the_least_told_apart_state_within_the_moment_bound(
        tiny_sample, monkeypatch):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    arguments = (tiny_sample.cells, tiny_sample.energies, tiny_sample.positions)

    def run(select_classifier):
        generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
        result = model.train(generator, critic, *arguments, iterations=6, batch_size=8,
                             n_critic=1, device="cpu", progress=False, log_every=1, select_every=2,
                             select_classifier=select_classifier)
        return generator, result

    def expected(result, bound):  # within the bound the AUC ranks, outside it the moments
        aucs = dict(result.selection_auc)
        ranks = {i: (0, aucs[i]) if score <= bound else (1, score) for i, score in result.selection}
        return min(ranks, key=ranks.get)

    _, plain = run(False)
    _, judged = run(True)
    assert plain.selection_auc == []
    # the classifier trains on its own random numbers: the training path is the same
    assert judged.generator_loss == plain.generator_loss
    assert judged.selection == plain.selection
    assert [i for i, _ in judged.selection_auc] == [2, 4, 6]
    assert all(0.0 <= auc <= 1.0 for _, auc in judged.selection_auc)
    assert judged.selected_iteration == expected(judged, model.SELECT_MOMENT_BOUND)
    # every state within the bound: the one the classifier tells apart least is returned
    monkeypatch.setattr(model, "SELECT_MOMENT_BOUND", float("inf"))
    generator, widened = run(True)
    aucs = dict(widened.selection_auc)
    assert widened.selected_iteration == min(aucs, key=aucs.get) == expected(widened, float("inf"))
    yardstick = model.validation_sample(*arguments, 500, 0)
    assert model.selection_auc(generator, *yardstick) == pytest.approx(
        aucs[widened.selected_iteration], abs=1e-9)


def test_the_weight_average_follows_the_training_without_changing_it(tiny_sample, tmp_path):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    runs = {}
    for decay in (0.0, 0.5):
        generator, critic = model.build("hgcal-7x12x15", response=response, sparse_gate=True,
                                        lateral_basis=True, hit_counts=True, seed=0)
        result = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                             tiny_sample.positions, iterations=4, batch_size=8, n_critic=1,
                             device="cpu", progress=False, log_every=1, average_decay=decay,
                             checkpoint=tmp_path / f"ck{decay}.pt", checkpoint_every=2)
        runs[decay] = (generator, result, torch.load(tmp_path / f"ck{decay}.pt", weights_only=True))
    (plain, plain_result, plain_state), (averaged, averaged_result, state) = runs[0.0], runs[0.5]
    # the average is only read: the trained weights take the same path
    assert averaged_result.generator_loss == plain_result.generator_loss
    for key, value in plain_state["generator"].items():
        torch.testing.assert_close(state["generator"][key], value)
    assert "average" not in plain_state
    # what comes back is the average the checkpoint keeps, not the last trained weights
    returned = averaged.state_dict()
    for key, value in state["average"].items():
        torch.testing.assert_close(returned[key], value)
    weight = "layer_head.weight"
    assert not torch.allclose(returned[weight], state["generator"][weight])
    torch.testing.assert_close(plain.state_dict()[weight], state["generator"][weight])
    # a resumed job resumes the average too (here nothing is left to train: it is the checkpoint's)
    again, again_critic = model.build("hgcal-7x12x15", response=response, sparse_gate=True,
                                      lateral_basis=True, hit_counts=True, seed=1)
    resumed = model.train(again, again_critic, tiny_sample.cells, tiny_sample.energies,
                          tiny_sample.positions, iterations=4, batch_size=8, n_critic=1,
                          device="cpu", progress=False, average_decay=0.5,
                          checkpoint=tmp_path / "ck0.5.pt")
    assert resumed.resumed_from == 4
    for key, value in state["average"].items():
        torch.testing.assert_close(again.state_dict()[key], value)
    with pytest.raises(ValueError, match="average_decay must be in"):
        model.train(plain, model.build("hgcal-7x12x15", response=response)[1],
                    tiny_sample.cells, tiny_sample.energies, tiny_sample.positions,
                    iterations=1, device="cpu", progress=False, average_decay=1.0)


def test_the_learning_rate_falls_linearly_to_its_final_fraction(tiny_sample, tmp_path):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    arguments = (tiny_sample.cells, tiny_sample.energies, tiny_sample.positions)
    options = {"batch_size": 8, "n_critic": 1, "device": "cpu", "progress": False,
               "learning_rate": 1e-3, "checkpoint_every": 1}

    def last_rates(iterations: int, fraction: float) -> list[float]:
        generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
        saved = tmp_path / f"{iterations}-{fraction}.pt"
        model.train(generator, critic, *arguments, iterations=iterations, checkpoint=saved,
                    final_lr_fraction=fraction, **options)
        state = torch.load(saved, weights_only=True)
        return [group["lr"] for name in ("generator_optimiser", "critic_optimiser")
                for group in state[name]["param_groups"]]

    # the last iteration's rate, both networks: the fraction of the first, whatever the length
    assert last_rates(5, 0.25) == pytest.approx([2.5e-4, 2.5e-4])
    assert last_rates(2, 0.25) == pytest.approx([2.5e-4, 2.5e-4])
    assert last_rates(3, 1.0) == pytest.approx([1e-3, 1e-3])  # constant, as before
    # stopped after 2 of 5 iterations and resumed: the schedule is the 5-iteration run's
    generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
    resumed = tmp_path / "resumed.pt"
    model.train(generator, critic, *arguments, iterations=2, checkpoint=resumed,
                final_lr_fraction=0.25, **options)
    again = model.train(generator, critic, *arguments, iterations=5, checkpoint=resumed,
                        final_lr_fraction=0.25, **options)
    assert again.resumed_from == 2
    assert torch.load(resumed, weights_only=True)["generator_optimiser"]["param_groups"][0][
        "lr"] == pytest.approx(2.5e-4)
    generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"final_lr_fraction must be in \(0, 1\]"):
            model.train(generator, critic, *arguments, iterations=1, device="cpu",
                        progress=False, final_lr_fraction=bad)


def test_an_observer_sees_every_check_without_changing_the_training(tiny_sample):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    arguments = (tiny_sample.cells, tiny_sample.energies, tiny_sample.positions)
    seen = []

    def observe(iteration, generator):  # draws random numbers of its own, as a fidelity test does
        seen.append((iteration, model.generate(generator, [50.0], count=2, seed=0)))
        torch.rand(100)

    runs = []
    for observer in (None, observe):
        generator, critic = model.build("hgcal-7x12x15", response=response, sparse_gate=True,
                                        seed=0)
        runs.append(model.train(generator, critic, *arguments, iterations=6, batch_size=8,
                                n_critic=1, device="cpu", progress=False, log_every=1,
                                select_every=2, observe=observer))
    assert runs[1].generator_loss == runs[0].generator_loss
    assert runs[1].selection == runs[0].selection
    assert [i for i, _ in seen] == [2, 4, 6]
    # the generator of that moment (same draws: only its weights differ)
    assert not np.array_equal(seen[0][1], seen[2][1])
    with pytest.raises(ValueError, match="observe is called at the selection's checks"):
        model.train(*model.build("hgcal-7x12x15", response=response), *arguments,
                    iterations=1, device="cpu", progress=False, observe=observe)


def test_the_trajectory_bench_follows_the_held_out_figures_along_the_training(tmp_path,
                                                                              monkeypatch):
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "bench" / "calo_wgan_trajectory.py"
    spec = importlib.util.spec_from_file_location("calo_wgan_trajectory", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path))
    found = bench.main(["--train-energies", "20,40", "--held-out", "30",
                        "--showers-per-energy", "24", "--iterations", "5", "--every", "2",
                        "--select-every", "2", "--batch-size", "8", "--n-critic", "1",
                        "--classifier-epochs", "2",
                        "--json", str(tmp_path / "t.json"), "--save", str(tmp_path / "g.st")])
    assert [row["iteration"] for row in found["rows"]] == [2, 4, 5]  # and at the end
    assert [i for i, _ in found["moment_scores"]] == [2, 4, 5]
    for row in found["rows"]:
        assert 0.0 <= row["auc_cells"] <= 1.0 and 0.0 <= row["auc_high_level"] <= 1.0
        assert set(row["sub_aucs"]) == set(metrics.high_level_groups(7))
        assert row["moment_score"] == dict(found["moment_scores"])[row["iteration"]]
    assert found["kept_by_selection"] in (2, 4, 5)
    assert json.loads((tmp_path / "t.json").read_text())["rows"][0]["iteration"] == 2
    assert model.load(tmp_path / "g.st").latent_dim == 10 + 14 + 2  # the kept generator
    with pytest.raises(SystemExit):  # --every not a multiple of the selection's checks
        bench.parse(["--every", "700"])


def test_generation_shapes_non_negativity_and_zoo_round_trip(tmp_path):
    generator, _ = model.build("hgcal-7x12x15", response=2.6, seed=0)
    showers = model.generate(generator, [20.0, 50.0, 90.0], np.zeros((3, 2)), seed=1)
    assert showers.shape == (3, 7, 12, 15) and showers.dtype == np.float32
    assert np.all(showers >= 0)
    assert model.generate(generator, [70.0], count=5, seed=0).shape == (5, 7, 12, 15)
    # on a CPU in batches of CPU_BATCH: every batch is filled, the last one in part
    many = model.generate(generator, [50.0], count=2 * model.CPU_BATCH + 7, seed=2)
    assert many.shape[0] == 2 * model.CPU_BATCH + 7
    assert np.all(many.reshape(len(many), -1).sum(axis=1) > 0)
    np.testing.assert_array_equal(model.generate(generator, [70.0], count=4, seed=3),
                                  model.generate(generator, [70.0], count=4, seed=3))
    # the zoo stores architecture name, config and safetensors weights
    name, config = architectures.architecture_of(generator)
    assert name == "calo-wgan-generator" and "calo-wgan-generator" in architectures.names()
    path = tmp_path / "g.safetensors"
    modelio.save_weights(generator, path)
    rebuilt = modelio.load_weights(path, name, config)
    np.testing.assert_allclose(model.generate(rebuilt, [70.0], count=4, seed=3),
                               model.generate(generator, [70.0], count=4, seed=3), rtol=1e-6)
    fine, _ = model.build("fine-24x20x20", response=2.0, seed=0)
    assert model.generate(fine, [30.0], count=2).shape == (2, 24, 20, 20)
    checked = modelio.dry_run_torch(generator, modelio.parse_signature(model.signature(generator)))
    assert checked.outputs[0].shape == [None, 7, 12, 15]


def test_the_critic_judges_standardised_features_and_the_penalty_is_taken_there(tiny_sample):
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    real, cond = model.training_tensors(tiny_sample.cells, tiny_sample.energies,
                                        tiny_sample.positions, response)
    _, critic = model.build("hgcal-7x12x15", response=response, seed=0)
    critic.set_scale(real)
    features = critic.features(real)
    assert features.shape == (len(real), 7 * 12 * 15 + 7 + 1)
    spread = features.std(dim=0)
    lively = critic.raw_features(real).std(dim=0) >= critic.scale  # not raised to the floor
    assert torch.allclose(spread[lively], torch.ones(int(lively.sum())), rtol=1e-4)
    # the total (last feature) is one of them: a resolution-sized change moves it by ~1
    assert bool(lively[-1])
    assert torch.allclose(critic(real, cond), critic.score(features, cond))
    penalty = model.gradient_penalty(critic.score, features, features.flip(0), cond)
    assert torch.isfinite(penalty)


def test_a_generator_saved_before_the_stochastic_latent_still_builds():
    old = model.ShowerGenerator(response=2.6)  # its config has no such entry: the old behaviour
    assert not old.stochastic_latent
    assert model.generate(old, [50.0], count=2, seed=0).shape == (2, 7, 12, 15)


def test_training_stops_when_the_losses_turn_nan_and_keeps_what_was_good(tiny_sample, tmp_path,
                                                                        monkeypatch):
    real_penalty, calls = model.gradient_penalty, []

    def breaks_at_iteration_4(*args):  # one critic update per iteration: call k = iteration k
        calls.append(1)
        value = real_penalty(*args)
        return value * float("nan") if len(calls) >= 4 else value

    monkeypatch.setattr(model, "gradient_penalty", breaks_at_iteration_4)
    response = model.response_of(tiny_sample.cells, tiny_sample.energies)
    arguments = (tiny_sample.cells, tiny_sample.energies, tiny_sample.positions)
    options = {"iterations": 50, "batch_size": 8, "n_critic": 1, "device": "cpu",
               "progress": False, "select_showers": 10}
    generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
    checkpoint = tmp_path / "ck.pt"
    result = model.train(generator, critic, *arguments, select_every=2, checkpoint=checkpoint,
                         checkpoint_every=1, **options)
    assert result.diverged_at == 4 and len(calls) == 4  # stopped at once, not 46 NaN steps later
    assert result.selected_iteration == 2  # the only generator scored before it
    assert all(torch.isfinite(p).all() for p in generator.parameters())
    saved = torch.load(checkpoint, weights_only=True)
    assert int(saved["iteration"]) == 3  # the NaN state was never written over the last good one
    calls.clear()
    generator, critic = model.build("hgcal-7x12x15", response=response, seed=0)
    with pytest.raises(FloatingPointError, match="training diverged: the losses at iteration 4"):
        model.train(generator, critic, *arguments, select_every=0, **options)


def test_the_stochastic_latent_shrinks_relative_fluctuations_as_one_over_sqrt_e():
    generator, _ = model.build("hgcal-7x12x15", response=2.6, seed=0)
    assert generator.stochastic_latent
    with torch.no_grad():
        spread = {}
        for energy in (20.0, 80.0):
            cond = torch.tensor([[energy, 0.0, 0.0]]).repeat(4000, 1)
            total = generator.normalised(torch.randn(4000, generator.latent_dim), cond).sum(1)
            spread[energy] = float(total.std() / total.mean())
    # sqrt(20 / 80) = 0.5 for a network linear in its latent input; near it for this one
    assert 0.35 < spread[80.0] / spread[20.0] < 0.65


def test_the_sparse_gate_thins_cells_out_and_keeps_the_mean_energy():
    generator, _ = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True, seed=0)
    assert generator.sparse_gate
    n = 4000
    latent = torch.randn(1, generator.latent_dim).repeat(n, 1)
    cond = torch.tensor([[50.0, 0.0, 0.0]]).repeat(n, 1)
    with torch.no_grad():
        generator.sparse_gate = False
        expected = generator.normalised(latent[:1], cond[:1])[0]
        generator.sparse_gate = True
        generator.gate_head.weight.zero_()
        generator.gate_head.bias.fill_(-1.0)  # every cell fires in sigmoid(-1) = 27 % of showers
        gated = generator.normalised(latent, cond)
    fired = (gated > 0).double().mean(dim=0)[expected > 0]
    assert float(fired.mean()) == pytest.approx(0.269, abs=0.01)
    # a fired cell carries its expected energy / p: the mean over showers is the expectation
    core = expected > 0.01
    np.testing.assert_allclose(gated.mean(dim=0)[core].numpy(), expected[core].numpy(), rtol=0.15)
    assert float(gated.sum(dim=1).mean()) == pytest.approx(float(expected.sum()), rel=0.03)
    # the discrete choice still passes a gradient to the gate's head
    generator.normalised(latent[:64], cond[:64]).sum().backward()
    assert float(generator.gate_head.weight.grad.abs().sum()) > 0


def test_generation_draws_the_gate_as_training_does_and_a_low_rank_gate_is_cheap():
    full, _ = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True, gate_rank=0, seed=0)
    low, _ = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True, gate_rank=64, seed=0)
    plain, _ = model.build("hgcal-7x12x15", response=2.6, seed=0)
    # a full gate head nearly doubles the multiply-accumulates per shower; rank 64 adds 16 %
    assert model.parameter_budget(full) > 1.8 * model.parameter_budget(plain)
    assert model.parameter_budget(low) < 1.2 * model.parameter_budget(plain)
    with torch.no_grad():  # an untrained gate fires 95 % of cells: make it choose
        low.gate_head.weight.normal_(0.0, 0.5)
        low.gate_head.bias.fill_(0.0)
    latent, cond = torch.randn(256, low.latent_dim), torch.tensor([[50.0, 3.0, -2.0]]).repeat(256, 1)
    uniform = torch.rand(256, 7 * 12 * 15)
    trained_way = low(latent, cond, uniform)  # with gradients: the relaxed, straight-through draw
    with torch.no_grad():
        fused = low(latent, cond, uniform)  # generation: u > 1 - p, one comparison
    fired = fused > 0
    assert 0.1 < float(fired.double().mean()) < 0.9
    assert torch.equal(fired, trained_way.detach() > 0)
    torch.testing.assert_close(fused, trained_way.detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="gate_rank"):
        model.build("hgcal-7x12x15", response=2.6, sparse_gate=True, gate_rank=-1)


def test_the_renormalised_gate_moves_energy_within_a_layer_and_keeps_the_layer_energies():
    n = 2000
    spreads = {}
    for renorm in (True, False):
        generator, _ = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True,
                                   gate_renorm=renorm, seed=0)
        with torch.no_grad():
            generator.gate_head.weight.zero_()
            generator.gate_head.bias.fill_(0.0)  # every cell fires in half of the showers
            latent = torch.randn(1, generator.latent_dim).repeat(n, 1)
            cond = torch.tensor([[50.0, 0.0, 0.0]]).repeat(n, 1)
            layers = generator(latent, cond).sum(dim=(2, 3))  # same shower, n gate draws
            generator.sparse_gate = False
            ungated = generator(latent[:1], cond[:1]).sum(dim=(2, 3))[0]
        assert float((layers > 0).all(dim=1).double().mean()) > 0.99
        spreads[renorm] = (layers.std(dim=0) / layers.mean(dim=0)).max()
        if renorm:  # each layer holds the layer head's energy, less what the readout suppresses
            assert torch.all(layers <= ungated * 1.05)
            assert torch.all(layers.mean(dim=0) > 0.9 * ungated)
    # without it the draws alone would make the layer energies (and the resolution) fluctuate
    assert spreads[True] < 0.05 < spreads[False]


def test_renormalised_after_the_readout_the_layer_sums_are_the_layer_heads_energies():
    n = 400
    latent, cond = torch.randn(n, 10), torch.tensor([[50.0, 3.0, -2.0]]).repeat(n, 1)
    for options in ({}, {"sparse_gate": True}, {"sparse_gate": True, "gate_poisson": True}):
        generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                                   readout_renorm=True, seed=0, **options)
        scale = model.LATENT_REFERENCE_GEV / cond[:, :1]
        h = generator.trunk(torch.cat([latent * torch.sqrt(scale), model.conditions_tensor(
            cond[:, 0], cond[:, 1:3], generator.position_scale_mm)], dim=1))
        expected = torch.nn.functional.softplus(generator.layer_head(h)) * 50.0 * 2.6
        with torch.no_grad():  # generation
            layers = generator(latent, cond).sum(dim=(2, 3))
        torch.testing.assert_close(layers, expected.detach(), rtol=1e-4, atol=0.0)
        cells = generator.normalised(latent, cond)  # training: the same, with a gradient
        torch.testing.assert_close(cells.reshape(n, 7, -1).sum(dim=2) * 50.0 * 2.6,
                                   expected, rtol=1e-4, atol=0.0)
    # without the option the readout's suppression takes its share (here ~1 %) of every layer
    generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, seed=0,
                               sparse_gate=True)
    with torch.no_grad():
        lost = 1 - generator(latent, cond).sum(dim=(2, 3)).mean(0) / expected.mean(0)
    assert torch.all(lost > 0.003)
    # a layer with nothing above the threshold stays empty, and its gradient finite
    generator, critic = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True, seed=0,
                                    readout_renorm=True, hit_counts=True)
    with torch.no_grad():
        generator.layer_head.bias[6] = -30.0
        generator.layer_head.weight[6].zero_()
    cells, hits = generator.normalised(latent[:64], cond[:64], with_hits=True)
    assert float(cells.detach().reshape(64, 7, -1)[:, 6].abs().sum()) == 0.0
    assert float(hits[:, 6].detach().sum()) == 0.0 and float(hits[:, :6].detach().min()) > 0
    critic.score(critic.features(cells, hits), cond[:64]).sum().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in generator.parameters()
               if p.grad is not None)


def test_the_lateral_basis_integrates_gaussians_over_cells():
    import math

    generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, seed=0)
    edges = torch.arange(-60.0, 61.0, 10.0, dtype=torch.float32)
    centres = torch.tensor([[3.0, -47.0, 5.0]])
    fractions = generator._axis_fractions(edges, centres).double()  # (1, 3, K, 12)
    for i, centre in enumerate(centres[0].tolist()):
        for k, sigma in enumerate(model.LATERAL_WIDTHS_MM):
            phi = [0.5 * math.erfc(-(float(e) - centre) / (sigma * math.sqrt(2))) for e in edges]
            exact = torch.tensor(np.diff(phi), dtype=torch.float64)
            # float32: absolute errors of ~1e-7 of the layer, far below the readout's threshold
            torch.testing.assert_close(fractions[0, i, k], exact, rtol=1e-4, atol=2e-7)
    # the 64 mm Gaussian spills over the edges of the 120 mm wide grid
    assert 0.5 < float(fractions[0, 1, -1].sum()) < 0.7
    # the basis costs few multiply-accumulates; a low-rank cell head saves most of the rest
    plain, _ = model.build("hgcal-7x12x15", response=2.6, seed=0)
    low, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, cell_rank=128)
    assert model.parameter_budget(generator) < 1.1 * model.parameter_budget(plain)
    assert model.parameter_budget(low) < 0.6 * model.parameter_budget(plain)
    with pytest.raises(ValueError, match="cell_rank"):
        model.build("hgcal-7x12x15", response=2.6, cell_rank=-1)


def test_with_the_lateral_basis_showers_follow_the_impact_point():
    with_basis, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, seed=0)
    plain, _ = model.build("hgcal-7x12x15", response=2.6, seed=0)
    with torch.no_grad():
        for generator in (with_basis, plain):  # shapes that do not depend on the latent vector
            generator.cell_head.weight.zero_()
        with_basis.cell_head.bias.zero_()  # the basis alone: a Gaussian of 4 mm
        with_basis.mix_head.bias.copy_(torch.tensor([-30.0, -30.0, 0.0, -30.0, -30.0, -30.0,
                                                     -30.0] * 7))
        with_basis.offset_head.weight.zero_()
    impacts = np.array([[3.0, -2.0], [-7.5, 4.0], [9.0, 9.0]])
    for generator in (with_basis, plain):
        showers = model.generate(generator, [50.0] * 3, impacts, seed=0)
        cx, cy, _, _ = metrics.layer_centres_and_widths(showers, "hgcal-7x12x15")
        moved = np.abs(cx - impacts[:, :1]).max(), np.abs(cy - impacts[:, 1:]).max()
        if generator is with_basis:  # centred on the impact point in every layer
            assert max(moved) < 0.3
        else:  # a fixed shape: the same centre wherever the electron hits
            assert np.ptp(cx, axis=0).max() < 1e-3 and max(moved) > 5.0
    # the per-layer offsets move the centres away from the impact point (fluctuations)
    with torch.no_grad():
        with_basis.offset_head.bias.fill_(0.2)  # in units of the cell size: 2 mm
    cx, _, _, _ = metrics.layer_centres_and_widths(
        model.generate(with_basis, [50.0] * 3, impacts, seed=0), "hgcal-7x12x15")
    np.testing.assert_allclose(cx - impacts[:, :1], 2.0, atol=0.3)


def test_the_lateral_basis_starts_from_the_mixture_of_the_training_showers(tiny_sample):
    generator, critic = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, seed=0)
    rng = np.random.default_rng(3)
    impacts = torch.as_tensor(rng.uniform(-10, 10, (400, 2)), dtype=torch.float32)
    truth = torch.zeros(len(model.LATERAL_WIDTHS_MM))
    truth[1], truth[4] = 0.7, 0.3  # 2 mm and 16 mm
    with torch.no_grad():
        generator.mix_head.weight.zero_()
        generator.mix_head.bias.copy_(torch.log(truth + 1e-12).repeat(7))
        generator.offset_head.weight.zero_()
        profiles = generator.lateral_profiles(torch.zeros(400, 512), impacts)
        generator.mix_head.bias.zero_()
        generator.fit_lateral_basis(profiles * 5.0, impacts)
        fitted = torch.softmax(generator.mix_head.bias.reshape(7, -1), dim=1)
    torch.testing.assert_close(fitted, truth.repeat(7, 1), atol=0.02, rtol=0)
    # training fits it to the showers before the first step, and then trains as usual
    result = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                         tiny_sample.positions, iterations=2, batch_size=8, n_critic=1,
                         device="cpu", progress=False, log_every=1)
    assert all(np.isfinite(result.generator_loss))
    weights = torch.softmax(generator.mix_head.bias.reshape(7, -1), dim=1)
    weights = weights.detach()
    assert float(weights[0, :3].sum()) > 0.3  # the first layer is narrow: mostly 1-4 mm
    assert float(weights[6, 3:].sum()) > float(weights[0, 3:].sum())  # the last one wider


def test_the_critic_counts_hits_and_the_count_reaches_the_gate(tiny_sample):
    generator, critic = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True,
                                    lateral_basis=True, hit_counts=True, seed=0)
    with torch.no_grad():
        generator.gate_head.bias.fill_(0.0)  # half the cells fire: the count has room both ways
    cond = torch.tensor([[50.0, 3.0, -2.0]]).repeat(64, 1)
    cells, hits = generator.normalised(torch.randn(64, generator.latent_dim), cond, with_hits=True)
    # forward: exactly the cells that survive the gate and the readout threshold
    counted = (cells.detach().reshape(64, 7, -1) > 0).sum(dim=2).to(hits.dtype)
    assert torch.equal(hits.detach(), counted) and float(counted.min()) > 0
    # backward: firing more often means more hits
    hits.sum().backward()
    assert float(generator.gate_head.bias.grad.mean()) > 0
    # the critic sees the counts after cells, layer sums and total; of simulated showers it counts
    features = critic.raw_features(cells.detach())
    assert features.shape == (64, 7 * 12 * 15 + 7 + 1 + 7)
    assert torch.equal(features[:, -7:], counted)
    # a generator without the gate cannot follow the counts: refused, naming the reason
    plain, counting = model.build("hgcal-7x12x15", response=2.6, hit_counts=True, seed=0)
    with pytest.raises(ValueError, match="hit_counts needs a generator with sparse_gate"):
        model.train(plain, counting, tiny_sample.cells, tiny_sample.energies,
                    tiny_sample.positions, iterations=1, batch_size=8, n_critic=1,
                    device="cpu", progress=False)
    with pytest.raises(ValueError, match="with_hits needs a generator with sparse_gate"):
        plain.normalised(torch.randn(4, plain.latent_dim), cond[:4], with_hits=True)
    result = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                         tiny_sample.positions, iterations=2, batch_size=8, n_critic=1,
                         device="cpu", progress=False, log_every=1)
    assert all(np.isfinite(result.generator_loss)) and all(np.isfinite(result.critic_loss))


def test_the_critic_sees_the_layers_centres_and_widths_as_the_classifier_test_does(tiny_sample):
    _, critic = model.build("hgcal-7x12x15", response=2.6, lateral_moments=True, seed=0)
    cells = tiny_sample.cells[:16].astype(np.float64)
    cells[0, 3] = 0.0  # an empty layer: centre and width 0
    features = critic.raw_features(torch.tensor(cells.reshape(16, -1), dtype=torch.float32))
    assert features.shape == (16, 7 * 12 * 15 + 7 + 1 + 4 * 7)
    cx, cy, wx, wy = metrics.layer_centres_and_widths(cells, "hgcal-7x12x15")
    read = np.where(cells.sum(axis=(2, 3)) > 0, 1.0, 0.0)
    expected = np.column_stack([cx, cy, np.sqrt(wx ** 2 + 1.0) * read,
                                np.sqrt(wy ** 2 + 1.0) * read])
    np.testing.assert_allclose(features[:, -28:].numpy(), expected, rtol=1e-4, atol=1e-3)
    # the generator's showers reach the critic's moments with a gradient
    generator, critic = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                                    lateral_moments=True, seed=0)
    cond = torch.tensor([[50.0, 3.0, -2.0]]).repeat(8, 1)
    made = generator.normalised(torch.randn(8, generator.latent_dim), cond)
    critic.raw_features(made)[:, -14:].sum().backward()  # the widths
    assert float(generator.mix_head.weight.grad.abs().sum()) > 0
    result = model.train(generator, critic, tiny_sample.cells, tiny_sample.energies,
                         tiny_sample.positions, iterations=2, batch_size=8, n_critic=1,
                         device="cpu", progress=False, log_every=1)
    assert all(np.isfinite(result.generator_loss)) and all(np.isfinite(result.critic_loss))


def test_the_poisson_gate_makes_halo_cells_single_mip_deposits():
    n = 4000
    for renorm in (True, False):
        generator, _ = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True,
                                   gate_poisson=True, gate_renorm=renorm, seed=0,
                                   readout_renorm=False)  # the gate's own draws, unscaled
        latent = torch.randn(1, generator.latent_dim).repeat(n, 1)
        cond = torch.tensor([[50.0, 0.0, 0.0]]).repeat(n, 1)
        with torch.no_grad():
            generator.gate_head.weight.zero_()  # rate = expected energy / MIP, no correction
            generator.cell_head.weight.zero_()  # cells from ~10 MeV to ~1e-5 MeV in every layer
            generator.cell_head.bias.copy_(torch.linspace(-14.0, 0.0, 180).repeat(7))
            generator.sparse_gate, threshold = False, generator.threshold_mev
            generator.threshold_mev = 0.0
            expected = generator(latent[:1], cond[:1]).reshape(-1).double()  # MeV, before the gate
            generator.sparse_gate, generator.threshold_mev = True, threshold
            gated = generator(latent, cond).reshape(n, -1).double()
        mip = generator.mip_mev
        fired = (gated > 0).double().mean(dim=0)
        # a cell fires with the probability of at least one deposit: 1 - exp(-E / MIP),
        # E the cell's expected energy in the layer's energy, renormalised or not
        middle = (expected > 0.02) & (expected < 0.3)
        assert int(middle.sum()) > 10
        np.testing.assert_allclose(fired[middle].numpy(),
                                   (1 - torch.exp(-expected[middle] / mip)).numpy(), atol=0.03)
        assert float(fired[expected > 1.0].min()) == 1.0  # the core always fires
    # a faint halo cell that fires carries about one MIP (above the threshold), not a sliver
    faint = (expected > 1e-4) & (expected < 0.002)  # e / p = MIP (1 + e / 2 MIP + ...)
    carried = gated[:, faint][gated[:, faint] > 0]
    assert len(carried) > 100
    np.testing.assert_allclose(carried.numpy(), mip, rtol=0.015)
    # the mean over showers is the expected energy, as with the plain gate
    core = expected > 0.05
    np.testing.assert_allclose(gated.mean(dim=0)[core].numpy(), expected[core].numpy(), rtol=0.15)
    # the deposit size is learnt per layer
    generator.normalised(latent[:64], cond[:64]).sum().backward()
    assert float(generator.log_quantum.grad.abs().min()) > 0


def test_with_the_poisson_gate_layer_energies_learn_from_the_critic_not_from_the_draws():
    generator, critic = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True,
                                    gate_poisson=True, lateral_basis=True, hit_counts=True, seed=0)
    assert generator.readout_renorm  # build pairs the Poisson gate with it
    latent, cond = torch.randn(256, generator.latent_dim), torch.tensor([[50.0, 3.0, -2.0]])
    cells, hits = generator.normalised(latent, cond.repeat(256, 1), with_hits=True)
    # the hit counts reach the firing (gate head, deposit sizes, shapes), not the layer energies
    hits.sum().backward()
    gate = float(generator.gate_head.weight.grad.abs().sum())
    assert gate > 0 and float(generator.log_quantum.grad.abs().min()) > 0
    assert float(generator.mix_head.weight.grad.abs().sum()) > 0
    assert float(generator.layer_head.weight.grad.abs().sum()) < 1e-6 * gate
    # what the critic makes of the cells reaches them
    generator.zero_grad()
    cells, hits = generator.normalised(latent, cond.repeat(256, 1), with_hits=True)
    critic.score(critic.features(cells, hits), cond.repeat(256, 1)).sum().backward()
    assert float(generator.layer_head.weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="gate_poisson shapes the sparse gate"):
        model.build("hgcal-7x12x15", response=2.6, gate_poisson=True)


# Metrics -------------------------------------------------------------------------------------


def test_roc_auc_on_hand_made_scores():
    labels = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(labels, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert metrics.roc_auc(labels, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert metrics.roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert metrics.roc_auc(labels, np.array([0.1, 0.3, 0.2, 0.4])) == 0.75


def test_classifier_auc_is_one_half_for_identical_and_one_for_disjoint_samples():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(600, 8)).astype(np.float32)
    b = rng.normal(size=(600, 8)).astype(np.float32)
    same = metrics.classifier_auc(a, b, epochs=4, hidden=64, seed=0)["auc"]
    assert abs(same - 0.5) < 0.08, same
    apart = metrics.classifier_auc(a, b + 3.0, epochs=4, hidden=64, seed=0)["auc"]
    assert apart > 0.98, apart


def test_a_feature_that_rarely_fires_cannot_swamp_the_classifier():
    # Identical samples with far-halo cells that fire once in a thousand showers (a MIP over
    # 70 GeV: 1e-3 MeV/GeV): divided by spread + 1e-6, a hit in a cell that never fired in the
    # training half became a value of 1e3, and the best validation loss could stay above ln 2
    # (an AUC from a network that learnt nothing).
    rng = np.random.default_rng(4)
    a, b = (rng.normal(size=(1500, 40)).astype(np.float32) for _ in range(2))
    for sample in (a, b):
        sample[:, :20] = 1e-3 * (rng.random((1500, 20)) < 0.001)
    train, other = metrics.standardise(a[:750], a[750:])
    assert np.abs(train).max() < 100 and np.abs(other).max() < 100
    result = metrics.classifier_auc(a, b, epochs=6, hidden=64, seed=0)
    assert result["validation_loss"] < 0.70 and abs(result["auc"] - 0.5) < 0.08, result


def test_the_high_level_view_sees_a_deficit_of_hits():
    # Showers that lost half of their small hits: the total hardly changes, the hits per layer
    # do, and the high-level features show it directly.
    sample = simulation.simulate("hgcal-7x12x15", [20.0] * 800, seed=7)
    cells, energies = sample.cells, sample.energies
    features = metrics.high_level_features(cells, energies, "hgcal-7x12x15")
    assert features.shape == (len(cells), 2 + 6 * 7)
    hits = features[:, 2 + 7:2 + 14]
    np.testing.assert_array_equal(hits.sum(1), (cells > metrics.OCCUPANCY_THRESHOLD_MEV).sum((1, 2, 3)))
    half = len(cells) // 2
    thinned = cells[half:].copy()
    thinned[(thinned < 0.3) & (np.random.default_rng(5).random(thinned.shape) < 0.5)] = 0.0
    test = metrics.classifier_test(cells[:half], thinned, energies[:half], "hgcal-7x12x15",
                                   epochs=10, seed=0)
    # as well as the hit count alone separates them (its AUC, counted directly)
    count = lambda c: (c > metrics.OCCUPANCY_THRESHOLD_MEV).sum((1, 2, 3))  # noqa: E731
    by_count = metrics.roc_auc(np.r_[np.ones(half), np.zeros(half)],
                               np.r_[count(cells[:half]), count(thinned)].astype(float))
    assert by_count > 0.9 and test["high_level"]["auc"] > by_count - 0.06, (by_count, test)
    # and the groups of high-level features say which of them: the hit cells, not the energies
    groups = test["high_level"]["by_group"]
    assert list(groups) == ["layer energies", "hit cells", "centres", "widths"]
    assert groups["hit cells"] > 0.85 and groups["hit cells"] > groups["layer energies"] + 0.15, groups
    assert test["auc"] == max(test["low_level"]["auc"], test["high_level"]["auc"])
    same = metrics.classifier_test(cells[:half], cells[half:], energies[:half], "hgcal-7x12x15",
                                   epochs=10, seed=0)
    assert same["auc"] < 0.66, same
    assert max(same["high_level"]["by_group"].values()) < 0.62, same  # no group tells them apart


def test_the_layer_comparison_names_what_differs_layer_by_layer():
    sample = simulation.simulate("hgcal-7x12x15", [30.0] * 600, seed=11)
    cells, energies = sample.cells, sample.energies
    half = len(cells) // 2
    same = metrics.layer_comparison(cells[:half], cells[half:], energies[:half], "hgcal-7x12x15")
    assert [row["layer"] for row in same] == list(range(7))
    for row in same:  # two halves of one sample: no shift, the same spreads
        for name in metrics.LAYER_FEATURES:
            assert abs(row[name]["shift"]) < 0.35 and 0.7 < row[name]["spread_ratio"] < 1.4, row
    # Every layer's cells scaled by a random factor of 1-10 per shower: the same cells fire (the
    # hits are unchanged), the layer energies fluctuate more and follow the hits less.
    factors = 10 ** np.random.default_rng(3).uniform(0.0, 1.0, size=(half, 7, 1, 1))
    noisy = cells[half:] * factors
    found = metrics.layer_comparison(cells[half:], noisy, energies[half:], "hgcal-7x12x15")
    drops = []
    for row in found:
        assert row["hits"] == {"shift": 0.0, "spread_ratio": 1.0}, row
        assert row["log10 energy"]["shift"] > 0.3 and row["log10 energy"]["spread_ratio"] > 1.1
        corr = row["hits_energy_corr"]
        drops.append(corr["simulated"] - corr["generated"])
    assert min(drops) > 0 and np.mean(drops) > 0.1, found


def test_shower_maximum_comparison_and_verdicts_on_hand_made_showers():
    depths = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    profile = -(depths - 3.3) ** 2 + 10.0  # a parabola peaking at 3.3
    assert metrics.shower_maximum(profile, depths) == pytest.approx(3.3)
    rng = np.random.default_rng(0)
    cells = rng.exponential(1.0, size=(200, 7, 12, 15)).astype(np.float32)
    same = metrics.compare(cells, cells, "hgcal-7x12x15")
    assert same["mean_energy_rel"] == 0 and same["resolution_rel"] == 0
    assert same["layer_correlation_max_abs"] == 0 and same["occupancy_rel"] == 0
    doubled = metrics.compare(cells, 2 * cells, "hgcal-7x12x15")
    assert doubled["mean_energy_rel"] == pytest.approx(1.0)
    assert doubled["resolution_rel"] == pytest.approx(0.0, abs=1e-9)
    verdict = metrics.fidelity_verdict({"classifier_auc": 0.7, "mean_energy_rel": -0.01,
                                        "resolution_rel": 0.2, "shower_max_rel": 0.04})
    assert verdict == {"classifier_auc": True, "mean_energy_rel": True, "resolution_rel": False,
                       "shower_max_rel": True}


# The template -------------------------------------------------------------------------------


@pytest.mark.parametrize("parameters, message", [
    ({"hit_counts": True, "flow_hits": False, "share_noise": False, "axis_shift": False},
     "hit_counts needs sparse_gate or flow_hits"),
    ({"gate_poisson": True, "sparse_gate": False}, "gate_poisson needs sparse_gate"),
    ({"average_decay": 1.0}, r"average_decay must be in \[0, 1\) \(0: no average\), not 1.0"),
    ({"layer_flow": False}, "flow_hits needs layer_flow and replaces sparse_gate"),
    ({"sparse_gate": True, "hit_counts": True}, "flow_hits needs layer_flow and replaces "
                                                "sparse_gate"),
    ({"flow_hits": False, "share_noise": True}, "share_noise .* it needs flow_hits"),
    ({"lateral_basis": False, "axis_shift": True}, "axis_shift .* it needs flow_hits and "
                                                   "lateral_basis"),
    ({"cell_rank": -1}, "cell_rank must be 0 .* or positive, not -1"),
])
def test_template_refuses_contradictory_options_before_simulating(parameters, message, tmp_path,
                                                                  monkeypatch):
    import papermill

    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        papermill.execute_notebook(
            str(TEMPLATE), str(tmp_path / "out.ipynb"), cwd=str(tmp_path), kernel_name="python3",
            parameters=parameters, progress_bar=False)
    assert not (tmp_path / "cache").exists()  # nothing simulated, nothing half-written


def test_template_runs_with_tiny_parameters(tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ERUMLAB_URL", raising=False)
    monkeypatch.delenv("ERUMLAB_API_TOKEN", raising=False)
    papermill.execute_notebook(
        str(TEMPLATE), str(tmp_path / "out.ipynb"), cwd=str(tmp_path), kernel_name="python3",
        parameters={"train_energies": "20,40", "held_out_energy": 30.0, "showers_per_energy": 24,
                    "iterations": 3, "batch_size": 16, "classifier_epochs": 2,
                    "speed_showers": 8, "select_every": 2, "layer_flow": False,
                    "flow_hits": False, "share_noise": False, "axis_shift": False,
                    "hit_counts": False,
                    "lateral_basis": False, "average_decay": 0.5,
                    "select_classifier": True},
        progress_bar=False)
    result = json.loads((tmp_path / "metrics.json").read_text())
    expected = {"training.png", "energy_response.png", "profiles_held_out.png",
                "correlations_held_out.png", "mean_showers_held_out.png", "speedup.png"}
    assert expected <= set(result["figures"])
    for name in result["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    assert [r["energy_gev"] for r in result["per_energy"]] == [20.0, 30.0, 40.0]
    assert result["fidelity_held_out"]["energy_gev"] == 30.0
    assert 0.0 <= result["fidelity_held_out"]["classifier_auc"] <= 1.0
    # both views of the classifier test are kept; the larger is the figure
    views = result["fidelity_held_out"]["classifier"]
    assert result["fidelity_held_out"]["classifier_auc"] == max(views["low_level"]["auc"],
                                                                views["high_level"]["auc"])
    assert set(views["high_level"]["by_group"]) == {"layer energies", "hit cells", "centres",
                                                    "widths"}
    assert [r["energy_gev"] for r in result["speedup"]] == [20.0, 50.0, 90.0]
    assert all(r["speedup_cpu"] > 0 for r in result["speedup"])
    assert result["data"]["showers"] == 72 and result["published"] == {}
    # the plain generator (the job test in tests/jobs runs the default: the flow with hit
    # counts, the basis), its own checkpoint
    assert result["parameters"]["sparse_gate"] is False
    assert result["parameters"]["average_decay"] == 0.5  # the kept generator is an average
    assert len(list((tmp_path / "checkpoints").glob(
        "calo-wgan-*-s0-moments-rank128-avg0.5-clf.pt"))) == 1
    assert "average" in torch.load(next((tmp_path / "checkpoints").glob("*.pt")), weights_only=True)
    plain = model.load(tmp_path / "calo-wgan.safetensors")
    assert not plain.sparse_gate and not plain.lateral_basis and plain.cell_rank == 128
    # scored at iterations 2 and 3 (the end); the kept one is recorded
    assert [i for i, _ in result["training"]["selection"]] == [2, 3]
    assert result["training"]["selected_iteration"] in (2, 3)
    # ... by the high-level classifier too, at the training energies
    assert [i for i, _ in result["training"]["selection_auc"]] == [2, 3]
    assert list((tmp_path / "cache" / "showers").glob("showers-hgcal-7x12x15-*.npz"))
