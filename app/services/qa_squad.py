"""A SQuAD-format file as a QA evaluation set (``lantern eval qa --squad FILE``).

Each paragraph becomes one text document, named after its article and position
(``Normans-003.txt``), so that a correct citation is one to the paragraph a question
was asked on. Every question becomes a ``QAItem``: its gold answers, that document,
and ``unanswerable`` for SQuAD 2.0's impossible questions (asked on that paragraph,
answered by nothing in it). All paragraphs are ingested, whichever questions are
asked, so retrieval has the same distractors every run.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from app.services.qa_eval import QAItem
from retrieval.evaluation.squad import SquadSet

_UNSAFE = re.compile(r"[^\w.-]+")


def paragraph_files(squad: SquadSet, folder: Path) -> dict[str, str]:
    """Write each paragraph to ``folder`` as a text file; paragraph id -> file name."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    counts: dict[str, int] = {}
    for pid, para in squad.paragraphs.items():
        title = _UNSAFE.sub("_", para.title).strip("_") or "paragraph"
        counts[title] = counts.get(title, 0) + 1
        name = f"{title}-{counts[title]:03d}.txt"
        (folder / name).write_text(para.context, encoding="utf-8")
        names[pid] = name
    return names


def squad_items(
    squad: SquadSet, names: dict[str, str], *, limit: int | None = None, seed: int = 0
) -> list[QAItem]:
    """The questions as QA items; ``limit``: a random sample of that many (by ``seed``),
    in file order."""
    questions = list(squad.questions)
    if limit is not None and limit < len(questions):
        keep = set(random.Random(seed).sample(range(len(questions)), limit))
        questions = [q for i, q in enumerate(questions) if i in keep]
    return [
        QAItem(
            question=q.question,
            answers=q.answers,
            document=names[q.paragraph_id],
            unanswerable=q.impossible,
        )
        for q in questions
    ]
