"""Where does an MLP epoch's time go? Splits one epoch into input pipeline, compiled train step,
and Keras fit overhead, in wall and CPU seconds (CPU seconds are steadier on a busy machine).

    python bench/profile_epoch.py
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import vae_core  # noqa: E402
from bench import MLP  # noqa: E402  (bench/bench.py, beside this file)
from vae_core.training import build_model, make_pipeline  # noqa: E402


def clock():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime


def measure(label, fn):
    fn()  # warm-up / tracing
    w0, c0 = clock()
    fn()
    w1, c1 = clock()
    print(f"{label:42s} wall {w1 - w0:6.2f} s   cpu {c1 - c0:6.2f} s", flush=True)
    return w1 - w0


def main():
    data = vae_core.load_dataset("mnist")
    steps = int(np.ceil(len(data.x_train) / MLP.batch_size))
    pipeline = make_pipeline(data.x_train, data.y_train, MLP.batch_size, 0)
    model = build_model(MLP)
    x = tf.constant(data.x_train[:MLP.batch_size, ..., None])
    y = tf.constant(data.y_train[:MLP.batch_size])
    step = tf.function(model.train_step)

    def input_only():
        for _ in pipeline:
            pass

    def steps_only():
        for _ in range(steps):
            step((x, y))

    def full_fit():
        model.fit(pipeline, epochs=1, verbose=0, shuffle=False)

    measure("input pipeline alone (one epoch)", input_only)
    compute = measure(f"compiled train_step x {steps}, fixed batch", steps_only)
    total = measure("model.fit, one epoch", full_fit)
    flops = 6 * MLP.batch_size * steps * sum(a * b for a, b in [(784, 512), (512, 40), (20, 512),
                                                              (512, 784)])
    print(f"matmul work per epoch ~{flops / 1e9:.0f} GFLOP -> {flops / 1e9 / compute:.0f} GFLOP/s "
          f"in the step; fit overhead {max(total - compute, 0):.2f} s")


if __name__ == "__main__":
    main()
