"""tf.Modules whose signatures take raw strings (or ids) and run a Keras task model.

Each module holds the model and a `TextInputs`, and defines its signatures as
tf.functions with fixed input specs: `[batch]` strings for text, `[batch, length]` int32
for ids. Outputs are dense and batch-major.
"""

import tensorflow as tf

from keras_bert_impl import internals

TEXT_SPEC = tf.TensorSpec([None], tf.string)
IDS_SPEC = tf.TensorSpec([None, None], tf.int32)
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def ids_signature(outputs_fn):
    """A tf.function on token_ids / segment_ids / padding_mask."""

    @tf.function(input_signature=[IDS_SPEC, IDS_SPEC, IDS_SPEC], autograph=False)
    def predict_ids(token_ids, segment_ids, padding_mask):
        return outputs_fn(
            {
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            }
        )

    return predict_ids


class _Untracked:
    """Holds an object out of SavedModel tracking (plain objects are not walked)."""

    def __init__(self, value):
        self.value = value


# Length groups of a large batch: its rows sorted by length and cut into this many groups,
# each padded to its own bucket and run on its own (see `ServingModule.row_outputs`).
LENGTH_GROUPS = 4
# Batches smaller than this run whole: for few rows the groups' fixed cost outweighs the
# padding they save.
MIN_GROUPED_BATCH = 8


