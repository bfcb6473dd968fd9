"""The wheel: builds from the tracked files, carries the package data and
every console script, and installs and imports on its own."""

import configparser
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _console_scripts():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return {line.split("=")[0].strip() for line in lines}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("needs the git checkout to list the tracked files")
    source = tmp_path_factory.mktemp("source")
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if os.path.exists(os.path.join(ROOT, name)):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("keras_bert_impl-*.whl")
    return path


def test_wheel_carries_data_tools_and_every_console_script(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
        metadata = archive.read(
            next(n for n in names if n.endswith("METADATA"))
        ).decode()
    for name in (
        "keras_bert_impl/pipeline/data/wikitext2_sample.txt",
        "keras_bert_impl/pipeline/data/README.md",
        "keras_bert_impl/pipeline/data/sentiment/train.tsv",
        "keras_bert_impl/pipeline/data/sentiment/dev.tsv",
        "keras_bert_impl/cli/demo.py",
        "keras_bert_impl/text/bert_char_tables.py",
    ):
        assert name in names, name
    # Tests, benchmarks and developer tools stay in the checkout.
    assert not any(n.startswith(("tests/", "tools/", "benchmarks/")) for n in names)
    for script in _console_scripts():
        assert f"{script} = " in scripts, script
    assert "Requires-Python: <3.14,>=3.10" in metadata


def test_wheel_installs_and_imports_on_its_own(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import os, keras_bert_impl, keras_bert_impl.pipeline as p, keras_bert_impl.cli.demo;"
        "print(keras_bert_impl.__file__); print(os.path.getsize(p.SAMPLE_CORPUS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(target)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    package_file, corpus_size = result.stdout.split()
    assert package_file.startswith(str(target))
    assert int(corpus_size) > 100_000
