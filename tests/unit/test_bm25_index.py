"""The BM25 index beyond the contracts: analyzer, segment files, merging, locking."""

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
from retrieval.lexical import _bm25_files, _bm25_shards, analyzer
from retrieval.lexical.analyzer import Analyzer
from retrieval.lexical.bm25_index import Bm25Index
from retrieval.lexical.registry import available_kinds, create_lexical_index
from tests.contract.lexical_contract import ids, rec


def table(directory: Path) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = json.loads(
        (directory / "collections.json").read_text()
    )["collections"]
    return files


def segment_files(directory: Path) -> dict[str, list[str]]:
    return {c: [s["file"] for s in entries] for c, entries in table(directory).items()}


def read_segment(directory: Path, collection_id: str, n: int = 0) -> _bm25_files.StoredSegment:
    entry = _bm25_files.SegmentFile(**table(directory)[collection_id][n])
    return _bm25_files.read_segment(directory / entry.file, collection_id, entry)


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


def test_analyzer_stem_cache_overflow_keeps_every_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzer, "_STEM_CACHE_SIZE", 3)
    words = Analyzer()
    assert words.tokens("running policies") == ["run", "polici"]
    assert words.tokens("running policies and cats") == ["run", "polici", "cat"]


# -- files -----------------------------------------------------------------------


def test_flush_stores_tokens_not_text_and_drops_unused_terms(
    flushed: Bm25Index, tmp_path: Path
) -> None:
    flushed.upsert([rec("a1", "d1", "a", "zebra crossing")])
    flushed.flush()
    (file,) = segment_files(tmp_path)["a"]  # the small segment was merged with the change
    stored = read_segment(tmp_path, "a")
    assert stored.terms == ["again", "alpha", "cross", "zebra"]  # "shared" went with a1
    assert sorted(stored.chunk_ids) == ["a1", "a2"]
    assert b"crossing" not in (tmp_path / file).read_bytes()


def _bad_rows(d: Path) -> None:
    path = d / segment_files(d)["c"][0]
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["rows"] = arrays["rows"] + 1000
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


def test_postings_out_of_range_are_reported_with_a_way_out(
    flushed: Bm25Index, tmp_path: Path
) -> None:
    flushed.close()
    _bad_rows(tmp_path)
    with pytest.raises(LexicalIndexError, match=r"inconsistent.*lantern reindex"):
        Bm25Index(tmp_path)


def test_an_index_in_the_old_one_file_per_collection_format_asks_for_a_reindex(
    tmp_path: Path,
) -> None:
    Bm25Index(tmp_path).close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    (tmp_path / "collections.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "generation": 1,
                "collections": {"a": "col-0000000001-000000.npz"},
            }
        )
    )
    with pytest.raises(LexicalIndexError, match=r"format version 1.*no longer reads.*reindex"):
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


# -- segments --------------------------------------------------------------------


def test_deleted_chunks_no_longer_count_in_the_statistics(tmp_path: Path) -> None:
    texts = [f"delta shared n{i}" for i in range(30)] + ["delta", "shared words", "other"]
    kept = [rec(f"k{i}", f"k{i}", "e", t) for i, t in enumerate(texts)]
    gone = [rec(f"g{i}", "gone", "e", "delta delta gamma") for i in range(20)]
    index = Bm25Index(tmp_path / "churned")
    index.upsert(gone[:10] + kept + gone[10:])
    index.flush()
    index.delete_documents(["gone"])
    fresh = Bm25Index(tmp_path / "fresh")
    fresh.upsert(kept)
    for query in ("delta", "shared n3", "gamma delta"):
        assert index.search(query, k=50) == fresh.search(query, k=50)
    index.flush()
    assert Bm25Index(tmp_path / "churned").search("delta", k=50) == fresh.search("delta", k=50)


