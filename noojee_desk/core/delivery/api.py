"""The Noojee Campaign API client: list choices and insert leads, each answer an Outcome."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import math
import re
import socket
import ssl
import time
import urllib.request
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlsplit

import httpcore
import httpx

from noojee_desk import __version__
from noojee_desk.core.delivery import codes
from noojee_desk.core.delivery.outcome import BlockReason, Kind, Outcome, RetryReason
from noojee_desk.core.delivery.policy import LONGEST_HINT
from noojee_desk.core.logs import REDACTOR
from noojee_desk.core.redact import redact_text

log = logging.getLogger(__name__)

API_PATH = "/servicemanager/rest/CampaignAPI/"
CONNECT_TIMEOUT = 10.0
#: The server queues a call for up to a minute before answering 109: wait well past that.
READ_TIMEOUT = 90.0
LIST_READ_TIMEOUT = 30.0
#: A probe of a PBX that does not answer gives up after this long (connect, then read).
PROBE_TIMEOUT = 5.0
#: The longest wait a server's ``Retry-After`` may ask for; longer hints are cut to this.
MAX_RETRY_AFTER = LONGEST_HINT
#: The longest server message kept with a lead (the rest is cut).
MAX_MESSAGE = 500
#: The whole of one call (connect, send, wait, read), past the PBX's one-minute queue.
CALL_DEADLINE = 120.0
#: The most of an insert's answer that is read (a real one is a few hundred bytes).
MAX_INSERT_ANSWER = 64 * 1024
#: The most of a list's answer that is read (thousands of entries fit well within it).
MAX_LIST_ANSWER = 8 * 1024 * 1024
#: At most this many templates, campaigns or allocations are kept from one list.
MAX_CHOICES = 5_000
#: Ids are whole numbers that JSON, SQLite and Qt all hold exactly.
MAX_ID = 2**53


class ConfigError(ValueError):
    """The connection settings cannot work (bad URL, plain http to a remote host, bad CA file)."""


class ApiError(Exception):
    """A list call failed; ``outcome`` says how (blocked, retry later, unknown)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.describe())
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class FieldDefn:
    """One field of a template as the PBX describes it: ``key`` goes in the insert body."""

    key: str
    label: str = ""
    required: bool = False
    type: str = ""


#: At most this many fields of one template are read (a real template has a few dozen).
MAX_FIELDS = 1_000
MAX_FIELD_TEXT = 200


@dataclass(frozen=True, slots=True)
class Choice:
    """One template, campaign or allocation the server offers."""

    id: int
    name: str


class Choices(list[Choice]):
    """A list call's answer; ``note`` says when it was cut at ``MAX_CHOICES``."""

    note: str = ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_base_url(url: str) -> str:
    """The API base (ending in ``/CampaignAPI/``) for what a person typed; raises ConfigError."""
    text = (url or "").strip()
    if not text:
        raise ConfigError("Enter the PBX server address, for example https://pbx.example.com.")
    if "@" in text:
        # user:pass@host or a key in the address: it would be sent (and logged) with every call.
        raise ConfigError(
            "Enter the server address without a user name, password or '@' in it "
            "(for example https://pbx.example.com); the API key is entered on its own."
        )
    shown = redact_text(text)
    if any(c.isspace() for c in text):
        raise ConfigError(f"'{shown}' is not a server address: it has a space in it.")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        readable = parts.port != 0  # .port raises for a port that is no number up to 65535
    except ValueError:
        readable = False
    if not readable:
        if "[" in text or "]" in text:
            raise ConfigError(
                f"'{shown}' is not a server address: what is in [ ] must be an IPv6 address, "
                "written like https://[2001:db8::1]:8443."
            )
        raise ConfigError(
            f"'{shown}' is not a server address: the port after ':' must be a number from 1 "
            "to 65535 (for example https://pbx.example.com:8443)."
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"'{shown}' is not a server address (use https://host).")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            "The PBX must be reached over HTTPS: the API key travels in the address. "
            "Use https:// (plain http:// is allowed only for this computer, e.g. the emulator)."
        )
    if parts.query or parts.fragment:
        raise ConfigError("Enter only the server address, without '?' or '#' parts.")
    path = parts.path.rstrip("/")
    marker = API_PATH.rstrip("/")
    path = path[: path.index(marker)] if marker in path else path
    base = f"{parts.scheme}://{parts.netloc}{path}{API_PATH}"
    try:
        httpx.URL(base)  # what the client is built on: refuse here what it would refuse
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ConfigError(f"'{shown}' is not a server address (use https://host).") from None
    return base