class ServingModule(tf.Module):
    """Base: a model, its text inputs, and `serving_signatures` (name -> tf.function).

    `method_names` maps signatures that TF Serving's Classify/Regress APIs call to their
    method name (tf.saved_model.save writes every signature as a predict signature).
    """

    task = None
    # Whether every output has one row per input row (then a batch may run in length
    # groups); per-token outputs would come back at different widths.
    per_row_outputs = False

    def __init__(self, model, text_inputs, name=None):
        super().__init__(name=name)
        # Not tracked: saving a Keras model as a child writes a second copy of each
        # variable, and a session-based loader (TF Serving) restores the copies while the
        # graph reads the originals. `track_variables()` saves what the signatures read.
        self._model = _Untracked(model)
        self.text_inputs = text_inputs
        self.serving_signatures = {}
        self.method_names = {}  # plain dict attributes are tracked; these are strings only

    @property
    def model(self):
        return self._model.value

    def track_variables(self, options=None):
        """Tracks exactly the variables the traced signatures capture (call before saving
        with the same `tf.saved_model.SaveOptions`), as keras.export.ExportArchive does.

        The traces are made inside a save context: a tf.function's cache key includes
        the save options' variable policy, so a trace made outside one is traced again
        by `tf.saved_model.save` (twice the export time)."""
        options = options or tf.saved_model.SaveOptions()
        seen, variables = set(), []
        for function in self.serving_signatures.values():
            with internals.save_context(options):
                concrete = function.get_concrete_function()
            for variable in concrete.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        self.captured_variables = variables

    def model_outputs(self, inputs):
        """The signature's outputs for the model's input dict; each task defines it."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define model_outputs."
        )

    def card(self):
        """Task-specific entries of the model card (what `from_card` needs back)."""
        return {}

    def warmup_requests(self, texts):
        """[(signature, inputs)] of the Predict requests the warmup file holds, built
        from example texts (`export_module` adds Classify/Regress requests)."""
        texts = list(texts)
        requests = [("serving_default", {"text": texts})]
        if "predict_pair" in self.serving_signatures:
            requests.append(
                ("predict_pair", {"text": texts, "text_pair": texts[::-1]})
            )
        ids = self.text_inputs(tf.constant([t.encode("utf-8") for t in texts]))
        requests.append(("predict_ids", {k: v.numpy() for k, v in ids.items()}))
        return requests

    @classmethod
    def from_card(cls, model, text_inputs, card):
        """Rebuilds the module around `model` from an export's model card."""
        return cls(model, text_inputs)

    def row_outputs(self, segments):
        """`model_outputs` of tokenized segments (a RaggedTensor, or a pair of them).

        A batch of `MIN_GROUPED_BATCH` rows or more, of a module whose outputs are per
        row, runs as `LENGTH_GROUPS` groups of rows of similar length, each packed to
        its own bucket: a batch padded to its longest row computes mostly padding when
        lengths vary (SST-2: median 10 tokens, longest 62), and the groups are
        independent, so the server's inter-op threads run them side by side. Rows come
        back in their input order."""

        def pack_and_run(rows):
            return self.model_outputs(self.text_inputs.pack(rows))

        if not self.per_row_outputs:
            return pack_and_run(segments)
        parts = list(segments) if isinstance(segments, (tuple, list)) else [segments]
        lengths = tf.add_n([part.row_lengths() for part in parts])
        batch = tf.shape(lengths)[0]

        def grouped():
            order = tf.argsort(lengths, stable=True)
            outputs = []
            for group in range(LENGTH_GROUPS):
                rows = order[batch * group // LENGTH_GROUPS : batch * (group + 1) // LENGTH_GROUPS]
                taken = [tf.gather(part, rows) for part in parts]
                outputs.append(pack_and_run(tuple(taken) if len(taken) > 1 else taken[0]))
            back = tf.math.invert_permutation(order)
            return {
                key: tf.gather(tf.concat([o[key] for o in outputs], 0), back)
                for key in outputs[0]
            }

        return tf.cond(batch >= MIN_GROUPED_BATCH, grouped, lambda: pack_and_run(segments))

    def _add_text_signatures(self, pair=True):
        outputs_fn = self.model_outputs

        @tf.function(input_signature=[TEXT_SPEC], autograph=False)
        def serving_default(text):
            return self.row_outputs(self.text_inputs.tokenize(text))

        self.serving_default = serving_default
        self.predict_ids = ids_signature(outputs_fn)
        self.serving_signatures.update(
            serving_default=serving_default, predict_ids=self.predict_ids
        )
        if pair:

            @tf.function(input_signature=[TEXT_SPEC, TEXT_SPEC], autograph=False)
            def predict_pair(text, text_pair):
                return self.row_outputs(
                    (self.text_inputs.tokenize(text), self.text_inputs.tokenize(text_pair))
                )

            self.predict_pair = predict_pair
            self.serving_signatures["predict_pair"] = predict_pair


class ClassifierModule(ServingModule):
    """A `BertClassifier`: probabilities, label_id, label; or score for regression.

    Signatures: serving_default (text), predict_pair (text, text_pair), predict_ids, and
    classify (or regress) on serialized tf.Examples with a "text" feature and an optional
    "text_pair" feature (a batch with any non-empty text_pair is packed as pairs).
    """

    task = "classifier"
    per_row_outputs = True

    def __init__(self, model, text_inputs, labels=None, name=None):
        super().__init__(model, text_inputs, name=name)
        self.regression = model.num_classes == 1
        if labels is None:
            labels = getattr(model, "label_names", None) or [
                str(i) for i in range(model.num_classes)
            ]
        labels = [str(label) for label in labels]
        if not self.regression and len(labels) != model.num_classes:
            raise ValueError(
                f"{len(labels)} labels given for a classifier with "
                f"num_classes={model.num_classes}."
            )
        self.labels = labels
        self._label_strings = tf.constant(labels if not self.regression else [""])
        self._add_text_signatures(pair=True)
        self._add_example_signature()

    def card(self):
        return {"labels": self.labels, "regression": self.regression}

    @classmethod
    def from_card(cls, model, text_inputs, card):
        return cls(model, text_inputs, labels=card.get("labels"))

    def model_outputs(self, inputs):
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        if self.regression:
            return {"score": logits[:, 0]}
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "label_id": label_id,
            "label": tf.gather(self._label_strings, label_id),
        }

    def _add_example_signature(self):
        features = {
            "text": tf.io.FixedLenFeature([], tf.string),
            "text_pair": tf.io.FixedLenFeature([], tf.string, default_value=""),
        }

        def encode(serialized):
            parsed = tf.io.parse_example(serialized, features)
            text, pair = parsed["text"], parsed["text_pair"]
            first = self.text_inputs.tokenize(text)
            second = self.text_inputs.tokenize(pair)
            # Both branches give the same dict structure; widths may differ.
            return tf.cond(
                tf.reduce_any(tf.strings.length(pair) > 0),
                lambda: self.text_inputs.pack((first, second)),
                lambda: self.text_inputs.pack(first),
            )

        if self.regression:

            @tf.function(input_signature=[TEXT_SPEC], autograph=False)
            def regress(inputs):
                return {"outputs": self.model_outputs(encode(inputs))["score"]}

            self.regress = regress
            self.serving_signatures["regress"] = regress
            self.method_names["regress"] = REGRESS_METHOD
        else:

            @tf.function(input_signature=[TEXT_SPEC], autograph=False)
            def classify(inputs):
                outputs = self.model_outputs(encode(inputs))
                scores = outputs["probabilities"]
                classes = tf.tile(
                    self._label_strings[tf.newaxis], [tf.shape(scores)[0], 1]
                )
                return {"classes": classes, "scores": scores}

            self.classify = classify
            self.serving_signatures["classify"] = classify
            self.method_names["classify"] = CLASSIFY_METHOD


