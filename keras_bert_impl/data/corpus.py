"""Reading pretraining text files into a `TokenizedCorpus`.

Input format (google-research/bert's): UTF-8 text, one sentence per line,
documents separated by blank lines. With `input_format="raw"` every non-blank
line is a paragraph instead, split into sentences by
`sentences.split_sentences`; blank lines still separate documents.

Choices where the reference is silent or surprising:

- Bytes that are not valid UTF-8 are replaced by U+FFFD, which the BERT
  tokenizer drops (the reference drops them silently with `errors="ignore"`).
  Each file's count and the first affected line numbers are logged as a
  warning and returned in the file's report. `invalid_utf8="error"` rejects
  the file instead, naming file and line.
- The start of every file also starts a new document. (The reference runs on
  across files, so a file without a trailing blank line would merge its last
  document with the next file's first one, in glob order.)
- A file with no text at all, or none that yields a token, is an error naming
  the file: an empty output is never produced silently.
- Lines that are not blank but yield no token (control characters only) are
  dropped without ending the document, as in the reference.
"""

import concurrent.futures
import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from keras_bert_impl.data.pretraining import TokenizedCorpus
from keras_bert_impl.data.sentences import split_sentences

INPUT_FORMATS = ("sentences", "raw")
INVALID_UTF8_POLICIES = ("replace", "error")

# Line numbers of invalid UTF-8 kept per file for the report.
_REPORTED_LINES = 10


@dataclasses.dataclass
class InputFileReport:
    """What was read from one input file."""

    path: str
    bytes: int = 0
    lines: int = 0
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    invalid_utf8_sequences: int = 0
    invalid_utf8_lines: list = dataclasses.field(default_factory=list)

    def invalid_utf8_warning(self):
        """The warning about replaced invalid UTF-8, or None when there was none."""
        if not self.invalid_utf8_sequences:
            return None
        more = " and more" if len(self.invalid_utf8_lines) == _REPORTED_LINES else ""
        return (
            f"{self.path}: replaced {self.invalid_utf8_sequences} invalid UTF-8 "
            f"sequence(s) on line(s) {', '.join(map(str, self.invalid_utf8_lines))}{more}."
        )


def usable_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _decode_lines(data, path, invalid_utf8, report):
    """Decodes a file's bytes into lines, handling invalid UTF-8 per the policy."""
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        pass
    # Slow path, only for files with bad bytes: decode line by line to find
    # and count them.
    lines = []
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw_line.decode("utf-8"))
            continue
        except UnicodeDecodeError as error:
            if invalid_utf8 == "error":
                raise ValueError(
                    f"{path}:{number}: invalid UTF-8 byte(s) at column {error.start + 1} "
                    f"({raw_line[error.start : error.end]!r}). Input must be UTF-8; pass "
                    "--invalid_utf8=replace to replace bad bytes and go on."
                ) from None
        text, count = _decode_counting(raw_line)
        lines.append(text)
        report.invalid_utf8_sequences += count
        if len(report.invalid_utf8_lines) < _REPORTED_LINES:
            report.invalid_utf8_lines.append(number)
    return lines


def _decode_counting(raw_line):
    """Decodes with U+FFFD replacements; returns (text, number replaced)."""
    pieces = []
    count = 0
    position = 0
    while True:
        try:
            pieces.append(raw_line[position:].decode("utf-8"))
            return "".join(pieces), count
        except UnicodeDecodeError as error:
            pieces.append(raw_line[position : position + error.start].decode("utf-8"))
            pieces.append("\ufffd")
            count += 1
            position += error.end


