"""Prometheus metrics, in a registry of their own per container.

Labels carry routes (templates such as ``/api/v1/chats/{chat_id}``), methods,
status codes, stages and outcomes, never ids, user names or text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, queue_depth: Callable[[], Mapping[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram(
            "lantern_http_request_seconds",
            "HTTP request latency (to the end of the response body).",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "lantern_errors_total",
            "Errors by where they happened and their kind.",
            ["where", "kind"],
            registry=r,
        )
        self.ttft = Histogram(
            "lantern_answer_ttft_seconds",
            "Time from the question to the first token of the answer.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answer = Histogram(
            "lantern_answer_seconds", "Time to a whole answer.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.tokens = Counter(
            "lantern_answer_tokens_total", "Answer tokens sent (approximate).", registry=r
        )
        self.answers = Counter(
            "lantern_answers_total", "Answers by outcome.", ["outcome"], registry=r
        )
        self.retrieval = Histogram(
            "lantern_retrieval_seconds",
            "Hybrid retrieval latency (query embedding included).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "lantern_ingestion_stage_seconds",
            "Duration of each ingestion stage of documents that became ready.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs = Counter(
            "lantern_ingestion_jobs_total", "Finished ingestion jobs.", ["outcome"], registry=r
        )
        r.register(_QueueDepth(queue_depth))

    def observe_answer(self, timings: Mapping[str, float], *, outcome: str, tokens: int) -> None:
        if "ttft_s" in timings:
            self.ttft.observe(timings["ttft_s"])
        if "total_s" in timings:
            self.answer.observe(timings["total_s"])
        if "retrieve_s" in timings:
            self.retrieval.observe(timings["retrieve_s"])
        self.tokens.inc(tokens)
        self.answers.labels(outcome).inc()

    def observe_job(self, timings: Mapping[str, float], *, ok: bool) -> None:
        self.jobs.labels("succeeded" if ok else "failed").inc()
        for stage, seconds in timings.items():
            if stage in ("detect", "parse", "chunk", "embed", "index"):
                self.stage.labels(stage).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _QueueDepth(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "lantern_ingestion_queue_depth", "Ingestion jobs by status.", labels=["status"]
        )
        try:
            counts = self.counts()
        except Exception:  # a scrape must not fail because the database hiccups
            counts = {}
        for status in ("queued", "running"):
            g.add_metric([status], counts.get(status, 0))
        yield g

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
