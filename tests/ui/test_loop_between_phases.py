"""pytest-qt processes Qt's events between a test's set-up, call and teardown, while the test's
qasync loop is stopped; asyncio work those events resume must still see that loop running, as
it always does in the app (a dispatcher started in a fixture used to die there)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import pytestqt.plugin
from PySide6.QtWidgets import QApplication


def test_a_task_resumed_between_test_phases_runs_in_its_loop(
    request: pytest.FixtureRequest, qapp: QApplication
) -> None:
    factories = request.node.ihook.pytest_asyncio_loop_factories(
        config=request.config, item=request.node
    )
    make: Callable[[], asyncio.AbstractEventLoop] = factories["qasync"]
    loop = make()
    seen: list[object] = []

    async def resumed() -> None:
        try:
            await asyncio.sleep(0)  # needs a running loop, like the dispatcher's waits
            seen.append(asyncio.get_running_loop())
        except RuntimeError as exc:
            seen.append(exc)

    try:
        task = loop.create_task(resumed())
        assert not loop.is_running()
        for _ in range(50):  # what pytest-qt does after each phase
            pytestqt.plugin._process_events()
            if task.done():
                break
        assert task.done()
        assert seen == [loop]
        with pytest.raises(RuntimeError):  # and the loop is not left marked running
            asyncio.get_running_loop()
    finally:
        loop.close()