def read_documents(path, input_format="sentences", invalid_utf8="replace"):
    """Reads one input file into documents of sentence strings.

    Args:
        path: the file (anything `tf.io.gfile` opens).
        input_format: "sentences" (one per line) or "raw" (paragraphs).
        invalid_utf8: "replace" or "error"; see the module docstring.

    Returns:
        `(documents, report)`: a list of non-empty lists of stripped
        sentences, and an `InputFileReport` with bytes, lines and invalid
        UTF-8 filled in.

    Raises:
        ValueError: the file holds no text, or has invalid UTF-8 under
            `invalid_utf8="error"`; the message names the file (and line).
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format={input_format!r}; use one of {INPUT_FORMATS}.")
    if invalid_utf8 not in INVALID_UTF8_POLICIES:
        raise ValueError(
            f"invalid_utf8={invalid_utf8!r}; use one of {INVALID_UTF8_POLICIES}."
        )
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    report = InputFileReport(path=path, bytes=len(data))
    lines = _decode_lines(data, path, invalid_utf8, report)
    report.lines = len(lines) - (1 if lines and lines[-1] == "" else 0)
    if report.invalid_utf8_warning():
        logging.warning(report.invalid_utf8_warning())

    documents = [[]]
    for line in lines:
        # str.strip() as the reference: Unicode whitespace too.
        text = line.strip()
        if not text:
            if documents[-1]:
                documents.append([])
        elif input_format == "raw":
            documents[-1].extend(split_sentences(text))
        else:
            documents[-1].append(text)
    documents = [d for d in documents if d]
    if not documents:
        raise ValueError(
            f"{path} holds no text (it is empty or has only blank lines). Pretraining input "
            "needs one sentence per line with blank lines between documents."
        )
    return documents, report


def tokenize_documents(documents, tokenizer, report, batch_size=16384):
    """Tokenizes documents of sentences, in large batches, into a corpus.

    Sentences that yield no token are dropped, and documents left empty too.

    Args:
        documents: lists of sentence strings.
        tokenizer: a `keras_bert_impl.text.Tokenizer` (any callable mapping a
            `tf.string` batch to a `tf.RaggedTensor` of ids).
        report: the file's `InputFileReport`; documents, sentences and tokens
            are filled in.
        batch_size: sentences per tokenizer call.

    Returns:
        A `TokenizedCorpus`.

    Raises:
        ValueError: no sentence of the file yields a token.
    """
    sentences = [sentence for document in documents for sentence in document]
    batches = [
        tf.constant(sentences[start : start + batch_size], dtype=tf.string)
        for start in range(0, len(sentences), batch_size)
    ]
    # Eager calls on large batches: the per-call overhead is small next to the
    # work, whereas tracing the tokenizer into a graph costs seconds up front.
    # TensorFlow releases the GIL while it runs, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(usable_cores()) as pool:
        tokenized = list(pool.map(tokenizer, batches))
    token_ids = np.concatenate([ragged.flat_values.numpy() for ragged in tokenized])
    lengths = np.concatenate([ragged.row_lengths().numpy() for ragged in tokenized])

    document_of_sentence = np.repeat(
        np.arange(len(documents)), [len(d) for d in documents]
    )
    has_tokens = lengths > 0
    document_sizes = np.bincount(
        document_of_sentence[has_tokens], minlength=len(documents)
    )
    document_sizes = document_sizes[document_sizes > 0]
    if len(document_sizes) == 0:
        raise ValueError(f"{report.path}: no line yields a token with this vocabulary.")
    report.documents = len(document_sizes)
    report.sentences = int(has_tokens.sum())
    report.tokens = len(token_ids)
    return TokenizedCorpus.from_lengths(token_ids, lengths[has_tokens], document_sizes)


def build_corpus(paths, tokenizer, input_format="sentences", invalid_utf8="replace"):
    """Reads and tokenizes input files into one `TokenizedCorpus`.

    Returns:
        `(corpus, reports)`, with one `InputFileReport` per file.
    """
    corpora = []
    reports = []
    for path in paths:
        documents, report = read_documents(path, input_format, invalid_utf8)
        corpora.append(tokenize_documents(documents, tokenizer, report))
        reports.append(report)
        logging.info(
            "Read %s: %d documents, %d sentences, %d tokens.",
            path,
            report.documents,
            report.sentences,
            report.tokens,
        )
    return TokenizedCorpus.concatenate(corpora), reports
