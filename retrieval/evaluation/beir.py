"""Read a BEIR-format dataset folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import RetrievalError


class DatasetError(RetrievalError):
    """A BEIR folder is missing a file or has a malformed line."""


@dataclass(frozen=True)
class BeirDoc:
    title: str
    text: str

    def indexed_text(self) -> str:
        """What gets embedded and BM25-indexed: title, then body (BEIR/MTEB convention)."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: dict[str, BeirDoc]
    #: Only the queries that have judgements in the split.
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    #: sha256 of corpus.jsonl: keys cached embeddings.
    corpus_sha256: str


def load_beir(folder: str | Path, *, split: str = "test") -> BeirDataset:
    """Load a BEIR folder; ``DatasetError`` names the file and line of any problem."""
    root = Path(folder)
    corpus_file = root / "corpus.jsonl"
    corpus: dict[str, BeirDoc] = {}
    for n, obj in _jsonl(corpus_file):
        try:
            corpus[str(obj["_id"])] = BeirDoc(str(obj.get("title") or ""), str(obj["text"]))
        except KeyError as e:
            raise DatasetError(f"{corpus_file}:{n}: missing field {e}") from e
    qrels = _qrels(root / "qrels" / f"{split}.tsv")
    queries_file = root / "queries.jsonl"
    queries: dict[str, str] = {}
    for n, obj in _jsonl(queries_file):
        try:
            qid = str(obj["_id"])
            if qid in qrels:
                queries[qid] = str(obj["text"])
        except KeyError as e:
            raise DatasetError(f"{queries_file}:{n}: missing field {e}") from e
    missing = set(qrels) - set(queries)
    if missing:
        raise DatasetError(f"{len(missing)} judged queries are not in {queries_file}")
    return BeirDataset(root.name, corpus, queries, qrels, _sha256(corpus_file))


def _jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise DatasetError(
            f"{path} not found (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/test.tsv)"
        )
    out: list[tuple[int, dict[str, object]]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise DatasetError(f"{path}:{n}: not JSON ({e})") from e
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{n}: not a JSON object")
            out.append((n, obj))
    return out


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DatasetError(f"{path} not found")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row or (n == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise DatasetError(f"{path}:{n}: expected query-id, corpus-id, score")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
            except ValueError as e:
                raise DatasetError(f"{path}:{n}: bad score {row[2]!r}") from e
    return qrels


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
