"""Settings sections of one backend implementation each, and the helpers every backend
family's section shares: kinds validated against the registry, old flat names moved in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from ingestion.queues.registry import REGISTRY as jobs_registry
from llm.answerability.registry import OFF as answerability_off
from llm.answerability.registry import REGISTRY as answerability_registry
from llm.registry import AUTO as chat_registry_auto
from llm.registry import REGISTRY as chat_registry
from llm.registry import resolve_kind as resolve_chat_kind
from retrieval.backends import Registry
from retrieval.embedders.registry import REGISTRY as embedder_registry
from retrieval.lexical.registry import REGISTRY as lexical_registry
from retrieval.rerankers.registry import REGISTRY as reranker_registry
from retrieval.vectorstores.registry import REGISTRY as vector_registry

__all__ = [
    "answerability_off",
    "answerability_registry",
    "chat_registry",
    "chat_registry_auto",
    "embedder_registry",
    "jobs_registry",
    "lexical_registry",
    "reranker_registry",
    "resolve_chat_kind",
    "vector_registry",
]

log = logging.getLogger(__name__)


def _kinds(registry: Registry[Any], *also: str) -> str:
    """The kinds as the settings table shows them: `a`, `b`, `c`."""
    return ", ".join(f"`{k}`" for k in [*also, *registry.kinds()])


def _kind_validator(registry: Registry[Any], *, also: tuple[str, ...] = ()) -> Any:
    """A validator refusing a ``kind`` the registry does not know, listing those it does."""

    def check(cls: type[BaseModel], value: str) -> str:
        return registry.check(value, also=also)

    return field_validator("kind")(classmethod(check))


def _moves(prefix: str, moves: Mapping[str, tuple[str, ...]]) -> Any:
    """A before-validator that moves deprecated names (``a.b`` paths below ``prefix``) to
    their new place, with a logged warning; a value already at the new place wins."""

    def move(cls: type[BaseModel], data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in moves.items():
            *parents, leaf = old.split(".")
            holder = _child(data, parents)
            if holder is None or leaf not in holder:
                continue
            value = holder.pop(leaf)
            log.warning("%s is deprecated; use %s", _env(prefix, old.split(".")), _env(prefix, new))
            target = data
            for part in new[:-1]:
                child = target.get(part)
                child = dict(child) if isinstance(child, (dict, BaseModel)) else {}
                target[part] = child
                target = child
            target.setdefault(new[-1], value)
        return data

    return model_validator(mode="before")(classmethod(move))  # type: ignore[arg-type]


def _child(data: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    """The dict at ``path`` in ``data`` (copied in place, so popping does not touch the
    caller's), or None."""
    holder = data
    for part in path:
        child = holder.get(part)
        if not isinstance(child, (dict, BaseModel)):
            return None
        holder[part] = dict(child)
        holder = holder[part]
    return holder


def _env(prefix: str, path: Any) -> str:
    return (
        "__".join(["LANTERN", *([prefix] if prefix else []), *path])
        .upper()
        .replace("LANTERN__", "LANTERN_", 1)
    )


class BackendSettings(BaseModel):
    """A backend family's section: a ``kind`` and a sub-section per implementation that
    has settings, named after its kind."""

    kind: str

    def options(self) -> dict[str, Any]:
        """The chosen kind's own settings, as constructor keyword arguments."""
        return section_options(self, self.kind)

    def sections(self) -> set[str]:
        """The names of the per-implementation sections."""
        return {k for k, v in self if isinstance(v, BaseModel)}


def section_options(family: BaseModel, kind: str) -> dict[str, Any]:
    """The settings section named after ``kind`` (``cross-encoder`` -> ``cross_encoder``)
    as constructor keyword arguments, secrets revealed; empty when the kind has none."""
    section = getattr(family, kind.replace("-", "_"), None)
    if not isinstance(section, BaseModel):
        return {}
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in section}


class OnnxEmbeddingSettings(BaseModel):
    quantize: bool = Field(
        default=False,
        description="Dynamic int8 weights, ~2.5x faster than torch, vectors within cosine "
        "~0.99 of full precision.",
    )
    threads: int | None = Field(
        default=None, ge=1, description="onnxruntime CPU threads (empty: the library's default)."
    )


class FakeEmbeddingSettings(BaseModel):
    dimension: int = Field(default=64, ge=1, description="Vector size of the test embedder.")


class CrossEncoderSettings(BaseModel):
    model: str = Field(
        default="BAAI/bge-reranker-base",
        description="Cross-encoder for hybrid+rerank: a hub id or a local directory.",
    )
    top_n: int = Field(default=30, ge=1, description="Fused candidates rescored per question.")
    batch_size: int = Field(default=16, ge=1, description="Pairs per scoring batch.")
    max_length: int = Field(default=512, ge=16, description="Longest pair, in tokens.")


class OpenAISettings(BaseModel):
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server, e.g. vLLM: http://gpu-host:8000/v1.",
    )
    api_key: SecretStr | None = Field(default=None, description="Bearer key for base_url.")
    model: str | None = Field(
        default=None,
        description="Model (or LoRA adapter) name on the server, e.g. Qwen/Qwen2.5-7B-Instruct.",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds to open a connection to base_url."
    )
    read_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest silence from the server before giving up."
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries on connection errors and 429/5xx, before the first token only.",
    )


