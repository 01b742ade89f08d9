"""The ``lantern`` CLI as a user runs it (in-process, sharing the loaded model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli.common import console
from app.cli.main import app
from tests.fixtures import docs


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, settings: Any, embedder: Any):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LANTERN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LANTERN_DATABASE__URL", settings.database_url)
    monkeypatch.setenv("LANTERN_INGESTION__MAX_FILE_MB", "5")
    monkeypatch.setattr("app.container.create_embedder", lambda **_: embedder)
    # A wide terminal, so that table cells are not folded mid-word.
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "hr").mkdir(parents=True)
    (d / "hr" / "handbook.pdf").write_bytes(
        docs.make_pdf(
            ["# Intro\n\nWelcome aboard.", "# Leave\n\nStaff get twenty-five days of holiday."]
        )
    )
    (d / "it.docx").write_bytes(
        docs.make_docx([("h1", "VPN"), "Connect to LumenGate before using internal tools."])
    )
    (d / "broken.pdf").write_bytes(docs.corrupt_pdf())
    (d / ".hidden.md").write_bytes(b"# skipped")
    return d


def test_ingest_search_list_delete(cli: Any, folder: Path) -> None:
    r = cli("ingest", str(folder), "--collection", "HR", "--no-progress")
    assert r.exit_code == 1, r.output  # one file failed
    assert "2 ready" in r.output
    assert "1 failed" in r.output
    assert "broken.pdf" in r.output

    r = cli("search", "how much holiday do staff get", "-k", "1", "--json")
    assert r.exit_code == 0, r.output
    [hit] = json.loads(r.output)
    assert hit["document_name"] == "hr/handbook.pdf"
    assert hit["page"] == 2
    assert "twenty-five days" in hit["text"]

    r = cli("search", "VPN", "--collection", "HR")
    assert r.exit_code == 0
    assert "it.docx" in r.output

    r = cli("docs", "list", "--json")
    rows = {d["name"]: d for d in json.loads(r.output)}
    assert set(rows) == {"hr/handbook.pdf", "it.docx", "broken.pdf"}
    assert rows["broken.pdf"]["status"] == "failed"
    assert rows["broken.pdf"]["error"]
    assert rows["hr/handbook.pdf"]["pages"] == 2

    r = cli("jobs", "--status", "failed")
    assert r.exit_code == 0
    assert "broken.pdf" in r.output
    assert "handbook" not in r.output

    r = cli("docs", "delete", "it.docx")
    assert r.exit_code == 0, r.output
    r = cli("search", "VPN", "--json")
    assert all(h["document_name"] != "it.docx" for h in json.loads(r.output))


def test_deleting_from_the_command_line_is_audited(cli: Any, container: Any, folder: Path) -> None:
    from app.services.audit import AuditQuery

    cli("ingest", str(folder), "--no-progress")
    [doc] = [d for d in container.documents.list_documents() if d.name == "it.docx"]
    assert cli("docs", "delete", "it.docx").exit_code == 0
    [event] = container.audit.query(AuditQuery(action="document.delete"))
    assert (event.via, event.actor_id, event.outcome) == ("cli", None, "ok")
    assert (event.target_id, event.details["name"]) == (doc.id, "it.docx")
    uploads = container.audit.query(AuditQuery(action="document.upload", limit=1000))
    assert {e.details["name"] for e in uploads} >= {"it.docx", "hr/handbook.pdf"}


def test_reingesting_an_unchanged_folder_does_nothing(cli: Any, folder: Path) -> None:
    (folder / "broken.pdf").unlink()
    assert cli("ingest", str(folder), "--no-progress").exit_code == 0
    r = cli("ingest", str(folder), "--no-progress")
    assert r.exit_code == 0
    assert "2 unchanged" in r.output


def test_reindex_rebuilds_search(cli: Any, folder: Path, settings: Any) -> None:
    (folder / "broken.pdf").unlink()
    cli("ingest", str(folder), "--no-progress")
    before = json.loads(cli("search", "holiday", "--json").output)
    r = cli("reindex")
    assert r.exit_code == 0, r.output
    assert "reindexed" in r.output
    after = json.loads(cli("search", "holiday", "--json").output)
    assert [h["chunk_id"] for h in after] == [h["chunk_id"] for h in before]


def test_moving_from_faiss_to_milvus_is_one_reindex(
    cli: Any, folder: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("milvus_lite")
    monkeypatch.setenv("LANTERN_VECTOR_STORE__KIND", "faiss")
    (folder / "broken.pdf").unlink()
    cli("ingest", str(folder), "--no-progress")
    before = json.loads(cli("search", "holiday", "--json").output)
    monkeypatch.setenv("LANTERN_VECTOR_STORE__KIND", "milvus")
    assert json.loads(cli("search", "holiday", "--json").output) == []  # Milvus is empty
    r = cli("reindex")
    assert r.exit_code == 0, r.output
    after = json.loads(cli("search", "holiday", "--json").output)
    assert [h["chunk_id"] for h in after] == [h["chunk_id"] for h in before]
    assert (settings.data_dir / "index" / "milvus.db").exists()


def test_db_upgrade_with_indexes_creates_them_before_any_server_starts(
    cli: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("milvus_lite")
    monkeypatch.setenv("LANTERN_VECTOR_STORE__KIND", "milvus")
    milvus = settings.data_dir / "index" / "milvus.db"
    r = cli("db", "upgrade")
    assert r.exit_code == 0, r.output
    assert not milvus.exists()  # migrations only
    r = cli("db", "upgrade", "--indexes")
    assert r.exit_code == 0, r.output
    assert "indexes ready: milvus vectors, milvus lexical" in r.output
    assert milvus.exists()


def test_missing_path_is_a_clear_error(cli: Any, tmp_path: Path) -> None:
    r = cli("ingest", str(tmp_path / "nope"))
    assert r.exit_code == 2
    assert "no such file or folder" in r.output


def test_unknown_collection_is_a_clear_error(cli: Any) -> None:
    r = cli("search", "x", "--collection", "Nope")
    assert r.exit_code == 2
    assert "no collection named 'Nope'" in r.output


def test_changing_the_embedding_model_requires_reindex(
    cli: Any, folder: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "broken.pdf").unlink()
    cli("ingest", str(folder), "--no-progress")

    class Renamed:
        def __init__(self, inner: Any) -> None:
            self.__dict__.update(inner.__dict__)
            self._inner = inner
            self.model_name = "BAAI/bge-small-en-v1.5"

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    monkeypatch.setattr("app.container.create_embedder", lambda **_: Renamed(embedder))
    runner = CliRunner()
    r = runner.invoke(app, ["search", "holiday"])
    assert r.exit_code != 0
    assert "lantern reindex" in str(r.exception)
    assert cli("reindex").exit_code == 0
    hits = json.loads(cli("search", "holiday", "--json").output)
    assert hits[0]["document_name"] == "hr/handbook.pdf"


def test_ask_answers_with_a_cited_page_and_abstains_otherwise(cli: Any, folder: Path) -> None:
    (folder / "broken.pdf").unlink()
    cli("ingest", str(folder), "--no-progress")
    r = cli("ask", "How many days of holiday do staff get?", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert "twenty-five days" in out["answer"]
    assert out["abstained"] is False
    [cit] = out["citations"]
    assert cit["page"] == 2
    assert "twenty-five days of holiday" in cit["quote"]

    r = cli("ask", "What was the stock price of the company in 1999?")
    assert r.exit_code == 0
    assert "could not find this in the knowledge base" in r.output


def test_eval_retrieval_on_a_beir_folder(cli: Any, tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    corpus = {
        "d1": ("Vacation", "Employees receive twenty-five vacation days each year."),
        "d2": ("Expenses", "Expense claims are submitted within thirty days."),
        "d3": ("Security", "Passwords need fourteen characters and MFA."),
    }
    (beir / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in corpus.items())
    )
    queries = {"q1": "how many vacation days", "q2": "password length", "q3": "expense deadline"}
    (beir / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "text": v}) for k, v in queries.items())
    )
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td2\t1\n"
    )
    r = cli(
        "eval", "retrieval", "--beir", str(beir), "--mode", "bm25", "--mode", "hybrid", "--json"
    )
    assert r.exit_code == 0, r.output
    reports = {rep["mode"]: rep for rep in json.loads(r.output[r.output.index("[") :])}
    assert reports["bm25"]["ndcg10"] == pytest.approx(1.0)
    assert reports["hybrid"]["ndcg10"] == pytest.approx(1.0)
    assert reports["hybrid"]["n_queries"] == 3


def test_eval_retrieval_on_a_squad_file_scores_each_question_against_its_paragraph(
    cli: Any, tmp_path: Path
) -> None:
    paragraphs = [
        (
            "休假",
            "员工每年享有二十五天带薪年假，需提前两周申请。",
            "员工每年有多少天年假？",
            "二十五天",
        ),
        ("报销", "差旅报销须在出差结束后三十天内提交。", "报销要在多少天内提交？", "三十天"),
        (
            "安全",
            "密码至少需要十四个字符，并开启多因素认证。",
            "密码至少要多少个字符？",
            "十四个字符",
        ),
    ]
    data = [
        {
            "title": title,
            "paragraphs": [
                {
                    "id": f"p{n}",
                    "context": context,
                    "qas": [
                        {"id": f"q{n}", "question": q, "answers": [{"text": a, "answer_start": 0}]}
                    ],
                }
            ],
        }
        for n, (title, context, q, a) in enumerate(paragraphs)
    ]
    file = tmp_path / "cmrc-tiny.json"
    file.write_text(json.dumps({"version": "v1.0", "data": data}, ensure_ascii=False))
    r = cli("eval", "retrieval", "--squad", str(file), "--mode", "bm25", "--json")
    assert r.exit_code == 0, r.output
    (report,) = json.loads(r.output[r.output.index("[") :])
    assert report["n_queries"] == 3
    assert report["recall5"] == pytest.approx(1.0)
    assert report["mrr10"] == pytest.approx(1.0)

    r = cli("eval", "retrieval", "--squad", str(tmp_path / "missing.json"))
    assert r.exit_code == 2
    assert "not found" in " ".join(r.output.split())


def test_an_unchanged_folder_with_a_bad_file_still_reports_the_failure(
    cli: Any, folder: Path
) -> None:
    assert cli("ingest", str(folder), "--no-progress").exit_code == 1
    r = cli("ingest", str(folder), "--no-progress")
    assert r.exit_code == 1, r.output  # the batch still has a failed file
    assert "0 ready, 1 failed, 2 unchanged" in r.output
    assert "broken.pdf" in r.output


def test_a_resumed_run_counts_what_it_finished(cli: Any, folder: Path, container: Any) -> None:
    """An earlier run was killed: every file queued, one job mid-way ("running").
    Running the same folder again finishes them; they count as ready (or failed, with
    the reason), not as unchanged."""
    from tests.unit.ingest_helpers import add_files

    files = {
        "hr/handbook.pdf": (folder / "hr" / "handbook.pdf").read_bytes(),
        "it.docx": (folder / "it.docx").read_bytes(),
        "broken.pdf": (folder / "broken.pdf").read_bytes(),
    }
    add_files(container, files)
    assert container.job_store.claim_next() is not None  # the job the kill interrupted

    r = cli("ingest", str(folder), "--no-progress")
    assert "resuming 3 unfinished job(s)" in r.output
    assert "2 ready, 1 failed" in r.output, r.output
    assert "unchanged" not in r.output
    assert "broken.pdf" in r.output
    assert r.exit_code == 1

    (folder / "broken.pdf").unlink()
    assert cli("docs", "delete", "broken.pdf").exit_code == 0
    r = cli("ingest", str(folder), "--no-progress")
    assert r.exit_code == 0, r.output
    assert "0 ready, 0 failed, 2 unchanged" in r.output


def test_users_promote_makes_an_admin_and_is_audited(cli: Any, container: Any) -> None:
    from app.services.audit import AuditQuery

    user = container.auth.create_user("Ops@Example.com", name="Ops")
    container.auth.update_user(user.id, is_active=False)
    r = cli("users", "promote", "ops@example.com")
    assert r.exit_code == 0, r.output
    assert "ops@example.com is now an admin" in r.output
    after = container.auth.get_user(user.id)
    assert (after.role, after.is_active) == ("admin", True)
    [event] = container.audit.query(AuditQuery(action="user.update", target_id=user.id))
    assert (event.via, event.actor_id) == ("cli", None)
    assert event.details == {"changed": ["role", "is_active"], "role": "admin", "active": True}
    assert "already an active admin" in cli("users", "promote", "ops@example.com").output
    r = cli("users", "promote", "nobody@example.com")
    assert r.exit_code == 2
    assert "no user with e-mail nobody@example.com" in r.output
    assert "ops@example.com" in cli("users", "list").output


def test_users_reset_password_sets_a_new_one(
    cli: Any, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.errors import Unauthorized

    container.auth.create_user("a@example.com", password="old-password-1")
    answers = iter(["new-password-1", "new-password-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    r = cli("users", "reset-password", "a@example.com")
    assert r.exit_code == 0, r.output
    assert container.auth.authenticate("a@example.com", "new-password-1").email == "a@example.com"
    with pytest.raises(Unauthorized):
        container.auth.authenticate("a@example.com", "old-password-1")


def test_backends_lists_every_kind_from_the_registries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from retrieval.embedders.registry import available_kinds

    monkeypatch.setenv("LANTERN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANTERN_LLM__KIND", "extractive")
    monkeypatch.setattr(console, "width", 200)
    out = CliRunner().invoke(app, ["backends"], catch_exceptions=False).stdout
    assert "LANTERN_JOBS__KIND" in out
    assert "celery, fake, inline" in out
    assert ", ".join(available_kinds()) in out
    assert "auto, extractive, fake, llamacpp, openai │ extractive" in out


def test_eval_qa_reads_a_squad_file_and_reports_abstention(cli: Any, tmp_path: Path) -> None:
    context = (
        "The Normans were descended from Norse raiders. In 911 the Frankish king gave "
        "them land in Normandy. Their duke William conquered England in 1066."
    )
    qas = [
        {"id": "a", "question": "In what year did William conquer England?",
         "answers": [{"text": "1066", "answer_start": 0}], "is_impossible": False},
        {"id": "b", "question": "Who gave the Normans land in 911?",
         "answers": [{"text": "the Frankish king", "answer_start": 0}], "is_impossible": False},
        {"id": "c", "question": "In what year did William not conquer England?",
         "answers": [], "is_impossible": True},
        {"id": "d", "question": "Who gave the Normans land in 1250?",
         "answers": [], "is_impossible": True},
    ]  # fmt: skip
    data = {"version": "v2.0", "data": [
        {"title": "Normans", "paragraphs": [{"context": context, "qas": qas}]},
        {"title": "Other", "paragraphs": [{"context": "Packet switching splits data.",
                                           "qas": []}]},
    ]}  # fmt: skip
    file = tmp_path / "squad-tiny.json"
    file.write_text(json.dumps(data))
    r = cli("eval", "qa", "--squad", str(file), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[r.output.index("{") :])
    assert report["questions"] == 4
    assert report["abstained unanswerable"] == pytest.approx(1.0)
    assert report["false abstention"] == pytest.approx(0.0)
    assert report["answer recall"] == pytest.approx(1.0)
    by_question = {x["question"]: x for x in report["results"]}
    assert by_question["Who gave the Normans land in 1250?"]["abstained"]

    r = cli("eval", "qa", "--squad", str(file), "--file", str(file))
    assert r.exit_code == 2
