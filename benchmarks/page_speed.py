"""The page in a real headless Chromium against the real `faceattr serve` on 127.0.0.1: how long
from choosing examples/astronaut.png to its boxes and 40 bars (warm: after a first photo), and the
round trip of one slider step (strength changed -> the edited face redrawn); then a screenshot.

    python -m benchmarks.page_speed        # needs Debian's chromium and chromium-driver, selenium

Writes benchmarks/results/page_speed.json and .md with the CPU named, and docs/figures/page.png.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks import page_driver as page
from faceattr.atomic import write_text
from faceattr.device import cpu_description

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results"
SCREENSHOT = REPO / "docs" / "figures" / "page.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    with page.running_server() as url, page.headless_chromium() as driver:
        driver.get(url + "/")
        uploads = []
        for i in range(args.repeats + 1):  # the first is the warm-up
            driver.execute_script("document.getElementById('bars').replaceChildren()")
            t = time.perf_counter()
            page.upload(driver, page.PHOTO)
            page.wait(driver, lambda d: len(page.bars(d)) == 40, "the bars")
            if i:
                uploads.append(time.perf_counter() - t)
        page.wait(driver, page.edited_pixels, "the edited face")
        steps = []
        for k in range(args.steps):
            before = page.edited_pixels(driver)
            t = time.perf_counter()
            driver.execute_script(f"const s = document.getElementById('strength'); s.value = '{(k % 6) * 0.5 + 0.5}';"
                                  "s.dispatchEvent(new Event('input'));")
            page.wait(driver, lambda d: page.edited_pixels(d) not in (None, before), "the slider step")
            steps.append(time.perf_counter() - t)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
    res = {"cpu": cpu_description(), "upload_to_bars_s": statistics.median(uploads), "uploads": uploads,
           "slider_step_s": statistics.median(steps), "steps": steps}
    write_text(OUT / "page_speed.json", json.dumps(res, indent=1))
    md = (f"`python -m benchmarks.page_speed` on {res['cpu']}, headless Chromium and the server on one machine: "
          f"from choosing examples/astronaut.png to its boxes and 40 bars {1000 * res['upload_to_bars_s']:.0f} ms "
          f"(median of {len(uploads)}, warm); one slider step, strength changed to the edited face redrawn, "
          f"{1000 * res['slider_step_s']:.0f} ms (median of {len(steps)}).\n")
    write_text(OUT / "page_speed.md", md)
    print(md)


if __name__ == "__main__":
    main()
