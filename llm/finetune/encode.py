"""Examples as token ids, with the loss on the reply only.

The prompt is what the model is given at answer time,
``tokenizer.apply_chat_template(messages, add_generation_prompt=True)``; the target
is the reply plus the template's end-of-turn marker (``<|im_end|>`` for ChatML), so
the model learns to stop. Prompt positions get label -100, which the loss ignores:
the model is taught to answer, not to write system prompts and sources.

Prompt and target are tokenised separately and concatenated, exactly the ids the
model sees when it generates the reply after the prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm.finetune.errors import FinetuneError

#: The label the loss ignores (PyTorch's cross-entropy ``ignore_index``).
IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One example as the model's inputs; ``labels`` is -100 over the prompt."""

    input_ids: list[int]
    labels: list[int]

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass(frozen=True)
class EncodedSet:
    """The examples that fit, and how many did not."""

    examples: list[Encoded]
    skipped_too_long: int
    longest: int

    @property
    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def end_of_turn(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> str:
    """The text the chat template puts after an assistant reply (``<|im_end|>``).

    Found by rendering the conversation with and without a reply; trailing newlines
    after the marker belong to the next turn and are dropped. A template that adds
    nothing after the reply gets the tokenizer's end-of-sequence token.
    """
    probe = "\x00reply\x00"
    prompt = _render(tokenizer, messages, generation_prompt=True)
    full = _render(tokenizer, [*messages, {"role": "assistant", "content": probe}], False)
    tail = full[len(prompt) :] if full.startswith(prompt) else ""
    at = tail.find(probe)
    marker = tail[at + len(probe) :].rstrip() if at >= 0 else ""
    if marker:
        return marker
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise FinetuneError("the tokenizer has neither an end-of-turn marker nor an EOS token")
    return str(eos)


def _render(tokenizer: Any, messages: Sequence[Mapping[str, str]], generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=generation_prompt, tokenize=False
    )
    return str(text)


def encode_example(
    tokenizer: Any, messages: Sequence[Mapping[str, str]], target: str, *, eot: str | None = None
) -> Encoded:
    """``messages`` (the prompt) and ``target`` (the reply) as ids and masked labels."""
    if not messages:
        raise FinetuneError("an example has no prompt messages")
    if eot is None:
        eot = end_of_turn(tokenizer, messages)
    prompt_ids = _ids(tokenizer, _render(tokenizer, messages, generation_prompt=True))
    target_ids = _ids(tokenizer, target + eot)
    return Encoded(
        input_ids=prompt_ids + target_ids, labels=[IGNORE] * len(prompt_ids) + target_ids
    )


def _ids(tokenizer: Any, text: str) -> list[int]:
    # The template writes its own special tokens (BOS included, where it has one).
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def encode_examples(
    tokenizer: Any, examples: Iterable[Mapping[str, Any]], *, max_length: int
) -> EncodedSet:
    """Every example that fits in ``max_length`` tokens; longer ones are counted, not cut.

    Cutting would train on a truncated reply (or on a prompt with no reply at all),
    teaching the model to stop mid-sentence.
    """
    kept: list[Encoded] = []
    skipped = longest = 0
    eot: str | None = None
    for example in examples:
        messages = example["messages"]
        if eot is None:
            eot = end_of_turn(tokenizer, messages)
        encoded = encode_example(tokenizer, messages, str(example["target"]), eot=eot)
        longest = max(longest, len(encoded.input_ids))
        if len(encoded.input_ids) > max_length:
            skipped += 1
        else:
            kept.append(encoded)
    return EncodedSet(kept, skipped, longest)


class PadCollator:
    """Pads a batch on the right: pad id in the inputs, 0 in the mask, -100 in labels."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: Sequence[Encoded]) -> dict[str, Any]:
        import torch

        width = max(len(e.input_ids) for e in batch)
        ids, mask, labels = [], [], []
        for e in batch:
            pad = width - len(e.input_ids)
            ids.append(e.input_ids + [self.pad_token_id] * pad)
            mask.append([1] * len(e.input_ids) + [0] * pad)
            labels.append(e.labels + [IGNORE] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }
