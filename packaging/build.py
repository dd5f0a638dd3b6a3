"""Build the frozen app, prove it with its own self-test, measure it, then wrap it for release.

    python packaging/build.py [--linux | --windows | --macos] [--measure N] [--skip-build]

Linux: a .tar.gz with a .desktop file; Windows: an Inno Setup installer; macOS: a signed .app in a
.dmg, and beside it a .pkg that installs it to /Applications (for MDM: Jamf, Intune, Kandji),
both notarised when the notary variables are set. Nothing is wrapped when the self-test fails.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import platform
import plistlib
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIST = HERE / "dist"
WORK = HERE / "build"
SPEC = HERE / "noojee-desk.spec"
NAME = "noojee-desk"
APP_NAME = "Noojee Desk"
BUNDLE_ID = "au.com.noojee.desk"
#: Budgets of the Linux bundle (docs/benchmarks.md, "Packaging").
SIZE_BUDGET_MB = 150.0
START_BUDGET_S = 2.0
SELF_TEST_TIMEOUT = 300.0
START_TIMEOUT = 60.0


class BuildError(Exception):
    """A step failed; the message says which and why."""


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def package_version() -> str:
    """``noojee_desk.__version__``, read from the source (the spec reads it the same way)."""
    tree = ast.parse((ROOT / "noojee_desk" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise BuildError("noojee_desk/__init__.py has no __version__")


def numeric_version(version: str) -> str:
    """Four dotted numbers for Windows version resources: '1.2.0rc1' -> '1.2.0.0'."""
    numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])[:3]]
    numbers += [0] * (4 - len(numbers))
    return ".".join(str(n) for n in numbers)


def current_target() -> str:
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def machine() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(arch, arch)


def artifact_name(target: str, version: str, arch: str) -> str:
    """The file name of the installer or archive for ``target``."""
    if target == "windows":
        return f"{NAME}-{version}-windows-x64-setup.exe"
    if target == "macos":
        return f"{NAME}-{version}-macos-{arch}.dmg"
    return f"{NAME}-{version}-linux-{arch}.tar.gz"


def pkg_name(version: str, arch: str) -> str:
    """The macOS installer package beside the .dmg, for MDM deployment."""
    return f"{NAME}-{version}-macos-{arch}.pkg"


def bundle_dir() -> Path:
    return DIST / NAME


def app_bundle() -> Path:
    return DIST / f"{APP_NAME}.app"


def frozen_programs(target: str) -> list[Path]:
    """The frozen executables to self-test (console first)."""
    if target == "windows":
        return [bundle_dir() / f"{NAME}-cli.exe", bundle_dir() / f"{NAME}.exe"]
    if target == "macos":
        return [app_bundle() / "Contents" / "MacOS" / NAME]
    return [bundle_dir() / NAME]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing with its output when it fails."""
    shown = " ".join(str(c) for c in cmd)
    print(f"    $ {shown}", flush=True)
    done = subprocess.run([str(c) for c in cmd], check=False, **kwargs)
    if done.returncode != 0:
        raise BuildError(f"`{shown}` failed with exit code {done.returncode}")
    return done


# -- build ----------------------------------------------------------------------------------------


def build() -> None:
    say("PyInstaller: building the one-folder bundle")
    run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level=WARN",
            "--distpath",
            DIST,
            "--workpath",
            WORK,
            SPEC,
        ],
        cwd=ROOT,
    )


# -- self-test ------------------------------------------------------------------------------------


def keyring_session_wrapper() -> list[str]:
    """Linux: a private D-Bus session with an unlocked throwaway keyring (so a build machine's
    own keyring is never touched); nothing when dbus-run-session or gnome-keyring is missing."""
    if not sys.platform.startswith("linux"):
        return []
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        print("    no dbus-run-session/gnome-keyring-daemon: using this session's keyring")
        return []
    return ["sh", str(HERE / "linux" / "with-test-keyring.sh")]


