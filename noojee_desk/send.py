"""``noojee-desk send``: validate a file of leads and deliver it through the outbox, headless."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from noojee_desk.core import logs
from noojee_desk.core.delivery import api, export, locks
from noojee_desk.core.delivery.dispatcher import (
    BatchFinished,
    Event,
    QueueFigures,
)
from noojee_desk.core.delivery.outbox import Outbox
from noojee_desk.core.delivery.policy import RetryTiming
from noojee_desk.core.delivery.records import (
    FINAL_STATES,
    BatchInfo,
    Delivered,
    Lead,
    LeadInput,
    LeadQuery,
    OutboxError,
    State,
    Target,
    storage_problem,
)
from noojee_desk.core.delivery.schema import content_key
from noojee_desk.core.delivery.setup import SetupStopped
from noojee_desk.core.desk import Desk
from noojee_desk.core.flag import Flag
from noojee_desk.core.leads.layouts import (
    FieldKind,
    FieldLayout,
    FieldSpec,
    field_spec,
    layout_from_header,
    make_layout,
    system_field,
)
from noojee_desk.core.leads.mapping import ColumnMapping, apply_mapping, detect_mapping
from noojee_desk.core.leads.spreadsheets import read_file
from noojee_desk.core.leads.validate import (
    LeadCheck,
    ValidationSettings,
    Validator,
    number_rows,
)
from noojee_desk.core.paths import resolve
from noojee_desk.core.profiles import managed as managed_settings
from noojee_desk.core.profiles.secrets import KeyStore, same_address
from noojee_desk.core.profiles.settings import Profile, SettingsStore
from noojee_desk.core.redact import redact_text

KEY_ENV = "NOOJEE_API_KEY"

EXIT_OK = 0
EXIT_SOME_NOT_DELIVERED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 3
#: The batch was stopped: its first answers were the same set-up mistake (fields, mapping).
EXIT_SETUP = 4
#: The queue file cannot be used (damaged, disk full, read-only, I/O error).
EXIT_STORAGE = 5

#: "skipped": the same row (by its content) was delivered to the same campaign before;
#: "duplicate": a 105 after an attempt whose answer was lost: perhaps its own earlier attempt.
STATUSES = ("delivered", "skipped", "rejected", "duplicate", "invalid", "failed", "held", "pending")
_STATUS_OF = {
    State.DELIVERED: "delivered",
    State.REJECTED: "rejected",
    State.DUPLICATE: "duplicate",
    State.FAILED: "failed",
    State.CANCELLED: "failed",
    State.QUEUED: "pending",
    State.SENDING: "pending",
    State.HELD: "held",
}


class UsageError(Exception):
    """A problem with the command line or the configuration: exit status 2."""


@dataclass(slots=True)
class RowResult:
    """What became of one data row of the file."""

    row: int
    status: str
    code: int | None = None
    message: str = ""
    attempts: int = 0
    external_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "attempts": self.attempts,
            "external_id": self.external_id,
        }


@dataclass(slots=True)
class Prepared:
    """The file read, mapped and checked."""

    checks: list[LeadCheck]
    key: str
    header: list[str]
    notes: list[str] = field(default_factory=list)


# -- arguments -----------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _scale(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 100")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exits would skip our exit codes
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="noojee-desk send",
        description=(
            "Validate a file of leads and send it to a Noojee PBX campaign through the same "
            "durable queue as the app. Columns map to template fields by their heading "
            "(any letter case). The API key comes from the NOOJEE_API_KEY environment variable "
            "or from the keyring entry of --profile, never from the command line. Running the "
            "same command again resumes an interrupted run and retries failed leads; a lead "
            "that was delivered is never sent twice."
        ),
        epilog=(
            "exit status: 0 all delivered; 1 some rejected, duplicate, invalid or failed; "
            "2 usage or configuration error; 3 interrupted with leads still queued, or before "
            "--export was written; 4 stopped after the same set-up mistake (fields or "
            "mapping), the rest held; 5 the queue file cannot be used (damaged, disk full, "
            "read-only), or the --export file cannot be written. "
            "Rows whose content was delivered to the same campaign before (an edited file run "
            "again) are skipped and reported 'already delivered on <date>'; --resend sends "
            "them again. One process at a time sends a connection's queue: when the app or "
            "another 'send' has it, that one delivers these leads (it looks for new ones "
            "every half second) and this command waits, reporting each row as the queue "
            "records it, and takes over by itself if the other one ends. Its exit status is "
            "its own rows' as above."
        ),
    )
    parser.add_argument("file", metavar="FILE", help=".csv, .tsv, .txt or .xlsx, header row first")
    parser.add_argument("--server", required=True, metavar="URL", help="the PBX, e.g. https://pbx")
    parser.add_argument("--template", required=True, type=_positive_int, metavar="ID")
    parser.add_argument("--campaign", required=True, type=_positive_int, metavar="ID")
    parser.add_argument("--allocation", required=True, type=_positive_int, metavar="ID")
    parser.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="insert even when the campaign already has a lead with the same phone number",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SOURCE=FIELD",
        help="send column SOURCE as template field FIELD (FIELD empty: do not send it)",
    )
    parser.add_argument(
        "--phone-fields",
        metavar="F1,F2",
        help="the template's phone fields (default: fields named with 'phone' or 'mobile')",
    )
    parser.add_argument(
        "--resend",
        action="store_true",
        help="send rows again that were delivered to this campaign before (with new lead ids; "
        "without --allow-duplicates the PBX refuses those whose phone it has)",
    )
    parser.add_argument("--profile", metavar="NAME", help="the app's connection whose key to use")
    parser.add_argument("--dry-run", action="store_true", help="validate and report; send nothing")
    parser.add_argument("--json", action="store_true", help="one JSON object per row, then totals")
    parser.add_argument("--sheet", metavar="NAME", help="the worksheet of an .xlsx file")
    parser.add_argument(
        "--export",
        metavar="RESULTS",
        help="then write this run's leads with their results to RESULTS (.csv or .xlsx), as "
        "the app's File > Export does; Ctrl+C meanwhile writes no file",
    )
    parser.add_argument("--max-concurrency", type=_positive_int, metavar="N", help="hard cap")
    parser.add_argument("--data-dir", metavar="DIR", help="the folder of the queue and settings")
    parser.add_argument("--ca-bundle", metavar="FILE", help="CA certificates for an on-site PBX")
    # For tests and benchmarks: every retry wait multiplied by this factor.
    parser.add_argument("--retry-scale", type=_scale, default=1.0, help=argparse.SUPPRESS)
    return parser


# -- reading, mapping, checking ------------------------------------------------------------------


def map_columns(
    header: Sequence[str],
    sample: Sequence[Sequence[str]],
    layout: FieldLayout | None,
    saved: dict[str, list[str | None]],
    maps: Sequence[str],
    phone_fields: str | None,
) -> tuple[bool, ColumnMapping, FieldLayout, list[str]]:
    """(whether the first row is a header, where each column goes, the fields it fills, notes).

    The app's own mapping code decides, as in its grid: headings match the template's keys and
    labels (any letter case or word order), phone headings the phone fields, and a mapping saved
    for the same headings is used as it is. ``layout`` is the template's (from the PBX, or as the
    app keeps it); without one, each heading names a field. ``--map`` and ``--phone-fields``
    override.
    """
    names = [" ".join(str(cell).split()) for cell in header]
    layout = layout if layout is not None else layout_from_header(names)
    if phone_fields is not None:
        layout = _with_phone_fields(layout, phone_fields)
    has_header, mapping = detect_mapping(names, layout, saved, sample)
    by_heading: dict[str, int] = {}
    for index, name in enumerate(names):
        if name:
            by_heading.setdefault(name.casefold(), index)
    extra: list[FieldSpec] = []
    for item in maps:
        source, sep, target = item.partition("=")
        source, target = " ".join(source.split()), target.strip()
        if not sep or not source:
            raise UsageError(f"--map {item!r}: write it as SOURCE=FIELD, e.g. --map Mobile=Phone1")
        column = by_heading.get(source.casefold())
        if column is None:
            shown = ", ".join(n for n in names if n) or "none"
            raise UsageError(f"--map {item!r}: no column is called {source!r} (columns: {shown})")
        field_name = system_field(target) if target else None
        if target and field_name is None:
            spec = next((f for f in layout.fields if f.name.casefold() == target.casefold()), None)
            if spec is None:
                spec = field_spec(target)
                extra.append(spec)
            field_name = spec.name
        mapping = mapping.with_target(column, field_name)
    if extra:
        layout = make_layout([*layout.fields, *extra], layout.origin, confirmed=layout.confirmed)
    notes = [
        f"column {name!r} is not sent: no field of the template matches it "
        f"(send it with --map '{name}=FIELD')"
        for index, name in enumerate(names)
        if name and mapping.target(index) is None
    ]
    if not any(target in layout.phone_fields for target in mapping.targets):
        phones = ", ".join(layout.phone_fields) or "none"
        raise UsageError(
            f"No column goes to a phone field (the template's phone fields: {phones}); the PBX "
            "refuses a lead without one. Name them with --phone-fields, or send a column to "
            "one with --map."
        )
    return has_header, mapping, layout, notes


def _with_phone_fields(layout: FieldLayout, phone_fields: str) -> FieldLayout:
    """``layout`` with exactly the fields named in ``--phone-fields`` as its phone fields."""
    wanted = {p.strip().casefold(): p.strip() for p in phone_fields.split(",") if p.strip()}
    missing = [p for key, p in wanted.items() if key not in {n.casefold() for n in layout.names}]
    if missing:
        raise UsageError(
            f"--phone-fields: no column is sent as {', '.join(missing)} "
            f"(fields: {', '.join(layout.names) or 'none'})"
        )
    specs = [
        replace(spec, kind=FieldKind.PHONE if spec.name.casefold() in wanted else FieldKind.TEXT)
        for spec in layout.fields
    ]
    return FieldLayout(tuple(specs), layout.origin, confirmed=True)


def describe_mapping(header: Sequence[str], mapping: ColumnMapping, layout: FieldLayout) -> str:
    """One line per column: where it goes, marked when it is a phone field."""
    lines = []
    for index, heading in enumerate(header):
        target = mapping.target(index)
        shown = heading or f"column {index + 1}"
        if target is None:
            lines.append(f"  {shown} -> (not sent)")
        else:
            mark = " (phone field)" if target in layout.phone_fields else ""
            lines.append(f"  {shown} -> {target}{mark}")
    return "\n".join(lines)


def _file_digest(path: Path) -> hashlib._Hash:
    """The SHA-256 of a file's content, read a megabyte at a time (never held whole)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest


