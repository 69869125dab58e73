"""The architecture registry: building by name, recording and replaying configs, refusals,
registration, and safetensors round trips of a registered architecture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from erumlab.science import modelio, nn

MLP_CONFIG = {"inputs": 16, "hidden": [64, 32], "outputs": 5}


@pytest.fixture
def registry():
    """The global registry, restored afterwards: test architectures never leak out."""
    saved = dict(nn.ARCHITECTURES)
    yield nn.ARCHITECTURES
    nn.ARCHITECTURES.clear()
    nn.ARCHITECTURES.update(saved)


def test_names_include_the_built_in_architectures():
    assert {"mlp", "ising-cnn"} <= set(nn.names())
    assert nn.names() == sorted(nn.names())


def test_providers_register_without_being_imported_first():
    code = ("import sys; from erumlab.science import nn; "
            "assert 'erumlab.science.ising' not in sys.modules; "
            "print(type(nn.build('ising-cnn', {'size': 8})).__name__, 'ising-cnn' in nn.names())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(nn.__file__).parents[2]), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["IsingCNN", "True"]


def test_build_by_name_records_the_full_config():
    model = nn.build("mlp", MLP_CONFIG)
    assert isinstance(model, nn.MLP)
    assert model(torch.zeros(3, 4, 4)).shape == (3, 5)  # feature axes are flattened
    name, config = nn.architecture_of(model)
    assert name == "mlp"
    assert config == {**MLP_CONFIG, "activation": "relu", "dropout": 0.0,
                      "batch_norm": False, "output_activation": None}
    assert nn.parameter_count(model) == 16 * 64 + 64 + 64 * 32 + 32 + 32 * 5 + 5


@pytest.mark.parametrize(("name", "config"), [
    ("mlp", MLP_CONFIG),
    ("mlp", {"inputs": 3, "outputs": 2, "hidden": [4], "batch_norm": True, "dropout": 0.1,
             "activation": "gelu", "output_activation": "softmax"}),
    ("ising-cnn", {"size": 8, "channels": [4, 8, 8], "hidden": 16}),
    ("ising-cnn", None),
])
def test_architecture_of_round_trips(name, config):
    model = nn.build(name, config)
    rebuilt = nn.build(*nn.architecture_of(model))
    assert nn.architecture_of(rebuilt) == nn.architecture_of(model)
    assert str(rebuilt) == str(model)
    assert nn.parameter_count(rebuilt) == nn.parameter_count(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_the_recorded_config_is_a_copy():
    hidden = [8, 8]
    model = nn.build("mlp", {"inputs": 2, "outputs": 1, "hidden": hidden})
    hidden.append(99)
    assert nn.architecture_of(model)[1]["hidden"] == [8, 8]
    nn.architecture_of(model)[1]["hidden"].append(7)
    assert nn.architecture_of(model)[1]["hidden"] == [8, 8]


def test_an_unknown_architecture_is_named_with_the_known_ones():
    with pytest.raises(nn.UnknownArchitecture, match="'transformer-xxl'.*ising-cnn.*mlp"):
        nn.build("transformer-xxl", {})
    assert issubclass(nn.UnknownArchitecture, LookupError)


def test_a_module_built_elsewhere_has_no_architecture():
    with pytest.raises(nn.UnknownArchitecture, match="Linear is not an architecture"):
        nn.architecture_of(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(("config", "message"), [
    ({**MLP_CONFIG, "widths": 3}, "widths"),  # unknown keyword
    ({"inputs": 16}, "outputs"),  # missing keyword
    ({**MLP_CONFIG, "hidden": [64, 0]}, "positive"),
    ({**MLP_CONFIG, "dropout": 1.0}, "dropout"),
    ({**MLP_CONFIG, "activation": "swish"}, "unknown activation 'swish'"),
    ([16, 5], "JSON object"),
])
def test_a_bad_config_is_an_architecture_config_error(config, message):
    with pytest.raises(nn.ArchitectureConfigError, match=message) as caught:
        nn.build("mlp", config)
    assert str(caught.value).startswith("mlp: ")
    assert isinstance(caught.value, ValueError)


def test_registered_constructors_take_keywords_only():
    with pytest.raises(TypeError, match="keyword arguments"):
        nn.MLP(16, 5)


def test_register_makes_a_class_buildable(registry):
    @nn.register("test-linear")
    class TestLinear(torch.nn.Module):
        def __init__(self, *, width: int = 3) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(width, width)

    assert "test-linear" in nn.names()
    model = nn.build("test-linear", {"width": 4})
    assert isinstance(model, TestLinear)
    assert nn.architecture_of(model) == ("test-linear", {"width": 4})
    assert nn.architecture_of(nn.build("test-linear")) == ("test-linear", {"width": 3})


def test_a_taken_name_cannot_be_registered_again(registry):
    original = registry["mlp"]

    class Impostor(torch.nn.Module):
        pass

    with pytest.raises(ValueError, match="'mlp' is already registered"):
        nn.register("mlp")(Impostor)
    assert registry["mlp"] is original
    assert isinstance(nn.build("mlp", MLP_CONFIG), original)


# Weights files ---------------------------------------------------------------------------


def test_weights_round_trip_with_the_architecture_in_the_metadata(tmp_path):
    torch.manual_seed(0)
    model = nn.build("ising-cnn", {"size": 8, "channels": [4, 8]}).eval()
    path = modelio.save_weights(model, tmp_path / "cnn.safetensors", metadata={"note": "x"})
    header = modelio.read_safetensors_header(path)
    assert header.metadata["erumlab.architecture"] == "ising-cnn"
    assert header.metadata["note"] == "x"
    assert header.parameter_count == nn.parameter_count(model)

    loaded = modelio.load_weights(path, *nn.architecture_of(model))
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    spins = torch.randint(0, 2, (4, 8, 8)).float() * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(spins), model(spins))


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    model = nn.build("ising-cnn", {"size": 8, "channels": [4, 8]})
    path = modelio.save_weights(model, tmp_path / "cnn.safetensors")
    with pytest.raises(modelio.ModelFileError, match="do not fit ising-cnn"):
        modelio.load_weights(path, "ising-cnn", {"size": 8, "channels": [4, 16]})
    with pytest.raises(modelio.ModelFileError, match="do not fit ising-cnn"):
        modelio.load_weights(path, "ising-cnn", {"size": 8, "channels": [4, 8, 8]})
