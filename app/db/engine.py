"""Engine and session factory. Built by entry points, never at import time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.errors import UnstorableText


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout so that
    worker threads and the CLI can share one file."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_unstorable_text)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _refuse_unstorable_text(
    conn: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    """Refuse text no database can store (``app.storable``) before it reaches the driver, in
    writes and look-ups alike, so SQLite answers exactly as PostgreSQL does and every
    entry point (API, UI, CLI, workers) gets the same ``UnstorableText``."""
    names = getattr(getattr(context, "compiled", None), "positiontup", None) or ()
    # A batched multi-row INSERT ("insertmanyvalues") comes as executemany with one flat
    # row of every row's values, not as a list of rows.
    many = (
        executemany
        and isinstance(parameters, tuple | list)
        and bool(parameters)
        and isinstance(parameters[0], Mapping | tuple | list)
    )
    for row in parameters if many else [parameters]:
        items = row.items() if isinstance(row, Mapping) else enumerate(row or ())
        for key, value in items:
            if isinstance(value, str) and (reason := storable.problem(value)):
                if isinstance(key, int) and executemany and not many and names:
                    key = names[key % len(names)]  # a batch repeats one row's parameters
                elif isinstance(key, int):
                    key = names[key] if key < len(names) else "text"
                raise UnstorableText(f"{_field(str(key))}: {reason}")


def _field(bind_name: str) -> str:
    # Bind parameters are named after their column, numbered in WHERE clauses (email_1)
    # and in batched inserts (name__0).
    name = re.sub(r"_+\d+$", "", bind_name)
    return {"pk": "id", "param": "text"}.get(name, name)
