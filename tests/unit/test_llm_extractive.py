"""The extractive answerer: verbatim, cited sentences from the sources, or the not-found reply."""

from __future__ import annotations

import pytest

from llm.backends.extractive import (
    NOT_FOUND_TEXT,
    NOT_FOUND_TEXT_ZH,
    ExtractiveChatModel,
    split_sentences,
    terms,
)
from llm.base import Source
from llm.citations import parse_markers, verify
from llm.guards import approx_tokens
from llm.registry import create_chat_model
from tests.contract.chat_model_contract import make_request, split


def src(n: int, text: str, title: str = "Doc") -> Source:
    return Source(n=n, chunk_id=f"c{n}", document_id=f"d{n}", title=title, page=1, text=text)


HANDBOOK = src(
    1,
    "Leave policy. Full-time employees receive 25 vacation days per year. Vacation requests "
    "must be approved by a manager. Unused days can be carried over until 31 March.",
)
IT = src(
    2,
    "Passwords must be at least 12 characters long. Never share your password with anyone. "
    "Laptops lock after 5 minutes.",
)
BENEFITS = src(
    3,
    "Employees may buy up to 5 extra vacation days per year through the benefits portal.",
)


def answer(question: str, *sources: Source, max_tokens: int = 512) -> str:
    return (
        create_chat_model("extractive")
        .complete(make_request(question, tuple(sources), max_tokens=max_tokens))
        .text
    )


def quoted(text: str) -> list[tuple[str, int]]:
    """(sentence, cited n) pairs of an extractive answer."""
    markers = parse_markers(text)
    out, pos = [], 0
    for m in markers:
        out.append((text[pos : m.start].strip(), m.n))
        pos = m.end
    return out


def test_quotes_the_supporting_sentence_verbatim_and_cites_its_source() -> None:
    text = answer("How long must passwords be?", HANDBOOK, IT)
    assert quoted(text)[0] == ("Passwords must be at least 12 characters long.", 2)
    for sentence, n in quoted(text):
        assert sentence in {1: HANDBOOK, 2: IT}[n].text


def test_every_citation_verifies_as_an_exact_quote() -> None:
    sources = [HANDBOOK, IT, BENEFITS]
    text = answer("How many vacation days do employees get per year?", *sources)
    checked = verify(text, sources)
    assert checked.unsupported == ()
    assert checked.dropped_markers == 0
    assert checked.citations
    assert all(c.exact for c in checked.citations)


def test_prefers_distinct_sources_best_first() -> None:
    text = answer("How many vacation days do employees get per year?", HANDBOOK, IT, BENEFITS)
    cited = quoted(text)
    assert cited[0] == ("Full-time employees receive 25 vacation days per year.", 1)
    assert [n for _, n in cited][:2] == [1, 3]
    assert 2 not in [n for _, n in cited]


def test_no_meaningful_support_gives_exactly_the_not_found_reply() -> None:
    assert answer("How many weeks of parental leave do I get?", HANDBOOK, IT) == NOT_FOUND_TEXT
    assert answer("What is the capital of Peru?", HANDBOOK, IT) == NOT_FOUND_TEXT
    assert answer("How long must passwords be?") == NOT_FOUND_TEXT  # no sources
    assert answer("", HANDBOOK) == NOT_FOUND_TEXT


def test_not_found_replies_are_the_ones_the_prompts_ask_for() -> None:
    prompts = pytest.importorskip("llm.prompts")
    assert prompts.NOT_FOUND["en"] == NOT_FOUND_TEXT
    assert prompts.NOT_FOUND["zh"] == NOT_FOUND_TEXT_ZH
    assert prompts.is_not_found(NOT_FOUND_TEXT)


def test_pdf_line_breaks_inside_a_sentence() -> None:
    pdf = src(1, "Remote work\n\nStaff may work remotely up to\nthree days a week with approval.")
    text = answer("How many days a week may staff work remotely?", pdf)
    assert text == "Staff may work remotely up to three days a week with approval. [1]"
    assert all(c.exact for c in verify(text, [pdf]).citations)


def test_chinese_question_and_sources() -> None:
    hr = src(1, "休假制度。正式员工每年享有十五天带薪年假。年假需提前一周申请！")
    it = src(2, "密码长度不得少于十二位。请勿与他人共享密码。")
    text = answer("年假有多少天？", hr, it)
    assert quoted(text)[0] == ("正式员工每年享有十五天带薪年假。", 1)
    assert all(c.exact for c in verify(text, [hr, it]).citations)
    assert answer("密码要多长？", hr, it).startswith("密码长度不得少于十二位。 [2]")
    assert answer("公司的停车政策是什么？", hr, it) == NOT_FOUND_TEXT_ZH


def test_chinese_pdf_text_broken_across_lines() -> None:
    hr = src(1, "正式员工每年享有\n十五天带薪年假。")
    text = answer("员工每年有多少天年假？", hr)
    assert text == "正式员工每年享有十五天带薪年假。 [1]"
    assert all(c.exact for c in verify(text, [hr]).citations)


