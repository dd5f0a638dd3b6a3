"""``noojee-desk --self-test``: prove an installation works: keyring, Qt, sending, window."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from noojee_desk import APP_NAME, __version__
from noojee_desk.core.pbx import DEFAULT_TIMEZONE

#: A lead the built-in PBX accepts; the number is from a range reserved for fiction.
SELF_TEST_PHONE = "0491 570 313"
SELF_TEST_TARGET = (3, 42, 101)  # template, campaign, allocation of the built-in PBX's data
SELF_TEST_PROFILE = "Self test"

#: The Qt platform plugin a desktop session needs on each system (besides ``offscreen``).
NATIVE_PLATFORM = {"linux": "xcb", "win32": "windows", "darwin": "cocoa"}
#: The keyring backends (module, class) each system is expected to use.
NATIVE_KEYRING = {
    "linux": (
        ("keyring.backends.SecretService", "Keyring"),
        ("keyring.backends.libsecret", "Keyring"),
        ("keyring.backends.kwallet", "DBusKeyring"),
    ),
    "win32": (("keyring.backends.Windows", "WinVaultKeyring"),),
    "darwin": (("keyring.backends.macOS", "Keyring"),),
}
#: What those backends import; keyring hides a failed import behind "X required".
KEYRING_NEEDS = {
    "keyring.backends.SecretService": "secretstorage",
    "keyring.backends.libsecret": "gi",
    "keyring.backends.kwallet": "dbus",
    "keyring.backends.Windows": "win32ctypes.pywin32.win32cred",
    "keyring.backends.macOS": "keyring.backends.macOS.api",
}
KEYRING_HINT = {
    "linux": "Install and unlock a Secret Service keyring (GNOME Keyring or KWallet).",
    "win32": "Windows Credential Manager is not reachable for this user.",
    "darwin": "The login keychain is not reachable; unlock it in Keychain Access.",
}
REQUIRED_IMAGE_FORMATS = ("png",)


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check: a line of the report."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<20} {self.detail}"


def _system() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    return sys.platform


def _explain(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "did not finish in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- checks without Qt --------------------------------------------------------------------------


def keyring_backends(system: str | None = None) -> Check:
    """Backends registered through entry points (lost in frozen apps unless their metadata is
    bundled) and the one in use, which must be this system's own."""
    import keyring
    import keyring.backend

    system = system or _system()
    registered = sorted(ep.name for ep in importlib.metadata.entry_points(group="keyring.backends"))
    if not registered:
        return Check(
            "keyring backends",
            False,
            "no keyring backend is registered (the keyring package's metadata is missing)",
        )
    backend = keyring.get_keyring()
    in_use = f"{type(backend).__module__}.{type(backend).__name__}"
    wanted = [f"{module}.{cls}" for module, cls in NATIVE_KEYRING.get(system, ())]
    names = [in_use] + [
        f"{type(b).__module__}.{type(b).__name__}"
        for b in getattr(backend, "backends", ())  # the chainer wraps the real ones
    ]
    if wanted and not any(n in wanted for n in names):
        reasons = "; ".join(_not_viable(system))
        return Check(
            "keyring backends",
            False,
            f"using {in_use}, not this system's password store ({reasons})",
        )
    return Check("keyring backends", True, f"using {in_use} ({len(registered)} registered)")


def _not_viable(system: str) -> list[str]:
    """Why each of this system's own keyring backends cannot be used, in its own words."""
    reasons: list[str] = []
    for module_name, class_name in NATIVE_KEYRING.get(system, ()):
        label = module_name.rsplit(".", 1)[-1]
        try:
            module = importlib.import_module(module_name)
            getattr(module, class_name).priority  # noqa: B018 - raises with the reason
        except Exception as exc:
            reason = _explain(exc)
            try:
                importlib.import_module(KEYRING_NEEDS.get(module_name, module_name))
            except Exception as missing:
                reason += f" ({_explain(missing)})"
            reasons.append(f"{label}: {reason}")
        else:
            reasons.append(f"{label}: available but not chosen")
    return reasons


