"""Which model answers whom: permissions first, then the A/B sample, then rollback."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from app.services.auth import Principal
from app.services.model_router import ModelRouter, ServedVersion, bucket
from llm.errors import LLMUnavailable
from llm.testing import FakeChatModel

BASE = FakeChatModel(name="base")


def version(
    name: str, status: str = "active", collections: Sequence[str] = ("hr",), share: float = 0.0
) -> ServedVersion:
    return ServedVersion(
        name=name,
        status=status,
        collection_ids=tuple(collections),
        traffic_share=share,
        adapter_path=f"/runs/{name}/adapter",
        gguf_path=None,
        base_model="SmolLM2-135M-Instruct",
    )


def user(user_id: str = "u1") -> Principal:
    return Principal(
        user_id=user_id, email=f"{user_id}@x.example", name=user_id, role="member", via="session"
    )


class Closable(FakeChatModel):
    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.closed = threading.Event()

    def close(self) -> None:
        self.closed.set()


class Served:
    """What the registry serves, changeable mid-test; models built are kept by name."""

    def __init__(self, *versions: ServedVersion) -> None:
        self.versions = list(versions)
        self.built: dict[str, list[Closable]] = {}

    def make(self, v: ServedVersion) -> Closable:
        model = Closable(v.name)
        self.built.setdefault(v.name, []).append(model)
        return model

    def router(self, **kw: Any) -> ModelRouter:
        return ModelRouter(lambda: self.versions, lambda: BASE, self.make, **kw)


# -- permissions: the invariant ----------------------------------------------------------


def test_a_version_trained_on_a_restricted_collection_never_answers_an_outsider() -> None:
    served = Served(
        version("secret-cand", "candidate", ["hr", "board"], share=1.0),
        version("secret-active", "active", ["board"]),
    )
    router = served.router()
    for i in range(200):  # every bucket: share 1.0 takes all who may read "board"
        choice = router.choose(user(f"u{i}"), {"hr", "public"})
        assert (choice.version, choice.model) == (None, BASE)
    insider = router.choose(user("u1"), {"hr", "board"})
    assert insider.version == "secret-cand"
    assert insider.model.name == "secret-cand"


def test_an_outsider_gets_the_next_eligible_version() -> None:
    served = Served(
        version("board-cand", "candidate", ["board"], share=1.0),
        version("hr-active", "active", ["hr"]),
    )
    router = served.router()
    assert router.choose(user(), {"hr"}).version == "hr-active"
    assert router.choose(user(), {"hr", "board"}).version == "board-cand"
    assert router.choose(user(), set()).version is None


def test_the_command_line_reads_everything() -> None:
    router = Served(version("board-active", "active", ["board"])).router()
    assert router.choose(None, set()).version == "board-active"


def test_no_version_served_means_the_base_model() -> None:
    choice = Served().router().choose(user(), {"hr"})
    assert (choice.version, choice.model) == (None, BASE)


# -- A/B -------------------------------------------------------------------------------


def test_a_candidates_share_of_users_is_sticky() -> None:
    served = Served(version("cand", "candidate", share=0.3), version("prod", "active"))
    router = served.router()
    users = [user(f"user-{i}") for i in range(1000)]
    first = [router.choose(u, {"hr"}).version for u in users]
    share = first.count("cand") / len(users)
    assert 0.25 < share < 0.35, share
    assert set(first) == {"cand", "prod"}
    # The same users, asked again (and by a new router, as after a restart): same models.
    again = served.router()
    assert [again.choose(u, {"hr"}).version for u in users] == first
    assert [bool(bucket("cand", u.user_id) < 0.3) for u in users] == [v == "cand" for v in first]


def test_share_zero_sends_nobody_and_a_growing_share_keeps_its_users() -> None:
    served = Served(version("cand", "candidate", share=0.0), version("prod", "active"))
    router = served.router()
    users = [user(f"user-{i}") for i in range(300)]
    assert {router.choose(u, {"hr"}).version for u in users} == {"prod"}
    served.versions[0] = version("cand", "candidate", share=0.1)
    small = {u.user_id for u in users if router.choose(u, {"hr"}).version == "cand"}
    served.versions[0] = version("cand", "candidate", share=0.5)
    large = {u.user_id for u in users if router.choose(u, {"hr"}).version == "cand"}
    assert small
    assert small < large


def test_without_an_active_version_the_rest_get_the_base_model() -> None:
    router = Served(version("cand", "candidate", share=0.5)).router()
    got = {router.choose(user(f"u{i}"), {"hr"}).version for i in range(100)}
    assert got == {"cand", None}


# -- models: built once, closed when the version leaves ---------------------------------


def test_each_versions_model_is_built_once_and_closed_when_it_leaves_serving() -> None:
    served = Served(version("v1"))
    router = served.router()
    for _ in range(3):
        router.choose(user(), {"hr"})
    [model] = served.built["v1"]
    served.versions = [version("v1", "candidate", share=0.2)]  # demoted: the same model
    router.choose(user(), {"hr"})
    assert len(served.built["v1"]) == 1
    served.versions = [version("v2")]
    assert router.choose(user(), {"hr"}).version == "v2"
    assert model.closed.wait(5)
    router.close()
    assert served.built["v2"][0].closed.is_set()


def test_a_version_that_cannot_be_built_falls_back_and_counts_as_an_error() -> None:
    def broken(v: ServedVersion) -> Any:
        raise LLMUnavailable("GGUF model file not found: /runs/v1/gguf/v1-f16.gguf")

    router = ModelRouter(lambda: [version("v1")], lambda: BASE, broken)
    assert router.choose(user(), {"hr"}).version is None
    assert router.tally("v1") == (1, 1)


# -- automatic rollback -----------------------------------------------------------------


def test_a_candidate_past_the_error_rate_is_rolled_back_once() -> None:
    served = Served(version("cand", "candidate", share=1.0), version("prod", "active"))
    calls: list[tuple[str, str]] = []
    router = served.router(
        rollback_candidate=lambda name, reason: calls.append((name, reason)),
        rollback_error_rate=0.2,
        rollback_min_answers=10,
    )
    assert router.choose(user(), {"hr"}).version == "cand"
    for failed in [True] * 3 + [False] * 6:  # 3 of 9: past 20%, but under 10 answers
        router.record("cand", failed=failed)
    assert calls == []
    router.record("cand", failed=False)  # 3 of 10 = 30% > 20%
    [(name, reason)] = calls
    assert name == "cand"
    assert "30%" in reason
    assert "20%" in reason
    router.record("cand", failed=True)
    assert len(calls) == 1
    # Even before the registry retires it, this process no longer sends anyone to it.
    assert router.choose(user(), {"hr"}).version == "prod"


def test_errors_under_the_rate_and_active_versions_are_not_rolled_back() -> None:
    served = Served(version("cand", "candidate", share=1.0), version("prod", "active"))
    calls: list[str] = []
    router = served.router(
        rollback_candidate=lambda name, reason: calls.append(name),
        rollback_error_rate=0.2,
        rollback_min_answers=10,
    )
    router.choose(user(), {"hr"})
    for i in range(50):
        router.record("cand", failed=i % 5 == 4)  # never past 20%
        router.record("prod", failed=True)
    assert calls == []


def test_a_failing_rollback_callback_does_not_break_the_answer() -> None:
    def fails(name: str, reason: str) -> None:
        raise RuntimeError("database is locked")

    served = Served(version("cand", "candidate", share=1.0))
    router = served.router(rollback_candidate=fails, rollback_min_answers=1)
    router.choose(user(), {"hr"})
    router.record("cand", failed=True)  # logged, not raised
    assert router.choose(user(), {"hr"}).version is None
