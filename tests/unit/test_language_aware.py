"""Language-aware hybrid search: an embedder that does not read the query's language
loses its vote, so a Chinese question over an English-only model ranks as BM25 does."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.embedders.languages import model_languages
from retrieval.embedders.sentence_transformer import (
    FALLBACK_NAME,
    bundled_fallback_path,
    default_query_instruction,
    load_sentence_transformer,
)
from retrieval.language import MULTILINGUAL, coverage, normalise_languages, reads
from tests.unit.test_fusion import FakeEmbedder, build

CHINESE = {
    "z1": ("hr", "员工 每年 享有 二十五天 带薪 年假"),
    "z2": ("hr", "差旅 报销 须在 出差 结束后 三十天内 提交"),
    "z3": ("hr", "密码 至少 需要 十四个 字符"),
    "e1": ("hr", "holiday allowance is twenty five days per year"),
    "e2": ("hr", "reset your vpn password on the portal"),
}


class EnglishOnly(FakeEmbedder):
    """Reads English only, and says so (as all-MiniLM-L6-v2 does)."""

    languages = frozenset({"en"})


@pytest.mark.parametrize(
    ("text", "english_reads"),
    [
        ("how many vacation days do I get", True),
        ("员工每年有多少天年假", False),
        ("《SOUL EATER》是谁的漫画作品？", False),  # a Chinese sentence borrowing a name
        ("What does 知识库 mean?", True),  # an English sentence quoting a term
        ("日本語のテキストを検索する", False),
        ("Сколько дней отпуска", False),
        ("Combien de jours de congé", True),  # Latin script: read, not guessed at
        ("2024-03-01", True),  # nothing to read: left to the model
    ],
)
def test_an_english_model_reads_latin_script_and_english_grammar(
    text: str, english_reads: bool
) -> None:
    assert reads(text, {"en"}) is english_reads
    assert reads(text, MULTILINGUAL)
    assert coverage(text, MULTILINGUAL) == 1.0


def test_a_chinese_model_reads_chinese_and_not_korean() -> None:
    assert reads("员工每年有多少天年假", {"zh"})
    assert not reads("연차 휴가는 며칠입니까", {"zh"})
    assert reads("연차 휴가는 며칠입니까", {"ko"})


def test_a_chinese_query_over_an_english_model_ranks_as_bm25_and_skips_the_dense_search(
    tmp_path: Path,
) -> None:
    retriever, store, _ = build(tmp_path, CHINESE)
    retriever.embedder = EnglishOnly()
    query = "二十五天 带薪 年假"
    bm25 = retriever.retrieve(query, k=5, collections={"hr"}, mode="bm25")
    store.calls.clear()
    hybrid = retriever.retrieve(query, k=5, collections={"hr"}, mode="hybrid")
    assert hybrid.chunk_ids == bm25.chunk_ids == ["z1"]
    assert not hybrid.dense_voted
    assert hybrid.top_dense_score is None  # no cosine to abstain on: it would be noise
    assert store.calls == []

    english = retriever.retrieve("holiday allowance days", k=5, collections={"hr"})
    assert english.dense_voted
    assert store.calls == [{"hr"}]
    assert english.chunk_ids[0] == "e1"
    assert any(c.dense_rank is not None for c in english)


def test_a_multilingual_model_keeps_its_vote_on_chinese(tmp_path: Path) -> None:
    retriever, store, _ = build(tmp_path, CHINESE)  # the fake declares "*"
    result = retriever.retrieve("二十五天 带薪 年假", k=5, collections={"hr"})
    assert result.dense_voted
    assert store.calls == [{"hr"}]


def test_asking_for_dense_search_gets_it_in_any_language(tmp_path: Path) -> None:
    retriever, store, _ = build(tmp_path, CHINESE)
    retriever.embedder = EnglishOnly()
    result = retriever.retrieve("二十五天 带薪 年假", k=5, collections={"hr"}, mode="dense")
    assert store.calls == [{"hr"}]
    assert result.top_dense_score is not None


@pytest.mark.parametrize(
    ("model", "languages"),
    [
        ("BAAI/bge-m3", MULTILINGUAL),
        ("intfloat/multilingual-e5-large", MULTILINGUAL),
        ("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", MULTILINGUAL),
        ("BAAI/bge-small-en-v1.5", frozenset({"en"})),
        (FALLBACK_NAME, frozenset({"en"})),
        ("BAAI/bge-small-zh-v1.5", frozenset({"zh"})),
        ("/models/our-own-model", MULTILINGUAL),  # unknown: declare it in settings
    ],
)
def test_known_models_declare_their_languages(model: str, languages: frozenset[str]) -> None:
    assert model_languages(model) == languages


def test_bge_m3_gets_no_query_instruction_and_bge_en_does() -> None:
    assert default_query_instruction("BAAI/bge-m3") == ""
    assert default_query_instruction("BAAI/bge-small-en-v1.5").startswith("Represent")


def test_declared_languages_reach_the_embedder_and_the_fallback_stays_english() -> None:
    path = bundled_fallback_path()
    assert path is not None
    declared = load_sentence_transformer(str(path), allow_download=False, languages=["en", "de"])
    assert declared.languages == {"en", "de"}
    assert not declared.is_fallback
    fallback = load_sentence_transformer(
        "BAAI/bge-m3", allow_download=False, languages=["*"], fallback=True
    )
    assert fallback.is_fallback
    assert fallback.languages == {"en"}  # what MiniLM reads, not what bge-m3 would


def test_language_codes_are_normalised() -> None:
    assert normalise_languages(["zh-CN", " EN ", "pt_BR", ""]) == {"zh", "en", "pt"}
    assert normalise_languages(["en", "*"]) == MULTILINGUAL