class _KeyTransport(httpx.AsyncBaseTransport):
    """Adds ``apiKey`` to the URL only on the copy handed to the wire.

    httpx logs, and keeps in responses and exceptions, the request it was given: that one never
    holds the key, so nothing httpx logs or raises can leak it.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, api_key: str) -> None:
        self._inner = inner
        self._api_key = api_key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wire = httpx.Request(
            request.method,
            request.url.copy_add_param("apiKey", self._api_key),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(wire)

    async def aclose(self) -> None:
        await self._inner.aclose()


# The last line of defence: the HTTP libraries' own records are masked as ours are.
for _name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2"):
    logging.getLogger(_name).addFilter(REDACTOR)


def _verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """Verification is always on; an on-premise PBX may need its own CA certificate file."""
    if not ca_bundle:
        return True  # httpx's default: the certifi bundle
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"The CA certificate file '{ca_bundle}' cannot be used: {exc}") from exc


#: The proxy schemes httpx can speak (SOCKS only with the ``socksio`` package installed).
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def check_proxy(text: str) -> str:
    """A connection's proxy address in one spelling ("" for none); ConfigError when it
    cannot be used. A user name or password in it is refused: settings are a plain file."""
    text = (text or "").strip()
    if not text:
        return ""
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a port that is no number up to 65535
        host = parts.hostname
    except ValueError:
        port, host = None, None
        parts = None
    if parts is not None and (parts.username is not None or parts.password is not None):
        raise ConfigError(
            "Enter the proxy without a user name or password (user:password@ is not kept in "
            "the settings file). Use a proxy that needs no sign-in, or set HTTPS_PROXY."
        )
    if parts is None or not host or parts.scheme.lower() not in PROXY_SCHEMES:
        raise ConfigError(
            "The proxy must be an address like http://proxy.example.com:3128 "
            "(http, https or socks5)."
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ConfigError("Enter only the proxy's address and port, e.g. proxy.example.com:3128.")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{netloc}" + (f":{port}" if port else "")


def proxy_for(url: str, configured: str = "") -> str | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection.

    The connection's own proxy (``configured``) wins. Otherwise the system's: the usual
    ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` variables (either case; on Windows and macOS
    the system settings when none is set), with ``NO_PROXY`` (host names, domain suffixes, ``*``)
    naming hosts reached directly. Plain ``http://`` (allowed only for this computer) never goes
    through a proxy: the key travels in the address, and a proxy would see it in clear."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme != "https":
        return None
    if configured:
        return check_proxy(configured)
    proxies = urllib.request.getproxies()
    chosen = proxies.get(scheme) or proxies.get("all")
    if not chosen:
        return None
    where = f"{host}:{parts.port}" if parts.port else host
    if urllib.request.proxy_bypass(where) or urllib.request.proxy_bypass(host):
        return None
    return chosen if "://" in chosen else "http://" + chosen


def _transport(
    base_url: str, ca_bundle: str | None, proxy: str, max_connections: int
) -> httpx.AsyncHTTPTransport:
    """The wire transport: TLS verified, through the proxy :func:`proxy_for` picks (an https PBX
    is reached through a CONNECT tunnel, so the proxy sees only its host and port)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=32)
    verify = _verify(ca_bundle)
    url = proxy_for(base_url, proxy)
    if url is None:
        return httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    try:
        return httpx.AsyncHTTPTransport(verify=verify, limits=limits, proxy=httpx.Proxy(url))
    except ImportError:
        raise ConfigError(
            "A SOCKS proxy needs the 'socksio' package, which this installation lacks: "
            "use an HTTP proxy."
        ) from None
    except (httpx.InvalidURL, ValueError, TypeError):
        raise ConfigError(
            "The proxy address in HTTPS_PROXY, HTTP_PROXY or ALL_PROXY cannot be used: "
            "it must look like http://proxy.example.com:3128."
        ) from None


