"""The layer-energy flow of the shower GAN, and the generator that takes its layer energies."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from erumlab.science.showers import model, simulation
from erumlab.science.showers.flow import LayerFlow
from erumlab.science.showers.geometry import get

THRESHOLD_MEV = 0.042
BENCH = Path(__file__).resolve().parents[2] / "bench"


def correlated_layers(energies: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Log-normal layer energies [MeV] whose means grow with E, two layers anti-correlated,
    and a last layer that is often below the threshold (read as zero)."""
    n = len(energies)
    start = rng.standard_normal(n)  # a shower starting late: less in layer 0, more in layer 2
    logs = np.column_stack([
        np.log(0.1 * energies) - 0.4 * start + 0.2 * rng.standard_normal(n),
        np.log(0.3 * energies) + 0.1 * rng.standard_normal(n),
        np.log(0.2 * energies) + 0.4 * start + 0.2 * rng.standard_normal(n),
        np.log(0.05) + 1.0 * rng.standard_normal(n)])
    mev = np.exp(logs)
    return np.where(mev >= THRESHOLD_MEV, mev, 0.0)


def test_the_flow_learns_correlated_layer_energies_and_the_unread_layers(tmp_path):
    rng = np.random.default_rng(0)
    energies = rng.choice([20.0, 80.0], 3000)
    layers = correlated_layers(energies, rng)
    flow = LayerFlow(4, THRESHOLD_MEV, couplings=6, hidden=32)
    losses = flow.fit(layers, energies, steps=500, batch_size=256, seed=0)
    assert losses[-1] < losses[0] - 1.0  # it learnt
    for energy in (20.0, 80.0):
        truth = correlated_layers(np.full(4000, energy), rng)
        with torch.no_grad():
            made = flow.sample(torch.randn(4000, 4, generator=torch.Generator().manual_seed(1)),
                               torch.full((4000,), energy)).double().numpy()
        assert np.all(made >= 0) and np.all((made == 0) | (made >= THRESHOLD_MEV))
        read = (made[:, :3] > 0).all(axis=1)
        logs, true_logs = np.log(made[read, :3]), np.log(truth[:, :3])
        np.testing.assert_allclose(logs.mean(0), true_logs.mean(0), atol=0.05)
        np.testing.assert_allclose(logs.std(0), true_logs.std(0), rtol=0.15)
        corr = np.corrcoef(logs[:, 0], logs[:, 2])[0, 1]
        assert corr == pytest.approx(np.corrcoef(true_logs[:, 0], true_logs[:, 2])[0, 1], abs=0.1)
        # the last layer reads nothing in about as many showers (43 % here; the smooth flow
        # blurs the edge at the threshold: 52 % after a short fit)
        assert (made[:, 3] == 0).mean() == pytest.approx((truth[:, 3] == 0).mean(), abs=0.12)


