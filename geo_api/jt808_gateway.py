"""The JT/T 808 gateway: an asyncio TCP server for vehicle terminals (docs/jt808.md).

A background worker (``geo_api/workers.py``) of the app, started when ``GEORISK_JT808_PORT``
is set. Per connection: split the byte stream into frames (``layers/transport/jt808/frame``),
decode each, answer per the protocol:

- 0x0100 registration → 0x8100 (bind to a vehicle by plate, issue an auth code);
- 0x0102 authentication → 0x8001 result 0, or 1 for a wrong code;
- 0x0002 heartbeat → 0x8001 result 0; 0x0003 logout → 0x8001 result 0 (binding removed);
- 0x0200 location, 0x0704 batch → stored through the fix batcher (``geo_api/jt808_batcher``,
  the pipeline of ``POST /api/positions``), answered once committed: result 0 when stored
  (or already stored); for a single 0x0200 whose fix is refused (impossible time, no GNSS fix,
  a filter's reason) result 2; a 0x0704 is answered 0 once its storable fixes are in, its
  refused items are logged (re-sending would not make them storable). Before authentication:
  result 1 and nothing stored. No answer at all when the store failed: the terminal re-sends;
- a frame with a bad check code, escape or length → 0x8001 result 2 when its header could be
  read (else nothing); unknown ids, subpackaged or encrypted messages → result 3.

Nothing a client sends stops the gateway: each frame's handling is guarded, malformed frames
are logged (the first few per connection), a connection is closed after ``max_bad_frames`` of
them or ``idle_timeout_s`` of silence, and frames never grow past ``max_frame_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from geo_api.db import set_actor
from geo_api.jt808_batcher import ACTOR, FixBatcher
from geo_api.rerate import Rerater
from geo_api.settings import Settings
from layers.transport.jt808 import messages as m
from layers.transport.jt808 import terminals
from layers.transport.jt808.fixes import batch_rows, to_rows
from layers.transport.jt808.frame import (
    Frame,
    FrameReader,
    Malformed,
    Oversized,
    decode_frame,
    encode_frame,
)

log = logging.getLogger("georisk.jt808")
_LOGGED_BAD_FRAMES = 3  # per connection; the rest are counted in the close line


@dataclass
class GatewayStats:
    connections: int = 0
    refused_connections: int = 0
    frames: int = 0
    malformed: int = 0
    unauthenticated: int = 0
    unknown_ids: int = 0


@dataclass
class Session:
    """One connection: who it authenticated as, the platform's serial, bad frames seen."""

    peer: str
    phone: str | None = None
    vehicle_id: int | None = None
    serial: int = 0
    bad_frames: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def next_serial(self) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial


