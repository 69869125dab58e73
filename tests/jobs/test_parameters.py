"""Parameters are read with papermill's inspector and coerced strictly, naming the culprit."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from django.conf import settings

from erumlab.jobs.parameters import NotebookError, ParameterError, coerce, inspect, read_notebook
from tests.jobs.conftest import notebook

HELLO = Path(settings.ERUMLAB_TEMPLATES_DIR) / "hello.ipynb"


def _declared():
    return [p.as_dict() for p in inspect(nbformat.read(HELLO, as_version=4))]


def test_types_defaults_and_help_come_from_the_hints():
    declared = {p["name"]: p for p in _declared()}
    assert declared["steps"] == {"name": "steps", "type": "int", "default": 3,
                                 "help": "how many steps to count"}
    assert declared["pause"]["type"] == "float"
    assert declared["fail"]["type"] == "bool" and declared["fail"]["default"] is False
    assert declared["name"]["default"] == "world"


def test_form_strings_are_coerced_to_the_declared_types():
    values = coerce(_declared(), {"steps": "7", "pause": "0.5", "fail": "true", "name": " x "},
                    from_form=True)
    assert values == {"steps": 7, "pause": 0.5, "fail": True, "name": " x "}


def test_api_values_must_already_have_the_right_type():
    assert coerce(_declared(), {"pause": 2}) == {"pause": 2.0}
    with pytest.raises(ParameterError) as error:
        coerce(_declared(), {"steps": "7", "fail": 1})
    assert set(error.value.errors) == {"steps", "fail"}
    assert "expected an integer" in error.value.errors["steps"]


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("steps", "seven", "expected an integer"),
    ("steps", "7.5", "expected an integer"),
    ("pause", "fast", "expected a number"),
    ("fail", "maybe", "expected true or false"),
])
def test_each_bad_form_value_names_its_parameter(name, value, problem):
    with pytest.raises(ParameterError) as error:
        coerce(_declared(), {name: value}, from_form=True)
    assert problem in error.value.errors[name]
    assert name in str(error.value)


def test_unknown_names_are_rejected_listing_the_known_ones():
    with pytest.raises(ParameterError) as error:
        coerce(_declared(), {"epochs": 3})
    assert "unknown parameter" in error.value.errors["epochs"]
    assert "steps" in error.value.errors["epochs"]


def test_a_notebook_without_a_parameters_cell_is_refused():
    with pytest.raises(NotebookError, match="no cell tagged 'parameters'"):
        inspect(read_notebook(notebook("print(1)")))


def test_garbage_is_not_a_notebook():
    with pytest.raises(NotebookError, match="not a valid Jupyter notebook"):
        read_notebook("{not json")
