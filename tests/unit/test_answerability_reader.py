"""The reading-model judge: SQuAD 2.0's rule (best span against the no-answer score),
run on a tiny BERT whose weights are set by hand so that the answer is known: the
token "paris" scores high as an answer, [CLS] ("no answer") in between, all else 0."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from llm.answerability.reader import best_span, load_reader  # noqa: E402
from llm.base import Source  # noqa: E402

Q = "what is the capital of france ?"
WORDS = "what is the capital of france paris london city a big ? .".split()


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reader")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=0,
        num_attention_heads=2,
        intermediate_size=8,
        max_position_embeddings=128,
    )
    model = transformers.BertForQuestionAnswering(config)
    with torch.no_grad():
        emb = model.bert.embeddings
        for table in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
            table.weight.zero_()
        emb.word_embeddings.weight[vocab.index("paris"), 0] = 1.0  # after LayerNorm: ~2.6
        emb.word_embeddings.weight[vocab.index("[CLS]"), 1] = 1.0
        model.qa_outputs.weight.zero_()
        model.qa_outputs.bias.zero_()
        model.qa_outputs.weight[:, 0] = 2.0  # start and end logits of "paris": ~5.3
        model.qa_outputs.weight[:, 1] = 1.0  # [CLS]: ~2.6
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def src(text: str, n: int = 1) -> Source:
    return Source(n=n, chunk_id=f"c{n}", document_id="d", title="T", page=1, text=text)


def test_the_best_span_stays_in_the_context_and_within_its_length() -> None:
    starts = torch.tensor([9.0, 1.0, 5.0, 0.0, 0.0])
    ends = torch.tensor([9.0, 0.0, 1.0, 0.0, 4.0])
    context = torch.tensor([False, True, True, True, True])  # token 0 is the question
    assert best_span(starts, ends, context, 30) == (9.0, 2, 4)
    assert best_span(starts, ends, context, 2) == (6.0, 2, 2)
    assert best_span(starts, ends, torch.zeros(5, dtype=torch.bool), 30) is None


def test_a_passage_with_the_answer_is_answerable_and_one_without_is_not(
    reader_dir: Path,
) -> None:
    judge = load_reader(str(reader_dir), allow_download=False)
    assert judge is not None
    assert judge.name == f"reader:{reader_dir}"
    yes = judge.judge(
        Q,
        [src("london is a big city ."), src("the capital of france is paris .", 2)],
        language="en",
    )
    assert yes.answerable
    assert yes.evidence == "paris"
    assert yes.score > 0
    no = judge.judge(
        "what is the capital of france ?", [src("london is a big city .")], language="en"
    )
    assert not no.answerable
    assert "no answer" in no.reason


def test_the_answer_is_found_past_the_first_window_of_a_long_source(reader_dir: Path) -> None:
    judge = load_reader(str(reader_dir), allow_download=False)
    assert judge is not None
    judge.max_length, judge.stride = 24, 8
    long = "london is a big city . " * 12 + "the capital of france is paris ."
    v = judge.judge(Q, [src(long)], language="en")
    assert v.answerable
    assert v.evidence == "paris"


def test_a_higher_threshold_abstains_more(reader_dir: Path) -> None:
    judge = load_reader(str(reader_dir), min_score=100.0, allow_download=False)
    assert judge is not None
    v = judge.judge(
        "what is the capital of france ?", [src("paris is the capital .")], language="en"
    )
    assert not v.answerable


def test_a_model_without_a_question_answering_head_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = transformers.BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=0, num_attention_heads=2,
        intermediate_size=8,
    )  # fmt: skip
    transformers.BertModel(config).save_pretrained(tmp_path)
    assert load_reader(str(tmp_path), allow_download=False) is None
    assert "not an extractive question-answering model" in caplog.text
