"""Retrieval metrics against hand-computed values, the BEIR loader and the runner."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app.services.qa_eval import QAItem, QAResult
from retrieval.evaluation.beir import DatasetError, load_beir
from retrieval.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from retrieval.evaluation.runner import evaluate_beir
from tests.unit.test_fusion import FakeEmbedder, FakeLexical

# -- metrics -----------------------------------------------------------------------


def test_ndcg_uses_graded_linear_gains_and_log2_discounts() -> None:
    qrels = {"d1": 1, "d3": 2, "d4": 1, "d9": 0}
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["d1", "d2", "d3"], qrels, 3) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["d1", "d2", "d3"], qrels, 3) == pytest.approx(0.638788, abs=1e-6)
    assert ndcg_at_k(["d3", "d1", "d4"], qrels, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["d9", "d2"], qrels, 10) == 0.0
    assert ndcg_at_k(["d1"], {"d1": 0}, 10) == 0.0  # nothing relevant
    # Cut at k: the relevant document at rank 3 does not count for k=2.
    assert ndcg_at_k(["x", "y", "d3"], {"d3": 1}, 2) == 0.0
    assert ndcg_at_k(["x", "d3"], {"d3": 1}, 2) == pytest.approx(1 / math.log2(3))


def test_recall_and_mrr() -> None:
    qrels = {"a": 1, "b": 1, "c": 2, "z": 0}
    ranked = ["x", "b", "z", "a", "y"]
    assert recall_at_k(ranked, qrels, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, qrels, 5) == pytest.approx(2 / 3)
    assert mrr_at_k(ranked, qrels, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(ranked, qrels, 1) == 0.0
    assert mrr_at_k(["z", "q"], qrels, 10) == 0.0  # grade 0 is not relevant
    assert recall_at_k(["a", "a", "a"], qrels, 3) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="k must be positive"):
        recall_at_k(ranked, qrels, 0)


# -- BEIR folder -------------------------------------------------------------------

DOCS = {
    "d1": ("Vitamin D", "vitamin d deficiency raises fracture risk in the elderly"),
    "d2": ("Statins", "statins lower ldl cholesterol and cardiovascular events"),
    "d3": ("Sleep", "short sleep duration is associated with obesity in children"),
    "d4": ("Malaria", "bed nets reduce malaria transmission in sub saharan africa"),
}
QUERIES = {
    "q1": "vitamin d and fracture risk",
    "q2": "statins lower cholesterol",
    "q3": "sleep duration obesity children",
    "q9": "a query without judgements",
}
QRELS = [("q1", "d1", 1), ("q2", "d2", 2), ("q3", "d3", 1)]


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as f:
        for i, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": i, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as f:
        for i, text in QUERIES.items():
            f.write(json.dumps({"_id": i, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in QRELS]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_load_beir(tmp_path: Path) -> None:
    data = load_beir(write_beir(tmp_path / "tiny"))
    assert data.name == "tiny"
    assert set(data.corpus) == set(DOCS)
    assert data.corpus["d1"].indexed_text().startswith("Vitamin D vitamin d deficiency")
    assert set(data.queries) == {"q1", "q2", "q3"}  # only judged queries are evaluated
    assert data.qrels["q2"] == {"d2": 2}
    assert len(data.corpus_sha256) == 64


def test_load_beir_names_the_broken_file(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "bad")
    with (root / "corpus.jsonl").open("a") as f:
        f.write('{"_id": "d5"}\n')
    with pytest.raises(DatasetError, match=r"corpus.jsonl:5: missing field 'text'"):
        load_beir(root)
    with pytest.raises(DatasetError, match="not found"):
        load_beir(tmp_path / "nowhere")


def test_evaluate_beir_runs_every_mode_and_caches_embeddings(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "tiny")
    embedder = FakeEmbedder()
    work = tmp_path / "work"

    def lexical_factory(directory: Path) -> FakeLexical:
        return FakeLexical()

    reports = {}
    for mode in ("dense", "bm25", "hybrid", "hybrid+rerank"):
        reports[mode] = evaluate_beir(
            folder,
            mode=mode,
            embedder=None if mode == "bm25" else embedder,
            lexical_factory=None if mode == "dense" else lexical_factory,
            workdir=work,
            batch_size=2,
        )
    assert embedder.documents_embedded == len(DOCS)  # embedded once, then cached
    assert not reports["dense"].embeddings_cached
    assert reports["hybrid"].embeddings_cached
    for mode, report in reports.items():
        assert report.mode == mode
        assert report.n_queries == 3
        assert report.ndcg10 == pytest.approx(1.0)
        assert report.mrr10 == pytest.approx(1.0)
        assert report.recall10 == report.recall100 == pytest.approx(1.0)
        assert 0 < report.p50_ms <= report.p95_ms
        assert report.as_row()["nDCG@10"] == 100.0
    assert reports["bm25"].embedding_model == ""
    assert reports["hybrid"].stage_ms["fuse_ms"] > 0


def test_evaluate_beir_needs_what_the_mode_uses(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "tiny")
    with pytest.raises(ValueError, match="needs a lexical index"):
        evaluate_beir(
            folder, mode="hybrid", embedder=FakeEmbedder(), lexical_factory=None, workdir=tmp_path
        )
    with pytest.raises(ValueError, match="needs an embedder"):
        evaluate_beir(folder, mode="dense", embedder=None, lexical_factory=None, workdir=tmp_path)


# -- SQuAD file ----------------------------------------------------------------------


def _squad(data: object) -> str:
    return json.dumps({"version": "v2.0", "data": data})


def test_load_squad_reads_paragraphs_questions_and_impossible_ones(tmp_path: Path) -> None:
    from retrieval.evaluation.squad import load_squad, squad_as_beir

    file = tmp_path / "dev.json"
    qas = [
        {"id": "a", "question": "Where is Normandy?", "answers": [{"text": "France"}] * 3},
        {
            "id": "b",
            "question": "Who ruled Normandy in 1900?",
            "answers": [],
            "is_impossible": True,
        },
    ]
    file.write_text(
        _squad(
            [
                {
                    "title": "Normans",
                    "paragraphs": [{"context": "Normandy is in France.", "qas": qas}],
                },
                {"paragraphs": [{"context": "Other text.", "qas": []}]},
            ]
        )
    )
    data = load_squad(file)
    assert data.name == "dev"
    assert [p.title for p in data.paragraphs.values()] == ["Normans", ""]
    a, b = data.questions
    assert a.answers == ("France",)  # repeated gold answers are one
    assert not a.impossible
    assert b.impossible
    assert b.answers == ()
    assert a.paragraph_id == b.paragraph_id == next(iter(data.paragraphs))
    beir = squad_as_beir(data)
    assert list(beir.queries) == ["a"]  # only answerable questions have a relevant document
    assert beir.qrels == {"a": {a.paragraph_id: 1}}
    assert beir.corpus[a.paragraph_id].indexed_text() == "Normans Normandy is in France."


def test_load_squad_skips_questions_it_cannot_score_and_says_which(tmp_path: Path) -> None:
    from retrieval.evaluation.squad import load_squad

    qas = [
        {"id": "ok", "question": "Where?", "answers": [{"text": "Here"}]},
        {"id": "empty", "question": " ", "answers": [{"text": "x"}]},
        {"id": "no-answer", "question": "Why?", "answers": []},
    ]
    file = tmp_path / "dev.json"
    file.write_text(_squad([{"paragraphs": [{"context": "Here it is.", "qas": qas}]}]))
    data = load_squad(file)
    assert [q.id for q in data.questions] == ["ok"]
    assert len(data.skipped) == 2
    assert "qas[1]: empty question" in data.skipped[0]
    assert "without an answer text" in data.skipped[1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"version": 1}', "no 'data' list"),
        (_squad([{"paragraphs": [{"qas": []}]}]), "missing field 'context'"),
        (_squad([{"paragraphs": [{"context": "x", "qas": []}]}]), "no questions"),
    ],
)
def test_load_squad_names_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    from retrieval.evaluation.squad import load_squad

    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_squad(file)


# -- abstention calibration ------------------------------------------------------------


def _qa(unanswerable: bool, support: float, evidence: float, recalled: bool = True) -> QAResult:
    item = QAItem("q", answers=() if unanswerable else ("a",), unanswerable=unanswerable)
    return QAResult(
        item, "text", False, recalled and not unanswerable, 1, 1, 0.1, evidence, support
    )


def test_calibration_finds_the_support_floor_that_separates_the_labels() -> None:
    from app.services.qa_eval import calibrate, operating_point

    results = [_qa(False, s, 0.5) for s in (0.5, 0.6, 0.7, 0.8)]
    results += [_qa(True, s, 0.5) for s in (0.1, 0.2, 0.3, 0.45)]
    best, by_support, by_dense = calibrate(results)
    assert best.abstention_accuracy == 1.0
    assert best.answer_recall == 1.0
    assert 0.45 < best.min_support <= 0.5
    # The dense signal is the same for every question: it cannot help, so it stays off.
    assert best.abstain_below is None
    assert len(by_support) == 41
    assert {o.min_support for o in by_dense} == {best.min_support}
    # Too strict a floor abstains on answerable questions and loses recall.
    strict = operating_point(results, None, 0.65)
    assert strict.answer_recall == 0.5
    assert strict.abstained_answerable == 0.5
