"""Calorimeter showers: the WGAN generator against the detailed simulation, speed and fidelity.

    .venv/bin/python bench/calo_wgan_bench.py [--model calo-wgan.safetensors | --zoo calo-wgan]
        [--train-iterations 600 --showers-per-energy 1000] [--no-flow-hits --sparse-gate
        --hit-counts] [--no-lateral-basis] [--gate-poisson] [--no-layer-flow] [--average-decay 0]
        [--no-select-classifier]
        [--showers 200] [--generated 20000]

Prints, measured side by side in one run on this machine:

- per-shower wall time of the particle-level cascade (numba, all threads) and
  of batched generation by the WGAN generator (PyTorch, batches of
  ``model.CPU_BATCH``) at 20, 50 and 90 GeV on the same CPU, and the speed-up
  (target >= 100x; the reference reports about 40x on CPU), plus the GPU when
  there is one; and how much faster those batches are than batches of 8192.
  The generation time hardly depends on the weights, so without a model an
  untrained generator of the template's default architecture (or the one the
  flags choose) is timed (and said so); with the flow's hit counts
  (``--flow-hits``) the number of hits it draws sets the cost of finding
  the hits, so time a trained model there; and for such a generator how
  much faster the compiled placement of the hits (``showers.placement``)
  is than the same draw in PyTorch operations (what a GPU runs);
- with a model (a file written by the template, ``--model``; a zoo model,
  ``--zoo``; or one trained here, ``--train-iterations``), the fidelity at
  the held-out energy against freshly simulated showers: classifier AUC
  (target <= 0.75), mean energy (within 2 %), resolution (within 10 %),
  shower maximum (within 5 %), each with PASS/FAIL; the high-level
  classifier's AUC by feature group, and per layer what tells the features
  apart (``metrics.layer_comparison``: shifts in simulated spreads, spread
  ratios, how much the hits follow the layer energy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from erumlab.science.showers import metrics, model, simulation, speed
from erumlab.science.showers.geometry import DEFAULT_GEOMETRY, get

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calo_options  # noqa: E402


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def obtain_generator(args: argparse.Namespace) -> tuple[model.ShowerGenerator, str, bool]:
    """The generator to benchmark, where it came from, and whether it is trained."""
    if args.model:
        return model.load(args.model), f"file {args.model}", True
    if args.zoo:
        from erumlab.client import Client

        return Client().models.load(args.zoo), f"zoo model {args.zoo}", True
    if args.train_iterations > 0:
        energies = [float(e) for e in args.train_energies.split(",")]
        config = simulation.settings(args.geometry, sorted(energies + [args.held_out]),
                                     args.showers_per_energy, args.seed)
        simulation.warm_up(args.geometry)
        sample, path, cached = simulation.load_or_generate(config)
        print(f"training sample: {len(sample)} showers ({'cached' if cached else 'simulated'}, {path})")
        train = sample.select(np.isin(sample.energies, energies))
        generator, critic = model.build(args.geometry, seed=args.seed,
                                        response=model.response_of(train.cells, train.energies),
                                        **calo_options.architecture(args))
        result = model.train(generator, critic, train.cells, train.energies, train.positions,
                             iterations=args.train_iterations, batch_size=args.batch_size,
                             seed=args.seed, device="cpu", select_every=args.select_every,
                             **calo_options.training(args))
        kept = (f", kept iteration {result.selected_iteration}"
                if result.selected_iteration is not None else "")
        if result.selection_auc:
            kept += (" (classifier AUC at the training energies by iteration: "
                     + ", ".join(f"{i}: {a:.3f}" for i, a in result.selection_auc) + ")")
        if args.average_decay:
            kept += f", averaged weights (decay {args.average_decay:g})"
        if result.diverged_at is not None:
            kept += f" (diverged at iteration {result.diverged_at}, stopped there)"
        return generator.to("cpu"), (f"trained here: {args.train_iterations} iterations{kept} in "
                                     f"{result.seconds:.0f} s"), True
    generator, _ = model.build(args.geometry, response=2.6, seed=args.seed,
                               **calo_options.architecture(args))
    return generator, "untrained generator of the same architecture (timing only)", False


def fidelity(generator: model.ShowerGenerator, args: argparse.Namespace) -> None:
    geometry = generator.geometry_name
    rng = np.random.default_rng(args.seed + 1000)
    positions = simulation.uniform_positions(args.fidelity_showers, args.position_spread_mm, rng)
    simulated = simulation.simulate(geometry, [args.held_out] * args.fidelity_showers, positions,
                                    seed=args.seed + 1000)
    generated = model.generate(generator, simulated.energies, positions, seed=args.seed)
    found = metrics.compare(simulated.cells, generated, geometry, positions, positions)
    classifier = metrics.classifier_test(simulated.cells, generated, simulated.energies, geometry,
                                         seed=args.seed)
    figures = {"classifier_auc": classifier["auc"], "mean_energy_rel": found["mean_energy_rel"],
               "resolution_rel": found["resolution_rel"], "shower_max_rel": found["shower_max_rel"]}
    passed = metrics.fidelity_verdict(figures)
    s, g = found["simulated"], found["generated"]
    print(f"\nfidelity at {args.held_out:g} GeV (held out of training), {args.fidelity_showers} "
          f"fresh simulated showers vs as many generated")
    lines = [("classifier AUC", f"{classifier['auc']:.3f} (cells "
              f"{classifier['low_level']['auc']:.3f}, high-level features "
              f"{classifier['high_level']['auc']:.3f})", "<= 0.75", "classifier_auc"),
             ("mean energy", f"{s['mean_mev']:.1f} vs {g['mean_mev']:.1f} MeV: "
              f"{100 * figures['mean_energy_rel']:+.1f} %", "within 2 %", "mean_energy_rel"),
             ("resolution", f"{s['resolution']:.4f} vs {g['resolution']:.4f}: "
              f"{100 * figures['resolution_rel']:+.1f} %", "within 10 %", "resolution_rel"),
             ("shower maximum", f"{s['shower_max_x0']:.2f} vs {g['shower_max_x0']:.2f} X0: "
              f"{100 * figures['shower_max_rel']:+.1f} %", "within 5 %", "shower_max_rel")]
    for label, value, target, key in lines:
        print(f"  {label:<15} {value}  (target {target})  {verdict(passed[key])}")
    print(f"  (also: occupancy {100 * found['occupancy_rel']:+.1f} %, largest layer-fraction "
          f"difference {found['layer_fraction_max_abs']:.3f}, largest layer-correlation difference "
          f"{found['layer_correlation_max_abs']:.2f})")
    print("  high-level classifier by feature group: " + ", ".join(
        f"{name} {auc:.3f}" for name, auc in classifier["high_level"]["by_group"].items()))
    print("  per layer, generated vs simulated: mean shift in simulated spreads / spread ratio; "
          "correlation of hits with log layer energy, simulated / generated")
    print("  layer " + "".join(f"{name:>15}" for name in metrics.LAYER_FEATURES)
          + f"{'hits~energy':>15}")
    for row in metrics.layer_comparison(simulated.cells, generated, simulated.energies, geometry):
        corr = row["hits_energy_corr"]
        print(f"  {row['layer']:>5} " + "".join(
            f"{row[name]['shift']:>+9.2f} /{row[name]['spread_ratio']:>4.2f}"
            for name in metrics.LAYER_FEATURES)
            + f"{corr['simulated']:>+9.2f} /{corr['generated']:>+5.2f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geometry", default=DEFAULT_GEOMETRY)
    parser.add_argument("--model", help="generator file written by the template (calo-wgan.safetensors)")
    parser.add_argument("--zoo", help="zoo model name (needs ERUMLAB_URL and ERUMLAB_API_TOKEN)")
    parser.add_argument("--train-iterations", type=int, default=0,
                        help="train a generator here first (0: no training)")
    parser.add_argument("--train-energies", default="20,30,40,50,60,80,90")
    calo_options.add_flags(parser)  # the template's defaults; --no-... for the plain generator
    parser.add_argument("--held-out", type=float, default=70.0)
    parser.add_argument("--showers-per-energy", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--select-every", type=int, default=500,
                        help="score mean and resolution at the training energies this often "
                             "and keep the best generator (0: the last)")
    parser.add_argument("--position-spread-mm", type=float, default=10.0)
    parser.add_argument("--showers", type=int, default=200,
                        help="simulated showers timed per energy")
    parser.add_argument("--generated", type=int, default=20000,
                        help="generated showers timed per energy")
    parser.add_argument("--fidelity-showers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    get(args.geometry)
    calo_options.check(parser, args)
    if args.select_classifier and args.select_every <= 0:
        parser.error("--select-classifier is part of the selection: give --select-every too")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = time.perf_counter()
    generator, origin, trained = obtain_generator(args)
    print(f"generator: {origin}; {model.parameter_budget(generator):.3g} multiply-adds per shower")
    rows = speed.speedup_table(generator, generator.geometry_name, (20.0, 50.0, 90.0),
                               simulated=args.showers, generated=args.generated)
    print(f"\nper-shower time, {generator.geometry_name}, simulation ({args.showers} showers per "
          f"energy, numba threads) and GAN ({args.generated} showers, batches of "
          f"{model.CPU_BATCH}), same CPU:")
    print(speed.table_text(rows))
    small = large = float("inf")
    for _ in range(3):  # alternated, so that load from other processes hits both alike
        small = min(small, speed.generation_ms(generator, 20.0, args.generated))
        large = min(large, speed.generation_ms(generator, 20.0, args.generated, batch_size=8192))
    print(f"  generation at 20 GeV in batches of {model.CPU_BATCH} vs 8192, same CPU, alternated: "
          f"{large / small:.2f}x faster")
    if generator.flow_hits:  # the compiled placement against the PyTorch operations (a GPU's)
        compiled = operations = float("inf")
        try:
            for _ in range(3):
                model.COMPILED_PLACEMENT = True
                compiled = min(compiled, speed.generation_ms(generator, 20.0, args.generated))
                model.COMPILED_PLACEMENT = False
                operations = min(operations, speed.generation_ms(generator, 20.0, args.generated))
        finally:
            model.COMPILED_PLACEMENT = True
        print(f"  generation at 20 GeV with the hits placed by the compiled kernel vs PyTorch "
              f"operations, same CPU, alternated: {operations / compiled:.2f}x faster "
              f"({compiled * 1000:.1f} vs {operations * 1000:.1f} us per shower)")
    for energy in (20.0, 50.0, 90.0):
        print(f"  cascade transport steps per {energy:g} GeV shower: "
              f"{speed.mean_steps(generator.geometry_name, energy, 20):.3g}")
    if trained:
        fidelity(generator, args)
    else:
        print("\nfidelity: no trained model given (--model, --zoo or --train-iterations); skipped")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
