"""Previews of research data files: their structure, first values and histograms.

Free of Django on purpose: a worker calls it on stored files, and it must stay testable on its own.
Every reader is bounded (max_rows, max_items, max_entries), so a preview never loads a whole file,
and every failure leaves as PreviewError naming the format, because the reason is shown to people.
The heavy libraries are imported only when their format is previewed: detect_format runs on upload.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import decimal
import io
import math
import os
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

FORMATS: dict[str, str] = {
    "hdf5": "HDF5", "root": "ROOT", "parquet": "Parquet", "csv": "CSV", "npy": "NumPy array",
    "npz": "NumPy archive", "image": "image", "text": "text", "other": "other",
}

_EXTENSIONS = {
    ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".he5": "hdf5", ".root": "root",
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".npy": "npy", ".npz": "npz",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image",
    **dict.fromkeys((".txt", ".md", ".rst", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".log",
                     ".xml", ".py", ".c", ".cc", ".cpp", ".cxx", ".h", ".sh", ".tex"), "text"),
}
_MAGIC = (
    (b"PAR1", "parquet"), (b"\x93NUMPY", "npy"), (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"), (b"GIF87a", "image"), (b"GIF89a", "image"),
    # Known formats without a preview: a .csv.gz or a FITS file named .txt is not text.
    (b"\x1f\x8b", "other"), (b"SIMPLE  =", "other"),
)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NUMERIC_KINDS = "iuf"  # booleans and complex numbers make no sense on a histogram axis
_PICKLE = "cannot preview: object arrays need pickle, which erumlab never loads"
_IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP")  # not EPS: Pillow runs Ghostscript
_CSV_SAMPLE_BYTES = 64 * 1024
_CSV_SAMPLE_ROWS = 1000
_CSV_COUNT_LIMIT = 50 * 1024 * 1024
_TEXT_LIMIT = 1024 * 1024  # one enormous line must not be read whole
_CELL = 200


class PreviewError(Exception):
    """A file cannot be previewed; the message is a reason meant for people."""


def detect_format(filename: str, head: bytes) -> str:
    """The format key of a file, from its first bytes (at least 512 are best) and then its name.

    Magic bytes always win over the extension. Without recognised magic the extension decides, and
    the reader then says why the file is not what its name claims.
    """
    extension = os.path.splitext(filename.lower())[1]
    # HDF5 allows a user block of 512, 1024, ... bytes before its signature.
    if any(head[offset:offset + 8] == _HDF5_MAGIC for offset in (0, 512, 1024, 2048)):
        return "hdf5"
    # A ROOT header is b"root" then a big-endian version below 2**24: text never has that NUL.
    if head.startswith(b"root") and head[4:5] in (b"", b"\x00"):
        return "root"
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        # np.savez writes a zip whose members are .npy files; the first member's name is in the head.
        first = head[30:30 + int.from_bytes(head[26:28], "little")]
        return "npz" if extension == ".npz" or first.endswith(b".npy") else "other"
    by_name = _EXTENSIONS.get(extension)
    if by_name in ("text", "csv"):
        return by_name if b"\x00" not in head else "other"
    if by_name:
        return by_name
    return "text" if _looks_like_text(head) else "other"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:  # incremental: the head may end inside a multi-byte character
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def preview(path: str | Path, fmt: str, *, max_rows: int = 20, max_items: int = 200) -> dict:
    """A JSON-serialisable description of the file, with a "kind" key (see the readers below)."""
    path = _existing(path, fmt)
    if fmt == "other":
        return {"kind": "none", "reason": "no preview for this format"}
    reader = _PREVIEWS[fmt]
    with _reading(fmt, path):
        return reader(path, max(0, max_rows), max(1, max_items))


def numeric_columns(preview: dict) -> list[str]:
    """The column names histogram() accepts for the file this preview describes."""
    return [name for name, (numeric, _) in _columns(preview).items() if numeric]


def histogram(path: str | Path, fmt: str, column: str, *, bins: int = 50,
              max_entries: int = 1_000_000) -> bytes:
    """A PNG histogram of at most max_entries finite values of one numeric column."""
    path = _existing(path, fmt)
    # A preview without values is cheap (structure only) and names exactly what the page offers.
    columns = _columns(preview(path, fmt, max_rows=0)) if fmt in _VALUES else {}
    if column not in columns:
        choices = [name for name, (numeric, _) in columns.items() if numeric]
        more = f" and {len(choices) - 20} more" if len(choices) > 20 else ""
        listed = ", ".join(choices[:20]) + more
        raise PreviewError(f"no numeric column {column!r}; choose one of: {listed or '(none)'}")
    numeric, locator = columns[column]
    if not numeric:  # text, or a numeric block (2-D dataset, struct) that has no single axis
        raise PreviewError(f"column {column!r} is not a flat numeric column, so it has no histogram")
    with _reading(fmt, path):
        values = _VALUES[fmt](path, locator, max(1, max_entries))
    return _draw(np.asarray(values, dtype=np.float64).reshape(-1)[:max_entries], column,
                 min(max(1, bins), 1000))


# -- shared helpers -----------------------------------------------------------------------------

def _existing(path: str | Path, fmt: str) -> Path:
    path = Path(path)
    if fmt not in FORMATS:
        raise PreviewError(f"unknown format {fmt!r}")
    if not path.is_file():
        raise PreviewError("the file does not exist or is not a regular file")
    if fmt != "other" and path.stat().st_size == 0:
        raise PreviewError(f"the {FORMATS[fmt]} file is empty")
    return path


def _library_errors(fmt: str) -> tuple[type[BaseException], ...]:
    if fmt == "root":
        from uproot.deserialization import DeserializationError
        from uproot.interpretation.identify import UnknownInterpretation
        return DeserializationError, UnknownInterpretation
    if fmt == "parquet":
        import pyarrow
        return (pyarrow.ArrowException,)
    if fmt == "image":
        return (SyntaxError,)  # how Pillow reports some broken files
    return ()


_COMMON_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, EOFError,
                  NotImplementedError, struct.error, zipfile.BadZipFile, csv.Error)


@contextmanager
def _reading(fmt: str, path: Path) -> Iterator[None]:
    """Turn a library's failure into PreviewError naming the format: no raw traceback leaks out."""
    try:
        yield
    except PreviewError:
        raise
    except MemoryError as error:
        raise PreviewError(f"the {FORMATS[fmt]} file is too large to preview") from error
    except (*_COMMON_ERRORS, *_library_errors(fmt)) as error:
        raise PreviewError(f"not a valid {FORMATS[fmt]} file: {_reason(error, path)}") from error


