"""AppTest tests of the Home, Generate and Latent pages and the shared sidebar."""

import pytest

import vae_core
from vae_core import samplers
from ui import catalog
from apptest_support import (PAGES, ROOT, assert_calm, checkpoints,  # noqa: F401 (fixtures)
                             image_urls, open_app, texts, tiny_checkpoints)


@pytest.mark.parametrize("page", [p for p in PAGES if p != "app_pages/latent.py"])
def test_page_renders(checkpoints, page):
    at = open_app(page)
    assert_calm(at)
    assert at.title


def test_sidebar_lists_the_available_models_and_dataset(checkpoints):
    at = open_app()
    picker = at.selectbox(key=catalog.ACTIVE)
    assert picker.value == "mnist_conditional"
    assert set(picker.options) == {catalog.SHIPPED[name] for name in
                                   ("mnist_conditional", "mnist_2d_kl_on", "mnist_2d_kl_off")}
    assert "MNIST digits" in "\n".join(c.value for c in at.sidebar.caption)


def test_home_shows_a_row_of_digits_and_links(checkpoints):
    at = open_app()
    assert len(image_urls(at)) >= 2  # the diagram and the row of digits
    before = image_urls(at)
    at.button[0].click().run()  # "Another style"
    assert image_urls(at) != before
    assert len(at.get("page_link")) == 3


def test_generate_changes_with_digit_and_seed(checkpoints):
    at = open_app("app_pages/generate.py")
    assert_calm(at)
    all_ten = image_urls(at)
    at.pills(key="gen_digit").set_value(3).run()
    three = image_urls(at)
    assert three != all_ten
    at.number_input(key="gen_seed").set_value(42).run()
    three_seed_42 = image_urls(at)
    assert three_seed_42 != three
    at.pills(key="gen_digit").set_value(5).run()
    assert image_urls(at) != three_seed_42
    at.pills(key="gen_digit").set_value(3).run()
    assert image_urls(at) == three_seed_42  # same digit and seed: the same picture
    at.button(key="gen_new_style").click().run()
    assert at.number_input(key="gen_seed").value != 42
    assert at.get("download_button")
    assert_calm(at)


def sampler_radio(at):
    return next(r for r in at.radio if r.key.startswith("gen_sampler"))


def test_generate_offers_the_models_samplers_its_default_first(checkpoints):
    at = open_app("app_pages/generate.py")
    model = vae_core.load_checkpoint(checkpoints / "mnist_conditional")
    sampler = sampler_radio(at)
    assert len(sampler.options) == len(samplers.available(model)) > 1
    assert sampler.value == samplers.available(model)[0] != "normal"
    default = image_urls(at)
    sampler.set_value("normal").run()
    assert_calm(at)
    assert image_urls(at) != default
    sampler_radio(at).set_value(samplers.available(model)[0]).run()
    assert image_urls(at) == default  # a pure function of the seed and the sampler


def test_generate_unconditional_model_disables_digit_choice(checkpoints):
    at = open_app()
    at.selectbox(key=catalog.ACTIVE).set_value("mnist_2d_kl_on").run()
    at.switch_page("app_pages/generate.py").run()
    assert_calm(at)
    assert at.pills(key="gen_digit").disabled
    assert not [r for r in at.radio if r.key.startswith("gen_sampler")]  # N(0, I) only: no choice
    assert "unconditional" in texts(at)
    assert image_urls(at)


def show_tab(at, label):
    at.session_state["latent_tab"] = label
    return at.run()


def test_latent_page_runs_only_the_tab_on_screen_and_its_sliders_decode(checkpoints, mnist):
    at = open_app("app_pages/latent.py")
    assert_calm(at)
    # Explore: the live map (a component) and the decoded grid; the other tabs did not run.
    assert len(at.get("plotly_chart")) == 1 and "KL off (β = 0)" not in texts(at)
    assert len(at.get("bidi_component")) == 2  # the map's two instances: settings, weights
    before = image_urls(at)
    at.slider(key=next(s.key for s in at.slider if s.key.startswith("zx_"))).set_value(1.5).run()
    assert image_urls(at) != before  # the sliders (the map's keyboard twin) decode on the server
    assert_calm(at)
    show_tab(at, "KL on vs KL off")
    assert_calm(at)
    assert "KL on (β = 1)" in texts(at) and "KL off (β = 0)" in texts(at)
    assert len(at.get("plotly_chart")) == 2  # the pair's maps, and nothing of the first tab


def test_missing_checkpoints_give_messages_not_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_CHECKPOINTS", str(tmp_path))
    for page in PAGES:
        at = open_app(page)
        assert_calm(at)
        assert at.info or at.warning, page


def test_shipped_checkpoints(monkeypatch, mnist):
    shipped = ROOT / "checkpoints"
    if not all((shipped / name / "model.keras").exists() for name in catalog.SHIPPED):
        pytest.skip("the shipped checkpoints are not all present yet")
    monkeypatch.delenv("VAE_LAB_CHECKPOINTS", raising=False)
    for page in PAGES:
        at = open_app(page)
        assert_calm(at)
        assert not at.error and not at.warning, page


