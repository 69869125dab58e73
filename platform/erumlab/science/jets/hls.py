"""The tagger through hls4ml: conversion, compiled C simulation, comparison with our emulation.

hls4ml writes the network as Vivado HLS C++ with ap_fixed types and, with
``compile()``, builds it with g++ into a shared library whose ``predict``
runs that C++ bit for bit as the FPGA would compute it (the C simulation).
Comparing it with ``fixedpoint.FixedPointMLP`` on the same inputs checks the
emulation against the reference implementation of the arithmetic. Only the
Linear/ReLU stack is converted (``JetTagger.net``): inputs are the
standardised features, outputs the logits (softmax is monotonic, the decision
is the arg-max), every type is the model-wide default precision, as in
hls4ml's "model" granularity, with io_parallel and reuse factor 1 (the fully
parallel latency design).

hls4ml is optional: ``available()`` says whether it and g++ are there.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn as tnn


def available() -> bool:
    return importlib.util.find_spec("hls4ml") is not None and shutil.which("g++") is not None


@dataclass
class HlsComparison:
    precision: str
    jets: int
    argmax_agreement: float  # fraction of jets with the same predicted class
    exact_agreement: float  # fraction of jets whose logits are bit-identical
    max_abs_difference: float
    compile_seconds: float
    hls_accuracy: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def convert(stack: tnn.Module, precision: str, output_dir: Path, *, inputs: int = 16) -> Any:
    """Convert and compile a Linear/ReLU stack; returns the compiled hls4ml model."""
    import hls4ml

    config = hls4ml.utils.config_from_pytorch_model(
        stack, input_shape=(inputs,), granularity="model", default_precision=precision,
        default_reuse_factor=1)
    config["Model"]["Strategy"] = "Latency"
    model = hls4ml.converters.convert_from_pytorch_model(
        stack.eval(), hls_config=config, output_dir=str(output_dir), backend="Vivado",
        io_type="io_parallel", project_name="jettagger")
    model.compile()
    return model


def compare(stack: tnn.Module, precision: str, x_standardised: np.ndarray, output_dir: Path,
            labels: np.ndarray | None = None) -> HlsComparison:
    """hls4ml's C simulation against ``FixedPointMLP`` on the same standardised inputs."""
    from erumlab.science.jets.fixedpoint import FixedPointMLP

    x = np.ascontiguousarray(x_standardised, dtype=np.float64)
    started = time.perf_counter()
    model = convert(stack, precision, output_dir, inputs=x.shape[1])
    compiled = time.perf_counter() - started
    theirs = np.asarray(model.predict(x), dtype=np.float64).reshape(x.shape[0], -1)
    ours = FixedPointMLP.from_torch(stack, precision).predict(x)
    same_class = np.argmax(theirs, axis=1) == np.argmax(ours, axis=1)
    return HlsComparison(
        precision=precision, jets=int(x.shape[0]), argmax_agreement=float(same_class.mean()),
        exact_agreement=float(np.all(theirs == ours, axis=1).mean()),
        max_abs_difference=float(np.max(np.abs(theirs - ours))) if x.size else 0.0,
        compile_seconds=compiled,
        hls_accuracy=float(np.mean(np.argmax(theirs, axis=1) == labels))
        if labels is not None else None)
