"""Calorimeter showers: the held-out fidelity along one training run of the WGAN.

    PYTHONPATH=platform .venv/bin/python bench/calo_wgan_trajectory.py [--iterations 3000]
        [--every 1000] [--select-every 500] [--n-critic 9] [--learning-rate 1e-4] [--batch-size 128]
        [--average-decay 0] [--select-classifier] [--showers-per-energy 2000] [--seed 0]
        [--threads 2] [--no-sparse-gate] [--no-lateral-basis] [--no-hit-counts] [--gate-poisson]
        [--layer-flow] [--flow-hits] [--json trajectory.json] [--save kept.safetensors]

Trains the template's generator (its defaults; the flags change them) on the
template's training sample (simulated and cached on first use, ~4-5 min on
two cores) and, every ``--every`` iterations, tests the generator of that
moment against the showers of the held-out energy, as the template's
report does at the end: classifier AUC on the cells and on the high-level
features, the sub-AUCs of the feature groups, mean energy, resolution,
shower maximum, occupancy; and the selection's moment score at the
training energies (every ``--select-every`` iterations, 500 as in the
template; with ``--select-classifier`` also the selection's classifier AUC
there). The checks run on a copy of
torch's random state (``model.train(observe=...)``), so the training takes
the path it takes without them: one run shows where along it the
classifier figure falls and which state the template's selection would
keep; ``--save`` writes the generator it keeps (for the speed bench's
per-layer comparison: ``calo_wgan_bench.py --model``). Runs of different
options side by side (``--threads 1`` each, one per core) compare them on
one machine; adversarial training does not take the same path on another
CPU, so compare only runs made on the same machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from erumlab.science.showers import metrics, model, simulation
from erumlab.science.showers.geometry import DEFAULT_GEOMETRY, get

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calo_options  # noqa: E402


def trajectory(args: argparse.Namespace) -> dict[str, Any]:
    """Train as ``args`` say; the held-out figures at every ``args.every`` iterations."""
    energies = sorted(float(e) for e in args.train_energies.split(","))
    config = simulation.settings(args.geometry, sorted(energies + [args.held_out]),
                                 args.showers_per_energy, args.seed, args.position_spread_mm)
    simulation.warm_up(args.geometry)
    sample, path, cached = simulation.load_or_generate(config)
    print(f"sample: {len(sample)} showers ({'cached' if cached else 'simulated'}, {path})",
          flush=True)
    train_mask = np.isin(sample.energies, energies)
    train, held = sample.select(train_mask), sample.select(sample.energies == args.held_out)
    generator, critic = model.build(args.geometry, seed=args.seed,
                                    response=model.response_of(train.cells, train.energies),
                                    **calo_options.architecture(args))
    geometry = get(args.geometry)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()

    def observe(iteration: int, judged: model.ShowerGenerator) -> None:
        if iteration % args.every and iteration != args.iterations:
            return
        fake = model.generate(judged, held.energies, held.positions, seed=args.seed + 1)
        test = metrics.classifier_test(held.cells, fake, held.energies, geometry.name,
                                       epochs=args.classifier_epochs, seed=args.seed)
        found = metrics.compare(held.cells, fake, geometry, held.positions, held.positions)
        row = {"iteration": iteration, "seconds": round(time.perf_counter() - started, 1),
               "auc_cells": test["low_level"]["auc"], "auc_high_level": test["high_level"]["auc"],
               "sub_aucs": test["high_level"]["by_group"],
               **{key: found[key] for key in ("mean_energy_rel", "resolution_rel",
                                               "shower_max_rel", "occupancy_rel")}}
        rows.append(row)
        print(row_text(row), flush=True)

    print(f"{'iteration':>9} {'s':>6} {'AUC cells':>9} {'high':>6}  sub-AUCs E/hits/centres/widths "
          f"{'mean':>7} {'res':>7} {'Tmax':>7} {'occ':>7}", flush=True)
    result = model.train(generator, critic, train.cells, train.energies, train.positions,
                         iterations=args.iterations, batch_size=args.batch_size,
                         n_critic=args.n_critic, learning_rate=args.learning_rate,
                         seed=args.seed, device="cpu", progress=False,
                         select_every=args.select_every, observe=observe,
                         **calo_options.training(args))
    if args.save:
        model.save(generator, args.save)
    moments, selection_aucs = dict(result.selection), dict(result.selection_auc)
    for row in rows:
        row["moment_score"] = moments.get(row["iteration"])
        row["selection_auc"] = selection_aucs.get(row["iteration"])
    return {"options": {k: v for k, v in vars(args).items() if k != "json"},
            "held_out_energy": args.held_out, "rows": rows, "moment_scores": result.selection,
            "selection_aucs": result.selection_auc,
            "kept_by_selection": result.selected_iteration, "training_seconds": result.seconds,
            "iterations_per_second": args.iterations / result.seconds}


def row_text(row: dict[str, Any]) -> str:
    subs = " / ".join(f"{auc:.2f}" for auc in row["sub_aucs"].values())
    return (f"{row['iteration']:>9} {row['seconds']:>6.0f} {row['auc_cells']:>9.3f} "
            f"{row['auc_high_level']:>6.3f}  {subs:<30} "
            + " ".join(f"{100 * row[k]:>+6.1f}%" for k in ("mean_energy_rel", "resolution_rel",
                                                            "shower_max_rel", "occupancy_rel")))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--geometry", default=DEFAULT_GEOMETRY)
    parser.add_argument("--train-energies", default="20,30,40,50,60,80,90")
    parser.add_argument("--held-out", type=float, default=70.0)
    parser.add_argument("--showers-per-energy", type=int, default=2000,
                        help="as the template's (its cache is shared)")
    parser.add_argument("--position-spread-mm", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=3000, help="as the template's")
    parser.add_argument("--every", type=int, default=1000,
                        help="held-out check every this many iterations (a multiple of "
                             "--select-every), and at the end")
    parser.add_argument("--select-every", type=int, default=500,
                        help="the selection's moment score every this many iterations, as the "
                             "template's")
    parser.add_argument("--n-critic", type=int, default=9)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="as the template's")
    parser.add_argument("--batch-size", type=int, default=128)
    calo_options.add_flags(parser)
    parser.add_argument("--classifier-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default; 1 to run two side by side)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--save", type=Path, help="write the generator the selection keeps here")
    args = parser.parse_args(argv)
    get(args.geometry)
    if args.select_every <= 0 or args.every <= 0 or args.every % args.select_every:
        parser.error(f"--every must be a positive multiple of --select-every (the checks are "
                     f"the selection's), not {args.every} with {args.select_every}")
    calo_options.check(parser, args)
    if args.held_out in {float(e) for e in args.train_energies.split(",")}:
        parser.error(f"--held-out {args.held_out:g} is also a training energy")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    found = trajectory(args)
    print("selection's moment scores: "
          + ", ".join(f"{i}: {s:.2f}" for i, s in found["moment_scores"])
          + ("; its classifier AUCs at the training energies: "
             + ", ".join(f"{i}: {a:.3f}" for i, a in found["selection_aucs"])
             if found["selection_aucs"] else "")
          + f"; it would keep iteration {found['kept_by_selection']}; "
          f"{found['iterations_per_second']:.2f} iterations/s")
    if args.json:
        # numbers as floats (NumPy's too), paths (--save, --json) as text
        args.json.write_text(json.dumps(
            found, indent=1, default=lambda o: str(o) if isinstance(o, Path) else float(o)))
    return found


if __name__ == "__main__":
    main()
