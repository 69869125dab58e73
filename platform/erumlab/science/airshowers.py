"""Toy cosmic-ray air showers: footprints on a ground array and single-station traces.

A cosmic ray of 1-100 EeV (1 EeV = 10^18 eV) hitting the atmosphere starts an
extensive air shower: billions of electrons, photons and muons that reach the
ground as a thin, slightly curved disc several kilometres wide. A surface
detector such as that of the Pierre Auger Observatory samples the disc with
particle detectors on a grid (1500 m apart in Auger's main array); each one
records how much signal it saw, in units of the signal of a vertical
through-going muon (VEM), and when. This module generates both views of the
data with simple, documented parametrisations (no cascade is simulated):

- ``footprints``: a ``grid`` x ``grid`` square array. The signal of a station
  follows a lateral distribution function (LDF) of its distance r from the
  shower axis,

      S(r) = S1000 (r / 1000 m)^-beta ((r + 700 m) / 1700 m)^-beta,

  with S1000 growing like E^0.93 and falling with the zenith angle (the
  atmosphere the shower has crossed), Poisson-like fluctuations, and a
  trigger threshold (quieter stations read zero). Arrival times are those of
  a plane front moving along the axis at the speed of light, delayed by the
  front's curvature far from the axis, plus jitter.
- ``traces``: the signal of one station at a fixed distance from the axis as
  a function of time. An electromagnetic component spreads out more when the
  depth of the shower maximum Xmax lies closer to the ground (the particles
  arrive from a nearby source under a wider range of angles), and muons,
  produced higher up, arrive early as narrow spikes; deeper (lighter) showers
  carry fewer of them. Xmax can be read from the shape, but only roughly: the
  zenith angle, the energy and the fluctuations blur it.

Conventions: the ground is the plane z = 0 with x to the east and y to the
north; ``axis`` is the unit vector pointing from the ground back towards the
cosmic ray's arrival direction, (sin th cos ph, sin th sin ph, cos th), so
the shower travels along -axis; times are in ns, distances in m, energies in
EeV, depths in g/cm^2, signals in VEM.

    from erumlab.science import airshowers
    events = airshowers.footprints(1000, seed=1)
    events.signals.shape                  # (1000, 9, 9)
    events.energy, events.axis            # labels
    sample = airshowers.traces(1000, seed=2)
    sample.traces.shape, sample.xmax      # (1000, 120), (1000,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SPEED_OF_LIGHT = 0.299792458    # m/ns
LDF_SCALE_M = 700.0             # the NKG-like second scale of the lateral distribution
S1000_AT_10EEV = 40.0           # VEM at 1000 m for 10 EeV at the reference zenith angle
ENERGY_EXPONENT = 0.93          # S1000 ~ E^0.93
REFERENCE_ZENITH_DEG = 38.0     # median zenith angle of an isotropic flux up to 60 degrees
VERTICAL_DEPTH = 875.0          # g/cm^2 of atmosphere above the array (about 1400 m a.s.l.)
ATTENUATION_LENGTH = 850.0      # g/cm^2, the effective attenuation of S1000 with slant depth
R_MIN_M = 150.0                 # the LDF is held constant inside this distance from the axis

SEA_LEVEL_DEPTH = 1030.0        # g/cm^2
SCALE_HEIGHT_M = 8000.0         # of the isothermal atmosphere
GROUND_HEIGHT_M = 1400.0        # the height where VERTICAL_DEPTH holds ~ 8 km ln(1030/875)
TANK_DECAY_NS = 65.0            # the light in a water-Cherenkov tank dies away exponentially
EM_PARTICLE_VEM = 0.15          # mean signal of one electron or photon
EM_SHAPE = 1.6                  # gamma-distribution shape of the electromagnetic arrival times
MUON_SHAPE = 1.2                # and of the muons'


# Geometry helpers ----------------------------------------------------------------------


def axis_from_angles(zenith: np.ndarray | float, azimuth: np.ndarray | float) -> np.ndarray:
    """Unit vectors towards the arrival direction, [..., 3], from zenith and azimuth (rad)."""
    zenith, azimuth = np.asarray(zenith, dtype=np.float64), np.asarray(azimuth, dtype=np.float64)
    sin = np.sin(zenith)
    return np.stack([sin * np.cos(azimuth), sin * np.sin(azimuth), np.cos(zenith)], axis=-1)


def angles_from_axis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zenith in [0, pi] and azimuth in [0, 2 pi) (rad) of vectors [..., 3] (need not be unit)."""
    axis = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(axis, axis=-1)
    zenith = np.arccos(np.clip(axis[..., 2] / np.where(norm > 0, norm, 1.0), -1.0, 1.0))
    azimuth = np.mod(np.arctan2(axis[..., 1], axis[..., 0]), 2.0 * np.pi)
    return zenith, azimuth


