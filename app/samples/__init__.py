"""Sample documents shipped with Lantern, for the quick start."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
SAMPLE_SUFFIXES = (".pdf", ".docx", ".md")


def sample_files() -> list[Path]:
    """The sample documents (not this package's README, which lists their answers)."""
    return sorted(
        p for p in HERE.iterdir() if p.suffix in SAMPLE_SUFFIXES and p.name != "README.md"
    )


def gold_sets() -> dict[str, Path]:
    """The gold QA sets about the sample documents, by name (``lantern eval qa`` format)."""
    return {p.stem: p for p in sorted(HERE.glob("gold_qa*.jsonl"))}
