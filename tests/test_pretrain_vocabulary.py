"""kbi-pretrain with its own vocabulary: the model takes the vocabulary's
size, its model.keras carries the tokenizer, and records or configs made for
another vocabulary are errors naming both sides."""

import json

import pretraining_records
from model_helpers import tiny_config
from tool_helpers import run_tool


def _pretrain(tmp_path, *flags, records=40):
    from keras_bert_impl.cli import pretrain

    data = tmp_path / "train.tfrecord"
    if not data.exists():
        pretraining_records.write_records(data, records, 16, 4)
    argv = [
        "kbi-pretrain",
        f"--input_file={data}",
        f"--output_dir={tmp_path / 'out'}",
        "--max_seq_length=16",
        "--max_predictions_per_seq=4",
        "--train_batch_size=8",
        "--num_train_steps=2",
        "--num_warmup_steps=1",
        *flags,
    ]
    try:
        pretrain.run(argv)
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def _vocab_file(tmp_path, tokens=pretraining_records.TINY_VOCAB):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n")
    return str(path)


def test_a_preset_takes_the_vocabularys_size_and_model_keras_its_tokenizer(
    tmp_path,
):
    from keras_bert_impl import BertPretrainer

    vocab = _vocab_file(tmp_path)
    assert _pretrain(tmp_path, "--config=tiny", f"--vocab_file={vocab}") == 0
    saved = str(tmp_path / "out" / "model.keras")
    model = BertPretrainer.from_preset(saved)
    assert model.config.vocab_size == len(pretraining_records.TINY_VOCAB) == 60
    assert model.backbone.token_embedding.embeddings.shape[0] == 60
    assert model.preprocessor.tokenizer.vocabulary == list(
        pretraining_records.TINY_VOCAB
    )
    assert model.preprocessor.sequence_length == 16
    # The first loss is about ln(60) + ln(2) (masked LM + next sentence), not
    # ln(30522) + ln(2) ≈ 11: the logits span the vocabulary alone.
    rows = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert rows[0]["loss"] < 6.0

    export_dir = tmp_path / "export"
    result = run_tool(
        "export",
        f"--init_checkpoint={saved}",
        "--task=fill_mask",
        f"--export_dir={export_dir}",
        "--bucket_lengths=none",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (export_dir / "1" / "saved_model.pb").exists()


def test_a_config_file_that_disagrees_with_the_vocabulary_names_both(tmp_path, capsys):
    config = tmp_path / "bert_config.json"
    tiny_config(vocab_size=64).write_json_file(config)
    vocab = _vocab_file(tmp_path)
    code = _pretrain(tmp_path, f"--bert_config_file={config}", f"--vocab_file={vocab}")
    assert code == 1
    error = capsys.readouterr().err
    assert f"--vocab_file={vocab} holds 60 tokens" in error
    assert f"--bert_config_file={config} says vocab_size=64" in error
    assert not (tmp_path / "out" / "model.keras").exists()


def test_records_made_with_a_larger_vocabulary_are_an_error_naming_the_id(
    tmp_path, capsys
):
    vocab = _vocab_file(tmp_path, pretraining_records.TINY_VOCAB[:30])
    code = _pretrain(tmp_path, "--config=tiny", f"--vocab_file={vocab}")
    assert code == 1
    error = capsys.readouterr().err
    assert "train.tfrecord: input_ids holds token id" in error
    assert f"past the 30 tokens of --vocab_file={vocab}" in error
    assert "kbi-create-pretraining-data --vocab_file" in error
    assert not (tmp_path / "out" / "model.keras").exists()


def test_ids_past_the_vocabulary_beyond_the_checked_records_are_named_too(
    tmp_path, capsys, monkeypatch
):
    from keras_bert_impl.data import record_checks

    monkeypatch.setattr(record_checks, "CHECKED_RECORDS", 0)
    vocab = _vocab_file(tmp_path, pretraining_records.TINY_VOCAB[:30])
    code = _pretrain(tmp_path, "--config=tiny", f"--vocab_file={vocab}")
    assert code == 1
    error = capsys.readouterr().err
    assert "a token id past the model's vocab_size=30" in error
    assert "made with another vocabulary" in error


def test_a_warm_up_longer_than_training_is_named_by_its_flags(tmp_path, capsys):
    code = _pretrain(tmp_path, "--config=tiny", "--num_warmup_steps=5")
    assert code == 1
    assert (
        "--num_warmup_steps=5 must be between 0 and --num_train_steps=2"
        in capsys.readouterr().err
    )


def test_do_lower_case_sets_the_saved_casing_and_a_contradiction_is_named(
    tmp_path, capsys
):
    from keras_bert_impl import BertPretrainer

    vocab = _vocab_file(tmp_path)
    assert (
        _pretrain(
            tmp_path, "--config=tiny", f"--vocab_file={vocab}", "--nodo_lower_case"
        )
        == 0
    )
    saved = tmp_path / "out" / "model.keras"
    assert (
        BertPretrainer.from_preset(str(saved)).preprocessor.tokenizer.lowercase is False
    )

    again = tmp_path / "again"
    again.mkdir()
    code = _pretrain(again, f"--init_checkpoint={saved}", "--do_lower_case")
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        f"kbi-pretrain: error: --do_lower_case=true contradicts --init_checkpoint={saved}, "
        "whose tokenizer keeps case: leave --do_lower_case unset, or give --vocab_file "
        "as well."
    )