def _batch_key(digest: hashlib._Hash, args: argparse.Namespace, server: str) -> str:
    """Identifies one send of one file with one set of options (to resume it, not resend it):
    ``digest`` is the file's content's (see ``_file_digest``)."""
    options = [
        server,
        args.template,
        args.campaign,
        args.allocation,
        args.allow_duplicates,
        sorted(args.map),
        args.phone_fields,
        args.sheet,
    ]
    digest.update(json.dumps(options, default=str).encode("utf-8"))
    return "send:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class DeskSettings:
    """What ``send`` takes from the desk: checking rules, the template's layout, saved mappings."""

    validation: ValidationSettings
    layout: FieldLayout | None
    mappings: dict[str, list[str | None]]


def prepare(
    args: argparse.Namespace,
    server: str,
    settings: DeskSettings,
    recent: Callable[..., Any] | None,
) -> Prepared:
    """The file read, mapped and checked; a file too big for the memory free is a usage error
    (raised once the rows read so far are let go), never a traceback."""
    try:
        return _prepare(args, server, settings, recent)
    except MemoryError:
        pass
    raise UsageError(
        f"{args.file}: it is too big to check in the memory this computer has free. "
        "Split it into smaller files and send them one by one."
    )


def _prepare(
    args: argparse.Namespace,
    server: str,
    settings: DeskSettings,
    recent: Callable[..., Any] | None,
) -> Prepared:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{args.file}: no such file")
    table = read_file(path, sheet=args.sheet)  # within its caps, or refused with why
    if len(table.rows) < 2:
        why = " ".join(p.message for p in table.problems) or "it has no rows below the header."
        raise UsageError(f"{args.file}: nothing to send: {why}")
    try:
        digest = _file_digest(path)
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot be read ({exc.strerror or exc})") from exc
    header = table.rows[0]
    has_header, mapping, layout, notes = map_columns(
        header, table.rows[1:21], settings.layout, settings.mappings, args.map, args.phone_fields
    )
    body = table.rows[1:] if has_header else table.rows
    # Each row is named by its row in the file as a spreadsheet shows it (the header is row 1,
    # blank rows count), as the app's grid numbers it.
    numbers = table.row_numbers()
    records = apply_mapping(body, mapping)
    used = make_layout(spec for spec in layout.fields if spec.name in mapping.fields)
    validator = Validator(used, settings.validation, recent)
    checks = validator.validate_rows(records, first_row=1)
    number_rows(checks, numbers[1:] if has_header else numbers)
    notes += [
        f"row {p.row}: {p.message}" if p.row else p.message
        for p in table.problems
        if not (has_header and p.row == numbers[0])
    ]
    shown = list(header) if has_header else [f"column {i + 1}" for i in range(len(header))]
    mapped = "mapping:\n" + describe_mapping(shown, mapping, layout)
    return Prepared(checks, _batch_key(digest, args, server), list(header), [mapped, *notes])


