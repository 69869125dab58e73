"""Publishing verified versions: formats, refusals that leave nothing behind, aliases,
lineage, metrics, conversions of pickle-based files and try-it runs."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save as save_numpy

from erumlab.science import modelio
from erumlab.zoo import selectors, services
from erumlab.zoo.models import AliasMove, Conversion, ModelFile, ModelVersion, TryRun
from tests.catalogue.conftest import add
from tests.zoo.conftest import CONFIG, SIGNATURE, incoming, tagger, weights_bytes

pytestmark = pytest.mark.django_db


def stored_model_objects() -> list[str]:
    root = Path(default_storage.path("models"))
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_publish_verifies_and_records_a_version(make_model, publish, user):
    model = make_model()
    version = publish(model, user, card="# Jet tagger", metrics={"accuracy": 0.75})
    assert version.number == 1
    assert version.identifier == f"erumlab:models/{model.name}.v1"
    assert version.parameter_count == 4389  # 16-64-32-32-5
    assert version.config == {**CONFIG, "activation": "relu", "dropout": 0.0,
                              "batch_norm": False, "output_activation": None}
    weights = version.weights
    assert weights.size == default_storage.size(weights.storage_key)
    loaded = modelio.load_weights(Path(default_storage.path(weights.storage_key)), "mlp",
                                  version.config)
    for name, tensor in tagger().state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert version.metrics.get().value == 0.75


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"signature": {**SIGNATURE, "outputs": [{"name": "logits", "shape": [None, 4]}]}},
     "signature", "axis 1 has size 5, declared 4"),
    ({"config": {**CONFIG, "hidden": [64, 32]}}, "weights", "do not fit mlp"),
    ({"architecture": "transformer-xxl"}, "architecture", "unknown architecture"),
    ({"config": {**CONFIG, "widths": 3}}, "config", "widths"),
    ({"signature": {}}, "signature", "Declare the inputs"),
    ({"metrics": [{"name": "auc", "value": "high"}]}, "metrics", "must be a number"),
    ({"metrics": [{"name": "roc", "value": 0.9, "curve": {"kind": "roc", "x": [0, 1],
                                                           "y": [1]}}]},
     "metrics", "matching length"),
])
def test_a_failed_check_leaves_no_version_and_no_file(make_model, publish, user, change,
                                                       field, message):
    model = make_model()
    with pytest.raises(ValidationError) as caught:
        publish(model, user, **change)
    assert message in " ".join(caught.value.message_dict[field])
    assert not ModelVersion.objects.exists()
    assert not ModelFile.objects.exists()
    assert stored_model_objects() == []


def test_checksum_size_and_quota_are_checked_before_storing(make_model, user, tmp_path,
                                                            settings):
    model = make_model()
    content = weights_bytes(tagger(), tmp_path)
    publication = services.Publication(architecture="mlp", config=CONFIG, signature=SIGNATURE)
    with pytest.raises(ValidationError, match="checksum mismatch"):
        services.version_publish(model=model, actor=user, publication=publication,
                                 weights=incoming(content, sha256="0" * 64))
    truncated = services.Incoming(io.BytesIO(content[:-10]), "w.safetensors", len(content))
    with pytest.raises(ValidationError, match="truncated upload"):
        services.version_publish(model=model, actor=user, weights=truncated,
                                 publication=publication)
    settings.ERUMLAB_MODEL_MAX_BYTES = 1000
    with pytest.raises(ValidationError, match="exceeds the limit"):
        services.version_publish(model=model, actor=user, weights=incoming(content),
                                 publication=publication)
    settings.ERUMLAB_MODEL_MAX_BYTES = 10**9
    settings.ERUMLAB_QUOTA_USER_BYTES = len(content) - 1
    with pytest.raises(ValidationError, match="Over quota"):
        services.version_publish(model=model, actor=user, weights=incoming(content),
                                 publication=publication)
    assert not ModelVersion.objects.exists()
    assert stored_model_objects() == []
    scratch = Path(settings.ERUMLAB_UPLOAD_SCRATCH) / "models"
    assert not scratch.exists() or list(scratch.iterdir()) == []


def test_only_editors_publish(make_model, publish, other_user):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        publish(make_model(), other_user)


class Payload:
    """Unpickling this would create the marker file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def malicious_torch_file(path: Path, marker: Path) -> Path:
    """A file in torch.save's zip layout whose data.pkl runs code when unpickled."""
    torch.save({"layers.1.weight": torch.zeros(2)}, path)
    with zipfile.ZipFile(path) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    data_pkl = next(name for name in entries if name.endswith("data.pkl"))
    entries[data_pkl] = pickle.dumps({"layers.1.weight": Payload(marker)}, protocol=2)
    with zipfile.ZipFile(path, "w") as target:
        for name, content in entries.items():
            target.writestr(name, content)
    return path


