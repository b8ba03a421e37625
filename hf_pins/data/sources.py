"""Read a user's dataset as Arrow splits: from the Hub, a `save_to_disk` folder, a folder of data files, or local files.

Everything goes through `datasets` (`load_dataset`, `load_from_disk`), so the rows stay in memory-mapped Arrow files in
the datasets cache and are never held as Python lists. What can go wrong in a file becomes one `DataError` naming the
file and line; `RawData.where` turns a row index back into a line for the checks that come later.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, UserError
from ..paths import resolve_package_path
from .arguments import FILE_FORMATS, DataArguments

__all__ = ["RawData", "load_raw"]

# Which recipe key names each split, for messages about local files.
SPLIT_KEYS = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


@dataclass
class RawData:
    """The splits as read, before any column is interpreted, and how to point at one of their rows."""

    splits: dict  # split name -> datasets.Dataset
    dataset_id: str | None  # Hub id; None for local data
    files: dict[str, str] = field(default_factory=dict)  # split -> local file it came from
    folder: str | None = None  # local dataset folder

    def origin(self, split: str) -> str:
        """`train.csv`, `ag_news split 'test'`, `data/ split 'train'`: where a split came from, for messages."""
        if split in self.files:
            return self.files[split]
        return f"{self.dataset_id or self.folder} split {split!r}"

    def key(self, split: str) -> str:
        """The recipe key that chose this split's data."""
        return SPLIT_KEYS[split] if split in self.files else "dataset_name"

    def where(self, split: str, row: int) -> str:
        """`train.csv line 17`: the row's place in its file (exact even when quoted fields span lines)."""
        path = self.files.get(split)
        if path is None:
            return f"{self.origin(split)} row {row} (0-based)"
        suffix = Path(path).suffix.lower()
        if suffix in (".csv", ".tsv"):
            return f"{path} line {_csv_line_of_row(path, FILE_FORMATS[suffix][1], row)}"
        if suffix == ".jsonl" or (suffix == ".json" and _is_json_lines(path)):
            return f"{path} line {_json_line_of_row(path, row)}"
        return f"{path} record {row + 1}"


@contextmanager
def _quiet_datasets():
    """`datasets` logs a failed file read at ERROR level before raising; the raised error says it in one line."""
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    return exc


def _local_path(value: str, key: str) -> str:
    try:
        path = resolve_package_path(value, f"data.{key}")
    except UserError as exc:
        raise DataError(str(exc)) from None
    return os.path.expanduser(path)


# --------------------------------------------------------------------------------------------------------------------
# Local files


def _csv_header(path: str, delimiter: str, key: str) -> list[str]:
    """The header's column names; also makes sure some example follows it."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            first = next((record for record in reader if record), None)
    except UnicodeDecodeError as exc:  # decoding runs ahead in blocks: find the line itself
        raise DataError(f"{path} line {_bad_utf8_line(path)}: not UTF-8 text ({exc.reason})") from None
    except csv.Error:
        first = True  # an odd quote or field: let the real reader report it with its line
    if not header:
        raise DataError(f"{path}: file is empty; expected a header line naming the columns, then examples")
    if first is None:
        raise DataError(f"data.{key}: {path} has no examples (only a header line)")
    blank = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if blank:
        raise DataError(f"{path} line 1: header column {blank[0]} has no name (header: {delimiter.join(header)})")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataError(f"{path} line 1: column {twice[0]!r} appears twice in the header")
    return header


def _csv_line_of_row(path: str, delimiter: str, row: int) -> int:
    """The line where data row `row` (0-based, after the header) starts, read as pandas does (blank lines skipped)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        seen, start = -1, reader.line_num + 1
        for record in reader:
            if record:
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
    return start


def _is_json_lines(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def _json_line_of_row(path: str, row: int) -> int:
    with open(path, encoding="utf-8", errors="replace") as handle:
        seen = -1
        for number, line in enumerate(handle, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return number
    return row + 1


def _bad_utf8_line(path: str) -> int | None:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _json_problem(path: str) -> str:
    """Find what makes a JSON or JSON Lines file unreadable, with its line."""
    if _is_json_lines(path):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    return f"line {number}: not valid JSON ({exc.msg}, column {exc.colno})"
                if not isinstance(record, dict):
                    return f"line {number}: expected a JSON object per line, got {type(record).__name__}"
        return ""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})"
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        return "line 1: expected JSON Lines (one object per line) or a list of objects"
    return ""


