"""Start/end logits → SQuAD answer strings, and the official EM / F1 metrics.

The search follows google-research/bert's `write_predictions`: the
`n_best_size` highest start and end logits of every window are paired, pairs
outside the context, reversed, longer than `max_answer_length` pieces, or
starting on a piece whose best context is another window are dropped, and
the rest are ranked by `start_logit + end_logit` across the example's
windows. For SQuAD v2.0 the null answer scores `start_logit[0] +
end_logit[0]` (the [CLS] position, lowest over windows) and wins when it beats
the best span by more than `null_score_diff_threshold`.

Answer text is the exact context substring between the first piece's start
and the last piece's end character (no re-tokenization heuristics).
"""

import collections
import dataclasses
import re
import string

import numpy as np


@dataclasses.dataclass(frozen=True)
class SquadPredictions:
    """Predictions keyed by question id.

    Attributes:
        answers: the chosen answer text ("" = no answer).
        nbest: ranked candidates, each a dict with `text`, `start_logit`,
            `end_logit`, `probability` (softmax over the candidates) and, for
            spans, `start_char` / `end_char` (`context[start_char:end_char]`).
        null_score_diff: null score minus best span score (v2.0 only; tune
            `null_score_diff_threshold` on it).
    """

    answers: dict
    nbest: dict
    null_score_diff: dict


def _top_indices(logits, count):
    return np.argsort(-logits, kind="stable")[:count]


def _softmax(scores):
    if not scores:
        return []
    scores = np.asarray(scores, dtype=np.float64)
    exp = np.exp(scores - scores.max())
    return (exp / exp.sum()).tolist()


def squad_predictions(
    features,
    start_logits,
    end_logits,
    *,
    n_best_size=20,
    max_answer_length=30,
    version_2_with_negative=False,
    null_score_diff_threshold=0.0,
):
    """Picks each question's answer from the model's span logits.

    Args:
        features: the `SquadFeatures` the logits were computed on.
        start_logits, end_logits: `[num_features, seq]`, in feature order.
        n_best_size: candidates kept per window and per question.
        max_answer_length: longest answer, in pieces.
        version_2_with_negative: allow "no answer" (SQuAD v2.0).
        null_score_diff_threshold: predict "" when the null score exceeds
            the best span score by more than this.

    Returns:
        `SquadPredictions`.
    """
    start_logits = np.asarray(start_logits, dtype=np.float32)
    end_logits = np.asarray(end_logits, dtype=np.float32)
    expected = features.token_ids.shape
    if start_logits.shape != expected or end_logits.shape != expected:
        raise ValueError(
            f"Expected logits of shape {expected} (one row per feature), got "
            f"{start_logits.shape} and {end_logits.shape}."
        )
    by_example = collections.defaultdict(list)
    for row, index in enumerate(features.example_index):
        by_example[int(index)].append(row)
    answers, nbest, null_diff = {}, {}, {}
    for index, example in enumerate(features.examples):
        candidates, null = _candidates(
            features,
            by_example[index],
            start_logits,
            end_logits,
            n_best_size,
            max_answer_length,
        )
        ranked = _rank(candidates, example.context, n_best_size)
        if version_2_with_negative:
            if not any(c["text"] == "" for c in ranked):
                ranked.append(
                    {"text": "", "start_logit": null[0], "end_logit": null[1]}
                )
            ranked.sort(key=lambda c: c["start_logit"] + c["end_logit"], reverse=True)
            ranked = ranked[:n_best_size]
        if not ranked:
            ranked = [{"text": "", "start_logit": 0.0, "end_logit": 0.0}]
        probabilities = _softmax([c["start_logit"] + c["end_logit"] for c in ranked])
        for candidate, probability in zip(ranked, probabilities):
            candidate["probability"] = probability
        best_span = next((c for c in ranked if c["text"]), None)
        answer = best_span["text"] if best_span else ""
        if version_2_with_negative:
            span_score = (
                best_span["start_logit"] + best_span["end_logit"]
                if best_span
                else -np.inf
            )
            null_diff[example.qas_id] = float(sum(null) - span_score)
            if null_diff[example.qas_id] > null_score_diff_threshold:
                answer = ""
        answers[example.qas_id] = answer
        nbest[example.qas_id] = ranked
    return SquadPredictions(answers=answers, nbest=nbest, null_score_diff=null_diff)


def _candidates(
    features, rows, start_logits, end_logits, n_best_size, max_answer_length
):
    """Valid spans of one example's windows, and its lowest null score."""
    spans = []
    null = (np.inf, 0.0)
    for row in rows:
        starts, ends = start_logits[row], end_logits[row]
        if starts[0] + ends[0] < sum(null):
            null = (float(starts[0]), float(ends[0]))
        in_context = features.token_start_char[row] >= 0
        for start in _top_indices(starts, n_best_size):
            if not in_context[start] or not features.token_is_max_context[row, start]:
                continue
            for end in _top_indices(ends, n_best_size):
                if (
                    not in_context[end]
                    or end < start
                    or end - start + 1 > max_answer_length
                ):
                    continue
                spans.append(
                    (
                        float(starts[start]),
                        float(ends[end]),
                        int(features.token_start_char[row, start]),
                        int(features.token_end_char[row, end]),
                    )
                )
    return spans, null


def _rank(spans, context, n_best_size):
    spans.sort(key=lambda s: s[0] + s[1], reverse=True)
    ranked, seen = [], set()
    for start_logit, end_logit, first_char, last_char in spans:
        text = context[first_char:last_char]
        if text in seen:
            continue
        seen.add(text)
        ranked.append(
            {
                "text": text,
                "start_logit": start_logit,
                "end_logit": end_logit,
                "start_char": first_char,
                "end_char": last_char,
            }
        )
        if len(ranked) == n_best_size:
            break
    return ranked


def normalize_answer(text):
    """Lower-cases and drops punctuation, articles and extra whitespace
    (the official SQuAD evaluation's normalization)."""
    text = text.lower()
    text = "".join(c for c in text if c not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction, gold):
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not predicted_tokens or not gold_tokens:
        return float(predicted_tokens == gold_tokens)
    common = collections.Counter(predicted_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(examples, answers):
    """Exact match and F1 (percent) of `answers` (qas_id → text), as the
    official SQuAD v1.1/v2.0 scripts compute them: best over the gold
    answers, and "" as the gold answer of unanswerable questions."""
    exact, f1 = [], []
    for example in examples:
        if example.qas_id not in answers:
            raise ValueError(f"No prediction for question {example.qas_id}.")
        prediction = answers[example.qas_id]
        golds = [text for text, _ in example.answers if normalize_answer(text)] or [""]
        exact.append(
            max(
                float(normalize_answer(prediction) == normalize_answer(g))
                for g in golds
            )
        )
        f1.append(max(_f1(prediction, g) for g in golds))
    return {
        "exact_match": 100.0 * float(np.mean(exact)),
        "f1": 100.0 * float(np.mean(f1)),
    }
