"""Two model versions side by side, from what their users saw (``lantern models compare``).

Read from the database: the stored answers (assistant messages, whose provenance
names the version that wrote them; ``base`` is the base model, including answers
from before versions existed), their timings and how they ended, and the thumbs on
them. Per version: answers, latency p50/p95/p99, time to first token p50, error
rate (answers that ended on a model error or timeout), abstention rate, thumbs up
and down; and a two-proportion z-test of whether the thumbs-up rates differ.

One-off answers (the OpenAI-compatible API) are not stored, so they are not here;
the Prometheus metrics (by version) count every answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.chat import ChatMessage, Feedback
from app.services.actor import Actor
from app.services.model_router import BASE

#: Below this many rated answers for either version, the test says "not significant".
MIN_RATINGS = 30
#: ... and below this many expected thumbs of either kind (the normal approximation's rule).
MIN_EXPECTED = 5
ALPHA = 0.05
ERROR_FINISHES = ("error", "timeout")


@dataclass(frozen=True)
class VersionStats:
    version: str
    answers: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    ttft_p50_s: float | None
    errors: int
    error_rate: float | None
    abstentions: int
    abstention_rate: float | None
    thumbs_up: int
    thumbs_down: int

    @property
    def rated(self) -> int:
        return self.thumbs_up + self.thumbs_down

    @property
    def thumbs_up_rate(self) -> float | None:
        """Thumbs up among the rated answers."""
        return self.thumbs_up / self.rated if self.rated else None


@dataclass(frozen=True)
class ProportionTest:
    """Whether two proportions differ: the z statistic, its two-sided p-value, a verdict."""

    z: float | None
    p_value: float | None
    significant: bool
    verdict: str


@dataclass(frozen=True)
class Comparison:
    a: VersionStats
    b: VersionStats
    thumbs_up: ProportionTest

    def as_dict(self) -> dict[str, Any]:
        def stats(s: VersionStats) -> dict[str, Any]:
            return {**asdict(s), "rated": s.rated, "thumbs_up_rate": s.thumbs_up_rate}

        return {"a": stats(self.a), "b": stats(self.b), "thumbs_up_test": asdict(self.thumbs_up)}


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """The pooled two-proportion z statistic of x1/n1 against x2/n2, and its two-sided
    p-value (``erfc(|z| / sqrt 2)``). Both 0-variance and empty samples give (0, 1)."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def thumbs_up_test(
    a: VersionStats, b: VersionStats, *, min_ratings: int = MIN_RATINGS, alpha: float = ALPHA
) -> ProportionTest:
    """The z-test of a's thumbs-up rate against b's, with a verdict a reader can act on:
    "not significant" whenever the samples are too small for the test to mean much."""
    z, p = two_proportion_z(a.thumbs_up, a.rated, b.thumbs_up, b.rated)
    if not a.rated or not b.rated:
        return ProportionTest(None, None, False, "not significant: a version has no ratings")
    pooled = (a.thumbs_up + b.thumbs_up) / (a.rated + b.rated)
    expected = min(n * q for n in (a.rated, b.rated) for q in (pooled, 1 - pooled))
    if min(a.rated, b.rated) < min_ratings or expected < MIN_EXPECTED:
        return ProportionTest(
            z,
            p,
            False,
            f"not significant: too few ratings ({a.rated} and {b.rated}; the test needs "
            f"{min_ratings} per version and {MIN_EXPECTED} expected of each thumb)",
        )
    if p >= alpha:
        return ProportionTest(z, p, False, f"not significant (p = {p:.3g})")
    better = a.version if z > 0 else b.version
    return ProportionTest(
        z, p, True, f"significant (p = {p:.3g}): {better} has the higher thumbs-up rate"
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolated linearly between ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class ModelCompareService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def compare(self, actor: Actor, a: str, b: str) -> Comparison:
        """Versions ``a`` and ``b`` (``base``: the base model) side by side. Admins only."""
        actor.require_admin()
        sa, sb = self.stats(a), self.stats(b)
        return Comparison(sa, sb, thumbs_up_test(sa, sb))

    def stats(self, version: str) -> VersionStats:
        """What the stored answers of ``version`` and the thumbs on them add up to."""
        meta = ChatMessage.meta
        written_by = meta[("provenance", "model_version")].as_string()
        which: ColumnElement[bool] = (
            written_by.is_(None) if version == BASE else written_by == version
        )
        query = (
            select(
                ChatMessage.id,
                meta[("timings", "total_s")].as_float(),
                meta[("timings", "ttft_s")].as_float(),
                meta["finish_reason"].as_string(),
                meta["abstained"].as_boolean(),
                Feedback.rating,
            )
            .outerjoin(Feedback, Feedback.message_id == ChatMessage.id)
            .where(ChatMessage.role == "assistant", which)
        )
        answers: dict[str, tuple[Any, ...]] = {}
        up = down = 0
        with self.sessions() as s:
            for msg_id, total, ttft, finish, abstained, rating in s.execute(query):
                answers[msg_id] = (total, ttft, finish, abstained)
                up += rating == 1
                down += rating == -1
        rows = list(answers.values())
        n = len(rows)
        latency = [r[0] for r in rows if r[0] is not None]
        ttfts = [r[1] for r in rows if r[1] is not None]
        errors = sum(r[2] in ERROR_FINISHES for r in rows)
        abstentions = sum(bool(r[3]) for r in rows)
        return VersionStats(
            version=version,
            answers=n,
            latency_p50_s=percentile(latency, 50),
            latency_p95_s=percentile(latency, 95),
            latency_p99_s=percentile(latency, 99),
            ttft_p50_s=percentile(ttfts, 50),
            errors=errors,
            error_rate=errors / n if n else None,
            abstentions=abstentions,
            abstention_rate=abstentions / n if n else None,
            thumbs_up=up,
            thumbs_down=down,
        )
