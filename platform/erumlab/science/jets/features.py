"""The 16 high-level jet-substructure features of the hls4ml jet-tagging reference.

Duarte et al., JINST 13 P07027 (2018) (arXiv:1804.06913) feed the network
these observables, in this order (the hls4ml LHC jet data set's names):

    zlogz, c1_b0, c1_b1, c1_b2, c2_b1, c2_b2, d2_b1, d2_b2, d2_a1_b1, d2_a1_b2,
    m2_b1, m2_b2, n2_b1, n2_b2, mass_mmdt, multiplicity

``zlogz`` = sum z_i log z_i and ``multiplicity`` use the whole anti-kT jet;
everything else uses the jet after modified-mass-drop (soft-drop beta = 0,
z_cut = 0.1) grooming (the "_mmdt" of the reference's names). With
z_i = pT_i / sum_j pT_j and R_ij the distance in rapidity and azimuth (the
``pt_R`` measure of fjcontrib's EnergyCorrelator, normalised):

- e2^(b) = sum_{i<j} z_i z_j R_ij^b, e3^(b) = sum_{i<j<k} z_i z_j z_k (R_ij R_ik R_jk)^b;
- the generalised correlators (Moult, Necib, Thaler 2016) keep only the v smallest
  of the three angles: 1e3^(b) with min(R)^b, 2e3^(b) with the product of the two
  smallest; 1e2 = e2;
- C1^(b) = e2^(b), C2^(b) = e3 / e2^2, D2^(b) = e3 / e2^3,
  D2^(a,b) = e3^(a) / (e2^(b))^(3a/b) (so D2^(1,1) is D2^(1), as in the reference),
  M2^(b) = 1e3 / 1e2, N2^(b) = 2e3 / (1e2)^2.

A ratio whose denominator vanishes (a groomed jet of one constituent, where
every correlator is 0) is set to 0 rather than NaN, so that every jet has 16
finite inputs; the reference's jets always have several constituents.

Everything is vectorised in NumPy: jets are grouped by constituent count and
each group's pairwise angles are one [jets, n, n] array; e3 is a trace,
tr((D A)^3) / 6 with D = diag(z) and A_ij = R_ij^b (zero diagonal, so repeated
indices drop out), and the generalised three-point correlators are
contractions of [jets, n, n, n] cubes of the smallest angles, in chunks that
bound the memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES: tuple[str, ...] = (
    "zlogz", "c1_b0", "c1_b1", "c1_b2", "c2_b1", "c2_b2", "d2_b1", "d2_b2", "d2_a1_b1",
    "d2_a1_b2", "m2_b1", "m2_b2", "n2_b1", "n2_b2", "mass_mmdt", "multiplicity")
UNITS = {"mass_mmdt": "GeV"}
TRIPLET_CHUNK = 4_000_000  # elements of the [jets, n, n, n] cubes formed at once (16 MB each)


@dataclass
class Constituents:
    """Ragged constituents of many jets: four-momenta [N, 4] (px, py, pz, E in GeV) and counts."""

    p4: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        self.p4 = np.asarray(self.p4, dtype=np.float64).reshape(-1, 4)
        self.counts = np.asarray(self.counts, dtype=np.int64).reshape(-1)
        if self.counts.sum() != self.p4.shape[0] or np.any(self.counts < 0):
            raise ValueError(f"counts add up to {self.counts.sum()}, but there are "
                             f"{self.p4.shape[0]} constituents")

    @classmethod
    def from_jets(cls, jets: list[np.ndarray]) -> Constituents:
        """From one [n_i, 4] array per jet."""
        counts = [len(j) for j in jets]
        p4 = np.concatenate([np.asarray(j, dtype=np.float64).reshape(-1, 4) for j in jets]) \
            if jets else np.zeros((0, 4))
        return cls(p4, np.asarray(counts))

    @property
    def offsets(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.counts)]

    def __len__(self) -> int:
        return int(self.counts.size)

    def jet(self, index: int) -> np.ndarray:
        o = self.offsets
        return self.p4[o[index]:o[index + 1]]

    def select(self, indices: np.ndarray) -> Constituents:
        o = self.offsets
        parts = [self.p4[o[i]:o[i + 1]] for i in np.asarray(indices)]
        return Constituents(np.concatenate(parts) if parts else np.zeros((0, 4)),
                            self.counts[np.asarray(indices)])


def kinematics(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, rapidity and azimuth of four-momenta [..., 4]."""
    px, py, pz, e = (p4[..., i] for i in range(4))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        rapidity = 0.5 * np.log((e + pz) / (e - pz))
    return pt, np.nan_to_num(rapidity), np.arctan2(py, px)


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    """sqrt(E^2 - p^2) of four-momenta [..., 4], 0 where rounding makes it imaginary."""
    m2 = p4[..., 3] ** 2 - p4[..., 0] ** 2 - p4[..., 1] ** 2 - p4[..., 2] ** 2
    return np.sqrt(np.clip(m2, 0.0, None))