def test_a_small_write_to_a_large_collection_writes_o_of_the_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Bm25Index(tmp_path)
    words = [f"w{i}" for i in range(500)]
    texts = [" ".join(words[(i * 7 + j * 13) % 500] for j in range(40)) for i in range(5000)]
    index.upsert([rec(f"c{i}", f"d{i // 50}", "big", t) for i, t in enumerate(texts)])
    index.flush()
    (base,) = segment_files(tmp_path)["big"]
    full = (tmp_path / base).stat().st_size
    written: list[int] = []
    real_replace = os.replace

    def measuring_replace(src: Any, dst: Any) -> None:
        written.append(Path(src).stat().st_size)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", measuring_replace)
    index.upsert([rec(f"new{i}", "dn", "big", texts[i]) for i in range(50)])
    index.delete_documents(["d7"])
    index.flush()
    assert sum(written) < 0.05 * full
    assert segment_files(tmp_path)["big"][0] == base
    assert [(s["rows"], s["tombstones"]) for s in table(tmp_path)["big"]] == [(5000, 0), (50, 50)]


def test_segments_stay_few_and_over_a_quarter_deleted_compacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    index = Bm25Index(tmp_path)
    policy = _bm25_shards.POLICY
    for start in range(0, 3000, 10):
        index.upsert(
            [rec(f"c{i}", f"d{start}", "a", f"term{i % 97} all") for i in range(start, start + 10)]
        )
        index.flush()
        assert len(segment_files(tmp_path)["a"]) <= 1 + policy.tier(start + 10)
        assert len(list(tmp_path.glob("seg-*"))) == len(segment_files(tmp_path)["a"])
    layouts = []
    for start in range(0, 1000, 10):
        index.delete_documents([f"d{start}"])
        index.flush()
        layouts.append(sum(s["rows"] for s in table(tmp_path)["a"]))
    assert layouts[-1] < 3000  # deleted rows were dropped by a compaction
    assert Bm25Index(tmp_path).count() == 2000
    assert index.search("all", k=3000) == Bm25Index(tmp_path).search("all", k=3000)


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


def test_a_slow_flush_blocks_no_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = Bm25Index(tmp_path)
    index.upsert([rec("s1", "d1", "slow", "slow words"), rec("f1", "d2", "fast", "fast words")])
    started, release = threading.Event(), threading.Event()
    real_write = _bm25_files.write_segment

    def slow_write(*args: Any, **kwargs: Any) -> None:
        started.set()
        assert release.wait(10)
        real_write(*args, **kwargs)

    monkeypatch.setattr(_bm25_files, "write_segment", slow_write)
    flusher = threading.Thread(target=index.flush)
    flusher.start()
    assert started.wait(10)
    assert ids(index.search("words", k=5)) == ["f1", "s1"]
    assert ids(index.search("fast", k=5, collections={"fast"})) == ["f1"]
    release.set()
    flusher.join(10)
    assert ids(Bm25Index(tmp_path).search("words", k=5)) == ["f1", "s1"]


def test_a_search_sees_a_replaced_chunk_exactly_once(tmp_path: Path) -> None:
    index = Bm25Index(tmp_path)
    index.upsert([rec(f"o{i}", "other", "col", "apple banana filler") for i in range(50)])
    index.upsert([rec("x", "dx", "col", "apple")])
    done = threading.Event()
    seen: list[int] = []

    def search() -> None:
        while not done.is_set():
            hits = index.search("apple banana", k=100)
            seen.append(sum(h.chunk_id == "x" for h in hits))

    reader = threading.Thread(target=search)
    reader.start()
    for i in range(200):
        index.upsert([rec("x", "dx", "col", "banana" if i % 2 else "apple")])
        if i % 50 == 49:
            index.flush()
    done.set()
    reader.join(10)
    assert seen
    assert set(seen) == {1}


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
    with pytest.raises(LexicalIndexError, match="closed"):
        index.warm()


def test_registry_builds_the_bm25_index_and_names_the_kinds(tmp_path: Path) -> None:
    index = create_lexical_index("bm25", directory=tmp_path)
    assert isinstance(index, Bm25Index)
    with pytest.raises(LexicalIndexError, match="bm25"):
        create_lexical_index("elastic", directory=tmp_path)
    assert available_kinds() == ["bm25", "fake", "milvus"]
