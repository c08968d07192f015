"""Read CelebA's attribute and partition tables, in either of its two common layouts.

CelebA (Liu et al. 2015) gives every aligned face (178 x 218 JPEG) 40 binary
attributes. Fader Networks (Lample et al. 2017) condition the decoder D(z, y) on
them, so the first job is to read them exactly:

* **original** layout (official site, mmlab.ie.cuhk.edu.hk/projects/CelebA.html)::

      <data_dir>/img_align_celeba/000001.jpg ...
      <data_dir>/list_attr_celeba.txt      (line 1: count; line 2: names; rows of -1/1)
      <data_dir>/list_eval_partition.txt   (optional: "000001.jpg 0" per line)

* **kaggle** mirror (jessicali9530/celeba-dataset)::

      <data_dir>/img_align_celeba/img_align_celeba/000001.jpg ...  (or not nested)
      <data_dir>/list_attr_celeba.csv      (header image_id,5_o_Clock_Shadow,...)
      <data_dir>/list_eval_partition.csv   (image_id,partition)

Both parse to the same :class:`CelebA`: a table of 0/1 (int8) attributes indexed
by file name, and a split of 0 (train), 1 (valid), 2 (test). The readers go by the
header, so a subset of the 40 attributes (the synthetic set has fewer) is fine.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .celeba_facts import SPLIT_NAMES
from .errors import DataError

__all__ = [
    "CelebA",
    "read_celeba",
    "detect_layout",
    "table_files",
    "resolve_data_dir",
    "default_data_dir",
    "HOW_TO_GET_CELEBA",
]

#: Name of the environment variable that points to the data folder.
DATA_ENV_VAR = "FADER_DATA"

#: Split used when there is no partition file: the first 80 % train, 10 % valid, 10 % test.
DEFAULT_SPLIT_SOURCE = "default 80/10/10"

HOW_TO_GET_CELEBA = """\
How to get CelebA (either layout works):
  * Official site, mmlab.ie.cuhk.edu.hk/projects/CelebA.html ("Align&Cropped Images"):
      img_align_celeba.zip          -> unzip into <data_dir>/ (<data_dir>/img_align_celeba/000001.jpg ...)
      Anno/list_attr_celeba.txt     -> <data_dir>/list_attr_celeba.txt
      Eval/list_eval_partition.txt  -> <data_dir>/list_eval_partition.txt
                                       (optional: without it, a default 80/10/10 split)
  * Kaggle mirror, "jessicali9530/celeba-dataset" (kaggle datasets download -d jessicali9530/celeba-dataset):
      unzip into <data_dir>/ (gives <data_dir>/img_align_celeba/img_align_celeba/*.jpg,
      <data_dir>/list_attr_celeba.csv and <data_dir>/list_eval_partition.csv)
  * No CelebA at hand? `fader synth` makes the built-in synthetic set in the default folder data/synthetic.
Then point faderlib at <data_dir>: pass it as an argument or set the environment variable FADER_DATA."""


# --------------------------------------------------------------------------- data folder


def default_data_dir() -> Path:
    """The default data folder: ``data/synthetic`` of the project.

    That is the ``data/`` folder beside the ``faderlib`` package when the package
    lives in a source checkout (its parent holds ``pyproject.toml``), otherwise
    ``./data/synthetic`` in the current working directory.
    """
    project = Path(__file__).resolve().parent.parent
    if (project / "pyproject.toml").is_file():
        return project / "data" / "synthetic"
    return Path.cwd() / "data" / "synthetic"


def resolve_data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder to use: ``path`` if given, else ``$FADER_DATA``, else :func:`default_data_dir`."""
    if path is None or str(path) == "":
        env = os.environ.get(DATA_ENV_VAR, "")
        path = env if env else default_data_dir()
    return Path(path).expanduser()


# --------------------------------------------------------------------------- result type


@dataclass(eq=False)
class CelebA:
    """CelebA's tables, read from ``root``.

    ``attributes``: index = image file name (file order), columns = attribute names
    (header order), int8 values 0/1 (or 0..K-1 for a categorical column).
    ``split``: same index, int8 0 = train, 1 = valid, 2 = test.
    """

    root: Path
    layout: str
    image_dir: Path
    attributes: pd.DataFrame
    split: pd.Series
    split_source: str
    attribute_file: Path | None = None
    partition_file: Path | None = None

    def image_path(self, filename: str) -> Path:
        """Path of one image, e.g. ``image_path("000001.jpg")``."""
        return self.image_dir / filename

    @property
    def names(self) -> list[str]:
        """Attribute names, in header order."""
        return list(self.attributes.columns)

    @property
    def filenames(self) -> list[str]:
        """Image file names, in file order."""
        return list(self.attributes.index)

    def __len__(self) -> int:
        return len(self.attributes)

    def __repr__(self) -> str:
        counts = "/".join(map(str, self.split_counts().tolist()))
        return (f"CelebA({len(self)} images, {self.attributes.shape[1]} attributes, layout={self.layout!r}, "
                f"train/valid/test {counts} (split: {self.split_source}), root={str(self.root)!r})")

    def split_counts(self) -> pd.Series:
        """Number of images per split (train, valid, test)."""
        counts = np.bincount(self.split.to_numpy(), minlength=3)[:3]
        return pd.Series(counts, index=list(SPLIT_NAMES), name="images")


# --------------------------------------------------------------------------- layout detection


def _first_file(candidates: Sequence[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _attribute_candidates(root: Path) -> dict[str, list[Path]]:
    return {
        "original": [root / "list_attr_celeba.txt", root / "Anno" / "list_attr_celeba.txt"],
        "kaggle": [root / "list_attr_celeba.csv"],
    }


def _partition_candidates(root: Path, layout: str) -> list[Path]:
    if layout == "original":
        return [root / "list_eval_partition.txt", root / "Eval" / "list_eval_partition.txt",
                root / "list_eval_partition.csv"]
    return [root / "list_eval_partition.csv", root / "list_eval_partition.txt"]


def _image_dir(root: Path) -> Path | None:
    outer = root / "img_align_celeba"
    nested = outer / "img_align_celeba"
    if nested.is_dir():
        return nested
    if outer.is_dir():
        return outer
    return None


def _missing_error(root: Path, missing: list[str]) -> DataError:
    lines = "\n".join(f"  - {m}" for m in missing)
    where = "does not exist" if not root.exists() else "is incomplete"
    return DataError(f"CelebA data folder {root} {where}. Missing:\n{lines}\n\n{HOW_TO_GET_CELEBA}")


def detect_layout(data_dir: str | os.PathLike) -> str:
    """``"original"`` (list_attr_celeba.txt) or ``"kaggle"`` (list_attr_celeba.csv)."""
    root = Path(data_dir).expanduser()
    for layout, candidates in _attribute_candidates(root).items():
        if _first_file(candidates):
            return layout
    raise _missing_error(root, _what_is_missing(root))


def table_files(data_dir: str | os.PathLike) -> tuple[Path, Path | None]:
    """The attribute file and the partition file (None if absent) that :func:`read_celeba` reads in
    ``data_dir``, without reading them. Raises :class:`DataError` if there is no attribute file."""
    root = Path(data_dir).expanduser()
    layout = detect_layout(root)
    return _first_file(_attribute_candidates(root)[layout]), _first_file(_partition_candidates(root, layout))


def _what_is_missing(root: Path) -> list[str]:
    missing = []
    if not root.is_dir():
        return [f"{root}/ (the folder itself)",
                f"{root / 'img_align_celeba'}/ (the aligned JPEGs 000001.jpg ...)",
                f"{root / 'list_attr_celeba.txt'} (or list_attr_celeba.csv from the Kaggle mirror)"]
    if _image_dir(root) is None:
        missing.append(f"{root / 'img_align_celeba'}/ (folder of the aligned JPEGs 000001.jpg ...)")
    if not any(_first_file(c) for c in _attribute_candidates(root).values()):
        missing.append(f"{root / 'list_attr_celeba.txt'} (or list_attr_celeba.csv from the Kaggle mirror)")
    return missing


# --------------------------------------------------------------------------- table parsing


_ATTR_FIELDS = "the file name and one value per attribute in the header"
_PARTITION_FIELDS = "the file name and its partition 0/1/2"


def _show(value) -> str:
    """repr of a table value, without numpy's type wrapper (3, not np.int64(3))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _scan_field_counts(path: Path, sep: str | None, expected: int, first_line: int,
                       what: str) -> DataError:
    """Find the first line from ``first_line`` (1-based) whose field count is wrong."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno < first_line or not line.strip():
                continue
            fields = line.split() if sep is None else line.rstrip("\r\n").split(sep)
            if len(fields) != expected:
                return DataError(
                    f"{path}, line {lineno}: expected {expected} fields ({what}), found "
                    f"{len(fields)}: {line.strip()[:120]!r}. "
                    "Fix or re-download the file.")
    return DataError(f"{path}: could not be parsed as a table. Re-download the file.")


def _read_table(path: Path, sep: str | None, names: list[str] | None, first_line: int,
                what: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a table with pandas; return it and the 1-based file line of each row.

    sep: None splits on any run of whitespace. names: the column names, for a file
    without a header (its data start at ``first_line``); None reads the header on
    line 1. Blank lines are dropped (the line numbers stay right). ``what`` says
    what a line holds, for the error message.
    """
    kwargs = dict(encoding="utf-8-sig", skip_blank_lines=False, index_col=False,
                  sep=r"\s+" if sep is None else sep)
    if names is not None:
        kwargs.update(header=None, names=names, skiprows=first_line - 1)
    n_fields = len(names) if names is not None else None
    try:
        table = pd.read_csv(path, **kwargs)
    except pd.errors.ParserError:
        if n_fields is None:
            with open(path, encoding="utf-8-sig") as f:
                n_fields = len(f.readline().rstrip("\r\n").split(sep))
        raise _scan_field_counts(path, sep, n_fields, first_line, what) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not a text table ({e}). Re-download it.") from None
    except pd.errors.EmptyDataError:
        table = pd.DataFrame(columns=names)
    lines = np.arange(len(table)) + first_line
    blank = table.isna().all(axis=1).to_numpy()
    if blank.any():
        table = table.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    return table, lines


def _as_int_column(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer values of a column and a mask of entries that are not integers."""
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.to_numpy(np.int64), np.zeros(len(column), bool)
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    bad |= np.where(bad, False, numbers != np.round(np.nan_to_num(numbers)))
    values = np.where(bad, 0, np.nan_to_num(numbers)).astype(np.int64)
    return values, bad


def _encode_attributes(raw: pd.DataFrame, lines: np.ndarray, path: Path) -> pd.DataFrame:
    """Turn raw values into 0/1 (binary -1/1 or 0/1) or 0..K-1 class indices, int8.

    Raises :class:`DataError` at the first line with a missing or invalid value.
    """
    names = list(raw.columns[1:])
    missing = raw[names].isna().to_numpy()
    columns, bad = {}, np.zeros(raw.shape, bool)[:, 1:]
    for j, name in enumerate(names):
        columns[name], bad[:, j] = _as_int_column(raw[name])
    bad &= ~missing
    problem = missing.any(axis=1) | bad.any(axis=1)
    if problem.any():
        row = int(np.argmax(problem))
        line = int(lines[row])
        if missing[row].any():
            found = int((~missing[row]).sum())
            raise DataError(
                f"{path}, line {line}: expected {len(names)} values after the file name (one per "
                f"attribute in the header), found {found}. Fix or re-download the file.")
        j = int(np.argmax(bad[row]))
        raise DataError(
            f"{path}, line {line}: value {_show(raw.iloc[row, j + 1])} for attribute {names[j]!r} is not "
            "-1, 0, 1 or a class index 0..K-1 (binary attributes are -1/1 or 0/1). "
            "Fix or re-download the file.")

    encoded = {}
    for name, values in columns.items():
        present = set(np.unique(values).tolist())
        if present <= {-1, 1}:
            values = (values + 1) // 2  # -1/1 -> 0/1
        elif min(present) < 0:
            if -1 in present:  # -1 mixed with 0, 2, ...
                other = sorted(present - {-1, 1})[0]
                row = int(np.argmax(values == other))
                raise DataError(
                    f"{path}, line {int(lines[row])}: attribute {name!r} mixes -1 with {other}: a binary "
                    "attribute is -1/1 or 0/1, a categorical one is 0..K-1. Fix the file.")
            row = int(np.argmax(values < 0))
            raise DataError(
                f"{path}, line {int(lines[row])}: attribute {name!r} has the negative value "
                f"{int(values[row])}; expected -1/1, 0/1 or class indices 0..K-1. Fix the file.")
        elif max(present) > 127:
            row = int(np.argmax(values > 127))
            raise DataError(
                f"{path}, line {int(lines[row])}: attribute {name!r} has the class index "
                f"{int(values[row])}; at most 128 classes (0..127) are supported.")
        encoded[name] = values.astype(np.int8)
    return pd.DataFrame(encoded, index=raw.index)


def _check_unique(filenames: pd.Series, lines: np.ndarray, path: Path) -> None:
    dup = filenames.duplicated(keep=False).to_numpy()
    if dup.any():
        first = filenames[dup].iloc[0]
        where = [int(x) for x in lines[(filenames == first).to_numpy()]][:5]
        raise DataError(
            f"{path}: file name {first!r} appears more than once (lines {', '.join(map(str, where))}); "
            f"{int(dup.sum())} rows share a name with another. Each image must appear once; "
            "remove the duplicates or re-download the file.")


def _read_attr_txt(path: Path) -> pd.DataFrame:
    """Original ``list_attr_celeba.txt``: count, names, then ``filename v1 ... vK`` rows."""
    with open(path, encoding="utf-8-sig") as f:
        count_line, names_line = f.readline(), f.readline()
    try:
        declared = int(count_line.strip())
    except ValueError:
        raise DataError(
            f"{path}, line 1: expected the number of images (e.g. 202599), found "
            f"{count_line.strip()[:80]!r}. This is not an original-layout list_attr_celeba.txt; "
            "re-download it from the CelebA site (Anno/list_attr_celeba.txt).") from None
    names = names_line.split()
    if not names:
        raise DataError(f"{path}, line 2: expected the attribute names separated by spaces, "
                        "found an empty line. Re-download the file.")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{path}, line 2: attribute name {dup!r} appears twice in the header.")
    raw, lines = _read_table(path, None, ["image_id", *names], first_line=3, what=_ATTR_FIELDS)
    if len(raw) != declared:
        raise DataError(
            f"{path}: line 1 says there are {declared} images, but the file has {len(raw)} rows. "
            "The file is probably truncated or edited; re-download it (or fix line 1).")
    return _finish_attributes(raw, lines, path)


def _read_attr_csv(path: Path) -> pd.DataFrame:
    """Kaggle ``list_attr_celeba.csv``: header ``image_id,<names>``, one row per image."""
    raw, lines = _read_table(path, ",", None, first_line=2, what=_ATTR_FIELDS)
    if raw.shape[1] < 2:
        raise DataError(f"{path}, line 1: expected a header 'image_id,5_o_Clock_Shadow,...' with at "
                        f"least one attribute, found {list(raw.columns)}.")
    raw.columns = [str(c).strip() for c in raw.columns]
    return _finish_attributes(raw, lines, path)


def _finish_attributes(raw: pd.DataFrame, lines: np.ndarray, path: Path) -> pd.DataFrame:
    filenames = raw.iloc[:, 0].astype(str).str.strip()
    _check_unique(filenames, lines, path)
    table = _encode_attributes(raw, lines, path)
    table.index = pd.Index(filenames.to_numpy(), name="image_id")
    return table


def _read_partition(path: Path, attributes: pd.DataFrame) -> pd.Series:
    """``filename k`` (txt, no header) or ``image_id,partition`` (csv); aligned to ``attributes``."""
    if path.suffix == ".csv":
        raw, lines = _read_table(path, ",", None, first_line=2, what=_PARTITION_FIELDS)
        if raw.shape[1] != 2:
            raise DataError(f"{path}, line 1: expected the header 'image_id,partition', "
                            f"found {list(raw.columns)}.")
    else:
        raw, lines = _read_table(path, None, ["image_id", "partition"], first_line=1,
                                 what=_PARTITION_FIELDS)
    if raw.iloc[:, 1].isna().any():
        row = int(np.argmax(raw.iloc[:, 1].isna().to_numpy()))
        raise DataError(f"{path}, line {int(lines[row])}: expected 'filename partition', found only "
                        f"{_show(raw.iloc[row, 0])}. Fix or re-download the file.")
    values, bad = _as_int_column(raw.iloc[:, 1])
    bad |= ~np.isin(values, (0, 1, 2))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}, line {int(lines[row])}: partition value {_show(raw.iloc[row, 1])} is not 0 (train), "
            "1 (valid) or 2 (test). Fix or re-download the file.")
    filenames = raw.iloc[:, 0].astype(str).str.strip()
    _check_unique(filenames, lines, path)
    split = pd.Series(values.astype(np.int8), index=pd.Index(filenames.to_numpy(), name="image_id"),
                      name="split")
    unknown = ~split.index.isin(attributes.index)
    if unknown.any():
        row = int(np.argmax(unknown))
        raise DataError(
            f"{path}: {int(unknown.sum())} file(s) are not in the attribute file, first "
            f"{split.index[row]!r} at line {int(lines[row])}. The partition and attribute files must "
            "list the same images; use the two files of the same CelebA download.")
    absent = ~attributes.index.isin(split.index)
    if absent.any():
        first = attributes.index[int(np.argmax(absent))]
        raise DataError(
            f"{path}: {int(absent.sum())} image(s) of the attribute file have no partition, first "
            f"{first!r}. Use the partition file of the same CelebA download, or delete it to use "
            "a default 80/10/10 split.")
    return split.reindex(attributes.index)


def default_split(n: int) -> np.ndarray:
    """Deterministic split by index: first 80 % train (0), next 10 % valid (1), last 10 % test (2)."""
    n_train, n_valid = int(round(0.8 * n)), int(round(0.1 * n))
    split = np.full(n, 2, np.int8)
    split[:n_train] = 0
    split[n_train:n_train + n_valid] = 1
    return split


# --------------------------------------------------------------------------- entry point


def read_celeba(data_dir: str | os.PathLike | None = None) -> CelebA:
    """Read CelebA's tables from ``data_dir`` (original or Kaggle layout, detected).

    ``data_dir=None`` uses :func:`resolve_data_dir`. Images are not opened here.
    Without a partition file the split is the first 80/10/10 % by index (a warning
    says so and ``split_source`` is ``"default 80/10/10"``).
    """
    root = resolve_data_dir(data_dir)
    missing = _what_is_missing(root)
    if missing:
        raise _missing_error(root, missing)
    layout = detect_layout(root)
    attribute_file = _first_file(_attribute_candidates(root)[layout])
    attributes = _read_attr_txt(attribute_file) if layout == "original" else _read_attr_csv(attribute_file)

    partition_file = _first_file(_partition_candidates(root, layout))
    if partition_file is not None:
        split = _read_partition(partition_file, attributes)
        source = "file"
    else:
        warnings.warn(
            f"No partition file (list_eval_partition.txt/.csv) in {root}: using a default split by "
            "index, the first 80 % train, 10 % valid, 10 % test. Add CelebA's "
            "Eval/list_eval_partition.txt for the official split.", UserWarning, stacklevel=2)
        split = pd.Series(default_split(len(attributes)), index=attributes.index, name="split")
        source = DEFAULT_SPLIT_SOURCE
    return CelebA(root=root, layout=layout, image_dir=_image_dir(root), attributes=attributes,
                  split=split, split_source=source, attribute_file=attribute_file,
                  partition_file=partition_file)

