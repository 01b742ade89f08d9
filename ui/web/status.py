"""The admin console's system status: models, index sizes, queue."""

from __future__ import annotations

import time

import gradio as gr

from app.services.identity import IdentityService
from app.services.status import StatusService
from ui.web.base import Handlers


class StatusUI(Handlers):
    def __init__(self, *, identity: IdentityService, status: StatusService) -> None:
        super().__init__(identity)
        self.status = status

    def system_status(self, request: gr.Request) -> str:
        """The status as Markdown, with a warning when the fallback embedder is active."""
        _, actor = self._admin(request)
        s = self.status.system(actor)
        fallback = (
            " ⚠️ **fallback model active**: retrieval is noticeably worse; install "
            f"`{s.configured_model}` and run `lantern reindex`"
            if s.embedding_fallback
            else ""
        )
        lines = [
            f"- **Embedding model**: `{s.embedding_model}`{fallback}",
            f"- **Chat backend**: {s.chat_backend}",
            f"- **Index**: {s.vectors} vectors, {s.lexical_entries} BM25 entries",
            f"- **Queue**: {s.queued} queued, {s.running} running, {s.failed} failed",
            f"- **Checked**: {time.strftime('%H:%M:%S')}",
        ]
        return "\n".join(lines)