def _reason(error: BaseException, path: Path) -> str:
    # Libraries quote the stored path, which means nothing to the reader and says where files live.
    text = (str(error) or type(error).__name__).replace(str(path), "the file")
    text = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _jsonable(value: Any, limit: int = 20, depth: int = 0) -> Any:
    """Only str/int/float/bool/None/list/dict, with long sequences and strings cut short."""
    if isinstance(value, np.void) and value.dtype.names:
        return {name: _jsonable(value[name], limit, depth + 1) for name in value.dtype.names}
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _jsonable(value[()], limit, depth)
        value = value[:limit]  # slice before converting: the array may be large
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= _CELL else value[:_CELL - 3] + "..."
    if isinstance(value, bytes | bytearray | memoryview):
        text = repr(bytes(value[:60]))
        return text + "..." if len(value) > 60 else text
    if depth > 3:  # deeper nesting is unreadable on a page anyway
        return str(value)[:_CELL]
    if isinstance(value, dict):
        return {str(key): _jsonable(item, limit, depth + 1)
                for key, item in islice(value.items(), limit)}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_jsonable(item, limit, depth + 1) for item in islice(value, limit)]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | complex):
        return str(value)
    return str(value)[:_CELL]


def _columns(preview: dict) -> dict[str, tuple[bool, Any]]:
    """Every column a preview names -> (numeric?, how its reader finds it)."""
    columns: dict[str, tuple[bool, Any]] = {}
    kind = preview.get("kind") if isinstance(preview, dict) else None
    if kind == "hdf5":
        for node in preview.get("tree") or []:
            if node.get("type") == "dataset":
                columns[node["path"]] = (bool(node.get("numeric")), (node["path"], None))
                for field in node.get("fields") or []:
                    columns[f"{node['path']}:{field['name']}"] = (
                        bool(field.get("numeric")), (node["path"], field["name"]))
    elif kind == "root":
        for tree in preview.get("trees") or []:
            for branch in tree.get("branches") or []:
                columns[f"{tree['name']}/{branch['name']}"] = (
                    bool(branch.get("numeric")), (tree["name"], branch["name"]))
    elif kind == "table":
        for index, column in enumerate(preview.get("schema") or []):
            columns.setdefault(column["name"], (bool(column.get("numeric")), (index, column["name"])))
    elif kind == "array":
        for array in preview.get("arrays") or []:
            columns[array["name"]] = (bool(array.get("numeric")), array["name"])
    return columns


