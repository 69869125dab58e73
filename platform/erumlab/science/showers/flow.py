"""The energies of a shower's layers given its primary energy: a conditional normalising flow.

The layer energies are the few numbers that make a calorimeter's
longitudinal fluctuations, its resolution and the correlations between
layers; a GAN learns them only through its critic's second-order signal
(in this project's runs the first layers fluctuated too little, whatever the
options). A normalising flow learns their joint distribution by maximum
likelihood, which is what such low-dimensional densities are best learnt
by. CaloFlow (Krause, Shih, arXiv:2106.05285) splits a shower the same way:
one flow for the layer energies given the incident energy, a second model
for the shapes given both; here the second model is the WGAN's generator
(``ShowerGenerator(layer_flow=True)``).

The flow is a RealNVP (Dinh et al., arXiv:1605.08803): affine coupling
layers, each changing half of the (standardised) log layer energies by a
scale and shift computed from the other half and the conditions, the scales
bounded by tanh. A layer that read nothing (possible in the last layers at
20 GeV: the readout suppresses cells below ``threshold_mev``) has no
logarithm; in training its energy is drawn uniformly in log over the decade
just below the threshold (dequantisation), and a sampled energy below the
threshold reads as zero, as the readout would.

With ``hits`` the flow learns, jointly with the layer energies, each
layer's number of hit cells (cells read out above the threshold), the
sparsity that the CMS HGCAL challenge adds to the classifier's view: a count
``N`` enters as log(1 + N + u), u uniform in [0, 1) (dequantisation), and a
sample reads as the integer below, kept consistent with its layer's energy
(none in an unread layer, at least one in a read one, no more than the
energy pays for at the threshold, no more than the layer's cells).

    flow = LayerFlow(layers=7, threshold_mev=0.042)
    flow.fit(layer_mev, energies_gev)                       # seconds on a CPU
    layer_mev = flow.sample(torch.randn(n, 7), energies)    # (n, 7), zeros where unread
    flow = LayerFlow(layers=7, threshold_mev=0.042, hits=True, cells_per_layer=180)
    flow.fit(layer_mev, energies_gev, hits=hit_cells)       # (n, 7) counts besides
    layer_mev, hits = flow.sample(torch.randn(n, 14), energies)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn as tnn

# an unread layer's energy in training: log-uniform over this many decades below the threshold
DEQUANTISE_DECADES = 1.0
EPOCHS, MAX_STEPS = 110, 3000  # the fit's default length: passes over the showers, at most steps


def _conditions(energies_gev: torch.Tensor) -> torch.Tensor:
    e = energies_gev.reshape(-1, 1) / 100.0
    return torch.cat([e, torch.log(e)], dim=1)


class LayerFlow(tnn.Module):
    """p(log layer energies [and hit counts] | primary energy), sampled from normal noise."""

    def __init__(self, layers: int, threshold_mev: float, couplings: int = 8,
                 hidden: int = 64, hits: bool = False, cells_per_layer: int = 0) -> None:
        super().__init__()
        if layers < 2 or couplings < 2 or threshold_mev <= 0:
            raise ValueError("a layer flow needs >= 2 layers, >= 2 couplings and a threshold > 0")
        if hits and cells_per_layer < 1:
            raise ValueError("a layer flow with hits needs cells_per_layer (the most hits)")
        self.layers = int(layers)
        self.threshold_mev = float(threshold_mev)
        self.hits = bool(hits)
        self.cells_per_layer = int(cells_per_layer)
        # the flow's numbers: the log layer energies, with ``hits`` each followed by its
        # layer's log hit count (E0, N0, E1, N1, ...)
        self.dims = self.layers * (2 if self.hits else 1)
        index = torch.arange(self.dims)
        # which half each coupling reads: odd/even numbers, then neighbouring pairs, alternately
        # (with hits: all energies or all counts, then whole layers)
        masks = [((index if k % 4 < 2 else index // 2) % 2 == k % 2) for k in range(couplings)]
        self.register_buffer("masks", torch.stack(masks).float())
        self.register_buffer("mean", torch.zeros(self.dims))
        self.register_buffer("spread", torch.ones(self.dims))
        self.nets = tnn.ModuleList()
        for _ in range(couplings):
            net = tnn.Sequential(tnn.Linear(self.dims + 2, hidden), tnn.LeakyReLU(0.2),
                                 tnn.Linear(hidden, hidden), tnn.LeakyReLU(0.2),
                                 tnn.Linear(hidden, 2 * self.dims))
            with torch.no_grad():  # starts as the identity
                net[-1].weight.zero_()
                net[-1].bias.zero_()
            self.nets.append(net)

    def _scale_shift(self, k: int, x: torch.Tensor, cond: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.masks[k]
        raw = self.nets[k](torch.cat([x * mask, cond], dim=1))
        scale, shift = raw[:, :self.dims], raw[:, self.dims:]
        free = 1.0 - mask
        return 2.0 * torch.tanh(0.5 * scale) * free, shift * free

    def to_noise(self, values: torch.Tensor, energies_gev: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow's numbers (``training_values``) -> its normal noise, and the log Jacobian."""
        cond = _conditions(energies_gev)
        z = (values - self.mean) / self.spread
        log_det = torch.zeros(len(z), device=z.device)
        for k in range(len(self.nets)):
            scale, shift = self._scale_shift(k, z, cond)
            z = z * torch.exp(scale) + shift
            log_det = log_det + scale.sum(dim=1)
        return z, log_det

    def log_prob(self, values: torch.Tensor, energies_gev: torch.Tensor) -> torch.Tensor:
        """Log density of the flow's numbers per shower (less the standardisation's constant)."""
        z, log_det = self.to_noise(values, energies_gev)
        return log_det - 0.5 * (z ** 2).sum(dim=1) - 0.5 * self.dims * math.log(2 * math.pi)

    def sample(self, noise: torch.Tensor, energies_gev: torch.Tensor
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(n, dims) standard normal noise -> layer energies [MeV], zero below the threshold.

        With ``hits`` also the hit cells per layer (n, layers), as floats.
        """
        cond = _conditions(energies_gev)
        x = noise
        for k in reversed(range(len(self.nets))):
            scale, shift = self._scale_shift(k, x, cond)  # the read half is unchanged by layer k
            x = (x - shift) * torch.exp(-scale)
        x = x * self.spread + self.mean
        mev = torch.exp(x[:, 0::2] if self.hits else x)
        mev = torch.where(mev >= self.threshold_mev, mev, torch.zeros_like(mev))
        if not self.hits:
            return mev
        hits = torch.floor(torch.expm1(x[:, 1::2]).clamp_min(0.0))
        # consistent with the energy: none where unread, one at least where read, and no more
        # than the energy pays for at the threshold or the layer has cells
        most = torch.floor(mev / self.threshold_mev).clamp_max(float(self.cells_per_layer))
        hits = torch.minimum(torch.maximum(hits, (mev > 0).to(hits.dtype)), most)
        return mev, hits

    def training_values(self, layer_mev: torch.Tensor, generator: torch.Generator,
                        hits: torch.Tensor | None = None) -> torch.Tensor:
        """The flow's numbers: log layer energies, unread layers dequantised below the
        threshold; with ``hits``, after each layer's, log(1 + hits + u), u uniform in [0, 1)."""
        floor = math.log(self.threshold_mev)
        band = DEQUANTISE_DECADES * math.log(10.0)
        below = floor - band * torch.rand(layer_mev.shape, generator=generator).to(layer_mev.device)
        read = layer_mev >= self.threshold_mev
        values = torch.where(read, torch.log(torch.where(read, layer_mev, 1.0)), below)
        if not self.hits:
            return values
        if hits is None or hits.shape != layer_mev.shape:
            raise ValueError("a layer flow with hits needs the hit cells per layer, "
                             "shaped as the layer energies")
        jitter = torch.rand(hits.shape, generator=generator).to(hits.device)
        return torch.stack([values, torch.log1p(hits + jitter)], dim=2).reshape(len(values), -1)

    def standardised(self, layer_mev: torch.Tensor, hits: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """What a network reads of a shower's flow numbers: each standardised by the fit's
        mean and spread (an unread layer: half the threshold; a hit count: the middle of its
        jitter)."""
        values = torch.log(layer_mev.clamp_min(0.5 * self.threshold_mev))
        if self.hits:
            if hits is None:
                raise ValueError("a layer flow with hits needs the hit cells per layer")
            values = torch.stack([values, torch.log1p(hits + 0.5)], dim=2).reshape(len(values), -1)
        return (values - self.mean) / self.spread

    def fit(self, layer_mev: np.ndarray | torch.Tensor, energies_gev: np.ndarray | torch.Tensor,
            *, hits: np.ndarray | torch.Tensor | None = None, steps: int | None = None,
            batch_size: int = 512, learning_rate: float = 1e-3, seed: int = 0) -> list[float]:
        """Maximum likelihood on (n, layers) layer energies [MeV] (and, with ``hits``, hit
        cells); the losses every 100 steps.

        ``steps`` defaults to ~110 passes over the showers, at most ``MAX_STEPS``
        (~25 s on a CPU). Draws from its own random generator: torch's global
        one is left as it was.
        """
        device = self.mean.device
        layer_mev = torch.as_tensor(np.asarray(layer_mev), dtype=torch.float32, device=device)
        energies = torch.as_tensor(np.asarray(energies_gev), dtype=torch.float32,
                                   device=device).reshape(-1)
        if layer_mev.shape != (len(energies), self.layers):
            raise ValueError(f"layer energies of shape {tuple(layer_mev.shape)}: expected "
                             f"({len(energies)}, {self.layers})")
        if len(energies) < 2:
            raise ValueError("fitting the layer flow needs at least two showers")
        if (hits is not None) != self.hits:
            raise ValueError("hit counts go with a layer flow with hits, and it needs them")
        if hits is not None:
            hits = torch.as_tensor(np.asarray(hits), dtype=torch.float32, device=device)
        rng = torch.Generator(device="cpu").manual_seed(int(seed))
        with torch.no_grad():
            values = self.training_values(layer_mev, rng, hits)
            self.mean.copy_(values.mean(dim=0))
            self.spread.copy_(values.std(dim=0).clamp_min(1e-3))
        batch = min(int(batch_size), len(energies))
        if steps is None:
            steps = min(MAX_STEPS, EPOCHS * math.ceil(len(energies) / batch))
        optimiser = torch.optim.Adam(self.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, steps))
        losses = []
        was_training = self.training
        self.train()
        for step in range(int(steps)):
            index = torch.randint(len(energies), (batch,), generator=rng).to(device)
            values = self.training_values(layer_mev[index], rng,
                                          None if hits is None else hits[index])
            loss = -self.log_prob(values, energies[index]).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 100 == 0 or step == steps - 1:
                losses.append(float(loss.detach()))
        self.train(was_training)
        return losses
