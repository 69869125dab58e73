"""Per-shower cost of the detailed simulation and of batched GAN generation, on the same CPU.

Both are timed in the same process, one after the other, so that load on a
shared machine affects both; the speed-up is their ratio. The simulation is
compiled first (numba) and the generator warmed up, so neither includes
one-off costs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from erumlab.science.showers import simulation
from erumlab.science.showers.model import CPU_BATCH, ShowerGenerator, generate


def simulation_ms(geometry: str, energy_gev: float, showers: int, *, seed: int = 0,
                  threads: int | None = None) -> float:
    """Wall time per shower [ms] of the cascade (all numba threads used, like a production run)."""
    simulation.warm_up(geometry)
    sample = simulation.simulate(geometry, [energy_gev] * showers, seed=seed, threads=threads)
    return 1000.0 * sample.seconds / showers


def generation_ms(generator: ShowerGenerator, energy_gev: float, showers: int, *,
                  batch_size: int | None = None, device: str | torch.device = "cpu",
                  repeats: int = 3) -> float:
    """Wall time per shower [ms] of batched generation (best of ``repeats``), incl. copying to NumPy.

    ``batch_size`` defaults to ``generate``'s for the device (``model.CPU_BATCH`` on a CPU).
    """
    target = torch.device(device)
    generator = generator.to(target)
    generate(generator, [energy_gev], count=min(showers, batch_size or CPU_BATCH), seed=0,
             batch_size=batch_size, device=target)  # warm-up: one batch
    best = float("inf")
    for repeat in range(repeats):
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        started = time.perf_counter()
        generate(generator, [energy_gev], count=showers, seed=repeat, batch_size=batch_size,
                 device=target)
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        best = min(best, time.perf_counter() - started)
    return 1000.0 * best / showers


def speedup_table(generator: ShowerGenerator, geometry: str,
                  energies: tuple[float, ...] = (20.0, 50.0, 90.0), *, simulated: int = 200,
                  generated: int = 20000, gpu: bool = True) -> list[dict[str, Any]]:
    """One row per energy: simulation and GAN ms/shower on the CPU (and a GPU if there is one)."""
    rows = []
    cpu_generator = generator.to("cpu")
    for energy in energies:
        sim = simulation_ms(geometry, energy, simulated)
        gan = generation_ms(cpu_generator, energy, generated)
        row: dict[str, Any] = {"energy_gev": float(energy), "simulation_ms": sim,
                               "gan_cpu_ms": gan, "speedup_cpu": sim / gan}
        if gpu and torch.cuda.is_available():
            row["gan_gpu_ms"] = generation_ms(generator, energy, max(generated, 100000),
                                              batch_size=50000, device="cuda")
            row["speedup_gpu"] = sim / row["gan_gpu_ms"]
        rows.append(row)
    generator.to("cpu")
    return rows


def table_text(rows: list[dict[str, Any]], target: float = 100.0) -> str:
    """The speed-up table as aligned text with PASS/FAIL against ``target``."""
    gpu = any("gan_gpu_ms" in r for r in rows)
    lines = [f"{'E [GeV]':>8} {'simulation ms':>14} {'GAN CPU ms':>11} {'speed-up':>9}"
             + (f" {'GAN GPU ms':>11} {'speed-up':>9}" if gpu else "")
             + f"  target >= {target:g}x (CPU)"]
    for r in rows:
        line = (f"{r['energy_gev']:>8.0f} {r['simulation_ms']:>14.3f} {r['gan_cpu_ms']:>11.4f} "
                f"{r['speedup_cpu']:>8.0f}x")
        if gpu:
            gpu_ms, gpu_x = r.get("gan_gpu_ms", float("nan")), r.get("speedup_gpu", float("nan"))
            line += f" {gpu_ms:>11.5f} {gpu_x:>8.0f}x"
        lines.append(line + f"  {'PASS' if r['speedup_cpu'] >= target else 'FAIL'}")
    return "\n".join(lines)


def mean_steps(geometry: str, energy_gev: float, showers: int = 50) -> float:
    """Transport steps per shower: the machine-independent measure of the simulation's cost."""
    return float(np.mean(simulation.simulate(geometry, [energy_gev] * showers, seed=1).steps))
