"""Target 1: seconds per epoch in the app (real Chromium watching the Train page) vs the CLI.

    python bench/app_vs_cli.py [--pairs 5] [--epochs 4]

Starts `streamlit run app.py`, then alternates, in one run on one machine: (A) a fresh Chromium
page on /train starts a run (MLP, latent 2, hidden 512, batch 128, MNIST; the page's defaults)
and watches it to the end, and the app's own epoch times are read from the page ("Seconds per
epoch: ..."); (B) `python -m vae_core train` with the same settings, epoch times read from its
"epoch i/N (x s)" lines. Both measure an epoch the same way (ProgressCallback's epoch start to the
end of the epoch's preview; the CLI's summary line runs after it). The first epoch (tracing) is
left out; each run contributes the median of its other epochs. Writes bench/results/app_vs_cli.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, offline_keras_home, spread, write_result  # noqa: E402
from tools.browser import PAGES, browser_page, serve, visit  # noqa: E402


def app_run(url: str, epochs: int) -> list[float]:
    with browser_page() as page:
        visit(page, url, PAGES["train"])
        box = page.get_by_role("spinbutton", name="Epochs", exact=True)
        box.fill(str(epochs))
        box.press("Tab")
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(f"Finished {epochs} epochs").wait_for(timeout=600_000)
        text = page.get_by_text("Seconds per epoch:").first.inner_text()
        times = [float(t) for t in re.findall(r"\d+\.\d+", text)]
        # Leave the session with nothing running (the slot is free once the run has finished).
        return times


def cli_run(epochs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-m", "vae_core", "train", "--arch", "mlp", "--latent-dim", "2",
             "--hidden", "512", "--batch-size", "128", "--epochs", str(epochs), "--no-eval",
             "--out", str(Path(out) / "ckpt")],
            cwd=ROOT, capture_output=True, text=True, check=True)
    return [float(s) for s in re.findall(r"^epoch \d+/\d+ \(([\d.]+) s\)", proc.stdout, re.M)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    offline_keras_home()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server and browser too

    runs = {"app": [], "cli": []}
    with serve() as url:
        visit_warm = app_run(url, 1)  # first run imports TF and traces: not counted
        print("warm-up app run", visit_warm, flush=True)
        for i in range(args.pairs):
            for side, fn in (("app", lambda: app_run(url, args.epochs)),
                             ("cli", lambda: cli_run(args.epochs))):
                times = fn()
                runs[side].append(times)
                print(f"pair {i + 1} {side}: {times}", flush=True)

    per_run = {side: [statistics.median(t[1:]) for t in r] for side, r in runs.items()}
    ratios = [a / c for a, c in zip(per_run["app"], per_run["cli"])]
    result = {
        "what": "seconds per epoch, app (Chromium watching /train) vs CLI; MLP latent 2, "
                "hidden 512, batch 128, MNIST; median of epochs 2..N per run",
        "command": f"python bench/app_vs_cli.py --pairs {args.pairs} --epochs {args.epochs}",
        "machine": machine(),
        "epoch_seconds": runs,
        "app": spread(per_run["app"]), "cli": spread(per_run["cli"]),
        "ratio_per_pair": [round(r, 3) for r in ratios],
        "ratio_of_medians": round(statistics.median(per_run["app"])
                                  / statistics.median(per_run["cli"]), 3),
        "target": "<= 1.2",
    }
    write_result("app_vs_cli", result)


if __name__ == "__main__":
    main()
