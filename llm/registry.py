"""Chat models by ``kind``: the one place that knows the backends.

``auto`` (the default) takes the OpenAI-compatible server if a ``base_url`` is
configured, else llama.cpp if a GGUF ``model_path`` is, else the extractive
answerer, which needs nothing. Every model comes back behind ``llm.guards``.
Backend modules are imported only when chosen (llama-cpp-python is optional).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Literal, get_args

import httpx

from llm.base import ChatModel
from llm.guards import GuardedChatModel

if TYPE_CHECKING:
    from llm.backends.extractive import Similarity

logger = logging.getLogger(__name__)

ChatModelKind = Literal["auto", "openai", "llamacpp", "extractive"]
KINDS: tuple[str, ...] = get_args(ChatModelKind)


def resolve_kind(
    kind: str, *, base_url: str | None = None, model_path: str | os.PathLike[str] | None = None
) -> str:
    """The concrete backend ``kind`` stands for (``auto`` decided by what is configured)."""
    if kind not in KINDS:
        raise ValueError(f"unknown chat model kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    if base_url:
        return "openai"
    if model_path:
        return "llamacpp"
    return "extractive"


def create_chat_model(
    kind: str = "auto",
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 60.0,
    max_retries: int = 2,
    model_path: str | os.PathLike[str] | None = None,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    deterministic: bool = False,
    seed: int = 0,
    transport: httpx.BaseTransport | None = None,
    extractive_similarity: Similarity | None = None,
    extractive_min_support: float | None = None,
) -> GuardedChatModel:
    """A chat model of ``kind``, behind the guards.

    ``openai`` uses ``base_url``, ``api_key``, ``model``, the timeouts and
    ``max_retries`` (``transport`` replaces the network, for tests);
    ``llamacpp`` uses ``model_path``, ``n_ctx``, ``n_threads``, ``n_gpu_layers``
    and ``seed``; ``extractive`` uses ``extractive_similarity`` (question and
    sentences to scores, e.g. embedding cosines) and ``extractive_min_support``.
    ``deterministic`` makes every request greedy with ``seed``.
    Raises ``ValueError`` for a kind that lacks its setting, ``LLMUnavailable``
    when the backend cannot be set up (library missing, GGUF file missing).
    """
    concrete = resolve_kind(kind, base_url=base_url, model_path=model_path)
    inner: ChatModel
    if concrete == "openai":
        if not base_url:
            raise ValueError("chat model kind 'openai' needs a base_url")
        from llm.backends.openai_compat import OpenAICompatChatModel

        inner = OpenAICompatChatModel(
            base_url=base_url,
            model=model,
            api_key=api_key,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_retries=max_retries,
            transport=transport,
        )
    elif concrete == "llamacpp":
        if not model_path:
            raise ValueError("chat model kind 'llamacpp' needs a model_path (a GGUF file)")
        from llm.backends.llamacpp import LlamaCppChatModel

        inner = LlamaCppChatModel(
            model_path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, seed=seed
        )
    else:
        from llm.backends.extractive import ExtractiveChatModel

        inner = ExtractiveChatModel(
            similarity=extractive_similarity, min_support=extractive_min_support
        )
    guarded = GuardedChatModel(inner, deterministic_seed=seed if deterministic else None)
    logger.info("chat model: %s (kind %s)", guarded.name, kind)
    return guarded
