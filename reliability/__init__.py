"""Reliability under faults and load, measured on the real local engine (issue 8).

Each case in ``reliability.cases`` runs against real containers with bounded loops and time limits
and returns a ``CaseResult``: requests sent and failed, availability, recovery seconds, and the
checks it asserts. ``python -m reliability`` (``make reliability``) runs them all and writes
build/reliability/report.md; tests/reliability/ runs the same cases under pytest.
"""