class NoojeeClient:
    """An async client for one PBX and one API key. Use as ``async with`` or call ``aclose()``.

    ``proxy``: the connection's own proxy address; without it the system's proxy settings are
    used (see :func:`proxy_for`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        list_timeout: float = LIST_READ_TIMEOUT,
        deadline: float = CALL_DEADLINE,
        max_connections: int = 64,
        proxy: str = "",
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        if not api_key or not api_key.strip():
            raise ConfigError("Enter the API key Noojee support gave you.")
        self._api_key = api_key.strip()
        self._proxy: str | None = None  # the proxy's address, for messages
        if transport is None:
            transport = _transport(self.base_url, ca_bundle, proxy, max_connections)
            self._proxy = proxy_for(self.base_url, proxy)
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=30.0, pool=None
        )
        self._list_timeout = list_timeout
        self._deadline = deadline
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=_KeyTransport(transport, self._api_key),
            timeout=self._timeout,
            headers={
                "User-Agent": f"NoojeeDesk/{__version__}",
                "Accept": "application/json",
                # Only the codings _read_at_most inflates a bounded piece at a time.
                "Accept-Encoding": "gzip, deflate",
            },
            follow_redirects=False,
        )
        self._reached = False  # set once any HTTP answer came back: later DNS errors are "offline"

    def __repr__(self) -> str:
        return f"NoojeeClient({self.base_url!r}, api_key='***')"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- list calls --------------------------------------------------------------------------

    async def list_templates(self) -> Choices:
        return await self._list("getCampaignTemplateList", {})

    async def list_campaigns(self, template_id: int) -> Choices:
        return await self._list("getCampaignList", {"fTemplateId": str(template_id)})

    async def list_allocations(self, campaign_id: int) -> Choices:
        return await self._list("getAllocationList", {"fCampaignId": str(campaign_id)})

    async def probe(self) -> Outcome:
        """Whether the PBX answers: the template list, the cheapest call there is, with short
        timeouts. Returns the Outcome (``no_answer`` when nothing came back); never raises."""
        timeout = httpx.Timeout(
            min(self._timeout.connect or PROBE_TIMEOUT, PROBE_TIMEOUT),
            read=PROBE_TIMEOUT,
            write=PROBE_TIMEOUT,
        )
        outcome, _ = await self._call(
            "GET", "getCampaignTemplateList", {}, None, read_timeout=timeout
        )
        return outcome

    async def template_fields(self, template_id: int) -> list[FieldDefn] | None:
        """The template's fields from ``getFieldDefn``, else ``getFieldList``; None when this
        PBX has neither call (a 404, a web page or an answer that is no field list).

        Raises ApiError when the PBX cannot be asked now (offline, busy, key rejected)."""
        params = {"fTemplateId": str(template_id)}
        for method, read in (("getFieldDefn", _field_defns), ("getFieldList", _field_names)):
            outcome, body = await self._call("GET", method, params, None, read_timeout=self._lists)
            fields = read(body)
            if fields is not None:
                return fields
            if outcome.kind in (Kind.RETRY_LATER, Kind.BLOCKED) and not _no_such_call(outcome):
                raise ApiError(outcome)
            if outcome.kind is Kind.UNKNOWN and outcome.http_status is None:
                raise ApiError(outcome)  # no answer at all (timeout, connection lost)
        return None

    @property
    def _lists(self) -> httpx.Timeout:
        return httpx.Timeout(self._timeout.connect, read=self._list_timeout, write=30.0)

    async def _list(self, method: str, params: dict[str, str]) -> Choices:
        outcome, body = await self._call("GET", method, params, None, read_timeout=self._lists)
        if outcome.kind is not Kind.DELIVERED:
            raise ApiError(outcome)
        entities = body.get("entities") if isinstance(body, dict) else None
        if not isinstance(entities, list):
            raise ApiError(
                Outcome(
                    Kind.UNKNOWN,
                    sentence="The server's answer has no list in it; is this a Noojee PBX?",
                )
            )
        choices = Choices()
        for entity in entities:
            if not isinstance(entity, dict):
                continue
            number = _id_of(entity.get("id"))
            if number is None:
                continue
            if len(choices) == MAX_CHOICES:
                choices.note = (
                    f"The server offered more than {MAX_CHOICES:,} entries; "
                    f"only the first {MAX_CHOICES:,} are shown."
                )
                log.warning("%s: %s", method, choices.note)
                break
            name = entity.get("name")
            text = " ".join(str(name).split())[:MAX_FIELD_TEXT] if isinstance(name, str) else ""
            choices.append(Choice(number, text or str(number)))
        return choices

    # -- insert ------------------------------------------------------------------------------

    async def insert_lead(
        self,
        template_id: int,
        campaign_id: int,
        allocation_id: int,
        fields: dict[str, str],
        *,
        allow_duplicates: bool = False,
    ) -> Outcome:
        """Send one lead; returns an Outcome and never raises for anything the network does."""
        params = {
            "fTemplateId": str(template_id),
            "fCampaignId": str(campaign_id),
            "fAllocationId": str(allocation_id),
        }
        if allow_duplicates:
            params["allowDuplicates"] = "true"
        body = {str(k): "" if v is None else str(v) for k, v in fields.items()}
        outcome, _ = await self._call("POST", "insertLeadFast", params, body)
        return outcome

    # -- the one place that talks HTTP -------------------------------------------------------

    async def _call(
        self,
        verb: str,
        method: str,
        params: dict[str, str],
        body: dict[str, str] | None,
        *,
        read_timeout: httpx.Timeout | None = None,
    ) -> tuple[Outcome, Any]:
        """One request, read as a stream of at most a set size, within ``CALL_DEADLINE``."""
        started = time.monotonic()
        sent = body is not None
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=UTF-8"
        limit = MAX_INSERT_ANSWER if sent else MAX_LIST_ANSWER
        deadline = asyncio.timeout(self._deadline)
        wire = _WireTimes()
        try:
            async with deadline:
                request = self._http.build_request(
                    verb,
                    method,
                    params=params,
                    content=content,
                    headers=headers,
                    timeout=read_timeout if read_timeout is not None else httpx.USE_CLIENT_DEFAULT,
                    extensions={"trace": wire.trace},
                )
                response = await self._http.send(request, stream=True)
                try:
                    data, complete = await _read_at_most(response, limit)
                finally:
                    await response.aclose()
        except Exception as exc:  # every failure becomes an Outcome
            if deadline.expired():
                outcome = _past_deadline(self._deadline, sent=sent)
            else:
                outcome = self._failure(exc, sent=sent)
            outcome = _with_latency(self._scrub(outcome), time.monotonic() - started)
            log.info("%s %s: %s", verb, method, outcome.describe())
            return outcome, None
        self._reached = True
        answer = _Answer(response.status_code, response.headers, data, complete)
        outcome, parsed = _classify(answer, self._api_key, sent=sent)
        if not complete and 200 <= answer.status < 300:
            outcome = _too_long(limit, answer, self._api_key, sent=sent)
            log.warning("%s %s: %s", verb, method, outcome.describe())
        outcome = _with_latency(self._scrub(outcome), time.monotonic() - started, wire.span())
        log.debug("%s %s -> HTTP %s %s", verb, method, response.status_code, outcome.kind.value)
        return outcome, parsed

    def _scrub(self, outcome: Outcome) -> Outcome:
        """The outcome with this key masked in every form, wherever the server echoed it."""
        message = redact_text(outcome.message, self._api_key)
        return outcome if message == outcome.message else replace(outcome, message=message)

    def _failure(self, exc: BaseException, *, sent: bool) -> Outcome:
        detail = redact_text(f"{type(exc).__name__}: {exc}", self._api_key)
        if _is_tls_error(exc):
            return Outcome(
                Kind.BLOCKED,
                block_reason=BlockReason.TLS,
                message=detail,
                sentence="The server's security certificate was not accepted.",
                fix="Check the server address; an on-premise PBX may need its CA certificate "
                "set in the connection settings.",
            )
        refused = _proxy_refusal(exc)
        if refused is not None:
            return self._proxy_refused(refused, detail)
        if isinstance(exc, httpx.ConnectError) and _is_name_error(exc) and not self._reached:
            return Outcome(
                Kind.BLOCKED,
                block_reason=BlockReason.UNKNOWN_HOST,
                message=detail,
                sentence="The server name could not be found.",
                fix="Check the server address for typos, and that this computer is online.",
            )
        if isinstance(exc, httpx.ConnectError) and _is_refused(exc) and not self._reached:
            # Never reached this address: most likely a wrong host or port, not a PBX that is
            # down for a while (the case of a queue that was sending).
            where = self._host_and_port()
            return Outcome(
                Kind.RETRY_LATER,
                retry_reason=RetryReason.OFFLINE,
                message=detail,
                sentence=f"The connection to {where} was refused: nothing there takes calls.",
                fix="Check the server address and port. If they are right, the PBX is down: "
                "leads stay queued and are sent when it is back.",
            )
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return Outcome(
                Kind.RETRY_LATER,
                retry_reason=RetryReason.OFFLINE,
                message=detail,
                sentence="The PBX cannot be reached right now (offline or down for maintenance).",
                fix="Nothing to do: leads stay queued and are sent when it is back.",
            )
        if isinstance(exc, httpx.TransportError) and sent:
            return Outcome(
                Kind.UNKNOWN,
                message=detail,
                sentence="The connection was lost before the PBX answered; the lead may or may "
                "not have been added.",
                fix="Nothing to do: it is retried safely with the same lead id.",
            )
        if isinstance(exc, httpx.TransportError):
            return Outcome(
                Kind.RETRY_LATER,
                retry_reason=RetryReason.OFFLINE,
                message=detail,
                sentence="The connection to the PBX failed.",
                fix="Nothing to do: it is tried again shortly.",
            )
        # Not a network failure (a bug or an unexpected library error): keep the lead, retry later.
        log.exception("unexpected error talking to the PBX: %s", detail)
        return Outcome(
            Kind.UNKNOWN if sent else Kind.RETRY_LATER,
            retry_reason=None if sent else RetryReason.SERVER_ERROR,
            message=detail,
            sentence="An unexpected error happened while talking to the PBX.",
            fix="The lead is kept and retried; if this persists, send the log to support.",
        )

    def _proxy_refused(self, status: tuple[int, str], detail: str) -> Outcome:
        """The proxy answered the tunnel's CONNECT with 403 or 407: nothing reached the PBX, and
        trying again changes nothing until someone changes the proxy or the settings."""
        code, phrase = status
        where = f"the proxy at {_proxy_name(self._proxy)}" if self._proxy else "the proxy"
        target = self._host_and_port()
        if code == 407:
            fix = (
                f"Ask your IT team to let this computer reach {target} through the proxy "
                "without a sign-in, or name a proxy that needs none in the connection's "
                "settings (Advanced, Proxy)."
            )
        else:
            fix = (
                f"Ask your IT team to allow connections from this computer to {target} "
                "through the proxy, or name another proxy in the connection's settings "
                "(Advanced, Proxy)."
            )
        return Outcome(
            Kind.BLOCKED,
            block_reason=BlockReason.BAD_CONFIG,
            message=detail,
            sentence=f"{where[0].upper()}{where[1:]} refused the connection to the PBX "
            f"({code} {phrase}); nothing was sent.",
            fix=fix,
        )

    def _host_and_port(self) -> str:
        """ "pbx.example.com, port 443": where this client connects."""
        url = httpx.URL(self.base_url)
        port = url.port or (443 if url.scheme == "https" else 80)
        host = f"[{url.host}]" if ":" in url.host else url.host
        return f"{host}, port {port}"


def _no_such_call(outcome: Outcome) -> bool:
    """The PBX answered, but has no such call: a 404, a redirect, a web page, a refusal."""
    return outcome.block_reason in (BlockReason.WRONG_URL, BlockReason.BAD_CONFIG)


def _text(value: object) -> str:
    return " ".join(str(value).split())[:MAX_FIELD_TEXT] if isinstance(value, str | int) else ""


def _field_defns(body: Any) -> list[FieldDefn] | None:
    """``getFieldDefn``'s bare array of ``{type, key, required, label, help_text}``."""
    if not isinstance(body, list):
        return None
    fields = []
    for item in body[:MAX_FIELDS]:
        if not isinstance(item, dict):
            continue
        key = _text(item.get("key"))
        if key:
            required = item.get("required") is True or str(item.get("required")).lower() == "true"
            fields.append(
                FieldDefn(key, _text(item.get("label")), required, _text(item.get("type")))
            )
    return fields or None  # an empty list says nothing: never a reason to forget a layout


