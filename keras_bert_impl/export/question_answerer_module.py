"""Serving signatures of a `BertQuestionAnswerer`: question + context → the answer span.

A long context is cut into windows `doc_stride` pieces apart inside the graph,
by the code the model's preprocessor and the SQuAD reader pack with
(`data.squad_windows`); the best span over all windows is found in the graph as
well (`answer_search`), so the outputs equal `BertQuestionAnswerer.predict_text`.
"""

import tensorflow as tf

from keras_bert_impl.constants import MODEL_INPUTS
from keras_bert_impl.data.squad_windows import (
    check_window_settings,
    context_byte_spans,
    question_context_windows,
)
from keras_bert_impl.export.answer_search import best_answers
from keras_bert_impl.export.char_offsets import char_offsets
from keras_bert_impl.export.serving_modules import (
    TEXT_SPEC,
    ServingModule,
    ids_signature,
)
from keras_bert_impl.text.model_inputs import model_inputs


def default_window_settings(sequence_length):
    """(doc_stride, max_query_length) as the question-answerer preprocessor
    chooses them: run_squad.py's 128 and 64 at 384, in proportion below."""
    return min(128, sequence_length // 3), min(64, sequence_length // 6)


class QuestionAnswererModule(ServingModule):
    """A `BertQuestionAnswerer` (extractive QA, SQuAD v1.1 style).

    `serving_default` (`question`, `context`: `[batch]` strings) returns per
    question: `answer` (string), `start_char` / `end_char` (int32 character
    offsets: `context[start_char:end_char] == answer`; -1 when no span was
    found, then `answer` is ""), `score` (float32, the answer's probability
    among the `n_best_size` best distinct answers).

    `predict_ids` (token_ids, segment_ids, padding_mask of packed windows)
    returns `start_logits` and `end_logits` `[batch, seq]`.

    Args:
        model: the question answerer.
        text_inputs: its tokenizer and packer (`max_seq_length` is the window
            size; with length buckets, windows are padded to their bucket).
        doc_stride, max_query_length: run_squad.py's window settings.
        max_answer_length: longest answer, in word pieces.
        n_best_size: candidates kept per window (and texts in the softmax).
    """

    task = "question_answerer"

    def __init__(
        self,
        model,
        text_inputs,
        doc_stride=None,
        max_query_length=None,
        max_answer_length=30,
        n_best_size=20,
        name=None,
    ):
        super().__init__(model, text_inputs, name=name)
        stride, query = default_window_settings(text_inputs.max_seq_length)
        self.doc_stride = int(doc_stride or stride)
        self.max_query_length = int(max_query_length or query)
        check_window_settings(
            text_inputs.max_seq_length, self.doc_stride, self.max_query_length
        )
        if int(max_answer_length) < 1 or int(n_best_size) < 1:
            raise ValueError(
                f"max_answer_length and n_best_size must be >= 1, got "
                f"{max_answer_length} and {n_best_size}."
            )
        self.max_answer_length = int(max_answer_length)
        self.n_best_size = int(n_best_size)

        @tf.function(input_signature=[TEXT_SPEC, TEXT_SPEC], autograph=False)
        def serving_default(question, context):
            return self.text_outputs(question, context)

        self.serving_default = serving_default
        self.predict_ids = ids_signature(self.model_outputs)
        self.serving_signatures.update(
            serving_default=serving_default, predict_ids=self.predict_ids
        )

    def card(self):
        return {
            "doc_stride": self.doc_stride,
            "max_query_length": self.max_query_length,
            "max_answer_length": self.max_answer_length,
            "n_best_size": self.n_best_size,
        }

    @classmethod
    def from_card(cls, model, text_inputs, card):
        return cls(
            model,
            text_inputs,
            doc_stride=card["doc_stride"],
            max_query_length=card["max_query_length"],
            max_answer_length=card["max_answer_length"],
            n_best_size=card["n_best_size"],
        )

    def model_outputs(self, inputs):
        logits = self.model(inputs, training=False)
        return {
            "start_logits": tf.cast(logits["start_logits"], tf.float32),
            "end_logits": tf.cast(logits["end_logits"], tf.float32),
        }

    def windows(self, question, context):
        """The packed windows of each (question, context), with their context
        pieces' byte spans (see `data.squad_windows`)."""
        tokenizer = self.text_inputs.tokenizer
        context_ids, starts, ends = tokenizer.tokenize_with_offsets(context)
        windows = question_context_windows(
            tokenizer(question),
            context_ids,
            self.text_inputs.packer,
            self.doc_stride,
            self.max_query_length,
        )
        windows["start_byte"], windows["end_byte"] = context_byte_spans(
            windows, starts, ends
        )
        return windows

    def text_outputs(self, question, context):
        windows = self.windows(question, context)
        inputs = model_inputs(windows)
        logits = self.model_outputs(inputs)
        window_context = tf.gather(context, windows["example_index"])
        return best_answers(
            windows,
            logits["start_logits"],
            logits["end_logits"],
            context,
            char_offsets(window_context, windows["start_byte"]),
            char_offsets(window_context, windows["end_byte"]),
            self.n_best_size,
            self.max_answer_length,
        )

    def warmup_requests(self, texts):
        """Each text asks about a context made of all the texts (several windows
        when they are long), plus the token-id request of those windows."""
        texts = list(texts)
        contexts = [" ".join(texts[i:] + texts[:i]) for i in range(len(texts))]
        windows = self.windows(
            tf.constant([t.encode("utf-8") for t in texts]),
            tf.constant([c.encode("utf-8") for c in contexts]),
        )
        ids = {name: windows[name].numpy() for name in MODEL_INPUTS}
        return [
            ("serving_default", {"question": texts, "context": contexts}),
            ("predict_ids", ids),
        ]
