"""A fixed-rate (open-loop) HTTP/1.1 load generator for loopback benchmarks; standard library only.

Request i is due at start + i/rate whether or not earlier ones have finished, and its latency is
measured from that due time (no coordinated omission: a stall shows up in every request it
delays). Keep-alive connections come from a pool that grows when all are busy.

    python3 bench/loadgen.py http://127.0.0.1:8000/health/live --rate 200 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from urllib.parse import urlsplit

MAX_CONNECTIONS = 256
MAX_IDLE = 2.0  # seconds; servers close idle keep-alive connections (uvicorn after 5 s)


class Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.perf_counter() - since < MAX_IDLE:
                return reader, writer
            writer.close()
            self.opened -= 1
        if self.opened >= MAX_CONNECTIONS:
            raise RuntimeError(f"more than {MAX_CONNECTIONS} requests in flight")
        self.opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self.opened -= 1
            raise

    def put(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.idle.append((reader, writer, time.perf_counter()))

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


async def _request(pool: Pool, raw: bytes) -> int:
    reader, writer = await pool.get()
    try:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
    except BaseException:
        writer.close()
        pool.opened -= 1
        raise
    pool.put(reader, writer)
    return status


async def run(url: str, rate: float, duration: float, warmup: float, timeout: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadgen only sends to loopback")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    raw = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: csm-bench\r\n\r\n".encode()
    pool = Pool(host, port)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}

    async def one(due: float, record: bool) -> None:
        try:
            status = await asyncio.wait_for(_request(pool, raw), timeout)
        except Exception as error:  # counted, reported, never hidden
            if record:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            return
        if record:
            latencies.append(time.perf_counter() - due)
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    total = int(round((warmup + duration) * rate))
    warm = int(round(warmup * rate))
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due, i >= warm)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - (start + warm / rate)
    pool.close()
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, math.ceil(p / 100 * len(latencies)) - 1)] * 1000, 3)

    return {
        "url": url,
        "rate": rate,
        "duration_s": duration,
        "requests": total - warm,
        "completed": len(latencies),
        "achieved_rate": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "statuses": statuses,
        "errors": errors,
        "connections": pool.opened,  # open at the end
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": round(latencies[-1] * 1000, 3) if latencies else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first (default 3)")
    parser.add_argument("--timeout", type=float, default=5.0, help="per request (default 5 s)")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 5000 and 0 < args.duration <= 600):
        parser.error("--rate must be in (0, 5000] and --duration in (0, 600]")
    json.dump(asyncio.run(run(args.url, args.rate, args.duration, args.warmup, args.timeout)), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
