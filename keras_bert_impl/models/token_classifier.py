"""`BertTokenClassifier`: a dense layer on every token (NER, tagging)."""

import dataclasses

import keras
import numpy as np
from keras import ops

from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.models.task import BertDenseHeadTask


@dataclasses.dataclass(frozen=True)
class TaggedWord:
    """One word of raw text and its predicted tag (`predict_text`).

    Attributes:
        word: the word as it appears in the text.
        tag: its tag name; None only for a single word with more pieces than the
            preprocessor's `sequence_length`.
        start, end: character offsets: `text[start:end] == word`.
    """

    word: str
    tag: str | None
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
    AdamW(5e-5), sparse categorical cross-entropy from logits that skips labels equal to `IGNORE_LABEL` (-100), and accuracy
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
            optimizer = keras.optimizers.AdamW(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=IGNORE_LABEL
            )
        if metrics == "auto":
            metrics = [LabelledTokenAccuracy()]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def _prepare_text(self, x, y, sample_weight):
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
            windows of whole words (each as long as fits, as the CoNLL
            reader splits long sentences); only a single word with more
            pieces than a window holds gets the tag None.
        """
        if self.preprocessor is None:
            raise ValueError(
                "predict_text needs a preprocessor: build the model with "
                "from_preset(checkpoint) or pass preprocessor=."
            )
        self._check_inputs(x, "predict_text")
        if isinstance(x, (str, bytes)):
            x = [x]
        predictions = self._tag_batches(x, batch_size)
        raw = bool(predictions) and predictions[0][1] is not None
        if raw:
            texts = _texts_as_bytes(x)
            words = [
                [t[a:b].decode("utf-8", "replace") for a, b in zip(*offsets)]
                for t, (_, offsets) in zip(texts, predictions)
            ]
        else:
            words = [list(w) for w in _word_lists(x)]
        tags = [found for found, _ in predictions]
        self._tag_the_rest(words, tags, batch_size)
        if raw:
            return [
                _tagged_words(text, found, offsets)
                for text, found, (_, offsets) in zip(texts, tags, predictions)
            ]
        return [[found.get(i) for i in range(len(w))] for w, found in zip(words, tags)]

    def _tag_batches(self, x, batch_size):
        """Per input: ({word index: tag} of the words that fit, byte offsets
        of every word for raw text else None)."""
        from keras_bert_impl.models import text_inputs

        predictions = []
        for batch in text_inputs.encoded_batches(self.preprocessor, x, batch_size):
            inputs = {key: batch[key] for key in _MODEL_INPUTS}
            predicted = np.asarray(self.predict_on_batch(inputs)).argmax(-1)
            for row, word_index in enumerate(batch["word_index"]):
                positions = np.nonzero(word_index >= 0)[0]
                names = self.names_of(predicted[row, positions])
                found = dict(zip(word_index[positions].tolist(), names))
                offsets = None
                if "word_starts" in batch:
                    offsets = (
                        batch["word_starts"][row].numpy(),
                        batch["word_ends"][row].numpy(),
                    )
                predictions.append((found, offsets))
        return predictions

    def _tag_the_rest(self, words, tags, batch_size):
        """Tags the words after each input's first window, window by window
        (updates `tags` in place). A window starts at the first untagged word;
        a word too long for any window is skipped."""
        start = [len(found) for found in tags]
        while True:
            pending = [i for i, w in enumerate(words) if start[i] < len(w)]
            if not pending:
                return
            windows = self._tag_batches(
                [words[i][start[i] :] for i in pending], batch_size
            )
            for i, (found, _) in zip(pending, windows):
                for index, tag in found.items():
                    tags[i][start[i] + index] = tag
                start[i] += max(len(found), 1)


_MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _texts_as_bytes(x):
    texts = x.numpy().tolist() if hasattr(x, "numpy") else list(np.asarray(x, object))
    return [
        t.encode("utf-8", "surrogatepass") if isinstance(t, str) else bytes(t)
        for t in texts
    ]


def _word_lists(x):
    return x.to_list() if hasattr(x, "to_list") else list(x)


def _tagged_words(text, tags, offsets):
    """`TaggedWord`s of one raw text from byte offsets into its UTF-8."""
    words = []
    for index, (start, end) in enumerate(zip(*offsets)):
        char_start = len(text[:start].decode("utf-8", "replace"))
        word = text[start:end].decode("utf-8", "replace")
        words.append(
            TaggedWord(word, tags.get(index), char_start, char_start + len(word))
        )
    return words
