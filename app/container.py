"""The backend container: every long-lived object, built on first use from settings.

Entry points (CLI commands, and later the FastAPI lifespan) build one and pass it
down; nothing is created at import time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.metrics import Metrics
from app.services.access import AccessService
from app.services.answer import AnswerOptions, AnswerService
from app.services.audit import AuditLog
from app.services.auth import AuthService
from app.services.chat import ChatService
from app.services.collections import CollectionService
from app.services.documents import DocumentService
from app.services.jobstore import SqlJobStore
from app.services.ratelimit import LoginThrottle, RateLimiter
from app.services.search import SearchService
from app.settings import Settings
from ingestion.blobstore import BlobStore
from ingestion.chunking import Chunker
from ingestion.jobs import JobRunner
from ingestion.parsers.registry import ParserRegistry, default_registry
from ingestion.pipeline import IngestionPipeline
from ingestion.worker import WorkerPool
from llm.base import ChatModel, GenerationParams
from llm.guards import approx_tokens
from llm.registry import create_chat_model, resolve_kind
from retrieval.embedders.base import Embedder
from retrieval.embedders.cache import EmbeddingCache
from retrieval.embedders.registry import create_embedder
from retrieval.hybrid import HybridRetriever
from retrieval.lexical.base import LexicalIndex
from retrieval.lexical.registry import create_lexical_index
from retrieval.rerank import load_reranker
from retrieval.vectorstores.base import VectorStore
from retrieval.vectorstores.registry import create_vector_store

log = logging.getLogger(__name__)

MB = 1024 * 1024
#: Header tokens reserved for the section trail prepended to each chunk before embedding.
HEADER_TOKENS = 32


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # unstructured and Gradio phone home unless told not to.
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        self._worker_lock: FileLock | None = None
        self._pool: WorkerPool | None = None

    # -- storage ----------------------------------------------------------------

    @cached_property
    def engine(self) -> Engine:
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
        return create_embedder(
            model=e.model,
            device=e.device,
            allow_download=e.allow_download,
            fallback=e.fallback,
            query_instruction=e.query_instruction,
            batch_size=e.batch_size,
            backend=e.backend,
            quantize=e.quantize,
            cache_dir=self.settings.data_dir / "models" / "onnx",
        )

    @property
    def vector_dir(self) -> Path:
        return self.settings.index_dir / self.settings.vector_store.kind

    @property
    def lexical_dir(self) -> Path:
        return self.settings.index_dir / "bm25"

    @cached_property
    def vectors(self) -> VectorStore:
        return self.open_vector_store(self.vector_dir)

    def open_vector_store(self, directory: os.PathLike[str]) -> VectorStore:
        return create_vector_store(
            self.settings.vector_store.kind,
            directory=directory,
            embedding_model=self.embedder.model_name,
            dimension=self.embedder.dimension,
        )

    @cached_property
    def lexical(self) -> LexicalIndex:
        return self.open_lexical_index(self.lexical_dir)

    def open_lexical_index(self, directory: os.PathLike[str]) -> LexicalIndex:
        return create_lexical_index(
            "bm25", directory=Path(directory), cache_dir=self.settings.data_dir / "cache"
        )

    @cached_property
    def retriever(self) -> HybridRetriever:
        r = self.settings.retrieval
        reranker = None
        if r.mode == "hybrid+rerank":
            reranker = load_reranker(
                r.reranker_model,
                device=self.settings.embedding.device,
                allow_download=self.settings.embedding.allow_download,
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
            m.kind,
            base_url=m.base_url,
            api_key=m.api_key.get_secret_value() if m.api_key else None,
            model=m.model,
            connect_timeout_s=m.connect_timeout_s,
            read_timeout_s=m.read_timeout_s,
            max_retries=m.max_retries,
            model_path=m.model_path,
            n_ctx=m.n_ctx,
            n_threads=m.n_threads,
            n_gpu_layers=m.n_gpu_layers,
            deterministic=m.deterministic,
            seed=m.seed,
            extractive_similarity=(
                self.sentence_similarity if self.settings.answer.extractive_semantic else None
            ),
            extractive_min_support=self.settings.answer.extractive_min_support,
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
        m = self.settings.llm
        return resolve_kind(m.kind, base_url=m.base_url, model_path=m.model_path)

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
        return AnswerService(self.sessions, self.search, lambda: self.chat_model, options=options)

    # -- ingestion -----------------------------------------------------------------

    @cached_property
    def parsers(self) -> ParserRegistry:
        return default_registry(max_zip_uncompressed=self.settings.ingestion.max_unzipped_mb * MB)

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
            self.sessions, self.blobs, max_attempts=i.max_attempts, lease_seconds=i.lease_seconds
        )

    @cached_property
    def runner(self) -> JobRunner:
        return JobRunner(
            self.job_store, self.pipeline, self.vectors, self.blobs, lexical=self.lexical
        )

    # -- services ------------------------------------------------------------------

    @cached_property
    def metrics(self) -> Metrics:
        m = Metrics(self.documents.job_counts)
        self.job_store.on_finished = lambda timings, ok: m.observe_job(timings, ok=ok)
        self.answers.on_answer = lambda a: m.observe_answer(
            a.timings,
            outcome="abstained" if a.abstained else ("incomplete" if a.incomplete else "answered"),
            tokens=approx_tokens(a.text),
        )
        return m

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.settings.server.rate_limit_per_minute)

    @cached_property
    def login_throttle(self) -> LoginThrottle:
        server = self.settings.server
        return LoginThrottle(
            per_account=server.login_failures_per_account,
            per_account_address=server.login_failures_per_account_address,
            per_address=server.login_failures_per_address,
            window_minutes=server.login_window_minutes,
            known_address=self.audit.logged_in_from,
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
        return ChatService(self.sessions, self.access, self.answers)

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

    # -- workers -------------------------------------------------------------------

    def start_workers(self, threads: int | None = None) -> bool:
        """Start the in-process worker pool, unless another process on this data dir
        already runs one (then it does the work). Returns whether workers started here.

        Holding the data-dir lock means no other worker is alive, so every job left
        ``running`` was interrupted: it is requeued and its partial vectors removed.
        Idempotent: a second call while the pool runs does nothing.
        """
        if self._pool is not None:
            return True
        lock = FileLock(str(self.settings.data_dir / "worker.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("another Lantern process is running the workers for this data dir")
            return False
        self._worker_lock = lock
        self.recover()
        self._pool = WorkerPool(
            self.job_store.claim_next,
            self.runner.run,
            threads=threads or self.settings.ingestion.workers,
            poll_seconds=0.5,
            on_idle=self.warm_indexes,
        )
        self._pool.start()
        return True

    def recover(self) -> None:
        """Requeue interrupted jobs, then drop vectors and blobs that no live document owns."""
        exclusive = self._worker_lock is not None
        self.job_store.recover(exclusive=exclusive)
        live = self.job_store.live_document_ids(include_processing=not exclusive)
        for index in (self.vectors, self.lexical):
            orphans = index.document_ids() - live
            if orphans:
                n = index.delete_documents(orphans)
                index.flush()
                log.warning(
                    "removed %d orphan %s entries of %d documents",
                    n,
                    type(index).__name__,
                    len(orphans),
                )
        if exclusive:
            self.job_store.gc_blobs()

    def index_sizes(self) -> dict[str, int]:
        """Entries in the vector and BM25 indexes (for status pages)."""
        return {"vectors": self.vectors.count(), "lexical": self.lexical.count()}

    def warm_indexes(self) -> None:
        """Build what the next search would build lazily (the BM25 models after writes)."""
        warm = getattr(self.lexical, "warm", None)
        if callable(warm):
            started = time.perf_counter()
            warm()
            log.info("search indexes warmed in %.2f s", time.perf_counter() - started)

    def wake_workers(self) -> None:
        if self._pool is not None:
            self._pool.wake()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        for name in ("vectors", "lexical"):
            if name in self.__dict__:
                self.__dict__[name].close()
        if "chat_model" in self.__dict__:
            # Frees an in-process llama.cpp model after its generation in flight ends.
            close = getattr(self.chat_model, "close", None)
            if callable(close):
                close()
        if self._worker_lock is not None:
            self._worker_lock.release()
            self._worker_lock = None
        if "engine" in self.__dict__:
            self.engine.dispose()
