"""Where does `python -m vae_core train`'s wall time go? The CLI's steps, timed one by one in one
process: imports, dataset loading, model building, the first epoch (with graph tracing), the
later epochs, test-set evaluation, sample grid, checkpoint writing. Wall and CPU seconds.

    python bench/profile_cli.py [--arch mlp] [--epochs 3]

Writes bench/results/profile_cli_<arch>.json. Also measures this machine's float32 matmul rate
(a 1024^3 sgemm), so "is an epoch FLOP-bound?" has a number to compare with.
"""

import resource
import time

_T0 = time.perf_counter()


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


_C0 = _cpu()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, offline_keras_home, write_result  # noqa: E402

offline_keras_home()
phases = {}
_last = [_T0, _C0]


def mark(name):
    now, cpu = time.perf_counter(), _cpu()
    phases[name] = {"wall": round(now - _last[0], 3), "cpu": round(cpu - _last[1], 3)}
    _last[:] = [now, cpu]


import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import vae_core  # noqa: E402
from vae_core.training import EpochSummary  # noqa: E402
from vae_core.images import tile, to_png  # noqa: E402

mark("import (python, tensorflow, keras, vae_core)")

parser = argparse.ArgumentParser()
parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
shape = dict(latent_dim=20, hidden=(512,)) if args.arch == "mlp" else dict(latent_dim=2,
                                                                             hidden=(16,))
config = vae_core.VAEConfig(arch=args.arch, batch_size=128, epochs=args.epochs, **shape)

data = vae_core.load_dataset("mnist")
mark(f"load_dataset (disk cache {'on' if vae_core.data.cache_dir() else 'off'})")


class Phases(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        mark("build + compile model, pipeline set-up")

    def on_epoch_end(self, epoch, logs=None):
        mark("epoch 1 (includes tracing)" if epoch == 0 else f"epoch {epoch + 1}")


result = vae_core.train(config, data, callbacks=[Phases(), EpochSummary(config.epochs)])
mark("after fit (history, bookkeeping)")
evaluation = vae_core.evaluate(result.model, data)
mark("evaluate (test set)")
samples = to_png(tile(result.model.generate_grid(range(4), range(10))), scale=2)
mark("sample grid")
with tempfile.TemporaryDirectory() as out:
    vae_core.save_checkpoint(result.model, Path(out) / "ckpt", result.history, {},
                             extra_files={"samples.png": samples})
mark("save_checkpoint")
total = {"wall": round(time.perf_counter() - _T0, 3), "cpu": round(_cpu() - _C0, 3)}

a = tf.random.normal((1024, 1024))
tf.linalg.matmul(a, a)
start, cpu0 = time.perf_counter(), _cpu()
for _ in range(20):
    tf.linalg.matmul(a, a).numpy()
wall, cpu = time.perf_counter() - start, _cpu() - cpu0
sgemm = {"gflop_per_wall_s": round(20 * 2 * 1024 ** 3 / wall / 1e9, 1),
         "gflop_per_cpu_s": round(20 * 2 * 1024 ** 3 / cpu / 1e9, 1)}
for name, p in phases.items():
    print(f"{name:48s} wall {p['wall']:7.2f} s   cpu {p['cpu']:7.2f} s")
print(f"{'total':48s} wall {total['wall']:7.2f} s   cpu {total['cpu']:7.2f} s")
print("sgemm 1024^3:", sgemm)
write_result(f"profile_cli_{args.arch}", {
    "command": f"python bench/profile_cli.py --arch {args.arch} --epochs {args.epochs}",
    "machine": machine(), "phases": phases, "total": total, "sgemm_1024": sgemm,
    "elbo": round(evaluation["elbo"], 2)})
