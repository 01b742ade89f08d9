"""`lantern models compare`: two versions' numbers from their stored answers and thumbs."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from app.db.chat import ChatMessage, ChatSession, Feedback
from app.errors import PermissionDenied
from app.services.actor import Actor
from app.services.model_compare import (
    VersionStats,
    percentile,
    thumbs_up_test,
    two_proportion_z,
)


def test_z_test_matches_the_textbook_example() -> None:
    # 140 of 200 against 255 of 340: pooled p = 395/540 = 0.7315, SE = 0.03949,
    # z = (0.70 - 0.75) / 0.03949 = -1.266, two-sided p = 0.2055.
    z, p = two_proportion_z(140, 200, 255, 340)
    assert z == pytest.approx(-1.266, abs=5e-4)
    assert p == pytest.approx(0.2055, abs=5e-4)
    # A clear difference: 60 of 100 against 40 of 100, z = 2.828, p = 0.00468.
    z, p = two_proportion_z(60, 100, 40, 100)
    assert z == pytest.approx(2.828, abs=5e-4)
    assert p == pytest.approx(0.00468, abs=5e-5)


def stats(version: str, up: int, down: int) -> VersionStats:
    return VersionStats(version, up + down, None, None, None, None, 0, 0.0, 0, 0.0, up, down)


def test_the_verdict_says_not_significant_on_small_samples() -> None:
    big = thumbs_up_test(stats("v2", 60, 40), stats("base", 40, 60))
    assert big.significant
    assert "v2 has the higher thumbs-up rate" in big.verdict
    # The same rates on 10 ratings each: no conclusion.
    small = thumbs_up_test(stats("v2", 6, 4), stats("base", 4, 6))
    assert not small.significant
    assert small.verdict.startswith("not significant: too few ratings")
    # Enough ratings but rates too close.
    close = thumbs_up_test(stats("v2", 140, 60), stats("base", 255, 85))
    assert not close.significant
    assert close.verdict.startswith("not significant (p = 0.2")
    none = thumbs_up_test(stats("v2", 0, 0), stats("base", 50, 50))
    assert (none.z, none.significant) == (None, False)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [0.3, 1.2, 0.7, 5.0, 2.2, 0.9, 1.1]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


def answer_meta(
    version: str | None, total: float, ttft: float, finish: str, abstained: bool
) -> Any:
    provenance: dict[str, Any] = {"model": "fake", "prompt_version": "p1"}
    if version != "legacy":  # answers stored before versions existed have no such key
        provenance["model_version"] = version
    return {
        "standalone_question": "q",
        "abstained": abstained,
        "finish_reason": finish,
        "provenance": provenance,
        "timings": {"total_s": total, "ttft_s": ttft},
    }


@pytest.fixture
def seeded(container: Any) -> Any:
    """v2: 10 answers (1 error, 1 timeout, 2 abstentions), 4 up, 1 down; base: 6 answers
    (4 new, 2 from before versions), 1 up, 2 down; v3: one answer nobody compares."""
    user = container.auth.create_user("mia@example.com")
    other = container.auth.create_user("max@example.com")
    rows: list[tuple[str | None, float, str, bool, int | None]] = [
        *[("v2", 1.0 + i, "stop", False, None) for i in range(6)],
        ("v2", 0.5, "error", False, -1),
        ("v2", 0.5, "timeout", False, None),
        ("v2", 0.2, "stop", True, None),
        ("v2", 0.2, "stop", True, None),
        *[(None, 2.0 + i, "stop", False, None) for i in range(4)],
        ("legacy", 10.0, "stop", False, 1),
        ("legacy", 12.0, "error", False, -1),
        ("v3", 1.0, "stop", False, 1),
    ]
    thumbs_up_v2 = 4
    with container.sessions.begin() as s:
        chat = ChatSession(user_id=user.id)
        s.add(chat)
        s.flush()
        for seq, (version, total, finish, abstained, rating) in enumerate(rows):
            s.add(ChatMessage(session_id=chat.id, seq=2 * seq, role="user", content="q"))
            meta = answer_meta(version, total, total / 10, finish, abstained)
            msg = ChatMessage(session_id=chat.id, seq=2 * seq + 1, role="assistant", content="a")
            msg.meta = meta
            s.add(msg)
            s.flush()
            if rating is not None:
                s.add(Feedback(message_id=msg.id, user_id=user.id, rating=rating))
            if version == "v2" and thumbs_up_v2 and finish == "stop" and not abstained:
                thumbs_up_v2 -= 1
                s.add(Feedback(message_id=msg.id, user_id=user.id, rating=1))
            if version is None and seq == 12:
                s.add(Feedback(message_id=msg.id, user_id=user.id, rating=-1))
                # A second rater on the same answer counts as a second thumb.
                s.add(Feedback(message_id=msg.id, user_id=other.id, rating=-1))
    return container


def test_compare_adds_up_the_stored_answers_and_thumbs(seeded: Any) -> None:
    result = seeded.model_compare.compare(Actor.cli(), "v2", "base")
    a, b = result.a, result.b
    assert (a.version, a.answers, a.errors, a.abstentions) == ("v2", 10, 2, 2)
    assert a.error_rate == pytest.approx(0.2)
    assert a.abstention_rate == pytest.approx(0.2)
    assert (a.thumbs_up, a.thumbs_down) == (4, 1)
    latencies = [1.0 + i for i in range(6)] + [0.5, 0.5, 0.2, 0.2]
    assert a.latency_p50_s == pytest.approx(float(np.percentile(latencies, 50)))
    assert a.latency_p99_s == pytest.approx(float(np.percentile(latencies, 99)))
    assert a.ttft_p50_s == pytest.approx(float(np.percentile(latencies, 50)) / 10)
    # base: the answers naming no version, and those stored before versions existed.
    assert (b.answers, b.errors, b.thumbs_up, b.thumbs_down) == (6, 1, 1, 3)
    assert b.latency_p95_s == pytest.approx(float(np.percentile([2, 3, 4, 5, 10, 12], 95)))
    assert not result.thumbs_up.significant
    assert "too few ratings" in result.thumbs_up.verdict


def test_a_version_without_answers_compares_as_empty(seeded: Any) -> None:
    result = seeded.model_compare.compare(Actor.cli(), "v9", "v3")
    assert (result.a.answers, result.a.error_rate, result.a.latency_p50_s) == (0, None, None)
    assert (result.b.answers, result.b.thumbs_up) == (1, 1)


def test_only_admins_compare(container: Any) -> None:
    from app.services.auth import Principal

    member = Principal("u1", "mia@example.com", "Mia", "member", "session")
    with pytest.raises(PermissionDenied):
        container.model_compare.compare(Actor.of(member), "v2", "base")


def test_the_command_prints_both_versions_and_the_verdict(
    seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.cli.common import console
    from app.cli.main import app

    settings = seeded.settings
    monkeypatch.setenv("LANTERN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LANTERN_DATABASE__URL", settings.database_url)
    monkeypatch.setattr(console, "width", 200)
    out = CliRunner().invoke(app, ["models", "compare", "v2", "base", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert (data["a"]["answers"], data["b"]["answers"]) == (10, 6)
    assert data["a"]["thumbs_up_rate"] == pytest.approx(0.8)
    assert math.isclose(data["a"]["error_rate"], 0.2)
    table = CliRunner().invoke(app, ["models", "compare", "v2", "base"])
    assert table.exit_code == 0, table.output
    assert "20.0% (2)" in table.output
    assert "not significant" in table.output
