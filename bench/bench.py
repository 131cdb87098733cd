"""Speed benchmark on real MNIST: seconds per epoch, generation and encoding latency.

    python bench/bench.py                # the shipped training path
    python bench/bench.py --baseline     # keras.io style: fit() on numpy arrays, for comparison
    python bench/bench.py --jit          # XLA-compiled train step, for comparison

Epoch times exclude the first epoch (tracing/warm-up) and report the median of the rest.
Run it on an otherwise idle machine; results are written to bench/results-<variant>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import vae_core  # noqa: E402
from vae_core.config import VAEConfig  # noqa: E402
from vae_core.training import build_model, make_pipeline  # noqa: E402

MLP = VAEConfig(dataset="mnist", arch="mlp", latent_dim=20, hidden=(512,), conditional=False,
                beta=1.0, recon_loss="bce", batch_size=128, learning_rate=1e-3, seed=0)
CONV = MLP.replace(arch="conv", latent_dim=2, hidden=(16,))  # the keras.io VAE's shape


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)

    def on_train_begin(self, logs=None):
        self.times = []


def epoch_seconds(config, data, epochs, variant):
    model = build_model(config)
    if variant == "jit":
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=True)
    timer = EpochTimer()
    if variant == "baseline":
        model.fit(data.x_train[..., None], data.y_train, batch_size=config.batch_size,
                  epochs=epochs, shuffle=True, callbacks=[timer], verbose=0)
    else:
        model.fit(make_pipeline(data.x_train, data.y_train, config.batch_size, config.seed),
                  epochs=epochs, callbacks=[timer], shuffle=False, verbose=0)
    return model, timer.times


def median_seconds(fn, repeats):
    fn()  # warm-up (tracing)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--baseline", action="store_true")
    group.add_argument("--jit", action="store_true")
    args = parser.parse_args()
    variant = "baseline" if args.baseline else "jit" if args.jit else "shipped"

    data = vae_core.load_dataset("mnist")
    results = {"variant": variant, "cpu_count": os.cpu_count(),
               "tensorflow_threads": _threads(), "keras": keras.__version__}
    for name, config in (("mlp", MLP), ("conv", CONV)):
        model, times = epoch_seconds(config, data, args.epochs, variant)
        results[f"{name}_epoch_seconds"] = round(statistics.median(times[1:]), 2)
        results[f"{name}_first_epoch_seconds"] = round(times[0], 2)
        print(f"{name}: epochs {[round(t, 2) for t in times]}", flush=True)
        if name == "mlp":
            cond = build_model(MLP.replace(conditional=True))
            results["generate_10_digits_ms"] = round(1000 * median_seconds(
                lambda: cond.generate(list(range(10)), 7), 200), 2)
            results["encode_10k_test_seconds"] = round(median_seconds(
                lambda: model.encode(data.x_test), 5), 3)
            conv_like = build_model(CONV)
            results["encode_10k_test_seconds_conv"] = round(median_seconds(
                lambda: conv_like.encode(data.x_test), 5), 3)
    print(json.dumps(results, indent=2))
    out = Path(__file__).with_name(f"results-{variant}.json")
    out.write_text(json.dumps(results, indent=2) + "\n")


def _threads():
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


if __name__ == "__main__":
    main()
