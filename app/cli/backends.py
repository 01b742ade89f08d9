"""``lantern backends``: every backend family's kinds, read from the registries."""

from __future__ import annotations

from rich.table import Table

from app.cli.common import console
from app.settings import LEXICAL_AUTO, get_settings
from app.settings_backends import (
    chat_registry,
    chat_registry_auto,
    embedder_registry,
    jobs_registry,
    lexical_registry,
    reranker_registry,
    vector_registry,
)


def backends() -> None:
    """List the kinds each backend family offers, and the one configured
    (LANTERN_<FAMILY>__KIND)."""
    s = get_settings()
    rows = [
        ("embedding", embedder_registry.kinds(), s.embedding.kind),
        ("vector_store", vector_registry.kinds(), s.vector_store.kind),
        ("lexical", [LEXICAL_AUTO, *lexical_registry.kinds()], s.lexical.kind),
        ("reranker", reranker_registry.kinds(), s.reranker.kind),
        ("llm", [chat_registry_auto, *chat_registry.kinds()], s.llm.kind),
        ("jobs", jobs_registry.kinds(), s.jobs.kind),
    ]
    table = Table("setting", "kinds", "configured")
    for family, kinds, configured in rows:
        table.add_row(f"LANTERN_{family.upper()}__KIND", ", ".join(kinds), configured)
    console.print(table)
