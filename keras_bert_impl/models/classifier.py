"""`BertClassifier`: a dense layer on the pooled [CLS] output."""

import dataclasses

import keras
import numpy as np

from keras_bert_impl.models.task import BertDenseHeadTask
from keras_bert_impl.optimizers import FusedAdamW


@dataclasses.dataclass(frozen=True)
class TextClassification:
    """What `BertClassifier.predict_text` returns.

    Attributes:
        labels: the most probable label name of each text (`LABEL_i`
            without `label_names`); None for regression.
        probabilities: float32 `[num_texts, num_classes]` softmax
            probabilities, columns in `label_names` order; None for
            regression.
        label_names: the column names.
        scores: float32 `[num_texts]` regression outputs; None otherwise.
    """

    labels: list | None
    probabilities: np.ndarray | None
    label_names: tuple | None
    scores: np.ndarray | None = None


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def _pairs_as_columns(x):
    """[(text, text_pair), ...] → ([text, ...], [text_pair, ...])."""
    if (
        isinstance(x, list)
        and x
        and all(isinstance(item, (tuple, list)) and len(item) == 2 for item in x)
    ):
        return tuple(list(column) for column in zip(*x))
    return x


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertClassifier(BertDenseHeadTask):
    """Sequence classification (or regression with `num_classes=1`).

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        num_classes: number of classes; 1 for regression; None: the number
            of `label_names`, else 2.
        dropout: dropout on the pooled output (BERT used the hidden dropout).
        label_names: optional class names in index order.
        preprocessor: optional `BertTextClassifierPreprocessor`: then `fit`,
            `evaluate` and `predict` also take texts or `(text, text_pair)`
            tuples, and labels may be given as names.
        **kwargs: `keras.Model` arguments.

    Returns (call): float32 logits `[batch, num_classes]` (raw scores for
    regression). `predict` returns the same on text; `predict_text` returns
    probabilities and label names.

    Comes compiled with these defaults (`compile()` to change them):
    FusedAdamW(2e-5) (Keras' AdamW, one kernel per variable), sparse categorical
    cross-entropy from logits and accuracy, or mean squared error when
    `num_classes == 1`.

    Example:
    ```python
    classifier = BertClassifier.from_preset(
        checkpoint_dir, label_names=["negative", "positive"])
    classifier.fit(train_texts, train_labels, batch_size=32)
    classifier.predict_text(["A gripping, funny film."]).labels
    ```
    """

    head_input = "pooled_output"
    head_name = "classifier_head"
    huggingface_architecture = "BertForSequenceClassification"
    preprocessor_class_name = "BertTextClassifierPreprocessor"

    def __init__(
        self, backbone="base", num_classes=None, dropout=0.1, label_names=None, **kwargs
    ):
        if num_classes is None and label_names is None:
            num_classes = 2
        super().__init__(backbone, num_classes, dropout, label_names, **kwargs)
        self.compile()  # the defaults below; compile() again to change them

    @property
    def serving_task(self):
        return "regression" if self.num_classes == 1 else "classifier"

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        regression = self.num_classes == 1
        if optimizer == "auto":
            optimizer = FusedAdamW(2e-5)
        if loss == "auto":
            loss = (
                keras.losses.MeanSquaredError()
                if regression
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
        if metrics == "auto":
            metrics = (
                []
                if regression
                else [keras.metrics.SparseCategoricalAccuracy("accuracy")]
            )
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def prepare_text(self, x, y, sample_weight):
        if y is not None and self.num_classes > 1:
            y = self.label_indices(y)
            self._check_class_indices(y)
        return _pairs_as_columns(x), y, sample_weight

    def _check_class_indices(self, labels):
        """One line naming a label outside 0..num_classes-1 (TensorFlow's own error
        names an op deep inside the loss)."""
        values = np.asarray(labels)
        if values.dtype.kind not in "iuf" or (values.ndim > 1 and values.shape[-1] > 1):
            return  # not class indices: e.g. a teacher's soft targets (distillation)
        bad = values[(values < 0) | (values >= self.num_classes) | (values != np.round(values))]
        if bad.size:
            names = f" ({', '.join(self.label_names)})" if self.label_names else ""
            raise ValueError(
                f"Label {bad.flat[0].item()!r} is not a class of this {self.num_classes}-class "
                f"classifier: labels are class indices 0..{self.num_classes - 1}{names}"
                + (" or those names." if names else ".")
            )

    def predict_text(self, x, batch_size=None, verbose=0):
        """Classifies texts (or pairs) and names the classes.

        Args:
            x: texts, `(texts, text_pairs)`, a list of `(text, text_pair)`
                tuples, or a `tf.data.Dataset` of texts.
            batch_size: texts per batch (default 32).
            verbose: Keras' predict verbosity.

        Returns:
            `TextClassification`.
        """
        if self.preprocessor is None:
            raise ValueError(
                "predict_text needs a preprocessor: build the classifier with "
                "from_preset(checkpoint) or pass preprocessor=."
            )
        if not isinstance(x, (tuple, dict)):
            x = _pairs_as_columns(x)
        logits = np.asarray(self.predict(x, batch_size=batch_size, verbose=verbose))
        if self.num_classes == 1:
            return TextClassification(None, None, None, scores=logits[:, 0])
        probabilities = _softmax(logits)
        labels = self.names_of(probabilities.argmax(axis=-1))
        names = self.label_names or tuple(self.names_of(range(self.num_classes)))
        return TextClassification(labels, probabilities, tuple(names))