def test_sampling_inverts_the_flow_and_fitting_leaves_torchs_random_state_alone():
    rng = np.random.default_rng(1)
    energies = rng.choice([20.0, 50.0], 300)
    flow = LayerFlow(4, THRESHOLD_MEV, couplings=4, hidden=16)
    state = torch.random.get_rng_state()
    flow.fit(correlated_layers(energies, rng), energies, steps=50, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    noise = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        made = flow.sample(noise, torch.full((64,), 50.0))
        read = (made > 0).all(dim=1)
        back, _ = flow.to_noise(torch.log(made[read]), torch.full((int(read.sum()),), 50.0))
    torch.testing.assert_close(back, noise[read], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match=r"layer energies of shape \(300, 3\): expected \(300, 4\)"):
        flow.fit(np.ones((300, 3)), energies, steps=1)


def test_a_generator_with_the_flow_keeps_the_layer_energies_it_is_given(tmp_path):
    generator, _ = model.build("hgcal-7x12x15", response=2.6, sparse_gate=True,
                               lateral_basis=True, layer_flow=True, seed=0)
    assert generator.latent_dim == 10 + 7 and generator.readout_renorm
    assert not hasattr(generator, "layer_head")  # the flow gives the layer energies
    conditions = torch.tensor([[50.0, 0.0, 0.0], [50.0, 3.0, -2.0], [80.0, -5.0, 1.0]])
    given = torch.tensor([[10.0, 40.0, 50.0, 30.0, 10.0, 3.0, 0.0],
                          [5.0, 35.0, 55.0, 35.0, 12.0, 4.0, 0.05],
                          [8.0, 60.0, 80.0, 60.0, 25.0, 9.0, 2.0]])
    for grad in (False, True):  # generation, and training's forward pass
        with torch.set_grad_enabled(grad):
            cells = generator.normalised(torch.randn(3, 17), conditions, layer_mev=given)
        # the read-out layer sums are the given ones, whatever the gate and the threshold did
        layer_sums = cells.reshape(3, 7, -1).sum(dim=2) * conditions[:, :1] * generator.response
        torch.testing.assert_close(layer_sums.detach(), given, rtol=1e-4, atol=1e-5)
    # 0.05 MeV, spread by the untrained gate over many cells below the threshold (0.042 MeV
    # per cell): read out in the layer's most likely cell instead of lost
    assert (cells.reshape(3, 7, -1)[1, 6] > 0).sum() == 1
    plain, _ = model.build("hgcal-7x12x15", response=2.6, seed=0)
    with pytest.raises(ValueError, match="layer_mev is given to a generator with layer_flow only"):
        plain.normalised(torch.randn(3, 10), conditions, layer_mev=given)
    # generation draws the layer energies from the flow; the zoo file keeps the flow
    showers = model.generate(generator, [50.0, 80.0], seed=1)
    assert showers.shape == (2, 7, 12, 15) and np.all(showers >= 0)
    path = model.save(generator, tmp_path / "g.safetensors")
    np.testing.assert_array_equal(model.generate(model.load(path), [50.0, 80.0], seed=1), showers)


def test_training_fits_the_flow_first_and_resuming_does_not_refit_it(tmp_path):
    rng = np.random.default_rng(0)
    energies = np.repeat([20.0, 50.0], 16)
    sample = simulation.simulate("hgcal-7x12x15", energies, rng.uniform(-10, 10, (32, 2)), seed=1)
    response = model.response_of(sample.cells, sample.energies)
    generator, critic = model.build("hgcal-7x12x15", response=response, sparse_gate=True,
                                    lateral_basis=True, hit_counts=True, layer_flow=True, seed=0)
    untrained = [p.detach().clone() for p in generator.flow.parameters()]
    checkpoint = tmp_path / "ck.pt"
    arguments = (sample.cells, sample.energies, sample.positions)
    result = model.train(generator, critic, *arguments, iterations=2, batch_size=8, n_critic=1,
                         device="cpu", checkpoint=checkpoint, progress=False, flow_steps=20,
                         select_every=1)
    assert all(np.isfinite(result.critic_loss)) and result.selected_iteration in (1, 2)
    fitted = [p.detach().clone() for p in generator.flow.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(untrained, fitted, strict=True))
    # the flow learnt the sample's layer energies: its standardisation is theirs
    logs = np.log(sample.cells.sum(axis=(2, 3))[:, :5])  # the first layers always read something
    np.testing.assert_allclose(generator.flow.mean[:5].numpy(), logs.mean(0), rtol=1e-4)
    # the adversarial steps leave the flow alone; resuming takes it from the checkpoint
    resumed = model.train(generator, critic, *arguments, iterations=3, batch_size=8, n_critic=1,
                          device="cpu", checkpoint=checkpoint, progress=False, flow_steps=20)
    assert resumed.resumed_from == 2
    for a, b in zip(fitted, generator.flow.parameters(), strict=True):
        torch.testing.assert_close(a, b.detach())


def hit_counts_of(layers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hit cells that grow with the layer energy (as in a cascade), none where nothing was read."""
    mean = 2.0 * np.sqrt(np.maximum(layers, 0.0))
    hits = rng.poisson(mean) + 1
    return np.where(layers > 0, np.minimum(hits, np.floor(layers / THRESHOLD_MEV)), 0)


def test_the_flow_learns_hit_counts_with_the_layer_energies_and_keeps_them_consistent():
    rng = np.random.default_rng(2)
    energies = rng.choice([20.0, 80.0], 3000)
    layers = correlated_layers(energies, rng)
    hits = hit_counts_of(layers, rng)
    flow = LayerFlow(4, THRESHOLD_MEV, couplings=6, hidden=32, hits=True, cells_per_layer=180)
    assert flow.dims == 8
    losses = flow.fit(layers, energies, hits=hits, steps=600, batch_size=256, seed=0)
    assert losses[-1] < losses[0] - 1.0
    truth = correlated_layers(np.full(4000, 80.0), rng)
    true_hits = hit_counts_of(truth, rng)
    with torch.no_grad():
        made, made_hits = flow.sample(torch.randn(4000, 8, generator=torch.Generator().manual_seed(1)),
                                      torch.full((4000,), 80.0))
    made, made_hits = made.double().numpy(), made_hits.double().numpy()
    # integers, consistent with the energies: none unread, one at least where read, no more
    # than the energy pays for at the threshold
    assert np.all(made_hits == np.round(made_hits))
    assert np.all((made_hits == 0) == (made == 0))
    assert np.all(made_hits * THRESHOLD_MEV <= made + 1e-9)
    np.testing.assert_allclose(made_hits[:, :3].mean(0), true_hits[:, :3].mean(0), rtol=0.1)
    np.testing.assert_allclose(made_hits[:, :3].std(0), true_hits[:, :3].std(0), rtol=0.25)
    # the counts follow the layer energy as the sample's do (layer 1 hardly varies: its
    # counts hardly follow it)
    for layer in (0, 2):
        corr = np.corrcoef(np.log(made[:, layer]), made_hits[:, layer])[0, 1]
        true_corr = np.corrcoef(np.log(truth[:, layer]), true_hits[:, layer])[0, 1]
        assert true_corr > 0.3 and corr == pytest.approx(true_corr, abs=0.12)
    with pytest.raises(ValueError, match="hit counts go with a layer flow with hits"):
        flow.fit(layers, energies, steps=1)
    with pytest.raises(ValueError, match="needs cells_per_layer"):
        LayerFlow(4, THRESHOLD_MEV, hits=True)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("share_noise", [False, True])
def test_a_generator_with_flow_hits_fires_exactly_the_hits_it_is_given(monkeypatch, share_noise,
                                                                      compiled):
    # generation on a CPU takes the compiled kernel; the PyTorch operations (a GPU's) alike
    monkeypatch.setattr(model, "COMPILED_PLACEMENT", compiled)
    generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                               layer_flow=True, flow_hits=True, share_noise=share_noise, seed=0)
    if share_noise:
        with torch.no_grad():
            generator.share_power.fill_(0.03)
    assert generator.latent_dim == 10 + 14 and not generator.readout_renorm
    conditions = torch.tensor([[50.0, 0.0, 0.0], [50.0, 3.0, -2.0], [80.0, -5.0, 1.0]])
    given = torch.tensor([[10.0, 40.0, 50.0, 30.0, 10.0, 3.0, 0.0],
                          [5.0, 35.0, 55.0, 35.0, 12.0, 4.0, 0.05],
                          [8.0, 60.0, 80.0, 60.0, 25.0, 9.0, 2.0]])
    hits = torch.tensor([[3.0, 8.0, 12.0, 14.0, 12.0, 9.0, 0.0],
                         [1.0, 6.0, 11.0, 15.0, 14.0, 10.0, 1.0],
                         [5.0, 9.0, 14.0, 16.0, 15.0, 12.0, 7.0]])
    unit = conditions[:, :1] * generator.response
    latent, uniform = torch.randn(3, 24), torch.rand(3, 1260)
    made = {}
    for grad in (False, True):  # generation, and training's forward pass
        with torch.set_grad_enabled(grad):
            cells = made[grad] = generator.normalised(latent, conditions, uniform,
                                                      layer_mev=given, layer_hits=hits)
        mev = (cells * unit).reshape(3, 7, -1).detach()
        torch.testing.assert_close((mev > 0).sum(dim=2).float(), hits)
        torch.testing.assert_close(mev.sum(dim=2), given, rtol=1e-4, atol=1e-5)
        assert float(mev[mev > 0].min()) >= THRESHOLD_MEV  # every hit is read out
    # generation's shortcuts (the kernel; the keys' exponentials, fused passes) draw the same
    # showers
    torch.testing.assert_close(made[False], made[True].detach(), rtol=1e-5, atol=1e-7)
    # the critic's gradient reaches the placement (gate head) and the shapes (cell head)
    (cells * torch.rand(cells.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
    assert generator.gate_head.weight.grad.abs().sum() > 0
    assert generator.cell_head.weight.grad.abs().sum() > 0
    if share_noise:
        assert generator.share_power.grad.abs().min() > 0
    with pytest.raises(ValueError, match="needs layer_hits"):
        generator.normalised(torch.randn(3, 24), conditions, layer_mev=given)
    with pytest.raises(ValueError, match="it needs layer_flow and replaces sparse_gate"):
        model.build("hgcal-7x12x15", response=2.6, flow_hits=True)
    with pytest.raises(ValueError, match="it needs layer_flow and replaces sparse_gate"):
        model.build("hgcal-7x12x15", response=2.6, layer_flow=True, flow_hits=True,
                    sparse_gate=True)


@pytest.mark.parametrize("lateral_basis", [True, False])
def test_generation_on_a_cpu_compiled_draws_what_the_pytorch_operations_draw(monkeypatch,
                                                                            lateral_basis):
    """``forward`` (MeV, the scale folded into the hits) with the compiled placement against
    the PyTorch operations a GPU runs, with the flow drawing energies and counts."""
    generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=lateral_basis,
                               layer_flow=True, flow_hits=True, share_noise=True,
                               axis_shift=lateral_basis, seed=3)
    with torch.no_grad():
        generator.share_power.uniform_(-0.05, 0.05)
        generator.gate_head.weight.normal_(0.0, 0.2)  # a correction that changes the draws
    rng = torch.Generator().manual_seed(1)
    conditions = torch.column_stack([torch.full((64,), 40.0), torch.rand(64, 2, generator=rng)])
    latent = torch.randn(64, generator.latent_dim, generator=rng)
    uniform = torch.rand(64, 1260, generator=rng)
    uniform[0, :200], uniform[1, :200] = 0.0, 1.0  # the clamps' edges: float32 draws reach 0
    with torch.no_grad():  # and corrections beyond the clamp of +-15
        generator.gate_head.bias[:90] = 40.0
        generator.gate_head.bias[90:180] = -40.0
    made = {}
    for compiled in (True, False):
        monkeypatch.setattr(model, "COMPILED_PLACEMENT", compiled)
        with torch.no_grad():
            made[compiled] = generator(latent, conditions, uniform)
    assert made[True].shape == (64, 7, 12, 15) and bool((made[True] > 0).any())
    torch.testing.assert_close(made[True], made[False], rtol=1e-4, atol=1e-6)


def test_the_compiled_placement_draws_its_own_uniforms_from_a_seed(monkeypatch):
    """Not given uniforms, the kernel draws them from a seed (``placement.uniforms`` gives the
    same numbers): fed those, the PyTorch operations make the same showers, although the
    kernel settles most cells without their logarithm; the seed decides the showers (the
    threads do not), and the stream is uniform."""
    import numba

    from erumlab.science.showers import placement

    generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                               layer_flow=True, flow_hits=True, share_noise=True,
                               axis_shift=True, seed=4)
    with torch.no_grad():
        generator.share_power.uniform_(-0.05, 0.05)
        generator.gate_head.weight.normal_(0.0, 0.2)
    rng = torch.Generator().manual_seed(2)
    n = 200
    conditions = torch.column_stack([torch.full((n,), 20.0), torch.rand(n, 2, generator=rng)])
    latent = torch.randn(n, generator.latent_dim, generator=rng)
    with torch.no_grad():
        own = generator(latent, conditions, hit_seed=12345)
        threads = numba.get_num_threads()
        try:  # one thread or all: the same showers
            numba.set_num_threads(1)
            again = generator(latent, conditions, hit_seed=12345)
        finally:
            numba.set_num_threads(threads)
        other = generator(latent, conditions, hit_seed=12346)
        drawn = torch.from_numpy(placement.uniforms(np.uint64(12345), n, 7, 180)).reshape(n, -1)
        given = generator(latent, conditions, drawn)
        monkeypatch.setattr(model, "COMPILED_PLACEMENT", False)
        reference = generator(latent, conditions, drawn)
    assert bool((own > 0).any())
    torch.testing.assert_close(own, again, rtol=0, atol=0)
    torch.testing.assert_close(own, given, rtol=0, atol=0)
    torch.testing.assert_close(own, reference, rtol=1e-4, atol=1e-6)
    assert not torch.equal(own > 0, other > 0)  # another seed, other hits
    u = drawn.numpy().ravel()
    assert u.min() > 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.002 and abs(u.var() * 12 - 1.0) < 0.01
    counts = np.histogram(u, bins=20, range=(0.0, 1.0))[0]
    expected = len(u) / 20
    assert ((counts - expected) ** 2 / expected).sum() < 50.0  # chi2 of 19 dof: p ~ 1e-4


def test_the_axis_shift_moves_the_layers_centres_together():
    """Simulated showers' centres in layers 0-3 wander together (correlations 0.8-0.94); with
    the axis shift the generated ones do, without it they scatter layer by layer."""
    from erumlab.science.showers import metrics

    n = 600
    conditions = torch.tensor([[50.0, 0.0, 0.0]]).repeat(n, 1)
    given = torch.tensor([[10.0, 40.0, 50.0, 30.0, 10.0, 3.0, 0.5]]).repeat(n, 1)
    hits = torch.tensor([[3.0, 8.0, 12.0, 14.0, 12.0, 9.0, 2.0]]).repeat(n, 1)
    correlation = {}
    for axis_shift in (False, True):
        generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                                   layer_flow=True, flow_hits=True, axis_shift=axis_shift,
                                   seed=0)
        assert generator.latent_dim == 24 + (2 if axis_shift else 0)
        if axis_shift:
            with torch.no_grad():
                generator.axis_head.bias.fill_(3.0)  # ~3 mm in every layer
        latent = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            cells = generator.normalised(latent, conditions, layer_mev=given, layer_hits=hits)
        cx, _, _, _ = metrics.layer_centres_and_widths(cells.reshape(n, 7, 12, 15).numpy(),
                                                       "hgcal-7x12x15")
        correlation[axis_shift] = np.corrcoef(cx[:, 1], cx[:, 2])[0, 1]
        if axis_shift:  # centred: the axis does not drift off the impact point
            assert abs(cx[:, 2].mean()) < 0.5
    assert correlation[True] > 0.6 and correlation[False] < 0.3
    with pytest.raises(ValueError, match="axis_shift .* needs lateral_basis and flow_hits"):
        model.build("hgcal-7x12x15", response=2.6, layer_flow=True, flow_hits=True,
                    axis_shift=True)


def test_the_axis_gain_scales_the_spread_per_layer_and_is_learnt():
    """The spread of the axis shift per layer times exp(gain * parameter): a parameter of
    log(3) / gain triples the centres' wander; a loss reaches the parameter; without the gain
    (as generators saved before it) there is no parameter, and the gain needs the shift."""
    from erumlab.science.showers import metrics

    n = 400
    conditions = torch.tensor([[50.0, 0.0, 0.0]]).repeat(n, 1)
    given = torch.tensor([[10.0, 40.0, 50.0, 30.0, 10.0, 3.0, 0.5]]).repeat(n, 1)
    hits = torch.tensor([[3.0, 8.0, 12.0, 14.0, 12.0, 9.0, 2.0]]).repeat(n, 1)
    generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                               layer_flow=True, flow_hits=True, axis_shift=True, seed=0)
    assert generator.axis_gain == model.AXIS_SPREAD_GAIN
    latent = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(2))
    uniform = torch.rand(n, 1260, generator=torch.Generator().manual_seed(3))
    wander = []
    for scale in (0.0, float(np.log(3.0)) / model.AXIS_SPREAD_GAIN):
        with torch.no_grad():
            generator.axis_scale.fill_(scale)
            cells = generator.normalised(latent, conditions, uniform, layer_mev=given,
                                         layer_hits=hits)
        cx, _, _, _ = metrics.layer_centres_and_widths(cells.reshape(n, 7, 12, 15).numpy(),
                                                       "hgcal-7x12x15")
        wander.append(cx[:, 3].std())
    assert 2.0 < wander[1] / wander[0] < 4.0
    xc = torch.tensor(np.tile(get("hgcal-7x12x15").cell_centres_mm()[0], 12),
                      dtype=torch.float32)
    cells = generator.normalised(latent[:64], conditions[:64], uniform[:64],
                                 layer_mev=given[:64], layer_hits=hits[:64]).reshape(64, 7, -1)
    # the centres' spread in x: its gradient reaches the parameter of every layer
    (cells * xc).sum(dim=2).div(cells.sum(dim=2)).pow(2).mean().backward()
    assert generator.axis_scale.grad is not None
    assert bool((generator.axis_scale.grad[:6].abs() > 0).all())
    before, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, layer_flow=True,
                            flow_hits=True, axis_shift=True, axis_gain=0.0, seed=0)
    assert not hasattr(before, "axis_scale")
    assert "axis_scale" not in before.state_dict()
    with pytest.raises(ValueError, match="axis_gain scales the spread of axis_shift"):
        model.build("hgcal-7x12x15", response=2.6, lateral_basis=True, layer_flow=True,
                    flow_hits=True, axis_gain=5.0)


def test_fitting_the_axis_spread_makes_the_centres_wander_as_simulated():
    """Before the adversarial training the spreads are set so that the centres of energy wander
    from the impact point as far as in simulated showers; checked on fresh draws with the
    classifier test's own centres."""
    from erumlab.science.showers import metrics

    rng = np.random.default_rng(4)
    sample = simulation.simulate("hgcal-7x12x15", [50.0] * 240, rng.uniform(-10, 10, (240, 2)),
                                 seed=4)
    generator, _ = model.build("hgcal-7x12x15", response=model.response_of(sample.cells,
                                                                           sample.energies),
                               lateral_basis=True, layer_flow=True, flow_hits=True,
                               share_noise=True, axis_shift=True, seed=0)
    real, conditions = model.training_tensors(sample.cells, sample.energies, sample.positions,
                                              generator.response)
    generator.initialise_output(real.mean(dim=0))
    generator.fit_lateral_basis(real, conditions[:, 1:3])
    layer_mev = torch.tensor(sample.cells.sum(axis=(2, 3)), dtype=torch.float32)
    hits = torch.tensor((sample.cells > 0).sum(axis=(2, 3)), dtype=torch.float32)

    def wander(cells: np.ndarray) -> np.ndarray:
        cx, cy, _, _ = metrics.layer_centres_and_widths(cells, "hgcal-7x12x15")
        return np.sqrt(0.5 * (np.var(cx - sample.positions[:, :1], axis=0)
                              + np.var(cy - sample.positions[:, 1:], axis=0)))

    def generated() -> np.ndarray:
        draws = torch.Generator().manual_seed(9)
        latent = torch.randn(len(real), generator.latent_dim, generator=draws)
        with torch.no_grad():
            cells = generator.normalised(latent, conditions, torch.rand(len(real), 1260,
                                                                        generator=draws),
                                         layer_mev=layer_mev, layer_hits=hits)
        return wander(cells.reshape(-1, 7, 12, 15).numpy())

    simulated, before = wander(sample.cells), generated()
    fitted_sim, fitted_gen = generator.fit_axis_spread(real, conditions, layer_mev, hits)
    after = generated()
    np.testing.assert_allclose(fitted_sim[:5], simulated[:5], rtol=1e-3)  # the same measure
    assert np.abs(after[:5] / simulated[:5] - 1).max() < 0.15
    assert np.abs(after[:5] / simulated[:5] - 1).max() < np.abs(before[:5] / simulated[:5] - 1).max()
    assert bool((generator.axis_scale != 0).all())
    unshifted, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                               layer_flow=True, flow_hits=True, seed=0)
    with pytest.raises(ValueError, match="fit_axis_spread sets the parameter of axis_gain"):
        unshifted.fit_axis_spread(real, conditions, layer_mev, hits)


@pytest.mark.parametrize("compiled", [True, False])
def test_placed_hits_carry_at_least_a_mip_deposit(compiled, monkeypatch):
    """Simulated cells never read less than a crossing particle's smallest deposit (~0.07 MeV),
    well above the readout threshold (0.042 MeV); the flow's hits carry at least that too, on
    both placements, where the layer's energy affords it (else an even share: the layer keeps
    its energy); a generator saved before the floor keeps the threshold."""
    monkeypatch.setattr(model, "COMPILED_PLACEMENT", compiled)
    floor = model.hit_floor("hgcal-7x12x15")
    assert 0.06 < floor < 0.084  # the MIP's most probable deposit less three Landau widths
    conditions = torch.tensor([[70.0, 0.0, 0.0], [70.0, 4.0, -3.0]]).repeat(150, 1)
    given = torch.tensor([[10.0, 40.0, 50.0, 30.0, 10.0, 3.0, 0.5],
                          [8.0, 35.0, 60.0, 40.0, 12.0, 0.5, 0.1]]).repeat(150, 1)
    hits = torch.tensor([[3.0, 8.0, 12.0, 14.0, 12.0, 9.0, 2.0],
                         [2.0, 9.0, 14.0, 16.0, 13.0, 8.0, 2.0]]).repeat(150, 1)
    unit = conditions[:, :1] * 2.6
    least = {}
    for hit_floor_mev in (None, 0.0):
        generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                                   layer_flow=True, flow_hits=True, share_noise=True,
                                   hit_floor_mev=hit_floor_mev, seed=0)
        with torch.no_grad():  # a strong share noise: marginal hits get little of the rest
            generator.share_power.fill_(0.05)
            mev = (generator.normalised(torch.randn(300, 24), conditions, torch.rand(300, 1260),
                                        layer_mev=given, layer_hits=hits) * unit).reshape(
                300, 7, -1)
        torch.testing.assert_close(mev.sum(dim=2), given, rtol=1e-4, atol=1e-5)
        smallest = torch.where(mev > 0, mev, torch.inf).amin(dim=2)
        least[hit_floor_mev] = smallest
    affords = given >= hits * floor * 1.001  # the second shower's layers 5 and 6 do not
    assert not bool(affords[1, 5]) and not bool(affords[1, 6])
    assert bool((least[None][affords] >= floor).all())
    assert float(least[None][affords].min()) < 1.01 * floor
    torch.testing.assert_close(least[None][~affords], (given / hits)[~affords], rtol=1e-3,
                               atol=0.0)  # an even share
    assert float(least[0.0].min()) >= 0.042 and float(least[0.0][affords].min()) < floor
    with pytest.raises(ValueError, match="hit_floor_mev is the least a hit that flow_hits "
                                         "places carries"):
        model.ShowerGenerator(geometry="hgcal-7x12x15", hit_floor_mev=0.07)