def test_streams_word_by_word() -> None:
    model = create_chat_model("extractive")
    events = list(model.stream(make_request("How long must passwords be?", (HANDBOOK, IT))))
    text, done = split(events)
    assert len(events) > 5
    assert done[0].completion is not None
    assert text == done[0].completion.text
    zh = list(
        model.stream(make_request("年假有多少天？", (src(1, "正式员工每年享有十五天带薪年假。"),)))
    )
    assert [e.delta for e in zh[:3]] == ["正", "式", "员"]


def test_max_tokens_keeps_whole_sentences_and_their_markers() -> None:
    question = "How many vacation days do employees get per year?"
    full = answer(question, HANDBOOK, IT, BENEFITS)
    short = answer(question, HANDBOOK, IT, BENEFITS, max_tokens=12)
    assert short == "Full-time employees receive 25 vacation days per year. [1]"
    assert approx_tokens(short) <= 12 < approx_tokens(full)
    assert answer(question, HANDBOOK, max_tokens=4) == "Full-time employees receive [1]"


def test_only_the_top_sources_are_read() -> None:
    filler = [src(i, f"Unrelated text number {i} about the canteen menu.") for i in range(1, 6)]
    late = src(6, "Passwords must be at least 12 characters long.")
    assert answer("How long must passwords be?", *filler, late) == NOT_FOUND_TEXT
    model = ExtractiveChatModel(max_sources=6)
    text = model.complete(make_request("How long must passwords be?", (*filler, late))).text
    assert text.endswith("[6]")


def test_analysis_stems_and_drops_stop_words() -> None:
    pytest.importorskip("Stemmer", reason="PyStemmer is not installed")
    assert terms("What are the policies?") == terms("policy")
    assert "the" not in terms("the vacation")
    assert terms("the vacation")


def test_sentences_split_on_punctuation_blank_lines_and_list_items() -> None:
    text = "Benefits\n\nYou get a laptop. You get a phone!\n- Item one is here\n- Item two is here"
    assert split_sentences(text) == [
        "You get a laptop.",
        "You get a phone!",
        "Item one is here",
        "Item two is here",
    ]
    # A question is not an answer: it is left out (as context for what follows).
    assert split_sentences("员工每年享有年假。病假需要证明！我可以请假吗？") == [
        "员工每年享有年假。",
        "病假需要证明！",
    ]


# -- sentences in context ------------------------------------------------------------

BENEFITS_PAGE = src(
    4,
    "7. Benefits\n\nPrivate health plan\n\nChoose one of three levels of cover:\n\n"
    "Plan Who is covered\nEmployee cost per\nmonth\n\nOutpatient limit per\nyear\n\n"
    "Essential Employee only £0 £1,000\n\nPlus Employee and partner £28 £2,500\n\n"
    "Family Employee, partner and children £64 £5,000\n\n"
    "The company pays the rest of the premium.",
)


def test_a_table_row_is_found_through_its_header() -> None:
    # "cost" and "month" are only in the header; the row alone says "Family ... £64".
    text = answer("How much does the Family plan cost per month?", BENEFITS_PAGE)
    assert ("Family Employee, partner and children £64 £5,000", 4) in quoted(text)
    assert "£28" not in text  # not the other rows


def test_abbreviations_do_not_end_a_sentence() -> None:
    desk = src(1, "Call the IT Service Desk on ext. 4357 for help with your laptop. Be kind.")
    text = answer("What is the IT Service Desk extension?", desk)
    assert quoted(text)[0][0] == "Call the IT Service Desk on ext. 4357 for help with your laptop."


def test_headings_and_bare_names_are_not_answers() -> None:
    cover = src(1, "Welcome to Northwind Lumen\n\nNorthwind Lumen Ltd.\n\nWe design lamps.")
    assert answer("What was Northwind Lumen's annual revenue?", cover) == NOT_FOUND_TEXT
    assert "Item one is listed" in split_sentences("Intro:\n- Item one is listed\n- Item two")


def test_semantic_similarity_finds_a_paraphrase_without_shared_words() -> None:
    office = src(1, "Dogs are welcome at Lumen House on Fridays. The kitchen closes at 18:00.")

    def similarity(question: str, sentences: object) -> list[float]:
        return [0.95 if "Dogs" in s else 0.05 for s in sentences]  # type: ignore[attr-defined]

    request = make_request("May I bring my puppy to work?", (office,))
    assert ExtractiveChatModel().complete(request).text == NOT_FOUND_TEXT
    done = ExtractiveChatModel(similarity=similarity).complete(request)
    assert quoted(done.text) == [("Dogs are welcome at Lumen House on Fridays.", 1)]
    assert done.support is not None
    assert done.support >= 0.42


def test_a_question_in_the_source_is_context_not_an_answer() -> None:
    faq = src(
        1,
        "## FAQ\n\n### How many vacation days do I get?\n\n25 days of paid vacation per "
        "leave year plus the 8 UK bank holidays.\n\n### Where do I park?\n\nThere is no "
        "staff parking at Lumen House.",
    )
    text = answer("How many vacation days do I get?", faq)
    assert quoted(text)[0] == (
        "25 days of paid vacation per leave year plus the 8 UK bank holidays.",
        1,
    )
    assert "?" not in text