def _field_names(body: Any) -> list[FieldDefn] | None:
    """``getFieldList``'s ``entities`` of ``{id, name}``: names only."""
    entities = body.get("entities") if isinstance(body, dict) and body.get("code") == 0 else None
    if not isinstance(entities, list):
        return None
    fields = []
    for item in entities[:MAX_FIELDS]:
        name = _text(item.get("name")) if isinstance(item, dict) else ""
        if name:
            fields.append(FieldDefn(name))
    return fields or None


def _with_latency(outcome: Outcome, latency: float, on_wire: float | None = None) -> Outcome:
    return replace(outcome, latency=latency, on_wire=on_wire)


class _WireTimes:
    """When the request's last byte was written and the answer's headers read (httpcore's
    ``trace`` extension), for the call's time away from us."""

    __slots__ = ("answered", "sent")

    def __init__(self) -> None:
        self.sent: float | None = None
        self.answered: float | None = None

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(".send_request_body.complete"):
            self.sent = time.monotonic()
        elif event.endswith(".receive_response_headers.complete"):
            self.answered = time.monotonic()

    def span(self) -> float | None:
        if self.sent is None or self.answered is None or self.answered < self.sent:
            return None
        return self.answered - self.sent


def _id_of(value: object) -> int | None:
    """A template, campaign or allocation id: a whole number from 0 to ``MAX_ID``, else None."""
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 16 else None
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        return None
    return value