def angular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between the directions [..., 3] of ``a`` and ``b`` (need not be unit).

    Uses atan2(|a x b|, a . b), accurate for small angles where arccos(a . b) is not.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(a * b, axis=-1)))


def station_positions(grid: int = 9, spacing_m: float = 1500.0) -> np.ndarray:
    """(x, y) of the stations of a square ``grid`` x ``grid`` array centred on the origin.

    Shape [grid, grid, 2]: the first index is the row (y grows with it), the
    second the column (x grows with it), like an image with its origin at the
    lower left when drawn with ``origin="lower"``.
    """
    if grid < 2 or spacing_m <= 0:
        raise ValueError("grid: at least 2 stations a side; spacing_m: positive")
    offsets = (np.arange(grid, dtype=np.float64) - (grid - 1) / 2.0) * spacing_m
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    return np.stack([x, y], axis=-1)


def lateral_distribution(r_m: np.ndarray | float, s1000: np.ndarray | float,
                         beta: np.ndarray | float) -> np.ndarray:
    """Expected signal (VEM) at distance ``r_m`` from the axis: the NKG-like LDF.

    S(r) = S1000 (r / 1000)^-beta ((r + 700) / 1700)^-beta, held at its value
    at 150 m closer to the axis (the real function diverges there, and real
    stations saturate). The arguments broadcast against each other.
    """
    r = np.maximum(np.asarray(r_m, dtype=np.float64), R_MIN_M)
    beta = np.asarray(beta, dtype=np.float64)
    shape = (r / 1000.0) ** -beta * ((r + LDF_SCALE_M) / (1000.0 + LDF_SCALE_M)) ** -beta
    return np.asarray(s1000, dtype=np.float64) * shape


def expected_s1000(energy_eev: np.ndarray | float, zenith: np.ndarray | float) -> np.ndarray:
    """Mean signal at 1000 m (VEM) of a shower of ``energy_eev`` arriving at ``zenith`` (rad).

    S1000 = 40 VEM (E / 10 EeV)^0.93 exp(-(sec th - sec 38 deg) 875 / 850): the
    shower size at ground grows almost linearly with the energy and shrinks
    with the extra atmosphere an inclined shower crosses (slant depth
    875 g/cm^2 sec th). The exponential stands in for the constant-intensity
    cut the Auger collaboration measures from the data.
    """
    energy = np.asarray(energy_eev, dtype=np.float64)
    sec = 1.0 / np.cos(np.asarray(zenith, dtype=np.float64))
    sec_ref = 1.0 / math.cos(math.radians(REFERENCE_ZENITH_DEG))
    attenuation = np.exp(-(sec - sec_ref) * VERTICAL_DEPTH / ATTENUATION_LENGTH)
    return S1000_AT_10EEV * (energy / 10.0) ** ENERGY_EXPONENT * attenuation


def ldf_slope(zenith: np.ndarray | float) -> np.ndarray:
    """Slope beta of the LDF: 2.3 for vertical showers, flatter (1.9 at 60 deg) for inclined."""
    return 2.3 - 0.4 * (1.0 / np.cos(np.asarray(zenith, dtype=np.float64)) - 1.0)


def _log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return low * (high / low) ** rng.random(n)


