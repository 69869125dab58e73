"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("ERUMLAB_CHROMIUM", "/usr/bin/chromium")

# Playwright's sync API runs an event loop in this thread; the test database is
# still used synchronously from it, which Django would otherwise refuse.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _chromium_present(request):
    if "browser" not in request.keywords or shutil.which(CHROMIUM):
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("ERUMLAB_REQUIRE_BROWSER") == "1":
        # CI promises browser tests: a skip there would hide a broken promise.
        pytest.fail(f"ERUMLAB_REQUIRE_BROWSER=1: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-quic", "--disable-dev-shm-usage",
        ],
    }
