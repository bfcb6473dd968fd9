"""Every snippet in the README runs as written.

The first two ```bash blocks are the set-up commands (CI runs them); every
later ```bash block and every ```python block runs here, in order, in a
scratch folder that holds what the README says the user has: `corpus/*.txt`.
A block right after an HTML comment `<!-- run by tests/FILE.py ... -->` is
run by that test instead (on a sample), and one after `<!-- not run here:
REASON -->` needs what a test machine lacks (Docker, a server left running);
the reason is required. Blocks fenced otherwise (```console, ```text, or
none) are illustrations.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"(?:<!--(.*?)-->\s*)?```(\w*)\n(.*?)```", re.S)
RUN_ELSEWHERE = re.compile(r"\s*run by (tests/\w+\.py)")
NOT_RUN = re.compile(r"\s*not run here: \S.{10,}", re.S)


def readme_blocks(language):
    """The blocks of `language` this test runs, in order."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = BLOCK.findall(f.read())
    runnable = []
    for comment, lang, code in blocks:
        if lang != language:
            continue
        elsewhere = RUN_ELSEWHERE.match(comment or "")
        if elsewhere:
            assert os.path.exists(os.path.join(ROOT, elsewhere[1])), comment
            continue
        if comment:
            assert NOT_RUN.match(comment), f"unknown README marker <!--{comment}-->"
            continue
        runnable.append(code)
    return runnable


def _scratch_folder(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sentences = os.path.join(ROOT, "tests", "data", "sentences.txt")
    shutil.copy(sentences, corpus / "part-0.txt")
    with open(sentences, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    # Two documents per file: blank lines separate them.
    half = len(lines) // 2
    (corpus / "part-1.txt").write_text("".join(lines[:half]) + "\n" + "".join(lines[half:]))
    return tmp_path


def _environment():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_python_snippets_run_as_written(tmp_path):
    blocks = readme_blocks("python")
    assert blocks, "the README shows no Python"
    # One process for all blocks (TensorFlow starts once), each in its own namespace.
    folder = _scratch_folder(tmp_path)
    paths = []
    for number, code in enumerate(blocks, 1):
        path = tmp_path / f"readme_block_{number}.py"
        path.write_text(code, encoding="utf-8")
        paths.append(str(path))
    runner = textwrap.dedent(
        """
        import sys
        for path in sys.argv[1:]:
            print(f"--- {path}", flush=True)
            with open(path, encoding="utf-8") as f:
                exec(compile(f.read(), path, "exec"), {"__name__": "__main__"})
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", runner, *paths],
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def test_shell_snippets_after_the_set_up_commands_run_as_written(tmp_path):
    folder = _scratch_folder(tmp_path)
    for number, code in enumerate(readme_blocks("bash")[2:], 3):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=folder,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (number, code, done.stdout[-2000:], done.stderr[-4000:])
