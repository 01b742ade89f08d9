"""An in-process double of a vLLM server's runtime LoRA API, for ``httpx.MockTransport``.

It follows vLLM as documented ("LoRA Adapters" > "Dynamically serving LoRA Adapters",
docs.vllm.ai, v0.6 to v0.11) and as implemented in ``vllm/entrypoints/openai/
serving_models.py`` and ``vllm/entrypoints/serve/lora/api_router.py`` (v0.11):

- the routes exist only with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; otherwise a
  POST to them is a 404, which vLLM's HTTPException handler answers as
  ``{"error": {"message": "Not Found", "type": "Not Found", "code": 404}}`` (plain
  FastAPI, and so older vLLM: ``{"detail": "Not Found"}``: ``old_errors``);
- ``POST /v1/load_lora_adapter {"lora_name", "lora_path"}``: 200 with the plain-text
  body "Success: LoRA adapter 'NAME' added successfully."; 400 ``InvalidUserInput``
  "The lora adapter 'NAME' has already been loaded. If you want to load the adapter in
  place, set 'load_inplace' to True."; 404 ``NotFoundError`` "Loading lora NAME failed:
  No adapter found for PATH" when the engine finds no adapter there; 400
  ``BadRequestError`` "LoRA rank R is greater than max_lora_rank M." from the engine;
- ``POST /v1/unload_lora_adapter {"lora_name"}``: 200 "Success: LoRA adapter 'NAME'
  removed successfully."; 404 ``NotFoundError`` "The lora adapter 'NAME' cannot be found.";
- ``GET /v1/models``: the base model card, then one card per adapter with ``root`` (its
  path) and ``parent`` (the base model);
- error bodies nest under ``error`` (v0.10+); ``flat_errors`` gives the older top-level
  shape (``{"object": "error", "message", "type", "code"}``, v0.6 to v0.9);
- with ``--api-key`` every /v1 route answers 401 ``{"error": "Unauthorized"}`` to a
  request without ``Authorization: Bearer KEY``.

The engine here "finds" an adapter where the path holds an ``adapter_config.json``
(this double shares the test's file system, as a vLLM container with the runs folder
mounted would), with its ``r`` as the rank.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx


class FakeVLLM:
    def __init__(
        self,
        *,
        base: str = "Qwen/Qwen2.5-7B-Instruct",
        root: str = "/models/Qwen2.5-7B-Instruct",
        runtime_lora_updating: bool = True,
        api_key: str | None = None,
        max_lora_rank: int = 16,
        flat_errors: bool = False,
        old_errors: bool = False,
    ) -> None:
        self.base, self.root = base, root
        self.runtime_lora_updating = runtime_lora_updating
        self.api_key = api_key
        self.max_lora_rank = max_lora_rank
        self.flat_errors = flat_errors
        self.old_errors = old_errors
        #: Loaded adapters: name -> path.
        self.loaded: dict[str, str] = {}
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def calls(self) -> list[tuple[str, str, Any]]:
        """(method, path, JSON body or None) of every request, in order."""
        return [
            (r.method, r.url.path, json.loads(r.content) if r.content else None)
            for r in self.requests
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"error": "Unauthorized"})
        route = (request.method, request.url.path)
        if route == ("GET", "/v1/models"):
            return httpx.Response(200, json=self._models())
        if request.url.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
            if not self.runtime_lora_updating:
                return self._not_found_route()
            body = json.loads(request.content or b"{}")
            if route == ("POST", "/v1/load_lora_adapter"):
                return self._load(body)
            if route == ("POST", "/v1/unload_lora_adapter"):
                return self._unload(body)
            return self._error(405, "Method Not Allowed", "Method Not Allowed")
        return self._not_found_route()

    def _models(self) -> dict[str, Any]:
        cards = [
            {
                "id": self.base,
                "object": "model",
                "owned_by": "vllm",
                "root": self.root,
                "parent": None,
                "max_model_len": 32768,
                "permission": [{"object": "model_permission"}],
            }
        ]
        cards += [
            {
                "id": name,
                "object": "model",
                "owned_by": "vllm",
                "root": path,
                "parent": self.base,
                "max_model_len": None,
                "permission": [{"object": "model_permission"}],
            }
            for name, path in self.loaded.items()
        ]
        return {"object": "list", "data": cards}

    def _load(self, body: dict[str, Any]) -> httpx.Response:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return self._error(
                400, "InvalidUserInput", "Both 'lora_name' and 'lora_path' must be provided."
            )
        if name in self.loaded and not body.get("load_inplace"):
            return self._error(
                400,
                "InvalidUserInput",
                f"The lora adapter '{name}' has already been loaded. If you want to load "
                "the adapter in place, set 'load_inplace' to True.",
            )
        config = Path(path) / "adapter_config.json"
        if not config.is_file():
            return self._error(
                404, "NotFoundError", f"Loading lora {name} failed: No adapter found for {path}"
            )
        rank = int(json.loads(config.read_text()).get("r", 8))
        if rank > self.max_lora_rank:
            return self._error(
                400,
                "BadRequestError",
                f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}.",
            )
        self.loaded[name] = path
        return httpx.Response(200, text=f"Success: LoRA adapter '{name}' added successfully.")

    def _unload(self, body: dict[str, Any]) -> httpx.Response:
        name = body.get("lora_name")
        if not name:
            return self._error(
                400,
                "InvalidUserInput",
                "'lora_name' needs to be provided to unload a LoRA adapter.",
            )
        if name not in self.loaded:
            return self._error(404, "NotFoundError", f"The lora adapter '{name}' cannot be found.")
        del self.loaded[name]
        return httpx.Response(200, text=f"Success: LoRA adapter '{name}' removed successfully.")

    def _not_found_route(self) -> httpx.Response:
        if self.old_errors:
            return httpx.Response(404, json={"detail": "Not Found"})
        return self._error(404, "Not Found", "Not Found")

    def _error(self, code: int, kind: str, message: str) -> httpx.Response:
        info = {"message": message, "type": kind, "param": None, "code": code}
        body = {"object": "error", **info} if self.flat_errors else {"error": info}
        return httpx.Response(code, json=body)
