"""The emulator over real HTTP/1.1 on 127.0.0.1 (asyncio + h11), in a thread, and as a command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Self, TypeVar
from urllib.parse import unquote_to_bytes

import h11

from noojee_desk.sim.data import DEMO_API_KEY
from noojee_desk.sim.emulator import MAX_BODY, ConnectionDropped, Emulator, html_error
from noojee_desk.sim.store import StateFile, StateFileError

T = TypeVar("T")
log = logging.getLogger(__name__)
_READ_SIZE = 65536


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Conn:
    """One client connection: its task and writer, and whether a request is being handled."""

    __slots__ = ("busy", "sock", "task", "writer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.busy = False


class SimServer:
    """Serves an Emulator over HTTP/1.1 with keep-alive. ``stop()`` then ``start()`` reopens the
    same port with the same emulator; the emulator going ``down`` closes the port until it is up.
    """

    def __init__(
        self,
        emulator: Emulator,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_remote: bool = False,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"the emulator only listens on this computer (127.0.0.1), not on {host!r}"
            )
        self.emulator = emulator
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._conns: dict[int, _Conn] = {}
        self._wanted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._up_timer: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (the port is known after ``start()``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        """Listen (again) on the host and port; a first start on port 0 picks a free port."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self.emulator.add_down_listener(self._on_down_changed)
        self._wanted = True
        async with self._lock:
            await self._listen()

    async def stop(self) -> None:
        """Stop listening and cut every open connection; the emulator keeps its state."""
        self._wanted = False
        if self._up_timer is not None:
            self._up_timer.cancel()
            self._up_timer = None
        async with self._lock:
            await self._go_offline(graceful_idle=False)

    async def close(self) -> None:
        """``stop()``, and stop following the emulator's ``down`` switch."""
        await self.stop()
        self.emulator.remove_down_listener(self._on_down_changed)
        self._loop = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _listen(self) -> None:
        # Our own accepting rather than asyncio.Server: closing an asyncio.Server (or cancelling
        # sock_accept) just as a connection arrives leaks that socket on Python 3.11.
        if self._listener is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family, backlog=128)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(listener.fileno(), self._on_acceptable, listener)
        except NotImplementedError:  # the Windows proactor loop has no add_reader
            self._acceptor = loop.create_task(self._accept_loop(listener))

    async def _go_offline(self, *, graceful_idle: bool) -> None:
        listener, self._listener = self._listener, None
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.cancel()
            await asyncio.gather(acceptor, return_exceptions=True)
        elif listener is not None:
            asyncio.get_running_loop().remove_reader(listener.fileno())
        if listener is not None:
            listener.close()
        tasks = []
        for conn in list(self._conns.values()):
            if conn.writer is None:
                conn.sock.close()  # its task may never have started
            elif graceful_idle and not conn.busy:
                conn.writer.close()  # lets an answer already written reach the client
            else:
                conn.writer.transport.abort()
            if conn.task is not None:
                conn.task.cancel()
                tasks.append(conn.task)
        self._conns.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- following the emulator's maintenance switch ------------------------------------------

    def _on_down_changed(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._apply_down)

    def _apply_down(self) -> None:
        if self._up_timer is not None:
            self._up_timer.cancel()
            self._up_timer = None
        if not self._wanted or self._loop is None:
            return
        task = self._loop.create_task(self._reconcile())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        remaining = self.emulator.down_remaining
        if remaining is not None:
            self._up_timer = self._loop.call_later(remaining + 0.001, self._apply_down)

    async def _reconcile(self) -> None:
        """Listen when wanted and the emulator is up, else close the port (one change at a time)."""
        async with self._lock:
            if self._wanted and not self.emulator.down:
                try:
                    await self._listen()
                except OSError as exc:
                    log.error("cannot listen again on %s: %s", self.url, exc)
            else:
                await self._go_offline(graceful_idle=True)

    # -- one connection -----------------------------------------------------------------------

    def _on_acceptable(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again on the next wake-up
                log.warning("accept failed on %s: %s", self.url, exc)
                return
            self._start_connection(sock)

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:
                log.warning("accept failed on %s: %s", self.url, exc)
                await asyncio.sleep(0.1)
                continue
            self._start_connection(sock)

    def _start_connection(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        conn = _Conn(sock)
        self._conns[id(conn)] = conn
        conn.task = asyncio.get_running_loop().create_task(self._handle(conn, sock))

    async def _handle(self, conn: _Conn, sock: socket.socket) -> None:
        key = id(conn)
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            self._conns.pop(key, None)
            raise
        conn.writer = writer
        h11conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            await self._serve(conn, h11conn, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.transport.abort()
        except h11.RemoteProtocolError as exc:
            await self._send_bad_request(h11conn, writer, exc)
        finally:
            self._conns.pop(key, None)
            if not writer.is_closing():
                writer.close()

    async def _serve(
        self,
        conn: _Conn,
        h11conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        while True:
            event = await _next_event(h11conn, reader)
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
            conn.busy = True
            body = bytearray()
            too_big = False
            while True:
                part = await _next_event(h11conn, reader)
                if isinstance(part, h11.Data):
                    if len(body) + len(part.data) > MAX_BODY:
                        too_big = True
                    else:
                        body += part.data
                elif isinstance(part, h11.EndOfMessage):
                    break
                elif isinstance(part, h11.ConnectionClosed):
                    return
            try:
                status, headers, payload = await self._run_app(event, bytes(body), too_big, writer)
            except ConnectionDropped:
                writer.transport.abort()  # not one byte of an answer
                return
            data = h11conn.send(
                h11.Response(status_code=status, headers=headers, reason=_reason(status))
            )
            data += h11conn.send(h11.Data(data=payload)) if payload else b""
            data += h11conn.send(h11.EndOfMessage())
            writer.write(data)
            conn.busy = False
            await writer.drain()
            if h11conn.our_state is h11.MUST_CLOSE or h11conn.their_state is h11.MUST_CLOSE:
                return
            h11conn.start_next_cycle()

    async def _run_app(
        self, request: h11.Request, body: bytes, too_big: bool, writer: asyncio.StreamWriter
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if too_big:
            reply = html_error(413)
            return reply.status, [(b"content-type", reply.content_type.encode())], reply.body
        target = bytes(request.target)
        raw_path, _, query = target.partition(b"?")
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode("ascii"),
            "method": request.method.decode("ascii"),
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": [(bytes(k).lower(), bytes(v)) for k, v in request.headers],
            "client": (peer[0], peer[1]),
            "server": (self.host, self.port),
        }
        sent_body = False
        start: dict[str, Any] = {}
        parts: list[bytes] = []
        finished = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self.emulator.asgi_app(scope, receive, send)
        except ConnectionDropped:
            raise
        except Exception as exc:  # an emulator bug: answer like a servlet container would
            reply = html_error(500, f"{type(exc).__name__}: {exc}")
            return reply.status, [(b"content-type", reply.content_type.encode())], reply.body
        finally:
            finished.set()
        payload = b"" if request.method == b"HEAD" else b"".join(parts)
        headers = [
            (bytes(k), bytes(v))
            for k, v in start.get("headers", [])
            if bytes(k).lower() not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(len(payload)).encode("ascii")))
        return int(start.get("status", 500)), headers, payload

    @staticmethod
    async def _send_bad_request(
        h11conn: h11.Connection, writer: asyncio.StreamWriter, exc: h11.RemoteProtocolError
    ) -> None:
        if h11conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            writer.transport.abort()
            return
        reply = html_error(400, str(exc))
        try:
            data = h11conn.send(
                h11.Response(
                    status_code=exc.error_status_hint or 400,
                    headers=[
                        (b"content-type", reply.content_type.encode()),
                        (b"content-length", str(len(reply.body)).encode()),
                        (b"connection", b"close"),
                    ],
                )
            )
            data += h11conn.send(h11.Data(data=reply.body)) + h11conn.send(h11.EndOfMessage())
            writer.write(data)
            await writer.drain()
        except (h11.LocalProtocolError, ConnectionError):
            writer.transport.abort()


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


async def _next_event(h11conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = h11conn.next_event()
        if event is h11.NEED_DATA:
            h11conn.receive_data(await reader.read(_READ_SIZE))
            continue
        if event is h11.PAUSED:
            raise h11.RemoteProtocolError("request pipelined before the answer was read")
        return event


class SimThread:
    """A SimServer on its own event loop in a background thread; a context manager.

    Every method is thread-safe: it runs on the server's loop and waits for the result.
    """

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **emulator_settings: Any,
    ) -> None:
        if emulator is not None and emulator_settings:
            raise TypeError("pass either an emulator or its settings, not both")
        self.emulator = emulator if emulator is not None else Emulator(**emulator_settings)
        self.server = SimServer(self.emulator, host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and return once the server is listening (raises what start raised)."""
        if self._thread is not None:
            raise RuntimeError("this SimThread is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.server.close())
                loop.run_until_complete(self.emulator.aclose())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="noojee-sim", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the emulator did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server and the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` on the server's loop and return its result."""
        if self._loop is None or self._thread is None:
            raise RuntimeError("the SimThread is not running")

        async def run() -> T:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10.0)

    def _await(self, coroutine: Any) -> Any:
        if self._loop is None or self._thread is None:
            coroutine.close()
            raise RuntimeError("the SimThread is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10.0)

    def state(self, *, include_leads: bool = True) -> dict[str, Any]:
        return self.call(self.emulator.state, include_leads=include_leads)

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        return self.call(self.emulator.set_faults, **settings)

    def set_key(self, api_key: str) -> None:
        self.call(self.emulator.set_key, api_key)

    def reset(self) -> None:
        self.call(self.emulator.reset)

    def start_import(self, seconds: float) -> None:
        self.call(self.emulator.start_import, seconds)

    def set_down(self, down: bool, seconds: float | None = None) -> None:
        """Maintenance: the port closes, and reopens after ``seconds`` or on ``set_down(False)``."""
        self.call(self.emulator.set_down, down, seconds)

    def stop_server(self) -> None:
        """Stop listening and cut connections; the thread, loop and emulator state stay."""
        self._await(self.server.stop())

    def start_server(self) -> None:
        """Listen again on the same port."""
        self._await(self.server.start())

    def listening(self) -> bool:
        return self.call(lambda: self.server.listening)


# -- the ``noojee-desk sim`` command ----------------------------------------------------------


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be from 0 to 65535")
    return value


def _capacity(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError("must be from 1 to 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noojee-desk sim",
        description="Serve the Noojee PBX emulator (Campaign API with its limits and faults).",
    )
    parser.add_argument(
        "--host",
        help="address to listen on (default 127.0.0.1; anything else is reachable "
        "from the network)",
    )
    parser.add_argument("--port", type=_port, default=0, help="port (default 0: any free port)")
    parser.add_argument("--capacity", type=_capacity, default=4, help="inserts at once (4)")
    parser.add_argument("--min-service", type=_non_negative, default=0.1, help="seconds (0.1)")
    parser.add_argument("--jitter", type=_non_negative, default=0.02, help="seconds (0.02)")
    parser.add_argument("--queue-timeout", type=_positive, default=60.0, help="seconds (60)")
    parser.add_argument("--key", default=DEMO_API_KEY, help=f"accepted API key ({DEMO_API_KEY})")
    parser.add_argument("--failure-rate", type=_rate, default=0.0, help="0 to 1: inserts that 103")
    parser.add_argument("--drop-rate", type=_rate, default=0.0, help="0 to 1: answers cut off")
    parser.add_argument("--seed", type=int, default=0, help="random seed for jitter and faults")
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the leads in this JSON file (one emulator per file at a time)",
    )
    parser.add_argument(
        "--no-field-calls",
        dest="field_calls",
        action="store_false",
        help="act as an older PBX without getFieldList / getFieldDefn (they answer 404)",
    )
    return parser


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def main(argv: list[str]) -> int:
    """``noojee-desk sim``: serve until Ctrl+C or SIGTERM. Returns the exit status."""
    args = build_parser().parse_args(argv)
    host = args.host if args.host is not None else "127.0.0.1"
    if not args.key.strip():
        _say("noojee-desk sim: --key must not be empty", err=True)
        return 2
    if not is_loopback(host):
        _say(f"warning: the emulator is reachable from the network on {host}", err=True)
    try:
        return asyncio.run(_serve(args, host))
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace, host: str) -> int:
    store = StateFile(args.state) if args.state else None
    try:
        emulator = Emulator(
            api_key=args.key,
            capacity=args.capacity,
            min_service=args.min_service,
            jitter=args.jitter,
            queue_timeout=args.queue_timeout,
            failure_rate=args.failure_rate,
            drop_rate=args.drop_rate,
            seed=args.seed,
            field_calls=args.field_calls,
            journal=store,
        )
    except ValueError as exc:
        _say(f"noojee-desk sim: {exc}", err=True)
        return 2
    # The port first: an emulator that cannot serve must not touch the state file, which may
    # belong to one already running.
    server = SimServer(emulator, host, args.port, allow_remote=True)
    try:
        await server.start()
    except OSError as exc:
        _say(f"noojee-desk sim: cannot listen on {host}:{args.port}: {exc}", err=True)
        return 2
    if store is not None:
        # No await from here to the restore's end: no request is served before the leads are in.
        try:
            store.lock()
            emulator.restore(store.load())
            store.compact(emulator.leads())
        except (StateFileError, ValueError, OSError) as exc:
            store.unlock()
            await server.close()
            _say(f"noojee-desk sim: {exc}", err=True)
            return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    _say(f"listening on {server.url}")
    key = repr(args.key) if args.key == DEMO_API_KEY else "as given with --key"
    _say(f"api key {key}, {len(emulator.leads())} leads, capacity {args.capacity}", err=True)
    try:
        await stop.wait()
    finally:
        await server.close()
        await emulator.aclose()
        if store is not None:
            try:
                store.compact(emulator.leads())
            except OSError as exc:
                _say(f"noojee-desk sim: could not save {store.path}: {exc}", err=True)
            store.close()
            store.unlock()
    return 0
