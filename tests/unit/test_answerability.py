"""The answerability check: sources about the question's topic that do not answer it
give the not-found reply, not a confident wrong quote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm.answerability.base import Verdict
from llm.answerability.rules import RulesJudge
from llm.base import Source
from llm.language import detect_language
from llm.testing import FakeChatModel
from tests.fixtures import docs
from tests.unit.ingest_helpers import ingest


def source(text: str, n: int = 1) -> Source:
    return Source(n=n, chunk_id=f"c{n}", document_id="d", title="T", page=1, text=text)


def verdict(question: str, *texts: str) -> Verdict:
    sources = [source(t, n) for n, t in enumerate(texts, 1)]
    return RulesJudge().judge(question, sources, language=detect_language(question))


TREATY = "The treaty was signed by France and Spain in 1763 after seven years of war."


@pytest.mark.parametrize(
    ("question", "texts", "why"),
    [
        ("Who did not sign the treaty?", [TREATY], "negated"),
        ("Which country signed the treaty in 1950?", [TREATY], "1950"),
        (
            "In what year was the Scottish Parliament founded?",
            ["The Scottish Parliament was founded by the Scotland Act."],
            "date",
        ),
        ("公司是哪一年成立的？", ["公司成立于北京，员工分布在上海。"], "date"),
        (
            "What is the largest city in Scotland?",
            ["Inverness is the smallest city in Scotland."],
            "'largest'",
        ),
        (
            "After how many years does the vacation entitlement fall?",
            ["After 5 years of service your vacation entitlement rises to 27 days."],
            "'rises'",
        ),
        (
            "What is the minimum home office allowance?",
            ["New employees may claim a home office allowance of up to £400."],
            "'up to'",
        ),
    ],
)
def test_sources_on_the_topic_that_miss_what_the_question_demands_do_not_answer(
    question: str, texts: list[str], why: str
) -> None:
    v = verdict(question, *texts)
    assert not v.answerable
    assert why in v.reason


@pytest.mark.parametrize(
    ("question", "texts"),
    [
        ("Who did not sign the treaty?", [TREATY, "Portugal did not sign the treaty."]),
        ("Which countries signed the treaty in 1763?", [TREATY]),
        (
            "In what year was the Scottish Parliament founded?",
            ["The Scottish Parliament was founded in 1999 by the Scotland Act."],
        ),
        ("公司是哪一年成立的？", ["公司于1998年成立于北京。"]),
        # A restriction answers a negated question; a bare "when" may ask for a condition.
        (
            "Can I install an app that isn't in the Self Service catalogue?",
            ["You may only install apps from the Self Service catalogue."],
        ),
        (
            "When is a doctor's fit note required?",
            ["A fit note from a doctor is required from the 8th calendar day of absence."],
        ),
        ("What is the largest city in Scotland?", ["Glasgow is the largest city in Scotland."]),
        ("What is the maximum home office allowance?", ["An allowance of up to £400."]),
        ("What is the minimum notice?", ["At least 5 days' notice, and up to 4 weeks."]),
        # The word asked, in another form, with its antonym beside it.
        ("When does the sea level rise?", ["The sea level rises in spring and falls in autumn."]),
        # Nothing shared to judge by: left to the other gates, not refused here.
        ("What is the capital of France?", ["Die Hauptstadt Frankreichs ist Paris."]),
    ],
)
def test_sources_that_meet_the_question_answer(question: str, texts: list[str]) -> None:
    v = verdict(question, *texts)
    assert v.answerable, v.reason


HISTORY = [
    "# The war\n\nThe treaty was signed by France and Spain in 1763 after seven years of war."
    "\n\nThe army marched north in the spring of 1759."
]


@pytest.fixture
def history(container: Any) -> Any:
    return ingest(container, {"history.pdf": docs.make_pdf(HISTORY, title="History")})


def test_the_extractive_answer_abstains_on_a_question_its_sources_do_not_answer(
    container: Any, history: Any
) -> None:
    answered = container.answers.ask("Who signed the treaty in 1763?")
    assert not answered.abstained
    assert "France and Spain" in answered.text
    assert answered.provenance["answerability"]["answerable"] is True

    answer = container.answers.ask("Who did not sign the treaty in 1763?")
    assert answer.abstained
    assert answer.text == "I could not find this in the knowledge base."
    assert answer.citations == ()
    check = answer.provenance["answerability"]
    assert (check["judge"], check["answerable"]) == ("rules", False)
    assert "negated" in check["reason"]


def test_a_generative_model_is_not_asked_when_the_sources_do_not_answer(
    history: Any, rebuilt: Any
) -> None:
    model = FakeChatModel()
    model.enqueue("France and Spain signed it [1].")
    c = rebuilt(overrides={"chat_model": model})
    answer = c.answers.ask("How many soldiers died when the treaty was signed in 1950?")
    assert answer.abstained
    assert model.requests == []
    answer = c.answers.ask("Who signed the treaty in 1763?")
    assert not answer.abstained
    assert len(model.requests) == 1


class CitingModel(FakeChatModel):
    """Replies ``reply``, citing the source that holds its first word, whatever the
    question."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    def _next(self, request: Any) -> Any:
        word = self.reply.split()[0]
        n = next(s.n for s in request.sources if word in s.text)
        self.enqueue(f"{self.reply} [{n}].")
        return super()._next(request)


def test_a_reply_that_cites_a_passage_that_does_not_answer_is_flagged(
    container: Any, rebuilt: Any
) -> None:
    ingest(
        container,
        {
            "war.md": (HISTORY[0] + "\n").encode(),
            "peace.md": b"# The peace\n\nA second treaty was signed by Portugal and Britain.\n",
        },
    )
    # Some passage holds the year, so the model is asked; it quotes the other one.
    c = rebuilt(overrides={"chat_model": CitingModel("Portugal and Britain signed it")})
    answer = c.answers.ask("Who signed the treaty in 1763?")
    assert not answer.abstained
    assert answer.citations
    assert answer.citations[0].quote.startswith("A second treaty")
    assert answer.notice is not None
    assert "1763" in answer.notice
    cited = answer.provenance["answerability"]["cited"]
    assert cited["answerable"] is False

    # Quoting the passage that answers: no caution.
    c = rebuilt(overrides={"chat_model": CitingModel("France and Spain signed it")})
    answer = c.answers.ask("Who signed the treaty in 1763?")
    assert answer.notice is None
    assert answer.provenance["answerability"]["cited"]["answerable"] is True


def test_the_check_can_be_turned_off(history: Any, rebuilt: Any) -> None:
    from app.settings import AnswerabilitySettings

    c = rebuilt(answer={"answerability": AnswerabilitySettings(kind="off")})
    answer = c.answers.ask("Who did not sign the treaty in 1763?")
    assert not answer.abstained  # the old behaviour: the topic's best sentence, quoted
    assert answer.provenance["answerability"] is None


def test_an_unknown_judge_is_refused_with_the_choices() -> None:
    from app.settings import AnswerabilitySettings

    with pytest.raises(ValueError, match="off, reader, rules"):
        AnswerabilitySettings(kind="oracle")


def test_a_reader_that_cannot_load_falls_back_to_the_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from llm.answerability.registry import create_judge

    judge = create_judge("reader", model=str(tmp_path / "no-such-model"), allow_download=False)
    assert judge is not None
    assert judge.name == "rules"
    assert "answerability reader" in caplog.text
    assert "unavailable" in caplog.text