def test_a_critic_counting_hits_trains_with_the_flows_hits():
    """With flow_hits the generated showers have exactly the given hit counts; a critic with
    hit_counts sees them beside how the energy lies (no gradient through the counts needed)."""
    rng = np.random.default_rng(0)
    energies = np.repeat([20.0, 50.0], 16)
    sample = simulation.simulate("hgcal-7x12x15", energies, rng.uniform(-10, 10, (32, 2)), seed=1)
    generator, critic = model.build("hgcal-7x12x15", response=model.response_of(
        sample.cells, sample.energies), lateral_basis=True, layer_flow=True, flow_hits=True,
        share_noise=True, axis_shift=True, hit_counts=True, lateral_moments=True, seed=0)
    result = model.train(generator, critic, sample.cells, sample.energies, sample.positions,
                         iterations=2, batch_size=8, n_critic=1, device="cpu", progress=False,
                         flow_steps=20)
    assert all(np.isfinite(result.critic_loss)) and all(np.isfinite(result.generator_loss))
    real, conditions = model.training_tensors(sample.cells, sample.energies, sample.positions,
                                              generator.response)
    hits = torch.tensor((sample.cells > 0).sum(axis=(2, 3)), dtype=torch.float32)
    layer_mev = torch.tensor(sample.cells.sum(axis=(2, 3)), dtype=torch.float32)
    with torch.no_grad():
        fake = generator.normalised(torch.randn(32, generator.latent_dim), conditions,
                                    layer_mev=layer_mev, layer_hits=hits)
        counted = critic.raw_features(fake)[:, 1260 + 8:1260 + 15]  # after the cells and sums
    torch.testing.assert_close(counted, hits)


