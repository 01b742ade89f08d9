from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_env_prefix_and_nested_sections(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LANTERN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANTERN_CHUNKING__MAX_TOKENS", "128")
    monkeypatch.setenv("LANTERN_INGESTION__MAX_FILE_MB", "7")
    s = Settings()
    assert s.data_dir == tmp_path
    assert s.chunking.max_tokens == 128
    assert s.ingestion.max_file_mb == 7
    # Everything lives under the one data dir by default.
    assert s.database_url == f"sqlite:///{(tmp_path / 'lantern.db').resolve()}"
    assert s.index_dir == tmp_path / "index"
    assert s.blob_dir == tmp_path / "blobs"


def test_explicit_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANTERN_DATABASE__URL", "postgresql+psycopg://u@db/lantern")
    assert Settings().database_url == "postgresql+psycopg://u@db/lantern"


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="overlap_tokens"):
        Settings(chunking={"max_tokens": 64, "overlap_tokens": 64})


def test_every_setting_is_described() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                missing += [f"{name}.{m}" for m in walk(ann)]
            elif not field.description:
                missing.append(name)
        return missing

    assert walk(Settings) == []


def test_backend_settings_live_in_a_section_per_implementation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANTERN_LLM__KIND", "openai")
    monkeypatch.setenv("LANTERN_LLM__OPENAI__BASE_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("LANTERN_LLM__OPENAI__API_KEY", "sk-test")
    monkeypatch.setenv("LANTERN_LLM__LLAMACPP__N_CTX", "2048")
    s = Settings()
    # The chosen backend gets its own section, secrets revealed, and nothing else.
    assert s.llm.options()["base_url"] == "http://vllm:8000/v1"
    assert s.llm.options()["api_key"] == "sk-test"
    assert "n_ctx" not in s.llm.options()
    assert s.llm.llamacpp.n_ctx == 2048


@pytest.mark.parametrize(
    ("old", "value", "read"),
    [
        ("LANTERN_LLM__BASE_URL", "http://vllm:8000/v1", lambda s: s.llm.openai.base_url),
        ("LANTERN_LLM__MODEL_PATH", "/models/q.gguf", lambda s: s.llm.llamacpp.model_path),
        ("LANTERN_LLM__N_GPU_LAYERS", "-1", lambda s: s.llm.llamacpp.n_gpu_layers),
        ("LANTERN_LLM__MAX_RETRIES", "5", lambda s: s.llm.openai.max_retries),
        ("LANTERN_EMBEDDING__QUANTIZE", "true", lambda s: s.embedding.onnx.quantize),
        ("LANTERN_EMBEDDING__BACKEND", "torch", lambda s: s.embedding.kind),
        ("LANTERN_ANSWER__EXTRACTIVE_SEMANTIC", "false", lambda s: s.llm.extractive.semantic),
        ("LANTERN_ANSWER__EXTRACTIVE_MIN_SUPPORT", "0.3", lambda s: s.llm.extractive.min_support),
        ("LANTERN_RETRIEVAL__RERANKER_MODEL", "/m/rr", lambda s: s.reranker.cross_encoder.model),
        ("LANTERN_INGESTION__WORKERS", "5", lambda s: s.jobs.inline.workers),
    ],
)
def test_old_flat_env_names_still_work_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    old: str,
    value: str,
    read: object,
) -> None:
    monkeypatch.setenv(old, value)
    with caplog.at_level("WARNING"):
        s = Settings()
    assert str(read(s)).lower() == value.lower()  # type: ignore[operator]
    assert any(old in r.getMessage() and "deprecated" in r.getMessage() for r in caplog.records)


def test_the_new_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANTERN_LLM__BASE_URL", "http://old/v1")
    monkeypatch.setenv("LANTERN_LLM__OPENAI__BASE_URL", "http://new/v1")
    assert Settings().llm.openai.base_url == "http://new/v1"


@pytest.mark.parametrize(
    ("section", "kind", "listed"),
    [
        ("llm", "vllm", "auto, extractive, fake, llamacpp, openai"),
        ("embedding", "tensorrt", "fake, onnx, torch"),
        ("vector_store", "qdrant", "faiss, fake, milvus"),
        ("lexical", "elastic", "auto, bm25, fake, milvus"),
        ("reranker", "colbert", "cross-encoder, fake"),
        ("jobs", "rq", "celery, fake, inline"),
    ],
)
def test_an_unknown_kind_is_refused_with_the_registry_kinds(
    section: str, kind: str, listed: str
) -> None:
    with pytest.raises(ValidationError, match=f"unknown .* kind '{kind}'; choose one of {listed}"):
        Settings(**{section: {"kind": kind}})


@pytest.mark.parametrize(
    ("vector", "lexical", "resolved"),
    [("faiss", "auto", "bm25"), ("milvus", "auto", "milvus"), ("milvus", "bm25", "bm25")],
)
def test_the_lexical_index_follows_the_vector_store_unless_chosen(
    vector: str, lexical: str, resolved: str
) -> None:
    s = Settings(vector_store={"kind": vector}, lexical={"kind": lexical})
    assert s.lexical_kind == resolved


def test_milvus_defaults_to_a_milvus_lite_file_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LANTERN_DATA_DIR", str(tmp_path))
    assert Settings().milvus_uri == str(tmp_path / "index" / "milvus.db")
    monkeypatch.setenv("LANTERN_MILVUS__URI", "http://milvus:19530")
    monkeypatch.setenv("LANTERN_MILVUS__TOKEN", "root:Milvus")
    s = Settings()
    assert s.milvus_uri == "http://milvus:19530"
    assert "root:Milvus" not in repr(s.milvus)  # the token is a secret
