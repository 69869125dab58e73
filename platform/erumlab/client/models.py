"""Trained networks from a notebook or job.

    from erumlab.client import models
    tagger = models.load("jet-tagger", alias="production")     # a ready torch.nn.Module
    tagger = models.load("jet-tagger@3")                       # name@number or name@alias
    models.publish(tagger, name="jet-tagger", card=card, metrics={"auc": 0.94},
                   datasets=["erumlab:jet-images.v2"], signature=signature)

Weights are downloaded once into a cache (ERUMLAB_CACHE_DIR, default
~/.cache/erumlab) and checked against their SHA-256; ONNX models load as an
ONNX Runtime session. Nothing is unpickled: the client publishes safetensors
(or ONNX) and builds modules from architectures erumlab.science knows.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erumlab.client.datasets import cache_dir
from erumlab.client.files import cached_download, sha256_file

if TYPE_CHECKING:
    import torch

    from erumlab.client.api import Client


class PublishFailed(RuntimeError):
    pass


def parse_reference(name: str, version: int | None = None,
                    alias: str | None = None) -> tuple[str, int | None, str | None]:
    """``name``, ``name@3`` or ``name@production`` (with no separate version or alias)."""
    if "@" not in name:
        return name, version, alias
    name, ref = name.split("@", 1)
    if version is not None or alias is not None:
        raise ValueError(f"{name}@{ref}: give the version either after @ or as an argument")
    if not name or not ref:
        raise ValueError("a model reference is name, name@number or name@alias")
    return (name, int(ref), None) if ref.isdigit() else (name, None, ref)


class Models:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self, q: str = "", **facets: str) -> list[dict[str, Any]]:
        return self.client.request("GET", "models/", params={"q": q, **facets})["results"]

    def get(self, name: str) -> dict[str, Any]:
        return self.client.request("GET", f"models/{name}/")

    def version(self, name: str, version: int | None = None,
                alias: str | None = None) -> dict[str, Any]:
        """A version's record: by number, by alias, or the newest."""
        name, version, alias = parse_reference(name, version, alias)
        ref = str(version) if version is not None else (alias or "latest")
        return self.client.request("GET", f"models/{name}/versions/{ref}/")

    def files(self, name: str, version: int | None = None,
              alias: str | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
        """The version record and local, SHA-256-checked paths of its files by role."""
        name, version, alias = parse_reference(name, version, alias)
        info = self.version(name, version, alias)
        folder = cache_dir() / "models" / name / f"v{info['number']}"
        paths = {record["role"]: cached_download(
            self.client, f"models/{name}/versions/{info['number']}/files/{record['id']}/download/",
            record, folder) for record in info["files"]}
        return info, paths

    def load(self, name: str, version: int | None = None, alias: str | None = None, *,
             device: str = "cpu") -> Any:
        """A ready ``torch.nn.Module`` in eval mode (or an ONNX Runtime session)."""
        from erumlab.science import modelio

        info, paths = self.files(name, version, alias)
        if info["format"] == "onnx":
            return modelio.onnx_session(paths["weights"])
        module = modelio.load_weights(paths["weights"], info["architecture"], info["config"],
                                      device=device)
        module.erumlab_version = info["identifier"]  # what `publish(parent=...)` refers to
        return module

    def example_input(self, name: str, version: int | None = None,
                      alias: str | None = None) -> dict[str, Any]:
        """The version's declared example input, as NumPy arrays by input name."""
        from safetensors.numpy import load_file

        _, paths = self.files(name, version, alias)
        if "example-input" not in paths:
            raise LookupError(f"{name} declares no example input")
        return load_file(str(paths["example-input"]))

    def publish(self, module: torch.nn.Module | str | Path, *, name: str,
                signature: dict[str, Any] | None = None, card: str = "",
                metrics: dict[str, float] | list[dict[str, Any]] | None = None,
                datasets: list[str] | None = None, parent: str | None = None,
                aliases: list[str] | None = None, changelog: str = "",
                example_input: dict[str, Any] | None = None, title: str | None = None,
                create: dict[str, Any] | None = None, architecture: str = "",
                config: dict[str, Any] | None = None, wait: float = 600.0) -> dict[str, Any]:
        """Publish a new version of ``name`` and return its record.

        ``module`` is a module built from a registered architecture (stored as
        safetensors) or the path of a file: ONNX, safetensors, or a PyTorch
        state dict (``.pt``/``.pth``, converted to safetensors by a worker
        without unpickling code; waits up to ``wait`` seconds). Files other than
        ONNX need ``architecture`` and ``config``. ``signature`` declares inputs
        and outputs (shapes with ``None`` for the batch axis); for a module it
        is required, for ONNX it is read from the graph when left out.
        ``parent`` is the identifier of the version this one was fine-tuned from
        (a module loaded with ``load`` remembers its own). ``datasets`` are
        dataset version identifiers. The model is created first when it does
        not exist (``title`` and ``create`` give its metadata).
        """
        self._ensure_model(name, title, create or {})
        metadata: dict[str, Any] = {"card": card, "changelog": changelog,
                                    "metrics": metrics or [], "datasets": datasets or [],
                                    "aliases": aliases or [], "signature": signature or {}}
        with tempfile.TemporaryDirectory(prefix="erumlab-publish-") as scratch:
            if isinstance(module, (str, Path)):
                weights = Path(module)
                if architecture:
                    metadata["architecture"], metadata["config"] = architecture, config or {}
            else:
                from erumlab.science import modelio
                from erumlab.science import nn as architectures

                metadata["architecture"], metadata["config"] = \
                    architectures.architecture_of(module)
                weights = modelio.save_weights(module, Path(scratch) / "weights.safetensors")
                parent = parent or getattr(module, "erumlab_version", None)
            if parent:
                metadata["parent"] = parent
            metadata["sha256"] = sha256_file(weights)
            files = {"weights": weights}
            if example_input is not None:
                from safetensors.numpy import save_file

                example = Path(scratch) / "example_input.safetensors"
                save_file({k: _numpy(v) for k, v in example_input.items()}, str(example))
                files["example_input"] = example
                metadata["example_sha256"] = sha256_file(example)
            handles = {role: path.open("rb") for role, path in files.items()}
            try:
                result = self.client.request(
                    "POST", f"models/{name}/versions/", data={"metadata": json.dumps(metadata)},
                    files={role: (files[role].name, handle) for role, handle in handles.items()},
                    timeout=max(self.client.timeout, 300))
            finally:
                for handle in handles.values():
                    handle.close()
        if "state" in result:  # a .pt/.pth file: converted by a worker first
            return self._wait_for_conversion(name, result, wait)
        return result

    def _ensure_model(self, name: str, title: str | None, create: dict[str, Any]) -> None:
        from erumlab.client.api import ApiError

        try:
            self.get(name)
        except ApiError as error:
            if error.status != 404:
                raise
            self.client.request("POST", "models/",
                                json={"name": name, "title": title or name, **create})

    def _wait_for_conversion(self, name: str, conversion: dict[str, Any],
                             wait: float) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while conversion["state"] == "pending":
            if time.monotonic() > deadline:
                raise TimeoutError(f"conversion {conversion['id']} still pending after {wait} s")
            time.sleep(1.0)
            conversion = self.client.request("GET", f"conversions/{conversion['id']}/")
        if conversion["state"] == "failed":
            raise PublishFailed(conversion["error"])
        return self.version(name, conversion["version"])

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        return self.client.request("POST", f"models/{name}/aliases/",
                                   json={"name": alias, "version": version})


def _numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value)


_default: Models | None = None


def _models() -> Models:
    global _default
    if _default is None:
        from erumlab.client.api import Client

        _default = Models(Client())
    return _default


def load(name: str, version: int | None = None, alias: str | None = None, **options: Any
         ) -> Any:
    """Load with the default client (ERUMLAB_URL and ERUMLAB_API_TOKEN)."""
    return _models().load(name, version, alias, **options)


def publish(module: Any, **options: Any) -> dict[str, Any]:
    return _models().publish(module, **options)


def version(name: str, version: int | None = None, alias: str | None = None) -> dict[str, Any]:
    return _models().version(name, version, alias)


def list(q: str = "", **facets: str) -> list[dict[str, Any]]:  # noqa: A001
    return _models().list(q, **facets)