class Jt808Gateway:
    """The gateway as a worker: ``start`` once listening, ``stop`` once every connection and
    the batcher are gone."""

    def __init__(self, pool: AsyncConnectionPool, rerate: Rerater, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings.jt808
        s = self.settings
        self.batcher = FixBatcher(
            pool,
            rerate,
            settings.tanker.rules(),
            s.batch_size,
            s.flush_interval_s,
            s.max_pending,
            settings.lifecycle.window(),
            s.commits,
        )
        self.stats = GatewayStats()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._handlers = {
            m.REGISTER: self._register,
            m.AUTHENTICATE: self._authenticate,
            m.HEARTBEAT: self._heartbeat,
            m.LOGOUT: self._logout,
            m.LOCATION: self._location,
            m.BATCH: self._batch,
        }

    @property
    def port(self) -> int | None:
        """The port listened on (the configured one, or the one picked for port 0)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if not log.hasHandlers():  # `georisk serve` configures only uvicorn's own loggers
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
            log.addHandler(handler)
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)
        await self.batcher.start()
        self._server = await asyncio.start_server(
            self._accept,
            self.settings.host,
            self.settings.port,
            reuse_port=self.settings.reuse_port or None,
        )
        log.info("JT/T 808 gateway listening on %s:%s", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        await self.batcher.stop()

    # -- connections -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = (writer.get_extra_info("peername") or ("?", "?"))[:2]
        peer = f"{host}:{port}"
        if len(self._conns) >= self.settings.max_connections:
            self.stats.refused_connections += 1
            if self.stats.refused_connections % 1000 == 1:  # a flood logs a line per thousand
                log.warning(
                    "jt808: refused %s: %d connections open (%d refused so far)",
                    peer,
                    len(self._conns),
                    self.stats.refused_connections,
                )
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.stats.connections += 1
        session = Session(peer)
        try:
            await self._serve(session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug must cost this connection, never the gateway
            log.exception("jt808: connection %s failed", peer)
        finally:
            self._conns.discard(task)
            for t in session.tasks:
                t.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        frames = FrameReader(self.settings.max_frame_bytes)
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65_536), self.settings.idle_timeout_s)
            except TimeoutError:
                log.info("jt808: %s (%s) silent, closed", session.peer, session.phone or "-")
                return
            if not data:
                if frames.pending:
                    log.info("jt808: %s left in the middle of a frame", session.peer)
                return
            for item in frames.feed(data):
                if isinstance(item, Oversized):
                    self._bad(session, f"frame over {self.settings.max_frame_bytes} bytes")
                else:
                    await self._frame(session, item, writer)
                if session.bad_frames >= self.settings.max_bad_frames:
                    log.warning(
                        "jt808: %s closed after %d malformed frames",
                        session.peer,
                        session.bad_frames,
                    )
                    return
            # Reports of this read are stored together; wait for them before reading on, so
            # a connection holds at most one read's worth of work (backpressure).
            if session.tasks:
                await asyncio.gather(*session.tasks, return_exceptions=True)
            await writer.drain()

    def _bad(self, session: Session, reason: str) -> None:
        session.bad_frames += 1
        self.stats.malformed += 1
        if session.bad_frames <= _LOGGED_BAD_FRAMES:
            log.warning("jt808: malformed frame from %s: %s", session.peer, reason)

    def _reply(
        self,
        session: Session,
        writer: asyncio.StreamWriter,
        to: Frame | Malformed,
        msg_id: int,
        body: bytes,
    ) -> None:
        header = to.header
        assert header is not None
        writer.write(
            encode_frame(msg_id, header.phone, session.next_serial(), body, header.version)
        )

    def _general(
        self, session: Session, writer: asyncio.StreamWriter, to: Frame | Malformed, result: int
    ) -> None:
        header = to.header
        assert header is not None
        body = m.encode_general_response(header.serial, header.msg_id, result)
        self._reply(session, writer, to, m.GENERAL_RESPONSE, body)

    async def _frame(self, session: Session, segment: bytes, writer: asyncio.StreamWriter) -> None:
        """Answer one frame. Location reports become tasks of the session, so the reports of
        one read share a batch; everything else is answered in order, before the next frame
        (a location report right after an authentication sees it)."""
        self.stats.frames += 1
        try:
            frame = decode_frame(segment)
        except Malformed as exc:
            self._bad(session, exc.reason)
            if exc.header is not None:
                self._general(session, writer, exc, m.BAD_MESSAGE)
            return
        h = frame.header
        if h.packages is not None or h.encrypted:
            self.stats.unknown_ids += 1
            self._general(session, writer, frame, m.UNSUPPORTED)
            return
        if h.msg_id == m.TERMINAL_RESPONSE:  # answers a platform command: we send none
            return
        handler = self._handlers.get(h.msg_id)
        if handler is None:
            self.stats.unknown_ids += 1
            log.info("jt808: %s sent unsupported message 0x%04x", session.peer, h.msg_id)
            self._general(session, writer, frame, m.UNSUPPORTED)
            return
        work = self._guarded(handler(session, frame, writer), session)
        if h.msg_id not in (m.LOCATION, m.BATCH):
            await work
            return
        task = asyncio.create_task(work)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    async def _guarded(self, work: Any, session: Session) -> None:
        try:
            await work
        except Malformed as exc:
            self._bad(session, exc.reason)
        except Exception as exc:  # the store failed: no answer, the terminal re-sends
            log.warning("jt808: %s: message not answered (%s)", session.peer, exc)

    # -- messages --------------------------------------------------------------------------

    async def _register(self, session: Session, frame: Frame, writer: asyncio.StreamWriter) -> None:
        h = frame.header
        try:
            reg = m.decode_registration(frame.body, h.version is not None)
        except Malformed as exc:
            self._bad(session, exc.reason)
            self._reply(
                session,
                writer,
                frame,
                m.REGISTER_RESPONSE,
                m.encode_register_response(h.serial, m.NO_SUCH_TERMINAL),
            )
            return
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            result, code, vehicle_id = await terminals.register(conn, h.phone, reg)
        if result != m.REGISTERED:
            log.warning(
                "jt808: registration of %s (plate %r) refused with result %d",
                h.phone,
                reg.plate,
                result,
            )
        else:
            log.info("jt808: terminal %s registered for vehicle %s", h.phone, vehicle_id)
        body = m.encode_register_response(h.serial, result, code)
        self._reply(session, writer, frame, m.REGISTER_RESPONSE, body)

    async def _authenticate(
        self, session: Session, frame: Frame, writer: asyncio.StreamWriter
    ) -> None:
        h = frame.header
        code = m.decode_auth(frame.body, h.version is not None)
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            vehicle_id = await terminals.authenticate(conn, h.phone, code)
        if vehicle_id is None:
            log.warning("jt808: %s failed to authenticate as terminal %s", session.peer, h.phone)
            self._general(session, writer, frame, m.FAILED)
            return
        session.phone, session.vehicle_id = terminals.identity(h.phone), vehicle_id
        self._general(session, writer, frame, m.OK)

    async def _heartbeat(
        self, session: Session, frame: Frame, writer: asyncio.StreamWriter
    ) -> None:
        self._general(session, writer, frame, m.OK)

    async def _logout(self, session: Session, frame: Frame, writer: asyncio.StreamWriter) -> None:
        if not self._authenticated(session, frame):
            self._general(session, writer, frame, m.FAILED)
            return
        async with self.pool.connection() as conn:
            await set_actor(conn, ACTOR)
            await terminals.logout(conn, frame.header.phone)
        log.info("jt808: terminal %s logged out", frame.header.phone)
        session.phone = session.vehicle_id = None
        self._general(session, writer, frame, m.OK)

    def _authenticated(self, session: Session, frame: Frame) -> bool:
        if session.vehicle_id is not None and session.phone == terminals.identity(
            frame.header.phone
        ):
            return True
        self.stats.unauthenticated += 1
        log.info(
            "jt808: 0x%04x from %s (terminal %s) before authentication: refused",
            frame.header.msg_id,
            session.peer,
            frame.header.phone,
        )
        return False

    async def _location(self, session: Session, frame: Frame, writer: asyncio.StreamWriter) -> None:
        if not self._authenticated(session, frame):
            self._general(session, writer, frame, m.FAILED)
            return
        assert session.vehicle_id is not None
        loc = m.decode_location(frame.body)
        if loc.error is not None:
            log.info("jt808: terminal %s: fix refused: %s", session.phone, loc.error)
            self._general(session, writer, frame, m.BAD_MESSAGE)
            return
        (error,) = await self.batcher.submit(to_rows([(session.vehicle_id, loc)]))
        if error is not None:
            log.info("jt808: terminal %s: fix refused: %s", session.phone, error)
        self._general(session, writer, frame, m.OK if error is None else m.BAD_MESSAGE)

    async def _batch(self, session: Session, frame: Frame, writer: asyncio.StreamWriter) -> None:
        if not self._authenticated(session, frame):
            self._general(session, writer, frame, m.FAILED)
            return
        assert session.vehicle_id is not None
        rows = batch_rows(session.vehicle_id, frame.body)  # Malformed: no answer, a bad frame
        if len(rows.t):
            results = await self.batcher.submit(rows)
        else:  # nothing storable: no transaction to wait for
            results = [None] * rows.total
            for k, e in rows.errors:
                results[k] = e
        errors = [f"item {k}: {e}" for k, e in enumerate(results) if e]
        if errors:
            log.info(
                "jt808: terminal %s: %d of %d batch items refused, first: %s",
                session.phone,
                len(errors),
                rows.total,
                errors[0],
            )
        self._general(session, writer, frame, m.OK)
