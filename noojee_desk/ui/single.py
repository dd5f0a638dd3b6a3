"""One window per data folder: a second launch on the same folder brings the first forward.

The first launch holds a lock file in the data folder and listens on a local socket named
after the folder; a later launch finds the lock taken, sends ``raise`` on the socket and exits.
Another data folder (another OS user on a terminal server, a test's folder) has its own lock
and socket, so it runs side by side.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

RAISE = b"raise\n"


def socket_name(data: Path) -> str:
    """The local socket's name for one data folder (short: Unix socket paths are limited)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = ""
    digest = hashlib.sha256(f"{user}\0{data.resolve()}".encode()).hexdigest()[:20]
    return f"noojee-desk-{digest}"


class SingleInstance(QObject):
    """``claim()`` True: this process is the folder's window; ``on_raise`` runs when another
    launch asks it to come forward. False: another process has the folder and was asked."""

    def __init__(self, data: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = socket_name(data)
        self._lock = QLockFile(str(data / "window.lock"))
        self._lock.setStaleLockTime(0)  # a crashed holder is found by its pid, never by age
        self._server: QLocalServer | None = None
        self.on_raise: Callable[[], None] | None = None

    def claim(self, wait: float = 3.0) -> bool:
        if self._lock.tryLock(0):
            QLocalServer.removeServer(self.name)  # a socket file a crashed window left
            server = QLocalServer(self)
            server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
            if not server.listen(self.name):
                log.warning("no local socket for a second launch: %s", server.errorString())
            server.newConnection.connect(self._connected)
            self._server = server
            return True
        # The holder may still be starting: its socket comes a moment after its lock.
        deadline = time.monotonic() + wait
        while True:
            if self._ask_to_raise():
                return False
            if self._lock.tryLock(0):  # the holder ended meanwhile
                self._lock.unlock()
                return self.claim(wait)
            if time.monotonic() > deadline:
                log.warning("another launch holds this data folder and does not answer")
                return False
            time.sleep(0.1)

    def _ask_to_raise(self) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(500):
            return False
        socket.write(RAISE)
        socket.waitForBytesWritten(1000)
        socket.disconnectFromServer()
        return True

    def _connected(self) -> None:
        assert self._server is not None
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)
            if socket.bytesAvailable():
                self._read(socket)

    def _read(self, socket: QLocalSocket) -> None:
        data = bytes(socket.readAll().data())
        if RAISE.strip() in data:
            log.info("another launch on this data folder asked to show this window")
            if self.on_raise is not None:
                self.on_raise()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._lock.unlock()