# -- the key -------------------------------------------------------------------------------------


async def _api_key(profile: str | None, server: str) -> str:
    key = os.environ.get(KEY_ENV, "").strip()
    if key:
        return key
    if not profile:
        raise UsageError(
            f"No API key: set the {KEY_ENV} environment variable, or pass --profile with the "
            "name of a connection whose key the app keeps in the keyring."
        )
    from noojee_desk.core.profiles.secrets import KeyringUnavailable, KeyStore

    try:
        stored = await KeyStore().get(profile, server=server)
    except KeyringUnavailable as exc:
        raise UsageError(f"{exc} Or set the {KEY_ENV} environment variable.") from exc
    if not stored:
        raise UsageError(
            f"The keyring holds no API key for the connection {profile!r} at {server} (a key is "
            "used only for the server address it was saved for): save it in the app, "
            f"or set the {KEY_ENV} environment variable."
        )
    return stored


# -- reporting -----------------------------------------------------------------------------------


def _lead_result(lead: Lead, app_opens: bool = False) -> RowResult:
    """The row of ``lead``; ``app_opens``: its queue is one of the app's connections (so the
    app sends it too), not a queue only ``send`` opens."""
    status = _STATUS_OF[lead.state]
    if lead.state is State.CANCELLED:
        message = "Cancelled in the app; not sent."
    else:
        message = lead.sentence or lead.last_message
        shows_server = lead.state is not State.DELIVERED and lead.last_code is not None
        if shows_server and lead.last_message and lead.last_message not in message:
            message = f"{message} (server: {lead.last_code} {lead.last_message})".strip()
        if not message and status == "pending":
            # A queue that is none of the app's connections (named after the server, or a
            # --profile the app does not have) is sent by `send` alone: the app never opens it.
            by = "Noojee Desk or 'send' run" if app_opens else "'send' runs"
            message = f"Still queued: it is sent when {by} again."
    return RowResult(
        row=lead.row or 0,
        status=status,
        code=lead.last_code,
        message=redact_text(message),
        attempts=lead.attempts,
        external_id=lead.external_id,
    )


