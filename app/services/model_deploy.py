"""Deployers: how a model version reaches the chat backend the settings chose.

- ``openai`` (vLLM): the version's LoRA adapter is loaded into the running server under
  the version's name (runtime LoRA updating) and unloaded when it stops serving; the
  answer request then names the adapter as its model.
- ``llamacpp``: nothing to load into a server; the version needs a GGUF file, which the
  answer path opens itself. A version without one cannot serve here.
- anything else (``extractive``): no language model to adapt; versions cannot serve.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from app.errors import Conflict
from app.services.model_registry import Deployer, ServedVersion
from app.settings import Settings
from llm.backends.vllm_adapters import ServedModel, VLLMAdapters

log = logging.getLogger(__name__)


class VLLMDeployer:
    """Loads and unloads a version's adapter on a vLLM server (``VLLMAdapters``)."""

    def __init__(self, adapters: VLLMAdapters) -> None:
        self.adapters = adapters

    def deploy(self, version: ServedVersion) -> None:
        served = self.adapters.models()
        bases = [m for m in served if not m.is_adapter]
        if bases and not any(_same_model(version.base_model, m) for m in bases):
            names = ", ".join(m.id for m in bases)
            raise Conflict(
                f"{version.name} was trained on {version.base_model}, but the vLLM server at "
                f"{self.adapters.base_url} serves {names}: an adapter only works on its own "
                "base model; serve that one, or train on this one"
            )
        loaded = {m.id: m for m in served if m.is_adapter}
        if version.name in loaded:
            return
        self.adapters.ensure_loaded(version.name, version.adapter_path)

    def undeploy(self, version: ServedVersion) -> None:
        self.adapters.ensure_unloaded(version.name)

    def close(self) -> None:
        self.adapters.close()


class GGUFDeployer:
    """The llamacpp backend: a version serves from its own GGUF file, which must exist."""

    def deploy(self, version: ServedVersion) -> None:
        if not version.gguf_path:
            raise Conflict(
                f"{version.name} has no GGUF file, and the llamacpp backend serves only GGUF: "
                "run `lantern finetune export RUN --gguf` on its run folder, then promote "
                "again (promote picks the export up)"
            )
        if not Path(version.gguf_path).is_file():
            raise Conflict(
                f"the GGUF file of {version.name} is gone ({version.gguf_path}): export the run "
                "again with `lantern finetune export RUN --gguf`"
            )

    def undeploy(self, version: ServedVersion) -> None:
        """Nothing to unload: the answer path drops a version's model when it stops serving."""


class NoModelDeployer:
    """A chat backend without a language model (``extractive``): nothing can be adapted."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def deploy(self, version: ServedVersion) -> None:
        raise Conflict(
            f"the chat backend is {self.kind!r}, which has no language model to put "
            f"{version.name} on: configure vLLM (LANTERN_LLM__OPENAI__BASE_URL) or llama.cpp "
            "(LANTERN_LLM__LLAMACPP__MODEL_PATH) first"
        )

    def undeploy(self, version: ServedVersion) -> None:
        """Nothing was deployed."""


def deployer_for(settings: Settings) -> Deployer:
    """The deployer of the chat backend the settings resolve to."""
    llm = settings.llm
    kind = llm.resolved_kind
    if kind == "openai":
        o = llm.openai
        assert o.base_url is not None  # resolve_kind chose openai because it is set
        key = o.api_key.get_secret_value() if o.api_key else None
        return VLLMDeployer(VLLMAdapters(o.base_url, key, connect_timeout_s=o.connect_timeout_s))
    if kind == "llamacpp":
        return GGUFDeployer()
    return NoModelDeployer(kind)


def _same_model(base: str, served: ServedModel) -> bool:
    """Whether the version's base (a hub id or a folder) is the model vLLM serves: its
    served name or path, or the same last path part (``/models/Qwen2.5-7B-Instruct`` is
    ``Qwen/Qwen2.5-7B-Instruct``)."""
    names = {served.id, served.root or ""}
    if base in names:
        return True
    tail = PurePosixPath(base.rstrip("/")).name.lower()
    return any(tail and PurePosixPath(n.rstrip("/")).name.lower() == tail for n in names if n)
