"""Exceptions raised by fine-tuning (training a LoRA adapter on a dataset folder).

FinetuneError                anything the user can fix: bad input, a missing library or model
 ├── FinetuneUnavailable     the libraries or the base model cannot be had on this machine
 └── DatasetError            a dataset folder that is missing or not in Lantern's format
                             (llm.finetune.dataset)
"""

from __future__ import annotations

#: What to run when the training libraries are missing.
INSTALL_HINT = "pip install 'lantern[finetune]' (QLoRA on a CUDA host: 'lantern[qlora]')"


class FinetuneError(Exception):
    """A fine-tuning step cannot run; the message says what to do."""


class FinetuneUnavailable(FinetuneError):
    """A library (peft, accelerate, gguf, bitsandbytes) or the base model is missing."""
