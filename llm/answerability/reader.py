"""The reading-model answerability judge: an extractive QA model trained on SQuAD 2.0.

Such a model scores every span of a passage as the answer, and the passage's first
token as "no answer" (the null score). The sources answer when the best span, over
the first ``max_sources`` sources in windows of ``max_length`` tokens, beats the
smallest null score by more than ``min_score`` — SQuAD 2.0's own decision rule, with
its threshold. Where the model cannot load (no hub, no model dir) ``load_reader`` logs
why and returns None, and the registry falls back to the ``rules`` judge.

The default is ``deepset/roberta-base-squad2`` (CC-BY-4.0, trained on SQuAD 2.0's
training set, so it has learnt what its adversarial unanswerable questions look like).
No PyPI package ships a SQuAD 2.0 model, so none is bundled: give a hub id or a local
directory, and calibrate ``min_score`` with ``lantern eval qa --squad``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm.answerability.base import ANSWERABLE, Verdict
from llm.base import Source
from llm.language import Language

log = logging.getLogger(__name__)

DEFAULT_READER = "deepset/roberta-base-squad2"


class ReaderJudge:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_name: str,
        min_score: float = 0.0,
        max_sources: int = 3,
        max_length: int = 384,
        stride: int = 128,
        max_answer_tokens: int = 30,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = f"reader:{model_name}"
        self.min_score = min_score
        self.max_sources = max_sources
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self._lock = threading.Lock()  # one forward pass at a time: torch's threads are shared

    def judge(self, question: str, sources: Sequence[Source], *, language: Language) -> Verdict:
        import torch

        texts = [s.text for s in sources[: self.max_sources] if s.text.strip()]
        if not texts or not question.strip():
            return ANSWERABLE
        enc = self.tokenizer(
            [question] * len(texts),
            texts,
            truncation="only_second",
            max_length=self.max_length,
            stride=self.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        samples = enc.pop("overflow_to_sample_mapping").tolist()
        offsets = enc.pop("offset_mapping").tolist()
        windows = [enc.sequence_ids(w) for w in range(len(samples))]
        with self._lock, torch.inference_mode():
            out = self.model(**enc)
        starts, ends = out.start_logits.float(), out.end_logits.float()
        null = min(float(starts[w, 0] + ends[w, 0]) for w in range(len(samples)))
        best: tuple[float, int, int, int] | None = None
        for w, seq_ids in enumerate(windows):
            context = torch.tensor([s == 1 for s in seq_ids])
            span = best_span(starts[w], ends[w], context, self.max_answer_tokens)
            if span is not None and (best is None or span[0] > best[0]):
                best = (span[0], w, span[1], span[2])
        if best is None:
            return Verdict(False, 0.0, reason="the reading model found no answer span")
        score, w, i, j = best
        text = texts[samples[w]]
        evidence = text[offsets[w][i][0] : offsets[w][j][1]]
        margin = score - null
        if margin > self.min_score:
            return Verdict(True, margin, evidence=evidence)
        return Verdict(
            False,
            margin,
            reason=f"the reading model scores 'no answer' above its best answer ({evidence!r})",
            evidence=evidence,
        )


def best_span(
    starts: Any, ends: Any, context: Any, max_tokens: int
) -> tuple[float, int, int] | None:
    """The best (score, first token, last token) with both ends in ``context`` (a bool
    mask), last >= first and at most ``max_tokens`` long; None if the window has no
    context token."""
    import torch

    n = starts.shape[0]
    scores = starts[:, None] + ends[None, :]
    i = torch.arange(n)
    valid = (i[None, :] >= i[:, None]) & (i[None, :] < i[:, None] + max_tokens)
    valid &= context[:, None] & context[None, :]
    if not bool(valid.any()):
        return None
    scores = scores.masked_fill(~valid, float("-inf"))
    flat = int(torch.argmax(scores))
    return float(scores.view(-1)[flat]), flat // n, flat % n


def load_reader(
    model: str = DEFAULT_READER,
    *,
    min_score: float = 0.0,
    device: str = "cpu",
    allow_download: bool = True,
    max_sources: int = 3,
) -> ReaderJudge | None:
    """The QA model ``model`` from a local path, the HF cache or the hub, or None (logged
    at warning level, with the reason) when it cannot load or has no trained QA head."""
    from retrieval.embedders.sentence_transformer import resolve_model_path
    from retrieval.rerankers.cross_encoder import missing_head

    path, reasons = resolve_model_path(model, allow_download=allow_download)
    if path is not None:
        problem = missing_head(
            Path(path),
            architecture="ForQuestionAnswering",
            heads=("qa_outputs.",),
            what="an extractive question-answering model",
            head="question-answering",
        )
        if problem is not None:
            reasons.append(problem)
        else:
            try:
                from transformers import AutoModelForQuestionAnswering, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                qa = AutoModelForQuestionAnswering.from_pretrained(path, local_files_only=True)
                qa.to(device).eval()
            except Exception as e:
                reasons.append(f"failed to load from {path}: {type(e).__name__}: {e}")
            else:
                log.info("answerability reader %s loaded from %s", model, path)
                return ReaderJudge(
                    qa, tokenizer, model_name=model, min_score=min_score, max_sources=max_sources
                )
    reason = "; ".join(r.splitlines()[0][:200] for r in reasons) or "unknown reason"
    log.warning("answerability reader %s unavailable (%s); using the rules judge", model, reason)
    return None