_CHARSET = re.compile(r"(?i)charset=[\"']?([\w.:-]{1,40})")


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back: the status, the headers and at most the size limit of the body."""

    status: int
    headers: httpx.Headers
    content: bytes
    complete: bool = True  # False when the body went on past the size limit

    @property
    def text(self) -> str:
        found = _CHARSET.search(self.headers.get("content-type", ""))
        try:
            return self.content.decode(found.group(1) if found else "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


async def _read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The (decoded) body up to ``limit`` bytes, and whether that was all of it.

    The raw body is inflated here, never more than the room left at a time: httpx inflates a
    whole network chunk at once, and 64 KB of gzip can hold some 64 MB. Codings other than gzip
    and deflate (which the client does not ask for) are kept as they came: unreadable."""
    try:
        whole = response.content  # an answer made in memory (a test's transport) is read already
    except httpx.ResponseNotRead:
        pass
    else:
        return whole[:limit], len(whole) <= limit
    stages = _inflaters(response.headers.get("content-encoding", ""))
    out = bytearray()
    try:
        async for raw in response.aiter_raw():
            if not _push(stages, 0, raw, out, limit):
                del out[limit:]
                return bytes(out), False
        if not _push(stages, 0, b"", out, limit):
            del out[limit:]
            return bytes(out), False
    except zlib.error as exc:
        raise httpx.DecodingError(str(exc), request=response.request) from exc
    return bytes(out), True


