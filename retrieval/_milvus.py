"""What the Milvus vector store and lexical index share: the connection, collection names,
the manifest kept in the collection's properties, and swapping a rebuilt index in.

A Lantern index is a Milvus *alias* (``<prefix><directory name>_<role>``, e.g.
``lantern_milvus_vectors``) pointing at a physical collection (that name plus a random
suffix). Readers and writers always go through the alias, so ``lantern reindex`` builds
a fresh collection under a staging alias and then moves the live alias onto it in one
call (``promote``): searches see the old collection until that instant, and a crash
before it leaves the old one untouched.

A URI ending in ``.db`` is a milvus-lite database: pymilvus starts an in-process gRPC
server on loopback for it. The server is started once per path and stopped when the
last index using it closes, so a test's database can be removed afterwards. gRPC
honours ``http_proxy``: where a proxy is set, ``127.0.0.1`` and ``localhost`` are added
to ``NO_PROXY`` before connecting, or the loopback connection would go to the proxy.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient, MilvusException

from retrieval._sharded import REINDEX_HINT
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

MANIFEST_KEY = "lantern.manifest"
ALL = 'chunk_id != ""'  # a filter every row passes (Milvus wants one to delete by)
#: Milvus refuses a ``limit`` (or ``offset + limit``) above this.
MAX_TOP_K = 16384
ID_LENGTH = 256  # VARCHAR length of chunk, document and collection ids
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")
_LOOPBACK = ("127.0.0.1", "localhost")

_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}


@dataclass(frozen=True)
class MilvusConnection:
    """Where the Milvus indexes live. ``uri``: a milvus-lite file (``*.db``) or
    ``http://host:19530``; None puts a milvus-lite database in the index's directory."""

    uri: str | None = None
    token: str | None = None
    user: str | None = None
    password: str | None = None
    db_name: str | None = None
    prefix: str = "lantern_"
    timeout_s: float = 30.0


def is_lite(uri: str) -> bool:
    return uri.endswith(".db")