def test_pickle_files_are_refused_outright(make_model, user, tmp_path):
    marker = tmp_path / "pwned"
    content = pickle.dumps(Payload(marker))
    with pytest.raises(ValidationError, match="pickle files are never loaded"):
        services.version_publish(model=make_model(), actor=user,
                                 weights=incoming(content, name="model.pkl"),
                                 publication=services.Publication(architecture="mlp"))
    assert not marker.exists()


@pytest.mark.parametrize("layout", ["raw pickle", "torch zip"])
def test_a_malicious_pt_file_never_runs_code(make_model, user, tmp_path, layout):
    marker = tmp_path / "pwned"
    control = tmp_path / "control"
    if layout == "raw pickle":
        content = pickle.dumps(Payload(marker), protocol=2)
        pickle.loads(pickle.dumps(Payload(control), protocol=2))  # noqa: S301 (the control)
    else:
        content = malicious_torch_file(tmp_path / "evil.pt", marker).read_bytes()
        torch.load(malicious_torch_file(tmp_path / "control.pt", control), weights_only=False)
    assert control.exists()  # the payload is live: an unrestricted load runs it
    conversion = services.version_publish(
        model=make_model(), actor=user, weights=incoming(content, name="evil.pt"),
        publication=services.Publication(architecture="mlp", config=CONFIG,
                                         signature=SIGNATURE))
    assert isinstance(conversion, Conversion)
    assert not marker.exists()  # the portal stored it without reading it
    conversion = services.conversion_run(conversion_id=str(conversion.pk))
    assert conversion.state == Conversion.State.FAILED
    assert "not a plain PyTorch state dict" in conversion.error
    assert not marker.exists()
    assert not ModelVersion.objects.exists()
    assert stored_model_objects() == []


def test_a_state_dict_pt_file_is_converted_to_safetensors(make_model, user, tmp_path):
    module = tagger(seed=3)
    torch.save(module.state_dict(), tmp_path / "tagger.pt")
    conversion = services.version_publish(
        model=make_model(), actor=user,
        weights=incoming((tmp_path / "tagger.pt").read_bytes(), name="tagger.pt"),
        publication=services.Publication(architecture="mlp", config=CONFIG,
                                         signature=SIGNATURE, aliases=["production"]))
    conversion = services.conversion_run(conversion_id=str(conversion.pk))
    assert conversion.state == Conversion.State.DONE, conversion.error
    version = conversion.version
    assert version.format == "safetensors"
    assert version.aliases.get().name == "production"
    loaded = modelio.load_weights(Path(default_storage.path(version.weights.storage_key)),
                                  "mlp", version.config)
    x = torch.randn(3, 16)
    assert torch.equal(loaded(x), module.eval()(x))