async def keyring_round_trip(limit: float) -> Check:
    """Store, read back and delete a throwaway entry through the app's own KeyStore."""
    from noojee_desk.core.profiles.secrets import KeyringUnavailable, KeyStore

    store = KeyStore(service=f"noojee-desk-self-test-{uuid.uuid4().hex[:12]}")
    name = "keyring round trip"
    if not store.usable():
        hint = KEYRING_HINT.get(_system(), "")
        return Check(name, False, f"no usable password store ({store.backend_name()}). {hint}")
    secret = uuid.uuid4().hex
    try:
        async with asyncio.timeout(limit):
            await store.set("probe", secret)
            try:
                back = await store.get("probe")
            finally:
                await store.delete("probe")
            gone = await store.get("probe")
    except KeyringUnavailable as exc:
        return Check(name, False, str(exc))
    except Exception as exc:
        return Check(name, False, _explain(exc))
    if back != secret:
        return Check(name, False, "the value read back differs from the one stored")
    if gone is not None:
        return Check(name, False, "the throwaway entry could not be deleted")
    return Check(name, True, f"stored, read back and deleted a throwaway entry ({store.service})")


def lead_libraries(work: Path) -> Check:
    """Phone number metadata (modules loaded by name), time zone data, the XLSX reader/writer."""
    import openpyxl
    import phonenumbers

    number = phonenumbers.parse(SELF_TEST_PHONE, "AU")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number) or e164 != "+61491570313":
        return Check("lead libraries", False, f"phone number metadata is wrong ({e164})")
    try:
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        return Check(
            "lead libraries",
            False,
            f"no time zone data for call-back times ({_explain(exc)}); the tzdata package is "
            "missing from this installation",
        )
    if datetime(2025, 1, 15, 12, tzinfo=zone).utcoffset() != timedelta(hours=11):
        return Check("lead libraries", False, "the time zone data is wrong for Australia/Sydney")
    path = work / "self-test.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "FirstPhone"])
    sheet.append(["Self Test", SELF_TEST_PHONE])
    book.save(path)
    rows = list(openpyxl.load_workbook(path, read_only=True).active.iter_rows(values_only=True))
    if rows != [("Name", "FirstPhone"), ("Self Test", SELF_TEST_PHONE)]:
        return Check("lead libraries", False, f"the XLSX file read back differs: {rows!r}")
    return Check(
        "lead libraries", True, f"phone metadata ({e164}), time zones, XLSX written and read back"
    )


async def network_stack(limit: float) -> Check:
    """Real HTTP over TCP to the emulator on 127.0.0.1, and a TLS context from the CA bundle."""
    import certifi
    import httpx

    from noojee_desk.core.delivery.api import NoojeeClient
    from noojee_desk.sim.data import DEMO_API_KEY
    from noojee_desk.sim.server import SimThread

    name = "network stack"
    bundle = certifi.where()
    if not _is_file(bundle):
        return Check(name, False, f"the CA certificate bundle is missing ({bundle})")
    httpx.create_ssl_context()
    sim = SimThread(min_service=0.0, jitter=0.0)
    await asyncio.get_running_loop().run_in_executor(None, sim.start)
    try:
        async with asyncio.timeout(limit), NoojeeClient(sim.url, DEMO_API_KEY) as client:
            templates = await client.list_templates()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, sim.close)
    if not templates:
        return Check(name, False, "the emulator listed no templates over HTTP")
    return Check(name, True, f"{len(templates)} templates over HTTP from 127.0.0.1; TLS CA bundle")


