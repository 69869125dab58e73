from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from erumlab.science import modelio
from erumlab.science import nn as architectures
from erumlab.zoo import services
from erumlab.zoo.models import Visibility
from tests.catalogue.conftest import make_dataset  # noqa: F401 (fixture shared with the catalogue)

SIGNATURE = {"inputs": [{"name": "features", "shape": [None, 16], "dtype": "float32",
                         "unit": "GeV", "description": "jet observables"}],
             "outputs": [{"name": "logits", "shape": [None, 5], "dtype": "float32"}]}
CONFIG = {"inputs": 16, "hidden": [64, 32, 32], "outputs": 5}


def tagger(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return architectures.build("mlp", CONFIG)


def weights_bytes(module: torch.nn.Module, tmp_path: Path) -> bytes:
    path = modelio.save_weights(module, tmp_path / f"w{id(module)}.safetensors")
    return path.read_bytes()


def incoming(content: bytes, name: str = "weights.safetensors", sha256: str = ""):
    return services.Incoming(io.BytesIO(content), name, len(content), sha256)


@pytest.fixture
def make_model(user):
    def make(*, owner=None, visibility=Visibility.PUBLIC, collaboration=None, name="",
             title="Jet tagger", **fields):
        return services.model_create(owner=owner or user, title=title, name=name,
                                     visibility=visibility, collaboration=collaboration,
                                     task="classification", domain="jets", **fields)
    return make


@pytest.fixture
def publish(tmp_path):
    def publish_(model, actor, module=None, **publication):
        module = module if module is not None else tagger()
        publication.setdefault("architecture", "mlp")
        publication.setdefault("config", CONFIG)
        publication.setdefault("signature", SIGNATURE)
        return services.version_publish(
            model=model, actor=actor, weights=incoming(weights_bytes(module, tmp_path)),
            publication=services.Publication(**publication))
    return publish_


@pytest.fixture(autouse=True)
def _own_media(settings, tmp_path):
    # Each test sees only the stored objects it made (refusals must leave none).
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ERUMLAB_UPLOAD_SCRATCH = str(tmp_path / "scratch")