def test_share_noise_makes_the_cells_of_one_shower_fluctuate_cell_by_cell():
    """The same shower (latent vector, energies, hit counts) drawn 400 times: with the share
    noise its core cells' energies spread more; without, only where the marginal hits fall
    moves energy about."""
    conditions = torch.tensor([[50.0, 0.0, 0.0]]).repeat(400, 1)
    given = torch.tensor([[10.0, 40.0, 50.0, 30.0, 10.0, 3.0, 0.5]]).repeat(400, 1)
    hits = torch.tensor([[3.0, 8.0, 12.0, 14.0, 12.0, 9.0, 2.0]]).repeat(400, 1)
    latent = torch.randn(1, 24).repeat(400, 1)
    spread = {}
    for share_noise in (False, True):
        generator, _ = model.build("hgcal-7x12x15", response=2.6, lateral_basis=True,
                                   layer_flow=True, flow_hits=True, share_noise=share_noise,
                                   seed=0)
        if share_noise:
            with torch.no_grad():
                generator.share_power.fill_(0.02)
        with torch.no_grad():
            cells = generator.normalised(latent, conditions, torch.rand(400, 1260),
                                         layer_mev=given, layer_hits=hits).reshape(400, 7, -1)
        core = cells[:, 2].mean(dim=0).argmax()  # the third layer's central cell
        torch.testing.assert_close(cells.sum(dim=2), cells.sum(dim=2)[:1].expand(400, -1))
        spread[share_noise] = float(cells[:, 2, core].std() / cells[:, 2, core].mean())
    assert spread[True] > 2.0 * spread[False]
    with pytest.raises(ValueError, match="share_noise .* needs flow_hits"):
        model.build("hgcal-7x12x15", response=2.6, share_noise=True)


