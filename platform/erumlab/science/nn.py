"""Network architectures known by name.

A trained network is stored as safetensors weights plus an architecture name
and a JSON config; loading builds the architecture from its config and fills in
the weights, so no code ever travels with a model file (no pickles).

    from erumlab.science import nn
    tagger = nn.build("mlp", {"inputs": 16, "hidden": [64, 32, 32], "outputs": 5})
    nn.architecture_of(tagger)      # ("mlp", {"inputs": 16, "hidden": [64, 32, 32], ...})

New architectures register with ``@nn.register("name")``; their constructor
takes keyword arguments that JSON can carry. Modules that register
architectures are listed in ``PROVIDERS`` so that ``build`` finds them
without the caller importing them first.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=type[nn.Module])

ARCHITECTURES: dict[str, type[nn.Module]] = {}
# Modules whose import registers further architectures (examples, course models).
PROVIDERS: list[str] = ["erumlab.science.ising", "erumlab.science.jets.model",
                        "erumlab.science.showers.model"]
_loaded = False


class UnknownArchitecture(LookupError):
    pass


class ArchitectureConfigError(ValueError):
    pass


def _load_providers() -> None:
    global _loaded
    if _loaded:
        return
    for module in PROVIDERS:
        importlib.import_module(module)
    _loaded = True


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make an ``nn.Module`` buildable by ``name`` from a JSON config."""

    def decorate(cls: M) -> M:
        if name in ARCHITECTURES and ARCHITECTURES[name] is not cls:
            raise ValueError(f"architecture {name!r} is already registered "
                             f"({ARCHITECTURES[name].__qualname__})")
        original = cls.__init__
        signature = inspect.signature(original)

        @functools.wraps(original)
        def __init__(self: nn.Module, *args: Any, **config: Any) -> None:  # noqa: N807
            if args:
                raise TypeError(f"{name}: pass the configuration as keyword arguments")
            original(self, **config)
            bound = signature.bind(self, **config)
            bound.apply_defaults()
            full = {key: value for key, value in bound.arguments.items() if key != "self"}
            # Kept as JSON text: what a model card shows and what rebuilds the module.
            object.__setattr__(self, "_erumlab_architecture", (name, json.dumps(full)))

        cls.__init__ = __init__  # type: ignore[method-assign]
        ARCHITECTURES[name] = cls
        return cls

    return decorate


def names() -> list[str]:
    _load_providers()
    return sorted(ARCHITECTURES)


def build(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """An untrained module of architecture ``name`` configured by ``config``."""
    _load_providers()
    if name not in ARCHITECTURES:
        raise UnknownArchitecture(f"unknown architecture {name!r}; known: "
                                  f"{', '.join(sorted(ARCHITECTURES)) or 'none'}")
    if not isinstance(config or {}, dict):
        raise ArchitectureConfigError(f"{name}: the config must be a JSON object")
    try:
        return ARCHITECTURES[name](**(config or {}))
    except (TypeError, ValueError) as error:
        raise ArchitectureConfigError(f"{name}: {error}") from error


def architecture_of(module: nn.Module) -> tuple[str, dict[str, Any]]:
    """The name and full config a registered architecture was built with."""
    recorded = getattr(module, "_erumlab_architecture", None)
    if recorded is None:
        raise UnknownArchitecture(
            f"{type(module).__qualname__} is not an architecture erumlab knows by name: build "
            f"it with erumlab.science.nn (known: {', '.join(names())}) or publish it as ONNX")
    name, config = recorded
    return name, json.loads(config)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU, "elu": nn.ELU, "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


@register("mlp")
class MLP(nn.Module):
    """A fully connected network: ``inputs`` -> ``hidden`` layers -> ``outputs``.

    Inputs with more than one feature axis are flattened. ``output_activation``
    is applied last ("softmax" over the last axis, or any hidden activation).
    """

    def __init__(self, *, inputs: int, outputs: int, hidden: list[int] | None = None,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False,
                 output_activation: str | None = None) -> None:
        super().__init__()
        if inputs < 1 or outputs < 1 or any(h < 1 for h in hidden or []):
            raise ValueError("layer widths must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        layers: list[nn.Module] = [nn.Flatten()]
        width = inputs
        for size in hidden or []:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, outputs))
        if output_activation == "softmax":
            layers.append(nn.Softmax(dim=-1))
        elif output_activation:
            layers.append(make_activation(output_activation))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
