"""Chat models for fine-tuned versions, built from the base model's backend.

- On an OpenAI-compatible server (vLLM with ``--enable-lora``), a version is a LoRA
  adapter the server hosts under the version's name: ``adapter_model`` asks the base
  model's server for that name, through the same client and the same guards.
- On a laptop, a version is a GGUF (merged, exported by ``lantern finetune export``):
  ``gguf_model`` runs it in-process with llama.cpp, behind the guards.

The caller (the app's model router) builds each once and closes it when the version
leaves serving; an adapter model leaves the base's HTTP client open for its owner.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from llm.base import ChatModel, ChatRequest, Completion, StreamEvent
from llm.guards import GuardedChatModel


class AdapterChatModel:
    """The base model's server asked for ``adapter`` (``request.model``) on every request."""

    def __init__(self, inner: ChatModel, adapter: str) -> None:
        self.inner = inner
        self.adapter = adapter
        self.name = f"{inner.name}+{adapter}"
        self.counts_tokens = bool(getattr(inner, "counts_tokens", False))
        self.generative = bool(getattr(inner, "generative", True))

    def complete(self, request: ChatRequest) -> Completion:
        return self.inner.complete(replace(request, model=self.adapter))

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        return self.inner.stream(replace(request, model=self.adapter))

    # No close(): the HTTP client is the base model's, closed by its owner.


def adapter_model(
    base: ChatModel, adapter: str, *, deterministic_seed: int | None = None
) -> GuardedChatModel:
    """``base`` (guarded or not) answering as the adapter named ``adapter``, guarded once."""
    inner = base.inner if isinstance(base, GuardedChatModel) else base
    return GuardedChatModel(AdapterChatModel(inner, adapter), deterministic_seed=deterministic_seed)


def gguf_model(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    deterministic_seed: int | None = None,
    **llamacpp_options: Any,
) -> GuardedChatModel:
    """The GGUF at ``path`` run by llama.cpp (``n_ctx``, ``n_threads``, ``n_gpu_layers``
    as for the llamacpp backend), guarded. Raises ``LLMUnavailable`` when the file or
    llama-cpp-python is missing; the model loads on its first request."""
    from llm.backends.llamacpp import LlamaCppChatModel

    model = LlamaCppChatModel(path, seed=seed, **llamacpp_options)
    return GuardedChatModel(model, deterministic_seed=deterministic_seed)
