"""vLLM's runtime LoRA API: load, unload and list the adapters of a running server.

vLLM ("Dynamically serving LoRA Adapters" in its LoRA docs) serves an adapter under
its own model name once it is loaded with ``POST /v1/load_lora_adapter``
``{"lora_name", "lora_path"}``, and forgets it with ``POST /v1/unload_lora_adapter``
``{"lora_name"}``; ``GET /v1/models`` lists the base model(s) and every adapter (an
adapter's card has ``parent``, the base it sits on, and ``root``, its path). The server
must run with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; without
the variable those two routes do not exist (404). ``lora_path`` is read by the vLLM
process, so it must be a path that server sees.

Its answers: 200 with a plain-text "Success: ..." body; 400 ``InvalidUserInput`` when the
name is already loaded; 404 ``NotFoundError`` when the path holds no adapter ("No
adapter found for ...") or, on unload, when the name is not loaded ("... cannot be
found"); 400 ``BadRequestError`` when the engine refuses the adapter (rank over
``--max-lora-rank``, LoRA not enabled...). Error bodies are
``{"error": {"message", "type", "code"}}`` (older releases: the same keys at the top
level); ``--api-key`` makes it answer 401 without the key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from llm.backends.openai_compat import normalise_base_url
from llm.errors import LLMBackendError, LLMTimeout, LLMUnavailable

logger = logging.getLogger(__name__)

ENABLE_HINT = (
    "start vLLM with --enable-lora and the environment variable "
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
)


class AdapterError(LLMBackendError):
    """vLLM refused an adapter operation (the message says why and what to do)."""


class AdapterAlreadyLoaded(AdapterError):
    """An adapter of that name is already loaded."""


class AdapterNotLoaded(AdapterError):
    """Unloading a name the server does not have."""


class AdapterNotFound(AdapterError):
    """The server found no adapter at the path it was given."""


class RuntimeLoRADisabled(AdapterError):
    """The server has no runtime LoRA routes (``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` unset)."""


@dataclass(frozen=True)
class ServedModel:
    """One card of ``GET /v1/models``: a base model (``parent`` None) or an adapter."""

    id: str
    root: str | None
    parent: str | None

    @property
    def is_adapter(self) -> bool:
        return self.parent is not None


class VLLMAdapters:
    """The adapter-management calls of one vLLM server (thread-safe: one ``httpx.Client``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        *,
        connect_timeout_s: float = 5.0,
        timeout_s: float = 300.0,
    ) -> None:
        # Loading reads the adapter from disk onto the GPU: allow minutes, not seconds.
        self.base_url = normalise_base_url(base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )

    def close(self) -> None:
        self._client.close()

    def models(self) -> list[ServedModel]:
        """What the server serves now: its base model(s), then its adapters."""
        response = self._send("GET", "models")
        if response.status_code >= 400:
            raise self._error(response, "list the models")
        data = _json(response.content)
        cards = data.get("data") if isinstance(data, dict) else None
        if not isinstance(cards, list):
            raise LLMBackendError(f"{self._where} answered /models without a model list")
        return [
            ServedModel(str(c["id"]), _opt_str(c.get("root")), _opt_str(c.get("parent")))
            for c in cards
            if isinstance(c, dict) and "id" in c
        ]

    def adapters(self) -> dict[str, ServedModel]:
        """The loaded adapters by name."""
        return {m.id: m for m in self.models() if m.is_adapter}

    def load(self, name: str, path: str) -> None:
        """Load the adapter at ``path`` (as the server sees it) under ``name``."""
        response = self._send("POST", "load_lora_adapter", {"lora_name": name, "lora_path": path})
        if response.status_code >= 400:
            raise self._error(response, f"load the adapter {name!r} from {path}", path=path)
        logger.info("vLLM at %s loaded adapter %s from %s", self.base_url, name, path)

    def unload(self, name: str) -> None:
        """Unload the adapter ``name``; requests naming it fail from now on."""
        response = self._send("POST", "unload_lora_adapter", {"lora_name": name})
        if response.status_code >= 400:
            raise self._error(response, f"unload the adapter {name!r}")
        logger.info("vLLM at %s unloaded adapter %s", self.base_url, name)

    def ensure_loaded(self, name: str, path: str) -> bool:
        """Load unless ``name`` is loaded already (then True only if this call loaded it)."""
        try:
            self.load(name, path)
        except AdapterAlreadyLoaded:
            return False
        return True

    def ensure_unloaded(self, name: str) -> bool:
        """Unload unless ``name`` is not loaded (then True only if this call unloaded it)."""
        try:
            self.unload(name)
        except AdapterNotLoaded:
            return False
        return True

    # ------------------------------------------------------------ HTTP

    @property
    def _where(self) -> str:
        return f"the vLLM server at {self.base_url}"

    def _send(self, method: str, route: str, body: dict[str, Any] | None = None) -> httpx.Response:
        url = f"{self.base_url}/{route}"
        try:
            return self._client.request(method, url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as e:
            raise LLMUnavailable(f"cannot reach {self._where}: {e or type(e).__name__}") from e
        except httpx.TimeoutException as e:
            raise LLMTimeout(f"{self._where} did not answer {route} in time") from e
        except httpx.TransportError as e:
            raise LLMBackendError(f"{route} request to {self._where} failed: {e!r}") from e

    def _error(self, response: httpx.Response, doing: str, *, path: str = "") -> LLMBackendError:
        code = response.status_code
        kind, message = _error_of(response)
        said = f": {message}" if message else ""
        cannot = f"{self._where} could not {doing} ({code}{said})"
        if code in (401, 403):
            return AdapterError(
                f"{self._where} refused the API key ({code}): set the same key "
                "as vLLM's --api-key in LANTERN_LLM__OPENAI__API_KEY"
            )
        if code == 404 and kind == "NotFoundError":
            if "no adapter found" in message.lower():
                return AdapterNotFound(
                    f"{cannot}: the vLLM server sees no adapter at {path}; the path must be one "
                    "that server can read (mount the training runs folder into its container "
                    "at the same path)"
                )
            return AdapterNotLoaded(cannot)
        if code in (404, 405):
            return RuntimeLoRADisabled(
                f"{cannot}: it does not accept runtime LoRA updates; {ENABLE_HINT}"
            )
        if code == 400 and "already been loaded" in message:
            return AdapterAlreadyLoaded(cannot)
        if code == 400:
            return AdapterError(
                f"{cannot}; check that vLLM runs the adapter's base model with --enable-lora "
                "and a --max-lora-rank at least the adapter's rank"
            )
        if code in (429, 502, 503, 504):
            return LLMUnavailable(cannot)
        return AdapterError(cannot)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(error type, message) of a vLLM error body, nested or flat; FastAPI's ``detail``."""
    data = _json(response.content)
    if not isinstance(data, dict):
        return "", response.text.strip()[:300]
    error = data.get("error", data)
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or ""
        return str(error.get("type") or ""), str(message)[:500]
    return "", str(error)[:500]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
