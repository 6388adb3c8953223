"""When the readiness monitor replaces a Cassandra session that stays unusable."""

from __future__ import annotations

from csm.health import ReconnectSchedule


def test_reconnect_waits_a_bounded_time_then_backs_off() -> None:
    schedule = ReconnectSchedule(first=1.0, longest=4.0)
    checks = [n / 2 for n in range(30)]  # every 0.5 s for 15 s, Cassandra unusable throughout
    assert [t for t in checks if schedule.due(usable=False, now=t)] == [1.0, 3.0, 7.0, 11.0]
    assert not schedule.due(usable=True, now=15.0)
    assert [t for t in (16.0, 16.5, 17.0, 17.5) if schedule.due(usable=False, now=t)] == [17.0]