def run_bounded(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """(exit code or None on timeout, output); on timeout the whole process group is ended,
    including a D-Bus session and keyring daemon started for the run."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=os.name == "posix",
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        output, _ = proc.communicate()
        return None, output
    return proc.returncode, output


def self_test(target: str, private_keyring: bool = True) -> str:
    """Run ``--self-test`` of every frozen executable; returns the report of the first."""
    reports: list[str] = []
    for program in frozen_programs(target):
        if not program.exists():
            raise BuildError(f"the frozen program {program} is missing")
        say(f"self-test of the frozen app: {program.relative_to(DIST)}")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        env.pop("NOOJEE_DESK_HOME", None)
        wrapper = keyring_session_wrapper() if private_keyring else []
        with tempfile.TemporaryDirectory(prefix="noojee-desk-report-") as tmp:
            report = Path(tmp) / "self-test.txt"
            code, output = run_bounded(
                [*wrapper, str(program), "--self-test", f"--report={report}"],
                env,
                SELF_TEST_TIMEOUT,
            )
            text = report.read_text(encoding="utf-8") if report.exists() else ""
        print(text or output, end="", flush=True)
        if code is None:
            raise BuildError(f"the self-test of {program.name} did not finish in time")
        if code != 0:
            if text and output.strip():
                print("    output of the frozen app:\n" + output, flush=True)
            raise BuildError(
                f"the frozen app failed its self-test (exit {code}); nothing is packaged"
            )
        reports.append(text)
    return reports[0] if reports else ""


# -- measurements ---------------------------------------------------------------------------------


def tree_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) of a folder as unpacked on disk, symlinks counted as links."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            total += path.lstat().st_size
            files += 1
    return total, files


def start_to_window(program: Path) -> tuple[float, float]:
    """Launch ``--demo`` offscreen and wait for "window shown"; (wall seconds, in-app seconds)."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        NOOJEE_DESK_REPORT_STARTUP="1",
        NOOJEE_DESK_QUIT_AFTER_SHOW="1",
    )
    with tempfile.TemporaryDirectory(prefix="noojee-desk-start-") as home:
        env["NOOJEE_DESK_HOME"] = home
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(program), "--demo"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            deadline = started + START_TIMEOUT
            while (left := deadline - time.perf_counter()) > 0:
                try:
                    line = lines.get(timeout=left)
                except queue.Empty:
                    break
                if line is None:
                    break
                found = re.search(r"window shown after ([\d.]+) s", line)
                if found:
                    return time.perf_counter() - started, float(found.group(1))
            raise BuildError(f"{program.name} --demo never reported its window")
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)  # quits by itself with NOOJEE_DESK_QUIT_AFTER_SHOW
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def measure(target: str, runs: int) -> dict[str, object]:
    folder = app_bundle() if target == "macos" else bundle_dir()
    size, files = tree_size(folder)
    metrics: dict[str, object] = {
        "target": target,
        "machine": machine(),
        "bundle_mb": round(size / 1e6, 1),
        "bundle_files": files,
    }
    say(f"bundle: {size / 1e6:.1f} MB unpacked in {files} files")
    if runs > 0:
        program = frozen_programs(target)[0]
        walls: list[float] = []
        inside: list[float] = []
        for index in range(runs):
            wall, in_app = start_to_window(program)
            walls.append(wall)
            inside.append(in_app)
            label = "first (cold)" if index == 0 else f"run {index + 1}"
            print(f"    start to window, {label}: {wall:.2f} s (in the app {in_app:.2f} s)")
        metrics["start_first_s"] = round(walls[0], 2)
        metrics["start_median_s"] = round(statistics.median(walls), 2)
        metrics["start_in_app_median_s"] = round(statistics.median(inside), 2)
        metrics["start_runs"] = runs
    return metrics


def check_budgets(metrics: dict[str, object]) -> None:
    if metrics["target"] != "linux":
        return
    size = float(metrics["bundle_mb"])  # type: ignore[arg-type]
    if size > SIZE_BUDGET_MB:
        raise BuildError(f"the bundle is {size:.1f} MB, over the {SIZE_BUDGET_MB:.0f} MB budget")
    start = metrics.get("start_median_s")
    if start is not None and float(start) > START_BUDGET_S:  # type: ignore[arg-type]
        print(f"    warning: start to window {start} s is over the {START_BUDGET_S} s budget")


# -- wrapping -------------------------------------------------------------------------------------


def wrap_linux(version: str) -> Path:
    say("Linux: .tar.gz with a .desktop file")
    out = DIST / artifact_name("linux", version, machine())
    top = f"{NAME}-{version}"
    extras = {
        "noojee-desk.desktop": HERE / "linux" / "noojee-desk.desktop",
        "install.sh": HERE / "linux" / "install.sh",
        "noojee-desk.png": ROOT / "resources" / "noojee-desk.png",
        "noojee-desk-512.png": ROOT / "resources" / "noojee-desk-512.png",
    }

    def executable(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if info.name.endswith("install.sh"):
            info.mode = 0o755
        return info

    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle_dir(), arcname=top, filter=executable)
        for arcname, source in extras.items():
            tar.add(source, arcname=f"{top}/{arcname}", filter=executable)
    return out


