"""A demo room on one server: 8 visitors at once for 3 minutes, under Community Cloud's memory cap.

    python bench/room_test.py [--visitors 8] [--minutes 3] [--limit-gib 2.7] [--tag T]

Starts `streamlit run app.py` inside a cgroup-v1 memory group capped at --limit-gib (root only;
--no-cgroup runs without the cap), has one more visitor start a training run (the Train page's
"About 5 minutes" recipe, so it trains through the whole test), and drives --visitors headless
Chromium contexts (each its own Streamlit session) concurrently, as a room of phones would: every
few seconds each visitor does one thing, moving between pages with the sidebar as a person does:
Home (the row of digits), a digit clicked on Generate, a drag released on the Latent page's map,
a stroke drawn on Your digit. For each action it records the time until the new picture is on
screen, and it watches for exception boxes. The server's memory is sampled every few seconds
(the cgroup's RSS): its growth from the end of the first minute to the end of the run says
whether anything grows per interaction. The browsers run on the same 2 cores as the server.
Writes bench/results/room_test[_TAG].json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, offline_keras_home, write_result  # noqa: E402
from load_test import CGROUP_ROOT, MemoryGroup, peak_rss  # noqa: E402
from tools.browser import (CHROMIUM, CHROMIUM_ARGS, missing_requirements,  # noqa: E402
                           streamlit_server)

IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
IMAGES = "() => [...document.querySelectorAll('[data-testid=\"stImage\"] img')].map(i => i.src)"
EXCEPTION = "() => document.querySelectorAll('[data-testid=\"stException\"]').length"
KINDS = ("home", "generate", "latent", "digit")


async def settled(page, timeout=30_000):
    await page.wait_for_timeout(100)
    await page.wait_for_function(IDLE, timeout=timeout)


async def new_picture(page, before: list[str], timeout=30_000):
    """Wait until the page shows an image that was not there before."""
    await page.wait_for_function(
        "old => [...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".some(i => i.complete && i.naturalWidth && !old.includes(i.src))",
        arg=before, timeout=timeout)


async def go(page, title: str):
    """Move to a page through the sidebar's navigation, as a visitor does."""
    await page.locator('[data-testid="stSidebarNav"]').get_by_role(
        "link", name=title, exact=True).click()
    await page.get_by_role("heading", name=title if title != "Home" else "VAE Lab",
                           exact=True).first.wait_for(timeout=30_000)
    await settled(page)


async def act(page, kind: str, rng: random.Random) -> float:
    """Do one thing; seconds from the action to its new picture."""
    if kind == "home":
        await go(page, "Home")
        before = await page.evaluate(IMAGES)
        started = time.perf_counter()
        await page.get_by_role("button", name="Another style").click()
        await new_picture(page, before)
        return time.perf_counter() - started
    if kind == "generate":
        await go(page, "Generate")
        digits = page.locator('[data-testid="stButtonGroup"]').first.get_by_role("radio")
        await digits.nth(10).wait_for()  # the heading can come before the pills
        checked = await digits.evaluate_all("els => els.map(e => e.ariaChecked === 'true')")
        choice = rng.choice([i for i in range(1, 11) if not checked[i]])  # a new picture
        before = await page.evaluate(IMAGES)
        started = time.perf_counter()
        await digits.nth(choice).click()
        await new_picture(page, before)
        return time.perf_counter() - started
    if kind == "latent":
        await go(page, "Latent space")
        overlay = page.locator(".vae-latent-pad canvas.overlay").first
        await overlay.wait_for(state="visible", timeout=30_000)
        box = await overlay.bounding_box()
        x, y = (box["x"] + box["width"] * rng.uniform(0.2, 0.8),
                box["y"] + box["height"] * rng.uniform(0.2, 0.8))
        await page.mouse.move(x, y)
        await page.mouse.down()
        await page.mouse.move(x + rng.uniform(-60, 60), y + rng.uniform(-60, 60), steps=10)
        before = await page.evaluate(IMAGES)
        started = time.perf_counter()
        await page.mouse.up()  # the release: the server decodes the point too
        await new_picture(page, before)
        return time.perf_counter() - started
    await go(page, "Your digit")
    canvas = page.locator(".vae-canvas canvas").first
    box = await canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * rng.uniform(0.25, 0.5), box["y"] + box["height"] * 0.2
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    for k in range(1, 9):
        await page.mouse.move(x0 + rng.uniform(-8, 8) + 12 * k, y0 + box["height"] * 0.075 * k)
    before = await page.evaluate(IMAGES)
    started = time.perf_counter()
    await page.mouse.up()
    await new_picture(page, before)
    return time.perf_counter() - started


