"""AppTest tests of the Train page: settings, a background run, live metrics, Stop, results.

Runs use real MNIST (skipped without it). `VAE_LAB_TRAIN_SUBSET` makes the completed run tiny;
the stopped run uses the full set so that it is still running when Stop is pressed.
"""

import pytest

import vae_core
from streamlit.testing.v1.element_tree import Expander, Widget
from ui import catalog
from apptest_support import (assert_calm, checkpoints, image_urls,  # noqa: F401 (fixtures)
                             open_app, run_until, tiny_checkpoints)

TRAIN = "app_pages/train.py"


def start(at, **settings):
    """Set advanced settings (by field name), then press Start."""
    for name, value in settings.items():
        at.number_input(key=f"adv_{name}").set_value(value)
    at.button(key="train_start").click()
    at.run()
    return at


def controls_outside_the_expander(node) -> list:
    """The input widgets of a page in view without opening anything (expanders skipped)."""
    found = []
    for child in getattr(node, "children", {}).values():
        if isinstance(child, Expander):
            continue
        if isinstance(child, Widget):
            found.append(child)
        found += controls_outside_the_expander(child)
    return found


def stop_job(at):
    job = at.session_state["job"] if "job" in at.session_state else None
    if job is not None:
        job.stop()
        assert job.join(60)


def has_result(at):
    return any(s.value == "Result" for s in at.subheader) or bool(at.error)


def test_the_first_view_is_a_few_plain_controls_and_the_rest_waits_in_one_expander(
        checkpoints):
    at = open_app(TRAIN)
    assert_calm(at)
    shown = controls_outside_the_expander(at.main)
    assert len(shown) <= 6, [w.label for w in shown]
    assert {w.label for w in shown} >= {"What to learn", "How long", "Start training"}
    expanders = [e for e in at.get("expander") if e.label == "Advanced settings"]
    assert len(expanders) == 1 and not expanders[0].proto.expanded
    for widget in shown:  # help for visitors talks about the picture, not the lab log
        assert not any(word in (widget.help or "") for word in ("FD", "nats", "pass", ".md"))


@pytest.mark.parametrize("what, request_on, how_long, preset", [
    ("mnist", True, "minute", "quick_conditional_mnist"),
    ("fashion_mnist", True, "five", "longer_conditional_fashion"),
    ("mnist", False, "minute", "quick_mnist"),
    ("fashion_mnist", True, "shipped", "sharp_conditional_fashion"),
])
def test_the_first_choices_pick_a_recipe_and_fill_in_the_advanced_settings(
        checkpoints, monkeypatch, what, request_on, how_long, preset):
    """Start trains exactly the recipe the first view names, every advanced setting included."""
    from vae_core.config import PRESETS

    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "512")
    at = open_app(TRAIN)
    at.segmented_control(key="train_dataset").set_value(what).run()
    at.toggle(key="train_conditional").set_value(request_on).run()
    at.segmented_control(key="train_how_long").set_value(how_long).run()
    assert at.number_input(key="adv_epochs").value == PRESETS[preset].epochs
    try:
        start(at)
        assert_calm(at)
        assert at.session_state["job"].config == PRESETS[preset]
    finally:
        stop_job(at)


def test_start_with_the_defaults_trains_the_quick_recipe_into_a_model_the_pages_use(
        checkpoints, mnist, monkeypatch):
    from vae_core.config import PRESETS

    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "512")
    at = open_app(TRAIN)
    try:
        at.number_input(key="adv_epochs").set_value(1)
        at.button(key="train_start").click().run()
        assert at.session_state["job"].config == PRESETS["quick_conditional_mnist"].replace(
            epochs=1)
        run_until(at, has_result, timeout=120)
        assert_calm(at)
        active = at.selectbox(key=catalog.ACTIVE).value  # the finished run is the active model
        assert active.startswith("trained-")
        for page in ("app_pages/generate.py", "app_pages/digit.py"):
            at.switch_page(page).run()
            assert_calm(at)
            assert at.selectbox(key=catalog.ACTIVE).value == active
    finally:
        stop_job(at)


def test_an_advanced_setting_reaches_the_run(checkpoints, monkeypatch):
    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "512")
    at = open_app(TRAIN)
    at.selectbox(key="adv_arch").set_value("conv")
    at.selectbox(key="adv_decoded_styles").set_value("prior")
    try:
        start(at, adam_beta1=0.5, decoder_detail_convs=2, latent_dim=3)
        assert_calm(at)
        config = at.session_state["job"].config
        assert (config.arch, config.adam_beta1, config.decoded_styles,
                config.decoder_detail_convs, config.latent_dim) == ("conv", 0.5, "prior", 2, 3)
    finally:
        stop_job(at)


def test_a_sweep_queues_its_runs_one_after_another_and_opens_them_in_compare(
        checkpoints, mnist, monkeypatch):
    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "256")
    at = open_app(TRAIN)
    at.toggle(key="train_conditional").set_value(False).run()
    at.number_input(key="adv_epochs").set_value(1)
    at.selectbox(key="sweep_field").set_value("beta").run()
    at.text_input(key="sweep_values_beta").set_value("0, 1")
    at.button(key="sweep_start").click().run()
    try:
        assert_calm(at)
        job = at.session_state["job"]
        assert [c.beta for c in job.configs] == [0.0, 1.0]
        assert all(c.epochs == 1 and not c.conditional for c in job.configs)
        run_until(at, lambda a: not job.running and has_result(a), timeout=120)
        assert_calm(at)
        options = at.selectbox(key=catalog.ACTIVE).options
        assert sum("beta = 0" in o or "beta = 1" in o for o in options) == 2
        at.button(key="sweep_compare").click().run()
        assert_calm(at)
        assert len(at.multiselect(key="compare_models").value) == 2
        assert at.get("plotly_chart")
    finally:
        stop_job(at)


