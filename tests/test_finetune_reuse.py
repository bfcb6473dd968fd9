"""kbi-finetune reusing its own output: a finished run evaluates from its
directory or its model.keras alone, flags that contradict the saved model
are errors naming both, and a rerun into a finished directory says what it
does."""

import json
import os
import sys

import pytest

from test_training import _glue_files, _tiny_checkpoint

TOOLS = os.path.join(os.path.dirname(__file__), os.pardir)


def _finetune(*flags):
    """Runs kbi-finetune in-process; returns its exit code."""
    sys.path.insert(0, TOOLS)
    from keras_bert_impl.cli import finetune

    try:
        finetune.run(["kbi-finetune", "--task_name=sst2", *flags])
    except SystemExit as exit_info:
        return exit_info.code
    return 0


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """(data_dir, run_dir, eval results) of a trained and evaluated run."""
    root = tmp_path_factory.mktemp("finished")
    data_dir = _glue_files(root / "glue")
    run_dir = root / "run"
    flags = [
        f"--data_dir={data_dir}",
        f"--output_dir={run_dir}",
        f"--init_checkpoint={_tiny_checkpoint(root)}",
        "--do_train",
        "--do_eval",
        "--max_seq_length=12",
        "--train_batch_size=8",
        "--eval_batch_size=8",
        "--learning_rate=1e-3",
        "--num_train_epochs=1",
        "--save_checkpoints_steps=4",
    ]
    assert _finetune(*flags) == 0
    results = json.loads((run_dir / "eval_results.json").read_text())
    return data_dir, run_dir, results, flags


def test_a_finished_run_evaluates_from_its_directory_or_its_model_alone(
    finished_run, tmp_path, capsys
):
    data_dir, run_dir, results, _ = finished_run
    capsys.readouterr()
    assert _finetune(f"--data_dir={data_dir}", f"--output_dir={run_dir}", "--do_eval") == 0
    assert f"Evaluating {run_dir / 'model.keras'}" in capsys.readouterr().out
    assert json.loads((run_dir / "eval_results.json").read_text()) == results

    other = tmp_path / "other"
    model = run_dir / "model.keras"
    code = _finetune(
        f"--data_dir={data_dir}", f"--output_dir={other}", f"--init_checkpoint={model}",
        "--do_eval", "--do_predict",
    )
    assert code == 0
    assert json.loads((other / "eval_results.json").read_text()) == results
    assert (other / "test_results.tsv").exists()


def test_flags_that_contradict_the_saved_model_name_both(
    finished_run, tmp_path, capsys
):
    data_dir, run_dir, _, _ = finished_run
    model = run_dir / "model.keras"
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nword0\n")
    common = [f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'out'}", "--do_eval"]
    assert _finetune(*common, f"--init_checkpoint={model}", f"--vocab_file={vocab}") == 1
    error = capsys.readouterr().err
    assert f"--vocab_file={vocab} (6 tokens) is not the vocabulary saved in {model}" in error
    assert _finetune(*common, f"--init_checkpoint={model}", "--nodo_lower_case") == 1
    error = capsys.readouterr().err
    assert f"--do_lower_case=False contradicts {model}" in error
    assert "lowercase=True" in error


def test_a_model_of_another_task_is_not_evaluated(tmp_path, finished_run, capsys):
    from keras_bert_impl.models import BertPretrainer
    from model_helpers import tiny_config

    data_dir = finished_run[0]
    pretrained = tmp_path / "pretrained.keras"
    model = BertPretrainer(tiny_config())
    model.build()
    model.save(pretrained)
    code = _finetune(
        f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'out'}",
        f"--init_checkpoint={pretrained}", "--do_eval",
    )
    assert code == 1
    error = capsys.readouterr().err
    assert f"--init_checkpoint={pretrained} holds a BertPretrainer" in error
    assert "run with --do_train first" in error


def test_a_rerun_into_a_finished_run_says_it_skips_training(finished_run, capsys):
    _, run_dir, results, flags = finished_run
    capsys.readouterr()
    assert _finetune(*flags) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "already holds a run" in line)
    assert f"{run_dir} already holds a run trained to step 6" in line
    assert "training is skipped" in line and "give a fresh --output_dir" in line
    assert json.loads((run_dir / "eval_results.json").read_text()) == results
