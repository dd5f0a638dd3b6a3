"""How settings an administrator locked look: greyed, with "set by your administrator"."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QLineEdit, QVBoxLayout, QWidget

from noojee_desk.core.desk import Desk
from noojee_desk.core.profiles.managed import ADMIN_NOTE
from noojee_desk.core.profiles.settings import Profile

NOTE = ADMIN_NOTE[0].upper() + ADMIN_NOTE[1:]


def show_locked(widget: QWidget, locked: bool = True) -> None:
    """Grey ``widget`` out with the note in its tooltip (a line edit becomes read-only too)."""
    if isinstance(widget, QLineEdit):
        widget.setReadOnly(locked)
    widget.setEnabled(not locked)
    widget.setProperty("lockedByAdministrator", locked)
    if locked:
        widget.setToolTip(NOTE)
        widget.setAccessibleDescription(NOTE)


def lock_connection_fields(dialog: QWidget, desk: Desk, profile: Profile | None) -> list[str]:
    """Grey the fields of a managed connection its administrator locked (and its name, which
    ties it to the managed file); the names of the locked fields. Works on ConnectDialog."""
    if profile is None or desk.managed.rules.connection(profile.name) is None:
        return []
    fields = {
        "name": getattr(dialog, "name", None),
        "server_url": getattr(dialog, "url", None),
        "ca_bundle": getattr(dialog, "ca", None),
        "timezone": getattr(dialog, "timezone", None),
    }
    locked = ["name"] + [k for k in fields if k != "name" and desk.is_locked(k, profile.name)]
    for key in locked:
        widget = fields[key]
        if isinstance(widget, QWidget):
            show_locked(widget)
    browse = getattr(dialog, "browse", None)
    if "ca_bundle" in locked and isinstance(browse, QWidget):
        show_locked(browse)
    note = QLabel(
        "This connection is set by your administrator: the greyed settings cannot be changed "
        "here. Enter the API key your administrator gave you."
    )
    note.setObjectName("managedNote")
    note.setWordWrap(True)
    layout = dialog.layout()
    if isinstance(layout, QVBoxLayout):
        layout.insertWidget(0, note)
    return locked
