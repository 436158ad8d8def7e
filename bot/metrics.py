"""Prometheus metrics of one running bot (own registry: nothing global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates_received = Counter(
            "cu_updates_received_total", "Telegram updates received", ["source"], registry=self.registry
        )
        self.updates_duplicate = Counter(
            "cu_updates_duplicate_total", "Redelivered updates ignored", ["source"], registry=self.registry
        )
        self.updates_rejected = Counter(
            "cu_updates_rejected_total",
            "Malformed or unauthorised webhook calls",
            ["reason"],
            registry=self.registry,
        )
        self.updates_processed = Counter(
            "cu_updates_processed_total", "Updates processed", ["status"], registry=self.registry
        )
        self.update_latency = Histogram(
            "cu_update_latency_seconds",
            "From receipt to the end of handling",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.throttled = Counter(
            "cu_updates_throttled_total", "Updates dropped by throttling", registry=self.registry
        )
        self.errors = Counter("cu_errors_total", "Errors by kind", ["kind"], registry=self.registry)
        self.orders = Counter(
            "cu_orders_total",
            "Orders by mode (paper, live), side and outcome",
            ["mode", "side", "status"],
            registry=self.registry,
        )

        # the master controller (services/controller)
        self.component_up = Gauge(
            "cu_component_up",
            "1 when a component is up or degraded, 0 when down",
            ["component", "kind"],
            registry=self.registry,
        )
        self.component_latency = Gauge(
            "cu_component_check_latency_seconds",
            "How long the last health check of a component took",
            ["component"],
            registry=self.registry,
        )
        self.component_transitions = Counter(
            "cu_component_transitions_total",
            "Components going down or recovering",
            ["component", "to"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "cu_breaker_state",
            "Circuit breaker per exchange: 0 closed, 1 half-open, 2 open",
            ["exchange"],
            registry=self.registry,
        )
        self.job_runs = Counter("cu_job_runs_total", "Scheduled job runs", ["job"], registry=self.registry)
        self.job_failures = Counter(
            "cu_job_failures_total", "Scheduled job runs that raised", ["job"], registry=self.registry
        )

        # the outbound sender (bot/sender.py)
        self.outbound_messages = Counter(
            "cu_outbound_messages_total", "Outbound messages by outcome", ["status"], registry=self.registry
        )
        self.outbound_flood_waits = Counter(
            "cu_outbound_flood_waits_total",
            "429 answers to outbound messages, by what paused",
            ["scope"],
            registry=self.registry,
        )
        self.outbound_retries = Counter(
            "cu_outbound_retries_total",
            "Outbound messages retried after a transient error",
            ["error"],
            registry=self.registry,
        )
        self.outbound_queued = Gauge(
            "cu_outbound_queued", "Outbound messages waiting to be sent", registry=self.registry
        )
        self.outbound_in_flight = Gauge(
            "cu_outbound_in_flight", "Outbound requests in flight", registry=self.registry
        )
        self.outbound_latency = Histogram(
            "cu_outbound_latency_seconds",
            "From queueing to delivery of an outbound message",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
