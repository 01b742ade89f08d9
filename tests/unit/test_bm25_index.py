"""The bm25s index beyond the contracts: analyzer, token files, rebuilds, locking."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import LexicalIndexError
from retrieval.lexical import _bm25_files, bm25_index
from retrieval.lexical._bm25_shards import build_model
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.bm25_index import Bm25Index
from retrieval.lexical.registry import available_kinds, create_lexical_index
from tests.contract.lexical_contract import ids, rec


def table(directory: Path) -> dict[str, str]:
    files: dict[str, str] = json.loads((directory / "collections.json").read_text())["collections"]
    return files


@pytest.fixture
def flushed(tmp_path: Path) -> Bm25Index:
    index = Bm25Index(tmp_path)
    index.upsert([rec("a1", "d1", "a", "alpha shared"), rec("a2", "d1", "a", "alpha again")])
    index.upsert([rec("b1", "d2", "b", "beta shared"), rec("c1", "d3", "c", "gamma")])
    index.upsert([rec(f"e{i}", f"e{i // 5}", "e", f"delta shared n{i}") for i in range(30)])
    index.flush()
    return index


# -- analyzer ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("The company's Policies are RUNNING!", ["compani", "polici", "run"]),
        ("don't snake_case students' 3.5", ["dont", "snake", "case", "student", "3", "5"]),
        ("ＶＰＮ full-width", ["vpn", "full", "width"]),
        ("the and of a", []),
        ("员工每年享有带薪年假", ["员工", "每年", "享有", "带薪", "年", "假"]),
        ("Lantern的年假policy", ["lantern", "年", "假", "polici"]),
        ("安全规定", ["安全", "规定"]),  # content words that bm25s's Chinese list would drop
    ],
)
def test_analyzer_tokens(text: str, tokens: list[str]) -> None:
    assert Analyzer().tokens(text) == tokens


def test_analyzer_is_deterministic_and_settings_shape_the_fingerprint() -> None:
    text = "Vacation 政策 policies, 中华人民共和国 " * 3
    assert Analyzer().tokens(text) == Analyzer().tokens(text) == Analyzer().tokens_many([text])[0]
    assert Analyzer().fingerprint == Analyzer().fingerprint
    assert Analyzer(language="german").fingerprint != Analyzer().fingerprint
    assert Analyzer(stopwords=False).tokens("the policy") == ["the", "polici"]
    with pytest.raises(LexicalIndexError, match="english"):
        Analyzer(language="klingon")


def test_jieba_loads_quietly_offline_with_its_cache_where_asked(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import retrieval.lexical.registry, retrieval.lexical.analyzer as a\n"
        "assert 'jieba' not in sys.modules and 'bm25s' not in sys.modules, 'eager import'\n"
        f"print(a.Analyzer(cache_dir=Path({str(tmp_path / 'c')!r})).tokens('带薪年假'))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_PROXY": "*", "http_proxy": "http://0.0.0.0:9"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['带薪', '年', '假']"
    assert done.stderr == ""
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["jieba.cache"]


# -- files ----------------------------------------------------------


def test_flush_stores_tokens_not_text_and_drops_unused_terms(
    flushed: Bm25Index, tmp_path: Path
) -> None:
    flushed.upsert([rec("a1", "d1", "a", "zebra crossing")])
    flushed.flush()
    data = _bm25_files.read_collection(tmp_path / table(tmp_path)["a"], "a")
    assert sorted(data.terms) == ["again", "alpha", "cross", "zebra"]  # "shared" went with a1
    raw = (tmp_path / table(tmp_path)["a"]).read_bytes()
    assert b"crossing" not in raw


def _bad_term_ids(d: Path) -> None:
    path = d / table(d)["c"]
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["tokens"] = arrays["tokens"] + 1000
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


def test_term_ids_out_of_range_are_reported_with_a_way_out(
    flushed: Bm25Index, tmp_path: Path
) -> None:
    flushed.close()
    _bad_term_ids(tmp_path)
    with pytest.raises(LexicalIndexError, match=r"inconsistent.*lantern reindex"):
        Bm25Index(tmp_path)


@pytest.mark.parametrize(
    "settings", [{"language": "german"}, {"stopwords": False}], ids=["language", "stopwords"]
)
def test_reopening_with_other_analyzer_settings_is_refused(
    flushed: Bm25Index, tmp_path: Path, settings: dict[str, Any]
) -> None:
    flushed.close()
    with pytest.raises(LexicalIndexError, match=r"analy[sz]") as info:
        Bm25Index(tmp_path, **settings)
    assert "lantern reindex" in str(info.value)
    assert len(Bm25Index(tmp_path, k1=0.9, b=0.4).search("alpha", k=5)) == 2  # scoring may change


def test_other_library_versions_only_warn(
    flushed: Bm25Index, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flushed.close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["libraries"]["jieba"] = "0.1"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="retrieval.lexical.bm25_index"):
        assert Bm25Index(tmp_path).count() == 34
    assert "lantern reindex" in caplog.text


# -- models ----------------------------------------------------------------------


def test_deletions_are_masked_until_too_many_force_a_rebuild(flushed: Bm25Index) -> None:
    assert len(flushed.search("delta", k=100)) == 30
    shard = flushed._shards["e"]
    built = shard.model
    assert built is not None
    flushed.delete_documents(["e0"])  # 5 of 30 rows: masked
    assert shard.model is not None
    assert shard.model.bm25 is built.bm25
    assert {h.chunk_id for h in flushed.search("delta", k=100)} == {f"e{i}" for i in range(5, 30)}
    flushed.delete_documents(["e1"])  # 10 of 30: past MAX_DEAD_FRACTION
    assert shard.model is None
    assert len(flushed.search("delta", k=100)) == 20


def test_ties_are_broken_by_chunk_id(tmp_path: Path) -> None:
    index = Bm25Index(tmp_path)
    index.upsert([rec(c, "d", "col", "same words") for c in ("b", "c", "a")])
    index.upsert([rec("x", "d", "other", "same words")])
    assert ids(index.search("same", k=2, collections={"col"})) == ["a", "b"]
    assert ids(index.search("same", k=4)) == ids(index.search("words", k=4))


def test_chunks_with_no_terms_are_counted_but_never_found(tmp_path: Path) -> None:
    index = Bm25Index(tmp_path)
    index.upsert([rec("e1", "d1", "empty", "the of"), rec("e2", "d2", "empty", "")])
    assert index.search("the", k=5) == []
    assert index.search("anything", k=5) == []
    index.upsert([rec("w", "d3", "empty", "word")])
    assert ids(index.search("word", k=5)) == ["w"]
    assert index.count() == 3


def test_warm_builds_models_ahead_of_searches(flushed: Bm25Index) -> None:
    assert all(shard.model is None for shard in flushed._shards.values())
    flushed.warm(collections={"a", "e"})
    assert {c for c, s in flushed._shards.items() if s.model is not None} == {"a", "e"}


def test_a_model_build_blocks_neither_writes_nor_other_collections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Bm25Index(tmp_path)
    index.upsert([rec("s1", "d1", "slow", "slow words"), rec("f1", "d2", "fast", "fast words")])
    started, release = threading.Event(), threading.Event()

    def slow_build(rows: Any, vocab: Any, params: Any) -> Any:
        if rows[0][0] == "s1":
            started.set()
            assert release.wait(10)
        return build_model(rows, vocab, params)

    monkeypatch.setattr(bm25_index, "build_model", slow_build)
    result: list[list[str]] = []
    searcher = threading.Thread(target=lambda: result.append(ids(index.search("slow", k=5))))
    searcher.start()
    assert started.wait(10)
    assert ids(index.search("fast", k=5, collections={"fast"})) == ["f1"]
    index.upsert([rec("f2", "d3", "fast", "more fast words")])
    index.flush()
    release.set()
    searcher.join(10)
    assert result == [["s1"]]


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    index = Bm25Index(tmp_path)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                index.upsert([rec(f"t{n}-{i}", f"d{n}-{i % 5}", f"c{i % 3}", f"word{i} common")])
                index.search(f"word{i} common", k=5, collections={f"c{i % 3}"})
                if i % 10 == 9:
                    index.delete_documents([f"d{n}-0"])
                    index.flush()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    index.flush()
    expected = index.count()
    assert expected == 4 * (30 - 6)
    assert Bm25Index(tmp_path).count() == expected


# -- validation ----------------------------------------------------------------


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    index = Bm25Index(tmp_path)
    with pytest.raises(LexicalIndexError, match="chunk_id"):
        index.upsert([rec("", "d1", "col", "text")])
    with pytest.raises(TypeError):
        index.search("x", k=1, collections="col")
    with pytest.raises(TypeError):
        index.delete_documents("d1")
    with pytest.raises(LexicalIndexError, match="method"):
        Bm25Index(tmp_path, method="bm25+")
    with pytest.raises(LexicalIndexError, match="k1"):
        Bm25Index(tmp_path, k1=-1)
    index.close()
    with pytest.raises(LexicalIndexError, match="closed"):
        index.search("x", k=1)


def test_registry_builds_the_bm25_index_and_names_the_kinds(tmp_path: Path) -> None:
    index = create_lexical_index("bm25", directory=tmp_path)
    assert isinstance(index, Bm25Index)
    with pytest.raises(LexicalIndexError, match="bm25"):
        create_lexical_index("elastic", directory=tmp_path)
    assert available_kinds() == ["bm25", "fake"]
