"""Benchmark: the latent pad's in-browser decoder (ui/latent_pad), in headless Chromium.

    python bench/browser_decode.py                 # every shipped checkpoint + a fresh model
    python bench/browser_decode.py --models mnist_conditional --reps 100

Serves bench/apps/pad_bench_app.py and, for each model (`?model=<name>`), compares the page's
decode with Keras's `model.decode` on 200 random decoder inputs (and 10 plane points through the
projection), then times decodes after a warm-up with performance.now(): one digit, and the row
of ten classes for conditional models. On the conditional MNIST model and a 2-D model it drags
the mouse for 3 seconds, reading the pad's own per-frame work and the server's CPU time
(/proc/<pid>/stat) before and after; then it drags a finger (CDP touch events) on a 390 x 844
phone viewport. Writes bench/results/browser_decode.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_result  # noqa: E402
from common import process_cpu_seconds as cpu_seconds  # noqa: E402
from tools.browser import (CHROMIUM, CHROMIUM_ARGS, missing_requirements,  # noqa: E402
                           streamlit_server, wait_until_idle)

APP = ROOT / "bench" / "apps" / "pad_bench_app.py"
SHIPPED = ["mnist_conditional", "mnist_2d_kl_on", "mnist_2d_kl_off", "fashion_conditional",
           "fashion_2d_kl_on"]
FRESH = "fresh_detail_conv"
DRAGGED = ["mnist_conditional", "mnist_2d_kl_on"]
PAD = '.vae-latent-pad[data-role="pad"]'
TARGETS = {"parity": 1 / 255, "conditional_single_p95": 33, "conditional_row_p95": 100,
           "mlp_single_p95": 4, "server_cpu_percent": 5}

TIME_JS = """([hash, row, reps, warm]) => {
  const d = vaeLabDecoder, times = [];
  let s = 1;  // a small LCG: a different point every call, the same points every run
  const next = () => (s = (s * 16807) % 2147483647) / 2147483647 * 4 - 2;
  for (let i = 0; i < warm + reps; i++) {
    const x = next(), y = next(), t = performance.now();
    if (row) d.decodeClassRow(hash, x, y); else d.decodePoint(hash, x, y, i % 10);
    if (i >= warm) times.push(performance.now() - t);
  }
  return times;
}"""


def percentiles(values) -> dict:
    values = np.asarray(values, float)
    if not len(values):
        return {"n": 0}
    return {"p50": round(float(np.percentile(values, 50)), 3),
            "p95": round(float(np.percentile(values, 95)), 3),
            "max": round(float(values.max()), 3), "n": int(len(values))}


def open_model(context, url: str, name: str):
    page = context.new_page()
    page.frames_received = []  # websocket message sizes, server -> browser
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: page.frames_received.append(len(payload))))
    page.goto(f"{url}/?model={name}", wait_until="domcontentloaded")
    wait_until_idle(page, timeout_ms=600_000, settle_ms=500)
    page.locator(f"{PAD} .pad").wait_for(state="visible", timeout=60_000)
    return page


def parity(page, expected) -> dict:
    h, z = str(expected["hash"]), expected["z"]
    got = page.evaluate("([h, z, n]) => Array.from(vaeLabDecoder.decode(h, z, n))",
                        [h, z.ravel().tolist(), len(z)])
    one = "([h, x, y, d]) => Array.from(vaeLabDecoder.decodePoint(h, x, y, d))"
    plane = [page.evaluate(one, [h, float(x), float(y), d])
             for d, (x, y) in enumerate(expected["plane"])]
    return {"max_abs": float(np.abs(np.reshape(got, (-1, 28, 28)) - expected["decoded"]).max()),
            "plane_max_abs": float(np.abs(np.reshape(plane, (-1, 28, 28))
                                          - expected["plane_decoded"]).max()),
            "points": len(z)}


def pad_state(page) -> dict:
    return page.evaluate("() => vaeLabDecoder.pads()")[0]


def released_text(page) -> str:
    return page.locator('[data-testid="stMarkdown"]', has_text="released:").inner_text()


def mouse_drag(page, pid: int, seconds: float = 3.0) -> dict:
    """Drag in circles for `seconds`: frames the pad drew, their work, the server's CPU."""
    box = page.locator(f"{PAD} canvas.overlay").bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] / 3
    frames_before, heard = pad_state(page)["frames"], released_text(page)
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    cpu0, t0, moves = cpu_seconds(pid), time.perf_counter(), 0
    while (elapsed := time.perf_counter() - t0) < seconds:
        angle = 2 * math.pi * elapsed / 1.5
        page.mouse.move(cx + r * math.cos(angle), cy + r * math.sin(angle))
        moves += 1
        time.sleep(0.008)
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    state = pad_state(page)
    frames = state["frames"] - frames_before
    rerun_during_drag = released_text(page) != heard
    cpu1 = cpu_seconds(pid)
    page.frames_received.clear()
    page.mouse.up()
    page.wait_for_function("t => ![...document.querySelectorAll('[data-testid=stMarkdown]')]"
                           ".some(e => e.innerText === t)", arg=heard, timeout=30_000)
    wait_until_idle(page, settle_ms=300)
    times = state["times"][-min(frames, len(state["times"])):] if frames else []
    return {"seconds": round(wall, 2), "pointer_moves": moves, "frames": frames,
            "frames_per_second": round(frames / wall, 1), "frame_work_ms": percentiles(times),
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_percent_of_one_core": round(100 * cpu / wall, 2),
            "rerun_during_drag": rerun_during_drag,
            "release_rerun_server_cpu_seconds": round(cpu_seconds(pid) - cpu1, 3),
            "release_rerun_bytes_received": sum(page.frames_received)}


