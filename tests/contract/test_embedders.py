"""Every embedder kind passes the embedder contract, and torch and ONNX agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrieval.embedders.base import Embedder
from retrieval.embedders.registry import available_kinds, create_embedder
from tests.contract.embedder_contract import SENTENCES, EmbedderContract


@pytest.fixture(scope="module")
def onnx(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    built = create_embedder(
        "onnx",
        model="BAAI/bge-small-en-v1.5",  # not on this machine: the bundled MiniLM
        allow_download=False,
        cache_dir=tmp_path_factory.mktemp("onnx-cache"),
    )
    if getattr(built, "backend", None) != "onnx":
        pytest.skip("onnxruntime is not installed: the onnx kind fell back to torch")
    return built


class TestFake(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return create_embedder("fake")


class TestTorch(EmbedderContract):
    @pytest.fixture
    def embedder(self, embedder: Any) -> Embedder:  # the session's torch MiniLM
        return embedder  # type: ignore[no-any-return]


class TestOnnx(EmbedderContract):
    @pytest.fixture
    def embedder(self, onnx: Embedder) -> Embedder:
        return onnx


def test_torch_and_onnx_give_the_same_vectors(embedder: Any, onnx: Embedder) -> None:
    torch_docs = embedder.embed_documents(SENTENCES)
    onnx_docs = onnx.embed_documents(SENTENCES)
    assert (np.sum(torch_docs * onnx_docs, axis=1) >= 0.999).all()
    query = "How many vacation days do employees receive?"
    assert float((embedder.embed_query(query) @ onnx.embed_query(query).T).item()) >= 0.999


def test_the_registry_lists_every_kind() -> None:
    assert available_kinds() == ["fake", "onnx", "torch"]


def test_fake_embedder_is_deterministic_across_instances() -> None:
    a = create_embedder("fake", dimension=32).embed_documents(SENTENCES)
    b = create_embedder("fake", dimension=32).embed_documents(SENTENCES)
    assert a.shape == (3, 32)
    np.testing.assert_array_equal(a, b)
