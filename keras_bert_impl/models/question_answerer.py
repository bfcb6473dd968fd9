"""`BertQuestionAnswerer`: start/end logits for extractive QA (SQuAD)."""

import dataclasses

import keras
import numpy as np
from keras import ops

from keras_bert_impl.constants import MODEL_INPUTS
from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models import checkpoint_names
from keras_bert_impl.models.task import BertTask
from keras_bert_impl.optimizers import FusedAdamW

# Logit given to padded positions so no answer span can start or end there.
_MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class Answer:
    """A predicted answer span (`BertQuestionAnswerer.predict_text`).

    Attributes:
        text: the answer, `context[start:end]` ("" when none was found).
        start, end: character offsets in the context (-1 for "").
        score: softmax probability among the best candidate spans.
    """

    text: str
    start: int
    end: int
    score: float


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertQuestionAnswerer(BertTask):
    """Predicts the answer span as start and end positions.

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        **kwargs: `keras.Model` arguments.

    Returns (call): dict with float32 `start_logits` and `end_logits`
    `[batch, seq_length]`; padded positions get -1e9.

    Train with `fit()` on `(x, y)` where y holds int `start_positions` and
    `end_positions` (`[batch]`; 0, the [CLS] position, for "no answer"); the
    loss is the mean of the two cross-entropies, as in BERT's run_squad.py.
    Comes compiled with FusedAdamW(3e-5) (`compile()` to change it).

    With a `BertQuestionAnswererPreprocessor` (`preprocessor=`, or
    `from_preset`), `fit` / `evaluate` also take `x = (questions, contexts)`
    with `y = {"answer_start": character offsets, "answer_text": texts}`,
    and `predict_text(questions, contexts)` returns `Answer` spans. `predict`
    on text returns logits per window (a long context has several).
    """

    preprocessor_class_name = "BertQuestionAnswererPreprocessor"
    export_task = "question_answerer"
    huggingface_architecture = "BertForQuestionAnswering"

    def __init__(self, backbone="base", **kwargs):
        super().__init__(backbone, **kwargs)
        self.span_head = keras.layers.Dense(
            2,
            kernel_initializer=truncated_normal(self.config.initializer_range),
            dtype="float32",
            name="span_head",
        )
        self._span_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.compile()  # the defaults below; compile() again to change them

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.span_head.build((None, None, self.config.hidden_size))
        self.built = True

    def head_checkpoint_weights(self):
        # run_squad.py's span head, in transformers' name.
        return checkpoint_names.dense("qa_outputs", self.span_head)

    def call(self, inputs, training=None):
        sequence = self.backbone(inputs, training=training)["sequence_output"]
        logits = self.span_head(sequence)
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = ops.not_equal(inputs["token_ids"], 0)
        logits = ops.where(
            ops.cast(padding_mask, "bool")[..., None], logits, _MASKED_LOGIT
        )
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

    def compile(self, optimizer="auto", **kwargs):
        if optimizer == "auto":
            optimizer = FusedAdamW(3e-5)
        super().compile(optimizer=optimizer, **kwargs)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        for key in ("start_positions", "end_positions"):
            if key not in y:
                raise ValueError(
                    "BertQuestionAnswerer targets must be a dict with "
                    f"'start_positions' and 'end_positions'; missing {key!r}."
                )
        start = self._span_loss(y["start_positions"], y_pred["start_logits"])
        end = self._span_loss(y["end_positions"], y_pred["end_logits"])
        return (start + end) / 2.0

    def prepare_text(self, x, y, sample_weight):
        if isinstance(x, list) and all(
            isinstance(item, (tuple, list)) and len(item) == 2 for item in x
        ):
            x = tuple(list(column) for column in zip(*x))
        return x, y, sample_weight

    def predict_text(
        self, questions, contexts, batch_size=None, max_answer_length=30, n_best_size=20
    ):
        """Finds each question's answer span in its context.

        Windows of a long context are scored together, with
        google-research/bert's answer search (`data.squad_predictions`).

        Args:
            questions, contexts: equally long lists of strings.
            batch_size: questions per batch (default 32).
            max_answer_length: longest answer, in word pieces.
            n_best_size: candidates kept per window.

        Returns:
            One `Answer` per question.
        """
        from keras_bert_impl.data import squad
        from keras_bert_impl.data.squad_postprocess import squad_predictions
        from keras_bert_impl.models import text_datasets

        if self.preprocessor is None:
            raise ValueError(
                "predict_text needs a preprocessor: build the model with "
                "from_preset(checkpoint) or pass preprocessor=."
            )
        questions = [_as_str(q) for q in questions]
        contexts = [_as_str(c) for c in contexts]
        if len(questions) != len(contexts):
            raise ValueError(
                f"Got {len(questions)} questions for {len(contexts)} contexts."
            )
        self._check_inputs((questions, contexts), "predict_text")
        answers, offset = [], 0
        batches = text_datasets.encoded_batches(
            self.preprocessor, (questions, contexts), batch_size
        )
        for batch in batches:
            count = int(batch["example_index"].max()) + 1
            examples = tuple(
                squad.SquadExample(
                    str(i), questions[offset + i], contexts[offset + i], (), False
                )
                for i in range(count)
            )
            inputs = {
                key: batch[key] for key in MODEL_INPUTS
            }
            logits = self.predict_on_batch(inputs)
            features = _span_features(batch, examples)
            predictions = squad_predictions(
                features,
                np.asarray(logits["start_logits"]),
                np.asarray(logits["end_logits"]),
                n_best_size=n_best_size,
                max_answer_length=max_answer_length,
            )
            for example in examples:
                best = predictions.nbest[example.qas_id][0]
                answers.append(
                    Answer(
                        best["text"],
                        best.get("start_char", -1),
                        best.get("end_char", -1),
                        float(best["probability"]),
                    )
                )
            offset += count
        return answers


def _as_str(text):
    # The text is tokenized as given here, so spans index into this str.
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _span_features(batch, examples):
    """`SquadFeatures` of one encoded batch: byte spans → character spans."""
    from keras_bert_impl.data import squad

    start_char = np.full(batch["start_byte"].shape, -1, np.int32)
    end_char = np.full(batch["end_byte"].shape, -1, np.int32)
    for window, index in enumerate(batch["example_index"]):
        context = examples[index].context
        in_context = batch["start_byte"][window] >= 0
        starts, ends = squad.char_spans(
            context,
            batch["start_byte"][window][in_context],
            batch["end_byte"][window][in_context],
        )
        start_char[window, in_context] = starts
        end_char[window, in_context] = ends
    zeros = np.zeros(len(batch["example_index"]), np.int32)
    return squad.SquadFeatures(
        token_ids=batch["token_ids"],
        segment_ids=batch["segment_ids"],
        padding_mask=batch["padding_mask"],
        start_positions=zeros,
        end_positions=zeros,
        example_index=batch["example_index"],
        token_start_char=start_char,
        token_end_char=end_char,
        token_is_max_context=batch["is_max_context"],
        examples=examples,
    )
