from __future__ import annotations

import io

import h5py
import numpy as np
import pytest

from erumlab.catalogue import services
from erumlab.catalogue.models import Visibility


def hdf5_bytes(seed: int = 1) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        group = handle.create_group("showers")
        group.create_dataset("energy", data=np.random.default_rng(seed).normal(50, 10, 5000))
        group.create_dataset("layers", data=np.arange(84, dtype="float32").reshape(7, 12))
        handle.attrs["generator"] = "toy"
    return buffer.getvalue()


def add(version, actor, name: str, content: bytes, sha256: str = ""):
    return services.file_add(version=version, actor=actor, name=name,
                             content=io.BytesIO(content), size=len(content), sha256=sha256)


@pytest.fixture
def make_dataset(user):
    def make(*, owner=None, visibility=Visibility.PUBLIC, collaboration=None, publish=True,
             title="Toy calorimeter showers", content=b"energy\n1.0\n2.0\n", **fields):
        owner = owner or user
        dataset = services.dataset_create(owner=owner, title=title, visibility=visibility,
                                          collaboration=collaboration, **fields)
        version = dataset.versions.get()
        add(version, owner, "table.csv", content)
        if publish:
            services.version_publish(version=version, actor=owner)
        return dataset
    return make
