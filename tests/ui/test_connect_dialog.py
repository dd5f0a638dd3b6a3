"""The connection dialog: addresses as people type them, clear refusals, the range rule."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PySide6.QtCore import Qt, SignalInstance
from pytestqt.qtbot import QtBot

from noojee_desk.app import build_desk
from noojee_desk.core.desk import Desk
from noojee_desk.core.leads.layouts import default_layout
from noojee_desk.core.profiles.settings import Profile, SettingsStore
from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.server import SimThread
from noojee_desk.ui.connect_dialog import ConnectDialog
from noojee_desk.ui.tasks import Tasks


async def next_emit(signal: SignalInstance, limit: float = 20.0) -> tuple[Any, ...]:
    """The arguments of the next emission of ``signal`` (fails after ``limit`` seconds)."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def emitted(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    signal.connect(emitted)
    try:
        return await asyncio.wait_for(future, limit)
    finally:
        signal.disconnect(emitted)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def failures() -> list[str]:
    return []


@pytest_asyncio.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    made = build_desk(str(tmp_path / "home"), demo=None)
    return made
    await made.close()


@pytest.fixture
def tasks(failures: list[str]) -> Tasks:
    return Tasks(on_error=failures.append)


@pytest.fixture
def dialog(qtbot: QtBot, desk: Desk, tasks: Tasks) -> ConnectDialog:
    made = ConnectDialog(desk, tasks)
    qtbot.addWidget(made)
    made.show()
    return made


def fill(qtbot: QtBot, dialog: ConnectDialog, url: str, key: str = "some-key") -> None:
    qtbot.keyClicks(dialog.name, "Production")
    qtbot.keyClicks(dialog.url, url)
    qtbot.keyClicks(dialog.key, key)


async def click_test(qtbot: QtBot, dialog: ConnectDialog) -> tuple[bool, str]:
    waiting = asyncio.ensure_future(next_emit(dialog.tested))
    await asyncio.sleep(0)  # connected before the click
    qtbot.mouseClick(dialog.test, Qt.MouseButton.LeftButton)
    ok, text = await waiting
    assert text == dialog.status.text()
    return ok, text


async def click_save(dialog: ConnectDialog) -> None:
    dialog.buttons.accepted.emit()
    for _ in range(20):  # the save runs as a task: let it finish
        await asyncio.sleep(0.01)


# -- the server address ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_address_without_a_scheme_gets_https_and_the_dialog_says_so(
    qtbot: QtBot, dialog: ConnectDialog
) -> None:
    qtbot.keyClicks(dialog.url, "pbx.example.com")
    dialog.url.editingFinished.emit()
    assert dialog.url.text() == "https://pbx.example.com"
    assert dialog.status.text() == "Using https://pbx.example.com."
    dialog.url.editingFinished.emit()  # already complete: nothing more to say
    assert dialog.url.text() == "https://pbx.example.com"


@pytest.mark.asyncio
async def test_a_refused_connection_names_the_host_and_port_to_check(
    qtbot: QtBot, dialog: ConnectDialog, failures: list[str]
) -> None:
    port = closed_port()
    fill(qtbot, dialog, f"localhost:{port}")
    ok, text = await click_test(qtbot, dialog)
    assert not ok
    assert text.startswith(f"Using https://localhost:{port}.")
    assert f"localhost, port {port}" in text
    assert "refused" in text
    assert "Check the server address and port" in text
    assert "Nothing to do" not in text
    assert dialog.url.text() == f"https://localhost:{port}"
    assert failures == []


@pytest.mark.asyncio
async def test_plain_http_to_another_computer_is_refused_and_says_why(
    qtbot: QtBot, dialog: ConnectDialog, desk: Desk, failures: list[str]
) -> None:
    fill(qtbot, dialog, "http://pbx.example.com")
    ok, text = await click_test(qtbot, dialog)
    assert not ok
    assert "HTTPS" in text
    assert "the API key travels in the address" in text
    dialog.status.clear()
    await click_save(dialog)
    assert "the API key travels in the address" in dialog.status.text()
    assert dialog.isVisible()  # not saved
    assert desk.settings.profile("Production") is None
    assert failures == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("https://pbx.example.com:abc", "port after ':' must be a number"),
        ("https://[pbx", "IPv6"),
        ("user:pass@host", "without a user name, password or '@'"),
        ("https://a@b", "without a user name, password or '@'"),
        ("https://pbx example.com", "space"),
    ],
)
async def test_an_invalid_address_is_a_message_never_a_traceback(
    qtbot: QtBot, dialog: ConnectDialog, desk: Desk, failures: list[str], typed: str, words: str
) -> None:
    fill(qtbot, dialog, typed)
    dialog.url.editingFinished.emit()
    assert dialog.url.text() == typed  # left as typed for the person to correct
    ok, text = await click_test(qtbot, dialog)
    assert not ok
    assert words in text
    assert "pass" not in text.replace("password", "")
    dialog.status.clear()
    await click_save(dialog)
    assert words in dialog.status.text()
    assert dialog.isVisible()
    assert desk.settings.profile("Production") is None
    assert failures == []  # no task failed with an exception


