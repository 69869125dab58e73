"""The FPGA jet tagger: float vs ap_fixed<16,6>, CPU throughput, latency of the parallel design.

    nice -n 10 .venv/bin/python bench/jet_tagger_bench.py [--jets-per-class 2000] [--epochs 40]

Prints, measured side by side in one run (absolute jets/s depend on the
machine; the ratios are what carries over):

- test accuracy of the float network and of the same weights emulated
  bit-accurately in ap_fixed<16,6> (hls4ml's default types and modes), the loss
  in percentage points (PASS when <= 0.5; the hls4ml tutorial's reference is
  0.7644 vs 0.7640 on its own data set), and per-class AUCs of both;
- when hls4ml is installed: agreement of its compiled C simulation with the
  emulation (same predicted class, bit-identical logits);
- CPU inference throughput (jets/s, batches of 4096) of the float model
  saved and loaded through erumlab.science (safetensors + the "jet-tagger"
  architecture, standardisation inside) against the same layers in a plain
  torch.nn.Sequential fed pre-standardised inputs (target ratio near 1), and
  of the fixed-point emulation;
- the latency estimate of the fully parallel design in clocks and ns at
  200 MHz beside the reference's 75-150 ns, dense and after pruning.

Jets come from the cache shared with the template (generated on the first run).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from erumlab.science import modelio
from erumlab.science import nn as architectures
from erumlab.science.jets import experiment, generation, hls, latency, model
from erumlab.science.jets.fixedpoint import FixedPointMLP

REFERENCE = "ap_fixed<16,6>"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jets-per-class", type=int, default=2000)
    parser.add_argument("--pt-min", type=float, default=1000.0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    sample, path, generated = generation.load_or_generate(
        args.jets_per_class, pt_min=args.pt_min, seed=args.seed, progress=print)
    print(f"{len(sample)} jets ({'generated now' if generated else 'cached'}: {path})")
    train_idx, val_idx, test_idx = sample.split((0.6, 0.2), seed=args.seed)
    x, y = sample.features, sample.labels
    tagger = model.build_tagger(seed=args.seed)
    fit = model.train(tagger, x[train_idx], y[train_idx], x[val_idx], y[val_idx],
                      epochs=args.epochs, seed=args.seed)
    x_test, y_test = x[test_idx], y[test_idx]
    print(f"trained {architectures.parameter_count(tagger)} parameters on {len(train_idx)} jets "
          f"in {fit.seconds:.1f} s (best epoch {fit.best_epoch}); {len(test_idx)} test jets")

    float_eval, fixed_eval = experiment.evaluate(tagger, "dense", x_test, y_test, [REFERENCE],
                                                 sample.classes)
    loss = 100 * (float_eval.accuracy - fixed_eval.accuracy)
    print()
    print(f"{'':<16} {'accuracy':>9}  " + " ".join(f"{'AUC ' + c:>9}" for c in sample.classes))
    for label, e in (("float", float_eval), (REFERENCE, fixed_eval)):
        print(f"{label:<16} {e.accuracy:>9.4f}  "
              + " ".join(f"{e.auc[c]:>9.4f}" for c in sample.classes))
    print(f"accuracy loss of {REFERENCE}: {loss:+.2f} percentage points (target <= 0.5) "
          f"{verdict(loss <= 0.5)}   [reference: 0.7644 -> 0.7640]")

    if hls.available():
        with tempfile.TemporaryDirectory(prefix="hls4ml-") as folder:
            found = hls.compare(tagger.net, REFERENCE, model.standardised(tagger, x_test),
                                Path(folder), labels=y_test)
        print(f"hls4ml 1.3.0 C simulation vs emulation on {found.jets} jets: same class "
              f"{found.argmax_agreement:.4%} (target >= 99.9 %) "
              f"{verdict(found.argmax_agreement >= 0.999)}, bit-identical logits "
              f"{found.exact_agreement:.4%}; hls4ml accuracy {found.hls_accuracy:.4f}")
    else:
        print("hls4ml or g++ not installed: C-simulation comparison skipped")

    # Throughput: the zoo's way in (safetensors + architecture) vs a bare Sequential.
    with tempfile.TemporaryDirectory() as folder:
        weights = modelio.save_weights(tagger, Path(folder) / "tagger.safetensors")
        name, config = architectures.architecture_of(tagger)
        loaded = modelio.load_weights(weights, name, config)
    repeat = int(np.ceil(100_000 / len(x_test)))
    raw = np.tile(x_test, (repeat, 1)).astype(np.float32)
    standard = model.standardised(tagger, raw)
    plain = model.plain_sequential(tagger)
    # Interleaved rounds, so that load from elsewhere on a shared machine hits both alike,
    # on one thread: a 4k-parameter network gains nothing from two, and on a busy machine
    # the threads' hand-offs vary the timings a hundredfold.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rounds: dict[str, list[float]] = {"ours": [], "theirs": []}
    for _ in range(7):
        rounds["ours"].append(experiment.throughput(loaded, raw, repeats=1))
        rounds["theirs"].append(experiment.throughput(plain, standard, repeats=1))
    torch.set_num_threads(threads)
    ours, theirs = (float(np.median(rounds[k])) for k in ("ours", "theirs"))
    ours_again = max(rounds["ours"])
    emulator = FixedPointMLP.from_torch(tagger.net, REFERENCE)
    emulated = experiment.emulation_throughput(emulator, standard[:20_000])
    print()
    print(f"CPU inference, {len(raw)} jets in batches of 4096, one torch thread:")
    print(f"  erumlab.science (loaded from safetensors, standardisation inside): "
          f"{ours:,.0f} jets/s median of 7 interleaved rounds (best {ours_again:,.0f})")
    print(f"  plain torch.nn.Sequential on pre-standardised inputs:                {theirs:,.0f} "
          f"jets/s")
    ratio = ours / theirs
    print(f"  ratio erumlab / plain: {ratio:.2f} (target near 1) "
          f"{verdict(0.8 <= ratio <= 1.25)}")
    print(f"  {REFERENCE} bit-accurate emulation (NumPy int64): {emulated:,.0f} jets/s "
          f"({theirs / emulated:.0f}x slower than float)")

    pruned = experiment.copy_model(tagger)
    model.prune(pruned, args.sparsity, x[train_idx], y[train_idx], x[val_idx], y[val_idx],
                steps=3, epochs_per_step=6, seed=args.seed)
    pruned_float, pruned_fixed = experiment.evaluate(pruned, "pruned", x_test, y_test,
                                                     [REFERENCE], sample.classes)
    print()
    print(f"pruned to {model.sparsity(pruned):.0%} zero weights: accuracy float "
          f"{pruned_float.accuracy:.4f} ({100 * (pruned_float.accuracy - float_eval.accuracy):+.2f}"
          f" pp vs dense), {REFERENCE} {pruned_fixed.accuracy:.4f}")
    lo, hi = latency.REFERENCE_NS
    print(f"latency of the fully parallel design at 200 MHz (structural estimate; reference "
          f"{lo:.0f}-{hi:.0f} ns, hls4ml tutorial {latency.REFERENCE_TUTORIAL_CLOCKS} clocks):")
    for label, net in (("dense", tagger), ("pruned", pruned)):
        e = experiment.latency_of(net, REFERENCE)
        layers = " + ".join(str(layer["clocks"]) for layer in e.per_layer)
        print(f"  {label:<7} {e.clocks:>3} clocks = {e.ns:>5.0f} ns  (layers {layers}, softmax "
              f"{sum(e.output_stage.values())}, io 2; {e.multiplications} multipliers) "
              f"{verdict(lo <= e.ns <= hi) if label == 'dense' else ''}")


if __name__ == "__main__":
    main()
