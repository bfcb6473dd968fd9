"""Rows of a table file: TSV, CSV or JSON lines, chosen by the file's extension.

- `.tsv`: tab-separated, no quoting (GLUE's files; a quote is text).
- `.csv`: comma-separated with `"` quoting (Python's `csv` dialect "excel"),
  so a quoted field may hold commas and line breaks.
- `.jsonl` / `.json`: one JSON object per line; its keys name the columns.

Every format comes out the same: the column names (None for a TSV/CSV file
read without a header) and `(line_number, fields)` rows with one string per
column, so errors name the file and line whatever the format.
"""

import csv
import json

from keras_bert_impl.data.text_files import read_lines

FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
_SEPARATED = {"tsv": "tab-separated", "csv": "comma-separated"}


def file_format(path):
    """`tsv`, `csv` or `jsonl`, from the extension of `path`."""
    name = str(path).lower()
    for extension, format_name in FORMATS.items():
        if name.endswith(extension):
            return format_name
    raise ValueError(
        f"{path}: unknown file extension; valid ones are "
        f"{', '.join(FORMATS)} (.json: one JSON object per line)."
    )


def read_table(path, file_format_name=None, header=True):
    """Reads a table file.

    Args:
        path: the file (any path `tf.io.gfile` opens).
        file_format_name: `tsv`, `csv` or `jsonl`; None: from the extension.
        header: whether a TSV/CSV file's first line names the columns (JSON
            lines always name them).

    Returns:
        `(column_names, rows)`: a list of names or None, and a list of
        `(line_number, fields)` with as many fields as there are columns.
        Blank lines are skipped.

    Raises:
        ValueError: naming the file (and line) when it is empty, a row has
            the wrong number of columns, a line is not a JSON object, or a
            JSON value is not a string or number.
    """
    format_name = file_format_name or file_format(path)
    if format_name == "jsonl":
        return _read_json_lines(path)
    if format_name == "tsv":
        records = ((n, text.split("\t")) for n, text in read_lines(path))
    else:
        # Lines go back to csv with their ends, so quoted line breaks survive.
        reader = csv.reader(text + "\n" for _, text in read_lines(path))
        records = ((reader.line_num, fields) for fields in reader)
    records = (
        (n, fields) for n, fields in records if any(f.strip() for f in fields)
    )
    names = None
    if header:
        first = next(records, None)
        if first is None:
            raise ValueError(f"{path}: the file is empty; expected a header line.")
        names = first[1]
    rows = list(records)
    num_columns = len(names) if names else len(rows[0][1]) if rows else 0
    for line_number, fields in rows:
        if len(fields) != num_columns:
            raise ValueError(
                f"{path}:{line_number}: expected {num_columns} "
                f"{_SEPARATED[format_name]} columns, found {len(fields)}."
            )
    return names, rows


def _read_json_lines(path):
    names, rows = None, []
    for line_number, text in read_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}:{line_number}: not JSON ({error.msg}); a JSON lines file "
                "holds one object per line."
            ) from None
        if not isinstance(record, dict):
            raise ValueError(
                f"{path}:{line_number}: expected a JSON object per line, found "
                f"{type(record).__name__}."
            )
        if names is None:
            names = list(record)
        fields = [_field(path, line_number, record, key) for key in names]
        rows.append((line_number, fields))
    if names is None:
        raise ValueError(
            f"{path}: the file is empty; expected one JSON object per line."
        )
    return names, rows


def _field(path, line_number, record, key):
    if key not in record:
        raise ValueError(
            f"{path}:{line_number}: no key {key!r} (the first line has it); "
            f"this line has {list(record)}."
        )
    value = record[key]
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)  # 1 -> "1", true -> "true"
    raise ValueError(
        f"{path}:{line_number}: {key!r} is {json.dumps(value)}; expected a string "
        "or a number."
    )
