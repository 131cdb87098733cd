"""Streamlit must not reset Keras (clear_session: gc.collect, kernel cache) after every rerun."""

import keras
from streamlit.runtime.scriptrunner import script_runner

from apptest_support import checkpoints, open_app, tiny_checkpoints  # noqa: F401 (fixtures)
from ui import runtime


def test_script_runs_no_longer_clear_the_keras_session(monkeypatch):
    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(1))
    runtime.keep_keras_state()
    runtime.keep_keras_state()  # idempotent
    script_runner._clean_problem_modules()
    assert calls == []
    assert script_runner._clean_problem_modules.keeps_keras_state


def test_the_app_installs_it(checkpoints, monkeypatch):
    monkeypatch.setattr(script_runner, "_clean_problem_modules", lambda: None)  # unadjusted
    open_app()
    assert getattr(script_runner._clean_problem_modules, "keeps_keras_state", False)