def _invalid(check: LeadCheck) -> RowResult:
    message = "; ".join(p.message for p in check.errors)
    return RowResult(check.row, "invalid", message=message)


def _already(delivered: Delivered) -> RowResult:
    when = "before"
    if delivered.delivered_at is not None:
        when = "on " + time.strftime("%Y-%m-%d %H:%M", time.localtime(delivered.delivered_at))
    return RowResult(
        0,
        "skipped",
        message=f"Already delivered {when} (lead {delivered.external_id}); not sent again "
        "(--resend sends it again).",
        external_id=delivered.external_id,
    )


def collect(
    prepared: Prepared,
    outbox: Outbox | None,
    batch: BatchInfo | None,
    *,
    profile: str | None = None,
    target: Target | None = None,
    app_opens: bool = False,
) -> list[RowResult]:
    """One result per row: its lead in ``batch``, else (given ``profile`` and ``target``) an
    earlier delivery of the same content, else invalid or pending (``app_opens``: the queue is
    one of the app's connections, see ``_lead_result``)."""
    by_row: dict[int, Lead] = {}
    if outbox is not None and batch is not None:
        by_row = _match_leads(
            prepared.checks, list(outbox.iter_leads(LeadQuery(batch_id=batch.id)))
        )
    earlier: dict[int, Delivered] = {}
    if outbox is not None and profile is not None and target is not None:
        others = [c for c in prepared.checks if c.ok and c.row not in by_row]
        matches = outbox.delivered_matches(profile, target, [c.fields for c in others])
        earlier = {c.row: m for c, m in zip(others, matches, strict=True) if m is not None}
    results = []
    for check in prepared.checks:
        if not check.ok:
            results.append(_invalid(check))
        elif check.row in by_row:
            lead_result = _lead_result(by_row[check.row], app_opens)
            results.append(replace(lead_result, row=check.row))
        elif check.row in earlier:
            results.append(replace(_already(earlier[check.row]), row=check.row))
        else:
            warnings = "; ".join(p.message for p in check.warnings)
            results.append(RowResult(check.row, "pending", message=warnings or "Valid."))
    return results


def _match_leads(checks: Sequence[LeadCheck], leads: list[Lead]) -> dict[int, Lead]:
    """Each valid row's lead in its batch: the lead queued from that row when its content is the
    row's, else the first unmatched lead with the row's content. A batch queued by an older
    version numbered its rows from the first row under the header; matching by content keeps
    each row's report its own whatever the numbering."""

    def key(fields: Mapping[str, object]) -> str:
        return content_key({str(k): "" if v is None else str(v) for k, v in fields.items()})

    by_row = {lead.row or 0: lead for lead in leads}
    by_content: dict[str, list[Lead]] = {}
    for one in leads:
        by_content.setdefault(key(one.fields), []).append(one)
    taken: set[int] = set()
    matched: dict[int, Lead] = {}
    valid = [c for c in checks if c.ok]
    keys = {c.row: key(c.fields) for c in valid}
    for check in valid:  # first the rows whose own lead has their content
        own = by_row.get(check.row)
        if own is not None and key(own.fields) == keys[check.row]:
            matched[check.row] = own
            taken.add(own.id)
    for check in valid:
        if check.row in matched:
            continue
        same = next((x for x in by_content.get(keys[check.row], ()) if x.id not in taken), None)
        if same is not None:
            matched[check.row] = same
            taken.add(same.id)
    return matched


