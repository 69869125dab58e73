"""Toy air showers: footprints on the ground array (shapes, seeds, the lateral distribution,
the energy scale, arrival times of the shower front) and single-station traces (their
dependence on the depth of the shower maximum)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from erumlab.science import airshowers
from erumlab.science.airshowers import SPEED_OF_LIGHT


def plane_fit(events: airshowers.Footprints) -> np.ndarray:
    """Least-squares plane front c t_i = c t0 - u_x x_i - u_y y_i; unit axes [n, 3]."""
    positions = events.positions.reshape(-1, 2)
    axes = np.zeros((len(events), 3))
    for index in range(len(events)):
        hit = events.triggered[index].reshape(-1)
        design = np.c_[-positions[hit], np.ones(hit.sum())]
        ct = SPEED_OF_LIGHT * events.times[index].reshape(-1)[hit].astype(np.float64)
        (ux, uy, _), *_ = np.linalg.lstsq(design, ct, rcond=None)
        horizontal = min(math.hypot(ux, uy), 1.0)
        axes[index] = [ux, uy, math.sqrt(1.0 - horizontal**2)]
    return axes


def rise_time(sample: airshowers.Traces, low: float = 0.1, high: float = 0.5) -> np.ndarray:
    """Time (ns) in which the integrated trace grows from ``low`` to ``high`` of its total."""
    cumulative = np.cumsum(np.clip(sample.traces, 0.0, None), axis=1, dtype=np.float64)
    cumulative /= cumulative[:, -1:]
    rows = np.arange(len(sample))

    def crossing(level: float) -> np.ndarray:
        index = np.argmax(cumulative >= level, axis=1)
        before = np.where(index > 0, cumulative[rows, index - 1], 0.0)
        return (index + (level - before) / (cumulative[rows, index] - before)) * sample.bin_ns

    return crossing(high) - crossing(low)


# Footprints ---------------------------------------------------------------------------------


def test_footprints_shapes_and_labels():
    events = airshowers.footprints(300, seed=3)
    n = len(events)
    assert n == 300
    assert events.signals.shape == events.times.shape == (n, 9, 9)
    assert events.signals.dtype == events.times.dtype == np.float32
    assert events.positions.shape == (9, 9, 2)
    assert events.spacing_m == pytest.approx(1500.0)
    assert events.core.shape == (n, 2) and events.axis.shape == (n, 3)
    np.testing.assert_allclose(np.linalg.norm(events.axis, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(events.axis, airshowers.axis_from_angles(events.zenith,
                                                                        events.azimuth))
    assert np.all((events.energy >= 1.0) & (events.energy <= 100.0))
    assert np.all((events.zenith >= 0) & (events.zenith <= math.radians(60.0)))
    assert np.all((events.azimuth >= 0) & (events.azimuth < 2 * math.pi))
    assert np.all(np.abs(events.core) <= 750.0)
    triggered = events.triggered
    assert np.all(triggered.sum(axis=(1, 2)) >= 3)
    assert np.all(events.signals[triggered] >= 3.0)
    assert np.all(events.times[~triggered] == 0.0)
    # Times count from the first station hit.
    first = np.where(triggered, events.times, np.inf).min(axis=(1, 2))
    np.testing.assert_array_equal(first, 0.0)
    assert np.all(events.times >= 0.0)


def test_footprints_are_reproducible():
    first = airshowers.footprints(50, seed=11)
    again = airshowers.footprints(50, seed=11)
    other = airshowers.footprints(50, seed=12)
    np.testing.assert_array_equal(first.signals, again.signals)
    np.testing.assert_array_equal(first.times, again.times)
    np.testing.assert_array_equal(first.energy, again.energy)
    assert not np.array_equal(first.energy, other.energy)


def test_zenith_angles_are_isotropic_in_cos_squared():
    events = airshowers.footprints(4000, energy_eev=(50.0, 100.0), seed=5)
    cos2 = np.cos(events.zenith) ** 2
    # Uniform on [cos^2 60, 1] = [0.25, 1]: mean 0.625, each half holds half the events.
    assert cos2.mean() == pytest.approx(0.625, abs=0.02)
    assert np.mean(cos2 < 0.625) == pytest.approx(0.5, abs=0.03)


def test_lateral_distribution_falls_with_distance():
    r = np.linspace(200.0, 5000.0, 50)
    for beta in (1.9, 2.3):
        ldf = airshowers.lateral_distribution(r, 40.0, beta)
        assert np.all(np.diff(ldf) < 0)
    assert airshowers.lateral_distribution(1000.0, 40.0, 2.0) == pytest.approx(40.0)
    # In the simulated events: the median signal at each distance from the axis falls.
    events = airshowers.footprints(1500, energy_eev=(10.0, 12.0), max_zenith_deg=30.0, seed=2)
    offset = events.positions[None] - events.core[:, None, None, :]
    along = np.einsum("nijk,nk->nij", offset, events.axis[:, :2])
    distance = np.sqrt(np.sum(offset**2, axis=-1) - along**2)
    hit = events.triggered
    edges = [300, 700, 1100, 1500, 1900, 2300]
    medians = [np.median(events.signals[hit & (distance >= lo) & (distance < hi)])
               for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    assert np.all(np.diff(medians) < 0), medians


def test_larger_energies_give_larger_signals():
    assert airshowers.expected_s1000(20.0, 0.5) / airshowers.expected_s1000(10.0, 0.5) == (
        pytest.approx(2.0**0.93))
    # More atmosphere to cross: inclined showers are attenuated.
    s1000 = airshowers.expected_s1000(10.0, np.radians([0.0, 30.0, 45.0, 60.0]))
    assert np.all(np.diff(s1000) < 0)
    low = airshowers.footprints(400, energy_eev=(3.0, 3.0), seed=4)
    high = airshowers.footprints(400, energy_eev=(30.0, 30.0), seed=4)
    low_total, high_total = low.signals.sum(axis=(1, 2)), high.signals.sum(axis=(1, 2))
    assert np.median(high_total) > 5.0 * np.median(low_total)
    assert np.median(high.triggered.sum(axis=(1, 2))) > np.median(low.triggered.sum(axis=(1, 2)))


def test_plane_front_fit_recovers_the_axis():
    # A plane front without jitter: the fit is exact.
    exact = airshowers.footprints(100, energy_eev=(30.0, 100.0), jitter_ns=0.0, curvature_m=None,
                                  seed=6)
    assert np.max(airshowers.angular_distance(plane_fit(exact), exact.axis)) < 0.01
    # The default curved, jittered front: a few degrees at most for high energies.
    events = airshowers.footprints(300, energy_eev=(30.0, 100.0), seed=7)
    error = airshowers.angular_distance(plane_fit(events), events.axis)
    assert np.median(error) < 2.0, np.median(error)
    assert np.percentile(error, 95) < 4.0, np.percentile(error, 95)


def test_the_curved_front_lags_far_from_the_axis():
    events = airshowers.footprints(200, energy_eev=(50.0, 100.0), jitter_ns=0.0, seed=8)
    plane = airshowers.footprints(200, energy_eev=(50.0, 100.0), jitter_ns=0.0, curvature_m=None,
                                  seed=8)
    np.testing.assert_array_equal(events.energy, plane.energy)
    delay = events.times - plane.times
    hit = events.triggered & plane.triggered
    offset = events.positions[None] - events.core[:, None, None, :]
    along = np.einsum("nijk,nk->nij", offset, events.axis[:, :2])
    r2 = np.sum(offset**2, axis=-1) - along**2
    # Relative to the first station, each delay is r^2 / (2 R c) minus that station's.
    relative = delay - np.where(hit, r2 / (2 * 15000.0 * SPEED_OF_LIGHT), 0.0)
    spread = [np.ptp(relative[i][hit[i]]) for i in range(len(events))]
    assert max(spread) < 0.01


def test_geometry_helpers():
    zenith, azimuth = np.array([0.3, 1.0]), np.array([0.5, 5.5])
    back = airshowers.angles_from_axis(airshowers.axis_from_angles(zenith, azimuth))
    np.testing.assert_allclose(back[0], zenith)
    np.testing.assert_allclose(back[1], azimuth)
    tiny = np.radians(1e-4)
    a = airshowers.axis_from_angles(0.5, 0.0)
    b = airshowers.axis_from_angles(0.5 + tiny, 0.0)
    assert airshowers.angular_distance(a, b) == pytest.approx(1e-4, rel=1e-6)
    positions = airshowers.station_positions(3, 1000.0)
    np.testing.assert_array_equal(positions[1, 1], [0.0, 0.0])
    np.testing.assert_array_equal(positions[0, 2], [1000.0, -1000.0])


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError):
        airshowers.footprints(10, max_zenith_deg=95.0)
    with pytest.raises(ValueError):
        airshowers.footprints(10, energy_eev=(10.0, 1.0))
    with pytest.raises(ValueError):
        airshowers.footprints(10, grid=3, min_stations=10)
    with pytest.raises(ValueError):
        airshowers.traces(10, xmax_range=(900.0, 650.0))
    with pytest.raises(ValueError):
        airshowers.traces(10, bins=0)


# Traces -------------------------------------------------------------------------------------


def test_traces_shapes_and_reproducibility():
    sample = airshowers.traces(200, bins=80, bin_ns=25.0, seed=1)
    assert sample.traces.shape == (200, 80) and sample.traces.dtype == np.float32
    assert len(sample) == 200
    for labels in (sample.xmax, sample.energy, sample.zenith, sample.muons):
        assert labels.shape == (200,)
    assert np.all((sample.xmax >= 650.0) & (sample.xmax <= 900.0))
    assert np.all((sample.energy >= 3.0) & (sample.energy <= 30.0))
    assert np.all(sample.zenith <= math.radians(45.0))
    np.testing.assert_array_equal(sample.time_ns[:3], [0.0, 25.0, 50.0])
    again = airshowers.traces(200, bins=80, bin_ns=25.0, seed=1)
    np.testing.assert_array_equal(sample.traces, again.traces)
    assert not np.array_equal(sample.traces, airshowers.traces(200, bins=80, seed=2).traces)
    # Nothing before the front but noise.
    before = sample.traces[:, : int((sample.front_ns - 50.0) // sample.bin_ns)]
    assert np.abs(before).max() < 0.2


def test_trace_signals_grow_with_energy():
    sample = airshowers.traces(2000, seed=3)
    total = sample.traces.sum(axis=1)
    correlation = np.corrcoef(np.log(sample.energy), np.log(np.clip(total, 1.0, None)))[0, 1]
    assert correlation > 0.8
    assert np.corrcoef(np.log(sample.energy), sample.muons)[0, 1] > 0.4


def test_traces_depend_on_xmax():
    sample = airshowers.traces(3000, seed=4)
    rise = rise_time(sample)
    assert np.all(np.isfinite(rise)) and np.all(rise > 0)
    # Deeper maxima (closer to the ground) rise more slowly ...
    assert np.corrcoef(rise, sample.xmax)[0, 1] > 0.45
    # ... much more clearly at a known zenith angle ...
    band = np.abs(np.degrees(sample.zenith) - 30.0) < 5.0
    assert np.corrcoef(rise[band], sample.xmax[band])[0, 1] > 0.75
    # ... and carry fewer muons.
    deep, shallow = sample.xmax > 850.0, sample.xmax < 700.0
    scaled = sample.muons / sample.energy**0.93
    assert scaled[deep].mean() < 0.8 * scaled[shallow].mean()
    # But not perfectly: the rise time alone leaves a spread of tens of g/cm^2.
    slope, intercept = np.polyfit(rise[band], sample.xmax[band], 1)
    residual = sample.xmax[band] - (slope * rise[band] + intercept)
    assert 10.0 < residual.std() < 60.0


def test_time_scale_grows_as_the_maximum_approaches_the_ground():
    xmax = np.linspace(650.0, 900.0, 20)
    for zenith in (0.0, 0.4, 0.7):
        distance = airshowers.distance_to_xmax(xmax, zenith)
        assert np.all(np.diff(distance) < 0)
        assert np.all(np.diff(airshowers.em_time_scale(xmax, zenith)) > 0)
    assert airshowers.distance_to_xmax(650.0, 0.0) == pytest.approx(
        8000.0 * math.log(1030.0 / 650.0) - 1400.0)
