"""TF Serving layout: next free version, never overwrite, nothing half-written; kbi-export's
flag parsing."""

import os

import pytest

from keras_bert_impl.export.layout import VersionWriter, existing_versions, next_version
from keras_bert_impl.cli.export import read_text_lines
from keras_bert_impl.text.packer import parse_bucket_lengths


def test_versions_count_up_and_ignore_other_entries(tmp_path):
    assert next_version(tmp_path / "missing") == 1
    for name in ("1", "7", "00012", "tmp", ".tmp-3-abc"):
        (tmp_path / name).mkdir()
    (tmp_path / "9").write_text("a file, not a version")
    assert existing_versions(tmp_path) == [1, 7, 12]
    assert next_version(tmp_path) == 13


def test_writer_renames_a_complete_version_into_place(tmp_path):
    writer = VersionWriter(tmp_path / "model")
    with writer as temp_dir:
        assert not os.path.basename(temp_dir).isdigit()  # invisible to a polling server
        (open(os.path.join(temp_dir, "saved_model.pb"), "w")).close()
    assert writer.version == 1
    assert sorted(os.listdir(tmp_path / "model")) == ["1"]
    assert os.listdir(tmp_path / "model" / "1") == ["saved_model.pb"]
    with VersionWriter(tmp_path / "model") as temp_dir:
        pass
    assert existing_versions(tmp_path / "model") == [1, 2]


def test_an_existing_version_is_never_overwritten(tmp_path):
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "keep").write_text("x")
    with pytest.raises(
        FileExistsError, match="never overwritten.*next free one \\(4\\)"
    ):
        with VersionWriter(tmp_path, version=3):
            pass
    assert (tmp_path / "3" / "keep").read_text() == "x"
    with pytest.raises(ValueError, match="positive integer"):
        VersionWriter(tmp_path, version=0)


def test_a_failed_export_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with VersionWriter(tmp_path) as temp_dir:
            open(os.path.join(temp_dir, "partial"), "w").close()
            raise RuntimeError("tracing failed")
    assert os.listdir(tmp_path) == []


def test_export_flag_parsing(tmp_path):
    assert parse_bucket_lengths("auto") == "auto"
    # One reading of --bucket_lengths for kbi-export, kbi-finetune, kbi-distill
    # and kbi-prune.
    for unset in (None, "", "none", "None"):
        assert parse_bucket_lengths(unset) is None
    assert parse_bucket_lengths("16,64") == [16, 64]
    assert parse_bucket_lengths("16, 64,") == [16, 64]
    with pytest.raises(ValueError, match="--bucket_lengths='x,y' must be 'none', 'auto'"):
        parse_bucket_lengths("x,y")
    texts = tmp_path / "warmup.txt"
    texts.write_text("one\n\ntwo\n")
    assert read_text_lines(str(texts), "warmup_file") == ["one", "two"]
    assert read_text_lines(str(texts), "warmup_file", 1) == ["one"]
    texts.write_text("\n\n")
    with pytest.raises(ValueError, match="--warmup_file=.* no non-empty line"):
        read_text_lines(str(texts), "warmup_file")
    texts.write_bytes(b"\xff\xfe bad")
    with pytest.raises(ValueError, match="--calibration_file="):
        read_text_lines(str(texts), "calibration_file")
    with pytest.raises(ValueError, match="--calibration_file=.*missing"):
        read_text_lines(str(tmp_path / "missing.txt"), "calibration_file")
