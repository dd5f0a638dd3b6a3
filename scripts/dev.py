"""Set up the virtual environment when needed, then run the demo or the whole test suite."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("NOOJEE_DESK_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".noojee-desk-installed"
USAGE = "usage: python3 scripts/dev.py {demo|test|app} [args...]"


def _fingerprint() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the project with its dev extras when pyproject.toml changed."""
    if sys.version_info < (3, 11) or sys.version_info >= (3, 14):
        sys.exit(f"Noojee Desk needs Python 3.11 to 3.13; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"Creating the virtual environment in {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("Installing Noojee Desk and its development tools ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(_fingerprint())


KEYRING_SESSION = ROOT / "packaging" / "linux" / "with-test-keyring.sh"
HELPERS = ROOT / "tests" / "helpers"
#: Test folders that must pass with PySide6 and qasync impossible to import.
QT_FREE = ["tests/core", "tests/sim", "tests/test_send.py"]
NO_QT = ["-p", "no_qt", "-p", "no:pytest-qt"]


def _keyring_session_wrapper() -> list[str] | None:
    """On Linux, a private D-Bus session with an unlocked, throwaway GNOME Keyring."""
    if not sys.platform.startswith("linux") or os.environ.get("NOOJEE_DESK_IN_KEYRING_SESSION"):
        return None
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        return None
    return ["sh", str(KEYRING_SESSION)]


def run_tests(args: list[str]) -> int:
    wrapper = _keyring_session_wrapper()
    if wrapper is not None:
        # The real Secret Service for the keyring tests, never touching a developer's own keyring.
        env = dict(os.environ, NOOJEE_DESK_IN_KEYRING_SESSION="1")
        cmd = [*wrapper, str(PY), str(Path(__file__)), "test", *args]
        return subprocess.call(cmd, env=env, cwd=ROOT)
    env = dict(os.environ, QT_API="pyside6")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    steps = [
        ("ruff lint", [str(BIN / "ruff"), "check", "."]),
        ("ruff format", [str(BIN / "ruff"), "format", "--check", "."]),
        ("import contracts", [str(BIN / "lint-imports")]),
        ("types (mypy)", [str(BIN / "mypy")]),
    ]
    pytest = [str(PY), "-m", "pytest"]
    if args:
        steps.append(("pytest", [*pytest, *args]))
    else:
        # The core, the emulator and `send` with Qt made impossible to import; then the rest.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HELPERS), env.get("PYTHONPATH")]))
        steps.append(("pytest: core, emulator, send (Qt blocked)", [*pytest, *NO_QT, *QT_FREE]))
        steps.append(("pytest: the app", [*pytest, *(f"--ignore={p}" for p in QT_FREE)]))
    for name, cmd in steps:
        print(f"==> {name}", flush=True)
        code = subprocess.call(cmd, env=env, cwd=ROOT)
        if code != 0:
            print(f"==> {name} failed (exit {code})", flush=True)
            return code
    return 0


QT_LIBRARIES = ROOT / "packaging" / "linux" / "qt-libraries.txt"


def qt_libraries() -> list[tuple[str, str]]:
    """(library, Debian package) pairs that Qt's xcb platform plugin needs."""
    pairs = []
    for line in QT_LIBRARIES.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 2:
            pairs.append((fields[0], fields[1]))
    return pairs


def missing_qt_packages(find: Callable[[str], bool] | None = None) -> list[str]:
    """The packages to install before Qt can open a window here (Linux with a display only)."""
    if not sys.platform.startswith("linux"):
        return []
    if os.environ.get("QT_QPA_PLATFORM", "xcb").split(":")[0] not in ("xcb", ""):
        return []
    have = find or _has_library
    return [package for library, package in qt_libraries() if not have(library)]


def _has_library(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "app"}:
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if not os.environ.get("NOOJEE_DESK_IN_KEYRING_SESSION"):
        ensure_venv()
    if command == "test":
        return run_tests(rest)
    missing = missing_qt_packages()
    if missing:
        print(
            "Qt cannot open a window on this computer yet: some libraries of its X11 plugin are "
            f"missing. Install them with:\n\n  sudo apt install {' '.join(missing)}\n",
            file=sys.stderr,
        )
        return 3
    extra = ["--demo"] if command == "demo" else []
    return subprocess.call([str(BIN / "noojee-desk"), *extra, *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
