"""The services, which the UI and the CLI call, refuse text no database can store with
the same ``UnstorableText`` on SQLite and PostgreSQL, for writes and look-ups alike;
the CLI skips a file whose name is not UTF-8 and says why."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app import storable
from app.cli.common import console
from app.cli.main import app as cli_app
from app.errors import InvalidInput, UnstorableText
from app.services.actor import Actor

NUL, SURROGATE = "a\x00b", "a\udcffb"


def test_the_rule() -> None:
    assert storable.problem("plain, tab\t, emoji 🐍, 中文, U+FFFD \ufffd") is None
    assert "NUL" in (storable.problem(NUL) or "")
    assert "U+DCFF" in (storable.problem(SURROGATE) or "")
    assert storable.find({"a": ["ok", {"b": NUL}]}) == (("a", 1, "b"), storable.problem(NUL))
    assert storable.find({NUL: "key"}) is not None
    assert storable.repaired({"k": [NUL]}) == {"k": ["a\ufffdb"]}
    assert issubclass(UnstorableText, InvalidInput)


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
def test_services_refuse_unstorable_text_on_every_database(container: Any, bad: str) -> None:
    c = container
    user = c.auth.create_user("ada@example.com", password="long enough password")
    who = Actor.of(c.auth.principal_for(user))
    chat = c.chats.create(who)
    col = c.collections.create("Docs")
    writes = [
        lambda: c.chats.create(who, title=bad),
        lambda: c.chats.update(who, chat.id, title=bad),
        lambda: list(c.chats.ask(who, chat.id, bad)),
        lambda: c.collections.create(bad),
        lambda: c.collections.update(col.id, description=bad),
        lambda: c.access.create_group(bad),
        lambda: c.auth.create_user(f"x{bad}@example.com"),
        lambda: c.auth.create_user("grace@example.com", name=bad),
        lambda: c.auth.create_user("grace@example.com", password=f"long enough {bad}"),
        lambda: c.auth.update_user(user.id, name=bad),
        lambda: c.auth.create_api_key(user.id, bad),
        lambda: c.documents.add(collection_id=col.id, name=bad, data=b"# x"),
    ]
    lookups = [
        lambda: c.chats.get(who, bad),  # SQLite alone would answer NotFound
        lambda: c.documents.get(bad),
        lambda: c.collections.get_by_name(bad),
        lambda: c.auth.revoke_api_key(bad),
        lambda: c.search.search(bad),
        lambda: c.answers.ask(bad),
    ]
    refused = []
    for call in writes + lookups:
        try:
            call()
        except UnstorableText as e:
            refused.append(str(e))
        else:
            refused.append("accepted")
    assert len(refused) == len(writes + lookups)
    assert all("NUL" in r or "surrogate" in r for r in refused), refused
    # Nothing was half-written, and the database is still usable.
    assert [x.title for x in c.chats.list_sessions(who)] == [chat.title]
    assert [x.name for x in c.collections.list_collections()] == ["Docs"]
    assert c.documents.list_documents(collection_id=col.id) == []
    assert c.chats.get(who, chat.id).id == chat.id


def test_log_in_with_unstorable_text_is_refused_like_a_wrong_password(container: Any) -> None:
    from app.errors import Unauthorized

    container.auth.create_user("ada@example.com", password="long enough password")
    for email, password in [
        ("ada\x00@example.com", "long enough password"),
        ("ada@example.com\udcff", "long enough password"),
        ("ada@example.com", "long enough password\udcff"),
        ("ada@example.com", "long enough password\x00"),
    ]:
        with pytest.raises(Unauthorized, match="wrong e-mail or password"):
            container.auth.authenticate(email, password)


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS refuses non-UTF-8 names")
def test_cli_ingest_skips_a_file_whose_name_is_not_utf8(
    monkeypatch: pytest.MonkeyPatch, settings: Any, embedder: Any, tmp_path: Path
) -> None:
    monkeypatch.setenv("LANTERN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LANTERN_DATABASE__URL", settings.database_url)
    monkeypatch.setattr("app.container.create_embedder", lambda **_: embedder)
    monkeypatch.setattr(console, "width", 200)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_bytes(b"# Leave\n\nStaff get twenty-five days of holiday.")
    # A Latin-1 name ("resume" with accents): Python reads it with lone surrogates.
    with open(os.path.join(os.fsencode(folder), b"r\xe9sum\xe9.md"), "wb") as f:
        f.write(b"# CV\n\nNothing here.")
    r = CliRunner().invoke(
        cli_app, ["ingest", str(folder), "--no-progress"], catch_exceptions=False
    )
    assert r.exit_code == 1, r.output
    assert "1 ready" in r.output
    assert "1 failed" in r.output
    assert "r\ufffdsum\ufffd.md" in r.output
    assert "lone surrogate (U+DCE9)" in r.output
    assert "rename the file" in r.output

    r = CliRunner().invoke(cli_app, ["search", "r\udce9sum\udce9"])
    assert r.exit_code != 0
    assert isinstance(r.exception, UnstorableText)


def test_rows_inserted_in_one_batch_are_checked_too(container: Any) -> None:
    """Several rows of one table in one flush go to the driver as one multi-row INSERT."""
    from app.db.chat import ChatSession

    c = container
    user = c.auth.create_user("ada@example.com")
    with c.sessions.begin() as s:
        s.add_all([ChatSession(user_id=user.id, title="one"), ChatSession(user_id=user.id)])
    with pytest.raises(UnstorableText, match="title"), c.sessions.begin() as s:
        s.add_all(
            [ChatSession(user_id=user.id, title="ok"), ChatSession(user_id=user.id, title=NUL)]
        )