class LlamaCppSettings(BaseModel):
    model_path: str | None = Field(
        default=None, description="GGUF file for in-process llama.cpp (kind llamacpp)."
    )
    n_ctx: int = Field(default=4096, ge=512, description="llama.cpp context window in tokens.")
    n_threads: int | None = Field(
        default=None, description="llama.cpp CPU threads (empty: the library's default)."
    )
    n_gpu_layers: int = Field(
        default=0, description="llama.cpp layers offloaded to the GPU (-1: all)."
    )


class ExtractiveSettings(BaseModel):
    min_support: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Least support a sentence needs to be quoted; below it, not found "
        "(empty: the calibrated default, 0.42 semantic / 0.22 lexical).",
    )
    semantic: bool = Field(
        default=True,
        description="Rank sentences by embedding similarity as well as by shared words.",
    )


class FakeChatSettings(BaseModel):
    default: str | None = Field(
        default=None, description="What the test chat model answers (empty: an error)."
    )


class FaissSettings(BaseModel):
    ann_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Vectors from which a collection is searched through an approximate HNSW "
        "graph, built in the background (exact until it is ready); 0: always exact.",
    )
    ann_m: int = Field(
        default=32,
        ge=4,
        le=128,
        description="HNSW links per vector: more is better recall, more memory (~8m bytes a "
        "vector) and slower building.",
    )
    ann_ef_construction: int = Field(
        default=40, ge=8, description="HNSW build breadth: more is a better graph, built slower."
    )
    ann_ef_search: int = Field(
        default=256,
        ge=1,
        description="HNSW search breadth: more is slower and closer to exact (recall@10 "
        "0.997 at 256, 0.98 at 128 on 1M vectors; bench/retrieval_scale.py).",
    )
    ann_persist: bool = Field(
        default=True,
        description="Keep each built HNSW graph on disk (about the vectors' size again) so "
        "that a restart restores it (15 s at 1M vectors) instead of building it again (5-10 min).",
    )


class Bm25Settings(BaseModel):
    k1: float = Field(default=1.5, ge=0, description="BM25 term-frequency saturation.")
    b: float = Field(default=0.75, ge=0, le=1, description="BM25 document-length normalisation.")
    language: str = Field(default="english", description="Stemmer and stop-word language.")
    stopwords: bool = Field(default=True, description="Drop the language's stop words.")


class MilvusSettings(BaseModel):
    """Where the Milvus vector store and lexical index live (kind ``milvus``)."""

    uri: str | None = Field(
        default=None,
        description="A milvus-lite file (`*.db`, in-process) or a server, "
        "`http://host:19530` (standalone or cluster). Empty: <data_dir>/index/milvus.db.",
    )
    token: SecretStr | None = Field(
        default=None, description="Milvus token (`user:password` or an API key)."
    )
    user: str | None = Field(default=None, description="Milvus user (with password).")
    password: SecretStr | None = Field(default=None, description="Milvus user's password.")
    db_name: str | None = Field(
        default=None, description="Milvus database (empty: the server's `default`)."
    )
    collection_prefix: str = Field(
        default="lantern_",
        description="Prefix of Lantern's Milvus collection aliases (`<prefix>milvus_vectors`, "
        "and `<prefix>milvus_lexical` where the BM25 index has a collection of its own): "
        "deployments sharing a server use different prefixes.",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Seconds a Milvus call may take.")


class MilvusVectorSettings(BaseModel):
    index_type: str = Field(
        default="HNSW", description="Milvus vector index: HNSW, FLAT (exact), IVF_FLAT..."
    )
    hnsw_m: int = Field(default=16, ge=2, le=2048, description="HNSW links per node (M).")
    hnsw_ef_construction: int = Field(
        default=200, ge=1, description="HNSW build depth (efConstruction)."
    )
    ef_search: int = Field(
        default=64, ge=1, description="HNSW search depth (ef), at least the k asked for."
    )


class InlineJobsSettings(BaseModel):
    workers: int = Field(default=2, ge=1, le=64, description="In-process ingestion threads.")
    poll_seconds: float = Field(
        default=0.5, gt=0, description="How often idle threads look for queued jobs."
    )


class CeleryJobsSettings(BaseModel):
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Celery broker that carries wake-ups to `lantern worker` processes "
        "(jobs themselves live in the database): `redis://host:6379/0`, or RabbitMQ as "
        "`amqp://user:password@host:5672//`.",
    )
    queue: str = Field(default="lantern-ingest", description="Celery queue the workers consume.")
    key_prefix: str = Field(
        default="",
        description="Prefix of every Redis key Celery writes (several deployments on one "
        "Redis database); ignored for RabbitMQ.",
    )
    concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Jobs one `lantern worker` runs at once, in threads sharing its models "
        "and indexes (`lantern worker --concurrency N`).",
    )
    check_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often each worker requeues jobs whose worker died (no report for "
        "LANTERN_INGESTION__LEASE_SECONDS) and looks for queued jobs a lost wake-up left.",
    )
