"""A screenshot of a running wallboard in a headless Chromium (the README's picture):

deskpulse demo &                      # prints the wallboard's address
python scripts/wallboard_screenshot.py http://127.0.0.1:8090/ docs/img/wallboard.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consumers.wallboard.headless import Chromium  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url")
    p.add_argument("out", type=Path)
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--settle", type=float, default=2.0, help="seconds of updates before the shot")
    args = p.parse_args()
    with Chromium(width=args.width, height=args.height) as browser:
        browser.navigate(args.url)
        browser.wait_for("window.deskpulse.updates.length > 0", 15)
        time.sleep(args.settle)
        browser.screenshot(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
