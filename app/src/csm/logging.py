"""JSON logs to stdout, each line carrying the request id of the request it belongs to."""

from __future__ import annotations

import logging.config
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS


class NegotiationFilter(logging.Filter):
    """Drops the driver's warnings about stepping down the protocol version: the service lets it
    negotiate on purpose (from DSE's versions down to v5 on Cassandra 4.1/5.0)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Downgrading core protocol version")


def logging_config(level: str) -> dict[str, Any]:
    """A dictConfig for the service and uvicorn: one JSON line per record on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "asgi_correlation_id.CorrelationIdFilter", "default_value": None},
            "negotiation": {"()": NegotiationFilter},
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "{levelname}{name}{process}{message}",  # process: which worker
                "style": "{",
                "rename_fields": {"levelname": "level", "name": "logger", "correlation_id": "request_id"},
                "timestamp": "time",
                "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            }
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["request_id", "negotiation"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # uvicorn's own handlers are replaced by the root's; its access log by csm.access.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            # The driver warns on every reconnect attempt; the service reports readiness changes itself.
            "cassandra": {"level": level if level in ("WARNING", "ERROR") else "WARNING"},
        },
    }


def configure(level: str) -> None:
    logging.config.dictConfig(logging_config(level))