def _draw(values: np.ndarray, column: str, bins: int) -> bytes:
    # Figure + the Agg canvas, never pyplot: pyplot keeps global state and is not thread-safe.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = values[np.isfinite(values)]
    if not values.size:
        raise PreviewError(f"column {column!r} has no finite values to draw")
    low, high = float(values.min()), float(values.max())
    with np.errstate(all="ignore"):
        if not math.isfinite(high - low):  # beyond float64: no axis could show it
            raise PreviewError(f"the values of {column!r} span too wide a range to draw")
        edges = np.linspace(low, high, bins + 1)
        if not np.all(np.diff(edges) > 0):  # one value, or a range finer than float resolution
            pad = max(abs(low), 1.0) * 1e-3
            edges = np.array([low - pad, high + pad])
        title = f"{values.size:,} entries, mean {values.mean():.4g}, std {values.std():.4g}"
    figure = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.hist(values, bins=edges, histtype="stepfilled", color="#4c78a8", edgecolor="#2d4a6b")
    axes.set(xlabel=column, ylabel="entries", title=title)
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png")
    except (ValueError, OverflowError) as error:  # matplotlib's ticks on extreme values
        raise PreviewError(f"cannot draw a histogram of {column!r}: {error}") from error
    return buffer.getvalue()


def _take(chunks: Iterator[np.ndarray], limit: int) -> np.ndarray:
    """Values from successive chunks, stopping (and reading no further) at limit."""
    parts, total = [], 0
    for chunk in chunks:
        parts.append(np.asarray(chunk, dtype=np.float64).reshape(-1)[:limit - total])
        total += parts[-1].size
        if total >= limit:
            break
    return np.concatenate(parts) if parts else np.empty(0)


def _numeric(dtype: np.dtype) -> bool:
    return dtype.base.kind in _NUMERIC_KINDS


def _dtype_name(dtype: np.dtype) -> str:
    return dtype.name if dtype.kind in "biufc" else str(dtype)  # "float32", not "<f4"


# -- HDF5 ---------------------------------------------------------------------------------------

def _preview_hdf5(path: Path, max_rows: int, max_items: int) -> dict:
    import h5py

    with h5py.File(path, "r") as handle:
        tree = [_hdf5_node(handle, max_rows)]

        def visit(_name: str, obj: Any) -> bool | None:
            tree.append(_hdf5_node(obj, max_rows))
            return True if len(tree) > max_items else None  # a true value stops the walk

        handle.visititems(visit)  # hard links only: external links could open other files
    return {"kind": "hdf5", "tree": tree[:max_items], "truncated": len(tree) > max_items}


