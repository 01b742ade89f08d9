"""Lantern settings: one ``Settings`` object, env prefix ``LANTERN_``, nested with ``__``.

``LANTERN_DATA_DIR=/srv/lantern`` moves everything (SQLite file, indexes, blobs);
``LANTERN_DATABASE__URL=postgresql+psycopg://...`` switches to PostgreSQL.
Nothing is read at import time: entry points call ``get_settings()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.settings_backends import (
    BackendSettings,
    Bm25Settings,
    CeleryJobsSettings,
    CrossEncoderSettings,
    ExtractiveSettings,
    FaissSettings,
    FakeChatSettings,
    FakeEmbeddingSettings,
    InlineJobsSettings,
    LlamaCppSettings,
    MilvusSettings,
    MilvusVectorSettings,
    OnnxEmbeddingSettings,
    OpenAISettings,
    _kind_validator,
    _kinds,
    _moves,
    answerability_off,
    answerability_registry,
    chat_registry,
    chat_registry_auto,
    embedder_registry,
    jobs_registry,
    lexical_registry,
    reranker_registry,
    resolve_chat_kind,
    section_options,
    vector_registry,
)

LEXICAL_AUTO = "auto"


class DatabaseSettings(BaseModel):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Empty means a SQLite file `lantern.db` in the data dir; "
        "use `postgresql+psycopg://user@host/db` at scale.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")


class EmbeddingSettings(BackendSettings):
    kind: str = Field(
        default="onnx",
        description="Runtime for the embedding model, one of "
        f"{_kinds(embedder_registry)}: `onnx` (onnxruntime, exported once under "
        "<data_dir>/models/onnx, same vectors, faster on CPU), `torch`, or `fake` (hashed "
        "words, for tests). onnx falls back to torch with a warning when the export is "
        "impossible; GPU devices always use torch.",
    )
    model: str = Field(
        default="BAAI/bge-small-en-v1.5",
        description="sentence-transformers model: a hub id (loaded from the HF cache or "
        "downloaded) or a local directory. Falls back to the bundled all-MiniLM-L6-v2, "
        "with a warning, when it cannot be loaded.",
    )
    allow_download: bool = Field(
        default=True,
        description="Try downloading the model from the hub when it is not cached. "
        "Ignored when HF_HUB_OFFLINE=1.",
    )
    fallback: bool = Field(
        default=True,
        description="Use the bundled all-MiniLM-L6-v2 when the configured model cannot load. "
        "When false, a missing model is a start-up error.",
    )
    query_instruction: str | None = Field(
        default=None,
        description="Prefix for queries (bge's retrieval instruction). Empty picks the right "
        "one for known bge models and none otherwise.",
    )
    languages: list[str] | None = Field(
        default=None,
        description="ISO 639-1 codes of the languages the model covers (`*`: all). Empty: "
        "known from the model name (bge-m3, multilingual models: all; bge-*-en, MiniLM: "
        "en). In hybrid search a query in another script is ranked by BM25 alone.",
    )
    batch_size: int = Field(default=32, ge=1, le=1024, description="Texts per encode batch.")
    device: str = Field(default="cpu", description="torch device: cpu, cuda, cuda:1, mps.")
    onnx: OnnxEmbeddingSettings = Field(default_factory=OnnxEmbeddingSettings)
    fake: FakeEmbeddingSettings = Field(default_factory=FakeEmbeddingSettings)

    @field_validator("languages", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``en,de`` as well as ``["en", "de"]``; an empty string is "unset"."""
        if isinstance(value, str):
            return [v for v in (p.strip() for p in value.split(",")) if v] or None
        return value

    _legacy = _moves("embedding", {"backend": ("kind",), "quantize": ("onnx", "quantize")})
    _kind = _kind_validator(embedder_registry)


class ChunkingSettings(BaseModel):
    max_tokens: int = Field(
        default=256,
        ge=32,
        le=8192,
        description="Chunk size in embedding-model tokens (capped at the model's limit).",
    )
    overlap_tokens: int = Field(
        default=32, ge=0, le=1024, description="Tokens repeated between neighbouring chunks."
    )


