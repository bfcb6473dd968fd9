"""Sentence splitting for pretraining corpora.

BERT's next-sentence task needs documents given as one sentence per line with
a blank line between documents (google-research/bert's input format). Raw
text comes as paragraphs instead; `split_sentences` cuts a paragraph at
sentence-final punctuation with a rule-based splitter (no model, no network).
`wikitext_documents` turns a WikiText file (articles opened by ` = Title = `
lines, already tokenized with spaces around punctuation) into such documents.
"""

import re

# A sentence ends at `.`, `!` or `?` (optionally followed by closing quotes or
# brackets) when whitespace and an upper-case letter, digit, or opening quote
# or bracket come next. WikiText writes punctuation as separate tokens
# ("born in 1990 . He"), which the same rule covers.
_BOUNDARY = re.compile(r"""(?<=[.!?])(["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9])""")

# Words whose trailing period does not end a sentence. Single letters (initials
# such as "H. americanus", "J. R. R. Tolkien") are handled separately.
_ABBREVIATION_LIST = (
    "mr mrs ms dr prof st jr sr mt ft no vol vs etc e.g i.e cf fig gen gov lt col capt "
    "sgt rev hon jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k inc ltd co corp"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())


def _wikitext_heading_level(text):
    """1 for `= Title =`, 2 for `= = Section = =`, ...; 0 for other lines."""
    if not (text.startswith("= ") and text.endswith(" =")):
        return 0
    level = 0
    while text.startswith("= "):
        text = text[2:]
        level += 1
    return level


def _ends_with_abbreviation(text):
    last_word = text.rsplit(None, 1)[-1] if text.strip() else ""
    word = last_word.rstrip(".").lstrip("\"'“‘([").lower()
    return len(word) == 1 and word.isalpha() or word in _ABBREVIATIONS


def split_sentences(paragraph):
    """Splits one paragraph of running text into sentences.

    Args:
        paragraph: a `str` holding one paragraph (newlines count as spaces).

    Returns:
        A list of non-empty, stripped sentence strings, in order. Nothing is
        dropped: joining them with spaces gives back the paragraph's words.
    """
    sentences = []
    start = 0
    for boundary in _BOUNDARY.finditer(paragraph):
        # The closing quotes/brackets captured by the group belong to the
        # sentence that just ended.
        end = boundary.start() + len(boundary.group(1))
        candidate = paragraph[start:end]
        if _ends_with_abbreviation(candidate):
            continue
        if candidate.strip():
            sentences.append(candidate.strip())
        start = boundary.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def wikitext_documents(lines):
    """Groups WikiText lines into documents of sentences, one per article.

    A line ` = Title = ` opens an article; deeper headings (` = = Section = = `)
    are dropped because they are not sentences; every other non-blank line is a
    paragraph, split with `split_sentences`.

    Args:
        lines: an iterable of `str` lines of a WikiText file.

    Returns:
        A list of documents; each document is a non-empty list of sentences.
    """
    documents = []
    current = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        level = _wikitext_heading_level(text)
        if level == 1:
            if current:
                documents.append(current)
            current = []
        elif level == 0:
            current.extend(split_sentences(text))
    if current:
        documents.append(current)
    return documents


def write_documents(documents, path):
    """Writes documents in google-research/bert's format.

    One sentence per line, a blank line after each document.

    Args:
        documents: a list of documents, each a list of sentence strings.
        path: the file to write (UTF-8).
    """
    with open(path, "w", encoding="utf-8") as f:
        for document in documents:
            f.writelines(sentence.replace("\n", " ") + "\n" for sentence in document)
            f.write("\n")
