"""The options the two calorimeter-shower benches share: the generator's and the training's.

``calo_wgan_bench.py`` and ``calo_wgan_trajectory.py`` train the template's
generator (its defaults) or a variant: these flags name the variant, refuse
what cannot be combined, and hand the choice to ``model.build`` and
``model.train``.
"""

from __future__ import annotations

import argparse
from typing import Any

from erumlab.science.showers import model


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The architecture flags (the template's defaults; --no-... to turn one off)."""
    def switch(flag: str, default: bool, text: str) -> None:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                            help=text)

    switch("--sparse-gate", False,
           "the gated generator (cells fire or not in each shower; the default before "
           "--flow-hits: --no-flow-hits --no-share-noise --no-axis-shift --sparse-gate "
           "--hit-counts)")
    switch("--lateral-basis", True, "lateral shapes around the impact point")
    switch("--hit-counts", True, "with --sparse-gate or --flow-hits: the critic sees the hit "
           "cells per layer")
    parser.add_argument("--gate-poisson", action="store_true",
                        help="with --sparse-gate: cells fire with the chance of at least one "
                             "deposit; layer energies renormalised after the readout")
    switch("--layer-flow", True,
           "the layer energies from a normalising flow (fit by maximum likelihood first); the "
           "GAN learns the shapes given them")
    switch("--flow-hits", True,
           "with --layer-flow, without --sparse-gate: the flow also gives each layer's hit "
           "cells, and exactly that many fire")
    switch("--share-noise", True,
           "with --flow-hits: each hit's share of the layer energy also fluctuates with its own "
           "draw (a learnt power per layer)")
    switch("--axis-shift", True,
           "with --flow-hits and --lateral-basis: the shower's axis is displaced from the "
           "impact point, the same way in every layer")
    parser.add_argument("--axis-gain", type=float, default=None,
                        help="with --axis-shift: the axis spread per layer also scales as "
                             "exp(gain * a learnt parameter) (default: the model's "
                             "AXIS_SPREAD_GAIN; 0: the head's spread alone, as before "
                             "2026-12-07)")
    parser.add_argument("--hit-floor-mev", type=float, default=None,
                        help="with --flow-hits: the least a hit carries [MeV] (default: the "
                             "model's hit_floor, a MIP's smallest deposit; 0: the readout "
                             "threshold, as before 2026-12-07)")
    parser.add_argument("--cell-rank", type=int, default=128,
                        help="the cell head reads the trunk through this many numbers "
                             "(0: all 512, the default until 2026-12-07)")
    switch("--lateral-moments", True, "the critic sees each layer's centre of energy and width")
    parser.add_argument("--average-decay", type=float, default=0.0,
                        help="keep a moving average of the generator's weights with this decay "
                             "(0: the trained weights)")
    parser.add_argument("--final-lr-fraction", type=float, default=1.0,
                        help="both learning rates fall linearly to this fraction of the first "
                             "at the last iteration (1: constant)")
    switch("--select-classifier", True,
           "the selection also trains the fidelity test's two classifiers (cells, high-level "
           "features) at the training energies and keeps, of the states with mean and "
           "resolution well within the targets, the one they tell apart least (the larger AUC)")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (``parser.error``) what ``add_flags``' flags cannot do together."""
    if args.gate_poisson and not args.sparse_gate:
        parser.error("--gate-poisson needs --sparse-gate")
    if args.flow_hits and not (args.layer_flow and not args.sparse_gate):
        parser.error("--flow-hits needs --layer-flow and replaces the sparse gate "
                     "(with --sparse-gate add --no-flow-hits --no-share-noise --no-axis-shift)")
    if args.cell_rank < 0:
        parser.error(f"--cell-rank must be 0 (the full head) or positive, not {args.cell_rank}")
    if args.axis_shift and not (args.flow_hits and args.lateral_basis):
        parser.error("--axis-shift moves the lateral basis of --flow-hits "
                     "(without either add --no-axis-shift)")
    if args.share_noise and not args.flow_hits:
        parser.error("--share-noise shares the energy among the hits --flow-hits places "
                     "(with --no-flow-hits add --no-share-noise)")
    if args.hit_counts and not (args.sparse_gate or args.flow_hits):
        parser.error("--hit-counts needs --sparse-gate or --flow-hits "
                     "(without either add --no-hit-counts)")
    # the model's own checks, before anything is simulated
    checks = [(model.check_average_decay, (args.average_decay,)),
              (model.check_final_lr_fraction, (args.final_lr_fraction,))]
    if args.axis_gain is not None:
        checks.append((model.check_axis_gain, (args.axis_gain, args.axis_shift)))
    if args.hit_floor_mev is not None:
        checks.append((model.check_hit_floor, (args.hit_floor_mev, args.flow_hits)))
    for check_option, values in checks:
        try:
            check_option(*values)
        except ValueError as error:  # in the flags' words
            message = str(error)
            for name in ("average_decay", "final_lr_fraction", "axis_gain", "axis_shift",
                         "hit_floor_mev", "flow_hits"):
                message = message.replace(name, "--" + name.replace("_", "-"))
            parser.error(message)


def architecture(args: argparse.Namespace) -> dict[str, Any]:
    """``model.build``'s options, as the flags chose them."""
    return {"sparse_gate": args.sparse_gate, "lateral_basis": args.lateral_basis,
            "hit_counts": args.hit_counts, "gate_poisson": args.gate_poisson,
            "layer_flow": args.layer_flow, "flow_hits": args.flow_hits,
            "share_noise": args.share_noise, "axis_shift": args.axis_shift,
            "axis_gain": args.axis_gain, "hit_floor_mev": args.hit_floor_mev,
            "cell_rank": args.cell_rank,
            "lateral_moments": args.lateral_moments}


def training(args: argparse.Namespace) -> dict[str, Any]:
    """``model.train``'s options, as the flags chose them."""
    return {"average_decay": args.average_decay, "select_classifier": args.select_classifier,
            "final_lr_fraction": args.final_lr_fraction}