class RetrievalSettings(BaseModel):
    mode: Literal["hybrid", "dense", "bm25", "hybrid+rerank"] = Field(
        default="hybrid",
        description="dense (vectors), bm25 (words), hybrid (both, fused by RRF) or "
        "hybrid+rerank (then a cross-encoder; off with a log line where it cannot load).",
    )
    dense_k: int = Field(default=50, ge=1, le=1000, description="Depth of the vector search.")
    lexical_k: int = Field(default=50, ge=1, le=1000, description="Depth of the BM25 search.")
    dense_weight: float = Field(default=1.0, ge=0, description="RRF weight of the vector list.")
    lexical_weight: float = Field(default=1.0, ge=0, description="RRF weight of the BM25 list.")
    rrf_k: float = Field(default=60.0, gt=0, description="RRF constant: 1 / (k + rank).")
    replica_refresh_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="How often a process that reads FAISS/BM25 index files another process "
        "writes (`lantern serve` beside `lantern worker`, or a second `lantern serve` on one "
        "data dir) looks for a new generation (one stat; a reload only of what changed).",
    )


class RerankerSettings(BackendSettings):
    kind: str = Field(
        default="cross-encoder",
        description="Reranker for retrieval mode hybrid+rerank, one of "
        f"{_kinds(reranker_registry)}.",
    )
    cross_encoder: CrossEncoderSettings = Field(default_factory=CrossEncoderSettings)

    _kind = _kind_validator(reranker_registry)


class LLMSettings(BackendSettings):
    kind: str = Field(
        default="auto",
        description=f"Chat model, one of {_kinds(chat_registry, 'auto')}. auto: openai when "
        "openai.base_url is set, else llamacpp when llamacpp.model_path is set, else "
        "extractive (quotes the best-supported sentences; no model needed).",
    )
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    llamacpp: LlamaCppSettings = Field(default_factory=LlamaCppSettings)
    extractive: ExtractiveSettings = Field(default_factory=ExtractiveSettings)
    fake: FakeChatSettings = Field(default_factory=FakeChatSettings)
    max_tokens: int = Field(default=512, ge=1, description="Longest answer, in tokens.")
    temperature: float = Field(default=0.1, ge=0, le=2, description="Sampling temperature.")
    timeout_s: float = Field(default=120.0, gt=0, description="Total time budget per answer.")
    deterministic: bool = Field(
        default=False, description="Greedy decoding with a fixed seed (tests, evaluations)."
    )
    seed: int = Field(default=0, description="Seed for deterministic decoding.")

    _legacy = _moves(
        "llm",
        {
            **{f: ("openai", f) for f in OpenAISettings.model_fields},
            **{f: ("llamacpp", f) for f in LlamaCppSettings.model_fields},
        },
    )
    _kind = _kind_validator(chat_registry, also=(chat_registry_auto,))

    @property
    def resolved_kind(self) -> str:
        """The backend ``kind`` stands for (``auto`` decided by what is configured)."""
        return resolve_chat_kind(
            self.kind, base_url=self.openai.base_url, model_path=self.llamacpp.model_path
        )

    def options(self) -> dict[str, Any]:
        """The resolved kind's own settings, as constructor keyword arguments."""
        return section_options(self, self.resolved_kind)


class AnswerabilitySettings(BaseModel):
    kind: str = Field(
        default="rules",
        description="The check between retrieval and the answer that the sources really "
        "answer the question, else the not-found reply: `rules` (offline: the question's "
        "numbers, negation and answer type must be met), `reader` (an extractive QA model "
        "trained on SQuAD 2.0; falls back to rules where it cannot load) or `off`.",
    )
    reader_model: str = Field(
        default="deepset/roberta-base-squad2",
        description="The reader's model: a hub id or a local directory.",
    )
    min_score: float = Field(
        default=0.0,
        description="The reader answers when its best span beats its no-answer score by more "
        "than this (higher: abstains more; calibrate with `lantern eval qa --squad`).",
    )

    _kind = _kind_validator(answerability_registry, also=(answerability_off,))


