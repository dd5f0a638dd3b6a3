"""Deploying to many desks: managed settings in the window, connection files, diagnostics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
import shiboken6
from helpers.memory_keyring import MemoryKeyring
from helpers.windows import close_window
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox
from pytestqt.qtbot import QtBot

from noojee_desk import cli
from noojee_desk.core import paths
from noojee_desk.core.desk import Desk
from noojee_desk.core.profiles import connection_file, managed
from noojee_desk.core.profiles.secrets import KeyStore
from noojee_desk.core.profiles.settings import Profile, SettingsStore
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.server import SimThread
from noojee_desk.ui.banner import BannerReason
from noojee_desk.ui.connection_file import ImportConnectionDialog, dropped_connection_file
from noojee_desk.ui.main_window import MainWindow


async def until(predicate: Callable[[], object], limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.02)


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(min_service=0.0, jitter=0.0) as server:
        yield server


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "xdg"
    (folder / "Noojee Desk").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(folder))
    return folder / "Noojee Desk" / "managed.json"


def managed_file(site: Path, url: str, **extra: Any) -> None:
    ca = certifi.where()  # a CA bundle that exists (the emulator is plain http)
    content = {
        "connections": [
            {
                "name": "Head office",
                "server_url": url,
                "ca_bundle": ca,
                "timezone": "Australia/Perth",
            }
        ],
        "checking": {"region": "AU", "phone_format": "e164"},
        "locked": ["server_url", "ca_bundle", "region", "phone_format"],
        "allow_demo": False,
        **extra,
    }
    site.write_text(json.dumps(content))


def new_desk(home: Path, backend: MemoryKeyring | None = None) -> Desk:
    """As the app builds it (app.build_desk), with a keyring in memory."""
    where = paths.resolve(home).ensure()
    loaded = managed.load()
    desk = Desk(
        where,
        SettingsStore(where.settings, loaded.managed),
        KeyStore(backend=backend or MemoryKeyring()),
        managed=loaded,
    )
    desk.open_outbox()
    return desk


def delete_windows() -> None:
    """The windows app.run_window made (it leaves them to the process's end) go now, so no
    later test finds them among the top-level widgets."""
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            shiboken6.delete(widget)


@pytest.mark.asyncio
async def test_a_fresh_user_types_only_the_key_and_sees_the_locked_fields_greyed(
    qtbot: QtBot, tmp_path: Path, site: Path, sim: SimThread
) -> None:
    managed_file(site, sim.url)
    backend = MemoryKeyring()
    desk = new_desk(tmp_path / "home", backend)
    win = MainWindow(desk)
    win.show()
    try:
        await win.start()
        assert win.problem_banner.reason is BannerReason.NOT_CONNECTED
        assert not win.act_demo.isVisible()
        win.edit_connection()
        dialog = win.connect_dialog
        assert dialog.ca.text() == certifi.where()
        for field in (dialog.name, dialog.url, dialog.ca, dialog.browse):
            assert not field.isEnabled()
            assert "set by your administrator" in field.toolTip().lower()
        assert dialog.timezone.isEnabled()  # not locked: the desk may change it
        assert dialog.url.text() == sim.url
        assert dialog.findChild(QLabel, "managedNote") is not None
        dialog.key.setText(DEMO_API_KEY)
        dialog.buttons.accepted.emit()
        await until(lambda: desk.client is not None)
        assert backend.entries[("noojee-desk", "Head office")] == DEMO_API_KEY
        assert DEMO_API_KEY not in desk.paths.settings.read_text()
        assert desk.profile is not None
        assert desk.profile.server_url == sim.url
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_demo_off_hides_the_demo_and_a_damaged_file_gives_a_banner(
    qtbot: QtBot, tmp_path: Path, site: Path
) -> None:
    managed_file(site, "https://pbx.example.com")
    win = MainWindow(new_desk(tmp_path / "a"))
    win.show()
    try:
        await win.start()
        assert win.welcome.isVisibleTo(win) or win.stack.currentWidget() is win.work
        assert not win.welcome.demo_button.isVisibleTo(win.welcome)
    finally:
        await close_window(win)
    site.write_text('{"connections": [{"name": 3}]}')  # noqa: ASYNC240
    win = MainWindow(new_desk(tmp_path / "b"))
    win.show()
    try:
        await win.start()
        assert win.problem_banner.reason is BannerReason.MANAGED_DAMAGED
        assert "ignored" in win.problem_banner.text
        assert win.welcome.demo_button.isVisibleTo(win.welcome)  # the damaged file is ignored
    finally:
        await close_window(win)


def test_demo_flag_refused_when_turned_off(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    managed_file(site, "https://pbx.example.com")
    assert cli.main(["--demo"]) == 2
    assert "turned off" in capsys.readouterr().err


def test_connection_file_round_trip_never_holds_the_key(tmp_path: Path) -> None:
    profile = Profile(
        "Office",
        server_url="https://pbx.example.com",
        ca_bundle="/etc/ca.pem",
        timezone="Australia/Perth",
        template_id=3,
        campaign_id=42,
        allocation_id=101,
    )
    written = connection_file.write(tmp_path / "office", profile)
    assert written.name == "office.noojee"
    spec = connection_file.read(written)
    back = spec.profile()
    assert (back.name, back.server_url, back.ca_bundle, back.timezone) == (
        "Office",
        "https://pbx.example.com",
        "/etc/ca.pem",
        "Australia/Perth",
    )
    assert (back.template_id, back.campaign_id, back.allocation_id) == (3, 42, 101)
    assert set(json.loads(written.read_text())) <= {
        "noojee_desk_connection",
        "name",
        "server_url",
        "ca_bundle",
        "timezone",
        "template_id",
        "campaign_id",
        "allocation_id",
    }


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"x" * (connection_file.MAX_BYTES + 1), "larger"),
        (b"\xff\xfe not json", "UTF-8"),
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"name": "A", "server_url": "https://p"}', "not a Noojee Desk connection file"),
        (b'{"noojee_desk_connection": 1, "name": 5, "server_url": "https://p"}', "name"),
        (b'{"noojee_desk_connection": 1, "name": "A", "server_url": ["https://p"]}', "text"),
        (b'{"noojee_desk_connection": 1, "name": "A", "server_url": "https://u:pw@p"}', "password"),
        (b'{"noojee_desk_connection": 1, "name": "A", "server_url": "https://p/?apiKey=s"}', "?"),
        (b'{"noojee_desk_connection": 1, "name": "A", "server_url": "https://p", "api_key": "s"}',
         "api_key"),
        (b'{"noojee_desk_connection": 1, "name": "A", "server_url": "https://p", "x": 1}', "'x'"),
        (b'{"noojee_desk_connection": 9, "name": "A", "server_url": "https://p"}', "newer"),
        (b'{"noojee_desk_connection": 1, "name": "Demo", "server_url": "https://p"}', "practice"),
        (b'{"noojee_desk_connection": 1, "name": "A", "server_url": "ftp://p"}', "server address"),
    ],
)  # fmt: skip
def test_damaged_or_hostile_connection_files_are_refused(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "bad.noojee"
    path.write_bytes(content)
    with pytest.raises(connection_file.ConnectionFileRefused, match="cannot") as caught:
        connection_file.read(path)
    assert why in str(caught.value)
    assert 's"' not in str(caught.value)


@pytest.mark.asyncio
async def test_opening_a_connection_file_asks_only_for_the_key(
    qtbot: QtBot, tmp_path: Path, sim: SimThread
) -> None:
    path = connection_file.write(
        tmp_path / "office.noojee", Profile("Office", server_url=sim.url, timezone="Asia/Tokyo")
    )
    backend = MemoryKeyring()
    desk = new_desk(tmp_path / "home", backend)
    win = MainWindow(desk)
    win.show()
    try:
        await win.start()
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        assert dropped_connection_file(mime) == str(path)
        win.import_connection_file(str(path))
        dialog = win.import_dialog
        assert isinstance(dialog, ImportConnectionDialog)
        assert dialog.shown["server_url"].text() == sim.url
        assert dialog.shown["timezone"].text() == "Asia/Tokyo"
        assert not await dialog.save()  # no key: nothing kept
        assert desk.settings.profile("Office") is None
        dialog.key.setText(DEMO_API_KEY)
        assert await dialog.save()
        await until(lambda: desk.client is not None)
        assert backend.entries[("noojee-desk", "Office")] == DEMO_API_KEY
        assert desk.profile is not None
        assert desk.profile.timezone == "Asia/Tokyo"
        exported = connection_file.dumps(desk.profile)
        assert DEMO_API_KEY.encode() not in exported
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_a_refused_connection_file_is_explained(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "bad.noojee"
    path.write_text(
        '{"noojee_desk_connection": 1, "name": "A", "server_url": "https://p", "key": 1}'
    )
    desk = new_desk(tmp_path / "home")
    win = MainWindow(desk)
    win.show()
    try:
        await win.start()
        win.import_connection_file(str(path))
        box = win.import_refused_box
        assert isinstance(box, QMessageBox)
        assert "'key'" in box.text()
        assert "Nothing was changed" in box.text()
        box.close()
        assert desk.settings.profiles == []
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_about_shows_the_managed_file_and_diagnostics_hold_no_key(
    qtbot: QtBot, tmp_path: Path, site: Path
) -> None:
    managed_file(site, "https://pbx.example.com")
    secret = "s3cr3t-key-0123456789"
    desk = new_desk(tmp_path / "home")
    await desk.save_profile(desk.settings.profiles[0], secret, session_only=False)
    desk.paths.log_file.write_text(f"a line with {secret} and ?apiKey={secret}&x=1\n")
    logging.getLogger("noojee_desk.test").warning("after saving: %s", secret)
    win = MainWindow(desk)
    win.show()
    try:
        win.about()
        about = win.about_dialog
        assert about.values["managed"].text() == str(site)
        assert str(desk.paths.data) in about.values["data"].text()
        assert not about.values["region"].isEnabled()  # locked by the managed file
        assert "administrator" in about.values["region"].text()
        text = await about.copy_diagnostics()
        assert QApplication.clipboard().text() == text
        assert secret not in text
        assert "a line with *** and ?apiKey=***" in text
        assert "0.1" in text
        assert str(site) in text
        assert "Head office: empty" in text
    finally:
        await close_window(win)


@pytest.mark.asyncio
async def test_import_connection_on_the_command_line_opens_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noojee_desk import app

    args, _ = cli.build_parser().parse_known_args(["--import-connection", "office.noojee"])
    assert args.import_connection == "office.noojee"
    opened: list[str] = []

    def record(self: MainWindow, path: str) -> None:
        opened.append(path)
        self.close()  # as the person closing the window: run_window ends

    monkeypatch.setattr(MainWindow, "import_connection_file", record)
    desk = new_desk(tmp_path / "home")
    code = await app.run_window(desk, start_demo=False, import_connection="office.noojee")
    delete_windows()
    assert code == 0
    assert opened == ["office.noojee"]


@pytest.mark.asyncio
async def test_a_file_opened_from_the_finder_reaches_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QFileOpenEvent

    from noojee_desk import app

    opened: list[str] = []

    def record(self: MainWindow, path: str) -> None:
        opened.append(path)

    async def open_then_close(self: MainWindow, *, demo: bool = False) -> None:
        QApplication.sendEvent(QApplication.instance(), QFileOpenEvent(str(tmp_path / "a.txt")))
        QApplication.sendEvent(QApplication.instance(), QFileOpenEvent(str(tmp_path / "o.noojee")))
        self.close()

    monkeypatch.setattr(MainWindow, "import_connection_file", record)
    monkeypatch.setattr(MainWindow, "start", open_then_close)
    code = await app.run_window(new_desk(tmp_path / "home"), start_demo=False)
    delete_windows()
    assert code == 0
    assert opened == [str(tmp_path / "o.noojee")]  # other files are not connection files
