"""A new desk under managed settings, in a real window (Xvfb when there is no display).

python3 scripts/screenshots_managed.py      # writes docs/screenshots/managed*.png

A managed file with one connection (address and CA file locked, checking rules locked, demo
off) in a temporary $XDG_CONFIG_DIRS, the emulator as that connection's PBX, and a fresh user:
the window opens on the managed connection and asks for the key; the connection dialog shows
the locked settings greyed; the key is typed, saved, and the pickers fill from the PBX.
The password store is kept in memory here (nothing is written to this computer's keyring).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import display

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"


class MemoryKeyring:
    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, name: str) -> str | None:
        return self.keys.get((service, name))

    def set_password(self, service: str, name: str, key: str) -> None:
        self.keys[(service, name)] = key

    def delete_password(self, service: str, name: str) -> None:
        self.keys.pop((service, name), None)


def main() -> int:
    relaunched = display.run_on_a_display(__file__)
    if relaunched is not None:
        return relaunched
    scratch = Path(tempfile.mkdtemp(prefix="noojee-desk-managed-"))
    os.environ["NOOJEE_DESK_HOME"] = str(scratch / "home")
    os.environ["XDG_CONFIG_DIRS"] = str(scratch / "xdg")
    sys.path.insert(0, str(ROOT))
    import certifi
    import qasync

    from noojee_desk.app import build_desk, make_app
    from noojee_desk.core.profiles.secrets import KeyStore
    from noojee_desk.sim.data import DEMO_API_KEY
    from noojee_desk.sim.server import SimThread

    sim = SimThread(min_service=0.0, jitter=0.0)
    sim.start()
    managed = scratch / "xdg" / "Noojee Desk" / "managed.json"
    managed.parent.mkdir(parents=True)
    managed.write_text(
        json.dumps(
            {
                "version": 1,
                "connections": [
                    {
                        "name": "Head office",
                        "server_url": sim.url,
                        "ca_bundle": certifi.where(),
                        "timezone": "Australia/Melbourne",
                        "template_id": 3,
                        "campaign_id": 42,
                        "allocation_id": 101,
                    }
                ],
                "checking": {"region": "AU", "phone_format": "national"},
                "locked": ["server_url", "ca_bundle", "region", "phone_format"],
                "allow_demo": False,
            },
            indent=2,
        )
    )
    app = make_app()
    OUT.mkdir(parents=True, exist_ok=True)

    async def shoot() -> None:
        from noojee_desk.ui.main_window import MainWindow

        async def settle(seconds: float = 0.6) -> None:
            await asyncio.sleep(seconds)  # the loop paints meanwhile (no processEvents here)

        desk = build_desk(str(scratch / "home"), demo=None)
        desk.keys = KeyStore(backend=MemoryKeyring())
        window = MainWindow(desk)
        window.resize(1100, 720)
        window.move(0, 0)
        window.show()
        await window.start()
        await settle()
        window.edit_connection()
        dialog = window.connect_dialog
        dialog.key.setText(DEMO_API_KEY)
        await settle()
        dialog.move(
            window.x() + (window.width() - dialog.width()) // 2,
            window.y() + 140,
        )
        await settle()
        screen = app.primaryScreen()
        shot = screen.grabWindow(0, 0, 0, window.width(), window.height())
        shot.save(str(OUT / "managed.png"))
        print(f"  {OUT / 'managed.png'}")
        dialog.buttons.accepted.emit()
        for _ in range(100):
            await settle(0.1)
            if window.pickers.target() is not None:
                break
        await settle(0.5)
        window.about()
        await settle()
        window.about_dialog.move(window.x() + 250, window.y() + 160)
        await settle()
        shot = screen.grabWindow(0, 0, 0, window.width(), window.height())
        shot.save(str(OUT / "managed-connected.png"))
        print(f"  {OUT / 'managed-connected.png'}")
        window.about_dialog.reject()
        await window.shutdown()

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(shoot())
    sim.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
