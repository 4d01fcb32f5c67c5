"""An SSE client for tests: reads ``/api/changes/stream`` (or another stream) in a thread."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any, Protocol

import httpx

from tests.conftest import auth


class HasBaseUrl(Protocol):
    @property
    def base_url(self) -> str: ...


class Stream:
    """An SSE client in a thread: ``events`` receives ``(event, data, id)``."""

    def __init__(
        self,
        server: HasBaseUrl,
        key: str,
        last_id: str | None = None,
        path: str = "/api/changes/stream",
    ) -> None:
        self.path = path
        self.events: queue.Queue[tuple[str, Any, str | None]] = queue.Queue()
        headers = auth(key)
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        self._client = httpx.Client(base_url=server.base_url, headers=headers, timeout=30)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise

    def _read(self) -> None:
        with self._client.stream("GET", self.path) as r:
            event, data, ident = "message", "", None
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line == "" and data:
                    self.events.put((event, json.loads(data), ident))
                    event, data, ident = "message", "", None

    def next(self, kind: str, timeout: float = 10.0, match: Any = None) -> tuple[Any, str | None]:
        """The next event of ``kind`` (and matching ``match(data)``), within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} event within {timeout} s")
            event, data, ident = self.events.get(timeout=left)
            if event == kind and (match is None or match(data)):
                return data, ident

    def close(self) -> None:
        self._stop.set()
        self._client.close()
