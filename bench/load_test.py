"""Load test: N visitors press Start on the real app at once, under Community Cloud's memory cap.

    python bench/load_test.py                       # 8 visitors, 2.7 GiB cap, 2 epochs each
    python bench/load_test.py --visitors 4 --epochs 1 --no-cgroup

Starts `streamlit run app.py` inside a fresh cgroup-v1 memory group capped at --limit-gib (root
only; --no-cgroup measures without a cap), opens one headless-Chromium context per visitor (each
a separate Streamlit session), sets the Epochs field and presses Start in every one within a
second or two, then follows each page until its result appears. Reports the server's peak memory
(cgroup max usage, which includes page cache, and the process's peak RSS), OOM kills, how long
each visitor waited in the queue and trained, seconds per epoch under load, failures, and whether
each session saw only its own model. Writes JSON to bench/results/. Loopback traffic only; every
loop is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.browser import (CHROMIUM, CHROMIUM_ARGS, free_port, missing_requirements,  # noqa: E402
                           streamlit_command, wait_healthy)

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")


class MemoryGroup:
    """A child memory cgroup (v1) with a hard limit; removed on exit."""

    def __init__(self, limit_bytes: int):
        self.path = CGROUP_ROOT / f"vae-lab-load-{os.getpid()}"
        self.limit = limit_bytes

    def __enter__(self):
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(self.limit))
        return self

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    def peak(self) -> int:
        return int(self.read("memory.max_usage_in_bytes"))

    def oom(self) -> dict:
        return {k: int(v) for k, v in (line.split() for line in self.read(
            "memory.oom_control").splitlines())}

    def rss(self) -> int:
        stat = dict(line.split() for line in self.read("memory.stat").splitlines())
        return int(stat.get("total_rss", stat.get("rss", 0)))

    def wrap(self, command: list[str]) -> list[str]:
        """`command` run inside this group: a shell joins the group, then becomes the command."""
        procs = self.path / "cgroup.procs"
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *command]

    def __exit__(self, *exc):
        for _ in range(50):  # bounded: wait for the killed server to leave the group
            if not self.read("cgroup.procs").strip():
                break
            time.sleep(0.2)
        try:
            self.path.rmdir()
        except OSError as e:
            print(f"warning: could not remove {self.path}: {e}", file=sys.stderr)
        return False


def start_server(port: int, env: dict, group: MemoryGroup | None, log):
    command = streamlit_command(port)
    if group is not None:
        command = group.wrap(command)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def peak_rss(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) * 1024 if match else 0


PAGE_STATE = """() => {
  const bar = document.querySelector('[data-testid="stProgress"]');
  const body = document.body.innerText;
  return {
    text: bar ? bar.innerText : "",
    exception: !!document.querySelector('[data-testid="stException"]'),
    error: !!document.querySelector('[data-testid="stAlertContentError"]'),
    result: [...document.querySelectorAll("h3")].some(h => h.innerText.trim() === "Result"),
    busy: body.includes("server is busy"),
    connection_error: body.includes("Connection error"),
  };
}"""


def page_state(page) -> dict:
    """Everything the poll needs from a page in one round trip (cheap on a loaded machine)."""
    try:
        return page.evaluate(PAGE_STATE)
    except Exception:
        return {}


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "VAE_LAB_MAX_TRAINING_JOBS": str(args.jobs),
           "VAE_LAB_TRAINING_QUEUE": str(args.queue),
           "VAE_LAB_TRAIN_SUBSET": str(args.subset)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    limit = int(args.limit_gib * 2**30)
    log = tempfile.NamedTemporaryFile("w+", prefix="vae-lab-load-", suffix=".log")
    group = MemoryGroup(limit) if args.cgroup else None
    result = {"visitors": args.visitors, "epochs": args.epochs, "limit_gib": args.limit_gib,
              "cgroup": args.cgroup, "max_training_jobs": args.jobs, "queue": args.queue,
              "train_subset": args.subset or "all 60000", "app": str(args.app_dir)}
    visitors = [{"id": i, "events": []} for i in range(args.visitors)]
    if group:
        group.__enter__()
    proc = start_server(port, env, group, log)
    started = time.time()
    samples = []
    try:
        wait_healthy(url, proc, 120)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                pages = []
                for v in visitors:  # separate contexts = separate Streamlit sessions
                    page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
                    page.set_default_timeout(180_000)  # a loaded 2-core machine is slow
                    page.goto(f"{url}/train", wait_until="domcontentloaded", timeout=180_000)
                    pages.append(page)
                for page in pages:
                    page.get_by_role("button", name="Start training").wait_for(timeout=180_000)
                    page.get_by_text("Advanced settings").click()  # the expander
                    page.get_by_role("spinbutton", name="Epochs", exact=True).fill(str(args.epochs))
                    page.keyboard.press("Tab")  # commit the number before Start reads it
                click_at = time.time()
                for v, page in zip(visitors, pages):  # everyone presses Start at once
                    page.get_by_role("button", name="Start training").click()
                    v["clicked"] = round(time.time() - click_at, 2)
                deadline = time.time() + args.timeout
                pending = set(range(len(pages)))
                while pending and time.time() < deadline:
                    if proc.poll() is not None:
                        result["server_died"] = True
                        break
                    samples.append({"t": round(time.time() - click_at, 1),
                                    "rss": group.rss() if group else peak_rss(proc.pid)})
                    for i in sorted(pending):
                        v, page = visitors[i], pages[i]
                        state = page_state(page)
                        text = state.get("text", "")
                        now = round(time.time() - click_at, 1)
                        if "Waiting for the training slot" in text:
                            v.setdefault("queued_at", now)
                            v.setdefault("first_queue_text", text[:80])
                        elif re.search(r"Epoch \d+ of", text):
                            v.setdefault("training_at", now)
                        for flag in ("exception", "connection_error", "busy"):
                            if state.get(flag):
                                v[flag] = True
                        if state.get("result") or state.get("error"):
                            v["finished_at"] = now
                            v["final_text"] = text
                            pending.discard(i)
                    time.sleep(1.0)
                result["unfinished"] = sorted(pending)
                # Does each session see only its own model? Its sidebar list must hold exactly
                # one model trained here, numbered #1.
                for v, page in zip(visitors, pages):
                    if "finished_at" not in v:
                        continue
                    try:  # a finished run is the visitor's active model by itself
                        page.wait_for_timeout(1500)
                        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]'
                                     ).first.click(timeout=60_000)
                        options = page.get_by_role("option").all_inner_texts()
                        page.keyboard.press("Escape")
                        own = [o for o in options if "trained here" in o or "stopped" in o]
                        v["own_models"] = own
                        v["isolated"] = len(own) == 1 and own[0].startswith("#1 ")
                    except Exception as e:  # recorded, not fatal: the figures still count
                        v["isolation_check_error"] = f"{type(e).__name__}: {e}"[:200]
            finally:
                browser.close()
    finally:
        result["server_alive_at_end"] = proc.poll() is None
        result["server_peak_rss_bytes"] = peak_rss(proc.pid)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
        if group:
            result["cgroup_max_usage_bytes"] = group.peak()
            result["cgroup_oom"] = group.oom()
            result["cgroup_peak_rss_bytes"] = max((s["rss"] for s in samples), default=0)
            group.__exit__(None, None, None)
        log.seek(0)
        server_log = log.read()
        log.close()
    result["wall_seconds"] = round(time.time() - started, 1)
    for v in visitors:
        if "training_at" in v and "finished_at" in v:
            v["seconds_per_epoch"] = round((v["finished_at"] - v["training_at"]) / args.epochs, 1)
    result["visitor_results"] = visitors
    done = [v for v in visitors if "finished_at" in v and "Training failed" not in
            v.get("final_text", "")]
    result["finished"] = len(done)
    result["failures"] = [v["id"] for v in visitors if v not in done or v.get("exception")
                          or v.get("connection_error")]
    per_epoch = sorted(v["seconds_per_epoch"] for v in visitors if "seconds_per_epoch" in v)
    result["seconds_per_epoch_median"] = per_epoch[len(per_epoch) // 2] if per_epoch else None
    result["all_isolated"] = all(v.get("isolated") for v in done) if done else False
    result["memory_samples"] = samples[:: max(1, len(samples) // 60)]
    result["server_log_tail"] = server_log[-3000:]
    return result


def main(argv=None) -> int:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=6000,
                        help="VAE_LAB_TRAIN_SUBSET: a small run (0 = all 60,000 training "
                             "images); the full dataset is loaded either way")
    parser.add_argument("--jobs", type=int, default=1, help="VAE_LAB_MAX_TRAINING_JOBS")
    parser.add_argument("--queue", type=int, default=8, help="VAE_LAB_TRAINING_QUEUE")
    parser.add_argument("--limit-gib", type=float, default=2.7)
    parser.add_argument("--no-cgroup", dest="cgroup", action="store_false")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for all runs")
    parser.add_argument("--app-dir", type=Path, default=Path(__file__).resolve().parents[1],
                        help="checkout whose app.py to serve (e.g. an older one, to compare)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.visitors <= 16:
        parser.error("--visitors must be between 1 and 16")
    problem = missing_requirements()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.cgroup and not (CGROUP_ROOT / "cgroup.procs").exists():
        print("error: no cgroup-v1 memory controller here; use --no-cgroup", file=sys.stderr)
        return 2
    ROOT = args.app_dir.resolve()
    result = run(args)
    out = args.out or (Path(__file__).resolve().parent / "results"
                       / f"load_test-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: result.get(k) for k in (
        "visitors", "finished", "failures", "unfinished", "server_alive_at_end",
        "cgroup_max_usage_bytes", "cgroup_peak_rss_bytes", "server_peak_rss_bytes", "cgroup_oom",
        "seconds_per_epoch_median", "all_isolated", "wall_seconds")}
    print(json.dumps(summary, indent=2))
    print(f"written to {out}")
    return 0 if not result["failures"] and result["server_alive_at_end"] else 1


if __name__ == "__main__":
    sys.exit(main())
