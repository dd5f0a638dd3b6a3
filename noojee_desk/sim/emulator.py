"""The Noojee Campaign API emulator: one ASGI app with the documented rules, limits and faults."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
import logging
import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs

import httpx

from noojee_desk.core.delivery import codes
from noojee_desk.sim import data

log = logging.getLogger(__name__)

API_PREFIX = "/servicemanager/rest/CampaignAPI/"
SIM_PREFIX = "/__sim/"
DEMO_API_KEY = data.DEMO_API_KEY
MAX_BODY = 1 << 20
NO_CHANGE = "<NO CHANGE>"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FAULT_FLOATS = {
    "failure_rate": (0.0, 1.0),
    "drop_rate": (0.0, 1.0),
    "min_service": (0.0, 3600.0),
    "jitter": (0.0, 3600.0),
    "queue_timeout": (0.001, 86400.0),
    "import_seconds": (0.0, 86400.0),
    "down_seconds": (0.0, 86400.0),
}
_FORCED = ("forced_code", "forced_status", "forced_count")
_FIELD_CALLS = ("getFieldList", "getFieldDefn")
_CALLBACK_DATE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}$")


class ConnectionDropped(Exception):
    """Raised by the app when the server cuts the connection before sending any answer byte."""


class LeadJournal(Protocol):
    """Where inserted leads are recorded durably (see ``noojee_desk.sim.store``)."""

    def record_insert(self, lead: dict[str, Any]) -> None: ...

    def record_reset(self) -> None: ...


def normalise_phone(value: str) -> str:
    """Digits only, with the Australian country code turned into the national ``0`` prefix."""
    digits = "".join(ch for ch in value if ch.isascii() and ch.isdigit())
    if len(digits) == 11 and digits.startswith("61"):
        return "0" + digits[2:]
    if len(digits) == 12 and digits.startswith("610"):
        return "0" + digits[3:]
    return digits


@dataclass(slots=True)
class Lead:
    """One inserted lead as the emulator keeps it."""

    id: int
    template_id: int
    campaign_id: int
    allocation_id: int
    external_id: str | None
    fields: dict[str, str]
    inserted_at: str
    allow_duplicates: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "template_id": self.template_id,
            "campaign_id": self.campaign_id,
            "allocation_id": self.allocation_id,
            "external_id": self.external_id,
            "fields": dict(self.fields),
            "inserted_at": self.inserted_at,
            "allow_duplicates": self.allow_duplicates,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Lead:
        """A lead from ``to_dict()`` output; raises ValueError saying what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError(f"a lead must be an object, not {type(raw).__name__}")
        try:
            ints = {k: raw[k] for k in ("id", "template_id", "campaign_id", "allocation_id")}
            fields = raw["fields"]
            inserted_at = raw["inserted_at"]
        except KeyError as exc:
            raise ValueError(f"a lead has no {exc.args[0]!r}") from None
        for name, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"a lead's {name} must be a whole number, not {value!r}")
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise ValueError(f"lead {ints['id']}: fields must map names to strings")
        external = raw.get("external_id")
        if external is not None and not isinstance(external, str):
            raise ValueError(f"lead {ints['id']}: external_id must be a string or null")
        return cls(
            id=ints["id"],
            template_id=ints["template_id"],
            campaign_id=ints["campaign_id"],
            allocation_id=ints["allocation_id"],
            external_id=external or None,
            fields=dict(fields),
            inserted_at=str(inserted_at),
            allow_duplicates=bool(raw.get("allow_duplicates", False)),
        )