def jet_mass(constituents: Constituents) -> np.ndarray:
    sums = np.add.reduceat(constituents.p4, constituents.offsets[:-1], axis=0) \
        if constituents.p4.shape[0] else np.zeros((len(constituents), 4))
    sums[constituents.counts == 0] = 0.0  # reduceat repeats a row for empty segments
    return invariant_mass(sums)


def zlogz(constituents: Constituents) -> np.ndarray:
    """sum_i z_i log z_i with z_i = pT_i / sum pT (0 for a one-constituent jet)."""
    pt, _, _ = kinematics(constituents.p4)
    jet_index = np.repeat(np.arange(len(constituents)), constituents.counts)
    total = np.bincount(jet_index, weights=pt, minlength=len(constituents))
    z = pt / total[jet_index]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(z > 0, z * np.log(z), 0.0)
    return np.bincount(jet_index, weights=terms, minlength=len(constituents))


@dataclass
class Correlators:
    """Normalised energy correlators of each jet for one angular exponent beta."""

    e2: np.ndarray
    e3: np.ndarray
    e3_min1: np.ndarray  # 1e3: smallest angle only
    e3_min2: np.ndarray  # 2e3: the two smallest angles


def _generalised_e3(z: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1e3 and 2e3 of jets [m, n] with angle powers a [m, n, n] (zero diagonal).

    The sums run over the full cube of ordered (i, j, k), where each unordered
    triplet appears six times and triples with a repeated index vanish (their
    smallest angle is a zero diagonal element), so the result is a sixth of
    contractions with z. The product of the two smallest of three non-negative
    angles is the smallest of their pairwise products. The cube is formed in
    float32 (a relative error of about 1e-7 per term, far below the features'
    physical resolution) and contracted in float64; that halves the memory
    traffic that dominates the cost.
    """
    m, n = z.shape
    e3_min1 = np.empty(m)
    e3_min2 = np.empty(m)
    step = max(1, TRIPLET_CHUNK // n**3)
    for s in range(0, m, step):
        a32 = a[s:s + step].astype(np.float32)
        ab, ac, bc = a32[:, :, :, None], a32[:, :, None, :], a32[:, None, :, :]
        zz = z[s:s + step]
        smallest = np.minimum(np.minimum(ab, ac), bc)
        two = np.minimum(np.minimum(ab * ac, ab * bc), ac * bc)
        for target, cube in ((e3_min1, smallest), (e3_min2, two)):
            over_k = (cube.reshape(len(zz), n * n, n) @ zz.astype(np.float32)[:, :, None])
            over_k = over_k.reshape(len(zz), n, n).astype(np.float64)
            target[s:s + step] = np.einsum("mij,mi,mj->m", over_k, zz, zz) / 6.0
    return e3_min1, e3_min2


def _group_correlators(z: np.ndarray, y: np.ndarray, phi: np.ndarray,
                       betas: tuple[float, ...], generalised: bool) -> dict[float, Correlators]:
    m, n = z.shape
    dphi = np.abs(phi[:, :, None] - phi[:, None, :])
    dphi = np.where(dphi > np.pi, 2.0 * np.pi - dphi, dphi)
    dr = np.sqrt((y[:, :, None] - y[:, None, :]) ** 2 + dphi**2)
    off_diagonal = ~np.eye(n, dtype=bool)
    out: dict[float, Correlators] = {}
    for beta in betas:
        a = np.where(off_diagonal, dr**beta if beta else np.ones_like(dr), 0.0)
        e2 = 0.5 * np.einsum("mi,mij,mj->m", z, a, z)
        da = z[:, :, None] * a  # D A
        e3 = np.einsum("mij,mji->m", da @ da, da) / 6.0
        e3_min1 = np.zeros(m)
        e3_min2 = np.zeros(m)
        if generalised and n >= 3:
            e3_min1, e3_min2 = _generalised_e3(z, a)
        out[beta] = Correlators(e2, e3, e3_min1, e3_min2)
    return out


def correlators(constituents: Constituents, betas: tuple[float, ...] = (0.0, 1.0, 2.0), *,
                generalised: bool = True) -> dict[float, Correlators]:
    """e2, e3, 1e3 and 2e3 of every jet for each beta (normalised by the jet's sum pT)."""
    count = len(constituents)
    result = {b: Correlators(*(np.zeros(count) for _ in range(4))) for b in betas}
    pt, y, phi = kinematics(constituents.p4)
    offsets = constituents.offsets
    for n in np.unique(constituents.counts):
        if n < 2:
            continue
        jets = np.flatnonzero(constituents.counts == n)
        rows = offsets[jets][:, None] + np.arange(n)[None, :]
        # Bound the [m, n, n] arrays too: split large groups.
        per_chunk = max(1, 2_000_000 // (n * n))
        for s in range(0, jets.size, per_chunk):
            sel, r = jets[s:s + per_chunk], rows[s:s + per_chunk]
            z = pt[r] / pt[r].sum(axis=1, keepdims=True)
            values = _group_correlators(z, y[r], phi[r], betas, generalised)
            for b, c in values.items():
                for name in ("e2", "e3", "e3_min1", "e3_min2"):
                    getattr(result[b], name)[sel] = getattr(c, name)
    return result


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    safe = denominator > 0
    return np.where(safe, numerator / np.where(safe, denominator, 1.0), 0.0)


def compute(ungroomed: Constituents, groomed: Constituents) -> np.ndarray:
    """The 16 features [jets, 16] in ``FEATURES`` order, float64."""
    if len(ungroomed) != len(groomed):
        raise ValueError(f"{len(ungroomed)} jets but {len(groomed)} groomed jets")
    c = correlators(groomed, (0.0, 1.0, 2.0))
    columns = {
        "zlogz": zlogz(ungroomed),
        "c1_b0": c[0.0].e2, "c1_b1": c[1.0].e2, "c1_b2": c[2.0].e2,
        "c2_b1": _ratio(c[1.0].e3, c[1.0].e2**2), "c2_b2": _ratio(c[2.0].e3, c[2.0].e2**2),
        "d2_b1": _ratio(c[1.0].e3, c[1.0].e2**3), "d2_b2": _ratio(c[2.0].e3, c[2.0].e2**3),
        "d2_a1_b1": _ratio(c[1.0].e3, c[1.0].e2 ** (3.0 * 1.0 / 1.0)),
        "d2_a1_b2": _ratio(c[1.0].e3, c[2.0].e2 ** (3.0 * 1.0 / 2.0)),
        "m2_b1": _ratio(c[1.0].e3_min1, c[1.0].e2), "m2_b2": _ratio(c[2.0].e3_min1, c[2.0].e2),
        "n2_b1": _ratio(c[1.0].e3_min2, c[1.0].e2**2),
        "n2_b2": _ratio(c[2.0].e3_min2, c[2.0].e2**2),
        "mass_mmdt": jet_mass(groomed),
        "multiplicity": ungroomed.counts.astype(np.float64),
    }
    return np.stack([columns[name] for name in FEATURES], axis=1)