def test_generate_settings_survive_a_visit_to_another_page(checkpoints):
    at = open_app("app_pages/generate.py")
    at.number_input(key="gen_seed").set_value(1234).run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/generate.py").run()
    assert at.number_input(key="gen_seed").value == 1234


def test_key_widgets_exist(checkpoints):
    at = open_app("app_pages/train.py")
    for key in ("train_dataset", "train_conditional", "train_how_long", "adv_arch",
                "adv_latent_dim", "adv_beta", "adv_epochs", "adv_learning_rate", "adv_hidden"):
        assert at.session_state[key] is not None, key
    assert any(b.label == "Start training" for b in at.button)
    at.switch_page("app_pages/generate.py").run()
    assert at.pills(key="gen_digit").options
    assert at.number_input(key="gen_seed").value == 0
    assert next(s for s in at.slider if s.label == "Temperature").value == 1.0
    assert at.button(key="gen_new_style")


def test_generate_keeps_its_picture_in_the_url(checkpoints):
    at = open_app("app_pages/generate.py")
    at.pills(key="gen_digit").set_value(3).run()
    at.number_input(key="gen_seed").set_value(77).run()
    assert at.query_params["digit"] == "3" and at.query_params["seed"] == "77"
    assert at.query_params["model"] == "mnist_conditional" and at.query_params["count"] == "16"
    picture = image_urls(at)

    # A new visitor opens the copied URL: the same model, digit, seed and count, same picture.
    from streamlit.testing.v1 import AppTest
    from apptest_support import APP, TIMEOUT

    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)
    fresh.query_params.update(dict(at.query_params))
    fresh.run()
    fresh.switch_page("app_pages/generate.py").run()
    assert_calm(fresh)
    assert fresh.pills(key="gen_digit").value == 3
    assert fresh.number_input(key="gen_seed").value == 77
    assert image_urls(fresh) == picture


def test_a_shared_url_can_choose_the_model(checkpoints):
    from streamlit.testing.v1 import AppTest
    from apptest_support import APP, TIMEOUT

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"model": "mnist_2d_kl_on", "seed": "5", "count": "9"})
    at.run()
    at.switch_page("app_pages/generate.py").run()
    assert at.selectbox(key=catalog.ACTIVE).value == "mnist_2d_kl_on"
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert "9 samples from the prior (seed 5)." in captions


@pytest.mark.parametrize("params", [
    {"model": "no_such_model", "digit": "eleven", "seed": "-4", "count": "1e9"},
    {"digit": "99", "seed": "99999999999999", "count": "0"},
    {"seed": "", "digit": "", "model": "../../etc"},
])
def test_bad_url_values_are_ignored_not_fatal(checkpoints, params):
    from streamlit.testing.v1 import AppTest
    from apptest_support import APP, TIMEOUT

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    at.switch_page("app_pages/generate.py").run()
    assert_calm(at)
    assert at.selectbox(key=catalog.ACTIVE).value == "mnist_conditional"
    assert at.number_input(key="gen_seed").value == 0
    assert image_urls(at)


def test_latent_page_plays_the_training_history(tiny_checkpoints, tiny_data, tmp_path,
                                                monkeypatch, mnist):
    import shutil

    import vae_core

    shutil.copytree(tiny_checkpoints, tmp_path, dirs_exist_ok=True)
    config = vae_core.VAEConfig(hidden=(32,), epochs=3, batch_size=128, conditional=True,
                                latent_dim=4)
    result = vae_core.train(config, tiny_data, validate=False)  # three epochs to play
    vae_core.save_checkpoint(result.model, tmp_path / "mnist_conditional", result.history)
    monkeypatch.setenv("VAE_LAB_CHECKPOINTS", str(tmp_path))
    at = open_app("app_pages/latent.py")
    assert_calm(at)
    assert [t.label for t in at.tabs][-1] == "Training history"  # tiny models record history
    show_tab(at, "Training history")
    spec = at.get("plotly_chart")[-1].proto.spec
    assert '"frames"' in spec and '"animate"' in spec  # Plotly frames with a play button
    before = image_urls(at)
    at.select_slider(key="history_epoch").set_value(1).run()
    assert image_urls(at) != before  # the samples of epoch 1, not the last epoch
    gif = [b for b in at.get("download_button") if "GIF" in b.proto.label]
    assert gif
    assert_calm(at)


def test_a_model_without_history_hides_the_tab(tiny_checkpoints, tmp_path, monkeypatch, mnist):
    import shutil

    for name in ("mnist_conditional", "mnist_2d_kl_on", "mnist_2d_kl_off"):
        shutil.copytree(tiny_checkpoints / name, tmp_path / name)
        (tmp_path / name / "training_snapshots.npz").unlink()  # as before history existed
    monkeypatch.setenv("VAE_LAB_CHECKPOINTS", str(tmp_path))
    at = open_app("app_pages/latent.py")
    assert_calm(at)
    assert [t.label for t in at.tabs] == ["Explore the active model", "KL on vs KL off"]


def test_a_bare_string_or_value_in_a_page_is_never_drawn(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the project's .streamlit/config.toml
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.title("A page")\n'
                    '"""Meant as a comment about the setting below."""\nLIMIT = 3\nLIMIT\n')
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(page)).run()
    assert [t.value for t in at.title] == ["A page"]
    assert not at.markdown and not at.text and not at.json