@pytest.mark.asyncio
async def test_a_working_address_connects(qtbot: QtBot, dialog: ConnectDialog) -> None:
    with SimThread(min_service=0.0, jitter=0.0) as sim:
        fill(qtbot, dialog, sim.url, DEMO_API_KEY)
        ok, text = await click_test(qtbot, dialog)
    assert ok, text
    assert text.startswith("Connected:")


# -- the range rule --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_block_numbers_outside_known_ranges_is_stored_with_the_connection(
    qtbot: QtBot, desk: Desk, tasks: Tasks
) -> None:
    dialog = ConnectDialog(desk, tasks)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.strict_ranges.text() == "Block numbers outside known ranges"
    assert dialog.advanced.isAncestorOf(dialog.strict_ranges)
    assert not dialog.strict_ranges.isChecked()  # numbers outside known ranges warn
    fill(qtbot, dialog, "https://pbx.example.com")
    dialog.session_only.setChecked(True)
    qtbot.keyClick(dialog.strict_ranges, Qt.Key.Key_Space)
    assert dialog.strict_ranges.isChecked()
    saved = asyncio.ensure_future(next_emit(dialog.saved))
    await asyncio.sleep(0)
    dialog.buttons.accepted.emit()
    assert (await saved)[0] == "Production"

    stored = json.loads(desk.paths.settings.read_text(encoding="utf-8"))
    assert [p["strict_ranges"] for p in stored["profiles"]] == [True]
    profile = SettingsStore(desk.paths.settings).load().profile("Production")
    assert profile is not None
    assert profile.strict_ranges is True
    lead = {"Name": "Ben", "FirstPhone": "0443 464 097"}
    assert not desk.validator(default_layout(), profile).validate_one(lead).ok

    again = ConnectDialog(desk, tasks, desk.settings.profile("Production"))
    qtbot.addWidget(again)
    again.show()
    assert again.strict_ranges.isChecked()
    qtbot.keyClick(again.strict_ranges, Qt.Key.Key_Space)
    saved = asyncio.ensure_future(next_emit(again.saved))
    await asyncio.sleep(0)
    again.buttons.accepted.emit()
    await saved
    relaxed = desk.settings.profile("Production")
    assert relaxed is not None
    assert relaxed.strict_ranges is False
    check = desk.validator(default_layout(), relaxed).validate_one(lead)
    assert check.ok
    assert [p.severity for p in check.problems] == ["warning"]


@pytest.mark.asyncio
async def test_an_existing_connection_shows_its_range_rule(qtbot: QtBot, desk: Desk) -> None:
    dialog = ConnectDialog(desk, Tasks(), Profile("Site", "https://pbx", strict_ranges=True))
    qtbot.addWidget(dialog)
    assert dialog.strict_ranges.isChecked()
    assert dialog._profile().strict_ranges is True


# -- the proxy -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_proxy_is_used_for_the_test_and_stored_with_the_connection(
    qtbot: QtBot, desk: Desk, tasks: Tasks
) -> None:
    seen: list[bytes] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    dialog = ConnectDialog(desk, tasks)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.advanced.isAncestorOf(dialog.proxy)
    assert dialog.proxy.text() == ""
    fill(qtbot, dialog, "https://pbx.example.com", "the-secret-key-1234")
    qtbot.keyClicks(dialog.proxy, f"127.0.0.1:{port}")
    try:
        ok, _ = await click_test(qtbot, dialog)
    finally:
        proxy.close()
        await proxy.wait_closed()
    assert not ok
    assert [raw.split(b"\r\n")[0] for raw in seen] == [b"CONNECT pbx.example.com:443 HTTP/1.1"]
    assert all(b"the-secret-key-1234" not in raw for raw in seen)

    dialog.session_only.setChecked(True)
    saved = asyncio.ensure_future(next_emit(dialog.saved))
    await asyncio.sleep(0)
    dialog.buttons.accepted.emit()
    assert (await saved)[0] == "Production"
    stored = SettingsStore(desk.paths.settings).load().profile("Production")
    assert stored is not None
    assert stored.proxy == f"127.0.0.1:{port}"
    again = ConnectDialog(desk, tasks, desk.settings.profile("Production"))
    qtbot.addWidget(again)
    again.show()
    assert again.proxy.text() == f"127.0.0.1:{port}"


@pytest.mark.asyncio
async def test_a_proxy_with_a_password_is_refused_and_not_saved(
    qtbot: QtBot, dialog: ConnectDialog, desk: Desk, failures: list[str]
) -> None:
    fill(qtbot, dialog, "https://pbx.example.com")
    qtbot.keyClicks(dialog.proxy, "http://desk:hunter2@proxy.corp:3128")
    ok, text = await click_test(qtbot, dialog)
    assert not ok
    assert "without a user name or password" in text
    assert "hunter2" not in text
    dialog.status.clear()
    await click_save(dialog)
    assert "without a user name or password" in dialog.status.text()
    assert dialog.isVisible()
    assert desk.settings.profile("Production") is None
    assert failures == []
