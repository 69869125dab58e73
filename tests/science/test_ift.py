"""Information field theory: operator adjointness, the CG solve against a dense solve, the
statistics of posterior samples, the critical filter, the Poisson MAP/MGVI, the side-by-side
comparison with nifty8 on its demo setups, and the papermill template end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from erumlab.science.ift import demos, nifty_compare
from erumlab.science.ift.grids import RegularGrid
from erumlab.science.ift.operators import (
    DiagonalOperator,
    HarmonicTransform,
    MaskResponse,
    checkerboard_mask,
    exposure_response,
    fourier_power,
    power_covariance,
)
from erumlab.science.ift.poisson import LogNormalPoisson
from erumlab.science.ift.spectrum import PowerBins, critical_filter
from erumlab.science.ift.wiener import (
    RegionPreconditioner,
    WienerFilter,
    conjugate_gradient,
    coverage,
    relative_difference,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "notebooks_templates" / "ift.ipynb"
ONE_SIGMA = float(erf(1 / np.sqrt(2)))  # 0.6827
needs_nifty = pytest.mark.skipif(not nifty_compare.available(), reason="nifty8 not installed")


def _operators(rng: np.random.Generator):
    """Every operator kind, on 1D and 2D grids (odd and even sizes, non-default spacing)."""
    for shape, distances in [((16,), None), ((15,), 0.3), ((8, 6), None), ((7, 10), (0.5, 2.0))]:
        grid = RegularGrid(shape, distances)
        observed = rng.random(shape) > 0.3
        exposure = rng.random(shape) * (rng.random(shape) > 0.2)
        S = power_covariance(grid, lambda k: 3.0 / (1.0 + k**2))
        yield f"diagonal {shape}", DiagonalOperator(rng.random(shape) + 0.5)
        yield f"mask {shape}", MaskResponse(observed)
        yield f"exposure {shape}", exposure_response(exposure)
        yield f"harmonic transform {shape}", HarmonicTransform(grid)
        yield f"covariance {shape}", S
        yield f"covariance sqrt {shape}", S.sqrt
        yield f"chain {shape}", MaskResponse(observed) @ S @ HarmonicTransform(grid)
        yield f"sum {shape}", 2.0 * S + DiagonalOperator(np.ones(shape))


def test_every_operator_is_adjoint_to_its_transpose():
    rng = np.random.default_rng(0)
    for name, op in _operators(rng):
        for _ in range(3):
            x = rng.standard_normal(op.domain_shape)
            y = rng.standard_normal(op.target_shape)
            left = np.vdot(op.times(x), y)
            right = np.vdot(x, op.adjoint.times(y))
            assert abs(left - right) <= 1e-10 * max(1.0, abs(left)), name
        # and batched application equals one-by-one application
        batch = rng.standard_normal((4, *op.domain_shape))
        np.testing.assert_allclose(op.times(batch), np.stack([op.times(b) for b in batch]),
                                   atol=1e-12, err_msg=name)


def test_covariance_has_the_power_spectrum_and_nifty_conventions():
    grid = RegularGrid((32, 32))
    power = demos.parse_spectrum(demos.SPECTRUM_2D)
    S = power_covariance(grid, power)
    # The covariance is the Hartley transform of coefficients with variance P(|k|), as in nifty.
    HT = HarmonicTransform(grid)
    full_k = np.sqrt(np.add.outer(np.fft.fftfreq(32, 1 / 32) ** 2, np.fft.fftfreq(32, 1 / 32) ** 2))
    via_harmonic = (HT @ DiagonalOperator(power(full_k)) @ HT).to_matrix()
    np.testing.assert_allclose(S.to_matrix(), via_harmonic, rtol=1e-10, atol=1e-12)
    # Drawn fields have that spectrum: averaged over many draws, band power ~ P(k).
    fields = S.draw(np.random.default_rng(1), 400)
    bins = PowerBins.logarithmic(grid, 8)
    measured = bins.average(fourier_power(grid, fields))
    expected = bins.average(power(grid.k_lengths))
    use = bins.occupied
    np.testing.assert_allclose(measured[use], expected[use], rtol=0.1)


def test_the_harmonic_transform_is_niftys():
    ift = pytest.importorskip("nifty8")
    grid = RegularGrid((6, 10), (0.5, 0.25))
    position = ift.RGSpace(grid.shape, distances=grid.distances)
    theirs = ift.HarmonicTransformOperator(position.get_default_codomain(), target=position)
    x = np.random.default_rng(2).standard_normal(grid.shape)
    expected = theirs(ift.makeField(position.get_default_codomain(), x)).val
    np.testing.assert_allclose(HarmonicTransform(grid).times(x), expected, rtol=1e-12, atol=1e-12)


def _small_problem(seed: int = 0, shape=(24, 20), noise: float = 0.5):
    grid = RegularGrid(shape)
    power = lambda k: 40.0 / (1.0 + (k / 3.0) ** 2) ** 2  # noqa: E731
    observed = checkerboard_mask(shape, 2) if len(shape) == 2 else np.arange(shape[0]) % 5 > 0
    rng = np.random.default_rng(seed)
    S = power_covariance(grid, power)
    signal = S.draw(rng)
    R = MaskResponse(observed)
    data = R.times(signal) + np.sqrt(noise) * rng.standard_normal(R.target_shape)
    return WienerFilter(S, R, noise), signal, data


def test_conjugate_gradient_matches_a_dense_solve():
    wiener, _, data = _small_problem()
    dense = wiener.dense_propagator() @ wiener.source(data).ravel()
    mean = wiener.mean(data)
    assert relative_difference(mean.x.ravel(), dense) < 1e-8
    assert 0 < mean.max_iterations < 200
    # A batch of right-hand sides is solved system by system, same answers.
    rhs = np.random.default_rng(3).standard_normal((5, *wiener.grid.shape))
    batch = wiener.solve(rhs)
    direct = (wiener.dense_propagator() @ rhs.reshape(5, -1).T).T
    assert relative_difference(batch.x.reshape(5, -1), direct) < 1e-8
    assert batch.iterations.shape == (5,)
    # The region preconditioner needs far fewer iterations than none (same answer).
    plain = conjugate_gradient(wiener.curvature, wiener.source(data), ndim=2, tol=1e-10)
    assert relative_difference(plain.x.ravel(), dense) < 1e-6
    assert mean.max_iterations < plain.max_iterations


def test_region_preconditioner_is_symmetric_positive_definite():
    grid = RegularGrid((12, 10))
    S = power_covariance(grid, lambda k: 5.0 / (1.0 + k**2))
    precision = np.random.default_rng(4).random(grid.shape) * 100
    precision[:3] = 0.0
    M = RegionPreconditioner(S, precision)
    assert len(M.regions) > 2
    basis = np.eye(grid.size).reshape(grid.size, *grid.shape)
    matrix = M(basis).reshape(grid.size, -1)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-10 * np.abs(matrix).max())
    assert np.linalg.eigvalsh(0.5 * (matrix + matrix.T)).min() > 0


def test_posterior_samples_have_the_dense_covariance_and_the_uncertainty_grows_in_the_gap():
    wiener, signal, data = _small_problem(1, shape=(256,), noise=0.3)
    wiener.response = MaskResponse(np.ones(256, dtype=bool))  # rebuilt below with a gap
    observed = np.ones(256, dtype=bool)
    observed[60:110] = False
    R = MaskResponse(observed)
    wiener = WienerFilter(wiener.covariance, R, 0.3)
    data = R.times(signal) + np.sqrt(0.3) * np.random.default_rng(5).standard_normal(R.target_shape)
    posterior = wiener.posterior(data, 800, seed=6)
    exact = np.sqrt(np.diag(wiener.dense_propagator()))
    # 800 samples: the std of each pixel scatters by 1/sqrt(1600) = 2.5 %.
    assert relative_difference(posterior.std, exact) < 0.05
    assert np.abs(posterior.std / exact - 1).max() < 0.15
    # Samples scatter around the mean with zero average.
    offset = (posterior.samples.mean(axis=0) - posterior.mean) / exact
    assert np.sqrt(np.mean(offset**2)) < 4 / np.sqrt(800)
    # No data in the gap: the uncertainty there is several times larger.
    assert posterior.std[~observed].mean() > 3 * posterior.std[observed].mean()
    # Loose sample tolerance, same draws: the uncertainty map barely moves.
    prior, noise = wiener.draw_excitations(np.random.default_rng(7), 50)
    loose, _ = wiener.samples_from(posterior.mean, prior, noise, tol=1e-3)
    tight, _ = wiener.samples_from(posterior.mean, prior, noise, tol=1e-10)
    spread = lambda s: np.sqrt(np.mean((s - posterior.mean) ** 2, axis=0))  # noqa: E731
    assert relative_difference(spread(loose), spread(tight)) < 2e-3


def test_coverage_is_one_sigma_over_many_realisations():
    hits = []
    for seed in range(12):
        setup = demos.wiener_1d(256, gap=(0.2, 0.4), seed=100 + seed)
        wiener = setup.wiener_filter()
        posterior = wiener.posterior(setup.data, 100, seed=seed)
        hits.append(coverage(setup.signal, posterior.mean, posterior.std))
    # 12 x 256 correlated pixels: the average scatters by ~1.5 %.
    assert abs(np.mean(hits) - ONE_SIGMA) < 0.04, hits


def test_critical_filter_recovers_a_known_spectrum():
    setup = demos.wiener_2d(64, tiles=0, noise_variance=1.0, seed=7)
    result = critical_filter(setup.grid, setup.response, setup.noise_variance, setup.data,
                             bins=16, iterations=12, samples=4, final_samples=10, seed=1)
    bins = result.bins
    use = bins.occupied.copy()
    use[0] = False
    k = bins.centres[use]
    signal_dominated = (k > 2) & (setup.power(k) * setup.grid.eigenvalue_factor > 10)
    assert signal_dominated.sum() >= 6
    # Against the power this realisation actually has (what data can tell)...
    realised = bins.average(fourier_power(setup.grid, setup.signal))[use]
    ratio = result.power[use][signal_dominated] / realised[signal_dominated]
    assert np.all(np.abs(np.log(ratio)) < 0.25), ratio
    # ...and against the true spectrum (cosmic variance of a few-hundred-mode band on top).
    truth = result.power[use][signal_dominated] / setup.power(k[signal_dominated])
    assert np.median(np.abs(np.log(truth))) < 0.2, truth
    # The starting guess included the noise power; the filter moved away from it.
    assert not np.allclose(result.history[0], result.power)


def test_parse_spectrum_accepts_arithmetic_only():
    power = demos.parse_spectrum("2e4 / (1 + (k / 5)**2)**2")
    assert power(np.array([0.0, 5.0])) == pytest.approx([2e4, 5e3])
    assert demos.parse_spectrum("exp(-k) + sqrt(k)")(np.array([1.0]))[0] == pytest.approx(
        np.exp(-1) + 1)
    for bad in ["__import__('os')", "k.real", "open('x')", "-1 + 0*k", "1/k", "k +"]:
        with pytest.raises(ValueError):
            demos.parse_spectrum(bad)


def test_poisson_map_and_mgvi_beat_counts_over_exposure():
    sky = demos.poisson_2d(64, mean_counts=4.0, seed=3)
    model = LogNormalPoisson(sky.covariance, sky.exposure, sky.counts)
    found_map = model.map()
    found = model.mgvi(samples=8, iterations=3, seed=1, start=found_map.mean)
    exposed = sky.exposure > 0
    assert (~exposed).any()

    def rms(estimate):
        return np.sqrt(np.mean((estimate[exposed] - sky.flux[exposed]) ** 2))

    naive = rms(sky.naive_flux)  # about 25 % worse on this sky (seeds 0-3 alike)
    assert rms(np.exp(found_map.offset + found_map.mean)) < 0.85 * naive
    assert rms(found.flux) < 0.85 * naive
    # The MAP is a minimum: the gradient vanishes there.
    gradient = model.gradient(found_map.mean)
    assert np.linalg.norm(gradient) < 1e-3 * np.linalg.norm(sky.counts)
    # Uncertainty: larger where nothing was exposed, and roughly calibrated.
    assert found.std[~exposed].mean() > 1.5 * found.std[exposed].mean()
    truth = sky.offset + sky.log_flux
    assert 0.5 < coverage(truth, found.offset + found.mean, found.std) < 0.85


def test_poisson_refuses_counts_without_exposure():
    grid = RegularGrid((8, 8))
    exposure = np.ones((8, 8))
    exposure[0] = 0
    counts = np.ones((8, 8))
    with pytest.raises(ValueError, match="exposure is zero"):
        LogNormalPoisson(power_covariance(grid, lambda k: 1 / (1 + k**2)), exposure, counts)


def _compare(setup, samples: int, seed: int):
    wiener = setup.wiener_filter()
    ours = wiener.posterior(setup.data, samples, seed=seed)
    problem = nifty_compare.NiftyWiener(setup.grid, setup.power, setup.noise_variance,
                                        setup.observed)
    theirs_mean, _, _ = problem.mean(setup.data)
    prior, noise = wiener.draw_excitations(np.random.default_rng(seed + 1), 8)
    our_samples, _ = wiener.samples_from(ours.mean, prior, noise)
    their_fluctuations = problem.fluctuations_from(prior, noise)
    return ours, theirs_mean, our_samples - ours.mean, their_fluctuations, problem


@needs_nifty
def test_nifty8_agrees_on_its_1d_demo():
    setup = demos.wiener_1d(seed=0)  # 512 pixels, the demo's spectrum, noise and gap
    ours, theirs_mean, our_fl, their_fl, problem = _compare(setup, 100, 1)
    assert relative_difference(ours.mean, theirs_mean) < 1e-3
    spread = lambda f: np.sqrt(np.mean(f**2, axis=0))  # noqa: E731
    # Same draws through both codes: the uncertainty maps agree pixel by pixel.
    assert relative_difference(spread(our_fl), spread(their_fl)) < 0.05
    # nifty's own sampler and RNG: its uncertainty, averaged over the observed pixels,
    # matches ours. In the gap the fluctuations are a few smooth modes, so even the
    # average over it scatters by ~sqrt(2 / n) = 18 % in variance: a looser check there.
    fluctuations, _, _ = problem.draw_samples(60, 5)
    theirs = spread(fluctuations)
    observed, gap = setup.observed, ~setup.observed
    assert theirs[observed].mean() / ours.std[observed].mean() == pytest.approx(1.0, abs=0.05)
    assert theirs[gap].mean() / ours.std[gap].mean() == pytest.approx(1.0, abs=0.25)


@needs_nifty
def test_nifty8_agrees_on_a_reduced_2d_demo():
    setup = demos.wiener_2d(64, seed=2)  # the demo's spectrum, noise and checkerboard, smaller
    ours, theirs_mean, our_fl, their_fl, _ = _compare(setup, 20, 3)
    assert relative_difference(ours.mean, theirs_mean) < 1e-3
    spread = lambda f: np.sqrt(np.mean(f**2, axis=0))  # noqa: E731
    assert relative_difference(spread(our_fl), spread(their_fl)) < 0.05


def test_the_template_runs_as_a_papermill_job(tmp_path):
    papermill = pytest.importorskip("papermill")
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(TEMPLATE), str(output), kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
        parameters={"size_1d": 128, "size_2d": 32, "samples": 30, "spectrum_iterations": 3,
                    "spectrum_samples": 2, "spectrum_bins": 8, "poisson_size": 32,
                    "poisson_samples": 4, "mgvi_iterations": 1,
                    "compare_nifty": nifty_compare.available()})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for name in ["wiener_1d.png", "wiener_2d.png", "power_spectrum.png", "spectrum_field.png",
                 "poisson.png"]:
        assert (tmp_path / name).stat().st_size > 10_000, name
        assert name in metrics["figures"]
    assert metrics["wiener_1d"]["pixels"] == 128
    assert metrics["wiener_2d"]["std_gap"] > metrics["wiener_2d"]["std_observed"]
    assert metrics["poisson"]["rms_flux_mgvi"] < metrics["poisson"]["rms_flux_naive"]
    if nifty_compare.available():
        assert metrics["nifty8_1d"]["mean_rel_diff"] < 1e-3
