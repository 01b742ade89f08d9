"""Training speed: tokens/s and peak memory of ``lantern finetune train`` on this machine.

    python bench/finetune_train.py [--steps 20] [--prompt-tokens 500] [--batch-size 4]
                                   [--base MODEL] [--target q_proj,v_proj] [--json OUT]

Writes a dataset of answer-style examples (system rules, four numbered sources,
a question, a cited reply) padded to about ``--prompt-tokens`` tokens each, then
trains ``--steps`` steps with the real training code (LoRA on the CPU, QLoRA on a
CUDA GPU) on the base model (default: the bundled SmolLM2-135M-Instruct GGUF).
Prints the load time, seconds per step, training tokens/s (padding excluded) and
peak memory (max RSS on the CPU, CUDA memory allocated on a GPU), from the run's
own ``run.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCES = [
    "New employees receive twenty vacation days in their first year of service.",
    "Expense claims must be submitted within thirty days of the purchase date.",
    "Passwords must be at least fourteen characters long and rotated yearly.",
    "The help desk answers calls between eight in the morning and six at night.",
    "Travel outside the country needs written approval from a department head.",
    "Backups of the finance systems are restored and tested every quarter.",
    "Visitors sign in at the front desk and wear a badge at all times.",
    "Remote work is allowed up to three days a week with a manager's consent.",
]
SYSTEM = (
    "You answer questions from the company's documents. Use only the numbered sources "
    "below. Quote the sentences that answer the question and end each with its source "
    "marker, like [1]. If the sources do not contain the answer, reply exactly: "
    "I could not find this in the documents."
)


def make_dataset(folder: Path, *, n: int, prompt_tokens: int, tokenizer: object) -> Path:
    """``n`` examples whose prompts are about ``prompt_tokens`` tokens long."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        answer = SENTENCES[i % len(SENTENCES)]
        filler: list[str] = []
        while True:
            sources = [answer, *(SENTENCES[(i + k) % len(SENTENCES)] for k in (1, 2, 3))]
            body = "\n\n".join(
                f"[{k + 1}] {s} {' '.join(filler) if k else ''}".strip()
                for k, s in enumerate(sources)
            )
            user = f"Sources:\n{body}\n\nQuestion: what does the handbook say about item {i}?"
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)  # type: ignore[attr-defined]
            if len(ids["input_ids"]) >= prompt_tokens:
                break
            filler.append(SENTENCES[(i + len(filler)) % len(SENTENCES)])
        example = {
            "id": f"bench{i}",
            "source": "grounded",
            "messages": messages,
            "target": f"{answer} [1]",
            "question": f"item {i}",
            "language": "en",
            "document_ids": [f"doc{i}"],
            "collection_ids": ["bench"],
            "answer_chunk_ids": [],
        }
        lines.append(json.dumps(example, sort_keys=True))
    (folder / "train.jsonl").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    (folder / "validation.jsonl").write_text("", encoding="utf-8")
    manifest = {
        "format": 1,
        "hash": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        "prompt_version": "bench",
        "collections": [{"id": "bench", "name": "Bench"}],
        "counts": {"grounded": {"train": n, "validation": 0}},
        "documents": {"train": n, "validation": 0},
        "created_at": "2026-12-01T00:00:00+00:00",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--prompt-tokens", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--base", default=None, help="hub id, model dir or .gguf (default: SmolLM2)")
    p.add_argument("--target", default="q_proj,v_proj", help="LoRA targets or all-linear")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when visible)")
    p.add_argument("--json", type=Path, default=None, help="also write run.json here")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from transformers import AutoTokenizer

    from llm.finetune.base_model import resolve_base
    from llm.finetune.config import Hyperparameters, parse_targets
    from llm.finetune.train import train

    spec = resolve_base(a.base)
    source = {"gguf_file": spec["gguf_file"]} if spec["gguf_file"] else {}
    tokenizer = AutoTokenizer.from_pretrained(spec["id"], **source)
    hp = Hyperparameters(
        max_steps=a.steps,
        batch_size=a.batch_size,
        target_modules=parse_targets(a.target),
        max_length=max(1024, a.prompt_tokens * 2),
        save_steps=a.steps,
    )
    with tempfile.TemporaryDirectory(prefix="lantern-bench-train-") as tmp:
        n = a.steps * a.batch_size * hp.accumulation("cuda" if a.device == "cuda" else "cpu")
        data = make_dataset(
            Path(tmp) / "ds", n=n, prompt_tokens=a.prompt_tokens, tokenizer=tokenizer
        )
        t0 = time.perf_counter()
        result = train(data, Path(tmp) / "run", base=spec, hp=hp, device=a.device, progress=True)
        wall = time.perf_counter() - t0
    r = result.record
    steps = r["steps"]
    print(f"base:            {spec['name']} ({r['method']} on {r['device']})")
    print(f"examples:        {n}, ~{a.prompt_tokens} prompt tokens, batch {a.batch_size}")
    print(f"steps:           {steps} in {r['train_s']:.1f} s ({r['train_s'] / steps:.2f} s/step)")
    print(f"load + save:     {wall - r['train_s']:.1f} s")
    print(f"train tokens:    {r['train_tokens']}")
    print(f"tokens/s:        {r['tokens_per_s']:.0f}")
    print(f"peak memory:     {r['peak_memory_mb']:.0f} MB")
    print(f"loss:            {r['loss']['first']:.4f} -> {r['loss']['last']:.4f}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
