"""Prometheus metrics of one server, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "amber_requests", "HTTP requests handled", ["method", "operation", "status"], registry=self.registry
        )
        self.bytes_in = Counter("amber_received_bytes", "object bytes stored", registry=self.registry)
        self.bytes_out = Counter("amber_sent_bytes", "object bytes sent", registry=self.registry)
        self.refusals = Counter("amber_refusals", "requests refused, by reason", ["reason"], registry=self.registry)
        self.locks = Counter(
            "amber_lock_changes",
            "retentions set or extended, holds placed and released",
            ["kind"],
            registry=self.registry,
        )
        self.immutable = Gauge(
            "amber_immutable_supported",
            "1 when the last attempt to set the immutable attribute worked, 0 when it could not be set",
            registry=self.registry,
        )
        self.immutable.set(-1)