class _Inflater:
    """One gzip or deflate coding, inflated at most a given size per call."""

    def __init__(self, coding: str) -> None:
        self._deflate = coding == "deflate"
        # gzip: the gzip or zlib header; deflate: a zlib stream, or a raw one (as httpx reads it)
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32 if not self._deflate else zlib.MAX_WBITS)
        self._first = self._deflate

    def take(self, data: bytes, room: int) -> bytes:
        """At most ``room`` bytes of output from ``data`` and what an earlier call left."""
        if self._z.unconsumed_tail:
            data = self._z.unconsumed_tail + data
        if self._first and data:
            self._first = False
            try:
                return self._z.decompress(data, room)
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._z.decompress(data, room)

    @property
    def pending(self) -> bool:
        return bool(self._z.unconsumed_tail)


def _inflaters(header: str) -> list[_Inflater]:
    """The inflaters for a Content-Encoding, in the order the raw body goes through them."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    stages: list[_Inflater] = []
    for coding in reversed(codings):  # the last coding applied is undone first
        if coding in ("gzip", "x-gzip", "deflate"):
            stages.append(_Inflater("deflate" if coding == "deflate" else "gzip"))
        elif coding != "identity":
            break  # not ours to undo: the rest stays as it came
    return stages


def _push(stages: list[_Inflater], index: int, data: bytes, out: bytearray, limit: int) -> bool:
    """Runs ``data`` through ``stages[index:]`` into ``out``; False once ``out`` is past
    ``limit`` (each stage makes at most the room left per step, so nothing big is held)."""
    if index == len(stages):
        out += data
        return len(out) <= limit
    stage = stages[index]
    while True:
        piece = stage.take(data, limit + 1 - len(out))
        data = b""
        if piece and not _push(stages, index + 1, piece, out, limit):
            return False
        if not stage.pending or not piece:
            return True


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


def _too_long(limit: int, answer: _Answer, key: str, *, sent: bool) -> Outcome:
    """A 2xx answer that went on past the size limit: not read to its end, never trusted."""
    message = _server_words(answer, key)
    if sent:
        return Outcome(
            Kind.UNKNOWN,
            http_status=answer.status,
            message=message,
            sentence=f"The PBX's answer was longer than {_size(limit)} and was not read to its "
            "end; the lead may or may not have been added.",
            fix="Nothing to do: it is retried safely with the same lead id.",
        )
    return Outcome(
        Kind.RETRY_LATER,
        retry_reason=RetryReason.SERVER_ERROR,
        http_status=answer.status,
        message=message,
        sentence=f"The server's answer was longer than {_size(limit)} and was not read to "
        "its end (a proxy or a page may be in the way).",
        fix="Try again later; check the server address if it persists.",
    )


def _past_deadline(deadline: float, *, sent: bool) -> Outcome:
    """No whole answer within the call's deadline (a server that trickles or never ends)."""
    took = f"{deadline:g} seconds"
    if sent:
        return Outcome(
            Kind.UNKNOWN,
            sentence=f"The PBX did not finish answering within {took}; the lead may or may "
            "not have been added.",
            fix="Nothing to do: it is retried safely with the same lead id.",
        )
    return Outcome(
        Kind.RETRY_LATER,
        retry_reason=RetryReason.SERVER_ERROR,
        sentence=f"The server did not finish answering within {took}.",
        fix="Try again later; check the server address if it persists.",
    )


