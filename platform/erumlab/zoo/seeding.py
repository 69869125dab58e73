"""The models that ship with erumlab: published at `erumlab init` so a fresh zoo is not empty.

Each folder under zoo/seed/ holds ``model.json`` (metadata, card, metrics,
signature), ``weights.safetensors`` and optionally ``example_input.safetensors``,
written by ``python -m erumlab.zoo.seed.build``. They are published through
the same checks as any upload, owned by the first administrator and public.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from erumlab.accounts.models import User
from erumlab.jobs.models import Template
from erumlab.zoo import services
from erumlab.zoo.models import Model, ModelFile, Visibility

log = logging.getLogger(__name__)

SEED_DIR = Path(__file__).resolve().parent / "seed"


@dataclass
class Seeded:
    name: str
    outcome: str  # "published vN", "up to date" or why it was skipped


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _incoming(path: Path) -> services.Incoming:
    return services.Incoming(path.open("rb"), path.name, path.stat().st_size, _sha256(path))


def seed_models(*, folder: Path = SEED_DIR) -> list[Seeded]:
    """Publish each bundled model whose weights the zoo does not hold yet."""
    admin = User.objects.filter(is_superuser=True).order_by("date_joined", "pk").first()
    if admin is None:
        raise LookupError("bundled models need an administrator to own them: run ensure_admin")
    return [_seed_one(path.parent, admin) for path in sorted(folder.glob("*/model.json"))]


def _seed_one(folder: Path, admin: User) -> Seeded:
    meta = json.loads((folder / "model.json").read_text())
    name = meta["name"]
    template = Template.objects.filter(slug=meta.get("finetune_template", ""),
                                       owner__isnull=True, is_active=True).first()
    model = Model.objects.filter(name=name).first()
    if model is None:
        model = services.model_create(
            owner=admin, name=name, title=meta["title"], summary=meta.get("summary", ""),
            visibility=Visibility.PUBLIC, task=meta["task"], domain=meta["domain"],
            licence=meta["licence"], keywords=meta.get("keywords", []),
            finetune_template=template)
    elif not model.owner.is_superuser:
        # Someone took the name before the bundled model arrived: never write into theirs.
        return Seeded(name, f"skipped: the name belongs to {model.owner.username}'s model")
    elif model.finetune_template is None and template is not None:
        services.model_update(model=model, actor=model.owner, finetune_template=template)
    weights = folder / "weights.safetensors"
    if model.versions.filter(files__role=ModelFile.Role.WEIGHTS,
                             files__sha256=_sha256(weights)).exists():
        return Seeded(name, "up to date")
    example = folder / "example_input.safetensors"
    incoming = _incoming(weights)
    example_incoming = _incoming(example) if example.is_file() else None
    try:
        version = services.version_publish(
            model=model, actor=model.owner, weights=incoming, example_input=example_incoming,
            publication=services.Publication(
                architecture=meta["architecture"], config=meta["config"],
                signature=meta["signature"], card=meta["card"],
                changelog=meta.get("changelog", ""), metrics=meta.get("metrics", []),
                aliases=meta.get("aliases", [])))
    finally:
        incoming.content.close()
        if example_incoming is not None:
            example_incoming.content.close()
    outcome = f"published v{version.number}"
    if meta.get("finetune_template") and template is None:
        outcome += f" (no bundled job template {meta['finetune_template']!r} to fine-tune it)"
    return Seeded(name, outcome)
