"""The onnxruntime embedder gives the torch embedder's vectors, and never breaks ingestion."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e .)")

from retrieval.embedders import onnx_embedder as oe
from retrieval.embedders.onnx_embedder import OnnxEmbedder, load_onnx_embedder
from retrieval.embedders.registry import create_embedder
from retrieval.embedders.sentence_transformer import SentenceTransformerEmbedder
from retrieval.errors import EmbeddingError

LONG = " ".join(
    f"Section {i} of the travel policy covers hotels, trains and meals." for i in range(40)
)
TEXTS = [
    "How many vacation days do new employees get?",
    LONG,
    "员工手册规定每位员工每年有十五天带薪年假，需提前两周向经理申请。",
    "Café déjà vu — naïve façade, 3.5% APR, e-mail: help@example.com",
    "VPN",
    "",
    "Passwords must be rotated every 90 days and never shared over chat or e-mail.",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_embedder(embedder: SentenceTransformerEmbedder, cache_dir: Path) -> OnnxEmbedder:
    result = load_onnx_embedder(embedder, cache_dir=cache_dir)
    assert isinstance(result, OnnxEmbedder), "the export should have been accepted"
    return result


def test_vectors_match_torch_including_truncated_and_chinese_text(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    assert len(embedder.tokenizer.token_spans([LONG])[0]) > 400 > embedder.max_tokens
    got = onnx_embedder.embed_documents(TEXTS)
    want = embedder.embed_documents(TEXTS)
    assert got.dtype == np.float32
    assert got.shape == (len(TEXTS), embedder.dimension)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert cosines(got, want).min() >= 0.999
    query = "what is the hotel limit?"
    assert cosines(onnx_embedder.embed_query(query), embedder.embed_query(query))[0] >= 0.999


def test_embedder_attributes_match_torch(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    assert onnx_embedder.model_name == embedder.model_name
    assert onnx_embedder.dimension == embedder.dimension
    assert onnx_embedder.max_tokens == embedder.max_tokens
    assert onnx_embedder.is_fallback == embedder.is_fallback
    assert onnx_embedder.query_instruction == embedder.query_instruction
    assert onnx_embedder.backend == "onnx"


def test_output_order_matches_input_order_across_batches(
    onnx_embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one = np.vstack([onnx_embedder.embed_documents([t]) for t in TEXTS])
    monkeypatch.setattr(onnx_embedder, "batch_size", 3)
    calls: list[tuple[int, int]] = []
    batched = onnx_embedder.embed_documents(TEXTS, progress=lambda d, t: calls.append((d, t)))
    assert cosines(batched, one_by_one).min() >= 0.9999
    assert calls == [(3, 7), (6, 7), (7, 7)]
    assert onnx_embedder.embed_documents([]).shape == (0, onnx_embedder.dimension)


def test_token_spans_identical_to_torch(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    assert onnx_embedder.tokenizer.token_spans(TEXTS) == embedder.tokenizer.token_spans(TEXTS)


def test_second_load_reuses_the_export(
    embedder: SentenceTransformerEmbedder,
    onnx_embedder: OnnxEmbedder,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_file = onnx_embedder.model_file
    before = model_file.stat().st_mtime_ns

    def no_export(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("exported again")

    monkeypatch.setattr(oe, "export_transformer", no_export)
    again = load_onnx_embedder(embedder, cache_dir=cache_dir)
    assert isinstance(again, OnnxEmbedder)
    assert again.model_file == model_file
    assert model_file.stat().st_mtime_ns == before
    assert [p.name for p in cache_dir.iterdir() if p.is_dir()] == [model_file.parent.name]


def test_cache_directory_is_named_after_model_and_weights(onnx_embedder: OnnxEmbedder) -> None:
    directory = onnx_embedder.model_file.parent
    assert directory.name.startswith("sentence-transformers-all-minilm-l6-v2-")
    manifest = json.loads((directory / "export.json").read_text())
    assert manifest["inputs"][:2] == ["input_ids", "attention_mask"]


def test_corrupt_cached_model_is_exported_again(
    embedder: SentenceTransformerEmbedder,
    onnx_embedder: OnnxEmbedder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shutil.copytree(
        onnx_embedder.model_file.parent, tmp_path / onnx_embedder.model_file.parent.name
    )
    corrupt = tmp_path / onnx_embedder.model_file.parent.name / "model.onnx"
    corrupt.write_bytes(corrupt.read_bytes()[:1000])  # as if the disk filled up mid-write
    with caplog.at_level(logging.WARNING):
        fixed = load_onnx_embedder(embedder, cache_dir=tmp_path)
    assert isinstance(fixed, OnnxEmbedder)
    assert "exporting again" in caplog.text
    assert corrupt.stat().st_size > 1_000_000
    assert cosines(fixed.embed_documents(TEXTS), embedder.embed_documents(TEXTS)).min() >= 0.999


def test_wrong_vectors_in_cache_are_detected(
    embedder: SentenceTransformerEmbedder,
    onnx_embedder: OnnxEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A model that loads but disagrees with torch is not used; when the export then fails,
    torch embeds instead."""
    shutil.copytree(
        onnx_embedder.model_file.parent, tmp_path / onnx_embedder.model_file.parent.name
    )
    real_pool = oe.pool
    monkeypatch.setattr(oe, "pool", lambda h, m, p: real_pool(h[:, ::-1].copy(), m, p))

    def failing_export(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(oe, "export_transformer", failing_export)
    with caplog.at_level(logging.WARNING):
        result = load_onnx_embedder(embedder, cache_dir=tmp_path)
    assert result is embedder
    assert "disagrees with torch" in caplog.text
    assert "embedding with torch instead" in caplog.text


def test_crash_mid_export_leaves_no_half_model(
    embedder: SentenceTransformerEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_export(st_model: Any, model_file: Path) -> list[str]:
        model_file.write_bytes(b"half a model")
        raise MemoryError("killed mid-export")

    monkeypatch.setattr(oe, "export_transformer", half_export)
    assert load_onnx_embedder(embedder, cache_dir=tmp_path) is embedder
    assert [p for p in tmp_path.iterdir() if p.suffix != ".lock"] == []


def test_missing_onnxruntime_falls_back_to_torch(
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING):
        assert load_onnx_embedder(embedder, cache_dir=tmp_path) is embedder
    assert "onnxruntime is not installed" in caplog.text


def test_cls_pooling_is_honoured(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    """bge pools the CLS token: the same weights with a CLS pooling config must follow it."""
    from sentence_transformers import SentenceTransformer

    source = Path(str(embedder.model_path))
    model_dir = tmp_path / "cls-model"
    model_dir.mkdir()
    for item in source.iterdir():
        if item.name != "1_Pooling":
            (model_dir / item.name).symlink_to(item)
    (model_dir / "1_Pooling").mkdir()
    (model_dir / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, "pooling_mode_cls_token": True})
    )
    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    reference = SentenceTransformerEmbedder(
        st, model_name=embedder.model_name, model_path=str(model_dir)
    )
    cls = load_onnx_embedder(reference, cache_dir=onnx_embedder.model_file.parent.parent)
    assert isinstance(cls, OnnxEmbedder)
    assert cls.model_file == onnx_embedder.model_file  # same weights: the export is shared
    got, want = cls.embed_documents(TEXTS), reference.embed_documents(TEXTS)
    assert cosines(got, want).min() >= 0.999
    assert cosines(got, onnx_embedder.embed_documents(TEXTS)).max() < 0.99  # not mean pooling


def test_int8_is_close_to_torch(
    embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    cache = onnx_embedder.model_file.parent.parent
    int8 = load_onnx_embedder(embedder, cache_dir=cache, quantize=True)
    assert isinstance(int8, OnnxEmbedder)
    assert int8.backend == "onnx-int8"
    assert cosines(int8.embed_documents(TEXTS), embedder.embed_documents(TEXTS)).min() >= 0.97


def test_pool_modes() -> None:
    hidden = np.array([[[1, 0], [0, 1], [9, 9]]], dtype=np.float32)  # last position is padding
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    cls = oe.pool(hidden, mask, oe.Pooling(modes=("cls",), normalize=True))
    mean = oe.pool(hidden, mask, oe.Pooling(modes=("mean",), normalize=True))
    assert np.allclose(cls, [[1, 0]])
    assert np.allclose(mean, [[2**-0.5, 2**-0.5]])


def test_unsupported_module_stack_is_refused(tmp_path: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EmbeddingError, match="unsupported module stack"):
        oe.read_pooling(tmp_path)


def test_registry_builds_the_onnx_backend(onnx_embedder: OnnxEmbedder, cache_dir: Path) -> None:
    built = create_embedder(
        "onnx", model="BAAI/bge-small-en-v1.5", allow_download=False, cache_dir=cache_dir
    )
    assert isinstance(built, OnnxEmbedder)
    assert built.model_file == onnx_embedder.model_file
    assert built.is_fallback  # bge is not available offline: the bundled MiniLM, as with torch
    with pytest.raises(TypeError, match="cache_dir"):
        create_embedder("onnx", model="BAAI/bge-small-en-v1.5")
    with pytest.raises(EmbeddingError, match="unknown embedder kind 'tensorrt'"):
        create_embedder("tensorrt", model="BAAI/bge-small-en-v1.5")