def _hdf5_node(obj: Any, max_rows: int) -> dict:
    import h5py

    node: dict[str, Any] = {"path": obj.name, "type": "group", "shape": None, "dtype": None,
                            "attrs": _hdf5_attrs(obj), "first": None}
    if isinstance(obj, h5py.Datatype):
        node.update(type="datatype", dtype=str(obj.dtype))
    if not isinstance(obj, h5py.Dataset):
        return node
    dtype = obj.dtype
    if h5py.check_string_dtype(dtype):
        name = "string"
    elif h5py.check_vlen_dtype(dtype) is not None:
        name = f"vlen {h5py.check_vlen_dtype(dtype)}"
    else:
        name = _dtype_name(dtype)
    node.update(type="dataset", dtype=name, shape=None if obj.shape is None else list(obj.shape),
                numeric=obj.ndim == 1 and dtype.kind in _NUMERIC_KINDS)
    if dtype.names and obj.ndim == 1:
        node["fields"] = [{"name": field, "dtype": str(dtype[field]),
                           "numeric": dtype[field].kind in _NUMERIC_KINDS and not dtype[field].shape}
                          for field in dtype.names]
    # External raw storage and virtual datasets name other files on this machine: never read them.
    if obj.external or obj.is_virtual:
        node.update(numeric=False, fields=[], note="the values live in other files; not read")
        return node
    if max_rows and obj.shape is not None:
        try:
            node["first"] = _hdf5_first(obj, max_rows)
        except _COMMON_ERRORS as error:  # e.g. a compression filter this machine lacks
            node["error"] = f"cannot read values: {str(error)[:_CELL]}"
    return node


