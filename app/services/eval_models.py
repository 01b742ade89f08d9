"""The two models an evaluation compares, served the way the candidate would be.

- On vLLM (``llm.kind`` openai): the base is the served model; the candidate is the
  run's adapter, loaded into the running server under a temporary name for the
  evaluation and unloaded after it.
- Otherwise (llama.cpp on a laptop, or no model configured yet): both are GGUF
  files run by llama.cpp in-process, the candidate merged with its adapter and the
  base exported the same way without it, at the same quantisation, so that the
  comparison measures the tuning and not a difference of quantisation.

Both decode greedily with the configured seed: an evaluation repeats exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.errors import InvalidInput
from app.settings import Settings
from llm.base import ChatModel

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@contextmanager
def evaluation_models(
    settings: Settings,
    run_dir: Path,
    *,
    served: Callable[[], ChatModel],
    quant: str = "f16",
    say: Say | None = None,
) -> Iterator[tuple[ChatModel, ChatModel]]:
    """``(base, candidate)`` for ``run_dir``, released when the block ends."""
    say = say or (lambda message: log.info("%s", message))
    if not (run_dir / "run.json").is_file():
        raise InvalidInput(
            f"{run_dir} is not a training run (no run.json); train one with "
            "`lantern finetune train DATASET --out DIR`"
        )
    m = settings.llm
    if m.resolved_kind == "openai":
        with _vllm_pair(settings, run_dir, served(), say) as pair:
            yield pair
        return
    with _gguf_pair(settings, run_dir, quant, say) as pair:
        yield pair


@contextmanager
def _vllm_pair(
    settings: Settings, run_dir: Path, base: ChatModel, say: Say
) -> Iterator[tuple[ChatModel, ChatModel]]:
    from llm.backends.vllm_adapters import VLLMAdapters
    from llm.versioned import adapter_model

    o = settings.llm.openai
    key = o.api_key.get_secret_value() if o.api_key is not None else None
    adapters = VLLMAdapters(o.base_url or "", api_key=key)
    name = f"lantern-eval-{run_dir.resolve().name}"[:64]
    say(f"loading {run_dir / 'adapter'} into vLLM as {name}")
    adapters.ensure_loaded(name, str((run_dir / "adapter").resolve()))
    try:
        yield base, adapter_model(base, name, deterministic_seed=settings.llm.seed)
    finally:
        adapters.ensure_unloaded(name)
        adapters.close()


@contextmanager
def _gguf_pair(
    settings: Settings, run_dir: Path, quant: str, say: Say
) -> Iterator[tuple[ChatModel, ChatModel]]:
    from llm.finetune.export import export_base_gguf, export_gguf
    from llm.versioned import gguf_model

    candidate_file = export_gguf(run_dir, quant, progress=say)
    base_file = export_base_gguf(run_dir, quant, progress=say)
    c = settings.llm.llamacpp
    options = {"n_ctx": c.n_ctx, "n_threads": c.n_threads, "n_gpu_layers": c.n_gpu_layers}
    seed = settings.llm.seed
    base = gguf_model(base_file, seed=seed, deterministic_seed=seed, **options)
    candidate = gguf_model(candidate_file, seed=seed, deterministic_seed=seed, **options)
    base.name = f"base:{base_file.name}"
    candidate.name = f"candidate:{candidate_file.name}"
    try:
        yield base, candidate
    finally:
        for model in (base, candidate):
            model.close()
