"""Persistence in Apache Cassandra: the connection, schema migrations and queries."""

from csm.store.database import Database, StoreUnavailable
from csm.store.repository import Repository

__all__ = ["Database", "Repository", "StoreUnavailable"]
