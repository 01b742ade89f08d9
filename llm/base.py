"""The chat-model protocol: every backend completes and streams the same request.

Generative backends (OpenAI-compatible servers, llama.cpp) answer from
``messages`` (the prompt, with numbered sources, built by ``llm.prompts``). The
extractive backend has no model: it answers from ``question`` and ``sources``
directly. Both kinds receive both, so callers never branch on the backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from llm.language import Language

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "repetition", "timeout", "error"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Source:
    """A numbered source as shown to the model: ``[n]`` in the answer cites it."""

    n: int
    chunk_id: str
    document_id: str
    title: str
    page: int | None
    text: str
    #: Offset of ``text`` within its page's text, so a quote's page offsets are
    #: ``char_start + citation.char_start``; None when unknown.
    char_start: int | None = None
    #: The text was read by OCR from an image of the page (it may hold misreadings).
    ocr: bool = False


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    #: Total wall-clock budget for the whole answer, first token to last.
    timeout_s: float = 120.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    question: str
    sources: Sequence[Source] = ()
    params: GenerationParams = field(default_factory=GenerationParams)
    #: Model (or LoRA adapter) name for servers that host several; None = backend default.
    model: str | None = None
    #: The language of the user's question, detected once by the caller; None: the
    #: backend detects it from ``question`` where it needs it.
    language: Language | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: FinishReason
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Seconds from request to first token, and to the end.
    ttft_s: float | None = None
    total_s: float | None = None
    #: The backend's own measure (0-1) of how well the sources support its answer,
    #: where it has one (the extractive backend's best sentence support).
    support: float | None = None


@dataclass(frozen=True)
class StreamEvent:
    """A text delta, or (``done=True``) the end with the final Completion."""

    delta: str = ""
    done: bool = False
    completion: Completion | None = None


class ChatModel(Protocol):
    """Errors: ``LLMUnavailable``, ``LLMTimeout``, ``LLMBackendError`` (``llm.errors``).

    Optional capabilities, read with ``getattr`` so a backend declares only what
    differs from the default: ``counts_tokens`` (False) and ``generative`` (True;
    see ``is_generative``).
    """

    name: str

    def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Deltas as they arrive, then one event with ``done=True`` and the Completion."""


def is_generative(model: ChatModel) -> bool:
    """Whether the model writes text from ``messages`` (and can rewrite a follow-up),
    rather than quoting from ``sources`` like the extractive backend (``generative = False``)."""
    return bool(getattr(model, "generative", True))
