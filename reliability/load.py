"""A load generator for loopback targets: asyncio + httpx, fixed concurrency, optional fixed rate,
always bounded in time.

``Load`` runs in a background thread with its own event loop, so a case can inject a fault with
blocking docker commands while the load goes on. Every request becomes a ``Sample`` (when it was
sent, how long it took, status or transport error), from which ``Stats`` derives the figures of
the report: requests sent and failed, availability, throughput, p50/p99 latency, and the longest
stretch of failures.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

LOOPBACK_PREFIXES = ("http://127.", "http://localhost:", "http://[::1]:")


@dataclass(frozen=True)
class Target:
    """A CSM endpoint on this machine and the bearer token to use."""

    url: str
    token: str

    def __post_init__(self) -> None:
        if not self.url.startswith(LOOPBACK_PREFIXES):
            raise ValueError(f"load goes to loopback addresses only, not {self.url}")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Sample:
    op: str
    started: float  # time.time() when the request was sent (comparable with docker events)
    seconds: float
    status: int | None
    error: str | None  # transport error, e.g. "ConnectError: [Errno 111] Connection refused"
    ok: bool

    @property
    def ended(self) -> float:
        return self.started + self.seconds


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Stats:
    sent: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    longest_outage_s: float  # from the first failure of the longest run of failures to the next success
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def availability(self) -> float:
        return (self.sent - self.failed) / self.sent if self.sent else math.nan

    @property
    def throughput(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else math.nan

    @classmethod
    def of(cls, samples: Iterable[Sample], seconds: float | None = None) -> Stats:
        items = sorted(samples, key=lambda s: s.started)
        if seconds is None:
            seconds = (max(s.ended for s in items) - items[0].started) if items else 0.0
        ok_latencies = [s.seconds * 1000 for s in items if s.ok]
        errors: dict[str, int] = {}
        for s in items:
            if not s.ok:
                key = f"{s.op}: {s.status}" if s.status is not None else f"{s.op}: {s.error}"
                errors[key[:160]] = errors.get(key[:160], 0) + 1
        longest, run_start = 0.0, None
        for s in items:
            if not s.ok and run_start is None:
                run_start = s.started
            elif s.ok and run_start is not None:
                longest, run_start = max(longest, s.ended - run_start), None
        if run_start is not None:
            longest = max(longest, items[-1].ended - run_start)
        return cls(
            sent=len(items),
            failed=sum(1 for s in items if not s.ok),
            seconds=seconds,
            p50_ms=percentile(ok_latencies, 0.50),
            p99_ms=percentile(ok_latencies, 0.99),
            max_ms=max(ok_latencies, default=math.nan),
            longest_outage_s=longest,
            errors=errors,
        )


# An operation sends one or more requests on the client and reports each through `record`.
Record = Callable[[str, float, float, httpx.Response | None, BaseException | None, tuple[int, ...]], None]
Operation = Callable[[httpx.AsyncClient, "Fixtures", Record], Awaitable[None]]


@dataclass
class Fixtures:
    """What the API operations need: an authority to issue from and certificates to read back."""

    target: Target
    authority_id: str = ""
    certificate_ids: list[str] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def next_name(self) -> str:
        return f"load-{next(self._counter)}.reliability.test"


def prepare(target: Target, certificates: int = 1, timeout: float = 30) -> Fixtures:
    """Creates an authority and issues ``certificates`` certificates to read back under load."""
    fixtures = Fixtures(target)
    with httpx.Client(base_url=target.url, headers=target.auth, timeout=timeout) as client:
        authority = client.post("/v1/authorities", json={"name": "Reliability Root", "key_algorithm": "ecdsa-p256"})
        if authority.status_code != 201:
            raise RuntimeError(
                f"creating the load's authority answered {authority.status_code}: {authority.text[:300]}"
            )
        fixtures.authority_id = authority.json()["id"]
        for _ in range(certificates):
            issued = client.post("/v1/certificates", json=_issue_body(fixtures))
            if issued.status_code != 201:
                raise RuntimeError(f"issuing a load certificate answered {issued.status_code}: {issued.text[:300]}")
            fixtures.certificate_ids.append(issued.json()["id"])
    return fixtures


def _issue_body(fixtures: Fixtures) -> dict[str, Any]:
    name = fixtures.next_name()
    return {
        "authority_id": fixtures.authority_id,
        "kind": "node",
        "common_name": name,
        "dns_names": [name],
        "key_algorithm": "ecdsa-p256",
        "validity_days": 30,
    }


async def _timed(
    client: httpx.AsyncClient, record: Record, op: str, expect: tuple[int, ...], method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    started, clock = time.time(), time.perf_counter()
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        record(op, started, time.perf_counter() - clock, None, error, expect)
        return None
    record(op, started, time.perf_counter() - clock, response, None, expect)
    return response


async def live(client: httpx.AsyncClient, fixtures: Fixtures, record: Record) -> None:
    await _timed(client, record, "live", (200,), "GET", "/health/live")


async def ready(client: httpx.AsyncClient, fixtures: Fixtures, record: Record) -> None:
    await _timed(client, record, "ready", (200,), "GET", "/health/ready")


async def read(client: httpx.AsyncClient, fixtures: Fixtures, record: Record) -> None:
    certificate_id = fixtures.certificate_ids[len(fixtures.certificate_ids) - 1]
    await _timed(
        client, record, "read", (200,), "GET", f"/v1/certificates/{certificate_id}", headers=fixtures.target.auth
    )


async def issue_and_read(client: httpx.AsyncClient, fixtures: Fixtures, record: Record) -> None:
    """Issues a certificate (the service makes the key), then reads it back by id."""
    response = await _timed(
        client,
        record,
        "issue",
        (201,),
        "POST",
        "/v1/certificates",
        json=_issue_body(fixtures),
        headers=fixtures.target.auth,
    )
    if response is None or response.status_code != 201:
        return
    issued = response.json()
    back = await _timed(
        client, record, "read-back", (200,), "GET", f"/v1/certificates/{issued['id']}", headers=fixtures.target.auth
    )
    if back is not None and back.status_code == 200 and back.json().get("serial_number") != issued["serial_number"]:
        record("read-back-match", time.time(), 0.0, None, ValueError("read back another serial"), (200,))


def mix(*weighted: tuple[Operation, int]) -> Operation:
    """An operation that cycles through ``weighted`` in proportion (deterministic, no randomness)."""
    sequence = [op for op, weight in weighted for _ in range(weight)]
    position = itertools.cycle(range(len(sequence)))

    async def mixed(client: httpx.AsyncClient, fixtures: Fixtures, record: Record) -> None:
        await sequence[next(position)](client, fixtures, record)

    return mixed


class Load:
    """Background load: ``concurrency`` workers each repeat ``operation``; with ``rate`` (requests
    per second, all workers together) each worker paces itself. Stops on ``stop()`` or after
    ``max_seconds``, whichever comes first. ``keepalive=False`` opens a connection per request."""

    def __init__(
        self,
        fixtures: Fixtures,
        operation: Operation,
        *,
        concurrency: int = 4,
        rate: float | None = None,
        max_seconds: float = 120,
        timeout: float = 10,
        keepalive: bool = True,
    ) -> None:
        if max_seconds <= 0 or concurrency < 1:
            raise ValueError("a load needs max_seconds > 0 and concurrency >= 1")
        self.fixtures = fixtures
        self.operation = operation
        self.concurrency = concurrency
        self.rate = rate
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.keepalive = keepalive
        self.samples: list[Sample] = []
        self.started = 0.0
        self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-load", daemon=True)
        self._lock = threading.Lock()
        self.crashed: BaseException | None = None

    def _record(
        self,
        op: str,
        started: float,
        seconds: float,
        response: httpx.Response | None,
        error: BaseException | None,
        expect: tuple[int, ...],
    ) -> None:
        status = response.status_code if response is not None else None
        text = f"{type(error).__name__}: {error}"[:200] if error is not None else None
        sample = Sample(op, started, seconds, status, text, error is None and status in expect)
        with self._lock:
            self.samples.append(sample)

    async def _worker(self, client: httpx.AsyncClient, index: int, deadline: float) -> None:
        interval = self.concurrency / self.rate if self.rate else 0.0
        next_at = time.monotonic() + (interval * index / self.concurrency)
        while not self._stop.is_set() and time.monotonic() < deadline:
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at = max(next_at + interval, time.monotonic() - interval)
                if self._stop.is_set():
                    break
            await self.operation(client, self.fixtures, self._record)

    async def _main(self) -> None:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency if self.keepalive else 0
        )
        headers = {} if self.keepalive else {"Connection": "close"}
        deadline = time.monotonic() + self.max_seconds
        async with httpx.AsyncClient(
            base_url=self.fixtures.target.url, timeout=self.timeout, limits=limits, headers=headers
        ) as client:
            await asyncio.gather(*(self._worker(client, i, deadline) for i in range(self.concurrency)))

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported by stop(); a dead load must not look like a quiet one
            self.crashed = error

    def start(self) -> Load:
        self.started = time.time()
        self._thread.start()
        return self

    def stop(self) -> Stats:
        self._stop.set()
        self._thread.join(self.timeout + 30)
        self.stopped = time.time()
        if self._thread.is_alive():
            raise RuntimeError("the load generator did not stop")
        if self.crashed is not None:
            raise RuntimeError(f"the load generator crashed: {self.crashed!r}") from self.crashed
        return self.stats()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def stats(self, ops: Iterable[str] | None = None) -> Stats:
        wanted = set(ops) if ops is not None else None
        chosen = [s for s in self.snapshot() if wanted is None or s.op in wanted]
        return Stats.of(chosen, (self.stopped or time.time()) - self.started)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(self.timeout + 30)
            self.stopped = self.stopped or time.time()


def run_for(fixtures: Fixtures, operation: Operation, seconds: float, **options: Any) -> Load:
    """Runs a load for ``seconds`` (blocking) and returns it, stopped."""
    load = Load(fixtures, operation, max_seconds=seconds, **options).start()
    time.sleep(seconds)
    load.stop()
    return load
