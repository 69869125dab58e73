"""Writes for the model zoo: models, verified versions, aliases, conversions, try-it runs.

A version exists only once everything about it has been checked: the bytes
(size limit, quota, SHA-256), the format (safetensors with an architecture
erumlab knows, or ONNX through onnx.checker and ONNX Runtime), a dry run on
zero inputs against the declared signature, the example input and the
metrics. A failed check leaves no version, no file row and no stored object.

Pickle-based files are never unpickled here: ``.pkl``/``.joblib`` are
refused, ``.pt``/``.pth`` wait as a ``Conversion`` for a worker, which reads
them with ``torch.load(weights_only=True)`` (erumlab.science.modelio).
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from erumlab.accounts.models import Collaboration, User
from erumlab.core import quota
from erumlab.core import visibility as shared_visibility
from erumlab.core.search import refresh_search_vector
from erumlab.core.visibility import Visibility
from erumlab.science import modelio
from erumlab.science import nn as architectures
from erumlab.zoo.models import (
    Alias,
    AliasMove,
    Conversion,
    Format,
    Framework,
    Metric,
    Model,
    ModelFile,
    ModelVersion,
    TryRun,
)
from erumlab.zoo.selectors import LATEST

CHUNK = 1 << 20
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle")
CONVERTIBLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
CURVE_KINDS = ("roc", "line", "histogram")
MAX_CURVE_POINTS = 5000


def can_edit(user: User, model: Model) -> bool:
    return shared_visibility.can_edit(user, model)


def _require_editor(user: User, model: Model) -> None:
    if not can_edit(user, model):
        raise PermissionDenied("Only the model's owner or its collaboration's maintainers can "
                               "change it.")


# Models ------------------------------------------------------------------------


def _search_document(model: Model) -> str:
    parts = [model.title, model.summary, model.name, model.get_task_display(),
             model.get_domain_display(), " ".join(model.keywords)]
    return "\n".join(p for p in parts if p)


def _clean_keywords(keywords: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for keyword in keywords:
        word = str(keyword).strip().lower()[:50]
        if word and word not in seen:
            seen.append(word)
    return seen


@transaction.atomic
def model_create(*, owner: User, title: str, name: str = "", summary: str = "",
                 visibility: str = Visibility.PRIVATE,
                 collaboration: Collaboration | None = None, task: str = "classification",
                 domain: str = "other", licence: str = "Apache-2.0",
                 keywords: Iterable[str] = (), finetune_template: Any = None) -> Model:
    shared_visibility.check_collaboration(owner, visibility, collaboration)
    name = (name or slugify(title))[:100]
    if Model.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A model named {name!r} exists already; choose "
                                       f"another name."})
    model = Model(owner=owner, name=name, title=title.strip(), summary=summary.strip(),
                  visibility=visibility, collaboration=collaboration, task=task, domain=domain,
                  licence=licence, keywords=_clean_keywords(keywords),
                  finetune_template=finetune_template)
    model.search_document = _search_document(model)
    model.full_clean()
    model.save()
    refresh_search_vector(model)
    return model


EDITABLE = ("title", "summary", "visibility", "collaboration", "task", "domain", "licence",
            "keywords", "finetune_template")


@transaction.atomic
def model_update(*, model: Model, actor: User, **fields: Any) -> Model:
    """Descriptive metadata and visibility; versions themselves never change."""
    _require_editor(actor, model)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "cannot be changed here" for name in unknown})
    for name, value in fields.items():
        setattr(model, name, _clean_keywords(value) if name == "keywords" else value)
    shared_visibility.check_collaboration(model.owner, model.visibility, model.collaboration)
    model.search_document = _search_document(model)
    model.updated_at = timezone.now()
    model.full_clean()
    model.save()
    refresh_search_vector(model)
    return model


# What a publication carries besides the bytes ---------------------------------------


@dataclass
class Publication:
    architecture: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    signature: dict[str, Any] = field(default_factory=dict)
    card: str = ""
    changelog: str = ""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    training_datasets: list[Any] = field(default_factory=list)  # catalogue DatasetVersions
    parent: ModelVersion | None = None
    produced_by: Any = None  # jobs.Job
    aliases: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """What a pending conversion keeps until its worker publishes it."""
        return {"architecture": self.architecture, "config": self.config,
                "signature": self.signature, "card": self.card, "changelog": self.changelog,
                "metrics": self.metrics, "aliases": self.aliases,
                "training_datasets": [d.pk for d in self.training_datasets],
                "parent": self.parent.pk if self.parent else None,
                "produced_by": str(self.produced_by.pk) if self.produced_by else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Publication:
        from erumlab.catalogue.models import DatasetVersion
        from erumlab.jobs.models import Job

        return cls(architecture=data["architecture"], config=data["config"],
                   signature=data["signature"], card=data["card"],
                   changelog=data["changelog"], metrics=data["metrics"],
                   aliases=data["aliases"],
                   training_datasets=list(DatasetVersion.objects.filter(
                       pk__in=data["training_datasets"])),
                   parent=ModelVersion.objects.filter(pk=data["parent"]).first()
                   if data["parent"] else None,
                   produced_by=Job.objects.filter(pk=data["produced_by"]).first()
                   if data["produced_by"] else None)


@dataclass
class Incoming:
    """An uploaded file: a stream, its name and declared size (and optional SHA-256)."""

    content: IO[bytes]
    name: str
    size: int
    sha256: str = ""


def _clean_metrics(raw: Any) -> list[dict[str, Any]]:
    if raw in (None, ""):
        return []
    if isinstance(raw, dict):  # {"accuracy": 0.93, ...}
        raw = [{"name": k, "value": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise ValidationError({"metrics": "Metrics are a list of {name, value, ...} objects "
                                          "or a {name: value} object."})
    clean: list[dict[str, Any]] = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ValidationError({"metrics": f"metric {index}: expected an object"})
        name = str(item.get("name", "")).strip()
        if not name or len(name) > 100:
            raise ValidationError({"metrics": f"metric {index}: needs a name (≤ 100 chars)"})
        try:
            value = float(item.get("value"))
        except (TypeError, ValueError):
            raise ValidationError({"metrics": f"{name}: the value must be a number"}) from None
        if not math.isfinite(value):
            raise ValidationError({"metrics": f"{name}: the value must be finite"})
        entry: dict[str, Any] = {"name": name, "value": value,
                                 "unit": str(item.get("unit", "") or "")[:50],
                                 "description": str(item.get("description", "") or "")[:500],
                                 "dataset": item.get("dataset") or None, "curve": None}
        curve = item.get("curve")
        if curve:
            if not isinstance(curve, dict) or curve.get("kind", "line") not in CURVE_KINDS:
                raise ValidationError({"metrics": f"{name}: a curve is an object with kind "
                                                  f"{' or '.join(CURVE_KINDS)}, x and y"})
            x, y = curve.get("x"), curve.get("y")
            expected = len(y) + 1 if curve.get("kind") == "histogram" and isinstance(
                y, list) else len(y) if isinstance(y, list) else -1
            if not isinstance(x, list) or not isinstance(y, list) or len(x) != expected:
                raise ValidationError({"metrics": f"{name}: the curve needs lists x and y of "
                                                  f"matching length (histograms: bin edges)"})
            if len(x) > MAX_CURVE_POINTS:
                raise ValidationError({"metrics": f"{name}: at most {MAX_CURVE_POINTS} points"})
            try:
                xs, ys = [float(v) for v in x], [float(v) for v in y]
            except (TypeError, ValueError):
                raise ValidationError({"metrics": f"{name}: curve values must be numbers"}
                                      ) from None
            if not all(math.isfinite(v) for v in xs + ys):
                raise ValidationError({"metrics": f"{name}: curve values must be finite"})
            entry["curve"] = {"kind": curve.get("kind", "line"), "x": xs, "y": ys,
                              "x_label": str(curve.get("x_label", ""))[:100],
                              "y_label": str(curve.get("y_label", ""))[:100]}
        if any(m["name"] == name for m in clean):
            raise ValidationError({"metrics": f"{name}: named twice"})
        clean.append(entry)
    return clean


def _clean_aliases(names: Iterable[str]) -> list[str]:
    clean = []
    for name in names:
        name = str(name).strip()
        if name == LATEST:
            continue  # always the newest version
        if not name or not all(c.isalnum() or c == "-" for c in name) or name != name.lower():
            raise ValidationError({"aliases": f"{name!r}: aliases are lower-case words with "
                                              f"hyphens"})
        clean.append(name[:50])
    return clean


# Receiving bytes ----------------------------------------------------------------------


def _scratch_dir() -> Path:
    folder = Path(settings.ERUMLAB_UPLOAD_SCRATCH) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _receive(incoming: Incoming, what: str) -> Path:
    """Stream an upload to a scratch file, checking its size and SHA-256 on the way."""
    if incoming.size <= 0:
        raise ValidationError({what: f"{incoming.name}: the file is empty."})
    if incoming.size > settings.ERUMLAB_MODEL_MAX_BYTES:
        raise ValidationError({what: f"{incoming.name}: {incoming.size / 1e6:.1f} MB exceeds "
                                     f"the limit of {settings.ERUMLAB_MODEL_MAX_BYTES / 1e6:.0f}"
                                     f" MB per model file."})
    declared = incoming.sha256.strip().lower()
    if declared and (len(declared) != 64 or any(c not in "0123456789abcdef" for c in declared)):
        raise ValidationError({"sha256": "A SHA-256 is 64 hexadecimal digits."})
    path = _scratch_dir() / f"{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    received = 0
    try:
        with open(path, "wb") as handle:
            while block := incoming.content.read(CHUNK):
                received += len(block)
                if received > incoming.size:
                    raise ValidationError({what: f"{incoming.name}: more bytes than declared "
                                                 f"({incoming.size})."})
                digest.update(block)
                handle.write(block)
        if received != incoming.size:
            raise ValidationError({what: f"{incoming.name}: truncated upload, {received} of "
                                         f"{incoming.size} bytes arrived."})
        if declared and digest.hexdigest() != declared:
            raise ValidationError({"sha256": f"{incoming.name}: checksum mismatch: declared "
                                             f"{declared}, received {digest.hexdigest()}."})
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _kind(name: str, path: Path) -> str:
    """safetensors, onnx or convertible (a pickle-based PyTorch file); refuses the rest."""
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ValidationError({"weights": f"{name}: pickle files are never loaded on erumlab "
                                          f"(unpickling runs code). Save the weights with "
                                          f"safetensors or export the model to ONNX."})
    if suffix in CONVERTIBLE_SUFFIXES:
        return "convertible"
    if suffix == ".onnx":
        return "onnx"
    try:
        modelio.read_safetensors_header(path)
    except modelio.ModelFileError as error:
        if suffix == ".safetensors":
            raise ValidationError({"weights": f"{name}: {error}"}) from None
        raise ValidationError({"weights": f"{name}: unknown model format; upload safetensors "
                                          f"weights, an ONNX model, or a PyTorch state dict "
                                          f"(.pt/.pth, converted safely)."}) from None
    return "safetensors"


# Verification ------------------------------------------------------------------------


@dataclass
class Verified:
    framework: str
    format: str
    architecture: str
    config: dict[str, Any]
    signature: dict[str, Any]
    parameter_count: int


def _verify(path: Path, kind: str, publication: Publication) -> Verified:
    """Loadable, and the declared signature holds in a dry run on zero inputs."""
    try:
        declared = (modelio.parse_signature(publication.signature)
                    if publication.signature else None)
        if kind == "onnx":
            info = modelio.check_onnx(path, declared)
            return Verified(Framework.ONNX, Format.ONNX, "", {}, info.signature.as_dict(),
                            info.parameter_count)
        if not publication.architecture:
            raise ValidationError({"architecture": "safetensors weights need the name of the "
                                                   "architecture they belong to."})
        if declared is None or not declared.inputs:
            raise ValidationError({"signature": "Declare the inputs (name, shape, dtype) so "
                                                "that the model can be checked and used."})
        header = modelio.read_safetensors_header(path)
        module = modelio.load_weights(path, publication.architecture, publication.config)
        checked = modelio.dry_run_torch(module, declared)
        # The full config (defaults filled in) rebuilds exactly this module.
        _, config = architectures.architecture_of(module)
        return Verified(Framework.PYTORCH, Format.SAFETENSORS, publication.architecture,
                        config, checked.as_dict(), header.parameter_count)
    except architectures.UnknownArchitecture as error:
        raise ValidationError({"architecture": str(error)}) from None
    except architectures.ArchitectureConfigError as error:
        raise ValidationError({"config": str(error)}) from None
    except modelio.ModelFileError as error:
        where = "signature" if str(error).startswith(("signature", "dry run")) else "weights"
        raise ValidationError({where: str(error)}) from None


def _verify_example(path: Path, signature: dict[str, Any]) -> None:
    """The example input: a safetensors file with one tensor per declared input."""
    from safetensors.numpy import load_file

    spec = modelio.parse_signature(signature)
    try:
        modelio.read_safetensors_header(path)
        tensors = load_file(str(path))
    except Exception as error:
        raise ValidationError({"example_input": f"not a safetensors file: {error}"}) from None
    names = [s.name for s in spec.inputs]
    if sorted(tensors) != sorted(names):
        raise ValidationError({"example_input": f"holds tensors {sorted(tensors)}; the "
                                                f"signature's inputs are {names}"})
    for item in spec.inputs:
        array = tensors[item.name]
        problem = item.matches(array.shape, str(array.dtype))
        if problem:
            raise ValidationError({"example_input": problem})


def _store(path: Path, model: Model) -> str:
    with open(path, "rb") as handle:
        return default_storage.save(f"models/{model.pk}/{uuid.uuid4().hex}", File(handle))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def identifier_for(model: Model, number: int) -> str:
    return f"{settings.ERUMLAB_PID_PREFIX}:models/{model.name}.v{number}"


def _weights_name(model: Model, fmt: str) -> str:
    return f"{model.name}.{'onnx' if fmt == Format.ONNX else 'safetensors'}"


def _create_version(*, model: Model, actor: User, weights: Path, kind: str,
                    example: Path | None, publication: Publication) -> ModelVersion:
    """Verify and record; the stored objects are removed again if anything fails."""
    verified = _verify(weights, kind, publication)
    if example is not None:
        _verify_example(example, verified.signature)
    metrics = _clean_metrics(publication.metrics)
    aliases = _clean_aliases(publication.aliases)
    datasets = {d.identifier: d for d in publication.training_datasets}
    for metric in metrics:
        if metric["dataset"] and metric["dataset"] not in datasets:
            raise ValidationError({"metrics": f"{metric['name']}: dataset "
                                              f"{metric['dataset']!r} is not among the "
                                              f"training or evaluation datasets given"})
    if publication.parent is not None and publication.parent.model_id is None:
        raise ValidationError({"parent": "Unknown parent version."})
    stored: list[str] = []
    try:
        weights_key = _store(weights, model)
        stored.append(weights_key)
        example_key = _store(example, model) if example is not None else None
        if example_key:
            stored.append(example_key)
        with transaction.atomic():
            Model.objects.select_for_update().get(pk=model.pk)  # one number at a time
            number = (model.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = ModelVersion.objects.create(
                model=model, number=number, framework=verified.framework,
                format=verified.format, architecture=verified.architecture,
                config=verified.config, signature=verified.signature, card=publication.card,
                changelog=publication.changelog, parameter_count=verified.parameter_count,
                parent=publication.parent, produced_by=publication.produced_by,
                published_by=actor, identifier=identifier_for(model, number))
            ModelFile.objects.create(
                version=version, role=ModelFile.Role.WEIGHTS,
                name=_weights_name(model, verified.format), storage_key=weights_key,
                size=weights.stat().st_size, sha256=_sha256(weights),
                media_type="application/onnx" if verified.format == Format.ONNX
                else "application/octet-stream")
            if example is not None:
                ModelFile.objects.create(
                    version=version, role=ModelFile.Role.EXAMPLE,
                    name="example_input.safetensors", storage_key=example_key,
                    size=example.stat().st_size, sha256=_sha256(example))
            version.training_datasets.set(publication.training_datasets)
            Metric.objects.bulk_create([
                Metric(version=version, name=m["name"], value=m["value"], unit=m["unit"],
                       description=m["description"], curve=m["curve"],
                       dataset_version=datasets.get(m["dataset"])) for m in metrics])
            for alias in aliases:
                _move_alias(model=model, name=alias, version=version, actor=actor)
            Model.objects.filter(pk=model.pk).update(updated_at=timezone.now())
    except BaseException:
        for key in stored:
            default_storage.delete(key)
        raise
    return version


def version_publish(*, model: Model, actor: User, weights: Incoming,
                    publication: Publication, example_input: Incoming | None = None
                    ) -> ModelVersion | Conversion:
    """Check and publish a new version; a ``.pt``/``.pth`` file is converted by a worker
    first (then a ``Conversion`` is returned, which becomes a version or an error)."""
    _require_editor(actor, model)
    total = weights.size + (example_input.size if example_input else 0)
    with transaction.atomic():
        # One quota decision at a time per model owner.
        Model.objects.select_for_update().filter(pk=model.pk).first()
        quota.check_quota(owner=model.owner, collaboration=model.collaboration, size=total)
    received = _receive(weights, "weights")
    example = None
    handed_over = False  # a conversion keeps the scratch files for its worker
    try:
        example = _receive(example_input, "example_input") if example_input else None
        kind = _kind(weights.name, received)
        if kind == "convertible":
            conversion = _conversion_start(model=model, actor=actor, path=received,
                                           example=example, name=weights.name, size=total,
                                           publication=publication)
            handed_over = True
            return conversion
        return _create_version(model=model, actor=actor, weights=received, kind=kind,
                               example=example, publication=publication)
    finally:
        if not handed_over:
            received.unlink(missing_ok=True)
            if example is not None:
                example.unlink(missing_ok=True)


# Pickle-based uploads: converted by a worker --------------------------------------------


def _conversion_start(*, model: Model, actor: User, path: Path, example: Path | None,
                      name: str, size: int, publication: Publication) -> Conversion:
    if not publication.architecture:
        raise ValidationError({"architecture": "A PyTorch state dict needs the name of the "
                                               "architecture it belongs to."})
    try:
        architectures.build(publication.architecture, publication.config)
    except architectures.UnknownArchitecture as error:
        raise ValidationError({"architecture": str(error)}) from None
    except architectures.ArchitectureConfigError as error:
        raise ValidationError({"config": str(error)}) from None
    request = publication.as_json()
    request["scratch"] = path.name
    request["example"] = example.name if example else None
    conversion = Conversion.objects.create(model=model, user=actor, original_name=name,
                                           size=size, request=request)
    transaction.on_commit(lambda: _enqueue("erumlab.zoo.convert", str(conversion.pk)))
    return conversion


def _enqueue(task_name: str, object_id: str) -> None:
    from erumlab.zoo import tasks

    task = {"erumlab.zoo.convert": tasks.convert, "erumlab.zoo.try": tasks.try_model}[task_name]
    try:
        task.apply_async(args=[object_id], queue="default")
    except Exception:  # broker down: the reconciler of this record is a retry from the page
        import logging

        logging.getLogger(__name__).warning("%s of %s not queued", task_name, object_id,
                                            exc_info=True)


def conversion_run(*, conversion_id: str) -> Conversion:
    """In a worker: safetensors from the pickle (restricted unpickler), then publish."""
    conversion = Conversion.objects.select_related("model", "user").get(pk=conversion_id)
    if conversion.state != Conversion.State.PENDING:
        return conversion
    request = conversion.request
    source = _scratch_dir() / request["scratch"]
    example = _scratch_dir() / request["example"] if request.get("example") else None
    converted = source.with_suffix(".safetensors")
    try:
        if not source.is_file():
            raise ValidationError("The uploaded file is gone; upload it again.")
        modelio.convert_pickle(source, converted)
        version = _create_version(model=conversion.model, actor=conversion.user,
                                  weights=converted, kind="safetensors", example=example,
                                  publication=Publication.from_json(request))
    except (ValidationError, modelio.ModelFileError) as error:
        message = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        Conversion.objects.filter(pk=conversion.pk).update(state=Conversion.State.FAILED,
                                                           error=message)
    else:
        Conversion.objects.filter(pk=conversion.pk).update(state=Conversion.State.DONE,
                                                           version=version)
    finally:
        for path in (source, converted, example):
            if path is not None:
                path.unlink(missing_ok=True)
    conversion.refresh_from_db()
    return conversion


# Aliases ------------------------------------------------------------------------------


def _move_alias(*, model: Model, name: str, version: ModelVersion, actor: User) -> Alias:
    current = Alias.objects.select_for_update().filter(model=model, name=name).first()
    before = current.version.number if current else None
    if current is None:
        current = Alias(model=model, name=name)
    current.version = version
    current.updated_by = actor
    current.updated_at = timezone.now()
    current.save()
    if before != version.number:
        AliasMove.objects.create(model=model, alias=name, from_number=before,
                                 to_number=version.number, moved_by=actor)
    return current


@transaction.atomic
def alias_set(*, model: Model, actor: User, name: str, number: int) -> Alias:
    _require_editor(actor, model)
    (name,) = _clean_aliases([name]) or [None]
    if name is None:
        raise ValidationError({"name": "'latest' always names the newest version."})
    version = model.versions.filter(number=number).first()
    if version is None:
        raise ValidationError({"number": f"{model.name} has no version {number}."})
    return _move_alias(model=model, name=name, version=version, actor=actor)


@transaction.atomic
def alias_delete(*, model: Model, actor: User, name: str) -> None:
    _require_editor(actor, model)
    alias = Alias.objects.select_for_update().filter(model=model, name=name).first()
    if alias is None:
        raise ValidationError({"name": f"{model.name} has no alias {name!r}."})
    AliasMove.objects.create(model=model, alias=name, from_number=alias.version.number,
                             to_number=None, moved_by=actor)
    alias.delete()


# Try it ---------------------------------------------------------------------------------


def try_run_start(*, version: ModelVersion, actor: User | None) -> TryRun:
    if version.example_input is None:
        raise ValidationError("This version declares no example input to try it on.")
    run = TryRun.objects.create(version=version,
                                user=actor if actor and actor.is_authenticated else None)
    transaction.on_commit(lambda: _enqueue("erumlab.zoo.try", str(run.pk)))
    return run


def try_run_execute(*, run_id: str) -> TryRun:
    """In a worker: the model on its example input; outputs summarised for the page."""
    from safetensors.numpy import load_file

    from erumlab.core.storage import local_path

    run = TryRun.objects.select_related("version__model").get(pk=run_id)
    version = run.version
    started = time.perf_counter()
    try:
        signature = modelio.parse_signature(version.signature)
        with local_path(version.example_input) as example, \
                local_path(version.weights) as weights:
            tensors = load_file(str(example))
            inputs = [tensors[spec.name] for spec in signature.inputs]
            if version.format == Format.ONNX:
                outputs = modelio.run_onnx(weights, signature, inputs)
            else:
                module = modelio.load_weights(weights, version.architecture, version.config)
                outputs = modelio.run_torch(module, inputs)
    except Exception as error:  # shown on the page; the worker stays up
        TryRun.objects.filter(pk=run.pk).update(
            state=TryRun.State.FAILED, error=f"{type(error).__name__}: {error}"[:2000],
            seconds=time.perf_counter() - started)
    else:
        names = [spec.name for spec in signature.outputs]
        summary = {"inputs": {spec.name: modelio.to_summary(array, limit=16)
                              for spec, array in zip(signature.inputs, inputs, strict=True)},
                   "outputs": {names[i] if i < len(names) else f"output_{i}":
                               modelio.to_summary(array) for i, array in enumerate(outputs)}}
        TryRun.objects.filter(pk=run.pk).update(state=TryRun.State.DONE, output=summary,
                                                seconds=time.perf_counter() - started)
    run.refresh_from_db()
    return run