class EmbeddingsModule(ServingModule):
    """A `BertBackbone`: pooled_output and the mean of the token vectors over real tokens
    (`embedding`, L2-normalised when `normalize`)."""

    task = "embeddings"
    per_row_outputs = True

    def __init__(self, model, text_inputs, normalize=True, name=None):
        super().__init__(model, text_inputs, name=name)
        self.normalize = bool(normalize)
        self._add_text_signatures(pair=False)

    def card(self):
        return {"normalize": self.normalize}

    @classmethod
    def from_card(cls, model, text_inputs, card):
        return cls(model, text_inputs, normalize=card.get("normalize", True))

    def model_outputs(self, inputs):
        outputs = self.model(inputs, training=False)
        sequence = tf.cast(outputs["sequence_output"], tf.float32)
        mask = tf.cast(inputs["padding_mask"], tf.float32)[:, :, tf.newaxis]
        total = tf.reduce_sum(sequence * mask, axis=1)
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        embedding = total / count
        if self.normalize:
            embedding = tf.math.l2_normalize(embedding, axis=-1)
        return {
            "pooled_output": tf.cast(outputs["pooled_output"], tf.float32),
            "embedding": embedding,
        }


class FillMaskModule(ServingModule):
    """A `BertPretrainer`'s masked-LM head: every "[MASK]" in the text -> its `top_k` tokens.

    Outputs ([batch, masks, top_k], masks = the most "[MASK]"s of any text in the batch,
    at least 1): `tokens` (strings), `token_ids`, `scores` (probabilities); and
    `num_masks` [batch]. Slots past a text's own `num_masks` hold "", -1 and 0.
    """

    task = "fill_mask"

    def __init__(self, model, text_inputs, top_k=5, name=None):
        super().__init__(model, text_inputs, name=name)
        tokenizer = text_inputs.tokenizer
        self.top_k = min(int(top_k), tokenizer.vocab_size)
        self._mask_id = tokenizer.mask_id
        self._vocabulary = tf.constant(tokenizer.vocabulary)
        self._add_text_signatures(pair=False)

    def card(self):
        return {"top_k": self.top_k}

    @classmethod
    def from_card(cls, model, text_inputs, card):
        return cls(model, text_inputs, top_k=card.get("top_k", 5))

    def model_outputs(self, inputs):
        token_ids = inputs["token_ids"]
        where = tf.where(tf.equal(token_ids, self._mask_id))
        positions = tf.RaggedTensor.from_value_rowids(
            tf.cast(where[:, 1], tf.int32),
            where[:, 0],
            nrows=tf.shape(token_ids, tf.int64)[0],
        )
        num_masks = tf.cast(positions.row_lengths(), tf.int32)
        width = tf.maximum(tf.reduce_max(tf.concat([num_masks, [0]], 0)), 1)
        dense_positions = positions.to_tensor(default_value=0, shape=[None, None])
        dense_positions = tf.pad(
            dense_positions, [[0, 0], [0, width - tf.shape(dense_positions)[1]]]
        )
        logits = self.model(
            dict(inputs, mask_positions=dense_positions), training=False
        )["mlm_logits"]
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        scores, ids = tf.math.top_k(probabilities, k=self.top_k)
        real = (tf.range(width)[tf.newaxis, :] < num_masks[:, tf.newaxis])[
            :, :, tf.newaxis
        ]
        real = tf.broadcast_to(real, tf.shape(ids))
        return {
            "tokens": tf.where(real, tf.gather(self._vocabulary, ids), ""),
            "token_ids": tf.where(real, ids, -1),
            "scores": tf.where(real, scores, 0.0),
            "num_masks": num_masks,
        }


__all__ = [
    "ClassifierModule",
    "EmbeddingsModule",
    "FillMaskModule",
    "IDS_SPEC",
    "ServingModule",
    "TEXT_SPEC",
    "ids_signature",
]