def _isotropic_zenith(rng: np.random.Generator, low_deg: float, high_deg: float,
                      n: int) -> np.ndarray:
    """Zenith angles of an isotropic flux through a horizontal surface: uniform in cos^2."""
    c_low, c_high = math.cos(math.radians(high_deg)) ** 2, math.cos(math.radians(low_deg)) ** 2
    return np.arccos(np.sqrt(c_low + (c_high - c_low) * rng.random(n)))


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if not (low <= bounds[0] <= bounds[1] <= high):
        raise ValueError(f"{name}: expected {low} <= low <= high <= {high}, got {bounds}")


# Footprints on the ground array -----------------------------------------------------------


@dataclass
class Footprints:
    """Events on the ground array with their true parameters.

    ``signals`` and ``times`` are [n, grid, grid] float32 maps indexed like
    ``positions`` (row = y, column = x). Stations below the trigger threshold
    read 0 in both; ``triggered`` tells them apart from the earliest station,
    whose time is 0 by definition (times are relative to the first station
    hit, as in real data where the absolute time of the core is unknown).
    """

    signals: np.ndarray     # [n, grid, grid] VEM, 0 where not triggered
    times: np.ndarray       # [n, grid, grid] ns after the first triggered station, 0 if not triggered
    energy: np.ndarray      # [n] EeV
    zenith: np.ndarray      # [n] rad
    azimuth: np.ndarray     # [n] rad
    core: np.ndarray        # [n, 2] m, where the axis meets the ground
    axis: np.ndarray        # [n, 3] unit vector towards the arrival direction
    s1000: np.ndarray       # [n] VEM, the expected signal at 1000 m (no fluctuations)
    positions: np.ndarray   # [grid, grid, 2] m, the stations' (x, y)

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    @property
    def triggered(self) -> np.ndarray:
        """[n, grid, grid] bool: the stations above the trigger threshold."""
        return self.signals > 0

    @property
    def spacing_m(self) -> float:
        return float(self.positions[0, 1, 0] - self.positions[0, 0, 0])


def _footprint_batch(rng: np.random.Generator, count: int, positions: np.ndarray,
                     spacing_m: float, energy_eev: tuple[float, float], max_zenith_deg: float,
                     threshold_vem: float, jitter_ns: float,
                     curvature_m: float | None) -> dict[str, np.ndarray]:
    energy = _log_uniform(rng, energy_eev[0], energy_eev[1], count)
    zenith = _isotropic_zenith(rng, 0.0, max_zenith_deg, count)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, count)
    core = rng.uniform(-0.5 * spacing_m, 0.5 * spacing_m, (count, 2))
    axis = axis_from_angles(zenith, azimuth)

    offset = positions[None] - core[:, None, None, :]                  # [count, g, g, 2]
    along = offset[..., 0] * axis[:, None, None, 0] + offset[..., 1] * axis[:, None, None, 1]
    r = np.sqrt(np.maximum(np.sum(offset**2, axis=-1) - along**2, 0.0))   # distance to the axis

    s1000 = expected_s1000(energy, zenith)
    mean = lateral_distribution(r, s1000[:, None, None], ldf_slope(zenith)[:, None, None])
    # Poisson-like sampling fluctuations of the particle number, sigma = sqrt(S).
    signal = mean + np.sqrt(mean) * rng.standard_normal(mean.shape)
    triggered = signal >= threshold_vem

    # The plane front crosses the core at t = 0 and moves along -axis; the
    # curved front lags behind it by r^2 / (2 R) far from the axis.
    time = -along / SPEED_OF_LIGHT
    if curvature_m is not None:
        time += r**2 / (2.0 * curvature_m * SPEED_OF_LIGHT)
    # Small signals have fewer particles to time the front with: more jitter.
    safe = np.where(triggered, signal, threshold_vem)
    time += jitter_ns * np.sqrt(1.0 + 20.0 / safe) * rng.standard_normal(time.shape)
    first = np.min(np.where(triggered, time, np.inf), axis=(1, 2))
    first = np.where(np.isfinite(first), first, 0.0)
    time = np.where(triggered, time - first[:, None, None], 0.0)
    return {"signals": np.where(triggered, signal, 0.0), "times": time, "energy": energy,
            "zenith": zenith, "azimuth": azimuth, "core": core, "axis": axis, "s1000": s1000,
            "stations": triggered.sum(axis=(1, 2))}