def test_training_with_flow_hits_fits_the_counts_and_the_zoo_file_keeps_them(tmp_path):
    rng = np.random.default_rng(0)
    energies = np.repeat([20.0, 50.0], 16)
    sample = simulation.simulate("hgcal-7x12x15", energies, rng.uniform(-10, 10, (32, 2)), seed=1)
    generator, critic = model.build("hgcal-7x12x15", lateral_basis=True, layer_flow=True,
                                    flow_hits=True, seed=0,
                                    response=model.response_of(sample.cells, sample.energies))
    result = model.train(generator, critic, sample.cells, sample.energies, sample.positions,
                         iterations=2, batch_size=8, n_critic=1, device="cpu", progress=False,
                         flow_steps=20)
    assert all(np.isfinite(result.critic_loss + result.generator_loss))
    # the flow's standardisation is the sample's log(1 + hits + 1/2) per layer
    hits = (sample.cells > 0).sum(axis=(2, 3))[:, :5]
    np.testing.assert_allclose(generator.flow.mean[1:10:2].numpy(), np.log1p(hits + 0.5).mean(0),
                               atol=0.03)
    showers = model.generate(generator, [50.0] * 20, seed=1)
    layer_mev = showers.sum(axis=(2, 3))
    count = (showers > 0).sum(axis=(2, 3))
    assert np.all((count == 0) == (layer_mev == 0)) and np.all(count <= 180)
    path = model.save(generator, tmp_path / "g.safetensors")
    np.testing.assert_array_equal(model.generate(model.load(path), [50.0] * 20, seed=1), showers)


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, message", [
    (["--hit-counts", "--no-flow-hits", "--no-share-noise", "--no-axis-shift"],
     "--hit-counts needs --sparse-gate or --flow-hits"),
    (["--gate-poisson"], "--gate-poisson needs --sparse-gate"),
    (["--axis-gain", "5", "--no-axis-shift"], "--axis-gain scales the spread of --axis-shift"),
    (["--hit-floor-mev", "-1"], "--hit-floor-mev is the least a hit that --flow-hits places"),
    (["--no-layer-flow"], "--flow-hits needs --layer-flow and replaces the sparse gate"),
    (["--sparse-gate", "--hit-counts"], "--flow-hits needs --layer-flow and replaces the sparse "
                                        "gate"),
    (["--average-decay", "1"], r"--average-decay must be in \[0, 1\)"),
    (["--final-lr-fraction", "0"], r"--final-lr-fraction must be in \(0, 1\]"),
    (["--no-flow-hits", "--no-axis-shift"], "--share-noise shares the energy among the hits"),
    (["--no-lateral-basis"], "--axis-shift moves the lateral basis"),
    (["--cell-rank", "-2"], "--cell-rank must be 0 .* or positive, not -2"),
    (["--select-classifier", "--select-every", "0"], "--select-classifier is part of the selection"),
])
def test_the_speed_bench_refuses_what_its_flags_cannot_do(argv, message, capsys):
    bench = _bench("calo_wgan_bench")
    with pytest.raises(SystemExit):
        bench.parse(argv)
    assert len(re.findall(message, capsys.readouterr().err)) == 1


def test_the_speed_bench_trains_with_its_flags_and_tests_the_fidelity(tmp_path, monkeypatch,
                                                                     capsys):
    bench = _bench("calo_wgan_bench")
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path))
    threads = torch.get_num_threads()
    bench.main(["--train-iterations", "3", "--train-energies", "20,40", "--held-out", "30",
                "--showers-per-energy", "16", "--batch-size", "8", "--select-every", "2",
                "--select-classifier", "--average-decay", "0.5", "--showers", "2",
                "--generated", "64", "--fidelity-showers", "40"])
    torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "trained here: 3 iterations, kept iteration" in out
    assert "with the hits placed by the compiled kernel vs PyTorch operations" in out
    assert "classifier AUC at the training energies by iteration: 2: " in out
    assert "averaged weights (decay 0.5)" in out
    assert "fidelity at 30 GeV (held out of training)" in out and "classifier AUC" in out
