"""Prometheus metrics, in a registry of their own per container.

Labels carry routes (templates such as ``/api/v1/chats/{chat_id}``), methods,
status codes, stages, outcomes and model versions (a version's name, or ``base``),
never ids, user names or text. The answer metrics are by version so that an A/B
test of a candidate reads straight off them.
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
            "Time from the question to the first token of the answer, by model version.",
            ["version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answer = Histogram(
            "lantern_answer_seconds",
            "Time to a whole answer, by model version.",
            ["version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "lantern_answer_tokens_total", "Answer tokens sent (approximate).", registry=r
        )
        self.answers = Counter(
            "lantern_answers_total",
            "Answers by outcome (answered, abstained, incomplete) and model version.",
            ["outcome", "version"],
            registry=r,
        )
        self.abstentions = Counter(
            "lantern_answer_abstentions_total",
            "Answers that said the knowledge base does not hold the answer, by model version.",
            ["version"],
            registry=r,
        )
        self.answer_errors = Counter(
            "lantern_answer_errors_total",
            "Answers that ended on a model error or timeout, or failed before any text, "
            "by model version and kind (error, timeout, or the exception's name).",
            ["version", "kind"],
            registry=r,
        )
        self.answer_cache = Counter(
            "lantern_answer_cache_total",
            "Answer cache lookups by result: hit (served from the cache), miss (answered "
            "afresh; Redis down counts here too), skip (answered afresh but not stored: it "
            "did not end normally).",
            ["result"],
            registry=r,
        )
        for result in ("hit", "miss", "skip"):  # each series exists from the start
            self.answer_cache.labels(result)
        self.feedback = Counter(
            "lantern_feedback_total",
            "Thumbs on answers, by the model version that wrote the answer and rating "
            "(up, down); a changed vote counts again.",
            ["version", "rating"],
            registry=r,
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
        self.pages = Counter(
            "lantern_ingestion_pages_total",
            "Pages of documents that became ready, as their parser counts them (a PDF's "
            "pages; one for a Markdown or text file).",
            registry=r,
        )
        r.register(_QueueDepth(queue_depth))

    def observe_answer(
        self,
        timings: Mapping[str, float],
        *,
        outcome: str,
        tokens: int,
        version: str = "base",
        finish_reason: str = "stop",
    ) -> None:
        """One finished answer by ``version`` (a version's name, or ``base``)."""
        if "ttft_s" in timings:
            self.ttft.labels(version).observe(timings["ttft_s"])
        if "total_s" in timings:
            self.answer.labels(version).observe(timings["total_s"])
        if "retrieve_s" in timings:
            self.retrieval.observe(timings["retrieve_s"])
        self.tokens.inc(tokens)
        self.answers.labels(outcome, version).inc()
        if outcome == "abstained":
            self.abstentions.labels(version).inc()
        if finish_reason in ("error", "timeout"):
            self.answer_errors.labels(version, finish_reason).inc()

    def observe_answer_failure(self, *, version: str, kind: str) -> None:
        """An answer by ``version`` that failed before it had any text (``kind``: the
        exception's name)."""
        self.answer_errors.labels(version, kind).inc()

    def observe_feedback(self, *, version: str, rating: int) -> None:
        """A thumb (+1 up, -1 down) on an answer written by ``version``."""
        self.feedback.labels(version, "up" if rating > 0 else "down").inc()

    def observe_job(self, timings: Mapping[str, float], *, ok: bool, pages: int = 0) -> None:
        """A job finished for good: ``ok`` with its document's ``pages`` ready, or failed."""
        self.jobs.labels("succeeded" if ok else "failed").inc()
        if ok:
            self.pages.inc(pages)
        for stage, seconds in timings.items():
            if stage in ("detect", "parse", "ocr", "chunk", "embed", "index"):
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