def _summary(results: list[RowResult], seconds: float, batch: BatchInfo | None) -> dict[str, Any]:
    counts = {status: 0 for status in STATUSES}
    for result in results:
        counts[result.status] += 1
    summary: dict[str, Any] = {"rows": len(results), **counts, "seconds": round(seconds, 3)}
    if batch is not None:
        summary["batch"] = batch.id
    return summary


class ExportProgress:
    """How far ``--export`` is, shown as the sending is: one updating line on a terminal, a
    line every tenth of the way on anything else, nothing with ``--json``. Called from the
    export's worker thread with (leads written, leads in all); says False once ``cancel`` was
    called (Ctrl+C), and the export then stops and leaves no file."""

    def __init__(self, stream: IO[str] | None, path: Path) -> None:
        self.stream = stream
        self.name = path.name
        self.tty = stream is not None and bool(getattr(stream, "isatty", lambda: False)())
        self.cancelled = False
        self._shown = -1.0
        self._on_line = False  # the terminal's line shows the export

    def cancel(self) -> None:
        self.cancelled = True  # a plain flag: set from a signal handler, read by the worker

    def __call__(self, done: int, total: int) -> bool:
        if self.stream is not None and not self.cancelled:
            fraction = done / total if total else 1.0
            text = f"Exporting to {self.name}: {done:,} of {total:,} leads"
            if self.tty:
                self.stream.write(f"\r{text}\x1b[K")
                self.stream.flush()
                self._on_line = True
            elif fraction - self._shown >= 0.1 or (fraction >= 1.0 > self._shown):
                self._shown = fraction
                self.stream.write(text + "\n")
                self.stream.flush()
        return not self.cancelled

    def close(self) -> None:
        if self._on_line and self.stream is not None:
            self.stream.write("\n")  # the updating line stays, and what follows goes below it
            self.stream.flush()
            self._on_line = False


