"""The server's own CPU time per interaction, one visitor in real Chromium, and an idle visitor.

    python bench/server_cpu.py [--repeats 12] [--idle-seconds 20] [--tag T]

Starts `streamlit run app.py` (the shipped models), opens one headless-Chromium page and, for
each kind of interaction, does it --repeats times: a digit clicked on Generate, one slider step
on the Latent page (a key press on its slider), a stroke drawn on Your digit. Each one waits
until the page has settled (no running script, the picture changed) and reads the server
process's CPU time (utime + stime in /proc/PID/stat) before and after: CPU-ms per interaction,
and the wall time from the action to the new picture. Then an idle visitor: the Home page left
open for --idle-seconds, as a share of one core, twice: served from this checkout, and from a
copy of it with a virtualenv inside (`python -m venv .venv`, the common set-up whose file tree
Streamlit's file watcher would otherwise crawl). Writes bench/results/server_cpu[_TAG].json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import machine, offline_keras_home, write_result  # noqa: E402
from common import process_cpu_seconds as cpu_seconds  # noqa: E402
from tools.browser import (CHROMIUM, CHROMIUM_ARGS, missing_requirements,  # noqa: E402
                           streamlit_server)

SETTLED = """() => !document.querySelector('[data-testid="stStatusWidget"]')"""
PICTURES = """() => [...document.querySelectorAll('[data-testid="stImage"] img, canvas')]
    .map(e => e.src || '').join('|')"""


def settle(page, timeout_ms=60_000):
    page.wait_for_timeout(150)
    page.wait_for_function(SETTLED, timeout=timeout_ms)
    page.wait_for_timeout(350)  # let a late rerun (a component's state) start and finish
    page.wait_for_function(SETTLED, timeout=timeout_ms)


def measure(page, pid: int, action, repeats: int) -> dict:
    """CPU-ms and wall seconds (action -> new picture) of `repeats` interactions."""
    cpu, wall = [], []
    for i in range(repeats):
        before_pictures = page.evaluate(PICTURES)
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        action(i)
        page.wait_for_function(f"() => ({PICTURES})() !== {before_pictures!r}",
                               timeout=60_000)
        wall.append(time.perf_counter() - t0)
        settle(page)
        cpu.append(1000 * (cpu_seconds(pid) - c0))
    return {"cpu_ms": [round(c) for c in cpu], "cpu_ms_median": round(statistics.median(cpu)),
            "wall_s_median": round(statistics.median(wall), 3),
            "wall_s_max": round(max(wall), 3)}


def interactions(url: str, pid: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)

        page.goto(f"{url}/generate")
        page.get_by_role("heading", name="Generate").wait_for()
        settle(page)
        digits = page.locator('[data-testid="stButtonGroup"]').first.get_by_role("radio")
        digits.nth(1).wait_for()
        out["generate_digit_click"] = measure(
            page, pid, lambda i: digits.nth(1 + (i % 10)).click(), repeats)

        page.goto(f"{url}/latent")
        page.get_by_role("heading", name="Latent space").wait_for()
        settle(page)
        thumb = page.get_by_role("slider", name="(horizontal)")
        out["latent_slider_step"] = measure(
            page, pid, lambda i: thumb.press("ArrowRight" if i % 2 == 0 else "ArrowLeft"),
            repeats)

        page.goto(f"{url}/digit")
        page.get_by_role("heading", name="Your digit").wait_for()
        settle(page)
        canvas = page.locator("canvas").first
        canvas.wait_for()
        box = canvas.bounding_box()

        def stroke(i):
            x, y = box["x"] + box["width"] * (0.3 + 0.03 * (i % 5)), box["y"] + box["height"] * 0.2
            page.mouse.move(x, y)
            page.mouse.down()
            for k in range(12):
                page.mouse.move(x + 5 * (k % 3), y + box["height"] * 0.05 * k)
            page.mouse.up()

        out["digit_stroke"] = measure(page, pid, stroke, repeats)
        browser.close()
    return out


def idle_share(url: str, pid: int, seconds: float) -> float:
    """Share of one core the server uses while one visitor sits on the Home page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("heading", name="VAE Lab").wait_for(timeout=120_000)
        settle(page)
        page.wait_for_timeout(3000)
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        share = (cpu_seconds(pid) - c0) / (time.perf_counter() - t0)
        browser.close()
    return round(share, 4)


def copy_with_venv(into: Path) -> Path:
    """This checkout's files (no .git) with this interpreter's virtualenv inside as .venv (hard
    links: seconds, no download), the set-up of `python -m venv .venv` and `pip install -r
    requirements.txt` in the project folder, served by that venv's Python."""
    app = into / "app"
    shutil.copytree(ROOT, app, ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv",
                                                              "runs"))
    if sys.prefix == sys.base_prefix:
        raise SystemExit("error: run this benchmark from a virtualenv (it copies it as .venv)")
    subprocess.run(["cp", "-al", sys.prefix, str(app / ".venv")], check=True)
    return app


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--tag", default=None)
    args = parser.parse_args(argv)
    problem = missing_requirements()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    offline_keras_home()
    result = {"command": " ".join(["python bench/server_cpu.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "repeats": args.repeats}
    with streamlit_server() as (url, proc):
        result["interactions"] = interactions(url, proc.pid, args.repeats)
        result["idle_share_of_a_core"] = idle_share(url, proc.pid, args.idle_seconds)
    with tempfile.TemporaryDirectory(dir=Path(sys.prefix).parent) as tmp:  # one file system
        app = copy_with_venv(Path(tmp))
        files = sum(len(f) for _, _, f in os.walk(app / ".venv"))
        venv_python = str(app / ".venv" / "bin" / "python")
        with streamlit_server(cwd=app, python=venv_python) as (url, proc):
            result["idle_share_of_a_core_with_venv_inside"] = idle_share(
                url, proc.pid, args.idle_seconds)
            result["venv_files"] = files
    write_result("server_cpu", result, args.tag)
    rows = [(name, r["cpu_ms_median"], r["wall_s_median"])
            for name, r in result["interactions"].items()]
    print("| interaction | server CPU-ms (median) | action to picture, s (median) |")
    print("|---|---|---|")
    for name, cpu, wall in rows:
        print(f"| {name} | {cpu} | {wall} |")
    print(f"idle visitor: {100 * result['idle_share_of_a_core']:.1f}% of a core; with a .venv "
          f"inside: {100 * result['idle_share_of_a_core_with_venv_inside']:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