#: What a proxy answers to a tunnel it will not make for us: a setting to fix, not an outage.
_PROXY_REFUSALS = {407: "Proxy Authentication Required", 403: "Forbidden"}


def _proxy_refusal(exc: BaseException) -> tuple[int, str] | None:
    """(status, reason phrase) when a proxy refused the CONNECT with 403 or 407, else None."""
    for link in _chain(exc):
        if isinstance(link, httpx.ProxyError | httpcore.ProxyError):
            found = re.match(r"\s*(\d{3})\b\s*(.*)", str(link))
            if found and int(found.group(1)) in _PROXY_REFUSALS:
                code = int(found.group(1))
                phrase = " ".join(found.group(2).split())[:80] or _PROXY_REFUSALS[code]
                return code, phrase
    return None


def _proxy_name(url: str | None) -> str:
    """A proxy's host and port, never a user name or password it may carry."""
    parts = urlsplit(url or "")
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:
        port = None
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_tls_error(exc: BaseException) -> bool:
    for item in _chain(exc):
        if isinstance(item, ssl.SSLError):
            return True
        text = str(item)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL:" in text or "WRONG_VERSION_NUMBER" in text:
            return True
    return False


def _is_refused(exc: BaseException) -> bool:
    for item in _chain(exc):
        if isinstance(item, ConnectionRefusedError):
            return True
        text = str(item).lower()
        if "connection refused" in text or "actively refused" in text or "errno 111" in text:
            return True
    return False


def _is_name_error(exc: BaseException) -> bool:
    for item in _chain(exc):
        if isinstance(item, socket.gaierror):
            return True
        text = str(item).lower()
        if "name or service not known" in text or "nodename nor servname" in text:
            return True
        if "getaddrinfo failed" in text or "temporary failure in name resolution" in text:
            return True
    return False


def _looks_like_html(response: _Answer) -> bool:
    kind = response.headers.get("content-type", "").lower()
    head = response.content[:200].lstrip().lower()
    return "html" in kind or head.startswith((b"<!doctype", b"<html", b"<head", b"<body"))


def _server_words(response: _Answer, key: str) -> str:
    """A short excerpt of a non-JSON answer for the log and the detail view, the key masked
    before it is cut (a cut must not leave half a key)."""
    text = response.text.strip() if response.content else ""
    if _looks_like_html(response):
        title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
        text = title.group(1).strip() if title else re.sub(r"(?s)<[^>]+>", " ", text)
    return redact_text(" ".join(text.split()[:400]), key)[:200]


def _short_json(value: object) -> str:
    """A message that is no text, written as JSON (never failing on depth or odd numbers)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return ""


def _code_of(parsed: Any) -> int | None:
    """The answer's result code, when it is one: a whole number of at most nine digits."""
    code = parsed.get("code") if isinstance(parsed, dict) else None
    if isinstance(code, str):
        text = code.strip()
        digits = text[1:] if text.startswith("-") else text
        code = int(text) if digits.isdigit() and digits.isascii() and len(digits) <= 9 else None
    if isinstance(code, bool) or not isinstance(code, int) or abs(code) >= 10**9:
        return None
    return code


