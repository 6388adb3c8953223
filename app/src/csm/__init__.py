"""Cassandra Security Manager."""
