"""Packs one or two token segments into BERT inputs: [CLS] A [SEP] (B [SEP]), padded.

Uses core TensorFlow ops only (no tf-text trimmer), so a serving graph that packs needs
no TF Serving release newer than its tokenizer does. (tf-text's RoundRobinTrimmer runs
the RoundRobinTrim op, which TF Serving links only from 2.20 on.)

The layout, the truncation budget (`content_length`), the truncation rule
(`longest_first_lengths`) and the placement of per-piece values at packed positions
(`place_in_rows`) live here only. The task readers and preprocessors pack through the
`Packer` (`text.model_inputs.encode_texts`, `data.word_alignment`, `data.squad_windows`,
`data.next_sentence_pairs`). What stays separate, on purpose:
- `data.pretraining.pack_spans` writes the same layout in NumPy (its worker processes
  stay off TensorFlow, and its spans come straight out of a flat corpus); its
  truncation counts come from `longest_first_lengths`, and a test holds its rows equal
  to the Packer's.
- Random-end truncation draws its front/back split from the Packer's
  `tf.random.Generator` in the graph, and from Python's `random` in the static recipe,
  whose files must stay byte-identical for a seed: the same Binomial(n, 1/2), two
  random sources.
- Words that do not fit are dropped from a text's one row (`data.word_alignment`,
  the token classifier's `call`) or start its next window of whole words
  (`text.word_windows`: CoNLL rows, `predict_text`, the exported tagger), so no word
  loses its label; SQuAD windows slide over the context instead of truncating it.
"""

import tensorflow as tf

# Plain graph code without Python control flow on tensors: tracing it through autograph
# only costs time.
_NOT_CONVERTED = tf.autograph.experimental.do_not_convert

TRUNCATIONS = ("longest_first", "random")
# Smallest bucket of "auto" length bucketing; then doubling up to the packer's length.
_FIRST_BUCKET = 16


def bucket_lengths_for(seq_length, first=_FIRST_BUCKET):
    """Default buckets: 16, 32, 64, ... below `seq_length`, then `seq_length` itself."""
    lengths, length = [], first
    while length < seq_length:
        lengths.append(length)
        length *= 2
    return tuple(lengths) + (seq_length,)


# Step of the serving exports' buckets: on a CPU server a request costs in proportion to
# its padded length (every shape runs equally fast), so buckets this fine save most of
# the padding while keeping the shapes few (warm-up, oneDNN's primitive cache, XLA).
def parse_bucket_lengths(value):
    """`--bucket_lengths` as every command reads it: unset, empty or "none"
    -> None (fixed padding); "auto" -> "auto"; "16,32,64" -> [16, 32, 64]."""
    if value is None or not value.strip() or value.strip().lower() == "none":
        return None
    if value.strip() == "auto":
        return "auto"
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"--bucket_lengths={value!r} must be 'none', 'auto' or comma-separated "
            "integers such as 16,32,64."
        ) from None


SERVING_BUCKET_STEP = 8


def serving_bucket_lengths(seq_length, step=SERVING_BUCKET_STEP):
    """Buckets of an exported graph: step, 2·step, ... below `seq_length`, then it."""
    return tuple(range(step, seq_length, step)) + (seq_length,)


def _as_segment(segment):
    """Returns (RaggedTensor int32 [batch, (tokens)], whether the input was one 1-D sequence)."""
    if not isinstance(segment, tf.RaggedTensor):
        segment = tf.convert_to_tensor(segment)
        if segment.shape.rank == 1:
            return tf.RaggedTensor.from_tensor(tf.expand_dims(segment, 0)), True
        if segment.shape.rank != 2:
            raise ValueError(
                f"Packer segments must be [batch, (tokens)] or one 1-D sequence, "
                f"got shape {segment.shape}."
            )
        segment = tf.RaggedTensor.from_tensor(segment)
    if segment.ragged_rank != 1 or segment.shape.rank != 2:
        raise ValueError(
            f"Packer segments must be RaggedTensors [batch, (tokens)], got shape {segment.shape}."
        )
    if not segment.dtype.is_integer:
        raise TypeError(
            f"Packer segments must hold integer ids, got {segment.dtype.name}."
        )
    return tf.cast(segment, tf.int32), False