def _classify(response: _Answer, key: str, *, sent: bool = True) -> tuple[Outcome, Any]:
    """Map one HTTP answer to an Outcome (and the parsed JSON body when there is one).
    ``sent``: the call carried a lead (an insert), not a question (a list).

    A body cut at the size limit is never parsed: its start may look like a whole answer."""
    status = response.status
    parsed: Any = None
    if response.complete:
        try:
            parsed = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            parsed = None
    code = _code_of(parsed)
    if isinstance(parsed, dict):
        text = parsed.get("message", "")
        text = text if isinstance(text, str) else _short_json(text)
        message = redact_text(text, key)[:MAX_MESSAGE]
    else:
        message = _server_words(response, key)

    if status in (401, 403):
        return Outcome(
            Kind.BLOCKED,
            block_reason=BlockReason.KEY_REJECTED,
            http_status=status,
            code=code,
            message=message,
            sentence="The PBX rejected the API key.",
            fix="Check the key in the connection settings (it may have been changed or revoked), "
            "and that this computer's address is allowed on the PBX.",
        ), parsed
    if status == 404 or (status in (301, 302, 303, 307, 308)):
        return Outcome(
            Kind.BLOCKED,
            block_reason=BlockReason.WRONG_URL,
            http_status=status,
            message=message,
            sentence="The server does not offer the Noojee Campaign API at this address.",
            fix="Check the server address in the connection settings.",
        ), parsed

    if code is not None:
        entry = codes.describe(code, status)
        return Outcome(
            entry.kind,
            code=code,
            message=message,
            sentence=entry.sentence,
            fix=entry.fix,
            retry_reason=entry.retry,
            retry_after=_retry_after(response),  # only the server's own hint, never one of ours
            http_status=status,
        ), parsed

    # No usable code in the answer.
    if status == 429:
        return Outcome(
            Kind.RETRY_LATER,
            retry_reason=RetryReason.BUSY,
            retry_after=_retry_after(response),
            http_status=status,
            message=message,
            sentence="The PBX asked us to slow down.",
            fix="Nothing to do: leads are sent more slowly for a while.",
        ), parsed
    if status in (502, 503, 504):
        return Outcome(
            Kind.RETRY_LATER,
            retry_reason=RetryReason.MAINTENANCE,
            retry_after=_retry_after(response),
            http_status=status,
            message=message,
            sentence="The PBX is unavailable (probably down for maintenance).",
            fix="Nothing to do: leads stay queued and are sent when it is back.",
        ), parsed
    if status >= 500 or status == 408:
        return Outcome(
            Kind.RETRY_LATER,
            retry_reason=RetryReason.SERVER_ERROR,
            http_status=status,
            message=message,
            sentence=f"The PBX had an internal error (HTTP {status}).",
            fix="Nothing to do: the lead is retried automatically.",
        ), parsed
    if 200 <= status < 300:
        if _looks_like_html(response):
            return Outcome(
                Kind.BLOCKED,
                block_reason=BlockReason.WRONG_URL,
                http_status=status,
                message=message,
                sentence="The server answered with a web page instead of the Noojee API.",
                fix="Check the server address (a login page or proxy may be in the way).",
            ), parsed
        # A 200 we cannot read: the lead may have been inserted. Retrying with the same
        # external id is safe (112/105 then means it was delivered).
        if not sent:  # a list asked for: no lead in it to have been added
            return Outcome(
                Kind.UNKNOWN,
                http_status=status,
                message=message,
                sentence="The server's answer could not be read (a proxy or a page may be in "
                "the way).",
                fix="Try again later; check the server address if it persists.",
            ), parsed
        return Outcome(
            Kind.UNKNOWN,
            http_status=status,
            message=message,
            sentence="The PBX's answer could not be read; the lead may or may not have been added.",
            fix="Nothing to do: it is retried safely with the same lead id.",
        ), parsed
    return Outcome(
        Kind.BLOCKED,
        block_reason=BlockReason.BAD_CONFIG,
        http_status=status,
        message=message,
        sentence=f"The server refused the request (HTTP {status}) without a Noojee answer.",
        fix="Check the server address and connection settings; contact support if it persists.",
    ), parsed


def _retry_after(response: _Answer) -> float | None:
    """The server's ``Retry-After`` in seconds (a number or an HTTP date), at most
    ``MAX_RETRY_AFTER``; None when there is none or it makes no sense (not a number, infinite,
    zero or negative, in the past)."""
    value = response.headers.get("retry-after", "").strip()
    if not value or len(value) > 64:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)
