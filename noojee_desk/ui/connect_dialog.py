"""The connection dialog: server address, API key (kept in the OS keyring), test, save."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from noojee_desk.core.delivery.api import ConfigError, check_proxy, normalise_base_url
from noojee_desk.core.desk import Desk
from noojee_desk.core.pbx import DEFAULT_TIMEZONE
from noojee_desk.core.profiles.secrets import same_address
from noojee_desk.core.profiles.settings import Profile
from noojee_desk.ui.tasks import Tasks
from noojee_desk.ui.theme import style


class ConnectDialog(QDialog):
    """Create or edit a connection. Emits ``saved(profile name, warning)`` once stored, and
    ``tested(ok, text shown)`` when a connection test has ended."""

    saved = Signal(str, str)
    tested = Signal(bool, str)

    def __init__(
        self,
        desk: Desk,
        tasks: Tasks,
        profile: Profile | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("connectDialog")
        self.setWindowTitle("Connect to your PBX" if profile is None else "Edit connection")
        self.setMinimumWidth(520)
        self._desk = desk
        self._tasks = tasks
        self._editing = profile

        self.name = QLineEdit(profile.name if profile else "")
        self.name.setObjectName("profileName")
        self.name.setPlaceholderText("e.g. Production, Training")
        self.name.setAccessibleName("Connection name")
        self.url = QLineEdit(profile.server_url if profile else "")
        self.url.setObjectName("serverUrl")
        self.url.setPlaceholderText("https://pbx.example.com")
        self.url.setAccessibleName("Server address")
        self.url.editingFinished.connect(self._url_typed)
        self.key = QLineEdit()
        self.key.setObjectName("apiKey")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setAccessibleName("API key")
        self.key.setPlaceholderText(
            "unchanged (stored in the keyring)" if profile else "the key Noojee support gave you"
        )
        self.show_key = QCheckBox("Show")
        self.show_key.setAccessibleName("Show the API key")
        self.show_key.toggled.connect(
            lambda on: self.key.setEchoMode(
                QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
            )
        )
        self.ca = QLineEdit(profile.ca_bundle if profile else "")
        self.ca.setObjectName("caBundle")
        self.ca.setPlaceholderText("only for a PBX with its own certificate authority")
        self.ca.setAccessibleName("CA certificate file")
        browse = QPushButton("Browse…")
        browse.setAccessibleName("Browse for a CA certificate file")
        browse.clicked.connect(self._browse_ca)
        self.browse = browse
        self.proxy = QLineEdit(profile.proxy if profile else "")
        self.proxy.setObjectName("proxyUrl")
        self.proxy.setPlaceholderText("none: the system's proxy settings (HTTPS_PROXY)")
        self.proxy.setAccessibleName("Proxy")
        self.proxy.setToolTip(
            "Only when this PBX must be reached through a proxy the system settings do not name, "
            "e.g. proxy.example.com:3128. No user name or password: they would be kept in a "
            "plain file. The key still travels only inside TLS: the proxy sees the PBX's "
            "address and port, nothing else."
        )
        self.timezone = QLineEdit(profile.timezone if profile else DEFAULT_TIMEZONE)
        self.timezone.setObjectName("contactTimezone")
        self.timezone.setAccessibleName("Contact hours time zone")
        self.session_only = QCheckBox("Keep the key for this session only (do not store it)")
        self.session_only.setObjectName("sessionOnly")
        self.strict_ranges = QCheckBox("Block numbers outside known ranges")
        self.strict_ranges.setObjectName("strictRanges")
        self.strict_ranges.setChecked(profile.strict_ranges if profile else False)
        self.strict_ranges.setToolTip(
            "Off: a number of the right length in a range the number plans do not list (a new "
            "range, say) is sent with a warning to check it. On: such numbers are not sent."
        )

        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.show_key)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca, 1)
        ca_row.addWidget(browse)
        form = QFormLayout()

        def label(text: str, buddy: QWidget) -> QLabel:
            caption = QLabel(text)
            caption.setBuddy(buddy)
            return caption

        form.addRow(label("&Name", self.name), self.name)
        form.addRow(label("&Server", self.url), self.url)
        form.addRow(label("API &key", self.key), key_row)
        form.addRow(label("Time &zone", self.timezone), self.timezone)
        form.addRow("", self.session_only)
        advanced = QFormLayout()
        advanced.addRow(label("&CA file", self.ca), ca_row)
        advanced.addRow(label("&Proxy", self.proxy), self.proxy)
        advanced.addRow(label("Checking", self.strict_ranges), self.strict_ranges)
        self.advanced = QGroupBox("Advanced")
        self.advanced.setObjectName("connectAdvanced")
        self.advanced.setLayout(advanced)

        self.status = QLabel(
            "The key is stored in this computer's password store, never in a file."
        )
        self.status.setObjectName("connectStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test = QPushButton("&Test connection")
        self.test.setObjectName("testConnection")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.addButton(self.test, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        self.test.clicked.connect(lambda: self._tasks.spawn(self._test(), name="test connection"))

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "CA certificate", "", "Certificates (*.pem *.crt *.cer);;All files (*)"
        )
        if path:
            self.ca.setText(path)

    def _profile(self) -> Profile:
        base = self._editing
        profile = Profile(
            name=self.name.text().strip(),
            server_url=self.url.text().strip(),
            ca_bundle=self.ca.text().strip(),
            proxy=self.proxy.text().strip(),
            timezone=self.timezone.text().strip() or DEFAULT_TIMEZONE,
            strict_ranges=self.strict_ranges.isChecked(),
        )
        if base is not None and base.server_url == profile.server_url:
            profile.template_id = base.template_id
            profile.campaign_id = base.campaign_id
            profile.allocation_id = base.allocation_id
            profile.templates = base.templates
            profile.campaigns = base.campaigns
            profile.allocations = base.allocations
        return profile

    def _complete_url(self) -> str:
        """An address typed without a scheme gets https:// in the field; a sentence saying so,
        or "" (no change, or an address that cannot work: ``_problem`` explains it)."""
        text = self.url.text().strip()
        if not text or "://" in text:
            return ""
        completed = "https://" + text
        try:
            normalise_base_url(completed)
        except ConfigError:
            return ""
        self.url.setText(completed)
        return f"Using {completed}."

    def _url_typed(self) -> None:
        note = self._complete_url()
        if note:
            self._say(note)

    def _problem(self) -> str:
        profile = self._profile()
        if not profile.name:
            return "Give the connection a name (e.g. Production)."
        if profile.name.lower() == "demo":
            return "'Demo' is the built-in practice PBX; choose another name."
        try:
            normalise_base_url(profile.server_url)
        except ConfigError as exc:
            return str(exc)
        try:
            check_proxy(profile.proxy)
        except ConfigError as exc:
            return str(exc)
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(profile.timezone)
        except (ValueError, KeyError, OSError):
            return f"'{profile.timezone}' is not a time zone name (e.g. Australia/Sydney)."
        return ""

    async def _key(self) -> str | None:
        """The typed key, else the stored one, but only for the address it was saved for."""
        typed = self.key.text().strip()
        if typed or self._editing is None:
            return typed or None
        server = self._profile().server_url
        if not same_address(self._editing.server_url, server):
            return None  # a new address: the stored key must not go to another host
        try:
            return await self._desk.keys.get(self._editing.name, server=server)
        except Exception:  # the keyring is unavailable: ask for the key
            return None

    def _say(self, text: str, ok: bool | None = None) -> None:
        self.status.setStyleSheet("" if ok is None else style("ok" if ok else "error"))
        self.status.setText(text)

    async def _test(self) -> bool:
        note = self._complete_url()
        ok = await self._run_test(note)
        self.tested.emit(ok, self.status.text())
        return ok

    async def _run_test(self, note: str) -> bool:
        def say(text: str, ok: bool | None = None) -> None:
            self._say(f"{note} {text}".strip(), ok)

        problem = self._problem()
        key = await self._key()
        if not problem and not key:
            problem = "Enter the API key."
        if problem:
            say(problem, False)
            return False
        say("Testing…")
        self.test.setEnabled(False)
        try:
            loaded = await self._desk.test_connection(self._profile(), key or "")
        except ConfigError as exc:
            say(str(exc), False)
            return False
        finally:
            self.test.setEnabled(True)
        if loaded.error is not None:
            say(loaded.error_text, False)
            return False
        names = ", ".join(c.name for c in loaded.items[:4]) or "none visible to this key"
        say(f"Connected: {len(loaded.items)} templates ({names}).", True)
        return True

    def _save(self) -> None:
        self._tasks.spawn(self._save_async(), name="save connection")

    async def _save_async(self) -> None:
        note = self._complete_url()
        problem = self._problem()
        key = self.key.text().strip() or None
        if not problem and key is None and self._editing is None:
            problem = "Enter the API key."
        moved = self._editing is not None and not same_address(
            self._editing.server_url, self._profile().server_url
        )
        if not problem and key is None and moved:
            problem = "The server address changed: enter the API key for the new address."
        if problem:
            self._say(f"{note} {problem}".strip(), False)
            return
        profile = self._profile()
        if self._editing is not None and self._editing.name != profile.name:
            old_key = await self._key()
            key = key or old_key
            self._desk.settings.remove(self._editing.name)
            await self._desk.forget_key(self._editing.name)
        warning = await self._desk.save_profile(
            profile, key, session_only=self.session_only.isChecked()
        )
        self.saved.emit(profile.name, warning)
        self.accept()