class AnswerSettings(BaseModel):
    top_k: int = Field(default=8, ge=1, le=100, description="Chunks retrieved per question.")
    context_tokens: int = Field(
        default=1500, ge=100, description="Token budget for the sources put in the prompt."
    )
    history_tokens: int = Field(
        default=1000, ge=0, description="Token budget for earlier turns of a chat."
    )
    abstain_below: float = Field(
        default=0.15,
        ge=-1,
        le=1,
        description="Cosine between a question and its closest chunk below which Lantern "
        "says the answer is not in the knowledge base instead of guessing "
        "(calibrate with `lantern eval qa --calibrate`).",
    )
    answerability: AnswerabilitySettings = Field(default_factory=AnswerabilitySettings)


class VectorStoreSettings(BackendSettings):
    kind: str = Field(
        default="faiss",
        description=f"Vector store, one of {_kinds(vector_registry)}: faiss (files in the data "
        "dir) or milvus (milvus-lite or a Milvus server, see LANTERN_MILVUS__URI; the lexical "
        "index follows).",
    )
    faiss: FaissSettings = Field(default_factory=FaissSettings)
    milvus: MilvusVectorSettings = Field(default_factory=MilvusVectorSettings)

    _kind = _kind_validator(vector_registry)


class LexicalSettings(BackendSettings):
    kind: str = Field(
        default=LEXICAL_AUTO,
        description=f"Lexical index, one of {_kinds(lexical_registry, LEXICAL_AUTO)}. auto: "
        "milvus (Milvus full-text BM25) when the vector store is milvus, else bm25. The bm25 "
        "settings apply to both.",
    )
    bm25: Bm25Settings = Field(default_factory=Bm25Settings)

    _kind = _kind_validator(lexical_registry, also=(LEXICAL_AUTO,))

    def resolved_kind(self, vector_kind: str) -> str:
        """The backend ``kind`` stands for (``auto``: the one that goes with the vector store)."""
        if self.kind != LEXICAL_AUTO:
            return self.kind
        return "milvus" if vector_kind == "milvus" else "bm25"

    def options_for(self, kind: str) -> dict[str, Any]:
        """``kind``'s constructor settings: Milvus's BM25 takes the bm25 section's."""
        return section_options(self, "bm25" if kind == "milvus" else kind)


class JobsSettings(BackendSettings):
    kind: str = Field(
        default="inline",
        description=f"How ingestion jobs run, one of {_kinds(jobs_registry)}: inline (threads "
        "in the server process) or celery (`lantern worker` processes woken through a "
        "Celery broker; needs `pip install 'lantern[celery]'`).",
    )
    inline: InlineJobsSettings = Field(default_factory=InlineJobsSettings)
    celery: CeleryJobsSettings = Field(default_factory=CeleryJobsSettings)

    _kind = _kind_validator(jobs_registry)


class IngestionSettings(BaseModel):
    max_file_mb: int = Field(default=100, ge=1, description="Largest accepted upload, in MB.")
    max_unzipped_mb: int = Field(
        default=512,
        ge=1,
        description="Largest total uncompressed size of a zip-based document (DOCX, PPTX, "
        "XLSX, ODT/ODP/ODS, EPUB); guards against zip bombs.",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts for a job that fails with a transient error."
    )
    lease_seconds: int = Field(
        default=120,
        ge=5,
        description="A running job whose worker has not reported for this long is resumed "
        "by another worker.",
    )
    ocr: bool = Field(
        default=True,
        description="Read the text of scans, photographs and image-only slides with OCR "
        "(RapidOCR, PP-OCRv4, Chinese and English; offline). Off: such files fail with a "
        "reason.",
    )
    ocr_dpi: int = Field(
        default=200,
        ge=72,
        le=600,
        description="Resolution PDF pages without a text layer are rendered at for OCR "
        "(capped at 2,000 pixels a side).",
    )


