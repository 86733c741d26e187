"""Reading your own data from a CSV file: a header row, one example per line, numeric features
and one target column, for regression and classification alike.

Every problem is reported with the file, the line and the column (``prices.csv, line 7,
column 'rooms': 'n/a' is not a number``), and the reader refuses files past its size caps
before it parses them, so a hostile file cannot exhaust memory.
"""

from __future__ import annotations

import array
import collections
import csv
import difflib
import io
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..backend import xp
from ..files import open_regular
from .idx import DataFileError

MAX_BYTES = 256 << 20  # 256 MiB of text
MAX_COLUMNS = 4096
FLOAT32_MAX = float(xp.finfo(xp.float32).max)
MAX_CLASSES = 100  # integer targets with more distinct values than this are numbers, not classes
MAX_NAME = 255  # characters of a column or class name (a run's model file records the names)
SHOWN_NAMES = 8  # names listed in a message before "... (N in all)"


class CSVError(DataFileError):
    """A CSV file that cannot be read as data (the message names the file, line and column)."""


@dataclass
class CSVData:
    """A table read by :func:`read_csv`.

    Attributes:
        features: (n, d) float32, the columns other than the target, in file order.
        target: (n,) float32 values (regression) or int64 class indices (classification).
        feature_names: the header names of the feature columns.
        target_name: the header name of the target column.
        task: ``"classification"`` or ``"regression"`` (see :func:`guess_task`).
        classes: for classification, the class each index stands for (``target == k`` means
            ``classes[k]``), as written in the file; empty for regression.
    """

    features: object
    target: object
    feature_names: list[str]
    target_name: str
    task: str
    classes: list = field(default_factory=list)
    path: Path | None = None


