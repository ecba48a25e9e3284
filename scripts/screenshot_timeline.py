"""Draw one simulated run's timeline as HTML and, when Debian's chromium is installed, a PNG of it.

    python scripts/screenshot_timeline.py OUT_DIR [--seed 3] [--read-mode local] [--duration 30]

Writes OUT_DIR/timeline-seed<N>.html and, with `chromium` on PATH, OUT_DIR/timeline-seed<N>.png
taken headless with networking features off. Exits 1 when chromium is missing or the screenshot
fails, so a caller can tell a picture was not made.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sim._run import RunOptions, run_simulation
from sim._timeline_html import render_timeline_html

_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def write_timeline(out_dir: Path, seed: int, options: RunOptions) -> Path:
    """Run the seeded simulation and write its timeline page into `out_dir`; return the path."""
    timeline = run_simulation(seed, options).timeline
    if timeline is None:
        raise RuntimeError(f"run of seed {seed} kept no timeline")
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / f"timeline-seed{seed}.html"
    page.write_text(render_timeline_html(timeline), encoding="utf-8")
    return page


def screenshot(page: Path, png: Path, window_size: str = "1600,1100") -> None:
    """Take a headless chromium screenshot of `page`; raises if chromium fails or writes nothing."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise FileNotFoundError("chromium is not on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        subprocess.run(
            [
                chromium,
                *_CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png.resolve()}",
                f"--window-size={window_size}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot to {png}")


def main(argv: list[str] | None = None) -> int:
    """Write the page and its screenshot; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="directory for the .html and .png")
    parser.add_argument("--seed", type=int, default=3, help="simulation seed (default 3)")
    parser.add_argument("--read-mode", default="log", help="log (default) or local")
    parser.add_argument("--duration", type=int, default=30, help="simulated seconds (default 30)")
    parser.add_argument("--window-size", default="1600,1100", help="chromium window W,H")
    args = parser.parse_args(argv)
    options = RunOptions(duration=args.duration, read_mode=args.read_mode)
    page = write_timeline(args.out_dir, args.seed, options)
    print(f"wrote {page}")
    png = page.with_suffix(".png")
    try:
        screenshot(page, png, args.window_size)
    except (FileNotFoundError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"no screenshot: {error}", file=sys.stderr)
        return 1
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