def content_length(seq_length, num_segments):
    """Tokens of `num_segments` segments that fit in `seq_length` beside [CLS] and one
    [SEP] per segment: the truncation budget of every packed layout."""
    return seq_length - num_segments - 1


def longest_first_lengths(length_a, length_b, budget, minimum=min, maximum=max):
    """Kept lengths when tokens go one at a time from the currently longer segment.

    The longer segment loses a token while the total exceeds the budget; on a tie the
    last segment loses it (google-research/bert's truncate_seq_pair and transformers'
    "longest_first" agree on this), so A ends with ceil(budget / 2) when both are long.
    The closed form needs no branch (when both fit it gives both lengths back), so
    it serves Python ints (the static pretraining recipe) as well as tensors (pass
    `tf.minimum`, `tf.maximum`).

    Returns:
        `(keep_a, keep_b)`.
    """
    keep_a = minimum(length_a, maximum(budget - length_b, (budget + 1) // 2))
    return keep_a, minimum(length_b, budget - keep_a)


def _longest_first_lengths(lengths, budget):
    if len(lengths) == 1:
        return [tf.minimum(lengths[0], budget)]
    return list(longest_first_lengths(*lengths, budget, tf.minimum, tf.maximum))


def place_in_rows(values, offsets, fill, width):
    """Lays per-piece values out at their packed positions.

    Row i of the result holds `fill`, then `values[i]` from column `offsets[i]` on,
    then `fill` up to `width` (values past `width` are cut): how labels and maps
    back to the text line up with the packer's `token_ids`.

    Args:
        values: RaggedTensor `[batch, (n)]`.
        offsets: int `[batch]`, the column of each row's first value (1 after
            [CLS]; past the first segment and its [SEP] for the second).
        fill: the value of every other column.
        width: the packed width: an int, or a scalar tensor (batch-length packing,
            or the bucket a bucketing packer padded to).

    Returns:
        A dense `[batch, width]` tensor of `values.dtype`.
    """
    offsets = tf.cast(offsets, tf.int64)
    prefix = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(offsets)], tf.cast(fill, values.dtype)), offsets
    )
    framed = tf.concat([prefix, values], axis=1)
    if isinstance(width, int):
        return framed.to_tensor(default_value=fill, shape=[None, width])
    width = tf.cast(width, tf.int32)
    dense = framed.to_tensor(default_value=fill)[:, :width]
    missing = width - tf.shape(dense)[1]
    return tf.pad(dense, [[0, 0], [0, missing]], constant_values=fill)


