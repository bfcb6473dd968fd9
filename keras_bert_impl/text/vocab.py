"""Learning a WordPiece vocabulary from text files.

Words are split by the same in-graph `BasicTokenizer` the `Tokenizer` uses (so the
vocabulary fits the tokenizer exactly), counted per batch inside tf.data, and handed to
tf-text's WordPiece learner (`wordpiece_tokenizer_learner_lib.learn`, the algorithm behind
`bert_vocab_from_dataset`), which binary-searches the token frequency threshold that
gives the requested size.
"""

import collections
import dataclasses
import time

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import (
    wordpiece_tokenizer_learner_lib as learner,
)

from keras_bert_impl.text import basic_tokenizer
from keras_bert_impl.text.file_patterns import expand_file_patterns
from keras_bert_impl.text import vocab_file as vocab_lib

_BATCH_SIZE = 1024


@dataclasses.dataclass
class WordCounts:
    """Words of a corpus with their counts, and what was read.

    Attributes:
        counts: collections.Counter word -> occurrences.
        files: the files read.
        lines: lines read.
        bytes: bytes read (without line ends).
        invalid_utf8_lines: lines with invalid UTF-8 (their bad bytes are dropped).
    """

    counts: collections.Counter
    files: list
    lines: int = 0
    bytes: int = 0
    invalid_utf8_lines: int = 0


def count_words(input_files, lowercase=True, strip_accents=None, progress=None):
    """Counts BERT words (normalized, split as the Tokenizer splits them) in text files.

    Args:
        input_files: comma-separated globs, or a list of globs.
        lowercase: lower-case (uncased vocabulary).
        strip_accents: strip accents; None follows `lowercase`.
        progress: optional callable taking a `WordCounts` every ~100k lines.

    Returns:
        A `WordCounts`.
    """
    files = expand_file_patterns(input_files)
    splitter = basic_tokenizer.BasicTokenizer(lowercase, strip_accents)

    def batch_counts(lines):
        words, _, counts = tf.unique_with_counts(
            splitter.split(lines).strings().flat_values
        )
        replaced = tf.strings.unicode_decode(lines, "UTF-8", errors="replace")
        ignored = tf.strings.unicode_decode(lines, "UTF-8", errors="ignore")
        invalid = tf.not_equal(replaced.row_lengths(), ignored.row_lengths())
        stats = tf.stack(
            [
                tf.size(lines, out_type=tf.int64),
                tf.reduce_sum(tf.cast(tf.strings.length(lines), tf.int64)),
                tf.reduce_sum(tf.cast(invalid, tf.int64)),
            ]
        )
        return words, counts, stats

    dataset = (
        tf.data.TextLineDataset(files)
        .batch(_BATCH_SIZE)
        .map(batch_counts, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    result = WordCounts(counts=collections.Counter(), files=files)
    for step, (words, counts, stats) in enumerate(dataset.as_numpy_iterator()):
        result.counts.update(
            dict(zip((w.decode("utf-8") for w in words), counts.tolist()))
        )
        result.lines += int(stats[0])
        result.bytes += int(stats[1])
        result.invalid_utf8_lines += int(stats[2])
        if progress is not None and (step + 1) % 100 == 0:
            progress(result)
    return result


def build_vocabulary(
    input_files,
    vocab_size,
    lowercase=True,
    strip_accents=None,
    reserved_tokens=(),
    num_unused_tokens=0,
    min_frequency=10,
    max_token_chars=50,
    max_alphabet_size=1000,
    output_file=None,
    progress=None,
):
    """Learns a BERT WordPiece vocabulary from text files.

    The vocabulary starts with [PAD] (id 0), [UNK], [CLS], [SEP], [MASK], then
    `reserved_tokens`, then `num_unused_tokens` slots "[unused0]", "[unused1]", ...; the
    learned tokens follow in sorted order. The result depends only on the input and the
    arguments (same input, same vocabulary).

    Args:
        input_files: comma-separated globs, or a list of globs.
        vocab_size: largest vocabulary size; the learner lands within 5% below it.
        lowercase: learn an uncased vocabulary.
        strip_accents: strip accents; None follows `lowercase`.
        reserved_tokens: extra tokens placed right after the special tokens.
        num_unused_tokens: number of "[unusedN]" slots to reserve.
        min_frequency: lowest token frequency the threshold search may go down to.
        max_token_chars: words longer than this are not counted.
        max_alphabet_size: words with characters outside the most frequent ones are not
            counted (rare characters end up as [UNK]).
        output_file: if given, the vocabulary is written there, one token per line.
        progress: optional callable taking a message string.

    Returns:
        list of str, index = token id.

    Raises:
        FileNotFoundError: an input pattern matches nothing.
        ValueError: the input holds no words, or `vocab_size` cannot hold the reserved tokens.
    """
    reserved = list(vocab_lib.SPECIAL_TOKENS) + list(reserved_tokens)
    reserved += [f"[unused{i}]" for i in range(num_unused_tokens)]
    vocab_lib.check_vocabulary(reserved, "reserved tokens")
    if vocab_size <= len(reserved):
        raise ValueError(
            f"vocab_size {vocab_size} leaves no room for learned tokens after the "
            f"{len(reserved)} reserved ones."
        )
    say = progress or (lambda message: None)
    start = time.time()

    def report(counts):
        say(
            f"read {counts.lines:,} lines ({counts.bytes / 1e6:.1f} MB), "
            f"{len(counts.counts):,} distinct words, {time.time() - start:.0f}s"
        )

    counts = count_words(input_files, lowercase, strip_accents, progress=report)
    report(counts)
    if counts.invalid_utf8_lines:
        say(
            f"{counts.invalid_utf8_lines:,} lines held invalid UTF-8; "
            "their invalid bytes were dropped."
        )
    if not counts.counts:
        raise ValueError(f"Input files {', '.join(counts.files)} hold no words.")
    say(f"learning a vocabulary of at most {vocab_size:,} tokens ...")
    vocabulary = learner.learn(
        dict(sorted(counts.counts.items())),
        vocab_size,
        reserved,
        lower_thresh=min_frequency,
        max_token_length=max_token_chars,
        max_unique_chars=max_alphabet_size,
    )
    say(
        f"vocabulary of {len(vocabulary):,} tokens ({len(reserved):,} reserved, "
        f"{len(vocabulary) - len(reserved):,} learned) in {time.time() - start:.0f}s"
    )
    if len(vocabulary) < 0.95 * vocab_size:
        say(
            f"fewer than vocab_size={vocab_size:,}: beyond the characters, only word "
            f"pieces seen at least min_frequency={min_frequency} times are kept, and "
            f"these {counts.bytes / 1e6:.1f} MB of text hold no more; more text or a "
            "lower min_frequency gives more."
        )
    if output_file is not None:
        vocab_lib.write_vocabulary(vocabulary, output_file)
        say(f"wrote {output_file}")
    return vocabulary
