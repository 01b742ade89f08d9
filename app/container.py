"""The container wires settings to backends and services: every long-lived object,
built on first use. It does no work itself: the ingestion workers' life is
``IngestionQueue``'s, the rules are the services'.

Entry points (CLI commands, the FastAPI lifespan) build one and pass it down;
nothing is created at import time, and building one touches neither the disk nor
the environment. ``Container(settings, overrides={"chat_model": fake})`` is the one
seam tests use to put a fake in place of any part before anything is built from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from limits.storage import Storage
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.answer_cache.registry import create_store
from app.db.engine import make_engine, make_session_factory
from app.metrics import Metrics
from app.services.access import AccessService
from app.services.answer import Answer, AnswerOptions, AnswerService
from app.services.answering.cache import AnswerCache
from app.services.audit import AuditLog
from app.services.auth import AuthService
from app.services.chat import ChatService
from app.services.collections import CollectionService
from app.services.documents import DocumentService
from app.services.finetune_data import TrainingDataService
from app.services.identity import IdentityService
from app.services.ingestion_queue import IngestionQueue
from app.services.jobstore import SqlJobStore
from app.services.library import LibraryService
from app.services.model_compare import ModelCompareService
from app.services.model_eval import ModelEvaluator
from app.services.model_registry import Deployer, ModelRegistryService, ServedVersion
from app.services.model_router import ModelRouter, version_label
from app.services.ratelimit import LoginThrottle, RateLimiter, limit_storage
from app.services.search import SearchService
from app.services.status import StatusService
from app.settings import Settings
from app.settings_backends import section_options
from ingestion.blobstore import BlobStore
from ingestion.chunking import Chunker
from ingestion.jobs import JobRunner
from ingestion.parsers.registry import ParserRegistry, default_registry
from ingestion.pipeline import IngestionPipeline
from ingestion.queues.base import JobQueue
from ingestion.queues.registry import create_job_queue
from llm.answerability.base import AnswerabilityJudge
from llm.base import ChatModel, GenerationParams
from llm.errors import LLMError, LLMUnavailable
from llm.guards import approx_tokens
from llm.registry import create_chat_model
from retrieval.embedders.base import Embedder
from retrieval.embedders.cache import EmbeddingCache
from retrieval.embedders.registry import create_embedder
from retrieval.errors import VectorStoreError
from retrieval.hybrid import HybridRetriever
from retrieval.lexical.base import LexicalIndex
from retrieval.lexical.registry import create_lexical_index
from retrieval.rerankers.registry import create_reranker
from retrieval.vectorstores.base import VectorStore
from retrieval.vectorstores.registry import create_vector_store

log = logging.getLogger(__name__)

MB = 1024 * 1024
#: Header tokens reserved for the section trail prepended to each chunk before embedding.
HEADER_TOKENS = 32


class Container:
    def __init__(self, settings: Settings, *, overrides: Mapping[str, Any] | None = None) -> None:
        """``overrides`` replaces parts by name (``embedder``, ``chat_model``,
        ``rate_limiter``...): whatever is built from them uses the replacement. Their
        owner closes them: ``close()`` leaves them open."""
        self.settings = settings
        self._given = frozenset(overrides or ())
        parts = {n for n, v in vars(type(self)).items() if isinstance(v, cached_property)}
        for name, value in (overrides or {}).items():
            if name not in parts:
                raise ValueError(f"no part {name!r} to override; parts: {', '.join(sorted(parts))}")
            # cached_property keeps its value in the instance dict: this is that value.
            self.__dict__[name] = value

    # -- storage ----------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
        if not self.settings.database.url:  # the SQLite file lives in the data dir
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return make_engine(self.settings.database_url, echo=self.settings.database.echo)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    def migrate(self) -> None:
        from app.db.migrate import upgrade

        upgrade(self.engine)

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.blob_dir)

    # -- models and indexes --------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        e = self.settings.embedding
        shared = e.model_dump(exclude={"kind", *e.sections()})
        return create_embedder(
            kind=e.kind,
            context={**shared, "cache_dir": self.settings.data_dir / "models" / "onnx"},
            **e.options(),
        )

    @property
    def vector_dir(self) -> Path:
        return self.settings.index_dir / self.settings.vector_store.kind

    @property
    def lexical_dir(self) -> Path:
        return self.settings.index_dir / self.settings.lexical_kind

    @cached_property
    def vectors(self) -> VectorStore:
        return self.open_vector_store(self.vector_dir)

    def open_vector_store(self, directory: os.PathLike[str]) -> VectorStore:
        store = self.settings.vector_store
        context = None
        if store.kind == "milvus":
            context = {"milvus": self._milvus_connection(), "full_text": self._milvus_text()}
        return create_vector_store(
            store.kind,
            context={**(context or {}), **self._replica_context()},
            directory=directory,
            embedding_model=self.embedder.model_name,
            dimension=self.embedder.dimension,
            **store.options(),
        )

    def _replica_context(self) -> dict[str, Any]:
        """What a file index takes to open as a replica: in a process that does not write
        the data dir's indexes (``IngestionQueue.replica``), it follows the one that does."""
        if not self.ingestion.replica:
            return {}
        return {
            "read_only": True,
            "refresh_seconds": self.settings.retrieval.replica_refresh_seconds,
        }

    @cached_property
    def lexical(self) -> LexicalIndex:
        return self.open_lexical_index(self.lexical_dir, self.vectors)

    def open_lexical_index(
        self, directory: os.PathLike[str], vectors: VectorStore | None = None
    ) -> LexicalIndex:
        """The lexical index at ``directory``; ``vectors``, the store opened beside it
        (built and swapped with it), holds it where the backends can share storage."""
        kind = self.settings.lexical_kind
        context: dict[str, Any] = {
            "directory": Path(directory),
            "cache_dir": self.settings.data_dir / "cache",
            "vectors": vectors,
            **self._replica_context(),
        }
        if kind == "milvus":
            context["milvus"] = self._milvus_connection()
        return create_lexical_index(
            kind, context=context, **self.settings.lexical.options_for(kind)
        )

    def _milvus_text(self) -> Any:
        """With a Milvus lexical index too, the Milvus vector store keeps the chunks' text
        and BM25 field beside their vectors, so hybrid search is one call."""
        if self.settings.lexical_kind != "milvus":
            return None
        from retrieval._milvus_text import FullText

        return FullText(
            **self.settings.lexical.options_for("milvus"),
            cache_dir=self.settings.data_dir / "cache",
        )

    def _milvus_connection(self) -> Any:
        """Where the Milvus backends connect (pymilvus is imported only when one is used)."""
        try:
            from retrieval._milvus import MilvusConnection
        except ModuleNotFoundError as e:
            raise VectorStoreError(
                f"the 'milvus' backends need {e.name!r}, which is not installed; "
                "pip install 'lantern[milvus]'"
            ) from e
        m = self.settings.milvus
        secret = section_options(self.settings, "milvus")
        return MilvusConnection(
            uri=self.settings.milvus_uri,
            token=secret["token"],
            user=m.user,
            password=secret["password"],
            db_name=m.db_name,
            prefix=m.collection_prefix,
            timeout_s=m.timeout_s,
        )

    @cached_property
    def retriever(self) -> HybridRetriever:
        r = self.settings.retrieval
        reranker = None
        if r.mode == "hybrid+rerank":
            e = self.settings.embedding
            reranker = create_reranker(
                self.settings.reranker.kind,
                context={"device": e.device, "allow_download": e.allow_download},
                **self.settings.reranker.options(),
            )
        return HybridRetriever(
            self.embedder,
            self.vectors,
            self.lexical,
            reranker=reranker,
            text_lookup=self.search.chunk_texts,
            dense_k=r.dense_k,
            lexical_k=r.lexical_k,
            weights=(r.dense_weight, r.lexical_weight),
            rrf_k=r.rrf_k,
        )

    @cached_property
    def chat_model(self) -> ChatModel:
        m = self.settings.llm
        return create_chat_model(
            self.chat_kind,
            deterministic=m.deterministic,
            seed=m.seed,
            context={"similarity": self.sentence_similarity},
            **m.options(),
        )

    @cached_property
    def sentence_embeddings(self) -> EmbeddingCache:
        return EmbeddingCache(self.embedder)

    def sentence_similarity(self, question: str, sentences: Sequence[str]) -> list[float]:
        """Cosine between the question and each sentence, with the retrieval embedder
        (sentences of popular chunks come from the cache)."""
        if not sentences:
            return []
        q = self.embedder.embed_query(question).reshape(-1)
        return (self.sentence_embeddings.embed_documents(sentences) @ q).tolist()  # type: ignore[no-any-return]

    @property
    def chat_kind(self) -> str:
        return self.settings.llm.resolved_kind

    @cached_property
    def answers(self) -> AnswerService:
        a, m = self.settings.answer, self.settings.llm
        options = AnswerOptions(
            top_k=a.top_k,
            context_tokens=a.context_tokens,
            history_tokens=a.history_tokens,
            abstain_below=a.abstain_below,
            params=GenerationParams(
                max_tokens=m.max_tokens,
                temperature=0.0 if m.deterministic else m.temperature,
                seed=m.seed,
                timeout_s=m.timeout_s,
            ),
        )
        return AnswerService(
            self.sessions,
            self.search,
            lambda: self.chat_model,
            options=options,
            on_answer=self._observe_answer,
            on_error=self._observe_answer_error,
            judge=self.answerability_judge,
            cache=self.answer_cache,
        )

    @cached_property
    def answer_cache(self) -> AnswerCache | None:
        """The answer cache (None: ``cache.enabled`` off): Redis at ``cache.url``, else
        this process's memory."""
        c = self.settings.cache
        if not c.enabled:
            return None
        store = create_store(
            c.url, max_entries=c.max_entries, key_prefix=c.key_prefix, timeout_s=c.timeout_s
        )
        return AnswerCache(
            store,
            self.sessions,
            ttl_s=c.ttl_seconds,
            config=self.answer_config(),
            on_result=lambda result: self.metrics.answer_cache.labels(result).inc(),
            loaded=self._loaded_generations,
        )

    def _loaded_generations(self, collection_ids: Collection[str] | None) -> dict[str, int]:
        """Per collection, the newest index generation this replica has loaded (of the
        vector and the lexical files); nothing where this process writes them, or a
        server holds them, since they never lag the database there."""
        out: dict[str, int] = {}
        if not self.ingestion.replica:
            return out
        for index in (self.vectors, self.lexical):
            versions = getattr(index, "versions", None)
            if callable(versions):
                for c, g in versions(collection_ids).items():
                    out[c] = max(out.get(c, 0), g)
        return out

    def answer_config(self) -> str:
        """A fingerprint of the settings that shape an answer: a process started with
        other retrieval, model or answer settings shares no cached answer with this one."""
        s = self.settings
        shaping = {
            n: getattr(s, n).model_dump(mode="json")
            for n in ("answer", "llm", "retrieval", "reranker", "embedding")
        }
        blob = json.dumps(shaping, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @cached_property
    def answerability_judge(self) -> AnswerabilityJudge | None:
        """The check that the sources answer the question (None: ``off``)."""
        from llm.answerability.registry import create_judge

        j = self.settings.answer.answerability
        options = (
            {
                "model": j.reader_model,
                "min_score": j.min_score,
                "allow_download": self.settings.embedding.allow_download,
            }
            if j.kind == "reader"
            else {}
        )
        return create_judge(j.kind, **options)

    @cached_property
    def model_router(self) -> ModelRouter:
        m = self.settings.models
        return ModelRouter(
            versions=self.model_registry.serving,
            base_model=lambda: self.chat_model,
            make_model=self.version_model,
            rollback_candidate=self.model_registry.rollback_candidate,
            rollback_error_rate=m.rollback_error_rate,
            rollback_min_answers=m.rollback_min_answers,
        )

    def version_model(self, version: ServedVersion) -> ChatModel:
        """A fine-tuned version's chat model: its adapter by name on the OpenAI-compatible
        server (vLLM serves each loaded adapter under the version's name), else its GGUF
        in-process with llama.cpp. ``LLMUnavailable`` when neither can serve it."""
        from llm.versioned import adapter_model, gguf_model

        m = self.settings.llm
        seed = m.seed if m.deterministic else None
        if self.chat_kind == "openai":
            return adapter_model(self.chat_model, version.name, deterministic_seed=seed)
        if not version.gguf_path:
            raise LLMUnavailable(
                f"model version {version.name} has no GGUF for llama.cpp: export it with "
                "`lantern finetune export RUN --gguf`, or serve it from vLLM (llm.kind openai)"
            )
        c = m.llamacpp
        return gguf_model(
            version.gguf_path,
            seed=m.seed,
            deterministic_seed=seed,
            n_ctx=c.n_ctx,
            n_threads=c.n_threads,
            n_gpu_layers=c.n_gpu_layers,
        )

    def answers_with(self, model: ChatModel) -> AnswerService:
        """The answer service as configured around another model, decoding greedily with
        the configured seed (evaluations repeat exactly)."""
        o = self.answers.options
        greedy = replace(o, params=replace(o.params, temperature=0.0, seed=self.settings.llm.seed))
        return AnswerService(
            self.sessions,
            self.search,
            lambda: model,
            options=greedy,
            judge=self.answerability_judge,
        )

    @cached_property
    def model_eval(self) -> ModelEvaluator:
        return ModelEvaluator(self.sessions, self.answers_with, audit=self.audit)

    # -- ingestion -----------------------------------------------------------------

    @cached_property
    def parsers(self) -> ParserRegistry:
        settings = self.settings.ingestion
        return default_registry(
            max_zip_uncompressed=settings.max_unzipped_mb * MB,
            ocr=settings.ocr,
            ocr_dpi=settings.ocr_dpi,
        )

    @cached_property
    def chunker(self) -> Chunker:
        c = self.settings.chunking
        limit = max(32, self.embedder.max_tokens - 2 - HEADER_TOKENS)
        max_tokens = min(c.max_tokens, limit)
        return Chunker(
            self.embedder.tokenizer,
            max_tokens=max_tokens,
            overlap_tokens=min(c.overlap_tokens, max_tokens // 2),
        )

    @cached_property
    def pipeline(self) -> IngestionPipeline:
        return IngestionPipeline(
            self.parsers, self.chunker, self.embedder, max_bytes=self.max_file_bytes
        )

    @property
    def max_file_bytes(self) -> int:
        return self.settings.ingestion.max_file_mb * MB

    @cached_property
    def job_store(self) -> SqlJobStore:
        i = self.settings.ingestion
        return SqlJobStore(
            self.sessions,
            self.blobs,
            max_attempts=i.max_attempts,
            lease_seconds=i.lease_seconds,
            on_finished=lambda timings, ok, pages: self.metrics.observe_job(
                timings, ok=ok, pages=pages
            ),
            max_file_bytes=self.max_file_bytes,
        )

    @cached_property
    def runner(self) -> JobRunner:
        return JobRunner(
            self.job_store,
            self.pipeline,
            self.vectors,
            self.blobs,
            lexical=self.lexical,
            heartbeat_seconds=self.settings.ingestion.lease_seconds / 4,
        )

    # -- services ------------------------------------------------------------------

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics(self.documents.job_counts)

    def _observe_answer(self, a: Answer) -> None:
        version = a.provenance.get("model_version")
        self.metrics.observe_answer(
            a.timings,
            outcome="abstained" if a.abstained else ("incomplete" if a.incomplete else "answered"),
            tokens=approx_tokens(a.text),
            version=version_label(version),
            finish_reason=a.finish_reason,
        )
        # A cached answer is no evidence about the model: not counted for its rollback.
        if version is not None and a.provenance.get("cache") != "hit":
            self.model_router.record(version, failed=a.incomplete)

    def _observe_answer_error(self, version: str | None, error: LLMError) -> None:
        self.metrics.observe_answer_failure(
            version=version_label(version), kind=type(error).__name__
        )
        if version is not None:
            self.model_router.record(version, failed=True)

    def _observe_feedback(self, version: str | None, rating: int) -> None:
        self.metrics.observe_feedback(version=version_label(version), rating=rating)

    @cached_property
    def _limit_storage(self) -> Storage:
        return limit_storage(self.settings.server.rate_limit_storage_url)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.settings.server.rate_limit_per_minute, self._limit_storage)

    @cached_property
    def login_throttle(self) -> LoginThrottle:
        server = self.settings.server
        return LoginThrottle(
            per_account=server.login_failures_per_account,
            per_account_address=server.login_failures_per_account_address,
            per_address=server.login_failures_per_address,
            window_minutes=server.login_window_minutes,
            known_address=self.audit.logged_in_from,
            storage=self._limit_storage,
        )

    @cached_property
    def auth(self) -> AuthService:
        return AuthService(self.sessions, session_hours=self.settings.server.session_hours)

    @cached_property
    def access(self) -> AccessService:
        return AccessService(self.sessions)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.sessions)

    @cached_property
    def chats(self) -> ChatService:
        return ChatService(
            self.sessions,
            self.access,
            self.answers,
            audit=self.audit,
            collections=self.collections,
            limiter=self.rate_limiter,
            router=self.model_router,
            on_feedback=self._observe_feedback,
        )

    @cached_property
    def training_data(self) -> TrainingDataService:
        return TrainingDataService(
            self.sessions,
            self.answers,
            collections=self.collections,
            audit=self.audit,
            chat_model=lambda: self.chat_model,
        )

    @cached_property
    def model_compare(self) -> ModelCompareService:
        return ModelCompareService(self.sessions)

    @cached_property
    def identity(self) -> IdentityService:
        return IdentityService(
            auth=self.auth, access=self.access, audit=self.audit, throttle=self.login_throttle
        )

    @cached_property
    def library(self) -> LibraryService:
        return LibraryService(
            collections=self.collections,
            documents=self.documents,
            access=self.access,
            audit=self.audit,
            search=self.search,
            indexes=lambda: (self.vectors, self.lexical),
            wake_workers=lambda: self.ingestion.wake(),
            max_files_per_upload=self.settings.server.max_files_per_upload,
        )

    @cached_property
    def collections(self) -> CollectionService:
        return CollectionService(self.sessions)

    @cached_property
    def documents(self) -> DocumentService:
        return DocumentService(self.sessions, self.blobs, max_bytes=self.max_file_bytes)

    @cached_property
    def search(self) -> SearchService:
        return SearchService(
            self.sessions, lambda: self.retriever, mode=self.settings.retrieval.mode
        )

    @cached_property
    def status(self) -> StatusService:
        return StatusService(
            embedder=lambda: self.embedder,
            index_sizes=lambda: self.ingestion.index_sizes(),
            job_counts=self.documents.job_counts,
            chat_backend=lambda: self.chat_kind,
            configured_model=self.settings.embedding.model,
        )

    @cached_property
    def model_registry(self) -> ModelRegistryService:
        return ModelRegistryService(self.sessions, self.audit, lambda: self.model_deployer)

    @cached_property
    def model_deployer(self) -> Deployer:
        """How a model version reaches the configured chat backend (vLLM: its adapter)."""
        from app.services.model_deploy import deployer_for

        return deployer_for(self.settings)

    # -- workers -------------------------------------------------------------------

    @cached_property
    def ingestion(self) -> IngestionQueue:
        return IngestionQueue(
            jobs=self.job_store,
            make_queue=self._job_queue,
            indexes=lambda: (self.vectors, self.lexical),
            lock_path=self.settings.data_dir / "worker.lock",
            single_writer=self.settings.single_writer_indexes,
            replicable=self.settings.replicable_indexes,
            kind=self.settings.jobs.kind,
        )

    def _job_queue(
        self, on_idle: Callable[[], None], workers: int | None, context: Mapping[str, Any]
    ) -> JobQueue:
        options = self.settings.jobs.options()
        for name in ("workers", "concurrency"):  # `lantern ingest --workers N`, `lantern worker`
            if workers and name in options:
                options[name] = workers
        return create_job_queue(
            self.settings.jobs.kind,
            self.job_store.claim_next,
            lambda job_id: self.runner.run(job_id),  # built where jobs run, when one does
            on_idle=on_idle,
            context=context,
            **options,
        )

    def close(self) -> None:
        """Stop the workers, then close what this container built (nothing is built to
        close it; parts given as overrides are their owner's to close)."""
        if self._built("ingestion"):
            self.ingestion.stop()
        for name in ("vectors", "lexical"):
            if self._built(name):
                self.__dict__[name].close()
        if self._built("model_router"):
            self.model_router.close()  # the versions' models; the base is closed below
        if self._built("model_deployer"):
            close = getattr(self.model_deployer, "close", None)
            if callable(close):
                close()
        if self._built("chat_model"):
            # Frees an in-process llama.cpp model after its generation in flight ends.
            close = getattr(self.chat_model, "close", None)
            if callable(close):
                close()
        if self._built("answer_cache") and self.answer_cache is not None:
            self.answer_cache.close()
        if self._built("engine"):
            self.engine.dispose()

    def _built(self, name: str) -> bool:
        return name in self.__dict__ and name not in self._given
