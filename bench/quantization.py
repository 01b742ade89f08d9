"""What quantising an exported model costs: file size, llama.cpp speed, greedy agreement.

    python bench/quantization.py RUN [--quant f16 --quant Q8_0 --quant Q4_K_M]
                                     [--tokens 48] [--threads N] [--repeat 2] [--json OUT]

``RUN`` is a training run folder; each quantisation is exported first if it is not yet
(``llm.finetune.export.export_gguf``: the f16 merge, then llama.cpp's quantiser). Each GGUF
is then loaded in llama-cpp-python and given the same answer prompts (the answer
service's own messages, ``llm.prompts.build_answer_messages``, over sections of the
bundled onboarding guide, rendered with the chat template the GGUF carries), decoded
greedily for ``--tokens`` tokens. Printed per quantisation, as a markdown table:

- size on disk (MB) and its ratio to f16;
- prefill tokens/s (prompt tokens over the time to the first token) and decode tokens/s
  (the other tokens over the rest of the time): per prompt the fastest of ``--repeat``
  passes, then the median over the prompts;
- greedy agreement with f16: the share of prompts whose whole continuation is the same
  token for token, and the mean length of the common start as a share of ``--tokens``.

Answer quality on the gold QA sets goes through the real answer pipeline instead
(``lantern finetune eval``). Numbers depend on the CPU and on other load: the header
prints the CPU time over wall time; well under the thread count means competition.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm.base import Source  # noqa: E402
from llm.finetune.export import QUANTS, export_gguf, normalize_quant  # noqa: E402
from llm.prompts import build_answer_messages  # noqa: E402

GUIDE = ROOT / "app" / "samples" / "onboarding_guide.md"
QUESTIONS = [
    "What should I bring on my first day?",
    "Who do I ask if my laptop does not work?",
    "How do I set my Lumen ID password?",
    "What happens in the first week?",
    "Which documents should I read in my first week?",
    "How do I get access to the VPN?",
]
WORD = re.compile(r"[a-z]{3,}")


def sections(text: str) -> list[tuple[str, str]]:
    """``(heading, body)`` for each ``##``/``###`` section of the guide (front matter dropped)."""
    body = text.split("---", 2)[-1]
    parts = re.split(r"^#{2,3} (.+)$", body, flags=re.MULTILINE)
    return [(h.strip(), b.strip()) for h, b in zip(parts[1::2], parts[2::2], strict=True) if b]


def prompt_messages(
    question: str, guide: list[tuple[str, str]], k: int = 3
) -> list[dict[str, str]]:
    """The answer prompt for ``question`` over the ``k`` guide sections sharing most words."""
    words = set(WORD.findall(question.lower()))
    ranked = sorted(guide, key=lambda s: -len(words & set(WORD.findall(s[1].lower()))))
    sources = [
        Source(n=i, chunk_id=f"c{i}", document_id="guide", title=h, page=None, text=b)
        for i, (h, b) in enumerate(ranked[:k], start=1)
    ]
    return [
        {"role": m.role, "content": m.content} for m in build_answer_messages(question, sources)
    ]


def render(llm: Any, messages: list[dict[str, str]]) -> str:
    """``messages`` through the chat template in the GGUF, as llama-cpp-python renders it."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = llm.metadata["tokenizer.chat_template"]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    eos = llm.detokenize([llm.token_eos()]).decode(errors="replace")
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True, eos_token=eos, bos_token=""
    )


def run_quant(
    path: Path, prompts: list[list[dict[str, str]]], n: int, threads: int, repeat: int
) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=threads, verbose=False)
    prefill: list[float] = [0.0] * len(prompts)
    decode: list[float] = [0.0] * len(prompts)
    outputs, lengths = [], []
    try:
        for i, messages in ((i, m) for _ in range(repeat) for i, m in enumerate(prompts)):
            ids = llm.tokenize(render(llm, messages).encode(), add_bos=False, special=True)
            tokens: list[int] = []
            start = time.perf_counter()
            first = start
            for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
                if not tokens:
                    first = time.perf_counter()
                tokens.append(token)
                if len(tokens) >= n:
                    break
            end = time.perf_counter()
            # The fastest pass of each prompt: the least disturbed by other load.
            prefill[i] = max(prefill[i], len(ids) / (first - start))
            decode[i] = max(decode[i], (len(tokens) - 1) / (end - first) if end > first else 0)
            if len(outputs) < len(prompts):
                outputs.append(tokens)
                lengths.append(len(ids))
    finally:
        llm.close()
    return {
        "bytes": path.stat().st_size,
        "prompt_tokens": statistics.mean(lengths),
        "prefill_tokens_per_s": statistics.median(prefill),
        "decode_tokens_per_s": statistics.median(decode),
        "outputs": outputs,
    }


def agreement(outputs: list[list[int]], reference: list[list[int]], n: int) -> tuple[float, float]:
    """(share of identical continuations, mean common-start length over ``n``)."""
    same, starts = 0, []
    for out, ref in zip(outputs, reference, strict=True):
        common = next(
            (i for i, (a, b) in enumerate(zip(out, ref, strict=False)) if a != b),
            min(len(out), len(ref)),
        )
        same += out == ref
        starts.append(common / n)
    return same / len(outputs), statistics.mean(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a training run folder")
    parser.add_argument("--quant", action="append", help=f"repeatable; default {' '.join(QUANTS)}")
    parser.add_argument("--tokens", type=int, default=48, help="greedy tokens per prompt")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=2, help="passes; the fastest counts")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    quants = [normalize_quant(q) for q in (args.quant or QUANTS)]
    if "f16" not in quants:
        quants.insert(0, "f16")  # the reference for agreement

    guide = sections(GUIDE.read_text(encoding="utf-8"))
    prompts = [prompt_messages(q, guide) for q in QUESTIONS]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results: dict[str, dict] = {}
    for quant in quants:
        path = export_gguf(args.run, quant, progress=lambda m: print(m, file=sys.stderr))
        results[quant] = run_quant(path, prompts, args.tokens, args.threads, args.repeat)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

    reference = results["f16"]
    print(
        f"\n{args.run.name}: {len(prompts)} prompts, {args.tokens} greedy tokens each, "
        f"~{reference['prompt_tokens']:.0f} prompt tokens, {args.threads} threads; "
        f"CPU/wall {cpu / wall:.2f}\n"
    )
    print("| quant | size MB | vs f16 | prefill tok/s | decode tok/s | identical | common start |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for quant, r in results.items():
        same, start = agreement(r["outputs"], reference["outputs"], args.tokens)
        r.update(identical=same, common_start=start)
        print(
            f"| {quant} | {r['bytes'] / 1e6:.0f} | {r['bytes'] / reference['bytes']:.2f} "
            f"| {r['prefill_tokens_per_s']:.0f} | {r['decode_tokens_per_s']:.1f} "
            f"| {same:.0%} | {start:.0%} |"
        )
    if args.json:
        numbers = {q: {k: v for k, v in r.items() if k != "outputs"} for q, r in results.items()}
        args.json.write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