class Progress:
    """A progress bar on a terminal; on anything else, a line now and then."""

    def __init__(self, stream: IO[str], total: int) -> None:
        self.stream = stream
        self.total = max(1, total)
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._shown = -1.0
        self._last_line = ""

    def update(self, counts: dict[str, int], figures: QueueFigures | None) -> None:
        done = sum(counts.get(s.value, 0) for s in FINAL_STATES)
        fraction = min(1.0, done / self.total)
        parts = [f"{done}/{self.total} done"]
        for state in ("delivered", "rejected", "duplicate", "failed"):
            if counts.get(state):
                parts.append(f"{counts[state]} {state}")
        if figures is not None:
            parts.append(f"{figures.rate_per_s:.1f}/s")
            if figures.paused_reason:
                parts.append(f"paused: {figures.paused_reason}")
            elif figures.server_state == "offline":
                parts.append("PBX unreachable, retrying")
        text = ", ".join(parts)
        if self.tty:
            width = 30
            filled = int(fraction * width)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {text}\x1b[K")
            self.stream.flush()
        elif fraction - self._shown >= 0.1 or (text != self._last_line and fraction >= 1.0):
            self._shown = fraction
            self._last_line = text
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _print_readable(
    out: IO[str],
    results: list[RowResult],
    summary: dict[str, Any],
    dry_run: bool,
    app_profile: bool = False,
) -> None:
    counts = ", ".join(f"{summary[s]} {s}" for s in STATUSES if summary[s])
    verb = "Checked" if dry_run else "Done"
    out.write(f"{verb}: {summary['rows']} rows in {summary['seconds']:.1f} s: {counts}.\n")
    problems = [
        r for r in results if r.status in ("rejected", "duplicate", "invalid", "failed", "skipped")
    ]
    for result in problems[:20]:
        code = f" [{result.code}]" if result.code is not None else ""
        out.write(f"  row {result.row}: {result.status}{code}: {result.message}\n")
    if len(problems) > 20:
        out.write(f"  ... and {len(problems) - 20} more (use --json for every row).\n")
    pending = summary["pending"]
    if pending and not dry_run:
        also = " (or open Noojee Desk on that connection)" if app_profile else ""
        out.write(
            f"{pending} leads are still queued; run the same command again{also} to send them.\n"
        )


# -- sending -------------------------------------------------------------------------------------


@dataclass(slots=True)
class SendResult:
    results: list[RowResult]
    batch: BatchInfo | None
    interrupted: bool = False
    attention: str = ""
    setup: str = ""  # the batch was stopped: its first answers were the same set-up mistake
    app_opens: bool = False  # the queue is one of the app's connections: the app sends it too


def _scaled(timing: RetryTiming, factor: float) -> RetryTiming:
    if factor == 1.0:
        return timing
    changes: dict[str, Any] = {}
    for item in fields(timing):
        value = getattr(timing, item.name)
        if isinstance(value, tuple):  # a range: (low, high)
            changes[item.name] = tuple(v * factor for v in value)
        elif isinstance(value, float):
            changes[item.name] = value * factor
    return replace(timing, **changes)


async def _send(
    args: argparse.Namespace,
    prepared: Prepared,
    desk: Desk,
    profile: str,
    client: api.NoojeeClient,
    err: IO[str],
) -> SendResult:
    outbox = desk.outbox
    target = Target(args.template, args.campaign, args.allocation)
    valid = [check for check in prepared.checks if check.ok]
    # One atomic step: an open batch of this file is resumed, a finished one retried, else the
    # rows not delivered before are queued (two runs started together queue the file once).
    queued = outbox.queue_once(
        profile,
        target,
        [LeadInput(check.fields, check.phones, check.row) for check in valid],
        allow_duplicates=args.allow_duplicates,
        source=f"send {Path(args.file).name}",
        key=prepared.key,
        skip_delivered=not args.resend,
        reuse_finished=not args.resend,
    )
    batch = queued.batch
    if queued.how == "finished":
        # The same file with the same options ran to the end before: retry what failed.
        failed = outbox.leads(LeadQuery(batch_id=batch.id, states=frozenset({State.FAILED})))
        outbox.requeue(lead.id for lead in failed)
        if not args.json:
            again = f"{len(failed)} failed leads are sent again" if failed else "nothing to send"
            err.write(f"This file was sent before (batch {batch.id}): {again}.\n")
    elif queued.how == "open" and not args.json:
        err.write(f"Resuming the earlier run of this file (batch {batch.id}).\n")
    elif queued.skipped and not args.json:
        err.write(
            f"{len(queued.skipped)} rows were delivered to this campaign before and are not "
            "sent again (--resend sends them).\n"
        )
    # Only a connection the app has is ever opened (and sent) by the app.
    outcome = SendResult([], batch, app_opens=desk.settings.profile(profile) is not None)

    def results() -> list[RowResult]:
        return collect(
            prepared, outbox, batch, profile=profile, target=target, app_opens=outcome.app_opens
        )

    if outbox.counts(batch_id=batch.id).open == 0:
        outcome.results = results()
        return outcome

    loop = asyncio.get_running_loop()
    done = Flag()
    interrupted = Flag()
    dispatcher = desk.make_dispatcher(profile, client, args.max_concurrency)
    progress = None if args.json else Progress(err, batch.total)
    told_busy = False

    def look() -> None:
        """The batch's leads as the queue records them, whoever sends them."""
        counts = outbox.counts(batch_id=batch.id)
        if counts[State.QUEUED] + counts[State.SENDING] == 0:
            done.set()  # the rest (if any) is held in the app: nothing more to send
        if progress is not None:
            progress.update(counts.as_dict(), None)

    def on_event(event: Event) -> None:
        nonlocal told_busy
        if isinstance(event, BatchFinished) and event.batch_id == batch.id:
            done.set()
        elif isinstance(event, SetupStopped) and event.batch_id == batch.id:
            outcome.setup = f"{event.sentence} {event.fix}"
            done.set()
        elif isinstance(event, QueueFigures):
            if event.busy_with and not told_busy:
                told_busy = True
                # stderr, with --json too: who has the queue is worth knowing
                err.write(
                    f"The queue of {profile!r} is being sent by {event.busy_with}: it "
                    "delivers these leads; waiting for them (and taking over if it "
                    "ends).\n"
                )
            if event.needs_attention:
                outcome.attention = event.paused_reason or "The PBX refused the settings."
                if event.fix:
                    outcome.attention += " " + event.fix
                done.set()
            counts = outbox.counts(batch_id=batch.id)
            if counts[State.QUEUED] + counts[State.SENDING] == 0:
                done.set()  # the rest (if any) is held in the app: nothing more to send
            if progress is not None:
                progress.update(counts.as_dict(), event)

    dispatcher.subscribe(on_event)

    async def watch() -> None:
        """While another process sends the queue, this one hears no answers: it looks."""
        while not done.is_set():
            await asyncio.sleep(0.5)
            if dispatcher.busy_with is not None:
                look()

    def on_signal(*_: object) -> None:
        loop.call_soon_threadsafe(interrupted.set)
        loop.call_soon_threadsafe(done.set)

    previous_handlers = {}
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if signum is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous_handlers[signum] = signal.signal(signum, on_signal)
    runner = asyncio.ensure_future(dispatcher.run(wait_for_lock=True))
    watcher = asyncio.ensure_future(watch())
    try:
        waiter = done.future()
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if runner.done():
            runner.result()  # a bug: raise it
    finally:
        watcher.cancel()
        await dispatcher.stop(grace=2.0)
        with contextlib.suppress(BaseException):
            await runner
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        if progress is not None:
            progress.update(outbox.counts(batch_id=batch.id).as_dict(), None)
            progress.close()
    outcome.interrupted = interrupted.is_set()
    outcome.results = results()
    return outcome


def _export_path(args: argparse.Namespace) -> Path | None:
    """Where ``--export`` writes (None without it); a UsageError before anything is sent."""
    if not args.export:
        return None
    path = Path(args.export)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise UsageError(f"--export {args.export}: name a .csv or .xlsx file.")
    if args.dry_run:
        raise UsageError("--export writes the results of a run; a dry run sends nothing.")
    if path.is_dir():
        raise UsageError(f"--export {args.export} is a folder: name the file to write.")
    return path


async def _export(
    desk: Desk, batch: BatchInfo, path: Path, progress: ExportProgress, err: IO[str]
) -> int:
    """``--export``: the batch's leads and their results written to ``path`` by a worker (a
    file written whole or not at all); the exit status it adds (EXIT_OK when written)."""
    outbox_path = desk.paths.outbox
    query = LeadQuery(batch_id=batch.id)

    def write() -> int:
        with Outbox(outbox_path) as outbox:  # this thread's own connection
            if path.suffix.lower() == ".xlsx":
                return export.write_xlsx(outbox, path, query, progress)
            return export.write_csv(outbox, path, query, progress)

    try:
        count = await asyncio.get_running_loop().run_in_executor(None, write)
    except export.ExportCancelled:
        progress.close()
        err.write(f"Export cancelled: {path} was not written.\n")
        return EXIT_INTERRUPTED
    except OSError as exc:
        progress.close()
        err.write(
            f"The results could not be written to {path} ({exc.strerror or exc}). Choose "
            "another folder or free some disk space, then run the same command again: nothing "
            "is sent twice.\n"
        )
        return EXIT_STORAGE
    progress.close()
    err.write(f"Exported {count:,} leads to {path}.\n")
    return EXIT_OK


async def _run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    started = time.monotonic()
    export_to = _export_path(args)
    try:
        server = api.normalise_base_url(args.server)
    except api.ConfigError as exc:
        raise UsageError(str(exc)) from exc
    paths = resolve(args.data_dir)
    managed = managed_settings.load()  # the checking rules an administrator set, if any
    if managed.problem:
        print(managed.problem, file=err)
    store = SettingsStore(paths.settings, managed.managed)
    timing = _scaled(RetryTiming(), args.retry_scale)
    desk = Desk(paths, store, KeyStore(), timing=timing, managed=managed)
    if store.load_warning and not store.read_only:  # damaged or unreadable: rules unknown
        raise UsageError(
            f"{store.load_warning} Nothing was sent; check the settings, then run again."
        )
    chosen = desk.settings.profile(args.profile) if args.profile else None
    if chosen is not None and not chosen.demo and not same_address(chosen.server_url, server):
        # Its queue is sent to its own PBX: leads for another one must not go into it.
        raise UsageError(
            f"--profile {args.profile!r} is the connection to {chosen.server_url}, but --server "
            f"names {args.server}. Give the same address, or leave out --profile."
        )
    ca_bundle = args.ca_bundle or (chosen.ca_bundle if chosen is not None else "")
    adhoc = Profile(args.profile or f"send {server}", server_url=server, ca_bundle=ca_bundle)
    client: api.NoojeeClient | None = None
    try:
        if args.dry_run:
            key = os.environ.get(KEY_ENV, "").strip()  # a dry run asks the PBX only when it can
        else:
            key = await _api_key(args.profile, args.server)
        if key:
            try:
                client = desk.make_client(adhoc, key)
            except api.ConfigError as exc:
                raise UsageError(str(exc)) from exc
        # The app's stored layout of this server's template, whichever way its address was typed.
        layout_profile = chosen or next(
            (p for p in desk.settings.profiles if same_address(p.server_url, server)), adhoc
        )
        if client is not None:
            learnt = await desk.learn_layout(args.template, client, layout_profile)
            if learnt.needs_look and args.phone_fields is None and not args.json:
                guessed = ", ".join(learnt.layout.phone_fields) or "none"
                err.write(
                    f"note: {len(learnt.layout.fields)} fields read from the PBX; it does not say "
                    f"which it dials. Taken for phone fields from their names: {guessed} (name "
                    "them with --phone-fields if that is wrong).\n"
                )
            elif learnt.message and not args.json:
                err.write(f"note: {learnt.message}\n")
            layout = learnt.layout if learnt.known else None
        else:
            layout = desk.stored_layout(args.template, layout_profile)
        settings = DeskSettings(
            ValidationSettings.of(desk.settings, chosen), layout, dict(desk.settings.mappings)
        )
        recent = None
        if not args.dry_run or paths.outbox.exists():
            paths.ensure()
            desk.open_outbox()  # an OutboxError is reported by main()
            recent = desk.recent_phones
        prepared = prepare(args, server, settings, recent)
        if not args.json:
            for note in prepared.notes:
                err.write(f"note: {note}\n")
        if args.dry_run:
            results = collect(prepared, None, None)
            return _report(out, results, started, None, args, interrupted=False)
        assert client is not None  # a real run has a key, or _api_key raised
        exporting = None
        if export_to is not None:
            exporting = ExportProgress(None if args.json else err, export_to)
        # Ctrl+C while queueing and sending stops those (the leads stay queued); from the end
        # of the sending it cancels the export instead.
        outcome = await _send(args, prepared, desk, adhoc.name, client, err)
        with _cancels_on_signal(exporting):
            if outcome.attention:
                err.write(f"Needs attention: {outcome.attention} The leads stay queued.\n")
            if outcome.setup:
                err.write(f"Stopped: {outcome.setup}\n")
            code = _report(
                out,
                outcome.results,
                started,
                outcome.batch,
                args,
                outcome.interrupted,
                app_opens=outcome.app_opens,
            )
            if exporting is not None and export_to is not None and outcome.batch is not None:
                if outcome.interrupted:
                    err.write(f"Interrupted: the results were not exported to {export_to}.\n")
                else:
                    exported = await _export(desk, outcome.batch, export_to, exporting, err)
                    if exported != EXIT_OK:
                        return exported
        if outcome.setup:
            return EXIT_SETUP
        return EXIT_CONFIG if outcome.attention else code
    finally:
        if client is not None:
            await client.aclose()
        await desk.close()


@contextlib.contextmanager
def _cancels_on_signal(progress: ExportProgress | None) -> Iterator[None]:
    """Ctrl+C (or SIGTERM) cancels the export, from the end of the sending (which has its own
    handling) to the end of the export; without an export, nothing changes."""
    if progress is None:
        yield
        return
    previous = {}
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if signum is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[signum] = signal.signal(signum, lambda *_: progress.cancel())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _report(
    out: IO[str],
    results: list[RowResult],
    started: float,
    batch: BatchInfo | None,
    args: argparse.Namespace,
    interrupted: bool,
    *,
    app_opens: bool = False,
) -> int:
    summary = _summary(results, time.monotonic() - started, batch)
    if args.json:
        for result in results:
            out.write(json.dumps(result.as_json(), ensure_ascii=True) + "\n")
        out.write(json.dumps({"summary": summary}, ensure_ascii=True) + "\n")
    else:
        _print_readable(out, results, summary, args.dry_run, app_opens)
    out.flush()
    if summary["pending"] and not args.dry_run:
        return EXIT_INTERRUPTED if interrupted else EXIT_SOME_NOT_DELIVERED
    if summary["rejected"] or summary["duplicate"] or summary["invalid"] or summary["failed"]:
        return EXIT_SOME_NOT_DELIVERED
    return EXIT_OK


def main(argv: list[str], *, log_to_file: bool = False) -> int:
    """Run ``noojee-desk send``; returns the exit status. ``log_to_file`` (the command): the
    log records go to the data folder's log file, redacted, as the app's do; never to the
    terminal, where Python's last resort would print them unredacted, tracebacks and all,
    beside the lines this command says itself."""
    out, err = sys.stdout, sys.stderr
    for stream in (out, err):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        err.write(f"{exc}\n")
        return EXIT_CONFIG
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    locks.PROGRAM = "'noojee-desk send'"  # who holds a queue, as others are told
    if log_to_file:
        logs.setup(resolve(args.data_dir).log_file)
    try:
        return asyncio.run(_run(args, out, err))
    except UsageError as exc:
        err.write(f"noojee-desk send: {exc}\n")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        err.write("Interrupted; unsent leads stay queued.\n")
        return EXIT_INTERRUPTED
    except (sqlite3.Error, OutboxError) as exc:
        # The queue file: damaged, full, read-only, an I/O error. A clear line, never a traceback.
        try:
            path: Path | str = resolve(args.data_dir).outbox
        except Exception:
            path = ""
        problem = storage_problem(exc, path)
        err.write(
            f"noojee-desk send: {' '.join(p for p in (problem.sentence, problem.fix) if p)}\n"
        )
        return EXIT_STORAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], log_to_file=True))
