"""AppTest tests of the Train page: settings, a background run, live metrics, Stop, results.

Runs use real MNIST (skipped without it). `VAE_LAB_TRAIN_SUBSET` makes the completed run tiny;
the stopped run uses the full set so that it is still running when Stop is pressed.
"""

from ui import models
import vae_core
from apptest_support import (assert_calm, checkpoints, image_urls,  # noqa: F401 (fixtures)
                             open_app, run_until, tiny_checkpoints)

TRAIN = "app_pages/train.py"


def start(at, **settings):
    for key, value in settings.items():
        at.number_input(key=f"train_{key}").set_value(value)
    next(b for b in at.button if b.label == "Start training").click()
    at.run()
    return at


def stop_job(at):
    job = at.session_state["job"] if "job" in at.session_state else None
    if job is not None:
        job.stop()
        assert job.join(60)


def has_result(at):
    return any(s.value == "Result" for s in at.subheader) or bool(at.error)


def test_invalid_settings_show_a_message(checkpoints):
    at = open_app(TRAIN)
    at.text_input(key="train_hidden").set_value("512,abc")
    start(at)
    assert_calm(at)
    assert any("hidden must be" in e.value for e in at.error)
    assert "job" not in at.session_state


def test_tiny_run_shows_metrics_and_becomes_usable(checkpoints, mnist, monkeypatch):
    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "512")
    at = open_app(TRAIN)
    try:
        start(at, epochs=2)
        assert_calm(at)
        run_until(at, has_result, timeout=90)
        assert_calm(at)
        assert not at.error, [e.value for e in at.error]
        assert [m.label for m in at.metric][:3] == ["Test ELBO", "Reconstruction", "KL"]
        assert at.get("plotly_chart")  # loss curves (and the 2-D latent scatter)
        assert any(s.label == "Epoch" for s in at.slider)  # scrub the two epochs
        assert at.get("download_button")
        at.button(key="train_use").click().run()
        active = at.selectbox(key=models.ACTIVE)
        assert active.value.startswith("trained-")
        at.switch_page("app_pages/generate.py").run()
        assert_calm(at)
        assert image_urls(at)
    finally:
        stop_job(at)


def test_run_survives_page_switches_refuses_a_second_visitor_and_stops(checkpoints, mnist):
    visitor = open_app(TRAIN)
    other = open_app(TRAIN)
    try:
        start(visitor, epochs=3)
        run_until(visitor, lambda at: "batch" in at.get("progress")[0].proto.text
                  and at.get("plotly_chart"), timeout=60)
        assert_calm(visitor)

        other.run()
        assert any("Someone else is training" in i.value for i in other.info)
        start(other)  # only one training slot: the second visitor is asked to wait
        assert any("please wait" in w.value for w in other.warning)
        assert "job" not in other.session_state

        visitor.switch_page("app_pages/generate.py").run()
        visitor.switch_page(TRAIN).run()
        assert visitor.session_state["job"].running  # the run carried on meanwhile

        visitor.button(key="train_stop").click().run()
        run_until(visitor, has_result, timeout=60)
        assert_calm(visitor)
        assert "Stopped by request" in visitor.get("progress")[0].proto.text
        assert any("stopped early" in o for o in visitor.selectbox(key=models.ACTIVE).options)
        assert [m.label for m in visitor.metric][0] == "Test ELBO"
    finally:
        stop_job(visitor)
        stop_job(other)


def test_missing_dataset_shows_how_to_fix_it(checkpoints, monkeypatch):
    def unavailable(name):
        raise vae_core.DataUnavailableError(f"Could not load {name}: connect to the internet.")

    monkeypatch.setattr(vae_core, "load_dataset", unavailable)
    at = open_app(TRAIN)
    start(at)
    assert_calm(at)
    assert any("connect to the internet" in e.value for e in at.error)
    assert "job" not in at.session_state
