"""Span logits of every window → each question's best answer, inside an exported graph.

The same search as `data.squad_postprocess.squad_predictions` (google-research/bert's
`write_predictions`, SQuAD v1.1): the `n_best_size` highest start and end logits
of every window are paired; pairs outside the context, reversed, longer than
`max_answer_length` pieces, or starting on a piece whose best context is another
window are dropped; the rest are ranked by `start_logit + end_logit` over all of
the question's windows (float64 sums, ties to the earlier window, start and end
rank). The answer is the best span; its score is its softmax probability among
the `n_best_size` best distinct answer texts. A question with no valid span
answers "" at -1, -1 with score 1, as the reference does.
"""

import tensorflow as tf


def _ranked_first(scores, groups, num_groups):
    """Per group, the index of its highest score (the first on a tie), or -1."""
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    count = tf.shape(order)[0]
    rank = tf.math.unsorted_segment_min(
        tf.range(count), tf.gather(groups, order), num_groups
    )
    # An appended -1 answers the groups without a score (also when none has one).
    return tf.gather(tf.concat([order, [-1]], 0), tf.minimum(rank, count))


def best_answers(
    windows,
    start_logits,
    end_logits,
    contexts,
    start_char,
    end_char,
    n_best_size,
    max_answer_length,
):
    """Each question's answer.

    Args:
        windows: `data.squad_windows` outputs (`example_index`, `context_piece`,
            `is_max_context`) plus `start_byte` / `end_byte`, over windows.
        start_logits, end_logits: float `[windows, seq]`.
        contexts: tf.string `[questions]`.
        start_char, end_char: int32 `[windows, seq]`, each context piece's
            character span in its context (-1 elsewhere).
        n_best_size, max_answer_length: as in `squad_predictions`.

    Returns:
        dict over questions: `answer` (tf.string), `start_char`, `end_char`
        (int32, `context[start_char:end_char] == answer`), `score` (float32).
    """
    num_questions = tf.shape(contexts)[0]
    length = tf.shape(start_logits)[1]
    k = tf.minimum(n_best_size, length)
    _, top_start = tf.math.top_k(start_logits, k)
    _, top_end = tf.math.top_k(end_logits, k)
    in_context = windows["context_piece"] >= 0
    start_ok = tf.gather(in_context, top_start, batch_dims=1) & tf.gather(
        windows["is_max_context"], top_start, batch_dims=1
    )
    end_ok = tf.gather(in_context, top_end, batch_dims=1)
    span = top_end[:, None, :] - top_start[:, :, None] + 1
    valid = (
        start_ok[:, :, None]
        & end_ok[:, None, :]
        & (span >= 1)
        & (span <= max_answer_length)
    )
    # Candidates in the reference's order: window, start rank, end rank.
    at = tf.cast(tf.where(valid), tf.int32)
    window = at[:, 0]
    start = tf.stack([window, tf.gather_nd(top_start, at[:, :2])], 1)
    end = tf.stack([window, tf.gather_nd(top_end, tf.stack([window, at[:, 2]], 1))], 1)
    score = tf.cast(tf.gather_nd(start_logits, start), tf.float64) + tf.cast(
        tf.gather_nd(end_logits, end), tf.float64
    )
    question = tf.gather(windows["example_index"], window)
    first_byte = tf.gather_nd(windows["start_byte"], start)
    text = tf.strings.substr(
        tf.gather(contexts, question),
        first_byte,
        tf.gather_nd(windows["end_byte"], end) - first_byte,
    )

    best = _ranked_first(score, question, num_questions)
    found = best >= 0

    def pick(values, fill):
        """values [candidates] → the best candidate's per question, else fill."""
        padded = tf.concat([values, tf.fill([1], tf.constant(fill, values.dtype))], 0)
        return tf.gather(padded, tf.where(found, best, tf.shape(values)[0]))

    best_score = pick(score, 0.0)

    # The softmax over the n_best_size best distinct texts of each question.
    key = tf.strings.join(
        [tf.strings.as_string(question, width=11, fill="0"), text], separator=":"
    )
    distinct, text_id = tf.unique(key)
    num_texts = tf.shape(distinct)[0]
    text_score = tf.math.unsorted_segment_max(score, text_id, num_texts)
    text_question = tf.math.unsorted_segment_max(question, text_id, num_texts)
    by_score = tf.argsort(text_score, direction="DESCENDING", stable=True)
    order = tf.gather(
        by_score, tf.argsort(tf.gather(text_question, by_score), stable=True)
    )
    ordered_question = tf.gather(text_question, order)
    first = tf.math.unsorted_segment_min(
        tf.range(num_texts), ordered_question, num_questions
    )
    rank = tf.range(num_texts) - tf.gather(first, ordered_question)
    weight = tf.where(
        rank < n_best_size,
        tf.exp(tf.gather(text_score, order) - tf.gather(best_score, ordered_question)),
        0.0,
    )
    total = tf.math.unsorted_segment_sum(weight, ordered_question, num_questions)
    probability = tf.where(found, 1.0 / tf.where(found, total, 1.0), 1.0)
    return {
        "answer": pick(text, ""),
        "start_char": pick(tf.gather_nd(start_char, start), -1),
        "end_char": pick(tf.gather_nd(end_char, end), -1),
        "score": tf.cast(probability, tf.float32),
    }
