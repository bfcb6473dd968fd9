"""The task objects behind kbi-finetune: one batching policy with `fit(texts)`,
and each task's flags and files checked before anything runs."""

import pytest

from keras_bert_impl.tasks import FINETUNING_TASKS, TextClassificationTask
from keras_bert_impl.tasks.finetuning import check_settings
from keras_bert_impl.tasks.settings import FinetuneSettings
from keras_bert_impl.text import Tokenizer
from pretraining_records import TINY_VOCAB
from text_helpers import write_vocab


def _text_task(tmp_path, **settings):
    # 32 texts, half of one word and half of twelve: one length-group window
    # (8 batches of 4) is the whole epoch.
    rows = [
        ("word1" if i % 2 else " ".join(["word2"] * 12), f"c{i % 3}")
        for i in range(32)
    ]
    train = tmp_path / "train.tsv"
    train.write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8"
    )
    settings = FinetuneSettings(
        task_name="text_classification",
        output_dir=str(tmp_path / "out"),
        train_file=str(train),
        do_train=True,
        max_seq_length=16,
        **settings,
    )
    check_settings(settings)
    vocab = write_vocab(tmp_path / "vocab.txt", TINY_VOCAB)
    task = TextClassificationTask(settings, Tokenizer(str(vocab), lowercase=True))
    return task, task.read("train")


def _batches(task, examples):
    """(padded width, the set of real lengths) of 16 training batches of 4."""
    dataset = task.dataset(examples, batch_size=4, training=True)
    return [
        (x["token_ids"].shape[1], set(x["padding_mask"].numpy().sum(1).tolist()))
        for x, _ in dataset.take(16)
    ]


def test_bucketed_training_batches_are_grouped_by_length_as_fit_groups_them(tmp_path):
    task, examples = _text_task(tmp_path, bucket_lengths="4,8,12,16")
    # [CLS] word [SEP] fits the 4 bucket, twelve words the 16 one: sorted by
    # length, no batch mixes them (of 16 random batches of 4, about 14 would).
    batches = _batches(task, examples)
    assert all(lengths in ({3}, {14}) for _, lengths in batches), batches
    assert {width for width, _ in batches} == {4, 16}
    assert all(width == (4 if lengths == {3} else 16) for width, lengths in batches)


def test_without_buckets_every_batch_is_padded_to_the_sequence_length(tmp_path):
    task, examples = _text_task(tmp_path)
    batches = _batches(task, examples)
    assert {width for width, _ in batches} == {16}
    assert any(len(lengths) == 2 for _, lengths in batches)  # random batches mix


def test_every_task_name_has_one_task_and_its_model_class():
    from keras_bert_impl import models

    assert len(FINETUNING_TASKS) == len(set(FINETUNING_TASKS))
    for name, task in FINETUNING_TASKS.items():
        assert name in task.task_names
        assert hasattr(models, task.model_class_name)


@pytest.mark.parametrize(
    "task_name, flags, message",
    [
        ("sst2", {"train_file": "t.csv"}, "--train_file does not apply to --task_name=sst2"),
        ("conll2003", {"text_column": "x"}, "it reads --data_dir"),
        ("squad", {"do_train": True}, "--do_train for SQuAD needs --train_file"),
        ("conll2003", {"bucket_lengths": "auto", "data_dir": "d"}, "--bucket_lengths applies"),
    ],
)
def test_a_flag_the_task_does_not_read_is_refused_by_name(task_name, flags, message):
    settings = FinetuneSettings(
        task_name=task_name, output_dir="out", do_eval=True, **flags
    )
    with pytest.raises(ValueError, match=message):
        check_settings(settings)