async def send_one_lead(outbox_path: Path, limit: float) -> Check:
    """One lead through the outbox and the real dispatcher to the in-process emulator."""
    from noojee_desk.core.delivery.api import NoojeeClient
    from noojee_desk.core.desk import DEMO_URL
    from noojee_desk.sim.data import DEMO_API_KEY
    from noojee_desk.sim.emulator import Emulator

    emulator = Emulator(min_service=0.0, jitter=0.0)
    client = NoojeeClient(DEMO_URL, DEMO_API_KEY, transport=emulator.transport())
    try:
        external_id, problem = await _send_through_dispatcher(outbox_path, client, limit)
        if problem:
            return Check("send one lead", False, problem)
        landed = [x for x in emulator.leads() if x.get("external_id") == external_id]
        if len(landed) != 1:
            return Check(
                "send one lead", False, f"the built-in PBX holds {len(landed)} copies of the lead"
            )
        return Check("send one lead", True, f"1 lead delivered by the dispatcher ({external_id})")
    finally:
        await client.aclose()
        await emulator.aclose()


def _self_test_fields() -> dict[str, str]:
    return {"Name": "Self Test", "FirstPhone": SELF_TEST_PHONE}


async def _send_through_dispatcher(path: Path, client: Any, limit: float) -> tuple[str, str]:
    """Queue the lead in a real outbox file and let the real dispatcher deliver it."""
    from noojee_desk.core.delivery.dispatcher import Dispatcher
    from noojee_desk.core.delivery.outbox import Outbox
    from noojee_desk.core.delivery.records import FINAL_STATES, LeadInput, State, Target

    outbox = Outbox(path)
    try:
        batch = outbox.enqueue(
            SELF_TEST_PROFILE,
            Target(*SELF_TEST_TARGET),
            [LeadInput(_self_test_fields(), frozenset({"+61491570313"}), row=1)],
            allow_duplicates=False,
            source="self-test",
        )
        lead_id = batch.first_lead_id
        if lead_id is None:
            return "", "the outbox did not queue the lead"
        dispatcher = Dispatcher(outbox, client, SELF_TEST_PROFILE)
        runner = asyncio.ensure_future(dispatcher.run())
        try:
            async with asyncio.timeout(limit):
                # (a dispatcher that stopped by itself raises its error below)
                await _poll(lambda: runner.done() or _is_final(outbox, lead_id, FINAL_STATES))
        finally:
            await dispatcher.stop()
            async with asyncio.timeout(limit):
                await runner
        lead = outbox.get(lead_id)
        if lead is None:
            return "", "the lead is missing from the outbox after sending"
        if lead.state is not State.DELIVERED:
            why = lead.sentence or lead.last_message
            return lead.external_id, f"the lead ended {lead.state.value}: {why}"
        return lead.external_id, ""
    finally:
        outbox.close()


def _is_final(outbox: Any, lead_id: int, final: frozenset[Any]) -> bool:
    lead = outbox.get(lead_id)
    return lead is not None and lead.state in final


async def _poll(condition: Callable[[], bool], interval: float = 0.01) -> None:
    """Wait until ``condition()`` holds; the caller bounds the wait with a timeout."""
    while not condition():  # noqa: ASYNC110 - state kept in SQLite and Qt widgets has no event
        await asyncio.sleep(interval)


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


# -- checks with Qt -----------------------------------------------------------------------------


def _plugin_files(folder: Path) -> set[str]:
    """Plugin names in one plugin folder: ``libqxcb.so`` / ``qwindows.dll`` / ``libqcocoa.dylib``
    -> ``xcb`` / ``windows`` / ``cocoa``."""
    names: set[str] = set()
    if not folder.is_dir():
        return names
    for path in folder.iterdir():
        if path.suffix.lower() not in (".so", ".dll", ".dylib"):
            continue
        stem = path.name.split(".")[0]
        stem = stem.removeprefix("lib").removeprefix("q")
        stem = stem.removesuffix("d") if stem.endswith("sd") else stem  # never a debug build
        names.add(stem)
    return names