@dataclass(slots=True)
class Reply:
    """One HTTP answer of the app; ``drop`` cuts the connection instead of answering."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    drop: bool = False
    code: int | None = None


def _json_reply(status: int, payload: Any, code: int | None = None) -> Reply:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Reply(status, body, code=code)


def _code_reply(code: int, message: str | None = None, status: int | None = None) -> Reply:
    entry = codes.describe(code)
    http = status if status is not None else (entry.http_status or 400)
    return _json_reply(http, {"code": code, "message": message or entry.name}, code=code)


_REASONS = {
    400: ("Bad Request", "The server cannot or will not process the request."),
    403: ("Forbidden", "The server understood the request but refuses to authorize it."),
    404: (
        "Not Found",
        "The origin server did not find a current representation for the target resource.",
    ),
    405: ("Method Not Allowed", "The method received is not supported by the target resource."),
    413: ("Payload Too Large", "The request is larger than the server is willing to process."),
    415: (
        "Unsupported Media Type",
        "The origin server is refusing to service the request because the payload is in a "
        "format not supported by this method on the target resource.",
    ),
    500: ("Internal Server Error", "The server encountered an unexpected condition."),
}


def html_error(status: int, message: str = "") -> Reply:
    """An error page in the style of a Java servlet container (Tomcat)."""
    reason, description = _REASONS.get(status, ("Error", "The request failed."))
    message_html = f"<p><b>Message</b> {_escape(message)}</p>" if message else ""
    page = (
        f'<!doctype html><html lang="en"><head><title>HTTP Status {status} – {reason}</title>'
        '<style type="text/css">body {font-family:Tahoma,Arial,sans-serif;} '
        "h1 {font-size:22px;} .line {height:1px;background-color:#525D76;border:none;}</style>"
        f'</head><body><h1>HTTP Status {status} – {reason}</h1><hr class="line" />'
        f"<p><b>Type</b> Status Report</p>{message_html}"
        f'<p><b>Description</b> {description}</p><hr class="line" />'
        "<h3>Apache Tomcat/9.0.83</h3></body></html>"
    )
    return Reply(status, page.encode("utf-8"), content_type="text/html;charset=utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Limiter:
    """At most ``capacity`` holders at once; the others wait first come, first served."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, patience: float) -> bool:
        """True once a slot is held; False when ``patience`` seconds passed first (none held)."""
        if self.running < self.capacity and not self._waiters:
            self.running += 1
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(patience, self._expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # granted just as the caller went away: hand the slot on
            else:
                self._discard(waiter)
            raise
        finally:
            timer.cancel()

    def release(self) -> None:
        self.running -= 1
        self.wake()

    def wake(self) -> None:
        while self.running < self.capacity and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.running += 1
                waiter.set_result(True)

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            self._discard(waiter)
            waiter.set_result(False)

    def _discard(self, waiter: asyncio.Future[bool]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # nearest-rank
    return ordered[min(rank, len(ordered)) - 1]


def _as_int(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    if not re.fullmatch(r"-?\d{1,18}", text):
        return None
    return int(text)


class Emulator:
    """The emulated PBX. Serve it with ``transport()`` (in-process) or ``server.SimServer``.

    Use it from one event loop; ``server.SimThread`` offers thread-safe access.

    Behaviour where the Noojee documentation is silent (our choices, kept stable for tests):

    - Paths are matched before the key: an unknown path is a 404 HTML page, a known method with the
      wrong HTTP verb a 405 HTML page, a wrong or missing ``apiKey`` a 403 HTML page (servlet
      style).
    - ``insertLeadFast`` without ``Content-Type: application/json`` is a 415 HTML page. A body that
      is not one JSON object whose values are all strings is HTTP 400
      ``{"code":103,"message":"EXCEPTION: ..."}``, answered at once (before the rate-limit queue).
    - A list call whose id parameter is missing or not a number is HTTP 400 with code 103; a number
      that names nothing gives an empty ``entities`` list.
    - The field calls follow the list calls: ``getFieldList`` answers
      ``{"code":0,"message":"OK","entities":[{"id":..,"name":<key>}]}`` (field ids are the
      template id times 100 plus the field's place, from 1), ``getFieldDefn`` a bare JSON array of
      ``{"type":"unicode","key","required","label","help_text"}``. A missing or non-number
      ``fTemplateId`` is HTTP 400 code 103 (a JSON object, also for ``getFieldDefn``); an unknown
      template id an empty list (``entities: []``, or ``[]``). Neither says which fields are
      dialable; the emulator knows it from ``data.Field.phone`` and answers 102 accordingly.
      With ``field_calls`` off (an older PBX) both are unknown paths: a 404 HTML page.
    - Every insert that passes the checks above waits in the FIFO queue, then takes ``min_service``
      + jitter, then is decided: import window (500, 103), ``failure_rate`` (500, 103), ids (500,
      103 "... not found"), then 108, 102, 111, 104, 112, 105 in that order. ``njPriority`` that is
      not a whole number from 0 to 100, or ``njCallBackDate`` not in ``yyyy/MM/dd HH:mm``, is HTTP
      400 code 103 (checked last, just before the insert). Field names the template does not have
      are kept.
    - ``drop_rate`` applies to every processed insert: a valid lead is inserted and then the
      connection is cut; an invalid one is refused and the refusal is lost with the connection.
    - Phones are compared normalised: digits only, ``61`` + 9 digits (or ``610`` + 9) -> ``0`` + 9.
    """

    def __init__(
        self,
        *,
        api_key: str = DEMO_API_KEY,
        templates: Iterable[data.Template] | None = None,
        campaigns: Iterable[data.Campaign] | None = None,
        allocations: Iterable[data.Allocation] | None = None,
        dnc_numbers: Iterable[str] | None = None,
        contact_hours: Iterable[str] | None = None,
        capacity: int = 4,
        min_service: float = 0.1,
        jitter: float = 0.02,
        queue_timeout: float = 60.0,
        failure_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int = 0,
        field_calls: bool = True,
        journal: LeadJournal | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = DEMO_API_KEY
        self.set_key(api_key)
        self.templates: dict[int, data.Template] = {
            t["id"]: copy.deepcopy(t) for t in (data.TEMPLATES if templates is None else templates)
        }
        self.campaigns: dict[int, data.Campaign] = {
            c["id"]: copy.deepcopy(c) for c in (data.CAMPAIGNS if campaigns is None else campaigns)
        }
        self.allocations: dict[int, data.Allocation] = {
            a["id"]: copy.deepcopy(a)
            for a in (data.ALLOCATIONS if allocations is None else allocations)
        }
        self.dnc: set[str] = {
            normalise_phone(n) for n in (data.DNC_NUMBERS if dnc_numbers is None else dnc_numbers)
        }
        self.contact_hours: set[str] = set(
            data.CONTACT_HOURS if contact_hours is None else contact_hours
        )
        self._clock = clock
        self._rng = random.Random(seed)
        self._journal = journal
        self._limiter = _Limiter(1)
        self.failure_rate = 0.0
        self.drop_rate = 0.0
        self.min_service = 0.0
        self.jitter = 0.0
        self.queue_timeout = 60.0
        self._import_until: float | None = None
        self.field_calls = True
        self._forced_code: int | None = None
        self._forced_status: int | None = None
        self._forced_left = 0
        self._down = False
        self._down_until: float | None = None
        self._down_listeners: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Reply]] = set()
        self._leads: list[Lead] = []
        self._next_id = 1
        self._phones: dict[int, set[str]] = {}
        self._external_ids: dict[int, set[str]] = {}
        self._reset_stats()
        self.set_faults(
            capacity=capacity,
            min_service=min_service,
            jitter=jitter,
            queue_timeout=queue_timeout,
            failure_rate=failure_rate,
            drop_rate=drop_rate,
            field_calls=field_calls,
        )

    # -- settings and faults -----------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self._key

    def set_key(self, api_key: str) -> None:
        """Accept only ``api_key`` from now on."""
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        self._key = api_key

    @property
    def capacity(self) -> int:
        """How many inserts are processed at once; the others wait in the queue."""
        return self._limiter.capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        self.set_faults(capacity=value)

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Change any of failure_rate, drop_rate, import_seconds, capacity, min_service, jitter,
        queue_timeout, down (bool), down_seconds, field_calls (bool), forced_code, forced_status,
        forced_count; returns the faults now in force.

        ``forced_code`` (a whole number, or None to stop) makes the next ``forced_count`` inserts
        (default 1) answer ``{"code": forced_code, ...}`` with HTTP ``forced_status`` (default: the
        code's documented status, else 400) after their queue and service time, inserting nothing:
        a way to try a client on codes the emulator has no rule for (such as 114). Raises
        ValueError (nothing changed) for an unknown name or a value out of range.
        """
        checked: dict[str, Any] = {}
        for name, value in settings.items():
            if name == "capacity":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
                    raise ValueError("capacity must be a whole number from 1 to 10000")
            elif name in ("down", "field_calls"):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif name in _FORCED:
                value = _check_forced(name, value)
            elif name in _FAULT_FLOATS:
                low, high = _FAULT_FLOATS[name]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number")
                value = float(value)
                if not low <= value <= high:  # also refuses NaN
                    raise ValueError(f"{name} must be from {low:g} to {high:g}")
            else:
                known = ", ".join(
                    sorted([*_FAULT_FLOATS, *_FORCED, "capacity", "down", "field_calls"])
                )
                raise ValueError(f"unknown setting {name!r} (known: {known})")
            checked[name] = value
        forced = self._next_forced(checked)
        for name, value in checked.items():
            if name in _FORCED:
                continue
            if name == "capacity":
                self._limiter.capacity = value
                self._limiter.wake()
            elif name == "import_seconds":
                self.start_import(value)
            elif name == "down":
                self.set_down(value, checked.get("down_seconds"))
            elif name == "down_seconds":
                if "down" not in checked:
                    self.set_down(value > 0, value if value > 0 else None)
            else:
                setattr(self, name, value)
        self._forced_code, self._forced_status, self._forced_left = forced
        return self.faults()

    def _next_forced(self, checked: dict[str, Any]) -> tuple[int | None, int | None, int]:
        """The forced answer after applying ``checked``; raises ValueError when it is incomplete."""
        if "forced_code" in checked:
            code = checked["forced_code"]
            status = checked.get("forced_status")
            left = checked.get("forced_count", 1 if code is not None else 0)
        else:
            code = self._forced_code
            status = checked.get("forced_status", self._forced_status)
            left = checked.get("forced_count", self._forced_left)
        if code is None and (status is not None or left > 0):
            raise ValueError("forced_status and forced_count need a forced_code")
        if code is None or left == 0:
            return None, None, 0
        return code, status, left

    def faults(self) -> dict[str, Any]:
        """The settings and faults in force."""
        return {
            "capacity": self.capacity,
            "min_service": self.min_service,
            "jitter": self.jitter,
            "queue_timeout": self.queue_timeout,
            "failure_rate": self.failure_rate,
            "drop_rate": self.drop_rate,
            "import_remaining": self.import_remaining,
            "down": self.down,
            "down_remaining": self.down_remaining,
            "field_calls": self.field_calls,
            "forced_code": self._forced_code,
            "forced_status": self._forced_http_status(),
            "forced_count": self._forced_left,
        }

    def _forced_http_status(self) -> int | None:
        if self._forced_code is None:
            return None
        if self._forced_status is not None:
            return self._forced_status
        return codes.describe(self._forced_code).http_status or 400

    def start_import(self, seconds: float) -> None:
        """A manual import runs for ``seconds``: every insert meanwhile answers 500, code 103."""
        self._import_until = self._clock() + seconds if seconds > 0 else None

    @property
    def import_remaining(self) -> float:
        if self._import_until is None:
            return 0.0
        return max(0.0, self._import_until - self._clock())

    @property
    def down(self) -> bool:
        """Down for maintenance: no connection is accepted."""
        if not self._down:
            return False
        return self._down_until is None or self._clock() < self._down_until

    @down.setter
    def down(self, value: bool) -> None:
        self.set_down(value)

    @property
    def down_remaining(self) -> float | None:
        """Seconds until the end of a timed maintenance; None when not down or open-ended."""
        if not self.down or self._down_until is None:
            return None
        return max(0.0, self._down_until - self._clock())

    def set_down(self, down: bool, seconds: float | None = None) -> None:
        """Go down for maintenance (for ``seconds``, or until ``set_down(False)``), or come back."""
        self._down = bool(down)
        self._down_until = self._clock() + seconds if down and seconds is not None else None
        for listener in list(self._down_listeners):
            listener()

    def add_down_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (from the caller's thread) whenever ``set_down`` is called."""
        self._down_listeners.append(listener)

    def remove_down_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._down_listeners:
            self._down_listeners.remove(listener)

    # -- inspection ---------------------------------------------------------------------------

    def _reset_stats(self) -> None:
        self.calls = 0
        self.insert_calls = 0
        self.insert_calls_by_template: Counter[str] = Counter()
        self.drops = 0
        self.code_counts: Counter[int] = Counter()
        self.http_statuses: Counter[int] = Counter()
        self.queue_waits: list[float] = []
        self.max_running = self._limiter.running

    @property
    def running(self) -> int:
        """Inserts being processed right now."""
        return self._limiter.running

    @property
    def queued(self) -> int:
        """Inserts waiting for a free slot right now."""
        return self._limiter.queued

    def leads(self, campaign_id: int | None = None) -> list[dict[str, Any]]:
        """The inserted leads (optionally of one campaign), oldest first."""
        return [
            lead.to_dict()
            for lead in self._leads
            if campaign_id is None or lead.campaign_id == campaign_id
        ]

    def state(self, *, include_leads: bool = True) -> dict[str, Any]:
        """Leads, counters, concurrency and queue waits, as plain JSON-ready data."""
        ordered = sorted(self.queue_waits)
        result: dict[str, Any] = {
            "lead_count": len(self._leads),
            "calls": self.calls,
            "insert_calls": self.insert_calls,
            "insert_calls_by_template": dict(
                sorted(self.insert_calls_by_template.items(), key=_id_order)
            ),
            "codes": {str(k): v for k, v in sorted(self.code_counts.items())},
            "http_statuses": {str(k): v for k, v in sorted(self.http_statuses.items())},
            "drops": self.drops,
            "running": self.running,
            "queued": self.queued,
            "max_running": self.max_running,
            "queue_waits": list(self.queue_waits),
            "queue_wait": {
                "count": len(ordered),
                "p50": _percentile(ordered, 0.5),
                "p90": _percentile(ordered, 0.9),
                "max": ordered[-1] if ordered else 0.0,
            },
            "faults": self.faults(),
        }
        if include_leads:
            result["leads"] = self.leads()
        return result

    # -- state changes ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every lead and counter and switch off failures, drops, forced answers, import
        and maintenance.

        The key, capacity, timings and ``field_calls`` stay as they are.
        """
        if self._journal is not None:
            self._journal.record_reset()
        self._leads.clear()
        self._phones.clear()
        self._external_ids.clear()
        self.failure_rate = 0.0
        self.drop_rate = 0.0
        self._forced_code, self._forced_status, self._forced_left = None, None, 0
        self._import_until = None
        self._reset_stats()
        if self._down:
            self.set_down(False)

    def restore(self, leads: Iterable[dict[str, Any]]) -> int:
        """Add previously saved leads (``leads()`` output); returns how many were new.

        Leads whose id is already present are skipped, so replaying a journal twice is harmless.
        Raises ValueError, with nothing added, when an entry is malformed.
        """
        parsed = [Lead.from_dict(raw) for raw in leads]
        known = {lead.id for lead in self._leads}
        added = 0
        for lead in parsed:
            if lead.id in known:
                continue
            known.add(lead.id)
            self._commit(lead)
            added += 1
        return added

    def _commit(self, lead: Lead) -> None:
        self._leads.append(lead)
        self._next_id = max(self._next_id, lead.id + 1)
        phones = self._phones.setdefault(lead.campaign_id, set())
        phones.update(self._lead_phones(lead.template_id, lead.fields))
        if lead.external_id:
            self._external_ids.setdefault(lead.campaign_id, set()).add(lead.external_id)

    def _lead_phones(self, template_id: int, fields: dict[str, str]) -> set[str]:
        template = self.templates.get(template_id)
        if template is None:
            return set()
        found = {
            normalise_phone(fields.get(f["name"], "")) for f in template["fields"] if f["phone"]
        }
        found.discard("")
        return found

    async def aclose(self) -> None:
        """Cancel inserts still queued or running (not inserted) and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- serving ------------------------------------------------------------------------------

    def transport(self, *, honour_timeouts: bool = True) -> EmulatorTransport:
        """An httpx transport that serves this emulator in-process (no socket, no port)."""
        return EmulatorTransport(self, honour_timeouts=honour_timeouts)

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 application. A drop raises ConnectionDropped before anything is sent."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body, too_big = await _read_body(receive)
        path: str = scope.get("path", "/")
        if path.startswith(SIM_PREFIX):
            reply = self._control(scope["method"], path, scope.get("query_string", b""), body)
        else:
            self.calls += 1
            if too_big:
                reply = html_error(413)
            else:
                reply = await self._api(scope, path, body)
            if reply.drop:
                self.drops += 1
                raise ConnectionDropped("the server cut the connection before answering")
            self.http_statuses[reply.status] += 1
            if reply.code is not None:
                self.code_counts[reply.code] += 1
        headers = [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode("ascii")),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})

    __call__ = asgi_app

    # -- the Noojee API -----------------------------------------------------------------------

    async def _api(self, scope: Scope, path: str, body: bytes) -> Reply:
        if not path.startswith(API_PREFIX):
            return html_error(404, path)
        method = path[len(API_PREFIX) :]
        verbs = {
            "getCampaignTemplateList": "GET",
            "getCampaignList": "GET",
            "getAllocationList": "GET",
            "insertLeadFast": "POST",
        }
        if self.field_calls:
            verbs.update(dict.fromkeys(_FIELD_CALLS, "GET"))
        verb = verbs.get(method)
        if verb is None:
            return html_error(404, path)
        if scope["method"] != verb:
            reply = html_error(405, f"HTTP method {scope['method']} is not supported by this URL")
            reply.headers.append((b"allow", verb.encode("ascii")))
            return reply
        query = _query(scope.get("query_string", b""))
        if not hmac.compare_digest(query.get("apiKey", "").encode(), self._key.encode()):
            return html_error(403, "Access to the requested resource has been denied")
        if method == "getCampaignTemplateList":
            entities = [{"id": t["id"], "name": t["name"]} for t in self.templates.values()]
            return self._list_reply("CampaignTemplate", entities)
        if method == "getCampaignList":
            template_id = _as_int(query.get("fTemplateId"))
            if template_id is None:
                return _code_reply(
                    codes.EXCEPTION, "EXCEPTION: fTemplateId is missing or not a number", 400
                )
            entities = [
                {"id": c["id"], "name": c["name"]}
                for c in self.campaigns.values()
                if c["template_id"] == template_id
            ]
            return self._list_reply("Campaign", entities)
        if method == "getAllocationList":
            campaign_id = _as_int(query.get("fCampaignId"))
            if campaign_id is None:
                return _code_reply(
                    codes.EXCEPTION, "EXCEPTION: fCampaignId is missing or not a number", 400
                )
            entities = [
                {"id": a["id"], "name": a["name"]}
                for a in self.allocations.values()
                if a["campaign_id"] == campaign_id
            ]
            return self._list_reply("Allocation", entities)
        if method in _FIELD_CALLS:
            return self._field_reply(method, query)
        return await self._insert(scope, query, body)

    def _field_reply(self, method: str, query: dict[str, str]) -> Reply:
        template_id = _as_int(query.get("fTemplateId"))
        if template_id is None:
            return _code_reply(
                codes.EXCEPTION, "EXCEPTION: fTemplateId is missing or not a number", 400
            )
        template = self.templates.get(template_id)
        fields = template["fields"] if template is not None else []
        if method == "getFieldList":
            entities = [
                {"id": template_id * 100 + place, "name": f["name"]}
                for place, f in enumerate(fields, start=1)
            ]
            return _json_reply(200, {"code": 0, "message": "OK", "entities": entities}, codes.OK)
        return _json_reply(
            200,
            [
                {
                    "type": "unicode",
                    "key": f["name"],
                    "required": f["required"],
                    "label": data.label(f),
                    "help_text": data.help_text(f),
                }
                for f in fields
            ],
        )

    @staticmethod
    def _list_reply(kind: str, entities: list[dict[str, Any]]) -> Reply:
        payload = {"type": kind, "entities": entities, "code": 0, "message": "OK"}
        return _json_reply(200, payload, code=codes.OK)

    async def _insert(self, scope: Scope, query: dict[str, str], body: bytes) -> Reply:
        self.insert_calls += 1
        raw_template = query.get("fTemplateId", "")
        template_id = _as_int(raw_template)
        self.insert_calls_by_template[
            str(template_id) if template_id is not None else raw_template
        ] += 1
        content_type = _header(scope, b"content-type").lower()
        if "application/json" not in content_type:
            return html_error(415, "Content-Type must be application/json")
        fields = _parse_lead(body)
        if isinstance(fields, str):
            return _code_reply(codes.EXCEPTION, f"EXCEPTION: {fields}", 400)
        allow = query.get("allowDuplicates", "").strip().lower() == "true"
        # The processing runs as its own task: a client that gives up does not stop the server.
        task = asyncio.get_running_loop().create_task(self._process(query, fields, allow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def _process(self, query: dict[str, str], fields: dict[str, str], allow: bool) -> Reply:
        arrived = self._clock()
        granted = await self._limiter.acquire(self.queue_timeout)
        self.queue_waits.append(self._clock() - arrived)
        if not granted:
            return _code_reply(codes.TOO_MANY_CONCURRENT)
        self.max_running = max(self.max_running, self._limiter.running)
        try:
            extra = self._rng.uniform(0.0, self.jitter) if self.jitter > 0 else 0.0
            await asyncio.sleep(self.min_service + extra)
            try:
                reply = self._decide(query, fields, allow)
            except Exception as exc:  # an emulator bug must still answer like a server would
                log.exception("the emulator failed on an insert")
                reply = _code_reply(codes.EXCEPTION, f"EXCEPTION: {type(exc).__name__}: {exc}")
        finally:
            self._limiter.release()
        if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
            reply.drop = True
        return reply

    def _decide(self, query: dict[str, str], fields: dict[str, str], allow: bool) -> Reply:
        if self._forced_code is not None and self._forced_left > 0:
            code, status = self._forced_code, self._forced_http_status()
            self._forced_left -= 1
            if self._forced_left == 0:
                self._forced_code, self._forced_status = None, None
            return _code_reply(code, f"code {code} (forced by the emulator)", status)
        if self.import_remaining > 0:
            return _code_reply(codes.EXCEPTION, "EXCEPTION: an import is running on the PBX")
        if self.failure_rate > 0 and self._rng.random() < self.failure_rate:
            return _code_reply(codes.EXCEPTION, "EXCEPTION: the server failed (simulated)")
        found = self._resolve(query)
        if isinstance(found, Reply):
            return found
        template, campaign_id, allocation_id = found
        if any(value.strip().upper() == NO_CHANGE for value in fields.values()):
            return _code_reply(codes.IMPORT_BUT_NOCHANGE)
        phone_names = [f["name"] for f in template["fields"] if f["phone"]]
        if not any(fields.get(name, "").strip() for name in phone_names):
            return _code_reply(codes.NO_PHONE_FIELDS)
        hours = fields.get("njContactHours", "").strip()
        if hours and hours not in self.contact_hours:
            return _code_reply(codes.INVALID_TIMEZONE)
        phones = self._lead_phones(template["id"], fields)
        if phones & self.dnc:
            return _code_reply(codes.DNC)
        external = fields.get("njExternalLeadId", "").strip()
        if external and external in self._external_ids.get(campaign_id, ()):
            return _code_reply(codes.DUPLICATE_EXTERNAL_ID)
        if not allow and phones & self._phones.get(campaign_id, set()):
            return _code_reply(codes.DUPLICATE)
        problem = _system_field_problem(fields)
        if problem:
            return _code_reply(codes.EXCEPTION, f"EXCEPTION: {problem}", 400)
        lead = Lead(
            id=self._next_id,
            template_id=template["id"],
            campaign_id=campaign_id,
            allocation_id=allocation_id,
            external_id=external or None,
            fields=dict(fields),
            inserted_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            allow_duplicates=allow,
        )
        if self._journal is not None:
            try:
                self._journal.record_insert(lead.to_dict())
            except OSError as exc:
                log.error("could not record lead %s: %s", lead.id, exc)
                return _code_reply(codes.EXCEPTION, "EXCEPTION: the lead could not be saved")
        self._commit(lead)
        return _code_reply(codes.OK)

    def _resolve(self, query: dict[str, str]) -> tuple[data.Template, int, int] | Reply:
        raw_t, raw_c, raw_a = (
            query.get(k) for k in ("fTemplateId", "fCampaignId", "fAllocationId")
        )
        template_id = _as_int(raw_t)
        template = self.templates.get(template_id) if template_id is not None else None
        if template is None:
            return _not_found(f"Template {raw_t!r} not found")
        campaign_id = _as_int(raw_c)
        campaign = self.campaigns.get(campaign_id) if campaign_id is not None else None
        if campaign is None or campaign["template_id"] != template["id"]:
            return _not_found(f"Campaign {raw_c!r} of template {template['id']} not found")
        allocation_id = _as_int(raw_a)
        allocation = self.allocations.get(allocation_id) if allocation_id is not None else None
        if allocation is None or allocation["campaign_id"] != campaign["id"]:
            return _not_found(f"Allocation {raw_a!r} of campaign {campaign['id']} not found")
        return template, campaign["id"], allocation["id"]

    # -- control routes -----------------------------------------------------------------------

    def _control(self, verb: str, path: str, query_string: bytes, body: bytes) -> Reply:
        route = path[len(SIM_PREFIX) :].rstrip("/")
        wanted = {"state": "GET", "faults": "POST", "key": "POST", "reset": "POST"}.get(route)
        if wanted is None:
            return _json_reply(404, {"error": f"no control route {path}"})
        if verb != wanted:
            return _json_reply(405, {"error": f"use {wanted} for {path}"})
        if route == "state":
            include = _query(query_string).get("leads", "1").strip().lower() not in {"0", "false"}
            return _json_reply(200, self.state(include_leads=include))
        if route == "reset":
            self.reset()
            return _json_reply(200, {"ok": True})
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            return _json_reply(400, {"error": f"the body is not JSON: {exc}"})
        if not isinstance(payload, dict):
            return _json_reply(400, {"error": "the body must be a JSON object"})
        try:
            if route == "key":
                self.set_key(payload.get("api_key"))  # type: ignore[arg-type]
                return _json_reply(200, {"ok": True})
            return _json_reply(200, {"faults": self.set_faults(**payload)})
        except ValueError as exc:
            return _json_reply(400, {"error": str(exc)})


def _check_forced(name: str, value: Any) -> int | None:
    """A checked forced_code (0 to 99999 or None), forced_status (200 to 599 or None) or
    forced_count (0 to 1000000)."""
    low, high = {
        "forced_code": (0, 99999),
        "forced_status": (200, 599),
        "forced_count": (0, 1000000),
    }[name]
    if value is None and name != "forced_count":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        nothing = "" if name == "forced_count" else " or null"
        raise ValueError(f"{name} must be a whole number from {low} to {high}{nothing}")
    return value


def _id_order(item: tuple[str, int]) -> tuple[int, int, str]:
    key = item[0]
    return (0, int(key), "") if _as_int(key) is not None else (1, 0, key)


def _not_found(message: str) -> Reply:
    return _code_reply(codes.EXCEPTION, message, 500)


def _system_field_problem(fields: dict[str, str]) -> str:
    priority = fields.get("njPriority", "").strip()
    if priority and not (priority.isdecimal() and priority.isascii() and int(priority) <= 100):
        return f"njPriority {priority!r} is not a whole number from 0 to 100"
    when = fields.get("njCallBackDate", "").strip()
    if when:
        try:
            if not _CALLBACK_DATE.match(when):
                raise ValueError
            datetime.strptime(when, "%Y/%m/%d %H:%M")
        except ValueError:
            return f"njCallBackDate {when!r} is not a date like 2025/03/31 14:30 (yyyy/MM/dd HH:mm)"
    return ""


def _parse_lead(body: bytes) -> dict[str, str] | str:
    """The lead in a request body, or a sentence saying why it is not one."""
    if not body.strip():
        return "the body is empty; send one JSON object whose values are strings"
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"
    except ValueError as exc:
        return f"the body is not JSON ({exc})"
    if not isinstance(parsed, dict):
        return f"the body must be one JSON object (one lead), not a JSON {type(parsed).__name__}"
    for key, value in parsed.items():
        if not isinstance(value, str):
            return f"the value of {key!r} must be a string, not {json.dumps(value)[:40]}"
    return parsed


def _query(raw: bytes | str) -> dict[str, str]:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    too_big = False
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            too_big = True
        elif chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), too_big


class EmulatorTransport(httpx.AsyncBaseTransport):
    """In-process transport: the emulator's ASGI app behind httpx, with its faults as httpx errors.

    ``down`` raises ``httpx.ConnectError``; a drop raises ``httpx.RemoteProtocolError`` (after the
    lead was inserted); the request's read timeout is honoured (``httpx.ReadTimeout``) while the
    emulator goes on processing the call, as a real server would.
    """

    def __init__(self, emulator: Emulator, *, honour_timeouts: bool = True) -> None:
        self.emulator = emulator
        self._honour_timeouts = honour_timeouts
        self._asgi = httpx.ASGITransport(app=emulator.asgi_app, client=("127.0.0.1", 49152))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.emulator.down:
            raise httpx.ConnectError(
                "All connection attempts failed (the PBX is down for maintenance)",
                request=request,
            )
        timeouts = request.extensions.get("timeout") or {}
        read = timeouts.get("read") if self._honour_timeouts else None
        try:
            async with asyncio.timeout(read):
                return await self._asgi.handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the PBX", request=request) from None
        except ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