def find_iscc() -> Path:
    candidates = [
        os.environ.get("ISCC", ""),
        shutil.which("iscc") or "",
        shutil.which("ISCC") or "",
    ]
    for base in (os.environ.get("PROGRAMFILES(X86)"), os.environ.get("PROGRAMFILES")):
        if base:
            candidates.append(str(Path(base) / "Inno Setup 6" / "ISCC.exe"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BuildError("Inno Setup 6 (ISCC.exe) was not found; install it or set ISCC to its path")


def sign_windows(files: list[Path]) -> None:
    """Authenticode-sign when WINDOWS_SIGN_CERT (a .pfx) and WINDOWS_SIGN_PASSWORD are set."""
    cert = os.environ.get("WINDOWS_SIGN_CERT")
    if not cert:
        return
    signtool = os.environ.get("SIGNTOOL") or shutil.which("signtool")
    if not signtool:  # the Windows SDK does not put it on PATH
        kits = Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)"))
        found = sorted((kits / "Windows Kits" / "10" / "bin").glob("10.*/x64/signtool.exe"))
        signtool = str(found[-1]) if found else None
    if not signtool:
        raise BuildError("WINDOWS_SIGN_CERT is set but signtool.exe was not found (set SIGNTOOL)")
    timestamp = os.environ.get("WINDOWS_SIGN_TIMESTAMP_URL", "http://timestamp.digicert.com")
    for path in files:
        run(
            [
                signtool,
                "sign",
                "/fd",
                "SHA256",
                "/td",
                "SHA256",
                "/tr",
                timestamp,
                "/f",
                cert,
                "/p",
                os.environ.get("WINDOWS_SIGN_PASSWORD", ""),
                path,
            ]
        )


def wrap_windows(version: str) -> Path:
    say("Windows: Inno Setup installer (per user, no admin rights)")
    sign_windows(frozen_programs("windows"))
    iscc = find_iscc()
    run(
        [
            iscc,
            "/Qp",
            f"/DAppVersion={version}",
            f"/DAppNumericVersion={numeric_version(version)}",
            f"/DSourceDir={bundle_dir()}",
            f"/DOutputDir={DIST}",
            f"/DOutputBaseFilename={artifact_name('windows', version, machine())[:-4]}",
            f"/DRepoRoot={ROOT}",
            HERE / "windows" / "noojee-desk.iss",
        ]
    )
    out = DIST / artifact_name("windows", version, machine())
    sign_windows([out])
    return out


def macos_identity() -> str | None:
    return os.environ.get("MACOS_SIGN_IDENTITY") or None


def macos_installer_identity() -> str | None:
    """A "Developer ID Installer" identity: a .pkg is signed with it, not the app's identity."""
    return os.environ.get("MACOS_INSTALLER_IDENTITY") or None


def pkg_commands(app: Path, version: str, component: Path, out: Path) -> list[list[str | Path]]:
    """pkgbuild (the .app to /Applications) then productbuild (the archive MDM installs)."""
    sign = macos_installer_identity()
    signing: list[str | Path] = ["--sign", sign, "--timestamp"] if sign else []
    return [
        [
            "pkgbuild",
            "--component",
            app,
            "--install-location",
            "/Applications",
            "--identifier",
            BUNDLE_ID,
            "--version",
            version,
            component,
        ],
        ["productbuild", "--package", component, *signing, out],
    ]


def wrap_macos_pkg(version: str) -> Path:
    say("macOS: a .pkg for MDM beside the .dmg")
    out = DIST / pkg_name(version, machine())
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="noojee-desk-pkg-") as tmp:
        for cmd in pkg_commands(app_bundle(), version, Path(tmp) / "component.pkg", out):
            run(cmd)
    if macos_installer_identity():
        notarise(out)
    else:
        print("    unsigned .pkg: set MACOS_INSTALLER_IDENTITY to sign it for MDM", flush=True)
    checksum(out)
    return out


def check_info_plist(version: str) -> None:
    with (app_bundle() / "Contents" / "Info.plist").open("rb") as handle:
        info = plistlib.load(handle)
    problems = [
        f"{key} is {info.get(key)!r}, expected {want!r}"
        for key, want in (
            ("CFBundleIdentifier", BUNDLE_ID),
            ("CFBundleShortVersionString", version),
            ("NSHighResolutionCapable", True),
        )
        if info.get(key) != want
    ]
    if problems:
        raise BuildError("Info.plist: " + "; ".join(problems))


