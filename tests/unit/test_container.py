"""The container wires; it does not work: building one touches neither the disk nor
the environment, and ``overrides`` is the one seam for putting fakes in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from app.container import Container
from app.services.actor import Actor
from app.settings import Settings
from llm.testing import FakeChatModel


def test_building_a_container_touches_neither_disk_nor_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    data = tmp_path / "nowhere-yet"
    Container(Settings(data_dir=data)).close()
    assert not data.exists()
    assert "GRADIO_ANALYTICS_ENABLED" not in os.environ


def test_an_unknown_override_is_refused_with_the_parts_there_are(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no part 'chat_modle'.*chat_model"):
        Container(Settings(data_dir=tmp_path), overrides={"chat_modle": object()})


def test_what_is_built_from_an_override_uses_it(settings: Any, embedder: Any) -> None:
    fake = FakeChatModel(name="the-override")
    c = Container(settings, overrides={"embedder": embedder, "chat_model": fake})
    try:
        c.migrate()
        assert c.chat_model is fake
        col = c.library.create_collection(Actor.cli(), "Notes")
        assert [v.collection.id for v in c.library.list_collections(Actor.cli())] == [col.id]
        answer = c.answers.ask("anything at all?")
        assert answer.abstained  # nothing ingested yet
        assert answer.provenance["model"] == "the-override"
    finally:
        c.close()


def test_closing_leaves_the_parts_it_was_given_open(container: Any) -> None:
    """A second container over the first one's indexes (another service in the same
    process) does not close them when it closes."""
    second = Container(container.settings, overrides={"vectors": container.vectors})
    second.close()
    assert container.vectors.count() == 0  # still open: a closed store refuses every call
