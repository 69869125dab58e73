"""A physicist uploads an HDF5 file in the browser, watches the progress bar, sees its
preview and a histogram, publishes the version and finds its citation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import uproot
from playwright.sync_api import Page, expect

from erumlab.catalogue import services
from tests.catalogue.conftest import hdf5_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_upload_preview_plot_publish_and_cite(live_server, user, password, start_worker,  # noqa: F811
                                              page: Page, tmp_path, settings):
    settings.ERUMLAB_UPLOAD_CHUNK_BYTES = 8 * 1024  # several chunks: the bar moves
    start_worker()
    dataset = services.dataset_create(owner=user, title="Toy electron showers",
                                      visibility="internal", experiment="toy calo")
    source = tmp_path / "showers.h5"
    source.write_bytes(hdf5_bytes())
    tracks = tmp_path / "tracks.root"
    with uproot.recreate(tracks) as handle:
        handle.mktree("Events", {"pt": "float64", "nhits": "int32"})
        rng = np.random.default_rng(3)
        handle["Events"].extend({"pt": rng.exponential(5.0, 2000),
                                 "nhits": rng.integers(3, 12, 2000).astype("int32")})

    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/datasets/{dataset.slug}/v1/edit/")
    page.set_input_files("#upload-files", [str(source), str(tracks)])
    page.get_by_role("button", name="Upload", exact=True).click()
    for row in (0, 1):
        expect(page.locator("#upload-list progress").nth(row)).to_have_attribute("value", "100")
        expect(page.locator("#upload-list .upload-status").nth(row)).to_have_text("done")
    # The page reloads when every file is in; the file is then listed.
    expect(page.get_by_role("link", name="showers.h5")).to_be_visible(timeout=60_000)

    page.get_by_role("link", name="showers.h5").click()
    expect(page.locator("#preview-table")).to_contain_text("/showers/energy", timeout=60_000)
    expect(page.locator("#preview-table")).to_contain_text("float64")
    histogram = page.locator("#histogram")
    expect(histogram).to_be_visible()
    plot = page.request.get(live_server.url + histogram.get_attribute("src"))
    assert plot.status == 200, plot.text()[:300]
    assert plot.body().startswith(b"\x89PNG")
    page.wait_for_function(
        "() => { const i = document.getElementById('histogram'); "
        "return i.complete && i.naturalWidth > 100; }", timeout=30_000)

    page.goto(f"{live_server.url}/datasets/{dataset.slug}/v1/edit/")
    page.get_by_role("link", name="tracks.root").click()
    expect(page.locator("#preview-table")).to_contain_text("nhits", timeout=60_000)
    page.select_option("#column", "Events/pt")
    page.get_by_role("button", name="Draw").click()
    page.wait_for_function(
        "() => { const i = document.getElementById('histogram'); "
        "return i.complete && i.naturalWidth > 100; }", timeout=30_000)

    page.goto(f"{live_server.url}/datasets/{dataset.slug}/v1/edit/")
    page.get_by_role("button", name="Publish version 1").click()
    expect(page.locator("#version-state")).to_have_text("Published")
    expect(page.locator("#citation")).to_contain_text(re.compile(
        rf"Toy electron showers \(Version 1\).*erumlab:{dataset.slug}\.v1"))