def _hdf5_first(dataset: Any, count: int) -> list:
    import h5py

    if dataset.size == 0:
        return []
    # Index the smallest block holding the first `count` values in C order, not whole rows.
    shape, index = dataset.shape, []
    for axis in range(len(shape)):
        inner = math.prod(shape[axis + 1:])
        if inner >= count:
            index.append(slice(0, 1))
        else:
            index.append(slice(0, -(-count // inner)))
            index.extend(slice(None) for _ in shape[axis + 1:])
            break
    source = dataset.asstr() if h5py.check_string_dtype(dataset.dtype) else dataset
    values = np.asarray(source[tuple(index)]).reshape(-1)[:count]
    return [_jsonable(value, count) for value in values]


def _hdf5_attrs(obj: Any, limit: int = 20) -> dict:
    attrs: dict[str, Any] = {}
    for number, name in enumerate(obj.attrs):
        if number == limit:
            attrs["..."] = f"{len(obj.attrs) - limit} more attributes"
            break
        try:
            attrs[name] = _jsonable(obj.attrs[name], 10)
        except (OSError, TypeError, ValueError):  # types h5py cannot map to numpy
            attrs[name] = "(unreadable)"
    return attrs


def _values_hdf5(path: Path, locator: tuple[str, str | None], max_entries: int) -> np.ndarray:
    import h5py

    name, field = locator
    with h5py.File(path, "r") as handle:
        dataset = handle[name]
        return np.asarray((dataset.fields(field) if field else dataset)[:max_entries])


# -- ROOT ---------------------------------------------------------------------------------------

_TREES = {"TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple"}
_DIRECTORIES = {"TDirectory", "TDirectoryFile"}


def _preview_root(path: Path, max_rows: int, max_items: int) -> dict:
    import uproot

    trees: list[dict] = []
    other: list[dict] = []
    budget, truncated = max_items, False
    with uproot.open(path) as file:
        latest: dict[str, tuple[int, str]] = {}
        for key, classname in file.classnames(recursive=True).items():
            name, _, cycle = key.rpartition(";")
            number = int(cycle) if cycle.isdigit() else 0
            # Directories list their contents themselves; older cycles are superseded snapshots.
            if classname not in _DIRECTORIES and number >= latest.get(name, (-1,))[0]:
                latest[name] = (number, classname)
        for name, (cycle, classname) in latest.items():
            budget -= 1
            if budget < 0:
                truncated = True
                break
            if classname in _TREES:
                tree = file[f"{name};{cycle}"]
                branches = _root_branches(tree, classname, max_rows, budget + 1)  # +1: is there more?
                truncated = truncated or len(branches) > budget
                branches = branches[:budget]
                budget -= len(branches)
                trees.append({"name": name, "class": classname, "entries": int(tree.num_entries),
                              "branches": branches})
            else:
                other.append(_root_other(file, f"{name};{cycle}", name, classname, max_items))
    return {"kind": "root", "trees": trees, "other": other, "truncated": truncated}


def _root_branches(tree: Any, classname: str, max_rows: int, budget: int) -> list[dict]:
    ntuple = classname == "ROOT::RNTuple"
    items = tree.items() if ntuple else tree.items(recursive=True, full_paths=True)
    branches = []
    for name, branch in islice(items, budget):
        info = {"name": name, "type": branch.typename, "first": None,
                "numeric": _rntuple_numeric(branch) if ntuple else _ttree_numeric(branch)}
        if max_rows:
            try:
                info["first"] = _jsonable(branch.array(entry_stop=max_rows, library="ak").to_list(),
                                          max_rows)
            except (*_COMMON_ERRORS, *_library_errors("root")) as error:
                info["error"] = f"cannot read values: {str(error)[:_CELL]}"
        branches.append(info)
    return branches


def _ttree_numeric(branch: Any) -> bool:
    from uproot.interpretation.jagged import AsJagged
    from uproot.interpretation.numerical import AsDtype, TruncatedNumerical

    try:
        interpretation = branch.interpretation
    except Exception:  # uproot raises many kinds of error for types it cannot read
        return False
    if branch.branches:  # a split object: its leaves are listed on their own
        return False
    if isinstance(interpretation, AsJagged):  # histogrammed flattened
        interpretation = interpretation.content
    if isinstance(interpretation, TruncatedNumerical):  # Double32_t, Float16_t
        return True
    return isinstance(interpretation, AsDtype) and _numeric(interpretation.to_dtype)


def _rntuple_numeric(field: Any) -> bool:
    import awkward as ak

    form = field.to_akform()[0]
    if isinstance(form, ak.forms.RecordForm) and field.name in form.fields:
        form = form.content(field.name)
    while isinstance(form, ak.forms.ListOffsetForm | ak.forms.ListForm | ak.forms.RegularForm):
        form = form.content
    return isinstance(form, ak.forms.NumpyForm) and not form.inner_shape \
        and form.primitive.startswith(("int", "uint", "float"))


def _root_other(file: Any, key: str, name: str, classname: str, max_items: int) -> dict:
    # Only 1-D histograms are read: other classes may lack streamers uproot understands.
    item: dict[str, Any] = {"name": name, "class": classname}
    if classname.startswith(("TH1", "TProfile")) and not classname.startswith("TProfile2"):
        try:
            obj = file[key]
            item["edges"] = _jsonable(obj.axis().edges(), max_items + 1)
            item["contents"] = _jsonable(obj.values(), max_items)
        except (*_COMMON_ERRORS, *_library_errors("root")) as error:
            item["error"] = f"cannot read the bins: {str(error)[:_CELL]}"
    return item


def _values_root(path: Path, locator: tuple[str, str], max_entries: int) -> np.ndarray:
    import awkward as ak
    import uproot

    with uproot.open(path) as file:
        tree = file[locator[0]]
        branch, entries, step = tree[locator[1]], int(tree.num_entries), min(max_entries, 100_000)
        # Jagged branches hold many values per entry: read in steps until max_entries values.
        chunks = (branch.array(entry_start=start, entry_stop=min(entries, start + step), library="ak")
                  for start in range(0, entries, step))
        return _take((ak.to_numpy(ak.flatten(chunk, axis=None)) for chunk in chunks), max_entries)


# -- tables: Parquet and CSV --------------------------------------------------------------------

def _preview_parquet(path: Path, max_rows: int, max_items: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as table:
        fields = list(table.schema_arrow)
        shown = fields[:max_items]
        rows: list[list] = []
        if max_rows and table.metadata.num_rows:
            columns = None if len(fields) == len(shown) else [field.name for field in shown]
            batch = next(table.iter_batches(batch_size=max_rows, columns=columns), None)
            if batch is not None:
                values = [batch.column(i).to_pylist()[:max_rows] for i in range(batch.num_columns)]
                rows = [[_jsonable(cell, max_rows) for cell in row] for row in zip(*values, strict=True)]
        schema = [{"name": field.name, "type": str(field.type),
                   "numeric": pa.types.is_integer(field.type) or pa.types.is_floating(field.type)}
                  for field in shown]
        return {"kind": "table", "schema": schema, "rows": rows, "num_rows": table.metadata.num_rows,
                "num_rows_exact": True, "truncated": len(fields) > len(shown)}


def _values_parquet(path: Path, locator: tuple[int, str], max_entries: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as table:
        # Nulls become NaN, dropped with the other non-finite values; uint64 may lose precision.
        batches = table.iter_batches(batch_size=65_536, columns=[locator[1]])
        return _take((batch.column(0).cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
                      for batch in batches), max_entries)


class _Sniffer(csv.Sniffer):
    # has_header() sniffs again with every character allowed; keep it to real delimiters.
    def sniff(self, sample: str, delimiters: str | None = ",;\t|") -> type[csv.Dialect]:
        return super().sniff(sample, delimiters)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_dialect(path: Path) -> tuple[Any, bool]:
    with open(path, "rb") as raw:
        head = raw.read(_CSV_SAMPLE_BYTES)
    if b"\x00" in head:
        raise PreviewError("not a valid CSV file: it holds binary data (NUL bytes)")
    sample = head.decode("utf-8-sig", errors="replace")
    if len(head) == _CSV_SAMPLE_BYTES and "\n" in sample:
        sample = sample[:sample.rfind("\n") + 1]  # a cut last line would mislead the sniffer
    sniffer = _Sniffer()
    try:
        dialect: Any = sniffer.sniff(sample)
    except csv.Error:  # a single column, most often
        dialect = csv.excel
    try:
        header = sniffer.has_header(sample)
    except csv.Error:  # a header is a first row that is not all numbers
        first = next(csv.reader(io.StringIO(sample), dialect), [])
        header = any(cell.strip() and not _is_float(cell) for cell in first)
    return dialect, header


def _preview_csv(path: Path, max_rows: int, max_items: int) -> dict:
    dialect, has_header = _csv_dialect(path)
    countable = path.stat().st_size <= _CSV_COUNT_LIMIT  # beyond that, counting reads too much
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = (row for row in csv.reader(handle, dialect) if row)  # skip blank lines
        first = next(reader, [])
        sample = [] if has_header else [first]
        count = len(sample)
        for row in reader:
            if len(sample) < _CSV_SAMPLE_ROWS:
                sample.append(row)
            elif not countable:
                break
            count += 1
    width = max([len(first), *map(len, sample)])
    names = [(first[i] if has_header and i < len(first) else "") or f"column {i + 1}"
             for i in range(min(width, max_items))]
    schema = []
    for index, name in enumerate(names):
        cells = [row[index].strip() for row in sample if index < len(row) and row[index].strip()]
        numeric = bool(cells) and all(map(_is_float, cells))
        integer = numeric and all(cell.lstrip("+-").isdigit() for cell in cells)
        schema.append({"name": name, "type": "int" if integer else "float" if numeric else "string",
                       "numeric": numeric})
    rows = [[_jsonable(cell) for cell in row[:len(names)]] for row in sample[:max_rows]]
    return {"kind": "table", "schema": schema, "rows": rows, "num_rows": count if countable else None,
            "num_rows_exact": countable, "truncated": width > len(names),
            "delimiter": dialect.delimiter, "header": has_header}


def _values_csv(path: Path, locator: tuple[int, str], max_entries: int) -> np.ndarray:
    dialect, has_header = _csv_dialect(path)
    index, values = locator[0], []
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = (row for row in csv.reader(handle, dialect) if row)
        for row in islice(rows, 1 if has_header else 0, None):
            if index < len(row) and _is_float(row[index]):  # empty or stray text cells are skipped
                values.append(float(row[index]))
                if len(values) >= max_entries:
                    break
    return np.asarray(values, dtype=np.float64)


# -- NumPy --------------------------------------------------------------------------------------

def _npy_header(handle: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype, read without numpy.load: object arrays are refused before any loading."""
    from numpy.lib import format as npy

    version = npy.read_magic(handle)
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _fortran, dtype = read(handle)
    if dtype.hasobject:
        raise PreviewError(_PICKLE)
    return shape, dtype


def _npy_prefix(handle: Any, dtype: np.dtype, count: int) -> np.ndarray:
    # The first values in storage order (C order, or Fortran order when the file says so).
    size = dtype.itemsize * count
    data = handle.read(size) if size else b""
    return np.frombuffer(data[:len(data) - len(data) % max(1, dtype.itemsize)], dtype=dtype)


def _array_info(name: str, shape: tuple[int, ...], dtype: np.dtype, first: np.ndarray) -> dict:
    return {"name": name, "shape": list(shape), "dtype": _dtype_name(dtype),
            "numeric": _numeric(dtype), "first": [_jsonable(value) for value in first]}


def _load_npy(path: Path) -> tuple[tuple[int, ...], np.dtype, np.ndarray]:
    """Shape, dtype and the values flattened in storage order, as a view of a memory map."""
    with open(path, "rb") as handle:
        shape, dtype = _npy_header(handle)
    if math.prod(shape) == 0:  # nothing to map
        return shape, dtype, np.empty(0, dtype)
    # Memory-mapped: only the pages a preview touches are read from a large file.
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    return shape, dtype, array.reshape(-1, order="A")  # storage order needs no copy


def _preview_npy(path: Path, max_rows: int, max_items: int) -> dict:
    shape, dtype, values = _load_npy(path)
    first = np.array(values[:max_rows])
    return {"kind": "array", "arrays": [_array_info("array", shape, dtype, first)]}


def _preview_npz(path: Path, max_rows: int, max_items: int) -> dict:
    # Each member is read as a .npy stream: shape and dtype from its header, then a few values,
    # so a large archive is never decompressed whole (np.load on an .npz would do exactly that).
    arrays = []
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
        for info in members[:max_items]:
            with archive.open(info) as member:
                shape, dtype = _npy_header(member)
                first = _npy_prefix(member, dtype, min(max_rows, math.prod(shape)))
            arrays.append(_array_info(info.filename.removesuffix(".npy"), shape, dtype, first))
    return {"kind": "array", "arrays": arrays, "truncated": len(members) > max_items}


def _values_npy(path: Path, locator: str, max_entries: int) -> np.ndarray:
    return np.array(_load_npy(path)[2][:max_entries])


def _values_npz(path: Path, locator: str, max_entries: int) -> np.ndarray:
    with zipfile.ZipFile(path) as archive, archive.open(f"{locator}.npy") as member:
        shape, dtype = _npy_header(member)
        return _npy_prefix(member, dtype, min(max_entries, math.prod(shape)))


# -- images and text ----------------------------------------------------------------------------

def _preview_image(path: Path, max_rows: int, max_items: int) -> dict:
    from PIL import Image

    try:
        with Image.open(path, formats=_IMAGE_FORMATS) as image:
            width, height = image.size
            # The page shows the image itself: refuse what would flood a browser, too.
            if width * height > (Image.MAX_IMAGE_PIXELS or math.inf):
                raise PreviewError(f"the image is too large to preview ({width} x {height} pixels)")
            image.verify()  # checks the structure (PNG checksums, ...) without decoding pixels
            return {"kind": "image", "width": width, "height": height, "mode": image.mode,
                    "format": image.format}
    except Image.DecompressionBombError as error:
        raise PreviewError(f"the image is too large to preview: {error}") from error


def _preview_text(path: Path, max_rows: int, max_items: int) -> dict:
    with open(path, "rb") as handle:
        data = handle.read(_TEXT_LIMIT)
    lines = data.decode("utf-8", errors="replace").splitlines()
    truncated = len(lines) > max_rows or len(data) == _TEXT_LIMIT
    return {"kind": "text", "lines": [line[:1000] for line in lines[:max_rows]], "truncated": truncated}


_PREVIEWS = {
    "hdf5": _preview_hdf5, "root": _preview_root, "parquet": _preview_parquet, "csv": _preview_csv,
    "npy": _preview_npy, "npz": _preview_npz, "image": _preview_image, "text": _preview_text,
}
_VALUES = {
    "hdf5": _values_hdf5, "root": _values_root, "parquet": _values_parquet, "csv": _values_csv,
    "npy": _values_npy, "npz": _values_npz,
}
