"""A physicist creates a model in the browser, publishes a version with its card and a ROC
curve, sees the card and the metric plot, and copies the snippet that loads it."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.zoo.conftest import CONFIG, SIGNATURE, tagger

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CARD = """# Five-class jet tagger

## Intended use
Tags **quark, gluon, W, Z and top** jets from 16 jet observables.

<script>document.title = "pwned"</script>
"""


def test_publish_a_card_see_metric_plots_and_copy_the_snippet(live_server, user, password,
                                                              page: Page, tmp_path):
    from erumlab.science import modelio

    weights = modelio.save_weights(tagger(seed=1), tmp_path / "tagger.safetensors")
    metrics = [{"name": "accuracy", "value": 0.812},
               {"name": "roc_auc", "value": 0.93, "description": "top vs rest",
                "curve": {"kind": "roc", "x": [0, 0.05, 0.2, 0.5, 1], "y": [0, 0.6, 0.85, 0.97, 1],
                          "x_label": "false positive rate", "y_label": "true positive rate"}}]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=live_server.url)
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/models/new/")
    page.fill("#id_title", "Browser jet tagger")
    page.fill("#id_name", "browser-jet-tagger")
    page.select_option("#id_task", "classification")
    page.select_option("#id_domain", "jets")
    page.select_option("#id_visibility", "internal")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(f"{live_server.url}/models/browser-jet-tagger/publish/")

    page.set_input_files("#id_weights", str(weights))
    page.fill("#id_architecture", "mlp")
    page.fill("#id_config", json.dumps(CONFIG))
    page.fill("#id_signature", json.dumps(SIGNATURE))
    page.fill("#id_card", CARD)
    page.fill("#id_metrics", json.dumps(metrics))
    page.fill("#id_aliases", "production")
    page.get_by_role("button", name="Check and publish").click()

    expect(page.locator("#identifier")).to_have_text("erumlab:models/browser-jet-tagger.v1")
    expect(page.locator("#model-card")).to_contain_text("Five-class jet tagger")
    expect(page.locator("#model-card h2")).to_have_text("Intended use")
    expect(page.locator("#model-card strong")).to_have_text("quark, gluon, W, Z and top")
    assert page.locator("#model-card script").count() == 0
    assert page.title() != "pwned"
    expect(page.locator("#parameter-count")).to_have_text("4389")
    expect(page.locator("#metrics")).to_contain_text("0.812")
    plot = page.locator("img.metric-plot")
    expect(plot).to_have_count(1)  # only the metric with a curve is drawn
    plot.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.metric-plot'); "
        "return i.complete && i.naturalWidth > 100; }", timeout=30_000)

    snippet = page.locator("#load-snippet").text_content()
    assert 'models.load("browser-jet-tagger", alias="production")' in snippet
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == snippet
