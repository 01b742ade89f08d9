"""Greedy tokens from a GGUF through llama.cpp, in a child process.

No test loads llama.cpp into the test process (a native crash would end the whole run;
see ``tests/child_model.py``). ``llama_greedy(path, prompt, n)`` runs
``python -X faulthandler -m tests.llama_greedy PATH N PROMPT`` and returns the prompt's
token ids (llama.cpp's tokenizer, special tokens parsed, no BOS added) and the first ``n``
tokens llama.cpp picks greedily (temperature 0, top-k 1), plus their text. A crash or a
failure fails the calling test with the child's exit and stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.child_model import ROOT, child_env, describe_exit

TIMEOUT_S = 180


@dataclass(frozen=True)
class Greedy:
    prompt: list[int]
    tokens: list[int]
    text: str


def llama_greedy(path: Path, prompt: str, n: int) -> Greedy:
    command = [sys.executable, "-X", "faulthandler", "-m", "tests.llama_greedy"]
    child = subprocess.run(
        [*command, str(path), str(n), prompt],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
        env=child_env(),
        check=False,
    )
    if child.returncode != 0:
        raise AssertionError(
            f"llama.cpp on {path.name} {describe_exit(child.returncode)}:\n{child.stderr[-4000:]}"
        )
    data = json.loads(child.stdout.strip().splitlines()[-1])
    return Greedy(prompt=data["prompt"], tokens=data["tokens"], text=data["text"])


def main() -> None:
    import llama_cpp

    path, n, prompt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=2, seed=0, verbose=False)
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    tokens: list[int] = []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        tokens.append(token)
        if len(tokens) >= n:
            break
    text = llm.detokenize(tokens).decode(errors="replace")
    llm.close()
    print(json.dumps({"prompt": ids, "tokens": tokens, "text": text}))


if __name__ == "__main__":
    main()
