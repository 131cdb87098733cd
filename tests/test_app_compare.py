"""AppTest tests of the Compare page: it opens on the shipped KL pair, overlays their curves
and names the setting that differs (a sweep's runs opening together: test_app_train.py)."""

import json

from apptest_support import (assert_calm, checkpoints, image_urls,  # noqa: F401 (fixtures)
                             open_app, tiny_checkpoints)
from ui import catalog

COMPARE = "app_pages/compare.py"


def curve_traces(at) -> list[dict]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return spec["data"]


def test_it_opens_on_the_kl_pair_with_overlaid_curves_and_the_setting_that_differs(
        checkpoints):
    at = open_app(COMPARE)
    assert_calm(at)
    assert at.multiselect(key="compare_models").value == list(catalog.KL_PAIR)
    labels = {catalog.SHIPPED[name] for name in catalog.KL_PAIR}
    traces = curve_traces(at)
    assert {t["name"] for t in traces} == labels  # both models' curves, in one chart
    panels = {t.get("xaxis", "x") for t in traces}
    assert len(panels) >= 3  # total, reconstruction and KL at least, one panel each
    table = at.table[0].value
    assert "setting: beta" in table.index and "setting: latent_dim" not in table.index
    assert sorted(table.loc["setting: beta"]) == ["0.0", "1.0"]
    assert len(image_urls(at)) == 2  # the same seeds drawn by each
    assert len(at.get("plotly_chart")) == 3  # the curves, then one latent map per model
    first = image_urls(at)
    at.number_input(key="compare_seed").set_value(7).run()
    assert_calm(at)
    assert len(image_urls(at)) == 2 and not set(image_urls(at)) & set(first)  # new styles


def test_a_single_model_asks_for_a_second(checkpoints):
    at = open_app(COMPARE)
    at.multiselect(key="compare_models").set_value(["mnist_conditional"]).run()
    assert_calm(at)
    assert any("two to four" in i.value for i in at.info)
