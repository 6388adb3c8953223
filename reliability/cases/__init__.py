"""The fault and load cases. Each takes the ``csmrel`` stack and a profile, runs against real
containers with bounded loops and time limits, and returns a ``CaseResult`` with its figures and
the checks the issue asks for (thresholds from issue 8). A case leaves the stack's csm service as
the product defines it (it recreates it when it changed it). One module per kind of fault.
"""

from __future__ import annotations

from collections.abc import Callable

from reliability.cases.cassandra import cassandra_outage
from reliability.cases.common import BUILD, PROFILES, Profile
from reliability.cases.fuzz import api_fuzz
from reliability.cases.images import bad_digest_compose
from reliability.cases.memory import memory_limit
from reliability.cases.secret_files import secret_fault
from reliability.cases.shutdown import sigterm
from reliability.cases.sustained import sustained_load
from reliability.cases.swarm import swarm_bad_digest, swarm_cleanup, swarm_kill9
from reliability.cases.tmpfs import tmpfs_full
from reliability.report import CaseResult
from reliability.stack import Stack

__all__ = ["BUILD", "CASES", "PROFILES", "Case", "Profile", "swarm_cleanup"]

Case = Callable[[Stack, Profile], CaseResult]

CASES: dict[str, Case] = {
    "cassandra-outage": cassandra_outage,
    "sigterm": sigterm,
    "memory": memory_limit,
    "secret-missing": lambda stack, profile: secret_fault(stack, profile, "missing"),
    "secret-unreadable": lambda stack, profile: secret_fault(stack, profile, "unreadable"),
    "bad-digest-compose": bad_digest_compose,
    "tmpfs-full": tmpfs_full,
    "swarm-kill9": swarm_kill9,
    "swarm-bad-digest": swarm_bad_digest,
    "schemathesis": api_fuzz,
    "load": sustained_load,
}