def read_csv(
    path,
    target: str | None = None,
    task: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_columns: int = MAX_COLUMNS,
) -> CSVData:
    """Read a CSV file with a header row into features and a target.

    Args:
        path: the file (UTF-8 text, comma-separated, a header row first).
        target: the name of the target column (default: the last column).
        task: ``"classification"`` or ``"regression"``; default: guessed from the target
            (integer labels -> classes, real numbers -> regression; see :func:`guess_task`).
        max_bytes, max_columns: size caps; larger files are refused before they are parsed.

    Raises:
        CSVError: a missing or duplicate column, a row with the wrong number of cells, an empty
            or non-numeric cell, a file too large; the message names the file, line and column.
    """
    path = Path(path)
    if task not in (None, "classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    with _open_text(path, max_bytes) as f:
        header, rows = _table(f, path, max_bytes, max_columns)
        target_name = target if target is not None else header[-1]
        if target_name not in header:
            raise CSVError(
                f"{path}: no column '{_shorten(target_name)}' ({_near(target_name, header)})"
            )
        target_column = header.index(target_name)
        if len(header) < 2:
            raise CSVError(f"{path}: only the target column '{target_name}'; no feature columns")
        # Features become numbers as the rows stream by (4 bytes a value), never a table of
        # strings: a large file costs little more memory than the array it becomes.
        features, raw_target, line_numbers = array.array("f"), [], []
        for line_number, cells in rows:
            features.extend(
                _number(path, line_number, header[k], cell)
                for k, cell in enumerate(cells)
                if k != target_column
            )
            raw_target.append(cells[target_column])
            line_numbers.append(line_number)
    if not raw_target:
        raise CSVError(f"{path}: a header row but no data rows")
    result = CSVData(
        xp.frombuffer(features, dtype=xp.float32).reshape(len(raw_target), len(header) - 1),
        None,
        [name for k, name in enumerate(header) if k != target_column],
        target_name,
        task or "regression",
        path=path,
    )
    _fill_target(result, raw_target, line_numbers, task)
    return result


def read_features(
    path,
    columns: list[str],
    ignore=(),
    max_bytes: int = MAX_BYTES,
    max_columns: int = MAX_COLUMNS,
):
    """The rows of a CSV file as feature vectors for a model trained on ``columns``.

    The header must name every column of ``columns`` (in any order); the columns of ``ignore``
    (such as the target) may be there too and are skipped; any other column is refused, so a
    file meant for another model is not quietly misread.

    Returns:
        ``(features (n, len(columns)) float32 in the order of columns, line numbers)``.

    Raises:
        CSVError: a missing or unknown column, a bad row or cell, a file too large, no rows.
    """
    path = Path(path)
    with _open_text(path, max_bytes) as f:
        header, rows = _table(f, path, max_bytes, max_columns)
        present, wanted = set(header), set(columns).union(ignore)
        missing = [name for name in columns if name not in present]
        unknown = [name for name in header if name not in wanted]
        if missing or unknown:
            wrong = f"no column {_listed(missing)}" if missing else ""
            wrong += "; " if missing and unknown else ""
            wrong += f"column {_listed(unknown)} is not one of them" if unknown else ""
            raise CSVError(f"{path}: the model takes the columns {_listed(columns)}: {wrong}")
        position = {name: k for k, name in enumerate(header)}
        where = [position[name] for name in columns]
        values, line_numbers = array.array("f"), []
        for line_number, cells in rows:
            values.extend(_number(path, line_number, header[k], cells[k]) for k in where)
            line_numbers.append(line_number)
    if not line_numbers:
        raise CSVError(f"{path}: a header row but no data rows")
    features = xp.frombuffer(values, dtype=xp.float32).reshape(len(line_numbers), len(columns))
    return features, line_numbers


def guess_task(values) -> str:
    """``"classification"`` when the target looks like class labels: whole numbers with at most
    ``MAX_CLASSES`` distinct values (and fewer distinct values than examples); else
    ``"regression"``."""
    values = xp.asarray(values, dtype=xp.float64)
    if values.size == 0 or not (values == xp.round(values)).all():
        return "regression"
    distinct = len(xp.unique(values))
    return "classification" if distinct <= MAX_CLASSES and distinct < values.size else "regression"


def _shorten(text: str, length: int = 40) -> str:
    """``text`` for a one-line message: its first ``length`` characters, line breaks shown."""
    shown = text if len(text) <= length else text[:length] + "..."
    return shown.replace("\r", "\\r").replace("\n", "\\n")


def _listed(names: list[str]) -> str:
    """The first :data:`SHOWN_NAMES` names, and how many there are in all if more."""
    shown = ", ".join(_shorten(n) for n in names[:SHOWN_NAMES])
    return shown if len(names) <= SHOWN_NAMES else f"{shown}, ... ({len(names):,} in all)"


def _near(name: str, header: list[str]) -> str:
    """The columns, or among many, the few whose names are closest to ``name``."""
    if len(header) <= SHOWN_NAMES:
        return f"the columns are {', '.join(header)}"
    close = difflib.get_close_matches(name, header, n=3)
    near = f"closest: {', '.join(map(_shorten, close))}" if close else "none has a close name"
    return f"{len(header):,} columns, {near}"


def _breaks_lines(name: str) -> bool:
    """Whether ``name`` would break the one-line messages and outputs that show it."""
    return name.splitlines() != [name]


def _size_of(path: Path) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO or /dev/zero would be read without end
        raise CSVError(f"{path}: not a regular file (a folder, FIFO or device)")
    return info.st_size


def _open_text(path: Path, max_bytes: int):
    """The file as UTF-8 text (a byte-order mark skipped), once it is known to be a regular file
    of at most ``max_bytes``."""
    size = _size_of(path)
    if size > max_bytes:
        raise CSVError(f"{path}: {size:,} bytes is larger than the limit of {max_bytes:,}")
    return io.TextIOWrapper(open_regular(path, CSVError), encoding="utf-8-sig", newline="")


def _table(f, path: Path, max_bytes: int, max_columns: int):
    """``(header, data rows)``: the checked column names, and ``(line number, cells)`` for each
    data row, refused if it is not as wide as the header."""
    rows = _rows(f, path, max_bytes, max_columns)
    first = next(rows, None)
    if first is None:
        raise CSVError(f"{path}: empty file; expected a header row and data rows")
    header = _check_header(path, *first)

    def data_rows():
        for line_number, cells in rows:
            if len(cells) != len(header):
                raise CSVError(
                    f"{path}, line {line_number}: {len(cells)} cells, but the header has "
                    f"{len(header)} columns ({', '.join(header)})"
                )
            yield line_number, cells

    return header, data_rows()


def _rows(f, path: Path, max_bytes: int, max_columns: int):
    """``(line number, cells)`` for each non-blank row (the header first), cells stripped."""
    reader = csv.reader(_capped(f, path, max_bytes, max_columns), strict=True)
    try:
        for cells in reader:
            if len(cells) > max_columns:
                raise CSVError(
                    f"{path}, line {reader.line_num}: {len(cells)} columns, more than the limit "
                    f"of {max_columns}"
                )
            if any(c.strip() for c in cells):  # blank lines carry no example
                yield reader.line_num, [c.strip() for c in cells]
    except UnicodeDecodeError as exc:
        raise CSVError(f"{path}: not UTF-8 text (byte {exc.start} of a line)") from None
    except csv.Error as exc:
        raise CSVError(f"{path}, line {reader.line_num}: {exc}") from None


def _capped(lines, path: Path, max_bytes: int, max_columns: int):
    """The lines, cut off past ``max_bytes`` characters in all, and past ``max_columns`` cells in
    a row *before* the csv module splits it: a 60 MB row of 3 x 10^7 one-letter cells would
    otherwise become a list of 3 x 10^7 strings (gigabytes) before its width can be checked."""
    # The size checked before opening can be stale (a growing file, a pipe): cap what is read.
    read, cells, quoted = 0, 1, False
    for line_number, text in enumerate(lines, start=1):
        read += len(text)
        if read > max_bytes:
            raise CSVError(f"{path}: more than the limit of {max_bytes:,} characters")
        # commas outside quotes separate cells; a quoted cell may run over several lines
        parts = text.split('"') if '"' in text else [text]
        for k, part in enumerate(parts):
            if k:
                quoted = not quoted
            if not quoted:
                cells += part.count(",")
        if cells > max_columns:
            raise CSVError(
                f"{path}, line {line_number}: more than the limit of {max_columns} columns"
            )
        if not quoted:
            cells = 1
        yield text


def _check_header(path: Path, line_number: int, names: list[str]) -> list[str]:
    for k, name in enumerate(names):
        if not name:
            raise CSVError(f"{path}, line {line_number}: column {k + 1} of the header has no name")
        if len(name) > MAX_NAME:
            raise CSVError(
                f"{path}, line {line_number}: the name of column {k + 1} ('{_shorten(name)}') is "
                f"{len(name):,} characters long, more than the limit of {MAX_NAME}"
            )
        if _breaks_lines(name):
            raise CSVError(
                f"{path}, line {line_number}: the name of column {k + 1} ('{_shorten(name)}') "
                "holds a line break"
            )
        try:
            float(name)
        except ValueError:
            continue
        raise CSVError(
            f"{path}, line {line_number}: the first row should name the columns, but column "
            f"{k + 1} is the number {name}"
        )
    duplicates = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if duplicates:
        raise CSVError(
            f"{path}, line {line_number}: duplicate column names: {', '.join(duplicates)}"
        )
    return names


def _number(path: Path, line_number: int, column: str, cell: str) -> float:
    if not cell:
        raise CSVError(f"{path}, line {line_number}, column '{column}': empty cell")
    try:
        value = float(cell)
    except ValueError:
        raise CSVError(
            f"{path}, line {line_number}, column '{column}': '{_shorten(cell)}' is not a number"
        ) from None
    if not math.isfinite(value):
        raise CSVError(f"{path}, line {line_number}, column '{column}': {cell} is not finite")
    if abs(value) > FLOAT32_MAX:
        raise CSVError(
            f"{path}, line {line_number}, column '{column}': {cell} is too large for float32"
        )
    return value


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _fill_target(result: CSVData, cells: list[str], line_numbers: list[int], task) -> None:
    """Numbers for the target column: real values for regression, class indices otherwise."""
    path, name = result.path, result.target_name
    numeric = []
    for line_number, cell in zip(line_numbers, cells):
        try:
            numeric.append(_number(path, line_number, name, cell))
        except CSVError:
            if task == "regression" or not cell or numeric or _is_float(cell):
                raise  # "nan" or "inf" is a number that cannot be learned, not a class name
            numeric = None  # class names such as "setosa": a class column
            break
    if numeric is None:
        for line_number, cell in zip(line_numbers, cells):
            if not cell:
                raise CSVError(f"{path}, line {line_number}, column '{name}': empty cell")
            if len(cell) > MAX_NAME:
                raise CSVError(
                    f"{path}, line {line_number}, column '{name}': the class name "
                    f"'{_shorten(cell)}' is {len(cell):,} characters long, more than the limit "
                    f"of {MAX_NAME}"
                )
            if _breaks_lines(cell):
                raise CSVError(
                    f"{path}, line {line_number}, column '{name}': the class name "
                    f"'{_shorten(cell)}' holds a line break"
                )
        result.task = "classification"
        result.classes = sorted(set(cells))
        if len(result.classes) > MAX_CLASSES:
            raise CSVError(
                f"{path}, column '{name}': {len(result.classes)} different words; a class column "
                f"has at most {MAX_CLASSES} (is '{name}' the target you meant?)"
            )
        index = {c: k for k, c in enumerate(result.classes)}
        result.target = xp.array([index[c] for c in cells], dtype=xp.int64)
        return
    values = xp.array(numeric)
    result.task = task or guess_task(values)
    if result.task == "regression":
        result.target = values.astype(xp.float32)
        return
    if not (values == xp.round(values)).all():
        bad = int(xp.flatnonzero(values != xp.round(values))[0])
        raise CSVError(
            f"{path}, line {line_numbers[bad]}, column '{name}': {cells[bad]} is not a whole "
            "number, so it cannot be a class label (use task='regression')"
        )
    classes, indices = xp.unique(values.astype(xp.int64), return_inverse=True)
    result.classes = [int(c) for c in classes]
    result.target = indices.astype(xp.int64)