def test_a_sweep_with_one_value_asks_for_more(checkpoints):
    at = open_app(TRAIN)
    at.text_input(key="sweep_values_beta").set_value("0.5")
    at.button(key="sweep_start").click().run()
    assert_calm(at)
    assert any("two to four" in e.value for e in at.error)
    assert "job" not in at.session_state


def test_invalid_settings_show_a_message(checkpoints):
    at = open_app(TRAIN)
    at.text_input(key="adv_hidden").set_value("512,abc")
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
        assert at.selectbox(key=catalog.ACTIVE).value.startswith("trained-")
        at.switch_page("app_pages/generate.py").run()
        assert_calm(at)
        assert image_urls(at)
    finally:
        stop_job(at)


def progress_text(at) -> str:
    bars = at.get("progress")
    return bars[0].proto.text if bars else ""


def test_run_survives_page_switches_queues_a_second_visitor_turns_away_a_third(
        checkpoints, mnist, monkeypatch):
    monkeypatch.setenv("VAE_LAB_TRAINING_QUEUE", "1")  # one run, one waiting: a fresh JobSlots
    visitor, second, third = open_app(TRAIN), open_app(TRAIN), open_app(TRAIN)
    try:
        start(visitor, epochs=3)
        run_until(visitor, lambda at: "batch" in progress_text(at) and at.get("plotly_chart"),
                  timeout=60)
        assert_calm(visitor)

        second.run()
        assert any("waits in a queue" in i.value for i in second.info)
        start(second)  # the one slot is taken: the second visitor's run waits in line
        assert second.session_state["job"].progress.snapshot().status == "queued"
        assert "yours is next in the queue" in progress_text(second)
        assert second.button(key="train_stop").label == "Leave queue"

        third.run()
        assert any("server is busy" in i.value for i in third.info)
        start(third)  # slot and queue full: asked to come back, and nothing was loaded
        assert any("try again" in w.value for w in third.warning)
        assert "job" not in third.session_state
        assert_calm(third)

        visitor.switch_page("app_pages/generate.py").run()
        visitor.switch_page(TRAIN).run()
        assert visitor.session_state["job"].running  # the run carried on meanwhile

        visitor.button(key="train_stop").click().run()
        run_until(visitor, has_result, timeout=60)
        assert_calm(visitor)
        assert "Stopped by request" in progress_text(visitor)
        assert any("stopped early" in o for o in visitor.selectbox(key=catalog.ACTIVE).options)
        assert [m.label for m in visitor.metric][0] == "Test ELBO"

        # The queued run starts by itself once the slot is free; each visitor sees only theirs.
        run_until(second, lambda at: "batch" in progress_text(at), timeout=60)
        assert not any("stopped early" in o
                       for o in second.selectbox(key=catalog.ACTIVE).options)
        second.button(key="train_stop").click().run()
        run_until(second, has_result, timeout=60)
        assert_calm(second)
    finally:
        stop_job(visitor)
        stop_job(second)
        stop_job(third)


def test_leaving_the_queue_and_a_too_large_batch(checkpoints, mnist, monkeypatch):
    from vae_core.jobs import JobSlots
    from ui import runs as ui_jobs

    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "100")
    at = open_app(TRAIN)
    start(at, batch_size=256)
    assert_calm(at)
    assert any("larger than the 100 training images" in e.value for e in at.error)
    assert "job" not in at.session_state

    # A queued run can be cancelled before it starts: it leaves the queue, keeps no model.
    blocker = JobSlots(1, 2)
    blocker._running.add(object())  # a stand-in for another visitor's run holds the one slot
    monkeypatch.setattr(ui_jobs, "job_slots", lambda: blocker)
    start(at, batch_size=64)
    assert "yours is next in the queue" in progress_text(at)
    at.button(key="train_stop").click().run()
    run_until(at, lambda a: not a.session_state["job"].running, timeout=30)
    assert "Cancelled while waiting" in progress_text(at)
    assert blocker.waiting == 0


def test_missing_dataset_shows_how_to_fix_it(checkpoints, monkeypatch):
    def unavailable(name):
        raise vae_core.DataUnavailableError(f"Could not load {name}: connect to the internet.")

    monkeypatch.setattr(vae_core, "load_dataset", unavailable)
    at = open_app(TRAIN)
    start(at)
    assert_calm(at)
    assert any("connect to the internet" in e.value for e in at.error)
    assert "job" not in at.session_state


def test_a_diverged_run_says_why_and_keeps_its_last_good_epoch(checkpoints, mnist, monkeypatch):
    import vae_core.jobs
    from test_training import PoisonAt

    real = vae_core.jobs.train

    def diverging(*args, **kwargs):  # the weights turn NaN when epoch 2 begins
        return real(*args, callbacks=[PoisonAt(1)], **kwargs)

    monkeypatch.setattr(vae_core.jobs, "train", diverging)
    monkeypatch.setenv("VAE_LAB_TRAIN_SUBSET", "256")
    at = open_app(TRAIN)
    try:
        start(at, epochs=3)
        run_until(at, has_result, timeout=90)
        assert_calm(at)
        warnings = [w.value for w in at.warning]
        assert any("epoch 2" in w and "smaller learning rate" in w
                   and "weights of epoch 1" in w for w in warnings), warnings
        assert any("diverged, epoch 1 kept" in o
                   for o in at.selectbox(key=catalog.ACTIVE).options)
        assert [m.label for m in at.metric][0] == "Test ELBO"  # the kept model works
        assert "nan" not in at.metric[0].value.lower()
    finally:
        stop_job(at)