class Packer(tf.Module):
    """Packs token ids into fixed-length (or batch-length) BERT inputs.

    Args:
        seq_length: output length including [CLS]/[SEP]; None pads to the longest packed
            sequence of each batch and never truncates.
        cls_id: id of [CLS].
        sep_id: id of [SEP].
        pad_id: id used for padding.
        truncation: "longest_first" trims the currently longer segment from its end (for
            fine-tuning and serving); "random" trims the longer segment token by token
            from a random end, like google-research/bert's pretraining data.
        seed: seed of the random truncation (None: nondeterministic).
        bucket_lengths: None pads every batch to `seq_length`. "auto" or a list of
            lengths pads each batch to the longest packed sequence in it rounded up to
            the next bucket (never above `seq_length`, which is always a bucket):
            truncation is unchanged, so the real positions are identical to fixed
            padding, and a model that masks padding gives the same outputs on them
            for a fraction of the work when texts are short. "auto" is 16, 32, 64, ...
            up to `seq_length`; few lengths keep graph retracing and XLA
            recompilation rare.
        name: module name.
    """

    def __init__(
        self,
        seq_length,
        cls_id,
        sep_id,
        pad_id=0,
        truncation="longest_first",
        seed=None,
        bucket_lengths=None,
        name=None,
    ):
        super().__init__(name=name)
        if truncation not in TRUNCATIONS:
            raise ValueError(
                f"truncation must be one of {TRUNCATIONS}, got {truncation!r}."
            )
        if seq_length is not None and int(seq_length) < 2:
            raise ValueError(
                f"seq_length must be >= 2 ([CLS] and [SEP]), got {seq_length}."
            )
        self.seq_length = None if seq_length is None else int(seq_length)
        self.cls_id = int(cls_id)
        self.sep_id = int(sep_id)
        self.pad_id = int(pad_id)
        self.truncation = truncation
        self.bucket_lengths = self._checked_buckets(bucket_lengths)
        self._generator = None
        if truncation == "random":
            self._generator = (
                tf.random.Generator.from_non_deterministic_state()
                if seed is None
                else tf.random.Generator.from_seed(seed)
            )

    def _checked_buckets(self, bucket_lengths):
        if bucket_lengths is None:
            return None
        if self.seq_length is None:
            raise ValueError(
                "bucket_lengths needs a seq_length (seq_length=None already pads to the "
                "longest sequence)."
            )
        if isinstance(bucket_lengths, str):
            if bucket_lengths != "auto":
                raise ValueError(
                    f'bucket_lengths must be None, "auto" or a list of lengths, got '
                    f"{bucket_lengths!r}."
                )
            return bucket_lengths_for(self.seq_length)
        lengths = sorted({int(length) for length in bucket_lengths})
        if not lengths or lengths[0] < 2 or lengths[-1] > self.seq_length:
            raise ValueError(
                f"bucket_lengths must be between 2 and seq_length={self.seq_length}, got "
                f"{list(bucket_lengths)}."
            )
        if lengths[-1] != self.seq_length:
            lengths.append(self.seq_length)
        return tuple(lengths)

    def _padded_length(self, total):
        """Width to pad to, from the packed length of each row: fixed, the batch's
        bucket, or its longest row."""
        if self.seq_length is not None and self.bucket_lengths is None:
            return self.seq_length
        longest = tf.reduce_max(tf.concat([total, tf.zeros([1], total.dtype)], 0))
        if self.seq_length is None:
            return longest
        buckets = tf.constant(self.bucket_lengths, tf.int64)
        # The first bucket that holds the longest row (an empty batch takes the first).
        return tf.reduce_min(tf.boolean_mask(buckets, buckets >= longest))

    @classmethod
    def from_tokenizer(cls, tokenizer, seq_length, **kwargs):
        """A Packer that uses the [CLS], [SEP] and [PAD] ids of `tokenizer`."""
        return cls(
            seq_length,
            cls_id=tokenizer.cls_id,
            sep_id=tokenizer.sep_id,
            pad_id=tokenizer.pad_id,
            **kwargs,
        )

    def _front_cuts(self, removed, seed=None):
        """How many of each segment's removed tokens come off its front."""
        if self.truncation == "longest_first":
            return [tf.zeros_like(count) for count in removed]
        # Each removed token leaves from either end with probability 1/2: the number that
        # leaves from the front is binomial.
        counts = tf.cast(tf.stack(removed), tf.float32)
        halves = tf.fill(tf.shape(counts), 0.5)
        if seed is None:
            cuts = self._generator.binomial(tf.shape(counts), counts, halves)
        else:
            cuts = tf.random.stateless_binomial(
                tf.shape(counts), tf.cast(seed, tf.int64), counts, halves
            )
        return tf.unstack(tf.cast(cuts, tf.int64), num=len(removed))

    def _place(self, segments):
        """Writes [CLS] A [SEP] (B [SEP]) into dense rows with one scatter.

        Dense positions are computed from the segments' lengths: building the rows by
        concatenating ragged pieces would cost a serving graph hundreds of ops, among
        them the runtime shape assertions of ragged concatenation."""
        dtype = segments[0].dtype
        batch = segments[0].nrows()
        rows = tf.range(tf.cast(batch, tf.int64))
        # Each segment starts after [CLS] and everything before it with its [SEP].
        lengths = [tf.cast(segment.row_lengths(), tf.int64) for segment in segments]
        starts, end = [], tf.ones([batch], tf.int64)
        for length in lengths:
            starts.append(end)
            end = end + length + 1
        row_parts, position_parts = [rows], [tf.zeros([batch], tf.int64)]
        value_parts = [tf.fill([batch], tf.constant(self.cls_id, dtype))]
        for segment, start, length in zip(segments, starts, lengths):
            segment_rows = tf.cast(segment.value_rowids(), tf.int64)
            row_parts += [segment_rows, rows]
            position_parts += [
                tf.ragged.range(length).values + tf.gather(start, segment_rows),
                start + length,
            ]
            value_parts += [
                segment.values,
                tf.fill([batch], tf.constant(self.sep_id, dtype)),
            ]
        width = self._padded_length(end)
        indices = tf.stack([tf.concat(row_parts, 0), tf.concat(position_parts, 0)], 1)
        token_ids = tf.tensor_scatter_nd_update(
            tf.fill(
                tf.stack([batch, tf.cast(width, tf.int64)]),
                tf.constant(self.pad_id, dtype),
            ),
            indices,
            tf.concat(value_parts, 0),
        )
        position = tf.range(tf.cast(width, tf.int64), dtype=tf.int64)[tf.newaxis]
        real = position < end[:, tf.newaxis]
        second = (
            real & (position >= starts[-1][:, tf.newaxis])
            if len(segments) == 2
            else None
        )
        return {
            "token_ids": token_ids,
            "segment_ids": tf.cast(second, dtype)
            if second is not None
            else tf.zeros_like(token_ids),
            "padding_mask": tf.cast(real, dtype),
        }

    def _truncate(self, segments, seed=None):
        if self.seq_length is None:
            return segments
        budget = tf.constant(content_length(self.seq_length, len(segments)), tf.int64)
        lengths = [segment.row_lengths() for segment in segments]
        kept = _longest_first_lengths(lengths, budget)
        removed = [length - keep for length, keep in zip(lengths, kept)]
        fronts = self._front_cuts(removed, seed)
        truncated = []
        for segment, keep, front in zip(segments, kept, fronts):
            # On the flat values: broadcasting [batch, 1] against a ragged tensor builds
            # a dynamic ragged shape, seconds of tracing per call.
            position = tf.ragged.range(segment.row_lengths()).values
            rows = segment.value_rowids()
            first = tf.gather(front, rows)
            mask = (position >= first) & (position < first + tf.gather(keep, rows))
            truncated.append(
                tf.RaggedTensor.from_row_lengths(
                    tf.boolean_mask(segment.values, mask), keep, validate=False
                )
            )
        return truncated

    @_NOT_CONVERTED
    def __call__(self, inputs, seed=None):
        """Packs segments.

        Args:
            inputs: ids of segment A, or a tuple (A, B); each a RaggedTensor [batch,
                (tokens)] (a dense [batch, tokens] is taken as full rows) or a 1-D tensor
                for a single example. Special tokens must not be included.
            seed: optional int `[2]`: "random" truncation then draws statelessly from
                it instead of the packer's generator (the same seed, the same cuts).

        Returns:
            dict of int32 tensors [batch, length] ([length] for a single example), length
            being seq_length, the batch's bucket (`bucket_lengths`) or its longest row:
            token_ids, segment_ids (0 for [CLS] A [SEP], 1 for B [SEP]) and padding_mask
            (1 on real tokens, 0 on padding).
        """
        if isinstance(inputs, (tuple, list)):
            segments = list(inputs)
        else:
            segments = [inputs]
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"Packer takes one or two segments, got {len(segments)}.")
        if self.seq_length is not None and self.seq_length < len(segments) + 1:
            raise ValueError(
                f"seq_length {self.seq_length} cannot hold [CLS] and {len(segments)} [SEP]."
            )
        converted = [_as_segment(segment) for segment in segments]
        segments = [segment for segment, _ in converted]
        single_example = converted[0][1]
        segments = self._truncate(segments, seed)

        outputs = self._place(segments)
        if single_example:
            return {key: value[0] for key, value in outputs.items()}
        return outputs
