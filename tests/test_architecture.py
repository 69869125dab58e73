"""Rules of the architecture that hold everywhere (see docs/architecture.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "platform" / "erumlab"


def test_the_science_core_imports_neither_django_nor_the_portal():
    # import-linter reads the contract from pyproject.toml.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_there_is_no_package_named_platform():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_no_page_loads_anything_from_another_host():
    external = re.compile(
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["'](https?:)?//""",
        re.IGNORECASE,
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.html")
        if external.search(path.read_text())
    ]
    assert offenders == []


def test_escaping_is_never_switched_off_without_a_stated_reason():
    # A mark_safe is allowed only with "# safe: <why>" on the same line.
    pattern = re.compile(r"\|\s*safe\b|autoescape\s+off|mark_safe\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in list(PACKAGE.rglob("*.html")) + list(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line) and "# safe: " not in line
    ]
    assert offenders == []


def test_nothing_unpickles():
    pattern = re.compile(r"pickle\.loads?\(|torch\.load\((?![^)]*weights_only=True)")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in (PACKAGE, ROOT / "spawners")
        for path in folder.rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_every_static_file_a_template_names_is_found(client):
    from django.contrib.staticfiles import finders

    pattern = re.compile(r"""\{%\s*static\s+['"]([^'"]+)['"]\s*%\}""")
    names = {
        name
        for path in PACKAGE.rglob("*.html")
        for name in pattern.findall(path.read_text())
    }
    assert names, "no {% static %} references found"
    missing = sorted(name for name in names if finders.find(name) is None)
    assert missing == []
    assert client.get("/static/erumlab/vendor/htmx.min.js").status_code == 200
