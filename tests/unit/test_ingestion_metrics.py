"""Ingestion throughput in /metrics: pages of documents that became ready."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.container import Container
from app.settings import Settings
from tests.fixtures import docs
from tests.unit.ingest_helpers import ingest


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    c = Container(Settings(data_dir=tmp_path, embedding={"kind": "fake"}))  # type: ignore[arg-type]
    c.migrate()
    try:
        yield c
    finally:
        c.close()


def sample(c: Container, series: str) -> float:
    m = re.search(rf"^{re.escape(series)} (\S+)$", c.metrics.render().decode(), re.M)
    assert m is not None, f"{series} not exported"
    return float(m.group(1))


def test_pages_count_when_their_document_becomes_ready(container: Container) -> None:
    assert sample(container, "lantern_ingestion_pages_total") == 0
    guide = docs.make_pdf(["Parking is free.", "Badges open doors.", "Printers: floor 2."])
    ingest(container, {"guide.pdf": guide, "notes.md": docs.make_markdown("# Notes\n\nHi.")})
    assert sample(container, "lantern_ingestion_pages_total") == 3 + 1

    # A file that fails adds a failed job and no pages.
    ingest(container, {"broken.pdf": docs.corrupt_pdf()})
    assert sample(container, "lantern_ingestion_pages_total") == 4
    assert sample(container, 'lantern_ingestion_jobs_total{outcome="failed"}') == 1
    assert sample(container, 'lantern_ingestion_jobs_total{outcome="succeeded"}') == 2
