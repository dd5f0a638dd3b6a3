"""The desk's services for the active profile: settings, key, client and the lists it offers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from noojee_desk.core.delivery.api import ApiError, ConfigError, NoojeeClient
from noojee_desk.core.delivery.dispatcher import Dispatcher, Event, QueueFigures
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import Delivered, Enqueued, LeadInput, Target, is_locked
from noojee_desk.core.delivery.schema import content_key
from noojee_desk.core.flag import Flag
from noojee_desk.core.leads.layouts import FieldLayout, default_layout, layout_from_pbx, layout_key
from noojee_desk.core.leads.validate import ValidationSettings, Validator
from noojee_desk.core.logs import REDACTOR
from noojee_desk.core.paths import Paths
from noojee_desk.core.profiles import choices
from noojee_desk.core.profiles.managed import ManagedLoad
from noojee_desk.core.profiles.secrets import KeyringUnavailable, KeyStore, same_address
from noojee_desk.core.profiles.settings import (
    DEMO_PROFILE,
    Profile,
    Settings,
    SettingsError,
    SettingsStore,
)
from noojee_desk.core.redact import redact_text

log = logging.getLogger(__name__)

#: Batches larger than this are written by a worker thread (a disk sync must not stall the UI).
BIG_BATCH = 200
#: How long a small batch waits on the loop's connection for another writer (seconds).
SHORT_WAIT = 0.05

#: Builds the in-process transport of the built-in PBX and gives its key (demo mode).
DemoFactory = Callable[[], tuple[httpx.AsyncBaseTransport, str]]

#: After the dispatcher stopped on an unexpected error: seconds before it starts again, the
#: first time, the second, ...; then the last one each time. Reset by a run that lasted longer.
RESTART_WAITS = (1.0, 5.0, 15.0, 60.0)

DEMO_URL = "http://127.0.0.1"
DEMO_OFF = "Demo mode is turned off on this computer by your administrator."


@dataclass(frozen=True, slots=True)
class LearntLayout:
    """A template's layout after asking the PBX: ``known`` is False when nothing better than the
    default fields is known; ``message`` says what a person should know ("" when nothing)."""

    layout: FieldLayout
    known: bool
    message: str = ""

    @property
    def needs_look(self) -> bool:
        """Phone fields were guessed from names and no person has confirmed them yet."""
        return not self.layout.confirmed


def guess_sentence(layout: FieldLayout) -> str:
    """What a person should know about a layout read from the PBX whose phone fields are
    guessed from their names."""
    count = len(layout.fields)
    phones = [spec.title for spec in layout.fields if spec.phone]
    if not phones:
        return (
            f"{count} fields read from the PBX, and none is named like a phone number. Mark the "
            "fields the dialler calls, or the PBX will refuse every lead (102)."
        )
    shown = ", ".join(phones)
    return (
        f"{count} fields read from the PBX. The PBX does not say which ones it dials; taken "
        f"for phone fields from their names: {shown}. Check them before sending."
    )


@dataclass(frozen=True, slots=True)
class SendingStopped:
    """The profile's dispatcher stopped on an unexpected error (logged with its traceback);
    it starts again by itself in ``restart_in`` seconds. ``message`` is for a person;
    ``error`` is the error it names (redacted), for ``sending_stopped_text`` as time passes."""

    message: str
    restart_in: float
    error: str = ""


def sending_stopped_text(error: str, seconds_left: float) -> str:
    """What a person is told while sending is stopped by an unexpected error: what, that it
    starts again by itself and when (a window counts the seconds down)."""
    left = max(0, math.ceil(seconds_left))
    when = f"in {left} s" if left else "now"
    return (
        f"Sending stopped after an unexpected error ({error}). "
        f"It starts again by itself {when}; nothing queued is lost. The "
        "log file has the details for support."
    )


@dataclass(frozen=True, slots=True)
class SendingRestarted:
    """The dispatcher was started again after ``SendingStopped``."""


#: What a desk's listeners hear: the running dispatcher's events, and the desk's own.
DeskEvent = Event | SendingStopped | SendingRestarted


@dataclass(frozen=True, slots=True)
class Opened:
    """How opening a profile went: a client, or why not (no key, no keyring, bad settings)."""

    profile: Profile
    client: NoojeeClient | None
    problem: str = ""
    needs_key: bool = False


class Desk:
    """Owns the settings, the outbox, and the client and dispatcher of the active profile.

    The UI and tests drive it; ``on_event`` receives every dispatcher event of the active profile.
    """

    def __init__(
        self,
        paths: Paths,
        store: SettingsStore,
        keys: KeyStore,
        *,
        demo: DemoFactory | None = None,
        demo_layouts: dict[int, FieldLayout] | None = None,
        timing: RetryTiming | None = None,
        managed: ManagedLoad | None = None,
    ) -> None:
        self.paths = paths
        self.store = store
        #: The machine-wide settings in use (or why a managed file is ignored); the store layers
        #: the user's settings over ``managed.managed``.
        self.managed = managed or ManagedLoad(store.managed)
        self.keys = keys
        self._demo = demo
        self._demo_layouts = demo_layouts or {}
        self._timing = timing
        self.settings: Settings = store.load()
        self.client: NoojeeClient | None = None
        self._outbox: Outbox | None = None
        self._thread = threading.get_ident()  # the thread the outbox connection belongs to
        self.dispatcher: Dispatcher | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._stop_sending: Flag | None = None  # set: the runner starts no dispatcher
        self.restart_waits = RESTART_WAITS
        self._listeners: list[Callable[[DeskEvent], None]] = []
        self.queue_problem = ""  # why this profile's queue is not being sent, if it is not

    @property
    def profile(self) -> Profile | None:
        return self.settings.active

    @property
    def demo(self) -> DemoFactory | None:
        """What demo mode connects to (None: no demo mode); the app's is a ``DemoPbx``."""
        return self._demo

    @property
    def timing(self) -> RetryTiming | None:
        """The retry waits every dispatcher of this desk uses (None: the defaults)."""
        return self._timing

    @property
    def outbox(self) -> Outbox:
        """The queue file, opened on first use (a dry run of ``send`` never creates it)."""
        return self.open_outbox()

    def open_outbox(self) -> Outbox:
        """The queue file, opened now if it is not yet; raises OutboxError when it cannot be."""
        if self._outbox is None:
            self._outbox = Outbox(self.paths.outbox)
        return self._outbox

    def save_settings(self) -> str | None:
        """Save; returns a message for the person when it could not be done."""
        try:
            self.store.save(self.settings)
        except SettingsError as exc:
            log.error("%s", exc)
            return str(exc)
        return None

    async def save_settings_soon(self) -> str | None:
        """``save_settings`` with the synced write in a worker thread (a disk sync can take
        tens of milliseconds: too long for the loop's thread); a message when it failed."""
        try:
            encoded = self.store.encode(self.settings)  # now: what the settings are now
            if encoded is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.store.write, *encoded)
        except SettingsError as exc:
            log.error("%s", exc)
            return str(exc)
        return None

    @property
    def demo_allowed(self) -> bool:
        """Whether demo mode may be used (an administrator can turn it off)."""
        return self.managed.rules.allow_demo

    def is_locked(self, setting: str, connection: str | None = None) -> bool:
        """Whether the managed settings lock ``setting`` (a checking rule or a connection's)."""
        return self.managed.rules.is_locked(setting, connection)

    def ensure_demo_profile(self) -> Profile:
        if not self.demo_allowed:
            raise ConfigError(DEMO_OFF)
        profile = self.settings.profile(DEMO_PROFILE)
        if profile is None:
            profile = Profile(DEMO_PROFILE, server_url=DEMO_URL, demo=True)
            self.settings.upsert(profile)
        return profile

    def make_client(self, profile: Profile, key: str | None) -> NoojeeClient:
        """A client for ``profile``; raises ConfigError with a clear message when it cannot work."""
        if profile.demo:
            if not self.demo_allowed:
                raise ConfigError(DEMO_OFF)
            if self._demo is None:
                raise ConfigError("Demo mode is not available in this build.")
            transport, demo_key = self._demo()
            return NoojeeClient(DEMO_URL, demo_key, transport=transport)
        if not key:
            raise ConfigError("No API key is stored for this connection.")
        REDACTOR.add_secret(key)
        return NoojeeClient(
            profile.server_url, key, ca_bundle=profile.ca_bundle or None, proxy=profile.proxy
        )

    async def open(self, name: str) -> Opened:
        """Make ``name`` the active profile and build its client (key from the keyring)."""
        profile = self.settings.profile(name)
        if profile is None:
            raise KeyError(name)
        self.settings.active_profile = name
        await self._stop_dispatcher()
        await self._close_client()
        key: str | None = None
        if not profile.demo:
            try:
                key = await self.keys.get(name, server=profile.server_url)
            except KeyringUnavailable as exc:
                return Opened(profile, None, str(exc), needs_key=True)
            if not key:
                return Opened(profile, None, "Enter the API key for this connection.", True)
        try:
            self.client = self.make_client(profile, key)
        except ConfigError as exc:
            return Opened(profile, None, str(exc), needs_key=not profile.demo)
        self._start_dispatcher(profile, self.client)
        return Opened(profile, self.client)

    async def test_connection(self, profile: Profile, key: str) -> choices.Loaded:
        """List templates with a throwaway client; ConfigError for settings that cannot work."""
        client = self.make_client(profile, key)
        try:
            return await choices.load(client, Profile(profile.name), "templates")
        finally:
            await client.aclose()

    async def save_profile(self, profile: Profile, key: str | None, *, session_only: bool) -> str:
        """Store ``profile`` (and its key in the keyring unless session-only); '' or a warning."""
        warning = ""
        server = profile.server_url
        if key:
            REDACTOR.add_secret(key)
            if session_only:
                self.keys.set_for_session(profile.name, key, server)
            else:
                self.keys.allow_plaintext = self.settings.allow_plaintext_keyring
                try:
                    await self.keys.set(profile.name, key, server)
                except KeyringUnavailable as exc:
                    self.keys.set_for_session(profile.name, key, server)
                    warning = str(exc)
        else:
            before = self.settings.profile(profile.name)
            if before is not None and not same_address(before.server_url, server):
                # A new address with the key left empty: the old key must not go to the new host.
                with contextlib.suppress(KeyringUnavailable):
                    await self.keys.delete(profile.name)
                warning = "The server address changed: enter the API key for the new address."
        self.settings.upsert(profile)
        self.settings.active_profile = profile.name
        problem = self.save_settings()
        return problem or warning

    async def forget_key(self, name: str) -> None:
        await self.keys.delete(name)
        if self.profile is not None and self.profile.name == name:
            await self._stop_dispatcher()
            await self._close_client()

    async def load(self, level: choices.Level, parent: int | None = None) -> choices.Loaded:
        profile = self.profile
        if profile is None or self.client is None:
            raise RuntimeError("no open connection")
        loaded = await choices.load(self.client, profile, level, parent)
        if loaded.current:
            await self.save_settings_soon()
        return loaded

    # -- field layouts and checking -----------------------------------------------------------

    def stored_layout(self, template_id: int, profile: Profile | None = None) -> FieldLayout | None:
        """The layout kept for this server's template (learnt from the PBX or set by a person),
        the built-in PBX's own in demo mode, or None."""
        profile = profile or self.profile
        if profile is None:
            return None
        raw = self.settings.layouts.get(layout_key(profile.server_key, template_id))
        if raw is not None:
            return FieldLayout.from_dict(raw)
        if profile.demo and template_id in self._demo_layouts:
            return self._demo_layouts[template_id]
        return None

    def layout_for(self, template_id: int, profile: Profile | None = None) -> FieldLayout:
        """The stored layout of the server's template, else the default one."""
        return self.stored_layout(template_id, profile) or default_layout()

    def has_layout(self, template_id: int) -> bool:
        return self.stored_layout(template_id) is not None

    def save_layout(
        self, template_id: int, layout: FieldLayout, profile: Profile | None = None
    ) -> str | None:
        profile = profile or self.profile
        if profile is None:
            return None
        self.settings.layouts[layout_key(profile.server_key, template_id)] = layout.to_dict()
        return self.save_settings()

    async def learn_layout(
        self,
        template_id: int,
        client: NoojeeClient | None = None,
        profile: Profile | None = None,
    ) -> LearntLayout:
        """Ask the PBX for the template's fields and keep them (with a person's earlier choices).

        Never raises for what the PBX does: a PBX without the field calls, or one that cannot be
        asked now, gives the layout known so far and a calm sentence saying so."""
        profile = profile or self.profile
        client = client or self.client
        stored = self.stored_layout(template_id, profile)
        if profile is None or client is None or (profile.demo and stored is not None):
            return LearntLayout(stored or default_layout(), stored is not None)
        try:
            fields = await client.template_fields(template_id)
        except ApiError as exc:
            why = exc.outcome.sentence or exc.outcome.describe()
            kept = "the fields saved earlier" if stored else "the usual fields"
            return LearntLayout(
                stored or default_layout(),
                stored is not None,
                f"The PBX could not be asked for this template's fields ({why}); {kept} are used.",
            )
        if fields is None:
            return LearntLayout(
                stored or default_layout(),
                stored is not None,
                "This PBX does not describe its templates' fields: the headings of what you paste "
                "name them, or list them with Fields….",
            )
        layout = layout_from_pbx(((f.key, f.label, f.required) for f in fields), stored)
        if layout != stored:
            self.save_layout(template_id, layout, profile)
        return LearntLayout(layout, True, guess_sentence(layout) if not layout.confirmed else "")

    def validation_settings(self, profile: Profile | None = None) -> ValidationSettings:
        return ValidationSettings.of(self.settings, profile or self.profile)

    def validator(self, layout: FieldLayout, profile: Profile | None = None) -> Validator:
        return Validator(layout, self.validation_settings(profile), self.recent_phones)

    # -- the queue ----------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[DeskEvent], None]) -> None:
        """Receive the events of whichever profile's dispatcher is running."""
        self._listeners.append(listener)

    def make_dispatcher(
        self, profile: str, client: NoojeeClient, max_concurrency: int | None = None
    ) -> Dispatcher:
        """A dispatcher for ``profile``'s queue with this desk's limits and retry waits."""
        return Dispatcher(
            self.outbox,
            client,
            profile,
            max_concurrency=max(1, max_concurrency or self.settings.max_concurrency),
            timing=self._timing,
        )

    def _start_dispatcher(self, profile: Profile, client: NoojeeClient) -> None:
        self.queue_problem = ""
        stop = self._stop_sending = Flag()
        dispatcher = self._new_dispatcher(profile.name, client)
        self._dispatch_task = asyncio.ensure_future(
            self._run_dispatcher(dispatcher, profile.name, client, stop)
        )

    def _new_dispatcher(self, profile: str, client: NoojeeClient) -> Dispatcher:
        dispatcher = self.make_dispatcher(profile, client)
        dispatcher.subscribe(self._forward)
        self.dispatcher = dispatcher
        return dispatcher

    def _forward(self, event: DeskEvent) -> None:
        if isinstance(event, QueueFigures):
            self.queue_problem = (
                f"This connection's queue is being sent by {event.busy_with}; it sends the "
                "leads queued here too, and this window takes over when it ends."
                if event.busy_with
                else ""
            )
        for listener in list(self._listeners):
            listener(event)

    async def _run_dispatcher(
        self, dispatcher: Dispatcher, profile: str, client: NoojeeClient, stop: Flag
    ) -> None:
        """Runs the profile's dispatcher until ``stop``; one that ends on an unexpected error
        is logged, said (``SendingStopped``) and replaced after a wait that grows (bounded by
        ``restart_waits``), so a lasting fault is never a hot loop and sending never stops
        silently. Its leads are safe meanwhile: the next dispatcher recovers those in flight."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                # Another process holding the queue sends what is queued here (it looks every
                # half second); this one takes over by itself when that one ends.
                await dispatcher.run(wait_for_lock=True)
                return
            except Exception as exc:
                waits = self.restart_waits
                if time.monotonic() - started > waits[-1]:
                    failures = 0  # it ran a good while: a new fault, not the same one again
                wait = waits[min(failures, len(waits) - 1)]
                failures += 1
                log.exception(
                    "sending the queue of %r stopped on an unexpected error; starting again "
                    "in %.0f s",
                    profile,
                    wait,
                )
                if stop.is_set():
                    return  # it was being stopped anyway
                what = redact_text(f"{type(exc).__name__}: {exc}")  # it is shown on screen
                self.queue_problem = sending_stopped_text(what, wait)
                self._forward(SendingStopped(self.queue_problem, wait, what))
            if await stop.wait(wait):
                return
            previous, dispatcher = dispatcher, self._new_dispatcher(profile, client)
            dispatcher.carry_on_from(previous)
            self.queue_problem = ""
            self._forward(SendingRestarted())

    async def _stop_dispatcher(self) -> None:
        if self._stop_sending is not None:
            self._stop_sending.set()  # first: no dispatcher is started after this one
        dispatcher, task = self.dispatcher, self._dispatch_task
        self.dispatcher, self._dispatch_task, self._stop_sending = None, None, None
        if dispatcher is not None:
            await dispatcher.stop()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def enqueue(
        self,
        target: Target,
        leads: Sequence[LeadInput],
        *,
        allow_duplicates: bool,
        source: str,
        send_again: bool = False,
    ) -> Enqueued:
        """Queue ``leads`` for the active profile (durably) and wake the dispatcher.

        Leads whose content was delivered to ``target`` before are left out unless
        ``send_again``; they are in ``Enqueued.skipped`` by their index in ``leads`` (decided in
        the same transaction that queues the others, so a delivery a moment ago counts too)."""
        profile = self.profile
        if profile is None:
            raise RuntimeError("no connection is open")

        def queue(outbox: Outbox) -> Enqueued:
            return outbox.queue_once(
                profile.name,
                target,
                leads,
                allow_duplicates=allow_duplicates,
                source=source,
                skip_delivered=not send_again,
                reuse_finished=False,
            )

        def write() -> Enqueued:
            with Outbox(self.paths.outbox) as outbox:
                return queue(outbox)

        queued: Enqueued | None = None
        if len(leads) <= BIG_BATCH:
            # Small batches on the loop's connection, but never waiting there for another
            # writer (the window would freeze): a held file is waited out in a worker instead.
            try:
                with self.outbox.short_wait(SHORT_WAIT):
                    queued = queue(self.outbox)
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
        if queued is None:
            queued = await asyncio.get_running_loop().run_in_executor(None, write)
        if self.dispatcher is not None and queued.batch.total:
            self.dispatcher.wake()
        return queued

    def delivered_before(
        self, target: Target, fields: Sequence[Mapping[str, object]]
    ) -> dict[int, Delivered]:
        """Which of these leads (by index) have content delivered to ``target`` before, and
        when; a read that queues nothing. Callable from any thread, like ``recent_phones``."""
        profile = self.profile
        if profile is None or not fields:
            return {}
        keys = [
            content_key({str(k): "" if v is None else str(v) for k, v in f.items()}) for f in fields
        ]
        if threading.get_ident() == self._thread:
            done = self.outbox.delivered_by_key(profile.name, target, keys)
        else:
            with Outbox(self.paths.outbox) as outbox:
                done = outbox.delivered_by_key(profile.name, target, keys)
        return {i: done[k] for i, k in enumerate(keys) if k in done}

    def recent_phones(self, e164s) -> dict[str, str]:
        """Numbers delivered recently from this desk; callable from any thread (the grid's
        checks run in a worker, and a SQLite connection belongs to the thread that opened it)."""
        if threading.get_ident() == self._thread:
            return self.outbox.recent_phones(e164s, self.settings.recent_days)
        with Outbox(self.paths.outbox) as outbox:
            return outbox.recent_phones(e164s, self.settings.recent_days)

    def queued_phones(self, e164s) -> dict[str, str]:
        return {phone: f"lead {lead}" for phone, lead in self.outbox.queued_phones(e164s).items()}

    async def _close_client(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    async def close(self) -> None:
        """Stop sending (unsent leads stay queued), close the client and the outbox."""
        await self._stop_dispatcher()
        await self._close_client()
        if self._outbox is not None:
            self._outbox.close()
