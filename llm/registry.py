"""Chat models by ``kind``: the one place that knows the backends.

``auto`` (the default) takes the OpenAI-compatible server if a ``base_url`` is
configured, else llama.cpp if a GGUF ``model_path`` is, else the extractive
answerer, which needs nothing. Every model comes back behind ``llm.guards``.
Backend modules are imported only when chosen (llama-cpp-python is optional).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from llm.base import ChatModel
from llm.errors import LLMUnavailable
from llm.guards import GuardedChatModel
from retrieval.backends import Backend, Registry

logger = logging.getLogger(__name__)

AUTO = "auto"

REGISTRY: Registry[ChatModel] = Registry(
    "chat model",
    {
        "openai": Backend("llm.backends.openai_compat", "OpenAICompatChatModel", None),
        "llamacpp": Backend("llm.backends.llamacpp", "LlamaCppChatModel", "llamacpp"),
        "extractive": Backend("llm.backends.extractive", "ExtractiveChatModel", None),
        "fake": Backend("llm.testing", "FakeChatModel", None),
    },
    error=LLMUnavailable,
)

#: The setting each kind cannot do without.
_REQUIRED = {
    "openai": ("base_url", "a base_url"),
    "llamacpp": ("model_path", "a model_path (a GGUF file)"),
}


def available_kinds() -> list[str]:
    """``auto`` and every backend kind the registry knows."""
    return [AUTO, *REGISTRY.kinds()]


def resolve_kind(
    kind: str, *, base_url: str | None = None, model_path: str | os.PathLike[str] | None = None
) -> str:
    """The concrete backend ``kind`` stands for (``auto`` decided by what is configured)."""
    REGISTRY.check(kind, also=(AUTO,))
    if kind != AUTO:
        return kind
    if base_url:
        return "openai"
    if model_path:
        return "llamacpp"
    return "extractive"


def create_chat_model(
    kind: str = AUTO,
    *,
    deterministic: bool = False,
    seed: int = 0,
    context: Mapping[str, Any] | None = None,
    **options: Any,
) -> GuardedChatModel:
    """A chat model of ``kind``, behind the guards, built with ``options`` (that backend's
    own settings, e.g. ``base_url``/``model``/``transport`` for ``openai``, ``model_path``/
    ``n_ctx`` for ``llamacpp``) and what it takes of ``context`` (e.g. ``similarity`` for
    ``extractive``). ``seed`` goes to backends that take one; ``deterministic`` makes every
    request greedy with it. Raises ``ValueError`` for a kind that lacks its setting,
    ``LLMUnavailable`` when the backend cannot be set up (library or GGUF file missing).
    """
    concrete = resolve_kind(
        kind, base_url=options.get("base_url"), model_path=options.get("model_path")
    )
    required = _REQUIRED.get(concrete)
    if required is not None and not options.get(required[0]):
        raise ValueError(f"chat model kind {concrete!r} needs {required[1]}")
    inner = REGISTRY.create(concrete, {"seed": seed, **(context or {})}, **options)
    guarded = GuardedChatModel(inner, deterministic_seed=seed if deterministic else None)
    logger.info("chat model: %s (kind %s)", guarded.name, kind)
    return guarded
