"""Line-by-line reading of UTF-8 text files with errors that name the line."""


def read_lines(path):
    """Yields `(line_number, text)` for each line of a UTF-8 file.

    Line numbers start at 1; the line ending (`\\n` or `\\r\\n`) and a leading
    byte-order mark are removed. Works on any path `tf.io.gfile` opens.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a line is not valid UTF-8 (names the file and line).
    """
    import tensorflow as tf  # only when a file is read: the flags need none

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    with tf.io.gfile.GFile(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}:{line_number}: not valid UTF-8 at byte {error.start} of the "
                    "line; re-encode the file as UTF-8."
                ) from None
            if line_number == 1:
                text = text.removeprefix("\ufeff")
            yield line_number, text.rstrip("\r\n")


def read_documents(path):
    """The documents of a pretraining text file, one string each.

    Blank lines separate documents (google-research/bert's format); a
    document's lines are joined with "\\n", so line breaks still end its
    sentences. The start of a file starts a new document.

    Raises:
        FileNotFoundError, ValueError: as `read_lines`; ValueError naming the
            file when it holds no text.
    """
    documents, lines = [], []
    for _, text in read_lines(path):
        if text.strip():
            lines.append(text.strip())
        elif lines:
            documents.append("\n".join(lines))
            lines = []
    if lines:
        documents.append("\n".join(lines))
    if not documents:
        raise ValueError(f"{path}: no text (only blank lines or an empty file).")
    return documents