def touch_drag(browser, url: str) -> dict:
    """A finger drag on a phone-sized page: the picture changes, nothing scrolls sideways."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                  is_mobile=True, device_scale_factor=2)
    try:
        page = open_model(context, url, "mnist_conditional")
        overlay = page.locator(f"{PAD} canvas.overlay")
        overlay.scroll_into_view_if_needed()
        box = overlay.bounding_box()
        picture = ("c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"
                   ".join(',')")
        before = page.locator(f"{PAD} canvas.digit").evaluate(picture)
        frames_before, heard = pad_state(page)["frames"], released_text(page)
        cdp = context.new_cdp_session(page)

        def touch(kind, fx=0.0, fy=0.0):
            points = [] if kind == "touchEnd" else [
                {"x": box["x"] + box["width"] * fx, "y": box["y"] + box["height"] * fy}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", 0.15, 0.85)
        for step in range(1, 31):
            touch("touchMove", 0.15 + 0.023 * step, 0.85 - 0.023 * step)
            time.sleep(0.016)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        changed = page.locator(f"{PAD} canvas.digit").evaluate(picture) != before
        frames = pad_state(page)["frames"] - frames_before
        touch("touchEnd")
        page.wait_for_function("t => ![...document.querySelectorAll('[data-testid=stMarkdown]')]"
                               ".some(e => e.innerText === t)", arg=heard, timeout=30_000)
        widths = page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
        return {"picture_changed": changed, "frames_during_drag": frames,
                "release_reported": True, "scroll_width": widths[0], "inner_width": widths[1],
                "no_sideways_scroll": widths[0] <= widths[1],
                "exception_boxes": page.locator('[data-testid="stException"]').count()}
    finally:
        context.close()


def table(result: dict) -> str:
    ok = lambda good: "✓" if good else "✗"  # noqa: E731
    lines = ["| model | payload | parity max abs (≤ 1/255) | one digit p50 / p95 ms | "
             "ten-class row p50 / p95 ms |", "|---|---|---|---|---|"]
    for name, m in result["models"].items():
        p, single, row = m["parity"], m["single_ms"], m.get("row_ms")
        worst = max(p["max_abs"], p["plane_max_abs"])
        lines.append(f"| {name} | {m['payload_bytes'] / 1e6:.2f} MB | {worst:.1e} "
                     f"{ok(worst <= TARGETS['parity'])} | {single['p50']:.1f} / "
                     f"{single['p95']:.1f} | "
                     + (f"{row['p50']:.1f} / {row['p95']:.1f} |" if row else "– |"))
    lines += ["", "| drag (3 s, mouse) | frames/s | frame work p50 / p95 ms | server CPU "
              "(≤ 5 % of a core) | reruns during drag | the release's rerun |",
              "|---|---|---|---|---|---|"]
    for name, d in result["drags"].items():
        fw = d["frame_work_ms"]
        lines.append(f"| {name} | {d['frames_per_second']} | {fw['p50']:.1f} / {fw['p95']:.1f} "
                     f"| {d['server_cpu_percent_of_one_core']} % "
                     f"{ok(d['server_cpu_percent_of_one_core'] <= 5)} | "
                     f"{'yes ✗' if d['rerun_during_drag'] else 'none ✓'} | "
                     f"{d['release_rerun_bytes_received']} B sent, "
                     f"{d['release_rerun_server_cpu_seconds']} s server CPU |")
    t = result["touch"]
    lines += ["", f"Phone (390 x 844, finger via CDP): picture changed "
              f"{ok(t['picture_changed'])} ({t['frames_during_drag']} frames), scrollWidth "
              f"{t['scroll_width']} ≤ innerWidth {t['inner_width']} "
              f"{ok(t['no_sideways_scroll'])}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=SHIPPED + [FRESH])
    parser.add_argument("--reps", type=int, default=300, help="timed single-digit decodes")
    parser.add_argument("--row-reps", type=int, default=100, help="timed ten-class rows")
    parser.add_argument("--tag", default=None,
                        help="write bench/results/browser_decode_<tag>.json instead")
    args = parser.parse_args()
    problem = missing_requirements()
    if problem:
        sys.exit(problem)
    from playwright.sync_api import sync_playwright

    command = "python bench/browser_decode.py" + (
        "" if args.models == SHIPPED + [FRESH] else " --models " + " ".join(args.models))
    result = {"command": command, "machine": machine(), "targets": TARGETS, "models": {},
              "drags": {}}
    with tempfile.TemporaryDirectory(prefix="pad-bench-") as tmp:
        out_dir = Path(tmp)
        env = {"PYTHONPATH": str(ROOT), "VAE_PAD_BENCH_DIR": str(out_dir),
               "VAE_PAD_CHECKPOINTS": str(ROOT / "checkpoints")}
        with streamlit_server(APP, env=env) as (url, proc), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                        headless=True)
            result["chromium"] = browser.version
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for name in args.models:
                t0 = time.perf_counter()
                page = open_model(context, url, name)
                expected = np.load(out_dir / f"{name}.npz")
                h = str(expected["hash"])
                m = {"payload_bytes": int(expected["payload_bytes"]),
                     "first_load_bytes_received": sum(page.frames_received),
                     "load_seconds": round(time.perf_counter() - t0, 1),
                     "parity": parity(page, expected),
                     "single_ms": percentiles(page.evaluate(TIME_JS,
                                                            [h, False, args.reps, 30]))}
                if bool(expected["conditional"]):
                    m["row_ms"] = percentiles(page.evaluate(TIME_JS, [h, True, args.row_reps,
                                                                      10]))
                if name in DRAGGED:
                    result["drags"][name] = mouse_drag(page, proc.pid)
                m["exception_boxes"] = page.locator('[data-testid="stException"]').count()
                result["models"][name] = m
                print(name, json.dumps(m), flush=True)
                page.close()
            if "mnist_conditional" in args.models:
                result["touch"] = touch_drag(browser, url)
            browser.close()
    write_result("browser_decode", result, args.tag)
    if "touch" in result:
        print(table(result))


if __name__ == "__main__":
    main()
