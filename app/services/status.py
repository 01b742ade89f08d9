"""What an admin checks first: the models in use, the index sizes and the job queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.db.models import JobStatus
from app.services.actor import Actor
from retrieval.embedders.base import Embedder


@dataclass(frozen=True)
class SystemStatus:
    embedding_model: str
    #: The bundled fallback is in use instead of ``configured_model``: retrieval is worse.
    embedding_fallback: bool
    configured_model: str
    chat_backend: str
    vectors: int
    lexical_entries: int
    queued: int
    running: int
    failed: int


class StatusService:
    """The system's state, read from the parts that hold it (each built on first use)."""

    def __init__(
        self,
        *,
        embedder: Callable[[], Embedder],
        index_sizes: Callable[[], Mapping[str, int]],
        job_counts: Callable[[], Mapping[str, int]],
        chat_backend: Callable[[], str],
        configured_model: str,
    ) -> None:
        self._embedder = embedder
        self._index_sizes = index_sizes
        self._job_counts = job_counts
        self._chat_backend = chat_backend
        self._configured_model = configured_model

    def system(self, actor: Actor) -> SystemStatus:
        """Models, index sizes and queue now (admins; loads the embedder if nothing has yet)."""
        actor.require_admin()
        e = self._embedder()
        sizes = self._index_sizes()
        counts = self._job_counts()
        return SystemStatus(
            embedding_model=e.model_name,
            embedding_fallback=e.is_fallback,
            configured_model=self._configured_model,
            chat_backend=self._chat_backend(),
            vectors=sizes.get("vectors", 0),
            lexical_entries=sizes.get("lexical", 0),
            queued=counts.get(JobStatus.QUEUED, 0),
            running=counts.get(JobStatus.RUNNING, 0),
            failed=counts.get(JobStatus.FAILED, 0),
        )