class Connected:
    """One open client and the alias it works on; ``close`` is idempotent."""

    def __init__(
        self,
        connection: MilvusConnection | None,
        directory: Path,
        role: str,
        error: type[RetrievalError],
    ) -> None:
        connection = connection or MilvusConnection()
        self.error = error
        self.uri = connection.uri or str(Path(directory) / "milvus.db")
        self.name = collection_name(connection.prefix, Path(directory), role)
        self.lock = threading.RLock()  # milvus-lite wants writes to a collection serialised
        self._lite = os.path.abspath(self.uri) if is_lite(self.uri) else None
        self._closed = False
        _no_proxy_for_loopback()
        if self._lite:
            Path(self._lite).parent.mkdir(parents=True, exist_ok=True)
            with _lite_lock:
                _lite_users[self._lite] = _lite_users.get(self._lite, 0) + 1
        try:
            self.client = MilvusClient(
                uri=self.uri,
                token=connection.token or "",
                user=connection.user or "",
                password=connection.password or "",
                db_name=connection.db_name or "",
                timeout=connection.timeout_s,
                dedicated=True,  # closed with us, not shared with other clients
            )
        except MilvusException as e:
            self._release_lite()
            raise error(f"cannot connect to Milvus at {self.uri}: {e.message}") from e

    @property
    def where(self) -> str:
        return f"Milvus collection {self.name!r} at {self.uri}"

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with Milvus's errors turned into ours."""
        if self._closed:
            raise self.error(f"{self.where} is closed")
        try:
            return fn(*args, **kwargs)
        except MilvusException as e:
            raise self.error(f"{what} failed on {self.where}: {e.message}") from e

    def open(
        self,
        *,
        schema: Any,
        index_params: Any,
        manifest: dict[str, Any],
        check: Callable[[dict[str, Any]], None],
    ) -> None:
        """Open the alias, checking the manifest it was built with, or create it."""
        client = self.client
        if self.call("has_collection", client.has_collection, self.name):
            info = self.call("describe_collection", client.describe_collection, self.name)
            raw = (info.get("properties") or {}).get(MANIFEST_KEY)
            try:
                found = json.loads(raw or "null")
                if not isinstance(found, dict):
                    raise ValueError("not an object")
            except (TypeError, ValueError) as e:
                raise self.error(
                    f"{self.where} has no readable Lantern manifest ({e}); is it another "
                    f"application's? {REINDEX_HINT}"
                ) from e
            check(found)
            self.call("load_collection", client.load_collection, self.name)  # after a restart
            return
        physical = f"{self.name}_{uuid.uuid4().hex[:12]}"
        self.call(
            "create_collection",
            client.create_collection,
            physical,
            schema=schema,
            consistency_level="Strong",  # a write is visible to the next search
            properties={MANIFEST_KEY: json.dumps(manifest, sort_keys=True)},
        )
        # Not create_collection(index_params=): it polls each index twice a second.
        self.call("create_index", client.create_index, physical, index_params, sync=False)
        self.call("load_collection", client.load_collection, physical)
        self.call("create_alias", client.create_alias, physical, self.name)
        log.info("created %s as %s", self.where, physical)

    def count(self, collections: Collection[str] | None, *, only: str = "") -> int:
        """Rows in ``collections`` (None: all) that also pass the filter ``only``."""
        if collections is not None and not collections:
            return 0
        rows = self.call(
            "count",
            self.client.query,
            self.name,
            filter=all_of(only, in_filter("collection_id", collections)),
            output_fields=["count(*)"],
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def scan(self, field: str, *, only: str = ALL) -> Iterator[Any]:
        """``field`` of every row that passes the filter ``only`` (for orphan clean-up; costs a
        pass over all rows).

        A server pages with a query iterator; milvus-lite answers one query (it keeps no
        timestamps for the iterator, and a lite database is small)."""
        if self._lite:
            rows = self.call(
                "query", self.client.query, self.name, filter=only, output_fields=[field]
            )
            yield from (row[field] for row in rows)
            return
        iterator = self.call(
            "query_iterator",
            self.client.query_iterator,
            self.name,
            batch_size=4096,
            filter=only,
            output_fields=[field],
        )
        try:
            while batch := self.call("query_iterator", iterator.next):
                yield from (row[field] for row in batch)
        finally:
            iterator.close()

    def upsert(self, rows: list[dict[str, Any]], *, batch: int, partial: bool = False) -> None:
        """Upsert ``rows`` in calls of ``batch`` rows (a gRPC message is capped at 64 MB).
        ``partial``: a row of an existing key keeps the fields the new row leaves out."""
        with self.lock:
            for start in range(0, len(rows), batch):
                self.call(
                    "upsert",
                    self.client.upsert,
                    self.name,
                    rows[start : start + batch],
                    **({"partial_update": True} if partial else {}),
                )

    def delete_documents(self, document_ids: Iterable[str], *, only: str = "") -> int:
        """Delete every row of these documents; returns how many of them pass ``only``."""
        ids = sorted(set(document_ids))
        if not ids:
            return 0
        where = in_filter("document_id", ids)
        with self.lock:
            rows = self.call(
                "count",
                self.client.query,
                self.name,
                filter=all_of(only, where),
                output_fields=["count(*)"],
            )
            n = int(rows[0]["count(*)"]) if rows else 0
            if n or only:  # rows that do not pass ``only`` go too
                self.call("delete", self.client.delete, self.name, filter=where)
        return n

    def existing(self, chunk_ids: Collection[str]) -> set[str]:
        """Which of these chunks have a row."""
        if not chunk_ids:
            return set()
        rows = self.call(
            "query",
            self.client.query,
            self.name,
            filter=in_filter("chunk_id", chunk_ids),
            output_fields=["chunk_id"],
        )
        return {row["chunk_id"] for row in rows}

    def clear(self) -> None:
        with self.lock:
            self.call("clear", self.client.delete, self.name, filter=ALL)

    def promote(self, directory: Path, role: str, prefix: str) -> None:
        """Move the alias of the index at ``directory`` onto this index's collection and
        drop the collection it pointed at (``lantern reindex``'s swap)."""
        target = collection_name(prefix, Path(directory), role)
        client = self.client
        physical = self.call("describe_alias", client.describe_alias, self.name)["collection_name"]
        old = None
        if self.call("has_collection", client.has_collection, target):
            try:
                old = client.describe_alias(target)["collection_name"]
            except MilvusException as e:
                raise self.error(
                    f"{target!r} at {self.uri} is a collection, not a Lantern alias; "
                    "drop or rename it first"
                ) from e
            self.call("alter_alias", client.alter_alias, physical, target)
        else:
            self.call("create_alias", client.create_alias, physical, target)
        self.call("drop_alias", client.drop_alias, self.name)
        if old is not None and old != physical:
            self.call("drop_collection", client.drop_collection, old)
        self.name = target

    def drop_index(self, directory: Path, role: str, prefix: str) -> None:
        """Drop the index of ``role`` at ``directory`` (its alias and collection), if any."""
        alias = collection_name(prefix, Path(directory), role)
        client = self.client
        if not self.call("has_collection", client.has_collection, alias):
            return
        physical = self.call("describe_alias", client.describe_alias, alias)["collection_name"]
        self.call("drop_alias", client.drop_alias, alias)
        self.call("drop_collection", client.drop_collection, physical)
        log.info("dropped %r at %s (its data now lives in %r)", alias, self.uri, self.name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.client.close()
        except MilvusException as e:  # closing must not fail a shutdown
            log.warning("closing %s: %s", self.where, e.message)
        finally:
            self._release_lite()

    def _release_lite(self) -> None:
        if self._lite is None:
            return
        with _lite_lock:
            users = _lite_users.get(self._lite, 1) - 1
            if users > 0:
                _lite_users[self._lite] = users
                return
            _lite_users.pop(self._lite, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(self._lite)


def collection_name(prefix: str, directory: Path, role: str) -> str:
    """``<prefix><directory name>_<role>`` in the characters Milvus allows in a name."""
    name = _NAME_CHARS.sub("_", f"{prefix}{directory.name}_{role}")
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def in_filter(field: str, values: Collection[str] | None) -> str:
    """``field in ["a", "b"]`` (JSON string literals: quotes and backslashes escaped),
    or "" (everything) for None."""
    if values is None:
        return ""
    return f"{field} in {json.dumps(sorted(values), ensure_ascii=False)}"


def all_of(*filters: str) -> str:
    """The filters that are not empty, joined with ``and`` ("" when none is left)."""
    return " and ".join(f"({f})" for f in filters if f)


def check_ids(record: Any, names: tuple[str, ...], error: type[RetrievalError]) -> None:
    for name in names:
        value = getattr(record, name)
        if not isinstance(value, str) or not value:
            raise error(f"{name} must be a non-empty string, got {value!r}")
        if len(value.encode("utf-8")) > ID_LENGTH:
            raise error(f"{name} is longer than {ID_LENGTH} bytes: {value[:40]!r}...")


def _no_proxy_for_loopback() -> None:
    """Keep gRPC's loopback connection to milvus-lite away from an HTTP proxy."""
    proxies = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "grpc_proxy")
    if not any(os.environ.get(v) for v in proxies):
        return
    for var in ("NO_PROXY", "no_proxy"):
        current = [h.strip() for h in os.environ.get(var, "").split(",") if h.strip()]
        missing = [h for h in _LOOPBACK if h not in current]
        if missing:
            os.environ[var] = ",".join([*current, *missing])