def footprints(n: int, *, grid: int = 9, spacing_m: float = 1500.0,
               energy_eev: tuple[float, float] = (1.0, 100.0), max_zenith_deg: float = 60.0,
               threshold_vem: float = 3.0, jitter_ns: float = 25.0,
               curvature_m: float | None = 15000.0, min_stations: int = 3,
               seed: int = 0) -> Footprints:
    """``n`` air-shower footprints on a ``grid`` x ``grid`` array of stations.

    Energies are log-uniform in ``energy_eev`` (EeV), zenith angles isotropic
    up to ``max_zenith_deg`` (uniform in cos^2 th: the flux through the flat
    array is proportional to cos th), azimuths uniform, and the core uniform in
    the central cell (the square of side ``spacing_m`` around the array's
    centre), so that the footprint is contained. A station reads the LDF
    (``lateral_distribution``, with ``expected_s1000`` and ``ldf_slope``) at
    its distance from the axis, smeared by a Gaussian of width sqrt(S); below
    ``threshold_vem`` it reads 0. Its time is that of the front (a plane, or a
    sphere of radius ``curvature_m`` around a point on the axis; None for a
    plane) plus Gaussian jitter of ``jitter_ns`` sqrt(1 + 20 VEM / S).

    Events with fewer than ``min_stations`` triggered stations are not kept
    (as a real array needs three stations to reconstruct an event) and are
    replaced by new ones: below about 3 EeV, where small showers are often
    missed, the kept energies therefore fall short of log-uniform.

    Deterministic for a given ``seed``.
    """
    if n < 0:
        raise ValueError("n: the number of events cannot be negative")
    _check_range("energy_eev", energy_eev, 1e-6, 1e6)
    if not 0.0 <= max_zenith_deg < 90.0:
        raise ValueError("max_zenith_deg: between 0 and 90 (exclusive)")
    if threshold_vem <= 0 or jitter_ns < 0 or (curvature_m is not None and curvature_m <= 0):
        raise ValueError("threshold_vem and curvature_m must be positive, jitter_ns >= 0")
    if not 1 <= min_stations <= grid * grid:
        raise ValueError("min_stations: between 1 and the number of stations")
    positions = station_positions(grid, spacing_m)
    rng = np.random.default_rng(seed)
    kept: list[dict[str, np.ndarray]] = []
    total, batch = 0, max(64, n + n // 2)
    for _ in range(1000):
        if total >= n and kept:
            break
        events = _footprint_batch(rng, batch, positions, spacing_m, energy_eev, max_zenith_deg,
                                  threshold_vem, jitter_ns, curvature_m)
        keep = events.pop("stations") >= min_stations
        kept.append({key: value[keep] for key, value in events.items()})
        total += int(keep.sum())
    else:
        raise RuntimeError("too few events pass min_stations: raise the energies or the array")
    parts = {key: np.concatenate([part[key] for part in kept])[:n] for key in kept[0]}
    return Footprints(signals=parts["signals"].astype(np.float32),
                      times=parts["times"].astype(np.float32), energy=parts["energy"],
                      zenith=parts["zenith"], azimuth=parts["azimuth"], core=parts["core"],
                      axis=parts["axis"], s1000=parts["s1000"], positions=positions)


# Single-station traces --------------------------------------------------------------------


@dataclass
class Traces:
    """Signal traces of one station each, with the true shower parameters.

    ``traces`` [n, bins] float32 hold the signal in each time bin (VEM per
    bin, so a trace sums to the station's total signal up to noise and the
    part cut off at the end); the shower front arrives at ``front_ns``.
    """

    traces: np.ndarray      # [n, bins] VEM per bin
    xmax: np.ndarray        # [n] g/cm^2, depth of the shower maximum along the axis
    energy: np.ndarray      # [n] EeV
    zenith: np.ndarray      # [n] rad
    muons: np.ndarray       # [n] int, number of muons that crossed the station
    bin_ns: float
    distance_m: float
    front_ns: float

    def __len__(self) -> int:
        return int(self.traces.shape[0])

    @property
    def time_ns(self) -> np.ndarray:
        """[bins] start time of each bin."""
        return np.arange(self.traces.shape[1]) * self.bin_ns


def distance_to_xmax(xmax: np.ndarray | float, zenith: np.ndarray | float) -> np.ndarray:
    """Distance (m) along the axis from the shower maximum to the ground.

    In an isothermal atmosphere X_vertical(h) = 1030 g/cm^2 exp(-h / 8 km) with
    the array at 1400 m: h_max = 8 km ln(1030 / (Xmax cos th)), and the distance
    is (h_max - 1400 m) / cos th. It is negative when the maximum would lie
    below the ground (deep, nearly vertical showers).
    """
    cos = np.cos(np.asarray(zenith, dtype=np.float64))
    height = SCALE_HEIGHT_M * np.log(SEA_LEVEL_DEPTH / (np.asarray(xmax, dtype=np.float64) * cos))
    return (height - GROUND_HEIGHT_M) / cos


def em_time_scale(xmax: np.ndarray | float, zenith: np.ndarray | float,
                  distance_m: float = 1000.0) -> np.ndarray:
    """Time scale (ns) of the electromagnetic arrival times at ``distance_m`` from the axis.

    Particles from a source at distance D on the axis reach a station at r
    later than the plane front by (sqrt(D^2 + r^2) - D) / c ~ r^2 / (2 D c);
    the particles come from a stretch of the shower around the maximum, so
    their delays spread over a similar time. With D softened to
    D_eff = 1.5 km softplus(D / 1.5 km) (the maximum is not a point) the scale
    is 40 ns + 0.3 r^2 / (2 D_eff c): longer for showers whose maximum is
    closer to the ground.
    """
    distance = distance_to_xmax(xmax, zenith)
    soft = 1500.0 * np.logaddexp(0.0, distance / 1500.0)
    return 40.0 + 0.3 * distance_m**2 / (2.0 * soft * SPEED_OF_LIGHT)


def _deposit(rng: np.random.Generator, counts: np.ndarray, shape: float, scale: np.ndarray,
             front_ns: np.ndarray, bin_ns: float, bins: int, amplitude: float,
             spread: float) -> np.ndarray:
    """Histogram [n, bins] of ``counts[i]`` particles in trace i, each arriving
    gamma(``shape``, ``scale[i]``) after ``front_ns[i]`` with a signal of ``amplitude``
    times a factor uniform in 1 +- ``spread``."""
    n = counts.size
    owner = np.repeat(np.arange(n), counts)
    arrival = front_ns[owner] + rng.gamma(shape, 1.0, owner.size) * scale[owner]
    size = amplitude * (1.0 + spread * (2.0 * rng.random(owner.size) - 1.0))
    index = np.floor(arrival / bin_ns).astype(np.int64)
    inside = (index >= 0) & (index < bins)
    flat = owner[inside] * bins + index[inside]
    counted = np.bincount(flat, weights=size[inside], minlength=n * bins)
    return counted.astype(np.float64).reshape(n, bins)  # (an empty bincount is int)


def traces(n: int, *, bins: int = 120, bin_ns: float = 25.0,
           xmax_range: tuple[float, float] = (650.0, 900.0),
           energy_eev: tuple[float, float] = (3.0, 30.0),
           max_zenith_deg: float = 45.0, distance_m: float = 1000.0, front_ns: float = 200.0,
           noise_vem: float = 0.02, seed: int = 0) -> Traces:
    """``n`` signal traces of a station ``distance_m`` from the shower axis.

    Per shower: Xmax uniform in ``xmax_range``, the energy log-uniform in
    ``energy_eev``, the zenith angle isotropic up to ``max_zenith_deg``. Both
    components below scale with the energy like S1000 and with the distance
    like the LDF, L(r) = ``lateral_distribution(r, 1, ldf_slope(th))`` (1 at 1000 m).

    - Electromagnetic component: a Poisson number of particles of 0.15 VEM
      each (on average) with a total mean of
      20 VEM (E / 10 EeV)^0.93 L(r) exp(-(DX - 400) / 400) (DX = 875 sec th - Xmax,
      the matter between the maximum and the ground, absorbs it), arriving
      gamma-distributed (shape 1.6) after the front with the scale
      ``em_time_scale``: longer, and the trace rises more slowly, the closer
      the maximum is to the ground.
    - Muons: a Poisson number with mean
      12 (E / 10 EeV)^0.93 L(r) exp(-(Xmax - 750) / 300) sec(th)^0.5 (deep, light
      showers make fewer muons), of about 1 VEM each (+-40 %: track lengths),
      produced high up, so they arrive early (gamma shape 1.2, a third of the
      electromagnetic time scale) and one by one, as spikes.
    - Each particle's light decays in the tank with 65 ns; Gaussian baseline
      noise of ``noise_vem`` per bin is added.

    The front arrives at ``front_ns`` (plus a 10 ns jitter of the trigger).
    Deterministic for a given ``seed``.
    """
    if n < 0 or bins < 1 or bin_ns <= 0:
        raise ValueError("n >= 0, bins >= 1 and bin_ns > 0 are required")
    _check_range("xmax_range", xmax_range, 100.0, 2000.0)
    _check_range("energy_eev", energy_eev, 1e-6, 1e6)
    if not 0.0 <= max_zenith_deg <= 70.0:
        raise ValueError("max_zenith_deg: between 0 and 70 degrees")
    if distance_m <= 0 or noise_vem < 0 or front_ns < 0:
        raise ValueError("distance_m must be positive, noise_vem and front_ns >= 0")
    rng = np.random.default_rng(seed)
    xmax = rng.uniform(xmax_range[0], xmax_range[1], n)
    energy = _log_uniform(rng, energy_eev[0], energy_eev[1], n)
    zenith = _isotropic_zenith(rng, 0.0, max_zenith_deg, n)
    sec = 1.0 / np.cos(zenith)
    # The signal scales with the energy like S1000, and with the distance like the LDF.
    size = (energy / 10.0) ** ENERGY_EXPONENT * lateral_distribution(distance_m, 1.0,
                                                                      ldf_slope(zenith))

    to_ground = VERTICAL_DEPTH * sec - xmax
    em_mean = 20.0 * size * np.exp(-(to_ground - 400.0) / 400.0)
    em_scale = em_time_scale(xmax, zenith, distance_m)
    em_counts = rng.poisson(em_mean / EM_PARTICLE_VEM)
    muon_mean = 12.0 * size * np.exp(-(xmax - 750.0) / 300.0) * np.sqrt(sec)
    muons = rng.poisson(muon_mean)
    front = front_ns + 10.0 * rng.standard_normal(n)

    deposits = _deposit(rng, em_counts, EM_SHAPE, em_scale, front, bin_ns, bins,
                        EM_PARTICLE_VEM, 1.0)
    deposits += _deposit(rng, muons, MUON_SHAPE, em_scale / 3.0, front, bin_ns, bins, 1.0, 0.4)

    # The tank's response: exponential decay, integrated over each bin.
    taps = max(1, int(math.ceil(6.0 * TANK_DECAY_NS / bin_ns)))
    edges = np.exp(-np.arange(taps + 1) * bin_ns / TANK_DECAY_NS)
    kernel = edges[:-1] - edges[1:]
    kernel /= kernel.sum()
    signal = np.zeros_like(deposits)
    for lag, weight in enumerate(kernel[:bins]):
        signal[:, lag:] += weight * deposits[:, :bins - lag]
    signal += noise_vem * rng.standard_normal(signal.shape)
    return Traces(traces=signal.astype(np.float32), xmax=xmax, energy=energy, zenith=zenith,
                  muons=muons, bin_ns=float(bin_ns), distance_m=float(distance_m),
                  front_ns=float(front_ns))
