"""Streamlit runtime adjustments for a process that trains Keras models in background threads."""

from __future__ import annotations

import sys


def keep_keras_state():
    """Stop Streamlit from calling `keras.backend.clear_session()` after every script run.

    Streamlit's script runner "cleans problem modules" after each run, fragment reruns included:
    with Keras imported it calls `clear_session()`, which is process-global. It runs a full
    `gc.collect()` (a large pause holding the GIL in a process that holds TensorFlow), clears
    TensorFlow's eager kernel cache and resets Keras's global state under any model that
    another visitor's thread is training or building at that moment. With the Train page's live
    view rerunning every few seconds this slowed a background training run several-fold. The
    app never relies on Keras's global state between runs (models are built per job), so the
    Keras part is dropped; the rest of Streamlit's clean-up (matplotlib) is kept. Idempotent.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # a Streamlit without this module: nothing to adjust
        return
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None or getattr(current, "keeps_keras_state", False):
        return

    def clean_problem_modules_except_keras():
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception:  # noqa: BLE001 - as Streamlit: never break a run over this
                pass

    clean_problem_modules_except_keras.keeps_keras_state = True
    script_runner._clean_problem_modules = clean_problem_modules_except_keras


def single_threaded_blas():
    """numpy's BLAS (OpenBLAS) on one thread. Its worker threads spin after every call, and the
    app's numpy work is small (style samplers, a few matmuls per touch): with two threads a
    Generate click cost the server 95 CPU-ms instead of 20 (bench/server_cpu.py). TensorFlow
    keeps its own thread pool. Idempotent."""
    from threadpoolctl import threadpool_limits

    if not getattr(single_threaded_blas, "done", False):
        threadpool_limits(1, user_api="blas")
        single_threaded_blas.done = True