def onnx_bytes(outputs: int = 3, broken: bool = False) -> bytes:
    weight = numpy_helper.from_array(np.ones((4, outputs), dtype=np.float32), "W")
    bias = numpy_helper.from_array(np.zeros(outputs, dtype=np.float32), "B")
    node = helper.make_node("Gemm", ["x", "W", "B" if not broken else "missing"], ["y"])
    graph = helper.make_graph(
        [node], "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", outputs])],
        initializer=[weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_onnx_models_are_checked_and_their_signature_read(make_model, user):
    model = make_model(name="onnx-toy")
    version = services.version_publish(model=model, actor=user,
                                       weights=incoming(onnx_bytes(), name="toy.onnx"),
                                       publication=services.Publication())
    assert version.framework == "onnx"
    assert version.parameter_count == 4 * 3 + 3
    assert version.signature["inputs"][0] == {"name": "x", "shape": [None, 4],
                                              "dtype": "float32", "unit": "",
                                              "description": ""}
    assert version.signature["outputs"][0]["name"] == "y"
    assert version.signature["outputs"][0]["shape"] == [None, 3]
    with pytest.raises(ValidationError, match="onnx.checker"):
        services.version_publish(model=model, actor=user,
                                 weights=incoming(onnx_bytes(broken=True), name="b.onnx"),
                                 publication=services.Publication())
    assert model.versions.count() == 1


def test_aliases_move_and_keep_their_history(make_model, publish, user):
    model = make_model()
    v1 = publish(model, user, aliases=["production"])
    v2 = publish(model, user, module=tagger(seed=1))
    assert selectors.version_resolve(model, alias="production") == v1
    assert selectors.version_resolve(model, alias="latest") == v2
    services.alias_set(model=model, actor=user, name="production", number=2)
    assert selectors.version_resolve(model, alias="production") == v2
    moves = list(AliasMove.objects.filter(model=model).values_list("alias", "from_number",
                                                                    "to_number"))
    assert moves == [("production", 1, 2), ("production", None, 1)]
    with pytest.raises(ValidationError, match="newest version"):
        services.alias_set(model=model, actor=user, name="latest", number=1)
    with pytest.raises(ValidationError, match="no version 7"):
        services.alias_set(model=model, actor=user, name="staging", number=7)
    services.alias_delete(model=model, actor=user, name="production")
    assert selectors.version_resolve(model, alias="production") is None


def test_lineage_links_both_ways(make_model, publish, make_dataset, user, other_user):
    from erumlab.catalogue.models import Visibility as DatasetVisibility

    public = make_dataset(title="Jets for training").versions.get()
    hidden = make_dataset(title="Private jets", visibility=DatasetVisibility.PRIVATE
                          ).versions.get()
    base = make_model(name="base")
    v1 = publish(base, user, training_datasets=[public, hidden],
                 metrics=[{"name": "auc", "value": 0.9, "dataset": public.identifier}])
    derived_model = make_model(name="derived")
    derived = publish(derived_model, user, parent=v1, module=tagger(seed=2))
    mine = selectors.lineage(user, v1)
    assert mine["derivatives"] == [derived]
    assert set(mine["datasets"]) == {public, hidden}
    assert selectors.lineage(user, derived)["parent"] == v1
    theirs = selectors.lineage(other_user, v1)
    assert theirs["datasets"] == [public]  # the private dataset stays private
    assert list(public.trained_models.all()) == [v1]
    assert v1.metrics.get().dataset_version == public


def test_versions_compare_side_by_side(make_model, publish, user):
    model = make_model()
    v1 = publish(model, user, metrics={"accuracy": 0.8, "auc": 0.85})
    v2 = publish(model, user, module=tagger(seed=1), metrics={"accuracy": 0.9,
                                                              "rejection": 40.0})
    names, rows = selectors.comparison([v1, v2])
    assert names == ["accuracy", "auc", "rejection"]
    assert rows == [["accuracy", 0.8, 0.9], ["auc", 0.85, None], ["rejection", None, 40.0]]


def test_try_it_runs_the_example_input(make_model, user, tmp_path):
    module = tagger()
    example = np.linspace(-1, 1, 3 * 16, dtype=np.float32).reshape(3, 16)
    version = services.version_publish(
        model=make_model(), actor=user, weights=incoming(weights_bytes(module, tmp_path)),
        example_input=incoming(save_numpy({"features": example}), name="example.safetensors"),
        publication=services.Publication(architecture="mlp", config=CONFIG,
                                         signature=SIGNATURE))
    run = services.try_run_start(version=version, actor=user)
    run = services.try_run_execute(run_id=str(run.pk))
    assert run.state == TryRun.State.DONE, run.error
    logits = run.output["outputs"]["logits"]
    assert logits["shape"] == [3, 5]
    expected = module.eval()(torch.from_numpy(example)).detach().numpy().reshape(-1)
    np.testing.assert_allclose(logits["values"], expected, rtol=1e-6)


def test_an_example_input_that_does_not_fit_is_refused(make_model, user, tmp_path):
    with pytest.raises(ValidationError, match="axis 1 has size 8, declared 16"):
        services.version_publish(
            model=make_model(), actor=user,
            weights=incoming(weights_bytes(tagger(), tmp_path)),
            example_input=incoming(save_numpy({"features": np.zeros((2, 8), np.float32)})),
            publication=services.Publication(architecture="mlp", config=CONFIG,
                                             signature=SIGNATURE))
    assert stored_model_objects() == []


def test_models_share_the_storage_quota_with_datasets(make_model, publish, make_dataset,
                                                      user, settings, tmp_path):
    from erumlab.core.quota import usage_bytes

    dataset = make_dataset(publish=False)
    before = usage_bytes(user=user)
    version = publish(make_model(), user)
    assert usage_bytes(user=user) == before + version.weights.size
    settings.ERUMLAB_QUOTA_USER_BYTES = usage_bytes(user=user) + 5
    with pytest.raises(ValidationError, match="Over quota"):
        add(dataset.versions.get(), user, "more.csv", b"x\n" * 10)
