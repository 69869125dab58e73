"""The conditional WGAN-GP of the reference: generator, critic, gradient penalty, training.

Erdmann, Glombitza, Quast, "Precise simulation of electromagnetic calorimeter
showers using a Wasserstein Generative Adversarial Network",
Comput. Softw. Big Sci. 3 (2019) 4, arXiv:1807.01954: a generator maps a
latent vector (10 numbers) and the conditions (primary energy, impact x and
y) to the cell energies; a critic scores showers given the same conditions;
trained as a Wasserstein GAN with gradient penalty (lambda = 5), nine critic
updates per generator update, Adam with betas (0, 0.9).

The generator works on showers in units of ``response * E`` (the mean visible
energy of a shower of energy E), where all energies look alike, and scales
back to MeV at its output, so ``forward`` returns cell energies in MeV and
the zoo's model is usable as it is. Layer energies and lateral shapes come
from separate heads (see ``ShowerGenerator``).

    from erumlab.science.showers import model
    generator, critic = model.build(geometry, response=2.6)
    result = model.train(generator, critic, sample.cells, sample.energies, sample.positions,
                         iterations=5000)
    cells = model.generate(generator, [70.0] * 1000)      # (1000, 7, 12, 15) MeV
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn as tnn

from erumlab.science import nn
from erumlab.science.device import select_device
from erumlab.science.showers.flow import LayerFlow
from erumlab.science.showers.geometry import get
from erumlab.science.showers.metrics import (
    FIDELITY_TARGETS,
    classifier_auc,
    classifier_inputs,
    high_level_features,
    layer_centres_and_widths,
    layer_energies,
)

ENERGY_SCALE_GEV = 100.0
LATENT_REFERENCE_GEV = 50.0  # with stochastic_latent, the latent vector counts fully here
GATE_TEMPERATURE = 0.3  # of the Gumbel-sigmoid relaxation of the sparse gate
GATE_RANK = 64  # the gate's head reads the trunk through this many numbers (generation cost +16 %)
LATERAL_WIDTHS_MM = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # the impact-centred lateral basis
# Showers per generation batch on a CPU: each step's tensors (512 x 1260 floats, 2.5 MB) stay in
# the caches, where batches of 8192 stream 40 MB through memory at every step (with the gate and
# the basis 1.6-1.8x slower than 512, 4096 1.1-1.6x; 1024 as fast; also the best of 64-2048 for
# fine-24x20x20; bench/calo_wgan_bench.py prints the ratio to 8192)
CPU_BATCH = 512
ACCELERATOR_BATCH = 16384
REFERENCE_RECIPE = {"latent_dim": 10, "gp_lambda": 5.0, "n_critic": 9, "betas": (0.0, 0.9)}
# With select_classifier: states whose moment score (mean and resolution at the training energies,
# 1 = as far off as 10 % in the resolution at every energy) is at most this compete on the AUC
SELECT_MOMENT_BOUND = 1.0
# With share_noise the exponent a of each hit's draw in its share is 0.9 tanh(gain * parameter):
# Adam moves a parameter by about the learning rate per step, which would take a from 0.2 to
# 0.3 in ~1000 steps at lr 1e-4 (gain 1); with this gain in ~50
SHARE_POWER_GAIN = 20.0
# With axis_shift (as ``build`` makes it) each layer's axis spread is also scaled by
# exp(gain * parameter): the head's bias alone moves the spread by at most ~0.3 mm in 3000
# steps at lr 1e-4, where trained spreads went to 0.3-2.8 times their start
AXIS_SPREAD_GAIN = 20.0
# With flow_hits (as ``build`` makes it) each hit carries at least the smallest deposit of a
# charged particle crossing the active plane, a MIP's most probable deposit less this many
# Landau widths (0.068 MeV in silicon), not just the readout threshold (0.042 MeV): simulated
# cells never read less (5 % quantile 0.09-0.10 MeV), generated ones did (1-6 % below 0.06)
HIT_FLOOR_MIP_WIDTHS = 3.0
# Generation with flow_hits places the hits on a CPU with the compiled kernel of
# ``placement`` (the same draw; off: the PyTorch operations, which a GPU uses)
COMPILED_PLACEMENT = True


def _mlp(widths: list[int], final: tnn.Module | None = None) -> tnn.Sequential:
    stack: list[tnn.Module] = []
    for index, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        stack.append(tnn.Linear(int(a), int(b)))
        if index < len(widths) - 2:
            stack.append(tnn.LeakyReLU(0.2))
    if final is not None:
        stack.append(final)
    return tnn.Sequential(*stack)


def conditions_tensor(energies_gev: torch.Tensor, positions_mm: torch.Tensor,
                      position_scale_mm: float) -> torch.Tensor:
    """The network's view of the conditions: E / 100 GeV, log E and positions in cells."""
    e = energies_gev.reshape(-1, 1) / ENERGY_SCALE_GEV
    return torch.cat([e, torch.log(e), positions_mm.reshape(-1, 2) / position_scale_mm], dim=1)