def notarise(path: Path) -> None:
    """Submit to Apple's notary service and staple, when credentials are in the environment.

    Either MACOS_NOTARY_PROFILE (a notarytool keychain profile), or MACOS_NOTARY_APPLE_ID +
    MACOS_NOTARY_TEAM_ID + MACOS_NOTARY_PASSWORD (an app-specific password), or
    MACOS_NOTARY_KEY (path of an App Store Connect .p8 key) + MACOS_NOTARY_KEY_ID +
    MACOS_NOTARY_ISSUER.
    """
    env = os.environ
    if env.get("MACOS_NOTARY_PROFILE"):
        auth = ["--keychain-profile", env["MACOS_NOTARY_PROFILE"]]
    elif env.get("MACOS_NOTARY_APPLE_ID"):
        auth = [
            "--apple-id",
            env["MACOS_NOTARY_APPLE_ID"],
            "--team-id",
            env.get("MACOS_NOTARY_TEAM_ID", ""),
            "--password",
            env.get("MACOS_NOTARY_PASSWORD", ""),
        ]
    elif env.get("MACOS_NOTARY_KEY"):
        auth = [
            "--key",
            env["MACOS_NOTARY_KEY"],
            "--key-id",
            env.get("MACOS_NOTARY_KEY_ID", ""),
            "--issuer",
            env.get("MACOS_NOTARY_ISSUER", ""),
        ]
    else:
        print("    not notarised: no MACOS_NOTARY_* credentials are set", flush=True)
        return
    say(f"notarising {path.name} (this waits for Apple's answer)")
    run(["xcrun", "notarytool", "submit", path, "--wait", *auth])
    run(["xcrun", "stapler", "staple", path])
    run(["xcrun", "stapler", "validate", path])


def wrap_macos(version: str) -> Path:
    say("macOS: signed .app in a .dmg")
    app = app_bundle()
    check_info_plist(version)
    identity = macos_identity()
    # PyInstaller has signed the bundle: with the identity (hardened runtime, timestamp) when
    # MACOS_SIGN_IDENTITY is set, ad hoc otherwise. Check the signature holds together.
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])
    out = DIST / artifact_name("macos", version, machine())
    with tempfile.TemporaryDirectory(prefix="noojee-desk-dmg-") as tmp:
        staging = Path(tmp) / APP_NAME
        staging.mkdir()
        run(["ditto", app, staging / app.name])
        (staging / "Applications").symlink_to("/Applications")
        out.unlink(missing_ok=True)
        run(
            [
                "hdiutil",
                "create",
                "-volname",
                f"{APP_NAME} {version}",
                "-srcfolder",
                staging,
                "-fs",
                "HFS+",
                "-format",
                "UDZO",
                "-ov",
                out,
            ]
        )
    if identity:
        run(["codesign", "--force", "--timestamp", "--sign", identity, out])
        notarise(out)
    else:
        print("    ad hoc signature: set MACOS_SIGN_IDENTITY to sign for distribution", flush=True)
    wrap_macos_pkg(version)
    return out


def checksum(path: Path) -> Path:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    out = path.with_name(path.name + ".sha256")
    out.write_text(f"{digest.hexdigest()}  {path.name}\n", encoding="utf-8")
    return out


# -- main -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    for target in ("linux", "windows", "macos"):
        which.add_argument(
            f"--{target}",
            dest="target",
            action="store_const",
            const=target,
            help=f"build for {target} (only on {target} itself)",
        )
    parser.add_argument(
        "--skip-build", action="store_true", help="reuse packaging/dist from an earlier build"
    )
    parser.add_argument(
        "--measure",
        type=int,
        default=0,
        metavar="N",
        help="also time the start to the window N times (first run is the cold one)",
    )
    parser.add_argument("--no-wrap", action="store_true", help="stop after the self-test")
    parser.add_argument(
        "--system-keyring",
        action="store_true",
        help="Linux: self-test with this desktop's keyring instead of a private throwaway one",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    target = args.target or current_target()
    if target != current_target():
        print(
            f"PyInstaller cannot cross-build: build the {target} package on {target} "
            f"(this is {current_target()}).",
            file=sys.stderr,
        )
        return 2
    if args.measure < 0:
        print("--measure takes a number of runs (0 or more)", file=sys.stderr)
        return 2
    version = package_version()
    say(f"{APP_NAME} {version} for {target} ({machine()})")
    started = time.perf_counter()
    try:
        if not args.skip_build:
            build()
        report = self_test(target, private_keyring=not args.system_keyring)
        metrics = measure(target, args.measure)
        metrics["version"] = version
        metrics["self_test"] = report.splitlines()
        check_budgets(metrics)
        out: Path | None = None
        if not args.no_wrap:
            wrap = {"linux": wrap_linux, "windows": wrap_windows, "macos": wrap_macos}[target]
            out = wrap(version)
            metrics["artifact"] = out.name
            metrics["artifact_mb"] = round(out.stat().st_size / 1e6, 1)
            checksum(out)
        (DIST / f"metrics-{target}.json").write_text(json.dumps(metrics, indent=2) + "\n")
    except BuildError as exc:
        print(f"BUILD FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    took = time.perf_counter() - started
    if out is not None:
        say(f"done in {took:.0f} s: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    else:
        say(f"done in {took:.0f} s (not wrapped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