def _read_file(split: str, path: str, key: str):
    import datasets

    if not os.path.isfile(path):
        what = "is a folder (use data.dataset_name for folders)" if os.path.isdir(path) else "file not found"
        raise DataError(f"data.{key}: {path}: {what}")
    suffix = Path(path).suffix.lower()
    builder, delimiter = FILE_FORMATS[suffix]
    options = {}
    if builder == "csv":
        # Every column as text, read verbatim: pandas would otherwise turn "None" or "NA" into missing values and
        # digit-only texts into numbers. Labels and targets are interpreted later, with row numbers in errors.
        header = _csv_header(path, delimiter, key)
        options = {"delimiter": delimiter, "keep_default_na": False, "na_filter": False,
                   "features": datasets.Features({name: datasets.Value("string") for name in header})}
    try:
        with _quiet_datasets():
            loaded = datasets.load_dataset(builder, data_files={split: path}, **options)
    except Exception as exc:  # a malformed file surfaces as DatasetGenerationError around the parser's error
        cause = _root_cause(exc)
        if "corresponds to no data" in str(cause):
            raise DataError(f"data.{key}: {path} has no examples") from None
        if isinstance(cause, UnicodeDecodeError):
            line = _bad_utf8_line(path)
            raise DataError(f"{path} line {line}: not UTF-8 text ({cause.reason})") from None
        if builder == "json":
            problem = _json_problem(path)
            if problem:
                raise DataError(f"{path} {problem}") from None
        if builder == "csv" and "line" in str(cause):  # pandas: "Expected 2 fields in line 4, saw 3"
            raise DataError(f"{path}: unreadable ({_first_line(cause)}); expected {len(header)} "
                            f"{'tab' if delimiter == chr(9) else 'comma'}-separated columns "
                            f"({', '.join(header)})") from None
        raise DataError(f"{path}: unreadable as {suffix[1:]} ({_first_line(cause)})") from None
    return loaded[split]


# --------------------------------------------------------------------------------------------------------------------
# Dataset ids and folders


def _as_splits(loaded, where: str) -> dict:
    import datasets

    if isinstance(loaded, datasets.Dataset):  # a single saved Dataset is the training split
        return {"train": loaded}
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    raise DataError(f"{where}: expected a dataset with splits, got {type(loaded).__name__} (streaming datasets are "
                    f"not supported)")


def _read_folder(path: str):
    import datasets

    saved = os.path.isfile(os.path.join(path, "dataset_dict.json")) or os.path.isfile(os.path.join(path, "state.json"))
    try:
        with _quiet_datasets():
            loaded = datasets.load_from_disk(path) if saved else datasets.load_dataset(path)
    except Exception as exc:
        how = "Dataset.save_to_disk folder" if saved else "folder of data files"
        raise DataError(f"data.dataset_name: {path}: unreadable as a {how} ({_first_line(_root_cause(exc))})") from None
    return _as_splits(loaded, f"data.dataset_name {path}")


def _read_hub(args: DataArguments):
    import datasets

    try:
        with _quiet_datasets():
            loaded = datasets.load_dataset(args.dataset_name, args.dataset_config_name, revision=args.dataset_revision)
    except Exception as exc:  # offline, unknown id, missing config, refused: the first line says which
        config = f" config {args.dataset_config_name!r}" if args.dataset_config_name else ""
        revision = f" revision {args.dataset_revision!r}" if args.dataset_revision else ""
        raise DataError(f"data.dataset_name: cannot load {args.dataset_name!r}{config}{revision} from the Hugging Face "
                        f"Hub ({_first_line(exc)}); to work offline, give local files (data.train_file) or a "
                        f"save_to_disk folder") from None
    return _as_splits(loaded, f"data.dataset_name {args.dataset_name!r}")


def load_raw(args: DataArguments) -> RawData:
    """Read every split the recipe names, as they are. Raises `DataError` naming the file and line."""
    if args.dataset_name is not None:
        path = _local_path(args.dataset_name, "dataset_name")
        if os.path.isdir(path):
            if args.dataset_config_name or args.dataset_revision:
                raise DataError(f"data.dataset_config_name: {path} is a local folder; config and revision apply to "
                                f"Hub datasets only")
            return RawData(splits=_read_folder(path), dataset_id=None, folder=path)
        if path.startswith((".", "/", "~")) or args.dataset_name.startswith("pkg:"):
            raise DataError(f"data.dataset_name: {path}: folder not found")
        return RawData(splits=_read_hub(args), dataset_id=args.dataset_name)
    files = {}
    for split, key in SPLIT_KEYS.items():
        value = getattr(args, key)
        if value is not None:
            files[split] = _local_path(value, key)
    splits = {split: _read_file(split, path, SPLIT_KEYS[split]) for split, path in files.items()}
    return RawData(splits=splits, dataset_id=None, files=files)
