"""Task metrics as each benchmark defines them.

- GLUE: accuracy; Matthews correlation (CoLA); accuracy and F1 of the
  positive class (MRPC, QQP); Pearson and Spearman correlations (STS-B).
- NER: entity-level precision/recall/F1 with the rules of CoNLL's
  `conlleval` script (a chunk starts at `B-`, at an `I-` whose type differs
  from the previous tag's, or after `O`; so IOB1 and IOB2 both score right).
- SQuAD: the official exact match / F1 live beside the answer extraction in
  `keras_bert_impl.data.squad_postprocess.squad_metrics`.
"""

import numpy as np


def accuracy(labels, predictions):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean(labels == predictions))


def matthews_corrcoef(labels, predictions):
    """Matthews correlation of binary labels (0 when undefined, as sklearn)."""
    y, p = np.asarray(labels).astype(bool), np.asarray(predictions).astype(bool)
    tp = float(np.sum(y & p))
    tn = float(np.sum(~y & ~p))
    fp = float(np.sum(~y & p))
    fn = float(np.sum(y & ~p))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else float((tp * tn - fp * fn) / denominator)


def binary_f1(labels, predictions, positive=1):
    y, p = np.asarray(labels) == positive, np.asarray(predictions) == positive
    tp = float(np.sum(y & p))
    if tp == 0:
        return 0.0
    precision, recall = tp / np.sum(p), tp / np.sum(y)
    return float(2 * precision * recall / (precision + recall))


def _ranks(values):
    """Average ranks (ties share the mean of their positions), as Spearman's."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0
        start = end + 1
    return ranks


def pearson(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return 0.0 if denominator == 0 else float(np.sum(x * y) / denominator)


def spearman(x, y):
    return pearson(_ranks(x), _ranks(y))


GLUE_METRICS = ("accuracy", "mcc", "accuracy_f1", "pearson_spearman", "regression")


def glue_metrics(metric, labels, predictions):
    """The named GLUE metric family as a dict (`predictions`: class indices,
    or scores for `pearson_spearman`)."""
    if metric == "accuracy":
        return {"accuracy": accuracy(labels, predictions)}
    if metric == "mcc":
        return {
            "mcc": matthews_corrcoef(labels, predictions),
            "accuracy": accuracy(labels, predictions),
        }
    if metric == "accuracy_f1":
        return {
            "accuracy": accuracy(labels, predictions),
            "f1": binary_f1(labels, predictions),
        }
    if metric == "pearson_spearman":
        return {
            "pearson": pearson(labels, predictions),
            "spearman": spearman(labels, predictions),
        }
    if metric == "regression":  # run_glue.py's mse for a user's own scores
        errors = np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)
        return {
            "mse": float(np.mean(errors**2)),
            **glue_metrics("pearson_spearman", labels, predictions),
        }
    raise ValueError(f"Unknown GLUE metric {metric!r}; known: {GLUE_METRICS}.")


def _split_tag(tag):
    if tag == "O" or not tag:
        return "O", ""
    prefix, _, entity = tag.partition("-")
    if not entity:  # a bare type, as some files write
        return "I", prefix
    return prefix, entity


def _chunk_ends(previous, current):
    (prev_prefix, prev_type), (prefix, entity) = previous, current
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I"):
        return prefix in ("B", "S", "O") or entity != prev_type
    return False


def _chunk_starts(previous, current):
    (prev_prefix, prev_type), (prefix, entity) = previous, current
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E"):
        return prev_prefix in ("E", "S", "O") or entity != prev_type
    return False


def entity_spans(tags):
    """`(type, first, last)` chunks of a tag sequence, by conlleval's rules."""
    spans, start, previous = [], None, ("O", "")
    for index, tag in enumerate(list(tags) + ["O"]):
        current = _split_tag(tag)
        if start is not None and _chunk_ends(previous, current):
            spans.append((previous[1], start, index - 1))
            start = None
        if current[0] != "O" and _chunk_starts(previous, current):
            start = index
        previous = current
    return spans


def entity_f1(gold_sentences, predicted_sentences):
    """conlleval's overall precision, recall and F1 (fractions, not percent),
    plus per-type F1 as `f1_<TYPE>`."""
    if len(gold_sentences) != len(predicted_sentences):
        raise ValueError(
            f"{len(gold_sentences)} gold sentences but "
            f"{len(predicted_sentences)} predicted."
        )
    gold_total, predicted_total, correct = 0, 0, 0
    per_type = {}
    for index, (gold, predicted) in enumerate(zip(gold_sentences, predicted_sentences)):
        if len(gold) != len(predicted):
            raise ValueError(
                f"Sentence {index}: {len(gold)} gold tags, {len(predicted)} predicted."
            )
        gold_spans = set(entity_spans(gold))
        predicted_spans = set(entity_spans(predicted))
        gold_total += len(gold_spans)
        predicted_total += len(predicted_spans)
        correct += len(gold_spans & predicted_spans)
        for spans, slot in ((gold_spans, 0), (predicted_spans, 1)):
            for span in spans:
                per_type.setdefault(span[0], [0, 0, 0])[slot] += 1
        for span in gold_spans & predicted_spans:
            per_type[span[0]][2] += 1

    def f1(gold_count, predicted_count, hits):
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / gold_count if gold_count else 0.0
        total = precision + recall
        return precision, recall, (2 * precision * recall / total if total else 0.0)

    precision, recall, overall = f1(gold_total, predicted_total, correct)
    result = {"precision": precision, "recall": recall, "f1": overall}
    for entity, counts in sorted(per_type.items()):
        result[f"f1_{entity}"] = f1(*counts)[2]
    return result
