"""What became of one insert call: delivered, rejected, retry later, unknown, or blocked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    DELIVERED = "delivered"  # the server answered code 0
    REJECTED = "rejected"  # final: the server refused this lead for a reason of its data
    RETRY_LATER = "retry_later"  # not inserted; the server is busy (109) or failing (103/5xx/down)
    UNKNOWN = "unknown"  # sent, but no answer came: the lead may or may not be inserted
    BLOCKED = "blocked"  # a person must act (key rejected, wrong URL, TLS): stop the queue


class RetryReason(Enum):
    BUSY = "busy"  # 109: too many concurrent requests
    SERVER_ERROR = "server_error"  # 103 or a 5xx, or an unknown code
    OFFLINE = "offline"  # connection refused, no route, DNS failure while it used to work
    MAINTENANCE = "maintenance"  # 502/503/504 from a proxy in front of the PBX


class BlockReason(Enum):
    KEY_REJECTED = "key_rejected"
    WRONG_URL = "wrong_url"
    TLS = "tls"
    UNKNOWN_HOST = "unknown_host"
    BAD_CONFIG = "bad_config"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One insert attempt's result; ``message`` is the server's text, ``sentence`` ours."""

    kind: Kind
    code: int | None = None
    message: str = ""
    sentence: str = ""
    fix: str = ""
    retry_reason: RetryReason | None = None
    block_reason: BlockReason | None = None
    retry_after: float | None = None  # suggested delay in seconds for RETRY_LATER
    http_status: int | None = None
    latency: float = 0.0  # seconds from sending the request to the answer (or the failure)
    #: Seconds from the request's last byte written to the answer's headers read: the call's
    #: time away from us (the network and the server), without our own work on either side.
    #: None when not timed (no answer, or a client that cannot tell).
    on_wire: float | None = None

    @property
    def no_answer(self) -> bool:
        """Nothing came back from the PBX: refused, unreachable, reset, timed out, or the proxy
        in front of it says it is down. (A code or an HTTP error means the PBX answers.)"""
        if self.retry_reason in (RetryReason.OFFLINE, RetryReason.MAINTENANCE):
            return True
        return self.kind is Kind.UNKNOWN and self.http_status is None and self.code is None

    def describe(self) -> str:
        """One line for a person: our sentence, then the server's own words when they add any."""
        text = self.sentence or self.message or self.kind.value
        if self.code is not None and self.message and self.message not in text:
            text = f"{text} (server: {self.code} {self.message})"
        return text
