"""What the screenshot and try-out scripts share: a display to draw on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

SCREEN = "-screen 0 1400x900x24 -dpi 96"


def run_on_a_display(script: str) -> int | None:
    """None when this process can draw windows (Qt's xcb platform unless told otherwise).

    On Linux without a display, ``script`` is run again (with its arguments) under
    ``xvfb-run`` and its exit code returned, or 2 with what to install when xvfb is missing."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        if not shutil.which("xvfb-run"):
            print("No display: install xvfb (Debian: apt install xvfb) or run on a desktop.")
            return 2
        cmd = ["xvfb-run", "-a", "-s", SCREEN, sys.executable, script, *sys.argv[1:]]
        return subprocess.call(cmd)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    return None
