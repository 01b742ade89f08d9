"""`lantern finetune dataset`: rated answers and the documents, in the answer prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.errors import InvalidInput
from app.services.actor import Actor
from app.services.finetune_data import DatasetOptions, parse_correction
from llm.base import ChatMessage, Source
from llm.citations import verify
from llm.finetune.dataset import (
    DatasetError,
    Example,
    load_examples,
    load_manifest,
    split_by_document,
    write_dataset,
)
from llm.prompts import ANSWER_V1, NOT_FOUND, PROMPT_VERSION
from llm.testing import FakeChatModel
from tests.unit.ingest_helpers import ingest

CLI = Actor.cli()
HANDBOOK = """# Time off

New employees receive twenty-five vacation days per year, taken in agreement with their team.

Up to five unused vacation days may be carried over until the end of March of the next year.

# Expenses

Expense claims must be submitted within thirty days of the purchase, with the receipt attached.

# Equipment

Every employee receives a laptop and a headset on the first working day at the office.
"""
SECURITY = """# Passwords

Passwords must be at least sixteen characters long and are never shared with colleagues.

# Devices

Lost or stolen devices are reported to the security team within one hour of noticing.
"""
SECRET = "The acquisition of Contoso closes on the fourteenth of May for ninety million euros."


@pytest.fixture
def library(container: Any) -> Any:
    ingest(container, {"handbook.md": HANDBOOK.encode(), "security.md": SECURITY.encode()}, "hr")
    ingest(container, {"deal.md": f"# Deal\n\n{SECRET}\n".encode()}, "board")
    return container


def build(c: Any, out: Path, **kw: Any) -> dict[str, Any]:
    collections = kw.pop("collections", ("hr",))
    opts = DatasetOptions(questions="template", **kw)
    return dict(
        c.training_data.build(CLI, out, collection_names=collections, options=opts).manifest
    )


def all_examples(out: Path) -> list[dict[str, Any]]:
    return load_examples(out, "train") + load_examples(out, "validation")


def sources_of(example: dict[str, Any]) -> list[Source]:
    """The numbered sources as the prompt shows them, parsed back for verification."""
    text = example["messages"][-1]["content"]
    body = text.split("\n\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]
    out = []
    for n, block in enumerate(body.split("\n\n["), 1):
        lines = block.split("\n", 1)
        out.append(Source(n=n, chunk_id="", document_id="", title="", page=None, text=lines[1]))
    return out


def test_generated_examples_use_the_answer_prompt_and_cite_their_source(
    library: Any, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    m = build(library, out, questions_per_document=3, refusal_every=2)
    examples = all_examples(out)
    grounded = [e for e in examples if e["source"] == "grounded"]
    refusals = [e for e in examples if e["source"] == "refusal"]
    assert len(grounded) >= 4
    assert refusals
    for e in examples:
        system, *_, user = e["messages"]
        assert system == {"role": "system", "content": ANSWER_V1.system_en}
        assert user["content"].startswith("Sources:\n\n[1] ")
        assert user["content"].endswith(f"Question: {e['question']}")
    for e in grounded:
        # Every marker of the reply verifies against the source it names, as a real
        # answer's would, and the quote is the chunk's own sentence.
        checked = verify(e["target"], sources_of(e))
        assert checked.dropped_markers == 0, e["target"]
        assert not checked.unsupported, e["target"]
        assert checked.citations
        assert e["answer_chunk_ids"]
    for e in refusals:
        assert e["target"] == NOT_FOUND["en"]
        assert e["document_ids"]  # the question's document, left out of its context
    assert m["prompt_version"] == PROMPT_VERSION
    assert m["counts"]["grounded"]["train"] + m["counts"]["grounded"]["validation"] == len(grounded)


def test_the_dataset_draws_only_on_the_named_collections(library: Any, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    m = build(library, out, questions_per_document=4)
    assert [c["name"] for c in m["collections"]] == ["hr"]
    text = (out / "train.jsonl").read_text() + (out / "validation.jsonl").read_text()
    assert "Contoso" not in text
    everything = build(library, tmp_path / "all", collections=())
    assert {c["name"] for c in everything["collections"]} == {"hr", "board"}


def test_no_document_is_in_both_splits(library: Any, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(library, out, collections=(), questions_per_document=3, validation_share=0.4)
    train = {d for e in load_examples(out, "train") for d in e["document_ids"]}
    validation = {d for e in load_examples(out, "validation") for d in e["document_ids"]}
    assert train
    assert validation
    assert not train & validation


def test_the_same_build_gives_the_same_dataset(library: Any, tmp_path: Path) -> None:
    a = build(library, tmp_path / "a", seed=3)
    b = build(library, tmp_path / "b", seed=3)
    assert a["hash"] == b["hash"]
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (
        tmp_path / "b" / "train.jsonl"
    ).read_bytes()


def _ask(c: Any, who: Actor, question: str) -> str:
    chat = c.chats.create(who)
    events = list(c.chats.ask(who, chat.id, question))
    return events[-1].message.id


def test_rated_answers_become_examples_in_the_prompt_they_were_answered_from(
    library: Any, rebuilt: Any, tmp_path: Path
) -> None:
    model = FakeChatModel()
    c = rebuilt(overrides={"chat_model": model})
    user = c.auth.create_user("ada@example.com", password="long enough password", role="admin")
    who = Actor.of(c.auth.principal_for(user))
    model.enqueue("New employees receive twenty-five vacation days per year [1].")
    liked = _ask(c, who, "How many vacation days do new employees get?")
    liked_prompt = model.requests[-1].messages
    model.enqueue("Claims are due in a year [1].")
    corrected = _ask(c, who, "When are expense claims due?")
    model.enqueue("Passwords can be shared [1].")
    disliked = _ask(c, who, "Can I share my password?")
    c.chats.feedback(who, liked, rating=1)
    c.chats.feedback(
        who,
        corrected,
        rating=-1,
        comment="Correction: Expense claims must be submitted within thirty days of the "
        "purchase [1].",
    )
    c.chats.feedback(who, disliked, rating=-1, comment="wrong")

    out = tmp_path / "ds"
    # The answers searched every collection: a dataset of "hr" alone may not use them.
    with pytest.raises(InvalidInput, match="2 drew on other collections"):
        build(c, tmp_path / "hr", questions_per_document=0, validation_share=0)
    m = build(c, out, collections=(), questions_per_document=0, validation_share=0)
    examples = {e["source"]: e for e in load_examples(out, "train")}
    assert set(examples) == {"feedback", "correction"}
    fb = examples["feedback"]
    assert [ChatMessage(**x) for x in fb["messages"]] == list(liked_prompt)
    assert fb["target"] == "New employees receive twenty-five vacation days per year [1]."
    assert examples["correction"]["target"].startswith("Expense claims must be submitted")
    assert m["excluded"]["downvoted_without_correction"] == 1


def test_an_answer_whose_document_changed_is_left_out(
    library: Any, rebuilt: Any, tmp_path: Path
) -> None:
    model = FakeChatModel(default="New employees receive twenty-five vacation days per year [1].")
    c = rebuilt(overrides={"chat_model": model})
    user = c.auth.create_user("ada@example.com", password="long enough password", role="admin")
    who = Actor.of(c.auth.principal_for(user))
    c.chats.feedback(who, _ask(c, who, "How many vacation days do new employees get?"), rating=1)
    [view] = [
        d
        for d in c.library.list_documents(CLI, c.collections.get_by_name("hr").id)
        if d.document.name == "handbook.md"
    ]
    c.library.delete_document(CLI, view.document.id)
    m = build(c, tmp_path / "ds", questions_per_document=1, validation_share=0)
    assert m["excluded"]["sources_changed"] == 1
    assert m["counts"]["feedback"]["train"] == 0


@pytest.mark.parametrize(
    ("comment", "correction"),
    [
        ("Correction: 25 days [1].", "25 days [1]."),
        ("correct answer:  thirty days [2]", "thirty days [2]"),
        ("更正：二十五天 [1]。", "二十五天 [1]。"),
        ("This is wrong, it is 25 days", None),
        ("Correction:", None),
        ("", None),
    ],
)
def test_a_correction_is_a_comment_that_starts_with_correction(
    comment: str, correction: str | None
) -> None:
    assert parse_correction(comment) == correction


def _example(doc: str, n: int) -> Example:
    msgs = (ChatMessage("user", f"q{n}"),)
    return Example(
        id=str(n),
        source="grounded",
        messages=msgs,
        target=f"a{n}",
        question=f"q{n}",
        language="en",
        document_ids=(doc,),
        collection_ids=("c",),
    )


def test_examples_sharing_a_document_stay_together() -> None:
    examples = [_example(f"d{i % 5}", i) for i in range(40)]
    linked = Example(**{**_example("d0", 99).__dict__, "document_ids": ("d0", "d1")})
    train, validation = split_by_document([*examples, linked], validation_share=0.3, seed=1)
    assert validation
    assert not {d for e in train for d in e.document_ids} & {
        d for e in validation for d in e.document_ids
    }


def test_a_new_prompt_version_is_a_new_dataset_version(tmp_path: Path) -> None:
    rows = [_example("d", 1)]
    a = write_dataset(
        tmp_path / "a", train=rows, validation=[], prompt_version="answer-v1", collections=[]
    )
    b = write_dataset(
        tmp_path / "b", train=rows, validation=[], prompt_version="answer-v2", collections=[]
    )
    assert a.hash != b.hash
    assert a.version.startswith("answer-v1-")


def test_a_folder_that_is_not_a_dataset_says_so(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="lantern finetune dataset"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_examples(tmp_path, "train")


def test_the_command_prints_the_counts(
    library: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Any
) -> None:
    from app.cli.main import app

    monkeypatch.setenv("LANTERN_DATA_DIR", str(library.settings.data_dir))
    monkeypatch.setenv("LANTERN_DATABASE__URL", library.settings.database_url)
    monkeypatch.setattr("app.container.create_embedder", lambda **_: embedder)
    out = tmp_path / "ds"
    args = ["finetune", "dataset", "--out", str(out), "--questions", "template"]
    result = CliRunner().invoke(app, [*args, "-c", "hr", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["collections"] == [
        {"id": library.collections.get_by_name("hr").id, "name": "hr"}
    ]
    bad = CliRunner().invoke(app, [*args, "-c", "nope"])
    assert bad.exit_code == 1
    assert "nope" in bad.output
