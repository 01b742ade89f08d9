"""Behaviour every ``Embedder`` backend must show.

Use it by subclassing and providing one fixture, ``embedder``, the backend to test.
"""

from __future__ import annotations

import numpy as np

from retrieval.embedders.base import Embedder

SENTENCES = [
    "All full-time employees receive 25 days of paid vacation per year.",
    "Reset your VPN password from the self-service portal.",
    "The cafeteria opens at eight and closes at three.",
]


class EmbedderContract:
    def test_reports_a_name_dimension_and_token_limit(self, embedder: Embedder) -> None:
        assert embedder.model_name
        assert embedder.dimension > 0
        assert embedder.max_tokens > 0

    def test_declares_the_languages_it_reads(self, embedder: Embedder) -> None:
        # ISO 639-1 codes or "*": the hybrid retriever decides on them whether the
        # dense list votes for a query.
        assert isinstance(embedder.languages, frozenset)
        assert embedder.languages
        assert all(
            code == "*" or (len(code) == 2 and code.islower()) for code in embedder.languages
        )

    def test_one_normalised_float32_row_per_text(self, embedder: Embedder) -> None:
        vectors = embedder.embed_documents(SENTENCES)
        assert vectors.shape == (len(SENTENCES), embedder.dimension)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    def test_no_texts_give_an_empty_matrix(self, embedder: Embedder) -> None:
        assert embedder.embed_documents([]).shape == (0, embedder.dimension)

    def test_a_batch_equals_its_texts_one_by_one(self, embedder: Embedder) -> None:
        batch = embedder.embed_documents(SENTENCES)
        for i, text in enumerate(SENTENCES):
            single = embedder.embed_documents([text])[0]
            assert float(batch[i] @ single) >= 0.9999

    def test_the_same_text_always_gets_the_same_vector(self, embedder: Embedder) -> None:
        first = embedder.embed_documents(SENTENCES)
        np.testing.assert_allclose(embedder.embed_documents(SENTENCES), first, atol=1e-5)

    def test_a_query_is_closest_to_the_document_that_answers_it(self, embedder: Embedder) -> None:
        query = embedder.embed_query("How many vacation days do employees receive?")
        assert query.shape == (1, embedder.dimension)
        np.testing.assert_allclose(np.linalg.norm(query), 1.0, atol=1e-4)
        scores = embedder.embed_documents(SENTENCES) @ query.reshape(-1)
        assert int(np.argmax(scores)) == 0

    def test_progress_ends_at_the_total(self, embedder: Embedder) -> None:
        calls: list[tuple[int, int]] = []
        embedder.embed_documents(
            SENTENCES, progress=lambda done, total: calls.append((done, total))
        )
        assert calls
        assert calls[-1] == (len(SENTENCES), len(SENTENCES))

    def test_token_spans_lie_inside_their_text_in_order(self, embedder: Embedder) -> None:
        spans = embedder.tokenizer.token_spans(SENTENCES)
        assert len(spans) == len(SENTENCES)
        for text, text_spans in zip(SENTENCES, spans, strict=True):
            assert text_spans
            starts = [s for s, _ in text_spans]
            assert starts == sorted(starts)
            assert all(0 <= s < e <= len(text) for s, e in text_spans)
