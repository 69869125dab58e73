"""A template's parameters, as papermill's inspector reads them, and strict coercion.

The parameters cell is written with type hints (``epochs: int = 10  # help``);
the inspector reports name, type, default and help text. Values from a web
form (strings) or the API (JSON) are coerced to the declared type before a
job is queued; every error names its parameter.
"""

from __future__ import annotations

import ast
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill

SUPPORTED_TYPES = ("int", "float", "bool", "str", "list", "dict")


class ParameterError(ValueError):
    """Parameter values that cannot be accepted; ``errors`` maps each name to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in errors.items()))


class NotebookError(ValueError):
    """A notebook that cannot serve as a template."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # one of SUPPORTED_TYPES, or "any" when the cell gives no hint
    default: Any
    help: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normalise_type(name: str) -> str:
    name = (name or "").strip()
    base = name.split("[", 1)[0].lower()
    aliases = {"integer": "int", "string": "str", "boolean": "bool", "none": "any", "": "any",
               "tuple": "list", "mapping": "dict"}
    base = aliases.get(base, base)
    return base if base in SUPPORTED_TYPES else "any"


def read_notebook(content: str | bytes) -> nbformat.NotebookNode:
    try:
        notebook = nbformat.reads(content, as_version=4)
        nbformat.validate(notebook)
    except (nbformat.ValidationError, json.JSONDecodeError, ValueError, KeyError) as exc:
        raise NotebookError(f"not a valid Jupyter notebook ({str(exc).splitlines()[0]})") from exc
    return notebook


def inspect(notebook: nbformat.NotebookNode) -> list[Parameter]:
    """The declared parameters, in the order of the parameters cell."""
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in notebook.cells):
        raise NotebookError(
            "the notebook has no cell tagged 'parameters' (tag the cell that assigns the "
            "parameters, with type hints such as `epochs: int = 10  # help text`)"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "template.ipynb"
        nbformat.write(notebook, path)
        found = papermill.inspect_notebook(str(path))
    parameters = []
    for name, info in found.items():
        kind = _normalise_type(info.get("inferred_type_name", ""))
        default = _literal(info.get("default", "None"))
        parameters.append(Parameter(name=name, type=kind, default=default,
                                    help=info.get("help", "") or ""))
    return parameters


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        # An expression (e.g. `np.pi`): keep its text; a job must then pass a value.
        return source


def coerce(declared: list[dict[str, Any]], values: dict[str, Any], *,
           from_form: bool = False) -> dict[str, Any]:
    """Validate ``values`` against the declared parameters; return the values to inject.

    Only parameters given are returned (the others keep the notebook's default).
    Web-form values arrive as strings and are parsed; API values must already
    have the right JSON type (an int is accepted for a float).
    """
    by_name = {item["name"]: item for item in declared}
    errors: dict[str, str] = {}
    result: dict[str, Any] = {}
    for name in values:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            errors[name] = f"unknown parameter (this template declares: {known})"
    for name, value in values.items():
        if name not in by_name:
            continue
        kind = by_name[name]["type"]
        try:
            result[name] = _coerce_one(kind, value, from_form=from_form)
        except (TypeError, ValueError) as exc:
            errors[name] = str(exc)
    if errors:
        raise ParameterError(errors)
    return result


def _coerce_one(kind: str, value: Any, *, from_form: bool) -> Any:  # noqa: C901, PLR0911
    if from_form and isinstance(value, str):
        if kind == "str":
            return value  # spaces may matter in a string parameter
        value = value.strip()
        if kind == "bool":
            lowered = value.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off", ""):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if kind == "any":
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"expected {_article(kind)}, got {value!r}") from None
    if kind == "any":
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise TypeError(f"expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"expected an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(f"expected a number, got {value!r}")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise TypeError(f"expected a string, got {value!r}")
    if kind == "list":
        if isinstance(value, list):
            return value
        raise TypeError(f"expected a list, got {value!r}")
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise TypeError(f"expected a mapping, got {value!r}")
    raise TypeError(f"unsupported parameter type {kind!r}")


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "list": "a JSON list",
            "dict": "a JSON object"}.get(kind, kind)
