"""Where Noojee Desk keeps its files; ``NOOJEE_DESK_HOME`` or ``--data-dir`` moves them all."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from noojee_desk import APP_ID
from noojee_desk.core.files import make_private, private_folder

HOME_ENV = "NOOJEE_DESK_HOME"


@dataclass(frozen=True, slots=True)
class Paths:
    """The folders of one installation; with a home override they all live below it."""

    data: Path
    config: Path
    logs: Path

    @property
    def outbox(self) -> Path:
        return self.data / "outbox.sqlite3"

    @property
    def settings(self) -> Path:
        return self.config / "settings.json"

    @property
    def window_state(self) -> Path:
        return self.config / "window.ini"

    @property
    def log_file(self) -> Path:
        return self.logs / "noojee-desk.log"

    def ensure(self) -> Paths:
        """Create the folders, private to the user (0700 on POSIX) even if they were not."""
        for folder in (self.data, self.config, self.logs):
            private_folder(folder)
            make_private(folder)
        return self


def resolve(home: str | os.PathLike[str] | None = None) -> Paths:
    """The paths for ``home`` (or ``$NOOJEE_DESK_HOME``), else the platform's user folders."""
    home = home or os.environ.get(HOME_ENV) or None
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(data=root / "data", config=root / "config", logs=root / "logs")
    return Paths(
        data=Path(platformdirs.user_data_dir(APP_ID, appauthor=False)),
        config=Path(platformdirs.user_config_dir(APP_ID, appauthor=False)),
        logs=Path(platformdirs.user_log_dir(APP_ID, appauthor=False)),
    )
