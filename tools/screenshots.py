"""Screenshots of every page, taken in headless Chromium, into docs/screenshots/.

    python tools/screenshots.py [--out DIR] [--pages digit ...]   # uses checkpoints/

Needs /usr/bin/chromium, the `playwright` package (requirements-dev.txt) and the datasets
(KERAS_HOME) for the Latent page.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.browser import (PAGES, ROOT, browser_page, missing_requirements,  # noqa: E402
                           serve, visit, wait_until_idle)

OUT = ROOT / "docs" / "screenshots"


def save_small(png: bytes, path: Path, max_width: int = 1200):
    """Shrink and quantise a screenshot so the README stays light (about 100-300 KB)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)),
                             Image.LANCZOS)
    image = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def whole_page(page) -> bytes:
    """Streamlit scrolls inside its main container, so grow the viewport to fit it first."""
    height = page.evaluate(
        "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": page.viewport_size["width"], "height": max(900, height)})
    page.wait_for_timeout(1000)
    png = page.screenshot(full_page=True)
    page.set_viewport_size({"width": page.viewport_size["width"], "height": 900})
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    parser.add_argument("--pages", nargs="+", choices=list(PAGES), default=list(PAGES),
                        help="retake only these pages (default: all)")
    args = parser.parse_args()
    out = args.out
    problem = missing_requirements()
    if problem:
        print(f"cannot take screenshots: {problem}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    with serve() as url, browser_page() as page:
        for name, path in PAGES.items():
            if name not in args.pages:
                continue
            visit(page, url, path)
            if name == "latent":  # the unconditional 2-D model shows digit clusters
                page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').click()
                page.get_by_role("option", name="MNIST · 2-D latent, KL on", exact=True).click()
                wait_until_idle(page)
            if name == "digit":  # draw a 4 on the canvas with the mouse
                box = page.locator(".vae-canvas canvas").first.bounding_box()
                for stroke in ([(0.35, 0.15), (0.25, 0.6), (0.75, 0.6)], [(0.6, 0.3), (0.6, 0.9)]):
                    page.mouse.move(box["x"] + stroke[0][0] * box["width"],
                                    box["y"] + stroke[0][1] * box["height"])
                    page.mouse.down()
                    for fx, fy in stroke[1:]:
                        page.mouse.move(box["x"] + fx * box["width"],
                                        box["y"] + fy * box["height"], steps=10)
                    page.mouse.up()
                    wait_until_idle(page)
            if name == "train":
                page.get_by_role("button", name="Start training").click()
                # Mid-run (the quick recipe: about 10 s an epoch here), two epochs shown.
                page.get_by_text("Epoch 3 of 4").wait_for(timeout=180_000)
                page.wait_for_timeout(2000)
            if name == "latent":  # a drag on the live map, released where a digit is clear
                box = page.locator(".vae-latent-pad canvas.overlay").first.bounding_box()
                page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.4,
                                steps=10)
                page.mouse.up()
                wait_until_idle(page)
            if page.locator('[data-testid="stException"]').count():
                print(f"{name}: the page shows an exception", file=sys.stderr)
            save_small(whole_page(page), out / f"{name}.png")
            print(f"wrote {out / f'{name}.png'}")
            if name == "latent":  # and its second tab
                page.get_by_role("tab", name="KL on vs KL off").click()
                wait_until_idle(page)
                save_small(whole_page(page), out / "latent_kl.png")
                print(f"wrote {out / 'latent_kl.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
