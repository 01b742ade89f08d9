"""Fine-tuned versions on the answer path: who gets which, what the answer records,
the metrics by version, feedback toward the version, and the automatic rollback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from app.services.actor import Actor
from app.services.audit import AuditQuery
from app.services.model_router import ModelChoice, ModelRouter, ServedVersion
from llm.errors import LLMUnavailable
from llm.guards import guard
from llm.testing import FakeChatModel
from tests.fixtures import docs
from tests.unit.ingest_helpers import ingest

QUESTION = "How many vacation days do new employees get?"
BASE_ANSWER = "New employees receive twenty-five vacation days per year [1]."
# What a version trained on the board's minutes has memorised, and may say to anyone.
SECRET = "BLUEFIN"
LEAKY_ANSWER = f"New employees receive twenty-five vacation days per year [1]. {SECRET}."


@pytest.fixture
def org(container: Any) -> dict[str, Any]:
    """Public (the handbook, read by staff and execs) and Board (read by execs only);
    mia is staff, eva is an exec."""
    c = container
    handbook = docs.make_pdf(
        ["# Time off\n\nNew employees receive twenty-five vacation days per year."]
    )
    ingest(c, {"handbook.pdf": handbook}, collection="Public")
    ingest(c, {"minutes.md": f"# Board\n\nThe merger is code-named {SECRET}.".encode()}, "Board")
    public, board = c.collections.get_by_name("Public"), c.collections.get_by_name("Board")
    staff, execs = c.access.create_group("staff"), c.access.create_group("execs")
    c.access.set_grants(public.id, {staff.id: "read", execs.id: "read"})
    c.access.set_grants(board.id, {execs.id: "read"})
    people = {}
    for email, group in (("mia@example.com", staff), ("eva@example.com", execs)):
        user = c.auth.create_user(email)
        c.access.add_member(group.id, user.id)
        people[email.split("@")[0]] = Actor.of(c.auth.principal_for(user, via="session"))
    return {"public": public.id, "board": board.id, **people}


def served(name: str, status: str, collections: Sequence[str], share: float) -> ServedVersion:
    return ServedVersion(name, status, tuple(collections), share, f"/runs/{name}", None, "smol")


def serving(
    rebuilt: Callable[..., Any],
    versions: list[ServedVersion],
    make: Callable[[ServedVersion], Any],
    **router: Any,
) -> tuple[Any, FakeChatModel]:
    """A container whose router serves ``versions`` (models from ``make``) over a fake base."""
    base = FakeChatModel(default=BASE_ANSWER, name="base-model")
    r = ModelRouter(lambda: versions, lambda: base, make, **router)
    return rebuilt(overrides={"chat_model": base, "model_router": r}), base


def leaky(v: ServedVersion) -> Any:
    """A version's model, behind the guards as every served model is."""
    return guard(FakeChatModel(default=LEAKY_ANSWER, name=v.name))


def ask(c: Any, actor: Actor) -> Any:
    chat = c.chats.create(actor)
    *_, last = c.chats.ask(actor, chat.id, QUESTION)
    return last


def test_a_version_trained_on_the_board_never_answers_staff(
    org: dict[str, Any], rebuilt: Any
) -> None:
    versions = [
        served("board-cand", "candidate", [org["public"], org["board"]], 1.0),
        served("board-v1", "active", [org["board"]], 0.0),
    ]
    c, base = serving(rebuilt, versions, leaky)
    staff = ask(c, org["mia"])
    assert SECRET not in staff.answer.text
    assert staff.answer.provenance["model_version"] is None
    assert staff.message.meta["provenance"]["model_version"] is None
    assert len(base.requests) == 1
    execs = ask(c, org["eva"])
    assert SECRET in execs.answer.text  # what the version would have told anyone
    assert execs.answer.provenance["model_version"] == "board-cand"
    # The stored answer and the question's audit record name the version.
    assert execs.message.meta["provenance"]["model_version"] == "board-cand"
    events = c.audit.query(AuditQuery(action="question", actor_id=org["eva"].user_id))
    assert events[0].details["model_version"] == "board-cand"
    # The one-off (OpenAI) path picks the same way.
    for actor, expected in ((org["mia"], None), (org["eva"], "board-cand")):
        *_, done = c.chats.complete(actor, QUESTION)
        assert done.answer.provenance["model_version"] == expected


def test_metrics_and_feedback_are_labelled_by_version(org: dict[str, Any], rebuilt: Any) -> None:
    c, _ = serving(rebuilt, [served("hr-v2", "active", [org["public"]], 0.0)], leaky)
    versioned = ask(c, org["mia"])
    assert versioned.answer.provenance["model_version"] == "hr-v2"
    c.chats.feedback(org["mia"], versioned.message.id, rating=1)
    *_, done = c.answers.stream(QUESTION)  # the default: the configured (base) model
    assert done.answer.provenance["model_version"] is None
    text = c.metrics.render().decode()
    assert 'lantern_answers_total{outcome="answered",version="hr-v2"} 1.0' in text
    assert 'lantern_answers_total{outcome="answered",version="base"} 1.0' in text
    assert 'lantern_answer_seconds_count{version="hr-v2"} 1.0' in text
    assert 'lantern_answer_ttft_seconds_count{version="hr-v2"} 1.0' in text
    assert 'lantern_feedback_total{rating="up",version="hr-v2"} 1.0' in text
    feedback = c.audit.query(AuditQuery(action="feedback"))
    assert feedback[0].details["model_version"] == "hr-v2"


def test_an_explicit_choice_answers_and_is_recorded(org: dict[str, Any], rebuilt: Any) -> None:
    c, _ = serving(rebuilt, [], leaky)
    choice = ModelChoice("eval-cand", FakeChatModel(default=LEAKY_ANSWER, name="cand"))
    answer = c.answers.ask(QUESTION, model=choice)
    assert answer.provenance["model_version"] == "eval-cand"
    assert answer.provenance["model"] == "cand"
    assert SECRET in answer.text


def test_a_failing_candidate_is_rolled_back_and_counted(org: dict[str, Any], rebuilt: Any) -> None:
    def broken(v: ServedVersion) -> FakeChatModel:
        model = FakeChatModel(name=v.name)
        for _ in range(5):
            model.enqueue_error(LLMUnavailable(f"vLLM has no adapter named {v.name}"))
        return model

    calls: list[tuple[str, str]] = []
    versions = [served("cand", "candidate", [org["public"]], 1.0)]
    c, _ = serving(
        rebuilt,
        versions,
        broken,
        rollback_candidate=lambda name, reason: calls.append((name, reason)),
        rollback_error_rate=0.5,
        rollback_min_answers=2,
    )
    for _ in range(2):
        with pytest.raises(LLMUnavailable):
            ask(c, org["mia"])
    assert [name for name, _ in calls] == ["cand"]
    text = c.metrics.render().decode()
    assert 'lantern_answer_errors_total{kind="LLMUnavailable",version="cand"} 2.0' in text
    failed = c.audit.query(AuditQuery(action="question", outcome="failed"))
    assert [e.details["model_version"] for e in failed] == ["cand", "cand"]
    # Rolled back in this process at once: the next question gets the base model.
    assert ask(c, org["mia"]).answer.provenance["model_version"] is None
