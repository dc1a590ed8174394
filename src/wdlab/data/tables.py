"""Bring-your-own data: CSV/Parquet tables -> validated float64 arrays for ``wdlab fit``.

Every check raises ``ValueError`` with one line naming the file, column or row (rows are
counted from 1, after the header), before anything is written. Constant feature columns
are dropped with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from wdlab.config import shown

#: File suffixes read as CSV and as Parquet.
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: At least this many complete rows.
MIN_ROWS = 3
#: At most this many columns: checked on the header line, before any column is parsed
#: (a 10^6-column, one-row CSV took 136 s and 4.4 GB to fail later).
MAX_COLUMNS = 100_000
#: Largest |value| accepted in a cell: squares and sums of squares stay finite in float64.
MAX_ABS_VALUE = 1e150


class ConstantColumnWarning(UserWarning):
    """A feature column holds one value; it carries no information and is dropped."""


@dataclass
class UserTable:
    """A validated regression table (float64)."""

    X: np.ndarray  # (N, D)
    y: np.ndarray  # (N,)
    features: list[str]  # D column names, in order
    target: str
    path: str
    n_rows_read: int  # rows in the file
    dropped_rows: int = 0  # incomplete rows removed by dropna
    dropped_constant: list[str] = field(default_factory=list)
    skipped_non_numeric: list[str] = field(default_factory=list)


def _names(cols, limit: int = 8) -> str:
    cols = [str(c) for c in cols]
    text = ", ".join(shown(c, 40) for c in cols[:limit])  # control characters escaped
    return text + (f" (+{len(cols) - limit} more)" if len(cols) > limit else "")


def printable(name: object, limit: int = 40) -> str:
    """A column name fit for the terminal: control characters (ANSI escapes) escaped."""
    return shown(str(name), limit)[1:-1] if isinstance(name, str) else shown(name, limit)


def _header_columns(path: Path, sep: str) -> int:
    """An upper bound on the columns of a CSV, from its first line alone."""
    with open(path, "rb") as fh:
        line = fh.readline(64 << 20)
    return line.count(sep.encode()) + 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def read_user_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV or Parquet file; missing, unreadable, empty or duplicate columns -> ValueError."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"DATA: no such file: {path}")
    if not path.is_file():
        raise ValueError(f"DATA: {path} is not a file")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise ValueError(f"DATA: {path}: unknown format {suffix or '(no suffix)'!r}; "
                         "expected .csv or .parquet")
    if path.stat().st_size == 0:
        raise ValueError(f"DATA: {path} is empty")
    try:
        if suffix in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            columns = list(pq.read_schema(path).names)
            _check_columns(len(columns), path)
            _check_duplicates(columns, path)
            df = pq.read_table(path).to_pandas()
        else:
            sep = "\t" if suffix == ".tsv" else ","
            _check_columns(_header_columns(path, sep), path)
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str)
            columns = [str(c) for c in header.iloc[0].tolist()]
            _check_duplicates(columns, path)
            df = pd.read_csv(path, sep=sep)
    except ValueError as exc:
        if str(exc).startswith("DATA:"):
            raise
        raise ValueError(f"DATA: cannot read {path}: {_one_line(exc)}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ImportError) as exc:
        raise ValueError(f"DATA: cannot read {path}: {_one_line(exc)}") from None
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise ValueError(f"DATA: cannot read {path}: {_one_line(exc)}") from None
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise ValueError(f"DATA: {path} is empty (no data rows)")
    df.columns = [str(c) for c in df.columns]
    return df


def _check_columns(n: int, path: Path) -> None:
    if n > MAX_COLUMNS:
        raise ValueError(f"DATA: {path} has {n:,} columns, more than {MAX_COLUMNS:,}; keep the "
                         "columns you need (a feature per column, one sample per row)")


def _check_duplicates(columns: list[str], path: Path) -> None:
    seen, dup = set(), []
    for c in columns:
        if c in seen and c not in dup:
            dup.append(c)
        seen.add(c)
    if dup:
        raise ValueError(f"DATA: {path}: duplicate column name{'s' if len(dup) > 1 else ''} "
                         f"{_names(dup)}; rename them")


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _first_non_numeric(s: pd.Series) -> str:
    """``row R: 'value'`` for the first entry of an object column that is not a number."""
    parsed = pd.to_numeric(s, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & s.notna().to_numpy())
    if len(bad):
        return f" (row {int(bad[0]) + 1}: {str(s.iloc[int(bad[0])])[:40]!r})"
    return ""


def prepare(df: pd.DataFrame, target: str, features: list[str] | None = None, *,
            dropna: bool = False, path: str = "DATA", min_rows: int = MIN_ROWS) -> UserTable:
    """Select, check and convert the target and feature columns.

    Args:
        df: the table as read.
        target: name of the target column (numeric).
        features: feature columns; None = every other numeric column (non-numeric ones are
            skipped and listed in ``skipped_non_numeric``).
        dropna: drop rows with NaN/inf in the target or a feature instead of failing.
        path: the file name used in messages.
        min_rows: fewest complete rows accepted.

    Raises:
        ValueError: one line naming the column or row.
    """
    cols = list(df.columns)
    if target not in cols:
        import difflib

        close = difflib.get_close_matches(str(target), [str(c) for c in cols], n=1) or \
            [str(c) for c in cols if str(c).lower() == str(target).lower()][:1]
        hint = f"; did you mean {shown(close[0], 40)}?" if close else ""
        raise ValueError(f"--target: no column {shown(target, 40)} in {path}{hint}; columns are "
                         f"{_names(cols)}")
    if not _numeric(df[target]):
        raise ValueError(f"--target: column {shown(target, 40)} is not numeric"
                         f"{_first_non_numeric(df[target])}")
    skipped: list[str] = []
    if features is None:
        others = [c for c in cols if c != target]
        skipped = [c for c in others if not _numeric(df[c])]
        features = [c for c in others if _numeric(df[c])]
        if not features:
            raise ValueError(f"--features: {path} has no numeric feature column besides {shown(target, 40)}"
                             + (f"; non-numeric: {_names(skipped)}" if skipped else ""))
    else:
        if not features:
            raise ValueError("--features: the list is empty")
        dup = sorted({c for c in features if features.count(c) > 1})
        if dup:
            raise ValueError(f"--features: {_names(dup)} listed twice")
        missing = [c for c in features if c not in cols]
        if missing:
            raise ValueError(f"--features: no column {_names(missing)} in {path}; "
                             f"columns are {_names(cols)}")
        if target in features:
            raise ValueError(f"--features: the target {shown(target, 40)} cannot also be a feature")
        bad = [c for c in features if not _numeric(df[c])]
        if bad:
            detail = _first_non_numeric(df[bad[0]])
            raise ValueError(f"--features: non-numeric column{'s' if len(bad) > 1 else ''} "
                             f"{_names(bad)}{detail}; choose numeric columns with --features")

    block = df[[target, *features]].astype(np.float64)
    values = block.to_numpy()  # (N, 1 + D)
    finite = np.isfinite(values)
    dropped = 0
    if not finite.all():
        if dropna:
            keep = finite.all(1)
            dropped = int((~keep).sum())
            values = values[keep]
        else:
            r, c = (int(v) for v in np.argwhere(~finite)[0])
            kind = "NaN" if np.isnan(values[r, c]) else "inf"
            name = block.columns[c]
            role = "target" if c == 0 else "feature"
            raise ValueError(f"{path}: {role} column {shown(name, 40)} has {kind} at row {r + 1}; "
                             "fix the file or pass --dropna to drop incomplete rows")
    big = np.abs(values) > MAX_ABS_VALUE
    if big.any():
        r, c = (int(v) for v in np.argwhere(big)[0])
        role = "target" if c == 0 else "feature"
        raise ValueError(f"{path}: {role} column {shown(block.columns[c], 40)} has "
                         f"{values[r, c]:.3g} at row {r + 1}; |values| must be <= "
                         f"{MAX_ABS_VALUE:g} (rescale the column)")
    n = values.shape[0]
    if n < min_rows:
        extra = f" after --dropna removed {dropped}" if dropped else ""
        raise ValueError(f"{path}: {n} complete row{'s' if n != 1 else ''}{extra}; "
                         f"need at least {min_rows}")
    y, X = values[:, 0], values[:, 1:]
    constant = [f for j, f in enumerate(features) if np.ptp(X[:, j]) == 0]
    if constant:
        if len(constant) == len(features):
            raise ValueError(f"--features: every feature column is constant ({_names(constant)})")
        warnings.warn(f"dropping constant column{'s' if len(constant) > 1 else ''} "
                      f"{_names(constant)}", ConstantColumnWarning, stacklevel=2)
        keep_cols = [j for j, f in enumerate(features) if f not in constant]
        X = X[:, keep_cols]
        features = [features[j] for j in keep_cols]
    if np.ptp(y) == 0:
        raise ValueError(f"--target: column {shown(target, 40)} is constant; nothing to fit")
    return UserTable(X, y, list(features), target, path, len(df), dropped, constant, skipped)


def load(path: Path | str, target: str, features: list[str] | None = None, *,
         dropna: bool = False) -> UserTable:
    """``read_user_table`` then ``prepare``."""
    df = read_user_table(path)
    return prepare(df, target, features, dropna=dropna, path=Path(path).name)


def check_split(n_rows: int, test_size: float, folds: int) -> tuple[int, int]:
    """(n_train, n_test) for a test fraction; enough rows for the test set and every fold."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"--test-size: must lie in (0, 1), got {test_size!r}")
    if folds < 2:
        raise ValueError(f"--folds: must be >= 2, got {folds}")
    n_test = max(1, int(round(test_size * n_rows)))
    n_train = n_rows - n_test
    if n_train < folds:
        raise ValueError(f"--folds: {folds} folds need at least {folds} training rows; "
                         f"{n_rows} rows leave {n_train} after the {n_test}-row test split")
    return n_train, n_test