@nn.register("calo-wgan-generator")
class ShowerGenerator(tnn.Module):
    """Latent vector + (E [GeV], x [mm], y [mm]) -> cell energies [MeV], (n, layers, rows, cols).

    A shared trunk feeds two heads: one gives the energy of each layer
    (softplus, in units of ``response * E``), the other each layer's lateral
    shape (a softmax over the layer's cells). Splitting energy and shape, as
    fast-simulation models commonly do, lets the generator set the
    longitudinal fluctuations, which make the resolution and the layer
    correlations, without fighting the noise of a thousand cells, and the
    softmax spans the five decades of cell energies in a shower. Cells are
    non-negative by construction and zero-suppressed like the simulation's
    readout (below half a MIP).

    With ``stochastic_latent`` the latent vector enters multiplied by
    sqrt(50 GeV / E): the same latent spread then means relative
    fluctuations that fall as 1 / sqrt(E), the stochastic term of a sampling
    calorimeter's resolution, which the network would otherwise have to
    learn from the critic's weak second-order signal (it can still correct it).

    With ``sparse_gate`` a third head gives each cell a probability p to
    fire in this shower; a cell fires with that probability (a Bernoulli
    draw, relaxed for the gradient as a Gumbel-sigmoid at temperature 0.3,
    hard in the forward pass) and then carries its expected energy / p, so
    the mean is unchanged. Without it a softmax can widen a shower only by
    raising many halo cells a little; simulated halos are a few MIP-sized
    deposits in otherwise empty cells, which the gate lets the generator make.
    The draws take ``uniform`` noise (one number per cell) if given, else
    the global torch generator's; without gradients (generation) the draw is
    the same comparison fused into one, u > 1 - p. The gate's head reads
    the trunk through ``gate_rank`` numbers (0: all 512), which keeps its cost
    at a seventh of the network's instead of nearly a half. With
    ``gate_renorm`` the fired cells of each layer are rescaled to the layer's
    energy: the gate then decides where in a layer the energy lies, not how
    much there is, so the layer energies (and the resolution) stay those the
    layer head learnt from the latent vector; independent per-cell draws
    would otherwise add fluctuations the simulation does not have.
    With ``gate_poisson`` the firing probability is that of at least one
    deposit, p = 1 - exp(-lambda), lambda = the cell's expected energy / a
    deposit size learnt per layer (starting at a MIP), times exp of the
    gate head's correction: faint halo cells then fire rarely and carry
    about one deposit (e / p -> the deposit size), as in the simulation,
    instead of e / p growing without bound as p falls; and the probability
    follows the lateral shape, hence the impact point, by construction.
    The layer energies in the rate carry no gradient: they learn from the
    critic's view of the showers, not from what their size does to the
    draws (with that gradient the layer energies and the resolution went
    astray). ``build`` pairs it with ``readout_renorm``.

    With ``readout_renorm`` each layer's cells are scaled, after the
    readout's zero suppression, to the layer head's energy: the read-out
    layer sums are then exactly the layer head's, however many faint cells
    the threshold removed (a factor >= 1, so no surviving cell falls below
    it; a layer with nothing above the threshold stays empty).

    With ``lateral_basis`` each layer's shape is a mixture of Gaussians of
    fixed widths (``LATERAL_WIDTHS_MM``) centred on the impact point plus a
    per-layer offset, integrated over the cells, the mixture weights and
    offsets read from the trunk, times exp of the cell head's free
    correction, normalised per layer (a softmax of the correction plus the
    log of the mixture). The shower then follows the impact point by
    construction, where a softmax over fixed cells has to learn it cell by
    cell. With ``cell_rank`` the cell head reads the trunk through that many
    numbers (0: all 512), which makes it cheaper.

    With ``layer_flow`` the layer energies come from a normalising flow
    (``flow.LayerFlow``) fit by maximum likelihood to the simulated showers'
    read-out layer energies, as CaloFlow splits a shower (arXiv:2106.05285),
    instead of from a head of the trunk: the GAN then learns the shapes
    given the layer energies, which the trunk reads besides the latent
    vector and the conditions, and the longitudinal fluctuations, the layer
    correlations and the resolution are the flow's. The latent vector grows
    by one number per layer, the flow's noise (its first numbers), so a
    shower is still one standard normal vector and the conditions.

    With ``flow_hits`` (with ``layer_flow``, instead of ``sparse_gate``) the
    flow also gives each layer's number of hit cells N, jointly with the
    layer energies, and exactly N cells fire: drawn without replacement with
    chances following the layer's shape times exp of a gate head's
    correction (the Gumbel top-N trick, relaxed for the gradient as the
    sparse gate is), each carrying a least energy and a share of the rest of
    the layer's energy in proportion to its shape. The least energy is the
    readout threshold, or (``hit_floor_mev``, as ``build`` makes it) a
    crossing particle's smallest deposit, 0.068 MeV in silicon: simulated
    cells never read less (the threshold is 0.042 MeV), and with the
    threshold as the floor 1-6 % of the generated hits did, which the
    classifier test saw (0.776 -> 0.732 at 500 iterations in one run). The layer energies, the
    hit counts and how they go together are then the flow's, learnt by
    maximum likelihood; the GAN places the hits and shares the energy. The
    read-out layer sums are the flow's energies by construction. With the
    lateral basis the shapes then stay centred on the impact point (no
    per-layer offsets): learnt offsets drifted there (5.6 mm in the first
    layer after 1500 iterations; the centres' group AUC 0.98 against 0.69
    without them at 1000), while the showers' centres fluctuate about as
    simulated by where their hits fall.

    With ``share_noise`` (with ``flow_hits``) each hit's share of the rest
    is also multiplied by X^-a, X the hit's own exponential draw of its
    Gumbel key and a learnt per layer (0.9 tanh of a parameter, from 0.2,
    which makes a core cell's energy fluctuate by ~25 %):
    cells then fluctuate cell by cell as deposits do (for a > 0 with the
    long upper tail of a sampling calorimeter's cell energies), where the
    shares alone follow the shape smoothly and a shower's centre and width
    vary only with where its few marginal hits fall. It reuses the draw (no
    further random numbers); a marginal hit (one with a small X) carries
    more for a > 0, less for a < 0.

    With ``axis_shift`` (with ``lateral_basis`` and ``flow_hits``) the shower's
    axis is displaced, in every layer the same direction: two more standard
    normal numbers of the latent vector (after the flow's), times a spread
    per layer read from the trunk (softplus, from ~1 mm), with ``axis_gain``
    (as ``build`` makes it) times exp(gain * a parameter per layer), which
    ``fit_axis_spread`` sets before the training and the training moves (the
    head's bias alone moves at the learning rate's pace). Simulated showers'
    centres of energy wander together: in layers 0-3 their offsets from the
    impact point correlate by 0.8-0.94 (2.4, 1.8, 1.4 mm at every energy),
    where hits placed layer by layer around the impact point scatter
    independently. The displacement is centred by construction (symmetric
    noise the trunk does not read), so it cannot drift off the impact point
    as learnt offsets did.

    ``response`` is the mean visible MeV per GeV of primary energy of the
    training sample; ``position_scale_mm`` the cell size that positions are
    measured in. ``forward(latent, conditions)`` takes the raw conditions.
    """

    def __init__(self, *, geometry: str = "hgcal-7x12x15", latent_dim: int = 10,
                 hidden: list[int] | None = None, response: float = 2.6,
                 position_scale_mm: float = 10.0, stochastic_latent: bool = False,
                 sparse_gate: bool = False, gate_renorm: bool = False,
                 gate_rank: int = 0, lateral_basis: bool = False, cell_rank: int = 0,
                 gate_poisson: bool = False, readout_renorm: bool = False,
                 layer_flow: bool = False, flow_hits: bool = False,
                 share_noise: bool = False, axis_shift: bool = False,
                 axis_gain: float = 0.0, hit_floor_mev: float = 0.0) -> None:
        super().__init__()
        geo = get(geometry)
        self.geometry_name = geo.name
        self.shape = geo.shape
        self.response = float(response)
        self.position_scale_mm = float(position_scale_mm)
        self.threshold_mev = float(geo.threshold_mev)
        # with flow_hits the least a hit carries [MeV]; the threshold where smaller (0: generators
        # saved before it rebuild as they were)
        self.hit_floor_mev = check_hit_floor(hit_floor_mev, flow_hits)
        self.mip_mev = float(geo.mip_mpv_mev)
        if int(latent_dim) < 1 or self.response <= 0:
            raise ValueError("latent_dim must be positive and response > 0")
        self.layer_flow = bool(layer_flow)
        self.flow_hits = bool(flow_hits)
        if self.flow_hits and not (self.layer_flow and not sparse_gate):
            raise ValueError("flow_hits takes the hit counts from the layer flow and places "
                             "them itself: it needs layer_flow and replaces sparse_gate")
        self.share_noise = bool(share_noise)
        if self.share_noise and not self.flow_hits:
            raise ValueError("share_noise varies how a layer's energy is shared among the hits "
                             "flow_hits places: it needs flow_hits")
        if self.share_noise:  # a per layer, 0.9 tanh(SHARE_POWER_GAIN * parameter), from 0.2
            self.share_power = tnn.Parameter(torch.full(
                (geo.layers,), float(np.arctanh(0.2 / 0.9)) / SHARE_POWER_GAIN))
        # the latent vector a user draws: with the flow, its first numbers are the flow's
        self.flow_dim = geo.layers * (2 if self.flow_hits else 1) if self.layer_flow else 0
        self.axis_shift = bool(axis_shift)
        if self.axis_shift and not (lateral_basis and self.flow_hits):
            raise ValueError("axis_shift moves the lateral basis of a generator with flow_hits: "
                             "it needs lateral_basis and flow_hits")
        # with axis_shift two numbers after the flow's displace the shower's axis
        self.axis_dim = 2 if self.axis_shift else 0
        # 0: the spread is the head's alone (generators saved before the gain rebuild so)
        self.axis_gain = check_axis_gain(axis_gain, self.axis_shift)
        if self.axis_gain:  # per layer, the spread times exp(axis_gain * parameter), from 1
            self.axis_scale = tnn.Parameter(torch.zeros(geo.layers))
        self.latent_dim = int(latent_dim) + self.flow_dim + self.axis_dim
        widths = [int(latent_dim) + 4 + self.flow_dim, *(hidden or [128, 512])]
        self.trunk = tnn.Sequential(_mlp(widths), tnn.LeakyReLU(0.2))
        if self.layer_flow:  # the layer energies come from the flow; the trunk reads them
            self.flow = LayerFlow(geo.layers, self.threshold_mev, hits=self.flow_hits,
                                  cells_per_layer=geo.rows * geo.cols)
        else:
            self.layer_head = tnn.Linear(widths[-1], geo.layers)
        self.cell_rank = int(cell_rank)
        if self.cell_rank < 0:
            raise ValueError("cell_rank must be 0 (full) or positive")
        self.cell_basis = (tnn.Linear(widths[-1], self.cell_rank, bias=False) if self.cell_rank
                           else tnn.Identity())
        self.cell_head = tnn.Linear(self.cell_rank or widths[-1], geo.cells)
        self.stochastic_latent = bool(stochastic_latent)
        self.lateral_basis = bool(lateral_basis)
        if self.lateral_basis:
            k = len(LATERAL_WIDTHS_MM)
            xc, yc = geo.cell_centres_mm()
            half = 0.5 * geo.cell_mm
            self.register_buffer("basis_sigma", torch.tensor(LATERAL_WIDTHS_MM))
            self.register_buffer("edges_x", torch.tensor(np.append(xc - half, xc[-1] + half),
                                                         dtype=torch.float32))
            self.register_buffer("edges_y", torch.tensor(np.append(yc - half, yc[-1] + half),
                                                         dtype=torch.float32))
            self.mix_head = tnn.Linear(widths[-1], geo.layers * k)
            # with flow_hits the shapes stay centred on the impact point (no offsets: below)
            self.offset_head = (None if self.flow_hits
                                else tnn.Linear(widths[-1], geo.layers * 2))
            if self.axis_shift:  # each layer's displacement per unit of the axis noise [mm]
                self.axis_head = tnn.Linear(widths[-1], geo.layers)
            with torch.no_grad():
                self.mix_head.weight.mul_(0.1)
                self.mix_head.bias.zero_()
                if self.axis_shift:  # from ~1 mm in every layer
                    self.axis_head.weight.mul_(0.01)
                    self.axis_head.bias.fill_(float(np.log(np.expm1(1.0))))
                if self.offset_head is not None:
                    self.offset_head.weight.mul_(0.01)
                    self.offset_head.bias.zero_()
        self.readout_renorm = bool(readout_renorm)
        self.sparse_gate = bool(sparse_gate)
        self.gate_poisson = bool(gate_poisson)
        # Defaults are the first gate's (full head, no renormalisation), so generators saved
        # before these options existed rebuild as they were; ``build`` picks today's.
        self.gate_renorm = bool(gate_renorm)
        self.gate_rank = int(gate_rank)
        if self.gate_rank < 0:
            raise ValueError("gate_rank must be 0 (full) or positive")
        if gate_poisson and not self.sparse_gate:
            raise ValueError("gate_poisson shapes the sparse gate: it needs sparse_gate")
        if self.sparse_gate or self.flow_hits:
            # sparse gate: starts with every cell firing in 95 % of the showers, close to no
            # gate; flow hits: the head corrects the shape's log chances, from none
            self.gate_basis = (tnn.Linear(widths[-1], self.gate_rank, bias=False)
                               if self.gate_rank else tnn.Identity())
            self.gate_head = tnn.Linear(self.gate_rank or widths[-1], geo.cells)
            with torch.no_grad():
                self.gate_head.weight.mul_(0.1)
                # Poisson: the head corrects the expected number of deposits; starts at none
                self.gate_head.bias.fill_(0.0 if self.gate_poisson or self.flow_hits else 3.0)
            if self.gate_poisson:  # log of each layer's deposit size [MeV], starting at a MIP
                self.log_quantum = tnn.Parameter(torch.full((geo.layers,), float(np.log(self.mip_mev))))

    def _axis_fractions(self, edges: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """(n, m) centres [mm] -> (n, m, K, cells along the axis): Gaussian cell fractions."""
        # Phi(hi) - Phi(lo) through erf: absolute errors of ~1e-7 of the layer's energy, far below
        # the readout threshold, at a third of the cost of differences of tails
        cdf = torch.special.erf((edges - centre[:, :, None, None])
                                * (0.7071067811865476 / self.basis_sigma[:, None]))
        return 0.5 * (cdf[..., 1:] - cdf[..., :-1])

    def lateral_components(self, h: torch.Tensor, positions_mm: torch.Tensor,
                           axis_noise: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The lateral basis's mixture weights (n, layers, K) and cell fractions along x and y,
        (n, layers, K, cols) and (n, layers, K, rows); without per-layer offsets or an axis
        shift every layer is centred on the impact point and the fractions are (n, 1, K, ...),
        once per shower. ``axis_noise`` (n, 2), with ``axis_shift``: the shower axis's
        displacement, in units of each layer's learnt spread."""
        layers = self.shape[0]
        k = len(self.basis_sigma)
        centre = positions_mm[:, None, :]
        if self.offset_head is not None:
            centre = centre + self.position_scale_mm * self.offset_head(h).reshape(-1, layers, 2)
        if self.axis_shift:
            if axis_noise is None:
                raise ValueError("a generator with axis_shift needs the axis noise")
            spread = tnn.functional.softplus(self.axis_head(h))  # (n, layers) [mm]
            if self.axis_gain:
                spread = spread * torch.exp(self.axis_gain * self.axis_scale)
            centre = centre + spread[:, :, None] * axis_noise[:, None, :]
        fx = self._axis_fractions(self.edges_x, centre[..., 0])
        fy = self._axis_fractions(self.edges_y, centre[..., 1])
        weights = torch.softmax(self.mix_head(h).reshape(-1, layers, k), dim=2)
        return weights, fx, fy

    def lateral_profiles(self, h: torch.Tensor, positions_mm: torch.Tensor,
                         axis_noise: torch.Tensor | None = None) -> torch.Tensor:
        """(n, layers, rows * cols): per layer a mixture of Gaussians around the impact point
        (displaced along the shower's axis with ``axis_shift``)."""
        layers, rows, cols = self.shape
        weights, fx, fy = self.lateral_components(h, positions_mm, axis_noise)
        profile = torch.matmul((weights[..., None] * fy).transpose(-1, -2), fx)
        return profile.reshape(-1, layers, rows * cols)

    @torch.no_grad()
    def fit_lateral_basis(self, cells: torch.Tensor, positions_mm: torch.Tensor) -> None:
        """Mixture weights of each layer's mean shape (a weighted non-negative least-squares fit)."""
        from scipy.optimize import nnls

        layers, rows, cols = self.shape
        k = len(self.basis_sigma)
        shapes = cells.reshape(len(cells), layers, rows * cols).double()
        shapes = (shapes / shapes.sum(dim=2, keepdim=True).clamp_min(1e-12)).mean(dim=0)
        centre = positions_mm[:, None, :].expand(-1, layers, 2).float()
        fx = self._axis_fractions(self.edges_x, centre[..., 0])[:, 0]
        fy = self._axis_fractions(self.edges_y, centre[..., 1])[:, 0]
        basis = (fy[..., :, None] * fx[..., None, :]).reshape(len(cells), k, -1).double().mean(0)
        bias = []
        for layer in range(layers):
            target = shapes[layer]
            weight = 1.0 / torch.sqrt(target + 1e-4)
            w, _ = nnls((basis.T * weight[:, None]).numpy(), (target * weight).numpy())
            w = w / max(w.sum(), 1e-12)
            bias.append(np.log(w + 1e-3))
        self.mix_head.bias.copy_(torch.tensor(np.concatenate(bias), dtype=torch.float32))

    @torch.no_grad()
    def fit_axis_spread(self, cells: torch.Tensor, conditions: torch.Tensor,
                        layer_mev: torch.Tensor, layer_hits: torch.Tensor, rounds: int = 5,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Start each layer's axis spread where the showers' centres of energy wander from the
        impact point as far as the simulated ones do.

        ``cells`` (n, cells) simulated showers (any scale), ``conditions`` (n, 3)
        raw, ``layer_mev`` and ``layer_hits`` (n, layers) theirs: the generator
        makes showers with those layer energies and hit counts, the spread's
        parameter (``axis_gain``) moves by the log of the ratio of the
        simulated to the generated wander (at most a factor 3 per round) for
        ``rounds`` rounds, on the same draws. Most of the wander is the 10 mm
        cells' discretisation, the same in simulated and generated showers and
        in every layer; from the head's ~1 mm in every layer the fit narrowed
        the spread of layers 1-2 (x0.5-0.6) and widened the deep layers'
        (x1.7-4.1) on the template's sample. Returns the simulated and the last
        generated wander per layer [mm] (the RMS of the offset in x and y).
        """
        if not self.axis_gain:
            raise ValueError("fit_axis_spread sets the parameter of axis_gain: the generator "
                             "has none (axis_shift with axis_gain > 0)")
        layers, rows, cols = self.shape
        impact = conditions[:, 1:3].cpu().double().numpy()

        def wander(showers: torch.Tensor) -> np.ndarray:
            # the classifier test's centres, of the layers that read something
            showers = showers.reshape(-1, layers, rows, cols).cpu().double().numpy()
            cx, cy, _, _ = layer_centres_and_widths(showers, self.geometry_name)
            offsets = np.stack([cx - impact[:, :1], cy - impact[:, 1:]], axis=-1)
            offsets[layer_energies(showers) <= 0] = np.nan
            return np.sqrt(0.5 * np.nanvar(offsets, axis=0).sum(axis=-1))

        simulated = wander(cells)
        rng = torch.Generator(device="cpu").manual_seed(seed)
        latent = torch.randn(len(cells), self.latent_dim, generator=rng).to(cells.device)
        uniform = torch.rand(len(cells), rows * cols * layers, generator=rng).to(cells.device)
        generated = simulated
        for _ in range(int(rounds)):
            generated = wander(self.normalised(latent, conditions, uniform, layer_mev=layer_mev,
                                               layer_hits=layer_hits))
            step = np.clip(np.log(np.maximum(simulated, 1e-3) / np.maximum(generated, 1e-3)),
                           -np.log(3.0), np.log(3.0))
            self.axis_scale.add_(torch.as_tensor(step / self.axis_gain, dtype=torch.float32,
                                                 device=self.axis_scale.device))
        return simulated, generated

    @torch.no_grad()
    def initialise_output(self, mean_cells: torch.Tensor) -> None:
        """Start from the mean training shower: head biases give its layer energies and shapes.

        With random heads the first hundreds of iterations would only learn
        the overall scale and the shower's core; starting at the mean spares them.
        """
        layers, rows, cols = self.shape
        mean = mean_cells.reshape(layers, rows * cols).double().clamp_min(0)
        layer_energy = mean.sum(dim=1).clamp_min(1e-6)
        fractions = mean / layer_energy[:, None]
        self.cell_head.weight.mul_(0.1)
        if not self.layer_flow:
            self.layer_head.weight.mul_(0.1)
            # softplus^-1(y) = log(expm1(y))
            self.layer_head.bias.copy_(torch.log(torch.expm1(layer_energy)).float())
        if self.lateral_basis:  # the basis carries the mean shape; the cell head corrects it
            self.cell_head.bias.zero_()
        else:
            self.cell_head.bias.copy_(torch.log(fractions.clamp_min(1e-7)).reshape(-1).float())

    def normalised(self, latent: torch.Tensor, conditions: torch.Tensor,
                   uniform: torch.Tensor | None = None, with_hits: bool = False,
                   layer_mev: torch.Tensor | None = None, layer_hits: torch.Tensor | None = None,
                   output_scale: torch.Tensor | None = None, hit_seed: int | None = None
                   ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Cells in units of response * E, flattened: what the critic sees.

        ``with_hits`` (training with the gate only) returns besides the hit
        cells per layer, (n, layers): exactly the count in the forward pass;
        the gradient reaches the gate's firing probabilities, as if each
        cell that would pass the threshold were counted with its relaxed draw.
        ``layer_mev`` (with ``layer_flow`` only), (n, layers): the layer
        energies [MeV] to give the showers instead of the flow's (training
        gives those of simulated showers); ``layer_hits`` (with ``flow_hits``,
        and then needed with ``layer_mev``), (n, layers): their hit cells.
        ``output_scale`` (with ``flow_hits`` only), (n, 1): a factor per shower
        for the cells returned (``forward``'s MeV per unit), which generation
        folds into the hits' energies instead of a pass over the cells.
        ``hit_seed``: where the compiled placement draws the hits' uniforms itself
        (``compiled_placement``, no ``uniform`` given), the seed of its stream
        (default: one from PyTorch's global generator); elsewhere unused.
        """
        layers, rows, cols = self.shape
        cond = conditions_tensor(conditions[:, 0], conditions[:, 1:3], self.position_scale_mm)
        unit = conditions[:, :1] * self.response  # MeV per normalised unit
        if self.layer_flow:
            flow_noise, latent = latent[:, :self.flow_dim], latent[:, self.flow_dim:]
        axis_noise = None
        if self.axis_shift:
            axis_noise, latent = latent[:, :2], latent[:, 2:]
        if self.layer_flow:
            if layer_mev is None:
                with torch.no_grad():  # the flow learns by its own likelihood (LayerFlow.fit)
                    drawn = self.flow.sample(flow_noise, conditions[:, 0])
                layer_mev, layer_hits = drawn if self.flow_hits else (drawn, None)
            elif self.flow_hits and layer_hits is None:
                raise ValueError("a generator with flow_hits given layer_mev needs layer_hits")
            # the trunk reads them as the flow's standardised numbers
            cond = torch.cat([cond, self.flow.standardised(layer_mev, layer_hits)], dim=1)
        elif layer_mev is not None:
            raise ValueError("layer_mev is given to a generator with layer_flow only")
        if self.stochastic_latent:
            latent = latent * torch.sqrt(LATENT_REFERENCE_GEV / conditions[:, :1])
        h = self.trunk(torch.cat([latent, cond], dim=1))
        # layer energies in units of response * E: the flow's (given), or the layer head's
        energy = (layer_mev / unit if self.layer_flow
                  else tnn.functional.softplus(self.layer_head(h)))
        logits = self.cell_head(self.cell_basis(h)).reshape(-1, layers, rows * cols)
        differentiable = torch.is_grad_enabled()  # training's generator step; not generation
        threshold = self.threshold_mev / unit
        if output_scale is not None and not self.flow_hits:
            raise ValueError("output_scale goes with flow_hits")
        if not differentiable and self.compiled_placement(logits.device):
            return self._place_hits_compiled(h, logits, conditions[:, 1:3], axis_noise, energy,
                                             layer_hits, unit, uniform, output_scale, hit_seed)
        # The renormalised gate scales each layer to its energy after the draw; scaling it here
        # too would cancel out and cost two passes over the cells.
        # (The Poisson gate needs each cell's expected energy before the draw.)
        scaled_later = self.sparse_gate and self.gate_renorm and not self.gate_poisson
        if self.lateral_basis:  # softmax(logits + log profile), without the logarithm
            cells = torch.exp(logits - logits.amax(dim=2, keepdim=True))
            cells = cells * self.lateral_profiles(h, conditions[:, 1:3], axis_noise)
            if self.flow_hits:  # the hits' chances and shares: both unchanged by a factor
                pass  # per layer, so the shape is left unnormalised (two passes fewer)
            elif not scaled_later:
                cells = cells * (energy / cells.sum(dim=2).clamp_min(1e-30))[:, :, None]
        else:
            cells = torch.softmax(logits, dim=2)
            if not scaled_later and not self.flow_hits:
                cells = cells * energy[:, :, None]
        if self.flow_hits:
            cells = self._place_hits(h, cells, energy, layer_hits, unit, uniform,
                                     differentiable)
            return cells if output_scale is None else cells * output_scale
        cells = cells.reshape(len(h), -1)
        if with_hits and not (self.sparse_gate and differentiable):
            raise ValueError("with_hits needs a generator with sparse_gate, in training")
        expected = cells  # each cell's expected share, before the gate
        if self.sparse_gate:
            # Bounded: at p = sigmoid(-88) = 0 a fired cell would carry 0 / 0 (a NaN that ends
            # training for good); p >= sigmoid(-15) = 3e-7 keeps every cell's carried energy finite.
            logit = self.gate_head(self.gate_basis(h)).clamp(-15.0, 15.0)
            if self.gate_poisson:
                # p = 1 - exp(-lambda), lambda = expected MeV / deposit size, corrected by the head
                per_layer = unit / torch.exp(self.log_quantum)  # (n, layers): 1 / deposit size
                if differentiable and not self.layer_flow:  # the same rate, but the layer
                    # energies learn from the critic
                    per_layer = per_layer * (energy.detach() / energy)  # alone, not the draws
                    # (the flow's energies have no gradient here, and may be 0)
                rate = cells.reshape(-1, layers, rows * cols) * per_layer[:, :, None]
                rate = (rate.reshape(len(h), -1) * torch.exp(logit)).clamp_min(1e-12)
                p = -torch.expm1(-rate)
                if differentiable:  # generation needs p only
                    logit = rate + torch.log(p)  # log(p / (1 - p))
            else:
                p = torch.sigmoid(logit)
            u = torch.rand_like(logit) if uniform is None else uniform
            if differentiable:
                u = u.clamp(1e-6, 1 - 1e-6)
                soft = torch.sigmoid((logit + torch.log(u) - torch.log1p(-u)) / GATE_TEMPERATURE)
                gate = (soft > 0.5).to(soft.dtype) + soft - soft.detach()  # hard, straight through
                fired = cells / p  # what each cell carries when it fires
                cells = fired * gate
            else:  # no gradient needed: the same draw (soft > 1/2 <=> u > 1 - p) in a few passes
                cells = torch.where(u > 1 - p, cells / p, 0.0)
            if self.gate_renorm:
                cells = cells.reshape(-1, layers, rows * cols)
                factor = (energy / cells.sum(dim=2).clamp_min(1e-9))[:, :, None]
                cells = (cells * factor).reshape(len(h), -1)
                if with_hits:
                    fired = (fired.reshape(-1, layers, rows * cols) * factor).reshape(len(h), -1)
            if with_hits:
                counted = gate * (fired >= threshold).detach().to(gate.dtype)
                hits = counted.reshape(-1, layers, rows * cols).sum(dim=2)
        # The readout's zero suppression, in units of response * E. Straight through: the
        # forward pass suppresses, the gradient passes as if it did not, so the critic can
        # still pull cells below the threshold up (a hard mask would freeze them at zero).
        if not differentiable:
            cells = cells.masked_fill_(cells < threshold, 0.0)
        else:
            cells = cells + (cells * (cells >= threshold) - cells).detach()
        if self.readout_renorm:  # the read-out layer sums are the layer head's energies
            cells = cells.reshape(-1, layers, rows * cols)
            total = cells.sum(dim=2, keepdim=True)
            seen = total > 0  # a layer with nothing above the threshold stays empty
            factor = torch.where(seen, energy[:, :, None] / torch.where(seen, total, 1.0), 1.0)
            cells = cells * factor
            if self.layer_flow:
                # The flow's layer energy is read out even where nothing passed the threshold:
                # it lies in the layer's most likely cell. (Left empty, such layers are a
                # state the training does not leave: the last layer read nothing in 22 % of the
                # showers after 1000 iterations, against 0.2 % simulated.)
                top = expected.reshape(-1, layers, rows * cols).argmax(dim=2, keepdim=True)
                spot = torch.zeros_like(cells).scatter(2, top, energy[:, :, None])
                cells = torch.where(seen | (energy[:, :, None] <= 0), cells, spot)
            cells = cells.reshape(len(h), -1)
        if not differentiable:
            return cells
        return (cells, hits) if with_hits else cells

    def _hit_floors(self, energy: torch.Tensor, count: torch.Tensor,
                    unit: torch.Tensor) -> torch.Tensor:
        """(n, layers): what each placed hit carries at least, in units of response * E
        (``unit`` (n, 1) [MeV] each): a hair above the readout threshold (so that the readout
        keeps it), or with ``hit_floor_mev`` that much where the layer's ``energy`` affords it
        for each of its ``count`` hits, else their even share (the flow's energies pay for
        their hits at the threshold, not always at the floor: the layer keeps its energy)."""
        hair = 1.0 + 1e-4
        threshold = (self.threshold_mev * hair / unit).expand_as(energy)
        if self.hit_floor_mev <= self.threshold_mev:
            return threshold
        even = energy / count.clamp_min(1).to(energy.dtype)
        return torch.maximum(threshold, torch.minimum(self.hit_floor_mev * hair / unit, even))

    def _place_hits(self, h: torch.Tensor, shape: torch.Tensor, energy: torch.Tensor,
                    hits: torch.Tensor, unit: torch.Tensor, uniform: torch.Tensor | None,
                    differentiable: bool) -> torch.Tensor:
        """``flow_hits``: exactly ``hits`` cells of each layer fire; normalised flattened cells.

        ``shape`` (n, layers, cells), each layer's up to a factor; ``energy`` and
        ``hits`` (n, layers), in units of response * E; ``unit`` (n, 1) that
        unit [MeV] (for what a hit carries at least: ``_hit_floors``).
        """
        n, layers, per_layer = shape.shape
        # The head's correction is centred per layer: adding the same to every cell of a layer
        # changes no draw of N of them, but the relaxed gradient would drive it to the bounds.
        correction = self.gate_head(self.gate_basis(h)).reshape(shape.shape)
        u = torch.rand_like(shape) if uniform is None else uniform.reshape(shape.shape)
        # each hit carries its floor and a share of the rest of the layer's energy in
        # proportion to its shape
        count = hits.long().clamp(0, per_layer)[:, :, None]
        floor = self._hit_floors(energy, count[:, :, 0], unit)[:, :, None]
        rest = (energy[:, :, None] - count * floor).clamp_min(0.0)
        power = self._share_power(layers, shape.device)
        correction = (correction - correction.mean(dim=2, keepdim=True)).clamp_(-15.0, 15.0)
        exponential = u.clamp(1e-7, 1.0 - 1e-7).log_().neg_()  # standard exponential draws
        # Gumbel keys: the N largest are a draw of N cells without replacement, each with a
        # chance following shape * exp(correction) (Kool et al., arXiv:1903.06059). The chances
        # follow the shape, but the relaxed draw's gradient (a biased straight-through estimate)
        # reaches the gate head only: through the shape it moved the showers' centres off the
        # impact point (5.6 mm in the first layer after 1500 iterations, the centres' group
        # AUC 0.98); the shape learns from how the energy is shared among the hits.
        if differentiable:
            key = (torch.log(shape.detach().clamp_min(1e-30)) + correction
                   - torch.log(exponential))
        else:  # exp(key): the same order, in fewer passes over the cells
            key = shape.clamp_min(1e-30) * correction.exp_() / exponential
        # the N-th and (N + 1)-th largest keys: of the batch's largest N + 1, not a full sort
        # (which took a third of the generation time)
        ordered = key.detach().topk(min(per_layer, int(count.max()) + 1), dim=2).values
        last = ordered.gather(2, (count - 1).clamp_min(0))
        after = ordered.gather(2, count.clamp_max(ordered.shape[2] - 1))
        inf = torch.tensor(float("inf"), device=key.device)
        cut = torch.where(count == 0, inf,
                          torch.where(count == per_layer, -inf, 0.5 * (last + after)))
        if self.share_noise:  # each hit's share also goes with its own draw, X^-a
            shape = shape * torch.exp(power[None, :, None] * torch.log(exponential))
        if not differentiable:  # generation: the same, in few passes
            fired = key > cut
            weights = shape * fired
            scale = rest / weights.sum(dim=2, keepdim=True).clamp_min(1e-30)
            return torch.where(fired, weights.mul_(scale).add_(floor), 0.0).reshape(n, -1)
        fired = (key > cut).to(key.dtype)
        # hard in the forward pass, a sigmoid's gradient (as the sparse gate)
        soft = torch.sigmoid((key - cut) / GATE_TEMPERATURE)
        fired = fired + soft - soft.detach()
        weights = shape * fired
        weights = weights / weights.sum(dim=2, keepdim=True).clamp_min(1e-30)
        return (fired * floor + rest * weights).reshape(n, -1)

    def _share_power(self, layers: int, device: torch.device) -> torch.Tensor:
        """The exponent of each hit's draw in its share, per layer (0 without ``share_noise``)."""
        return (-0.9 * torch.tanh(SHARE_POWER_GAIN * self.share_power) if self.share_noise
                else torch.zeros(layers, device=device))

    def compiled_placement(self, device: torch.device) -> bool:
        """Whether generation (no gradient) on ``device`` places the hits in the compiled pass
        (``placement.place_hits``, which draws their uniforms itself unless given them)."""
        return self.flow_hits and torch.device(device).type == "cpu" and COMPILED_PLACEMENT

    def _place_hits_compiled(self, h: torch.Tensor, logits: torch.Tensor,
                             positions_mm: torch.Tensor, axis_noise: torch.Tensor | None,
                             energy: torch.Tensor, hits: torch.Tensor,
                             unit: torch.Tensor, uniform: torch.Tensor | None,
                             output_scale: torch.Tensor | None,
                             hit_seed: int | None) -> torch.Tensor:
        """``_place_hits`` for generation on a CPU: the same draw, the selection and the shares
        of each layer in one compiled pass (``placement.place_hits``), with the given
        ``uniform`` or its own from ``hit_seed``; flattened cells times ``output_scale``."""
        from erumlab.science.showers.placement import place_hits

        n, layers, per_layer = logits.shape
        # as normalised() makes it, up to a factor per layer (which changes no draw and no
        # share): the softmax is one pass where exp(logits - their largest) takes three
        shape = torch.softmax(logits, dim=2)
        if self.lateral_basis:
            shape = shape * self.lateral_profiles(h, positions_mm, axis_noise)
        correction = self.gate_head(self.gate_basis(h)).reshape(logits.shape)
        # exp of the centred correction (the kernel clamps it as the PyTorch path does)
        gain = (correction - correction.mean(dim=2, keepdim=True)).exp_()
        if uniform is None:  # drawn in the kernel: a seed from the caller or PyTorch's generator
            u = np.empty((0, 0, 0), dtype=np.float32)
            seed = (int(torch.randint(0, 2**62, (1,))) if hit_seed is None else int(hit_seed))
        else:
            u, seed = uniform.reshape(logits.shape).float().contiguous().numpy(), 0
        count = hits.long().clamp(0, per_layer)
        floor = self._hit_floors(energy, count, unit)
        rest = (energy - count * floor).clamp_min(0.0)
        if output_scale is not None:
            floor, rest = floor * output_scale, rest * output_scale
        out = torch.empty(logits.shape, dtype=torch.float32)
        def array(t: torch.Tensor) -> np.ndarray:
            return t.float().contiguous().numpy()

        place_hits(array(shape), array(gain), u, np.uint64(seed % 2**64), count.contiguous().numpy(),
                   array(floor), array(rest), array(self._share_power(layers, logits.device)),
                   self._middle_out(), out.numpy())
        return out.reshape(n, -1)

    def _middle_out(self) -> np.ndarray:
        """A layer's cells by distance from its middle (the compiled placement's scan order)."""
        if getattr(self, "_middle_out_order", None) is None:
            xc, yc = get(self.geometry_name).cell_centres_mm()
            radius = np.hypot(*np.meshgrid(xc, yc)).reshape(-1)  # row-major, as the cells
            self._middle_out_order = np.argsort(radius, kind="stable").astype(np.int64)
        return self._middle_out_order

    def forward(self, latent: torch.Tensor, conditions: torch.Tensor,
                uniform: torch.Tensor | None = None, *, hit_seed: int | None = None
                ) -> torch.Tensor:
        scale = conditions[:, :1] * self.response
        if self.flow_hits:  # generation folds the scale into the hits' energies
            cells = self.normalised(latent, conditions, uniform, output_scale=scale,
                                    hit_seed=hit_seed)
        else:
            cells = self.normalised(latent, conditions, uniform) * scale
        return cells.reshape(-1, *self.shape)


class ShowerCritic(tnn.Module):
    """Scores showers given their conditions (higher: more like simulated ones).

    It sees a shower as features: its cells, its layer sums and its total (in
    units of response * E), each divided by that feature's spread in the
    training sample (``set_scale``), and the gradient penalty is taken in that
    space. In raw units a 1-Lipschitz critic could hardly see what tells
    showers apart: a single MIP in the halo is ~1e-6 of the shower, a
    resolution-sized change of the total is spread thinly over hundreds of
    cells. Standardised, every cell and the sums count alike, which is also
    how the classifier test looks at them.

    With ``hit_counts`` it also sees the number of hit cells per layer: a
    sum of steps that a Lipschitz network of the cells can hardly form,
    while the classifier test counts them exactly. Of a gated generator's
    showers the counts come with a gradient to the firing probabilities
    (``ShowerGenerator.normalised(with_hits=True)``); of simulated ones they
    are counted here. With ``flow_hits`` the generator's showers have exactly
    the counts they are given (a simulated shower's in training): the critic
    sees no difference in the counts themselves, but how the energy lies
    given them (a shower that fires more cells is wider, in a cascade).

    With ``lateral_moments`` it also sees each layer's centre of energy and
    width in x and y [mm] (the moments the fidelity test's high-level
    classifier reads, computed the same way, the width as sqrt(variance +
    1 mm^2) so that its gradient stays finite for a layer with one hit).
    A ratio of sums and the root of a second moment are what a Lipschitz
    network of the standardised cells forms only roughly; given them, the
    critic compares how the energy lies within each layer directly, the
    part a generator with ``flow_hits`` is left to learn.
    """

    def __init__(self, geometry: str = "hgcal-7x12x15", hidden: list[int] | None = None,
                 position_scale_mm: float = 10.0, hit_counts: bool = False,
                 lateral_moments: bool = False) -> None:
        super().__init__()
        geo = get(geometry)
        self.layers = geo.layers
        self.grid = (geo.rows, geo.cols)
        self.position_scale_mm = float(position_scale_mm)
        self.hit_counts = bool(hit_counts)
        self.lateral_moments = bool(lateral_moments)
        width = (geo.cells + geo.layers + 1 + (geo.layers if self.hit_counts else 0)
                 + (4 * geo.layers if self.lateral_moments else 0))
        self.register_buffer("scale", torch.ones(width))
        xc, yc = geo.cell_centres_mm()
        # not saved: a checkpoint's critic stays loadable whatever this version adds here
        self.register_buffer("cell_x", torch.tensor(xc, dtype=torch.float32), persistent=False)
        self.register_buffer("cell_y", torch.tensor(yc, dtype=torch.float32), persistent=False)
        self.net = _mlp([width + 4, *(hidden or [256, 256]), 1])

    def moments(self, by_layer: torch.Tensor, layer_sums: torch.Tensor) -> list[torch.Tensor]:
        """Per layer the centre of energy (x, y) and width (x, y) [mm]; an empty layer's are 0."""
        grid = by_layer.reshape(*by_layer.shape[:2], *self.grid)
        safe = torch.where(layer_sums > 0, layer_sums, 1.0)
        out = []
        for profile, at in ((grid.sum(dim=2), self.cell_x), (grid.sum(dim=3), self.cell_y)):
            centre = (profile * at).sum(dim=2) / safe
            variance = (profile * at * at).sum(dim=2) / safe - centre * centre
            out += [centre, torch.sqrt(variance.clamp_min(0.0) + 1.0)
                    * (layer_sums > 0).to(variance.dtype)]
        return [out[0], out[2], out[1], out[3]]

    def raw_features(self, cells: torch.Tensor, hits: torch.Tensor | None = None) -> torch.Tensor:
        by_layer = cells.reshape(len(cells), self.layers, -1)
        layer_sums = by_layer.sum(dim=2)
        features = [cells, layer_sums, layer_sums.sum(dim=1, keepdim=True)]
        if self.hit_counts:  # given by the generator (with a gradient) or counted here
            features.append((by_layer > 0).sum(dim=2).to(cells.dtype) if hits is None else hits)
        if self.lateral_moments:
            features += self.moments(by_layer, layer_sums)
        return torch.cat(features, dim=1)

    @torch.no_grad()
    def set_scale(self, real: torch.Tensor, floor_quantile: float = 0.05) -> None:
        """Each feature's standard deviation over ``real`` (normalised flattened cells).

        Cells that (almost) never fire get the ``floor_quantile`` of the
        others' spreads, so that one stray hit is not magnified without bound.
        """
        spread = self.raw_features(real).double().std(dim=0)
        positive = spread[spread > 0]
        floor = torch.quantile(positive, floor_quantile) if len(positive) else spread.new_ones(())
        self.scale.copy_(spread.clamp_min(float(floor)).to(self.scale.dtype))

    def features(self, cells: torch.Tensor, hits: torch.Tensor | None = None) -> torch.Tensor:
        return self.raw_features(cells, hits) / self.scale

    def score(self, features: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        cond = conditions_tensor(conditions[:, 0], conditions[:, 1:3], self.position_scale_mm)
        return self.net(torch.cat([features, cond], dim=1))

    def forward(self, cells: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(cells), conditions)


def hit_floor(geometry: str) -> float:
    """The smallest deposit [MeV] of a charged particle crossing the active plane of
    ``geometry``: a MIP's most probable deposit less ``HIT_FLOOR_MIP_WIDTHS`` Landau widths."""
    geo = get(geometry)
    return float(geo.mip_mpv_mev - HIT_FLOOR_MIP_WIDTHS * geo.mip_width_mev)


def build(geometry: str = "hgcal-7x12x15", *, response: float, latent_dim: int = 10,
          generator_hidden: list[int] | None = None, critic_hidden: list[int] | None = None,
          position_scale_mm: float | None = None, stochastic_latent: bool = True,
          sparse_gate: bool = False, gate_rank: int = GATE_RANK, gate_renorm: bool = True,
          lateral_basis: bool = False, cell_rank: int = 0, gate_poisson: bool = False,
          hit_counts: bool = False, readout_renorm: bool | None = None,
          layer_flow: bool = False, flow_hits: bool = False, share_noise: bool = False,
          axis_shift: bool = False, axis_gain: float | None = None,
          hit_floor_mev: float | None = None, lateral_moments: bool = False,
          seed: int = 0) -> tuple[ShowerGenerator, ShowerCritic]:
    """A fresh generator and critic for ``geometry`` (positions in units of its cell size).

    ``gate_rank`` and ``gate_renorm`` shape the sparse gate (see ``ShowerGenerator``)
    and count only with ``sparse_gate``; ``cell_rank`` the cell head (0: full);
    ``readout_renorm`` defaults to ``gate_poisson or layer_flow`` (with the flow, the
    read-out layer sums are then the flow's, which it learnt from read-out sums), but
    not with ``flow_hits`` (whose layer sums are the flow's by construction);
    ``hit_counts`` and ``lateral_moments`` what the critic sees besides the cells
    (see ``ShowerCritic``); ``axis_gain`` defaults to ``AXIS_SPREAD_GAIN`` with
    ``axis_shift`` (0: the spread from the head alone, as before 2026-12-07);
    ``hit_floor_mev`` to ``hit_floor(geometry)`` with ``flow_hits`` (0: the
    readout threshold, as before 2026-12-07).
    """
    torch.manual_seed(seed)
    scale = float(position_scale_mm or get(geometry).cell_mm)
    generator = ShowerGenerator(geometry=get(geometry).name, latent_dim=latent_dim,
                                hidden=generator_hidden, response=response,
                                position_scale_mm=scale, stochastic_latent=stochastic_latent,
                                sparse_gate=sparse_gate, gate_renorm=gate_renorm,
                                gate_rank=gate_rank, lateral_basis=lateral_basis,
                                cell_rank=cell_rank, gate_poisson=gate_poisson,
                                readout_renorm=((gate_poisson or (layer_flow and not flow_hits))
                                                if readout_renorm is None else readout_renorm),
                                layer_flow=layer_flow, flow_hits=flow_hits,
                                share_noise=share_noise, axis_shift=axis_shift,
                                axis_gain=((AXIS_SPREAD_GAIN if axis_shift else 0.0)
                                           if axis_gain is None else axis_gain),
                                hit_floor_mev=(hit_floor(geometry) if flow_hits and hit_floor_mev
                                               is None else float(hit_floor_mev or 0.0)))
    return generator, ShowerCritic(get(geometry).name, critic_hidden, scale, hit_counts=hit_counts,
                                   lateral_moments=lateral_moments)


def gradient_penalty(critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     real: torch.Tensor, fake: torch.Tensor,
                     conditions: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x critic(x)||_2 - 1)^2] at random points between real and generated showers.

    The penalty of Gulrajani et al. (arXiv:1704.00028) that keeps the critic
    1-Lipschitz, which the Wasserstein distance estimate needs; ``real`` and
    ``fake`` are whatever the critic scores (here: ``ShowerCritic.features``).
    """
    alpha = torch.rand(len(real), 1, device=real.device)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    score = critic(mixed, conditions)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


@dataclass
class TrainingResult:
    iterations: int
    seconds: float
    device: str
    critic_loss: list[float] = field(default_factory=list)
    generator_loss: list[float] = field(default_factory=list)
    wasserstein: list[float] = field(default_factory=list)
    resumed_from: int = 0
    selection: list[tuple[int, float]] = field(default_factory=list)  # (iteration, moment score)
    selected_iteration: int | None = None
    selection_auc: list[tuple[int, float]] = field(default_factory=list)  # (iteration, AUC)
    diverged_at: int | None = None  # the iteration whose losses were no longer finite

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_tensors(cells: np.ndarray, energies_gev: np.ndarray, positions_mm: np.ndarray,
                     response: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised flattened cells, raw conditions) as float32 tensors."""
    energies = np.asarray(energies_gev, dtype=np.float64)
    flat = np.asarray(cells, dtype=np.float64).reshape(len(energies), -1)
    normalised = flat / (energies[:, None] * response)
    conditions = np.column_stack([energies, np.asarray(positions_mm, dtype=np.float64)])
    return (torch.as_tensor(normalised, dtype=torch.float32),
            torch.as_tensor(conditions, dtype=torch.float32))


def response_of(cells: np.ndarray, energies_gev: np.ndarray) -> float:
    """Mean visible MeV per GeV of primary energy."""
    return float(np.mean(np.asarray(cells).reshape(len(energies_gev), -1).sum(1)
                         / np.asarray(energies_gev)))


def _check_flag_option(name: str, value: float, flag: str, flag_on: bool, meaning: str) -> float:
    """``value`` if it is a valid ``name``: 0, or positive with ``flag`` on; else a ValueError
    that says what the option is (``meaning``) and what it needs."""
    if float(value) < 0 or (float(value) and not flag_on):
        raise ValueError(f"{name} {meaning}: it needs {flag} and must not be negative, "
                         f"not {value}")
    return float(value)


def check_hit_floor(floor_mev: float, flow_hits: bool) -> float:
    """``floor_mev`` if it is a valid ``hit_floor_mev`` for a generator with or without
    ``flow_hits`` (0, or positive with it), else ValueError."""
    return _check_flag_option("hit_floor_mev", floor_mev, "flow_hits", flow_hits,
                              "is the least a hit that flow_hits places carries")


def check_axis_gain(gain: float, axis_shift: bool) -> float:
    """``gain`` if it is a valid ``axis_gain`` for a generator with or without
    ``axis_shift`` (0, or positive with it), else ValueError."""
    return _check_flag_option("axis_gain", gain, "axis_shift", axis_shift,
                              "scales the spread of axis_shift")


def check_final_lr_fraction(fraction: float) -> float:
    """``train``'s ``final_lr_fraction``, or a ValueError naming what is wrong with it."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"final_lr_fraction must be in (0, 1] (1: a constant learning rate), "
                         f"not {fraction}")
    return float(fraction)


def check_average_decay(decay: float) -> float:
    """``decay`` if it is a valid ``average_decay`` (in [0, 1); 0: no average), else ValueError."""
    if not 0.0 <= float(decay) < 1.0:
        raise ValueError(f"average_decay must be in [0, 1) (0: no average), not {decay}")
    return float(decay)


def train(generator: ShowerGenerator, critic: ShowerCritic, cells: np.ndarray,
          energies_gev: np.ndarray, positions_mm: np.ndarray, *, iterations: int = 2000,
          batch_size: int = 256, n_critic: int = 9, learning_rate: float = 2e-4,
          gp_lambda: float = 5.0, device: str = "auto", seed: int = 0,
          checkpoint: Path | None = None, checkpoint_every: int = 200, progress: bool = True,
          log_every: int = 10, select_every: int = 0,
          select_showers: int = 500, average_decay: float = 0.0,
          select_classifier: bool = False, flow_steps: int | None = None,
          final_lr_fraction: float = 1.0,
          observe: Callable[[int, ShowerGenerator], None] | None = None) -> TrainingResult:
    """Train for ``iterations`` generator updates, each after ``n_critic`` critic updates.

    The recipe of the reference: Wasserstein loss with gradient penalty
    ``gp_lambda``, Adam with betas (0, 0.9). With ``checkpoint`` the state
    (both networks, both optimisers, the iteration) is saved there every
    ``checkpoint_every`` iterations and training resumes from it when the
    file exists, so a job killed at its wall-time limit loses little.

    With ``select_every`` the generator is scored every that many iterations
    (and at the end) by ``moment_score`` against up to ``select_showers``
    training showers per training energy, and the best-scoring state is the
    one returned (``selected_iteration``): adversarial training does not
    converge to a point, and the generated resolution keeps drifting (+30 %
    at 3000 iterations, -12 % at 8000 in one run). Only training energies are
    used, so a held-out energy stays a test. The scoring draws its own random
    numbers: training follows the same path with or without it.
    With ``select_classifier`` the selection also trains the two classifiers
    of the fidelity test (cells, high-level features) on the same showers
    against generated ones and takes the larger AUC, the test's figure
    (``selection_auc``, ~50 s each on two CPU cores), and keeps, of the states
    whose moment score is at most ``SELECT_MOMENT_BOUND``, the one it tells
    apart least (none within the bound: the lowest moment score, as without it).

    With ``final_lr_fraction`` below 1 both learning rates fall linearly along the run, from
    ``learning_rate`` at the first iteration to that fraction of it at the last (set from
    the iteration, so a resumed run continues the same schedule).

    With ``average_decay`` (e.g. 0.999) the generator that is scored, kept and
    returned is an exponential moving average of the trained generator's
    weights over the last ~1 / (1 - decay) iterations (Karras et al.,
    arXiv:1710.10196; Yazici et al., arXiv:1806.04498): adversarial training
    circles around an equilibrium, and the average can sit nearer to it
    than any single step (measured in docs/examples/calo-wgan.md: better at
    3000 iterations, not in two full template runs). The trained weights go on
    learning unchanged (the average is only read), and the checkpoint keeps
    both.

    A generator with ``layer_flow`` first has its flow fit to the simulated
    showers' layer energies (``flow_steps`` steps of maximum likelihood,
    default ``LayerFlow.fit``'s, ~25 s on a CPU; not again when resuming:
    the checkpoint holds it); the
    adversarial training then gives it, for every shower it makes, the layer
    energies of a simulated shower of the batch, so that the GAN learns the
    shapes given the layer energies, and the critic compares showers with
    the same layer energies. Generation (and the selection's scores) draws
    them from the flow.

    ``observe(iteration, generator)``, with ``select_every``, is called at
    every check after the scoring, with the generator that was scored (e.g.
    to follow the held-out fidelity along the training:
    bench/calo_wgan_trajectory.py). It runs on a copy of torch's random state
    (CPU and GPUs), so that whatever it draws, the training's path stays the
    same; it must not change the generator.

    Should the losses stop being finite (a NaN never goes away again),
    training stops at once, before the state is checkpointed: with the
    selection the best generator so far is returned (``diverged_at`` says
    where it stopped), without it a ``FloatingPointError`` names the iteration.
    """
    from tqdm import tqdm

    check_average_decay(average_decay)
    check_final_lr_fraction(final_lr_fraction)
    if observe is not None and select_every <= 0:
        raise ValueError("observe is called at the selection's checks: give select_every too")
    if critic.hit_counts and not (generator.sparse_gate or generator.flow_hits):
        raise ValueError("a critic with hit_counts needs a generator with sparse_gate (the "
                         "counts reach it through the gate's firing probabilities) or flow_hits "
                         "(the flow's counts, which its showers have exactly)")
    torch.manual_seed(seed)
    target = select_device(device)
    generator.to(target).train()
    critic.to(target).train()
    real_all, cond_all = training_tensors(cells, energies_gev, positions_mm, generator.response)
    real_all, cond_all = real_all.to(target), cond_all.to(target)
    # the simulated showers' read-out layer energies [MeV]: a generator with a layer flow
    # gets them in training (its shapes learn given the layer energies; the flow samples them)
    layer_all = (torch.as_tensor(np.asarray(cells, dtype=np.float32).reshape(
        len(real_all), generator.shape[0], -1).sum(axis=2), device=target)
        if generator.layer_flow else None)
    # and, for a generator with flow_hits, their hit cells per layer (the readout keeps cells
    # at or above the threshold, so every cell above zero)
    hits_all = ((real_all.reshape(len(real_all), generator.shape[0], -1) > 0).sum(dim=2).float()
                if generator.flow_hits else None)
    g_opt = torch.optim.Adam(generator.parameters(), lr=learning_rate, betas=(0.0, 0.9))
    c_opt = torch.optim.Adam(critic.parameters(), lr=learning_rate, betas=(0.0, 0.9))
    result = TrainingResult(iterations=int(iterations), seconds=0.0, device=str(target))
    start = 0
    saved = Path(checkpoint) if checkpoint is not None else None
    if saved is not None and saved.is_file():
        # Tensors and plain containers only: a checkpoint file is never unpickled.
        state = torch.load(saved, map_location=target, weights_only=True)
        try:
            generator.load_state_dict(state["generator"])
            critic.load_state_dict(state["critic"])
        except RuntimeError as error:
            raise ValueError(
                f"{saved}: this checkpoint was written by networks of another shape (another "
                f"erumlab version or other parameters); delete it to train afresh. {error}"
            ) from error
        g_opt.load_state_dict(state["generator_optimiser"])
        c_opt.load_state_dict(state["critic_optimiser"])
        start = result.resumed_from = int(state["iteration"])
        best = state.get("best")
        averaged = state.get("average")
    else:
        best = averaged = None
        if generator.layer_flow:  # by maximum likelihood, before the adversarial training
            generator.flow.to(target).fit(layer_all, cond_all[:, 0], hits=hits_all,
                                          steps=flow_steps, seed=seed)
        generator.initialise_output(real_all.mean(dim=0))
        if generator.lateral_basis:
            every = max(1, len(real_all) // 4000)  # a few thousand showers of every energy
            generator.fit_lateral_basis(real_all[::every].cpu(), cond_all[::every, 1:3].cpu())
            if generator.axis_gain:  # the spreads where the centres wander as simulated
                generator.fit_axis_spread(real_all[::every], cond_all[::every],
                                          layer_all[::every], hits_all[::every], seed=seed)
        critic.set_scale(real_all)
    average = None
    if average_decay > 0:  # a copy of the generator whose weights follow the trained ones
        average = copy.deepcopy(generator)
        if averaged is not None:
            average.load_state_dict(averaged)
        average.requires_grad_(False)
        trained_weights = [t for t in generator.state_dict().values() if t.is_floating_point()]
        average_weights = [t for t in average.state_dict().values() if t.is_floating_point()]
    judged = average if average is not None else generator  # what is scored, kept and returned
    validation = (validation_sample(cells, energies_gev, positions_mm, select_showers, seed)
                  if select_every > 0 else None)
    # Offset by the resumed iteration, so that a resumed run does not replay the same batches.
    generator_rng = torch.Generator(device="cpu").manual_seed(seed + start)
    torch.manual_seed(seed + start)
    n = len(real_all)
    batch = min(int(batch_size), n)
    started = time.perf_counter()
    bar = tqdm(range(start, int(iterations)), initial=start, total=int(iterations),
               disable=not progress, mininterval=10.0, desc="WGAN-GP")
    for iteration in bar:
        if final_lr_fraction != 1.0:
            rate = learning_rate * (1.0 - (1.0 - final_lr_fraction) * iteration
                                    / max(1, int(iterations) - 1))
            for optimiser in (g_opt, c_opt):
                for group in optimiser.param_groups:
                    group["lr"] = rate
        for _ in range(n_critic):
            index = torch.randint(n, (batch,), generator=generator_rng).to(target)
            real, cond = real_all[index], cond_all[index]
            latent = torch.randn(batch, generator.latent_dim, device=target)
            given = layer_all[index] if layer_all is not None else None
            given_hits = hits_all[index] if hits_all is not None else None
            with torch.no_grad():
                fake = critic.features(generator.normalised(latent, cond, layer_mev=given,
                                                            layer_hits=given_hits))
            real = critic.features(real)
            real_score, fake_score = critic.score(real, cond).mean(), critic.score(fake, cond).mean()
            penalty = gradient_penalty(critic.score, real, fake, cond)
            c_loss = fake_score - real_score + gp_lambda * penalty
            c_opt.zero_grad(set_to_none=True)
            c_loss.backward()
            c_opt.step()
        index = torch.randint(n, (batch,), generator=generator_rng).to(target)
        cond = cond_all[index]
        latent = torch.randn(batch, generator.latent_dim, device=target)
        given = layer_all[index] if layer_all is not None else None
        given_hits = hits_all[index] if hits_all is not None else None
        if critic.hit_counts and generator.sparse_gate:
            fake, hits = generator.normalised(latent, cond, with_hits=True, layer_mev=given)
            g_loss = -critic.score(critic.features(fake, hits), cond).mean()
        else:  # with flow_hits a critic with hit_counts counts exactly the given hits
            fake = generator.normalised(latent, cond, layer_mev=given, layer_hits=given_hits)
            g_loss = -critic.score(critic.features(fake, given_hits if critic.hit_counts
                                                   else None), cond).mean()
        if not bool(torch.isfinite(g_loss) & torch.isfinite(c_loss)):
            # a NaN or an infinity never goes away again: stop here, before it is checkpointed,
            # and return the best generator the selection kept (there is nothing else to keep)
            result.diverged_at = iteration + 1
            if best is None:
                bar.close()
                losses = float(c_loss.detach()), float(g_loss.detach())
                raise FloatingPointError(
                    f"training diverged: the losses at iteration {iteration + 1} are not finite "
                    f"(critic {losses[0]:.3g}, generator {losses[1]:.3g}); with select_every "
                    "the best generator before it would have been kept")
            break
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        if average is not None:
            with torch.no_grad():  # warm-up: at first the average forgets its random start fast
                weight = 1.0 - min(float(average_decay), (1.0 + iteration) / (10.0 + iteration))
                for averaged_weight, trained_weight in zip(average_weights, trained_weights,
                                                           strict=True):
                    averaged_weight.lerp_(trained_weight, weight)
        if iteration % log_every == 0 or iteration == iterations - 1:
            distance = float((real_score - fake_score).detach())
            result.critic_loss.append(float(c_loss.detach()))
            result.generator_loss.append(float(g_loss.detach()))
            result.wasserstein.append(distance)
            bar.set_postfix(W=f"{distance:.3f}", refresh=False)
        if validation is not None and ((iteration + 1) % select_every == 0
                                       or iteration + 1 == iterations):
            score = moment_score(judged, *validation)
            result.selection.append((iteration + 1, score))
            rank = torch.tensor([1.0, score], dtype=torch.float64)  # outside the bound: moments
            if select_classifier:
                auc = selection_auc(judged, *validation, seed=seed)
                result.selection_auc.append((iteration + 1, auc))
                if score <= SELECT_MOMENT_BOUND:
                    rank = torch.tensor([0.0, auc], dtype=torch.float64)
            if best is None or tuple(rank.tolist()) < tuple(_rank_of(best).tolist()):
                best = {"score": torch.tensor(score, dtype=torch.float64), "rank": rank,
                        "iteration": torch.tensor(iteration + 1),
                        "generator": {k: v.detach().clone()
                                      for k, v in judged.state_dict().items()}}
            if observe is not None:
                with torch.random.fork_rng(devices=_cuda_devices()):
                    observe(iteration + 1, judged)
        if checkpoint is not None and ((iteration + 1) % checkpoint_every == 0
                                       or iteration + 1 == iterations):
            save_checkpoint(Path(checkpoint), generator, critic, g_opt, c_opt, iteration + 1,
                            best=best, average=average)
    bar.close()
    result.seconds = time.perf_counter() - started
    if validation is not None and best is not None:
        generator.load_state_dict(best["generator"])
        result.selected_iteration = int(best["iteration"])
    elif average is not None:
        generator.load_state_dict(average.state_dict())
    generator.eval()
    critic.eval()
    return result


def _rank_of(best: dict[str, Any]) -> torch.Tensor:
    """The kept state's rank (checkpoints from before ranks: its moment score's)."""
    if "rank" in best:
        return best["rank"].double().cpu()
    return torch.tensor([1.0, float(best["score"])], dtype=torch.float64)


def _cuda_devices() -> list[int]:
    """The GPUs whose random state a ``fork_rng`` has to keep (none unless CUDA is in use)."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []


def selection_auc(generator: ShowerGenerator, cells: np.ndarray, energies_gev: np.ndarray,
                  positions_mm: np.ndarray, seed: int = 0) -> float:
    """The fidelity test's figure for ``cells`` against generated showers: the larger AUC of
    its two classifiers, on the cells and on the high-level features.

    Both count: as the generator learns the moments that the high-level
    features read, the cells' classifier can become the one that tells the
    showers apart (0.67 -> 0.86 along one run while the high-level one stayed
    at 0.73-0.80). The classifiers seed torch's global generators; they are
    restored afterwards (the CPU's and the GPUs'), so that scoring does not
    change the training's draws.
    """
    with torch.random.fork_rng(devices=_cuda_devices()):
        fake = generate(generator, energies_gev, positions_mm, seed=seed + 2)
        high = classifier_auc(high_level_features(cells, energies_gev, generator.geometry_name),
                              high_level_features(fake, energies_gev, generator.geometry_name),
                              seed=seed)
        low = classifier_auc(classifier_inputs(cells, energies_gev),
                             classifier_inputs(fake, energies_gev), seed=seed)
    return float(max(high["auc"], low["auc"]))


def validation_sample(cells: np.ndarray, energies_gev: np.ndarray, positions_mm: np.ndarray,
                       per_energy: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``per_energy`` showers of every energy, drawn once (the selection's yardstick)."""
    energies = np.asarray(energies_gev, dtype=np.float64)
    rng = np.random.default_rng(seed + 7919)
    pick = np.concatenate([rng.permutation(np.flatnonzero(energies == e))[:int(per_energy)]
                           for e in np.unique(energies)])
    return np.asarray(cells)[pick], energies[pick], np.asarray(positions_mm)[pick]


def moment_score(generator: ShowerGenerator, cells: np.ndarray, energies_gev: np.ndarray,
                 positions_mm: np.ndarray, seed: int = 1) -> float:
    """How far the generated mean energy and resolution are from ``cells``', in target units.

    Per energy, ((mean ratio - 1) / 2 %)^2 + ((resolution ratio - 1) / 10 %)^2 (the fidelity
    targets), averaged over the energies: 2 means "on the bounds" on average.
    """
    energies = np.asarray(energies_gev, dtype=np.float64)
    real = np.asarray(cells, dtype=np.float64).reshape(len(energies), -1).sum(axis=1)
    fake = generate(generator, energies, positions_mm, seed=seed).reshape(len(energies), -1)
    fake = fake.sum(axis=1, dtype=np.float64)
    scores = []
    for energy in np.unique(energies):
        r, g = real[energies == energy], fake[energies == energy]
        mean = g.mean() / r.mean() - 1.0
        resolution = (g.std() / g.mean()) / (r.std() / r.mean()) - 1.0
        scores.append((mean / FIDELITY_TARGETS["mean_energy_rel"]) ** 2
                      + (resolution / FIDELITY_TARGETS["resolution_rel"]) ** 2)
    return float(np.mean(scores))


def save_checkpoint(path: Path, generator: tnn.Module, critic: tnn.Module,
                    g_opt: torch.optim.Optimizer, c_opt: torch.optim.Optimizer,
                    iteration: int, best: dict[str, Any] | None = None,
                    average: tnn.Module | None = None) -> None:
    """Written to a temporary name and renamed, so a kill mid-write leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"generator": generator.state_dict(), "critic": critic.state_dict(),
                "generator_optimiser": g_opt.state_dict(), "critic_optimiser": c_opt.state_dict(),
                "iteration": int(iteration), **({"best": best} if best is not None else {}),
                **({"average": average.state_dict()} if average is not None else {})},
               temporary)
    temporary.replace(path)


@torch.no_grad()
def generate(model: ShowerGenerator, energies: np.ndarray | list[float] | float,
             positions: np.ndarray | None = None, *, count: int | None = None,
             seed: int | None = None, batch_size: int | None = None,
             device: str | torch.device | None = None) -> np.ndarray:
    """Showers from a generator: (n, layers, rows, cols) cell energies in MeV, as NumPy.

    ``energies`` in GeV, one per shower (or a single energy with ``count``);
    ``positions`` (n, 2) impact points in mm (default: the axis). Works on a
    model from the zoo as it is: ``generate(models.load("calo-wgan"), [70] * 1000)``.
    ``batch_size`` defaults to ``CPU_BATCH`` on a CPU, ``ACCELERATOR_BATCH`` elsewhere.
    """
    energies = np.asarray(energies, dtype=np.float32).reshape(-1)
    if count is not None:
        if len(energies) != 1:
            raise ValueError("count goes with a single energy")
        energies = np.repeat(energies, int(count))
    if positions is None:
        positions = np.zeros((len(energies), 2), dtype=np.float32)
    positions = np.asarray(positions, dtype=np.float32).reshape(len(energies), 2)
    target = torch.device(device) if device is not None else next(model.parameters()).device
    if batch_size is None:
        batch_size = CPU_BATCH if target.type == "cpu" else ACCELERATOR_BATCH
    was_training = model.training
    model.eval()
    rng = torch.Generator(device=target)
    if seed is not None:
        rng.manual_seed(int(seed))
    else:
        rng.seed()
    out = np.empty((len(energies), *model.shape), dtype=np.float32)
    for begin in range(0, len(energies), batch_size):
        end = min(begin + batch_size, len(energies))
        cond = torch.as_tensor(np.column_stack([energies[begin:end], positions[begin:end]]),
                               device=target)
        latent = torch.randn(end - begin, model.latent_dim, device=target, generator=rng)
        uniform, hit_seed = None, None
        if model.compiled_placement(target):  # the kernel draws the uniforms from a seed
            hit_seed = int(torch.randint(0, 2**62, (1,), generator=rng))
        elif model.sparse_gate or model.flow_hits:
            uniform = torch.rand(end - begin, int(np.prod(model.shape)), device=target,
                                 generator=rng)
        out[begin:end] = model(latent, cond, uniform, hit_seed=hit_seed).float().cpu().numpy()
    model.train(was_training)
    return out


def signature(generator: ShowerGenerator) -> dict[str, Any]:
    """The zoo signature: latent vector and conditions in, cell energies out."""
    layers, rows, cols = generator.shape
    return {"inputs": [
        {"name": "latent", "shape": [None, generator.latent_dim], "dtype": "float32", "unit": "",
         "description": "standard normal latent vector"},
        {"name": "conditions", "shape": [None, 3], "dtype": "float32", "unit": "GeV, mm, mm",
         "description": "primary electron energy [GeV] and impact point x, y [mm]"}],
        "outputs": [{"name": "cells", "shape": [None, layers, rows, cols], "dtype": "float32",
                     "unit": "MeV", "description": "visible energy per cell (layer, row, column)"}]}


def parameter_budget(generator: ShowerGenerator) -> float:
    """Multiply-accumulates per generated shower (what sets the generation speed)."""
    return float(sum(m.in_features * m.out_features for m in generator.modules()
                     if isinstance(m, tnn.Linear)))



def save(generator: ShowerGenerator, path: Path) -> Path:
    """The generator as safetensors, its architecture and config in the header (as in the zoo)."""
    from erumlab.science import modelio

    return modelio.save_weights(generator, Path(path))


def load(path: Path, device: str = "cpu") -> ShowerGenerator:
    """A generator saved by ``save`` (or downloaded from the zoo), rebuilt from its header."""
    from safetensors import safe_open

    from erumlab.science import modelio

    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    if header.get("erumlab.architecture") != "calo-wgan-generator":
        raise ValueError(f"{path}: not a calo-wgan-generator file")
    return modelio.load_weights(Path(path), "calo-wgan-generator",
                                json.loads(header["erumlab.config"]), device=device)