def qt_plugins(plugin_dirs: list[Path], system: str | None = None) -> Check:
    """The platform plugins (offscreen for this test, the desktop's own) are in the bundle."""
    system = system or _system()
    platforms: set[str] = set()
    formats: set[str] = set()
    for folder in plugin_dirs:
        platforms |= _plugin_files(folder / "platforms")
        formats |= _plugin_files(folder / "imageformats")
    wanted = ["offscreen"]
    native = NATIVE_PLATFORM.get(system)
    if native:
        wanted.append(native)
    missing = [p for p in wanted if p not in platforms]
    where = ", ".join(str(p) for p in plugin_dirs) or "no plugin folder"
    if missing:
        return Check(
            "Qt plugins", False, f"platform plugin(s) missing: {', '.join(missing)} (in {where})"
        )
    detail = f"platforms: {', '.join(sorted(platforms))}"
    if formats:
        detail += f"; image format plugins: {', '.join(sorted(formats))}"
    return Check("Qt plugins", True, detail)


def qt_plugin_dirs() -> list[Path]:
    """Where Qt looks for plugins (without creating an application)."""
    from PySide6.QtCore import QCoreApplication, QLibraryInfo

    found = [Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))]
    found += [Path(p) for p in QCoreApplication.libraryPaths()]
    unique: list[Path] = []
    for path in found:
        if path not in unique and path.is_dir():
            unique.append(path)
    return unique


async def main_window(home: Path, limit: float) -> Check:
    """Build the real main window offscreen in demo mode and let it load the pickers."""
    from PySide6.QtGui import QImageReader

    from noojee_desk.app import build_desk, demo_factory, running_app
    from noojee_desk.ui.main_window import MainWindow

    name = "main window"
    app = running_app()
    formats = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    missing = [f for f in REQUIRED_IMAGE_FORMATS if f not in formats]
    if missing:
        return Check(name, False, f"image format(s) not supported: {', '.join(missing)}")
    if app.windowIcon().isNull():
        return Check(name, False, "the app icon is missing from the installation")
    from noojee_desk.ui.single import SingleInstance  # QtNetwork: the one-window check

    instance = SingleInstance(home)
    if not instance.claim(wait=1.0):
        return Check(name, False, "the one-window-per-data-folder lock could not be taken")
    instance.release()
    desk = build_desk(str(home), demo=demo_factory())  # wired as the app wires it
    started = time.perf_counter()
    window = MainWindow(desk)
    try:
        window.show()
        async with asyncio.timeout(limit):
            await window.start(demo=True)
            # Loaded means the templates of the built-in PBX are in the picker (or a problem
            # is shown, which fails below).
            await _poll(
                lambda: window.pickers.template.count() > 0 or window.problem_banner.isVisible()
            )
        seconds = time.perf_counter() - started
        if not window.isVisible():
            return Check(name, False, "the window did not show")
        if window.problem_banner.isVisible():
            return Check(name, False, f"the window reports: {window.problem_banner.text}")
        if "DEMO" not in window.windowTitle():
            return Check(name, False, f"demo mode did not open (title {window.windowTitle()!r})")
        return Check(
            name,
            True,
            f"built, shown offscreen in demo mode and loaded "
            f"{window.pickers.template.count()} templates in {seconds:.2f} s",
        )
    finally:
        await window.shutdown()
        window.close()
        window.deleteLater()


# -- running ------------------------------------------------------------------------------------


async def _guard(name: str, step: Callable[[], Awaitable[Check]], verbose: bool) -> Check:
    try:
        return await step()
    except Exception as exc:
        if verbose and sys.stderr is not None:  # a windowed app may have no stderr
            traceback.print_exc()
        return Check(name, False, _explain(exc))


def _sync(step: Callable[[], Check]) -> Callable[[], Awaitable[Check]]:
    async def run() -> Check:
        return step()

    return run


