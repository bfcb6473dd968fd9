"""Text (pair) files → sentence (pair) classification or regression data.

GLUE tasks ship tab-separated files with one example per line: one or two
text columns and a label column (a class name, or a float score for STS-B);
a user's own data comes the same way as CSV or JSON lines (`table_files`).
Files are read in Python, where a malformed row can be reported with its file
and line; tokenization and packing then run in the tf.data graph.

    train = read_text_examples("train.csv", text_columns=["review"])
    dev = read_text_examples(
        "dev.csv", text_columns=["review"],
        label_vocabulary=train.label_vocabulary)
    dataset = text_classification_dataset(train, tokenizer, packer, 32,
                                          shuffle=True)
"""

import dataclasses

import tensorflow as tf

from keras_bert_impl.data.batching import batched_examples
from keras_bert_impl.data.table_files import read_table
from keras_bert_impl.text.model_inputs import encode_texts


@dataclasses.dataclass(frozen=True)
class TextExamples:
    """Examples read from a TSV, CSV or JSON lines file.

    Attributes:
        texts: one tuple of strings per text column (1 or 2 columns).
        labels: class indices (classification), floats (regression), or
            None when the file has no label column.
        label_vocabulary: class names in index order; None for regression
            or unlabelled data.
        source: the file the examples came from.
    """

    texts: tuple
    labels: tuple | None
    label_vocabulary: tuple | None
    source: str

    def __len__(self):
        return len(self.texts[0])

    def model_inputs(self, count=None):
        """The first `count` (default all) texts as the task models take
        them: a list of texts, or a `(texts, text_pairs)` tuple of lists."""
        columns = [list(column[:count]) for column in self.texts]
        return columns[0] if len(columns) == 1 else tuple(columns)


def _sort_labels(labels):
    # Numeric class names sort as numbers ("2" before "10").
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _column_index(column, header, path):
    if isinstance(column, int):
        return column
    if header is None:
        raise ValueError(
            f"{path}: column {column!r} is named, but header=False; give column "
            "indices or read the file with header=True."
        )
    if column not in header:
        raise ValueError(
            f"{path}: no column {column!r}; the columns found are {header}."
        )
    return header.index(column)


def read_text_examples(
    path,
    *,
    text_columns=("sentence",),
    label_column="label",
    header=True,
    regression=False,
    label_vocabulary=None,
    file_format=None,
    labels_optional=False,
):
    """Reads a TSV, CSV or JSON lines file of texts and labels.

    Args:
        path: the file (any path `tf.io.gfile` opens).
        text_columns: one or two columns holding the text(s), by header name
            or by 0-based index.
        label_column: the label column (name or index); None for unlabelled
            files (e.g. GLUE test sets).
        header: whether the first line of a TSV/CSV file names the columns.
        regression: labels are float scores instead of class names.
        label_vocabulary: class names in index order. When None, the sorted
            distinct labels of this file are used (numerically sorted when
            they are all numbers); pass the training file's vocabulary when
            reading dev/test files so the indices agree.
        file_format: `tsv`, `csv` or `jsonl` (see `table_files`); None: from
            the extension of `path`.
        labels_optional: a file without the label column is read unlabelled
            (a test file that may or may not carry labels).

    Returns:
        `TextExamples`.

    Raises:
        ValueError: naming the file (and line) of a missing column, a row
            with the wrong number of columns, an unknown label, a
            non-numeric regression label, or invalid UTF-8; or when the file
            has no examples.
    """
    text_columns = tuple(text_columns)
    if len(text_columns) not in (1, 2):
        raise ValueError(
            f"text_columns must name one or two columns, got {text_columns}."
        )
    header_names, rows = read_table(path, file_format, header)
    if labels_optional and header_names and label_column not in header_names:
        label_column = None
    wanted = [_column_index(c, header_names, path) for c in text_columns]
    label_index = (
        None
        if label_column is None
        else _column_index(label_column, header_names, path)
    )
    if not rows:
        raise ValueError(f"{path}: no examples (only a header or blank lines).")
    _check_indices(path, wanted + [label_index], len(rows[0][1]))
    texts = tuple(tuple(fields[i] for _, fields in rows) for i in wanted)
    raw_labels = []
    if label_index is not None:
        raw_labels = [(n, fields[label_index].strip()) for n, fields in rows]
    labels = None
    if label_index is not None and regression:
        labels = tuple(_parse_score(path, n, value) for n, value in raw_labels)
        label_vocabulary = None
    elif label_index is not None:
        if label_vocabulary is None:
            label_vocabulary = _sort_labels({value for _, value in raw_labels})
        label_vocabulary = tuple(label_vocabulary)
        index_of = {name: i for i, name in enumerate(label_vocabulary)}
        labels = []
        for line_number, value in raw_labels:
            if value not in index_of:
                raise ValueError(
                    f"{path}:{line_number}: label {value!r} is not one of "
                    f"{list(label_vocabulary)} (the training file's labels)."
                )
            labels.append(index_of[value])
        labels = tuple(labels)
    else:
        label_vocabulary = None
    return TextExamples(
        texts=texts,
        labels=labels,
        label_vocabulary=label_vocabulary,
        source=str(path),
    )


def read_tsv_examples(path, **options):
    """`read_text_examples` of a TSV file, whatever its extension."""
    return read_text_examples(path, file_format="tsv", **options)


def _check_indices(path, indices, num_columns):
    for index in indices:
        if index is not None and not 0 <= index < num_columns:
            raise ValueError(
                f"{path}: column index {index} is outside the {num_columns} columns "
                "of the file."
            )


def _parse_score(path, line_number, value):
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"{path}:{line_number}: regression label {value!r} is not a number."
        ) from None


def text_classification_dataset(
    examples,
    tokenizer,
    packer,
    batch_size,
    *,
    shuffle=False,
    seed=None,
    repeat=False,
    drop_remainder=False,
    group_by_length=False,
):
    """Tokenizes and packs `TextExamples` inside a tf.data pipeline.

    Args:
        examples: `TextExamples` from `read_text_examples`.
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        packer: a `keras_bert_impl.text.Packer` (its `seq_length` and
            truncation apply; pairs are packed as `[CLS] A [SEP] B [SEP]`).
        batch_size: examples per batch.
        shuffle: shuffle all examples (every epoch).
        seed: makes the shuffle reproducible.
        repeat: repeat forever.
        drop_remainder: drop a last, smaller batch (static batch size).
        group_by_length: batches of similar length (`data.batching`), for a
            packer with length buckets.

    Returns:
        A `tf.data.Dataset` of `(x, y)`, x = {token_ids, segment_ids,
        padding_mask} int32 `[batch, seq]`, y = int32 class indices or
        float32 scores `[batch]`; just `x` for unlabelled examples.
    """
    texts = tuple(tf.constant(column, tf.string) for column in examples.texts)
    elements = texts
    if examples.labels is not None:
        label_dtype = tf.int32 if examples.label_vocabulary is not None else tf.float32
        elements = (texts, tf.constant(examples.labels, label_dtype))
    dataset = batched_examples(
        elements,
        len(examples),
        batch_size,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
        group_by_length=group_by_length,
    )

    def encode(batch_texts):
        return encode_texts(tokenizer, packer, batch_texts)

    if examples.labels is None:
        dataset = dataset.map(
            lambda *columns: encode(columns), num_parallel_calls=tf.data.AUTOTUNE
        )
    else:
        dataset = dataset.map(
            lambda batch_texts, labels: (encode(batch_texts), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