async def visitor(browser, url: str, index: int, started: float, deadline: float, records: list,
                  errors: list):
    rng = random.Random(index)
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(30_000)
    await page.goto(url, wait_until="domcontentloaded")
    await page.get_by_role("heading", name="VAE Lab").wait_for(timeout=120_000)
    await settled(page)
    while time.time() < deadline:
        kind = rng.choice(KINDS)
        try:
            seconds = await act(page, kind, rng)
            records.append({"visitor": index, "kind": kind, "seconds": round(seconds, 3),
                            "t": round(time.time() - started, 1)})
        except Exception as e:  # recorded: a timeout is a failed action, not a crashed test
            errors.append({"visitor": index, "kind": kind, "error": f"{type(e).__name__}"[:80]})
        if await page.evaluate(EXCEPTION):
            errors.append({"visitor": index, "kind": kind, "error": "exception box"})
        await page.wait_for_timeout(rng.uniform(2000, 5000))
    await context.close()


async def trainer(browser, url: str):
    """One more visitor starts a training run that lasts through the test."""
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    await page.goto(f"{url}/train", wait_until="domcontentloaded")
    await page.get_by_role("button", name="Start training").wait_for(timeout=120_000)
    await settled(page)
    await page.get_by_role("radio", name="About 5 minutes").click()
    await settled(page)
    await page.get_by_role("button", name="Start training").click()
    await page.locator('[data-testid="stProgress"]').wait_for(timeout=120_000)
    return context


def p95(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))] if values else None


async def room(url: str, args, memory) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        training = await trainer(browser, url)
        started = time.time()
        deadline = started + 60 * args.minutes
        records, errors = [], []
        sampler = asyncio.create_task(memory(started, deadline))
        await asyncio.gather(*(visitor(browser, url, i, started, deadline, records, errors)
                               for i in range(args.visitors)))
        samples = await sampler
        train_state = await (training.pages[0]).locator(
            '[data-testid="stProgress"]').first.inner_text()
        await browser.close()
    return {"records": records, "errors": errors, "memory": samples,
            "training_status_at_end": train_state[:120]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--limit-gib", type=float, default=2.7)
    parser.add_argument("--no-cgroup", dest="cgroup", action="store_false")
    parser.add_argument("--tag", default=None)
    args = parser.parse_args(argv)
    problem = missing_requirements()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.cgroup and not (CGROUP_ROOT / "cgroup.procs").exists():
        print("error: no cgroup-v1 memory controller here; use --no-cgroup", file=sys.stderr)
        return 2
    offline_keras_home()
    result = {"command": " ".join(["python bench/room_test.py", *(argv or sys.argv[1:])]),
              "machine": machine(), "visitors": args.visitors, "minutes": args.minutes,
              "limit_gib": args.limit_gib if args.cgroup else None,
              "note": "the browsers share the machine's 2 cores with the server"}
    group = MemoryGroup(int(args.limit_gib * 2**30)) if args.cgroup else None
    with group or contextlib.nullcontext():
        with streamlit_server(wrap=group.wrap if group else None) as (url, proc):

            async def memory(started, deadline):
                samples = []
                while time.time() < deadline:
                    rss = group.rss() if group else peak_rss(proc.pid)
                    samples.append({"t": round(time.time() - started, 1), "rss": rss})
                    await asyncio.sleep(5)
                return samples

            out = asyncio.run(room(url, args, memory))
            alive = proc.poll() is None
        if group:  # the server has stopped; the group is removed after this
            result["cgroup_oom"] = group.oom()
            result["cgroup_max_usage_bytes"] = group.peak()
    records, samples = out["records"], out["memory"]
    after_first = [s["rss"] for s in samples if s["t"] >= 60]
    result.update({
        "server_alive_at_end": alive,
        "actions": len(records), "failed_actions": out["errors"],
        "exception_boxes": sum(e["error"] == "exception box" for e in out["errors"]),
        "seconds_p95": p95([r["seconds"] for r in records]),
        "seconds_p95_after_first_minute": p95([r["seconds"] for r in records if r["t"] >= 60]),
        "by_kind": {k: {"n": len(v), "p50": statistics.median(v) if v else None, "p95": p95(v)}
                    for k in KINDS for v in [[r["seconds"] for r in records if r["kind"] == k]]},
        "rss_after_first_minute": after_first[0] if after_first else None,
        "rss_at_end": samples[-1]["rss"] if samples else None,
        "rss_growth_after_first_minute": (samples[-1]["rss"] - after_first[0]
                                          if after_first else None),
        "training_status_at_end": out["training_status_at_end"],
        "records": records, "memory_samples": samples,
    })
    write_result("room_test", result, args.tag)
    print("| action | count | p50 s | p95 s |\n|---|---|---|---|")
    for kind, r in result["by_kind"].items():
        print(f"| {kind} | {r['n']} | {r['p50']} | {r['p95']} |")
    growth = result["rss_growth_after_first_minute"]
    print(f"all actions: p95 {result['seconds_p95']} s over {len(records)} (after the first "
          f"minute {result['seconds_p95_after_first_minute']} s); failed "
          f"{len(out['errors'])}; OOM {result.get('cgroup_oom')}; RSS growth after minute 1: "
          f"{None if growth is None else round(growth / 2**20)} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