@contextlib.contextmanager
def _temporary_home(keep: bool) -> Iterator[Path]:
    """A throwaway data folder in ``NOOJEE_DESK_HOME`` for the run; the old value comes back."""
    home = Path(tempfile.mkdtemp(prefix="noojee-desk-self-test-"))
    old = os.environ.get("NOOJEE_DESK_HOME")
    os.environ["NOOJEE_DESK_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("NOOJEE_DESK_HOME", None)
        else:
            os.environ["NOOJEE_DESK_HOME"] = old
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def _header() -> str:
    frozen = "frozen" if getattr(sys, "frozen", False) else "from source"
    qt = ""
    with contextlib.suppress(Exception):
        import PySide6

        qt = f", Qt {PySide6.__version__}"
    return (
        f"{APP_NAME} {__version__} self-test ({frozen}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}{qt})"
    )


def run_checks(home: Path, timeout: float, verbose: bool = False) -> list[Check]:
    """Every check in order; Qt ones only when Qt and its platform plugin can be loaded."""
    core_steps: list[tuple[str, Callable[[], Awaitable[Check]]]] = [
        ("keyring backends", _sync(keyring_backends)),
        ("keyring round trip", lambda: keyring_round_trip(timeout)),
        ("lead libraries", _sync(lambda: lead_libraries(home))),
        ("network stack", lambda: network_stack(timeout)),
        ("send one lead", lambda: send_one_lead(home / "self-test-outbox.sqlite3", timeout)),
    ]
    results: list[Check] = []
    try:
        plugins = qt_plugins(qt_plugin_dirs())
    except Exception as exc:  # e.g. a Qt library of the bundle fails to load
        plugins = Check("Qt plugins", False, f"Qt cannot be loaded: {_explain(exc)}")
    results.append(plugins)

    async def run_all(with_window: bool) -> None:
        for name, step in core_steps:
            results.append(await _guard(name, step, verbose))
        if with_window:
            results.append(await _guard("main window", lambda: main_window(home, timeout), verbose))

    app: Any = None
    why_no_window = "not tried: Qt cannot start (see Qt plugins)"
    if plugins.ok:
        try:
            import qasync

            from noojee_desk.app import make_app

            app = make_app()
        except Exception as exc:
            if verbose and sys.stderr is not None:
                traceback.print_exc()
            why_no_window = f"the app cannot start: {_explain(exc)}"
    if app is not None:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            runner.run(run_all(True))
    else:
        with asyncio.Runner() as runner:
            runner.run(run_all(False))
        results.append(Check("main window", False, why_no_window))
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noojee-desk --self-test",
        description="Check this installation: keyring, Qt plugins, sending a lead, the window. "
        "Runs offscreen with a temporary data folder; your own data is never touched.",
    )
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds each check may take (default 30)"
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the temporary data folder for inspection"
    )
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of failures")
    return parser


def _emit(text: str, report: Path | None) -> None:
    print(text, flush=True)  # prints nothing when a windowed app has no console
    if report is not None:
        with report.open("a", encoding="utf-8") as out:
            out.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the self-test; 0 when every check passed, 1 when one failed, 2 for bad arguments."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_API", "pyside6")
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    if args.timeout <= 0:
        print("--timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    report: Path | None = args.report
    if report is not None:
        try:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text("", encoding="utf-8")
        except OSError as exc:
            print(f"cannot write the report to {report}: {exc}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    _emit(_header(), report)
    with _temporary_home(args.keep_data) as home:
        try:
            results = run_checks(home, args.timeout, args.verbose)
        except Exception as exc:  # a bug of the self-test itself must still end in a report
            if args.verbose and sys.stderr is not None:
                traceback.print_exc()
            results = [Check("self-test", False, f"stopped by an error: {_explain(exc)}")]
        for check in results:
            _emit(check.line(), report)
        if args.keep_data:
            _emit(f"data kept in {home}", report)
    failed = [c for c in results if not c.ok]
    seconds = time.perf_counter() - started
    if failed:
        _emit(f"self-test FAILED: {len(failed)} of {len(results)} checks failed", report)
        return 1
    _emit(f"self-test passed: {len(results)} checks in {seconds:.1f} s", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