class FinetuneSettings(BaseModel):
    base_model: str | None = Field(
        default=None,
        description="Base model to fine-tune: a hub id (Qwen/Qwen2.5-7B-Instruct), a local "
        "model directory or a GGUF file; unset: the bundled SmolLM2-135M-Instruct.",
    )
    gate_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="How much worse than the base a candidate may be on any gold metric "
        "and still pass the evaluation gate.",
    )


class ModelsSettings(BaseModel):
    rollback_error_rate: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="A candidate in an A/B test whose error rate passes this is rolled "
        "back automatically.",
    )
    rollback_min_answers: int = Field(
        default=20,
        ge=1,
        description="Answers a candidate must have given before its error rate can roll it back.",
    )


class CacheSettings(BaseModel):
    """The answer cache. On by default: its key holds the collections searched and their
    index generations, read from the database on every question, so even a cache in one
    process's memory never serves an answer over documents that changed since, or to
    anyone who may not read every collection it came from."""

    enabled: bool = Field(
        default=True,
        description="Serve an answer again to the same question over unchanged "
        "collections, for callers who search the same collections with the same model.",
    )
    url: str | None = Field(
        default=None,
        description="Redis shared by every `lantern serve` (redis://host:6379/0; needs "
        "`pip install 'lantern[redis]'`); unset: each process keeps its own in memory.",
    )
    ttl_seconds: int = Field(
        default=86400, ge=1, description="How long a cached answer is served, in seconds."
    )
    max_entries: int = Field(
        default=2000, ge=1, description="Answers kept in memory (least recently used go first)."
    )
    key_prefix: str = Field(
        default="lantern:answer:", description="Prefix of the answer cache's keys in Redis."
    )
    timeout_s: float = Field(
        default=0.5,
        gt=0,
        description="How long a question waits for Redis before answering without it.",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("cache.url must be a redis://, rediss:// or unix:// URL")
        return url or None


DEFAULT_ADMIN_PASSWORD = "lantern-demo-admin"  # the demo admin; refused outside dev


class ServerSettings(BaseModel):
    host: str = Field(default="127.0.0.1", description="Address `lantern serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `lantern serve` listens on.")
    session_hours: float = Field(
        default=12, gt=0, description="How long a browser log-in lasts without activity."
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="Send the session cookie over HTTPS only (empty: on in prod, off in dev).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API from other sites (JSON list).",
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
        "`lantern serve` believes (comma-separated addresses or networks, `*`: any "
        "connection): client addresses (log-in limits, audit) are then the ones the proxy "
        "names. Empty: the connection's own address.",
    )
    max_request_mb: int = Field(
        default=200, ge=1, description="Largest request body (an upload of many files), in MB."
    )
    max_files_per_upload: int = Field(
        default=100, ge=1, description="Most files in one upload request."
    )
    rate_limit_per_minute: int = Field(
        default=120,
        ge=0,
        description="Requests per minute per user or API key (0: unlimited); questions count 5.",
    )
    rate_limit_storage_url: str | None = Field(
        default=None,
        description="Where request budgets and failed log-ins are counted: empty for this "
        "process's memory; redis://host:6379/1 to share them between API processes behind "
        "one address (the limits library's Redis storage; `pip install 'lantern[redis]'`).",
    )
    login_window_minutes: int = Field(
        default=15, ge=1, description="Window over which failed log-ins are counted."
    )
    login_failures_per_account_address: int = Field(
        default=10,
        ge=0,
        description="Failed log-ins per account from one address in the window (0: no limit).",
    )
    login_failures_per_address: int = Field(
        default=300,
        ge=0,
        description="Failed log-ins from one address, over all accounts, in the window.",
    )
    login_failures_per_account: int = Field(
        default=50,
        ge=0,
        description="Failed log-ins per account from all addresses in the window; addresses "
        "the user logged in from before are exempt, so an attacker cannot lock them out.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics requires (empty: /metrics answers anyone).",
    )
    ui: bool = Field(default=True, description="Serve the browser UI at /ui (needs gradio).")
    admin_email: str = Field(
        default="admin@lantern.local",
        description="The first admin, created by `lantern demo` (and `lantern users "
        "create-admin` without --email).",
    )
    admin_password: SecretStr = Field(
        default=SecretStr(DEFAULT_ADMIN_PASSWORD),
        description="Password of that first admin; the default is refused outside dev.",
    )


class Settings(BaseSettings):
    """Every setting Lantern reads. See the configuration table in the README."""

    model_config = SettingsConfigDict(
        env_prefix="LANTERN_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = Field(
        default="dev",
        description="Deployment mode: dev, test or prod (prod refuses default secrets).",
    )
    data_dir: Path = Field(
        default=Path("data"),
        description="Holds the SQLite file, vector indexes and uploaded blobs.",
    )
    log_level: str = Field(
        default="WARNING", description="Python logging level (the CLI's --verbose means INFO)."
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    lexical: LexicalSettings = Field(default_factory=LexicalSettings)
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)
    reranker: RerankerSettings = Field(default_factory=RerankerSettings)
    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)

    _legacy = _moves(
        "",
        {
            "answer.extractive_min_support": ("llm", "extractive", "min_support"),
            "answer.extractive_semantic": ("llm", "extractive", "semantic"),
            "retrieval.reranker_model": ("reranker", "cross_encoder", "model"),
            "ingestion.workers": ("jobs", "inline", "workers"),
        },
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunking.overlap_tokens >= self.chunking.max_tokens:
            raise ValueError("chunking.overlap_tokens must be smaller than chunking.max_tokens")
        return self

    def check_secrets(self) -> None:
        """Refuse default secrets outside dev (called where a server or an admin starts)."""
        if self.env != "dev" and (
            self.server.admin_password.get_secret_value() == DEFAULT_ADMIN_PASSWORD
        ):
            raise ValueError(
                f"LANTERN_SERVER__ADMIN_PASSWORD is the default, which is refused when "
                f"LANTERN_ENV={self.env}; set a strong password"
            )

    @property
    def secure_cookies(self) -> bool:
        if self.server.secure_cookies is not None:
            return self.server.secure_cookies
        return self.env == "prod"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'lantern.db').resolve()}"

    @property
    def single_writer_indexes(self) -> bool:
        """Whether an index lives in files that one process writes and only it sees
        change (faiss, bm25, milvus-lite), rather than in a Milvus server all share."""
        milvus_server = "://" in (self.milvus.uri or "")
        return not (
            self.vector_store.kind == "milvus" and self.lexical_kind == "milvus" and milvus_server
        )

    @property
    def replicable_indexes(self) -> bool:
        """Whether processes that do not write the index files can follow the one that
        does (faiss and bm25 files can; milvus-lite's database file cannot be shared)."""
        milvus_lite = "milvus" in (self.vector_store.kind, self.lexical_kind) and "://" not in (
            self.milvus.uri or ""
        )
        return self.single_writer_indexes and not milvus_lite

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def lexical_kind(self) -> str:
        """The lexical index's kind, ``auto`` resolved against the vector store."""
        return self.lexical.resolved_kind(self.vector_store.kind)

    @property
    def milvus_uri(self) -> str:
        """``milvus.uri``, or the milvus-lite file in the index directory."""
        return self.milvus.uri or str(self.index_dir / "milvus.db")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``.env``), with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]


def describe_settings() -> list[tuple[str, str, str]]:
    """``(environment variable, default, description)`` for every setting, for docs."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name.upper()}__")
                continue
            default = field.get_default(call_default_factory=True)
            shown = "" if default is None else str(default)
            rows.append((f"{prefix}{name.upper()}", shown, field.description or ""))

    walk(Settings, "LANTERN_")
    return rows


def settings_markdown() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for env, default, desc in describe_settings():
        lines.append(
            f"| `{env}` | `{default}` | {desc} |" if default else f"| `{env}` | | {desc} |"
        )
    return "\n".join(lines)
