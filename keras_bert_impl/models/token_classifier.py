"""`BertTokenClassifier`: a dense layer on every token (NER, tagging)."""

import dataclasses

import keras
import numpy as np
from keras import ops

from keras_bert_impl.constants import IGNORE_LABEL, MODEL_INPUTS
from keras_bert_impl.models.task import BertDenseHeadTask
from keras_bert_impl.optimizers import FusedAdamW


@dataclasses.dataclass(frozen=True)
class TaggedWord:
    """One word of raw text and its predicted tag (`predict_text`).

    Attributes:
        word: the word as it appears in the text.
        tag: its tag name.
        start, end: character offsets: `text[start:end] == word`.
    """

    word: str
    tag: str
    start: int
    end: int


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class LabelledTokenAccuracy(keras.metrics.Metric):
    """Accuracy over the positions whose label is not `IGNORE_LABEL`.

    Keras' SparseCategoricalAccuracy would count ignored positions (padding,
    continuation pieces) as errors.
    """

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.labelled = self.add_variable((), initializer="zeros", name="labelled")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        weight = ops.cast(ops.not_equal(y_true, IGNORE_LABEL), self.dtype)
        if sample_weight is not None:
            weight = weight * ops.cast(sample_weight, self.dtype)
        hits = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), y_true), self.dtype)
        self.correct.assign_add(ops.sum(hits * weight))
        self.labelled.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.labelled)


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertTokenClassifier(BertDenseHeadTask):
    """Per-token classification.

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        num_classes: number of tags.
        dropout: dropout on the sequence output.
        label_names: optional tag names in index order.
        preprocessor: optional `BertTokenClassifierPreprocessor`: then `fit`,
            `evaluate` and `predict` also take pre-split words (a list of
            word lists, with a list of tag lists, names or indices, as
            labels) or raw text.
        **kwargs: `keras.Model` arguments.

    Returns (call): float32 logits `[batch, seq_length, num_classes]`.
    `predict` returns the same on text; `predict_text` returns a tag per
    word.

    Comes compiled with these defaults (`compile()` to change them):
    FusedAdamW(5e-5), sparse categorical cross-entropy from logits that skips labels equal to `IGNORE_LABEL` (-100), and accuracy
    over the labelled positions.
    """

    head_input = "sequence_output"
    head_name = "token_classifier_head"
    export_task = "token_classifier"
    huggingface_architecture = "BertForTokenClassification"
    preprocessor_class_name = "BertTokenClassifierPreprocessor"

    def __init__(
        self, backbone="base", num_classes=None, dropout=0.1, label_names=None, **kwargs
    ):
        if num_classes is None and label_names is None:
            num_classes = 9
        super().__init__(backbone, num_classes, dropout, label_names, **kwargs)
        self.compile()  # the defaults below; compile() again to change them

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        if optimizer == "auto":
            optimizer = FusedAdamW(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=IGNORE_LABEL
            )
        if metrics == "auto":
            metrics = [LabelledTokenAccuracy()]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def prepare_text(self, x, y, sample_weight):
        if y is not None and not hasattr(y, "dtype"):
            y = [self.label_indices(list(row)) for row in y]
        return x, y, sample_weight

    def predict_text(self, x, batch_size=None):
        """Tags every word.

        Args:
            x: pre-split words (a list of word lists) or raw texts (a list
                of strings; words are BERT's basic-tokenizer words).
            batch_size: inputs per batch (default 32).

        Returns:
            One list per input: for words, their tag names in order; for
            raw text, `TaggedWord`s. An input longer than the
            preprocessor's `sequence_length` is tagged in consecutive
            windows of whole words, each on its own: the windows the CoNLL
            reader trains on and the exported graph tags
            (`text.word_windows`). A single word with more pieces than a
            window holds sits alone in one, cut, and takes its first
            piece's tag.
        """
        from keras_bert_impl.models import text_datasets

        if self.preprocessor is None:
            raise ValueError(
                "predict_text needs a preprocessor: build the model with "
                "from_preset(checkpoint) or pass preprocessor=."
            )
        self._check_inputs(x, "predict_text")
        if isinstance(x, (str, bytes)):
            x = [x]
        tags, offsets = [], []
        batches = text_datasets.encoded_batches(
            self.preprocessor, x, batch_size, method="encode_windows"
        )
        for batch in batches:
            first = len(tags)
            tags.extend([None] * int(n) for n in batch["num_words"])
            if "word_starts" in batch:
                starts, ends = batch["word_starts"], batch["word_ends"]
                offsets.extend(zip(starts.to_list(), ends.to_list()))
            if not len(batch["example_index"]):
                continue  # no words in this batch: no window to tag
            inputs = {key: batch[key] for key in MODEL_INPUTS}
            predicted = np.asarray(self.predict_on_batch(inputs)).argmax(-1)
            windows, positions = np.nonzero(batch["word_index"] >= 0)
            inputs_of = batch["example_index"][windows] + first
            words = batch["word_index"][windows, positions]
            names = self.names_of(predicted[windows, positions])
            for row, word, name in zip(inputs_of, words, names):
                tags[row][word] = name
        if offsets:
            return [
                _tagged_words(text, found, where)
                for text, found, where in zip(_texts_as_bytes(x), tags, offsets)
            ]
        return tags


def _texts_as_bytes(x):
    texts = x.numpy().tolist() if hasattr(x, "numpy") else list(np.asarray(x, object))
    return [
        t.encode("utf-8", "surrogatepass") if isinstance(t, str) else bytes(t)
        for t in texts
    ]


def _tagged_words(text, tags, offsets):
    """`TaggedWord`s of one raw text from byte offsets into its UTF-8."""
    words = []
    for index, (start, end) in enumerate(zip(*offsets)):
        char_start = len(text[:start].decode("utf-8", "replace"))
        word = text[start:end].decode("utf-8", "replace")
        words.append(
            TaggedWord(word, tags[index], char_start, char_start + len(word))
        )
    return words
