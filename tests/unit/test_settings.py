from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_env_prefix_and_nested_sections(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LANTERN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LANTERN_CHUNKING__MAX_TOKENS", "128")
    monkeypatch.setenv("LANTERN_INGESTION__MAX_FILE_MB", "7")
    s = Settings()
    assert s.data_dir == tmp_path
    assert s.chunking.max_tokens == 128
    assert s.ingestion.max_file_mb == 7
    # Everything lives under the one data dir by default.
    assert s.database_url == f"sqlite:///{(tmp_path / 'lantern.db').resolve()}"
    assert s.index_dir == tmp_path / "index"
    assert s.blob_dir == tmp_path / "blobs"


def test_explicit_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANTERN_DATABASE__URL", "postgresql+psycopg://u@db/lantern")
    assert Settings().database_url == "postgresql+psycopg://u@db/lantern"


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="overlap_tokens"):
        Settings(chunking={"max_tokens": 64, "overlap_tokens": 64})


def test_every_setting_is_described() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                missing += [f"{name}.{m}" for m in walk(ann)]
            elif not field.description:
                missing.append(name)
        return missing

    assert walk(Settings) == []
