"""Previews of real files written in tmp_path: structure, first values, histograms, refusals."""

from __future__ import annotations

import csv
import datetime
import decimal
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot
from PIL import Image

from erumlab.catalogue import previews
from erumlab.catalogue.previews import (
    FORMATS,
    PreviewError,
    detect_format,
    histogram,
    numeric_columns,
    preview,
)

PNG = b"\x89PNG\r\n\x1a\n"
ENERGY = np.random.default_rng(7).normal(50.0, 10.0, 4000)


def write_hdf5(path: Path) -> Path:
    with h5py.File(path, "w") as handle:
        handle.attrs["generator"] = "toy"
        showers = handle.create_group("showers")
        showers.attrs["beam_energy_gev"] = 50.0
        energy = showers.create_dataset("energy", data=ENERGY)
        energy.attrs["unit"] = "GeV"
        showers.create_dataset("layers", data=np.arange(84, dtype="float32").reshape(7, 12))
        nested = showers.create_group("calibration/run1")
        hits = np.zeros(5, dtype=[("x", "f4"), ("y", "f4"), ("cell", "i4"), ("tag", "S4")])
        hits["x"], hits["y"], hits["tag"] = [1, 2, 3, 4, 5], 0.5, b"hit"
        hits["cell"] = [10, 11, 12, 13, 14]
        nested.create_dataset("hits", data=hits)
        handle.create_dataset("with_nan", data=np.array([1.0, np.nan, np.inf, 2.0]))
        handle.create_dataset("names", data=["alpha", "beta"], dtype=h5py.string_dtype())
        handle.create_dataset("raw", data=np.array([np.void(b"\x01\x02\x03")]))  # opaque bytes
    return path


def write_root(path: Path) -> Path:
    rng = np.random.default_rng(3)
    jets = ak.Array([[40.0, 25.5], [], [31.0], [12.0, 11.0, 10.0]] * 250)
    with uproot.recreate(path) as file:
        file.mktree("Events", {"pt": "f8", "eta": "f4", "jet_pt": "var * float64"})
        file["Events"].extend({"pt": np.linspace(0.0, 99.9, 1000), "eta": rng.normal(0, 1, 1000)
                               .astype("f4"), "jet_pt": jets})
        file["h_mass"] = np.histogram(rng.normal(91.0, 2.5, 5000), bins=20, range=(80.0, 100.0))
    return path


def write_parquet(path: Path) -> Path:
    table = pa.table({"run": pa.array([1, 2, 3, 4], pa.int64()),
                      "energy": pa.array([10.5, None, 30.25, 40.0], pa.float64()),
                      "label": ["a", "b", "c", "d"]})
    pq.write_table(table, path)
    return path


def write_csv(path: Path, delimiter: str = ",", rows: int = 50) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["event", "energy", "particle"])
        for number in range(rows):
            writer.writerow([number, f"{1.5 * number:.2f}", "electron" if number % 2 else "photon"])
    return path


def write_png(path: Path) -> Path:
    Image.new("RGB", (32, 16), (200, 30, 30)).save(path, format="PNG")
    return path


def write_npz(path: Path) -> Path:
    np.savez(path, energy=np.arange(6, dtype="f8"), image=np.zeros((3, 4, 5), dtype="uint8"))
    return path


def write_object_npy(path: Path) -> Path:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


def head(path: Path) -> bytes:
    return path.read_bytes()[:512]


# -- detect_format ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "start", "expected"), [
    ("data.h5", b"\x89HDF\r\n\x1a\n\x00", "hdf5"),
    ("data.csv", b"\x89HDF\r\n\x1a\n\x00", "hdf5"),  # magic wins over a wrong extension
    ("events.bin", b"root\x00\x00\xf3\xc0\x00\x00\x00d", "root"),
    ("table.txt", b"PAR1\x15\x04", "parquet"),
    ("array.dat", b"\x93NUMPY\x01\x00", "npy"),
    ("picture.csv", PNG + b"\x00\x00\x00\rIHDR", "image"),
    ("photo.jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
    ("anim.gif", b"GIF89a\x01\x00", "image"),
    ("table.csv.gz", b"\x1f\x8b\x08\x00", "other"),  # compressed, not a CSV to read
    ("notes.csv", b"root,branch\nEvents,pt\n", "csv"),  # "root" as text is no ROOT header
    ("claims.h5", b"just some text", "hdf5"),  # no magic: the name decides, the reader checks
    ("README", b"Toy calorimeter showers\n", "text"),
    ("blob.bin", b"\x00\x01\x02\xff", "other"),
    ("notes.txt", b"\x00\x01binary", "other"),  # a text name over binary content
    ("empty.csv", b"", "csv"),
])
def test_detect_format_prefers_magic_bytes_and_falls_back_to_the_extension(name, start, expected):
    assert detect_format(name, start) == expected


def test_detect_format_recognises_zip_archives_of_npy_files_only(tmp_path):
    npz = write_npz(tmp_path / "arrays.npz")
    renamed = tmp_path / "arrays.zip"
    renamed.write_bytes(npz.read_bytes())
    other = tmp_path / "docs.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert detect_format("arrays.npz", head(npz)) == "npz"
    assert detect_format("arrays.zip", head(renamed)) == "npz"  # its first member is a .npy
    assert detect_format("docs.zip", head(other)) == "other"
    assert detect_format("docs.npz", head(other)) == "npz"  # the reader will say what is wrong


def test_detect_format_recognises_every_kind_of_real_file(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3))
    files = {
        "hdf5": write_hdf5(tmp_path / "a.h5"), "root": write_root(tmp_path / "a.root"),
        "parquet": write_parquet(tmp_path / "a.parquet"), "csv": write_csv(tmp_path / "a.csv"),
        "npy": tmp_path / "a.npy", "npz": write_npz(tmp_path / "a.npz"),
        "image": write_png(tmp_path / "a.png"),
    }
    for fmt, path in files.items():
        assert detect_format(path.name, head(path)) == fmt
        assert detect_format("upload.bin", head(path)) == (fmt if fmt != "csv" else "text")
    assert set(FORMATS) == {"hdf5", "root", "parquet", "csv", "npy", "npz", "image", "text", "other"}


# -- HDF5 ---------------------------------------------------------------------------------------

def test_hdf5_preview_walks_nested_groups_with_shapes_dtypes_attributes_and_first_values(tmp_path):
    result = preview(write_hdf5(tmp_path / "showers.h5"), "hdf5")
    nodes = {node["path"]: node for node in result["tree"]}
    assert result["kind"] == "hdf5" and result["truncated"] is False
    assert nodes["/"]["attrs"] == {"generator": "toy"}
    assert nodes["/showers"]["type"] == "group"
    assert nodes["/showers"]["attrs"] == {"beam_energy_gev": 50.0}
    assert nodes["/showers/calibration/run1"]["type"] == "group"
    energy = nodes["/showers/energy"]
    assert energy["type"] == "dataset"
    assert (energy["shape"], energy["dtype"], energy["attrs"]) == ([4000], "float64", {"unit": "GeV"})
    assert energy["first"] == pytest.approx(ENERGY[:20].tolist())
    layers = nodes["/showers/layers"]
    assert (layers["shape"], layers["dtype"]) == ([7, 12], "float32")
    assert layers["first"] == list(range(20))  # flattened in C order, across rows
    hits = nodes["/showers/calibration/run1/hits"]
    assert [field["name"] for field in hits["fields"]] == ["x", "y", "cell", "tag"]
    assert hits["first"][0] == {"x": 1.0, "y": 0.5, "cell": 10, "tag": "b'hit'"}
    assert nodes["/names"]["first"] == ["alpha", "beta"]
    assert nodes["/names"]["dtype"] == "string"
    assert nodes["/raw"]["first"] == ["b'\\x01\\x02\\x03'"]  # bytes become their repr
    assert nodes["/with_nan"]["first"] == [1.0, None, None, 2.0]  # not JSON's invalid NaN
    json.dumps(result)


def test_hdf5_numeric_columns_are_1d_datasets_and_numeric_compound_fields(tmp_path):
    path = write_hdf5(tmp_path / "showers.h5")
    assert numeric_columns(preview(path, "hdf5")) == [
        "/showers/calibration/run1/hits:x", "/showers/calibration/run1/hits:y",
        "/showers/calibration/run1/hits:cell", "/showers/energy", "/with_nan"]
    with pytest.raises(PreviewError, match="'/showers/layers' is not a flat numeric column"):
        histogram(path, "hdf5", "/showers/layers")  # 2-D
    with pytest.raises(PreviewError, match="no numeric column '/showers'; choose one of: /showers/cal"):
        histogram(path, "hdf5", "/showers")


def test_hdf5_histograms_of_a_dataset_and_of_a_compound_field_are_png(tmp_path):
    path = write_hdf5(tmp_path / "showers.h5")
    assert histogram(path, "hdf5", "/showers/energy").startswith(PNG)
    assert histogram(path, "hdf5", "/showers/calibration/run1/hits:cell", bins=5).startswith(PNG)
    assert histogram(path, "hdf5", "/with_nan").startswith(PNG)  # NaN and inf are left out


def test_hdf5_preview_stops_after_max_items_and_says_so(tmp_path):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as handle:
        for number in range(30):
            handle.create_dataset(f"d{number:02d}", data=np.arange(3))
    result = preview(path, "hdf5", max_items=10, max_rows=2)
    assert len(result["tree"]) == 10 and result["truncated"] is True
    assert result["tree"][1]["first"] == [0, 1]


def test_hdf5_external_storage_is_never_read(tmp_path):
    # A crafted file could point its raw data at any file on the server.
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype="f8").tobytes())
    path = tmp_path / "external.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("stolen", shape=(8,), dtype="f8", external=[(str(secret), 0, 64)])
    node = preview(path, "hdf5")["tree"][1]
    assert node["path"] == "/stolen" and node["first"] is None and node["numeric"] is False
    assert numeric_columns(preview(path, "hdf5")) == []


def test_a_truncated_hdf5_file_is_refused_with_a_reason(tmp_path):
    path = write_hdf5(tmp_path / "cut.h5")
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(PreviewError, match="not a valid HDF5 file") as caught:
        preview(path, "hdf5")
    assert str(tmp_path) not in str(caught.value)  # the server's paths are not shown


# -- ROOT ---------------------------------------------------------------------------------------

def test_root_preview_lists_trees_branches_entries_and_histograms(tmp_path):
    result = preview(write_root(tmp_path / "events.root"), "root", max_rows=3)
    assert result["kind"] == "root"
    [tree] = result["trees"]
    assert (tree["name"], tree["entries"]) == ("Events", 1000)
    branches = {branch["name"]: branch for branch in tree["branches"]}
    assert set(branches) == {"pt", "eta", "njet_pt", "jet_pt"}  # uproot adds the counter branch
    assert branches["pt"]["type"] == "double"
    assert branches["pt"]["first"] == pytest.approx([0.0, 0.1, 0.2])
    assert branches["jet_pt"]["type"] == "double[]"
    assert branches["jet_pt"]["first"] == [[40.0, 25.5], [], [31.0]]
    [hist] = result["other"]
    assert (hist["name"], hist["class"]) == ("h_mass", "TH1D")
    assert len(hist["edges"]) == 21 and hist["edges"][0] == 80.0
    assert len(hist["contents"]) == 20 and sum(hist["contents"]) > 4000
    json.dumps(result)


def test_root_numeric_columns_name_tree_and_branch_and_include_jagged_branches(tmp_path):
    columns = numeric_columns(preview(write_root(tmp_path / "events.root"), "root"))
    assert sorted(columns) == ["Events/eta", "Events/jet_pt", "Events/njet_pt", "Events/pt"]


def test_root_histograms_of_a_flat_and_of_a_jagged_branch_are_png(tmp_path):
    path = write_root(tmp_path / "events.root")
    assert histogram(path, "root", "Events/pt").startswith(PNG)
    assert histogram(path, "root", "Events/jet_pt", max_entries=500).startswith(PNG)


def test_rntuples_are_previewed_like_trees(tmp_path):
    path = tmp_path / "ntuple.root"
    with uproot.recreate(path) as file:  # uproot writes a plain dict as an RNTuple
        file["Hits"] = {"energy": np.arange(10.0), "cells": ak.Array([[1, 2], [], [3]] * 3 + [[4]])}
    result = preview(path, "root", max_rows=2)
    [ntuple] = result["trees"]
    assert (ntuple["name"], ntuple["class"], ntuple["entries"]) == ("Hits", "ROOT::RNTuple", 10)
    assert {branch["name"]: branch["first"] for branch in ntuple["branches"]} == {
        "energy": [0.0, 1.0], "cells": [[1, 2], []]}
    assert sorted(numeric_columns(result)) == ["Hits/cells", "Hits/energy"]
    assert histogram(path, "root", "Hits/cells").startswith(PNG)


def test_random_bytes_named_root_are_refused(tmp_path):
    path = tmp_path / "fake.root"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(PreviewError, match="not a valid ROOT file"):
        preview(path, detect_format(path.name, head(path)))


# -- tables -------------------------------------------------------------------------------------

def test_parquet_preview_has_schema_rows_and_row_count(tmp_path):
    result = preview(write_parquet(tmp_path / "runs.parquet"), "parquet", max_rows=2)
    assert result["kind"] == "table"
    assert result["schema"] == [{"name": "run", "type": "int64", "numeric": True},
                                {"name": "energy", "type": "double", "numeric": True},
                                {"name": "label", "type": "string", "numeric": False}]
    assert result["rows"] == [[1, 10.5, "a"], [2, None, "b"]]
    assert (result["num_rows"], result["num_rows_exact"]) == (4, True)
    assert numeric_columns(result) == ["run", "energy"]
    json.dumps(result)


def test_parquet_histogram_skips_nulls_and_refuses_text_columns(tmp_path):
    path = write_parquet(tmp_path / "runs.parquet")
    assert histogram(path, "parquet", "energy").startswith(PNG)
    with pytest.raises(PreviewError, match="column 'label' is not a flat numeric column"):
        histogram(path, "parquet", "label")


def test_csv_preview_detects_header_types_and_counts_rows(tmp_path):
    result = preview(write_csv(tmp_path / "events.csv"), "csv", max_rows=3)
    assert result["kind"] == "table" and result["header"] is True
    assert result["schema"] == [{"name": "event", "type": "int", "numeric": True},
                                {"name": "energy", "type": "float", "numeric": True},
                                {"name": "particle", "type": "string", "numeric": False}]
    assert result["rows"] == [["0", "0.00", "photon"], ["1", "1.50", "electron"],
                              ["2", "3.00", "photon"]]
    assert (result["num_rows"], result["num_rows_exact"]) == (50, True)
    assert numeric_columns(result) == ["event", "energy"]
    json.dumps(result)


def test_csv_preview_sniffs_a_semicolon_delimiter(tmp_path):
    result = preview(write_csv(tmp_path / "events.csv", delimiter=";"), "csv", max_rows=1)
    assert result["delimiter"] == ";"
    assert [column["name"] for column in result["schema"]] == ["event", "energy", "particle"]
    assert result["rows"] == [["0", "0.00", "photon"]]


def test_csv_without_header_gets_numbered_columns(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1.0,2.0\n3.0,4.0\n5.0,6.5\n")
    result = preview(path, "csv")
    assert result["header"] is False and result["num_rows"] == 3
    assert [column["name"] for column in result["schema"]] == ["column 1", "column 2"]
    assert result["rows"][0] == ["1.0", "2.0"]


def test_a_single_column_csv_has_its_header(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("energy\n1.0\n2.0\n")
    result = preview(path, "csv")
    assert [column["name"] for column in result["schema"]] == ["energy"]
    assert result["rows"] == [["1.0"], ["2.0"]]


def test_csv_rows_of_a_large_file_are_not_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(previews, "_CSV_COUNT_LIMIT", 1024)  # instead of writing 50 MB
    result = preview(write_csv(tmp_path / "big.csv", rows=2000), "csv")
    assert (result["num_rows"], result["num_rows_exact"]) == (None, False)
    assert len(result["rows"]) == 20


def test_csv_histogram_is_png_and_errors_name_the_choices(tmp_path):
    path = write_csv(tmp_path / "events.csv", delimiter=";")
    assert histogram(path, "csv", "energy").startswith(PNG)
    with pytest.raises(PreviewError, match=r"no numeric column 'mass'; choose one of: event, energy"):
        histogram(path, "csv", "mass")
    with pytest.raises(PreviewError, match="'particle' is not a flat numeric column"):
        histogram(path, "csv", "particle")


def test_csv_with_binary_content_is_refused(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"a,b\n1,\x00\x00\n")
    with pytest.raises(PreviewError, match="not a valid CSV file"):
        preview(path, "csv")


# -- NumPy --------------------------------------------------------------------------------------

def test_npy_preview_has_shape_dtype_and_first_values(tmp_path):
    path = tmp_path / "grid.npy"
    np.save(path, np.arange(60, dtype="int16").reshape(5, 12))
    result = preview(path, "npy", max_rows=4)
    assert result == {"kind": "array", "arrays": [
        {"name": "array", "shape": [5, 12], "dtype": "int16", "numeric": True, "first": [0, 1, 2, 3]}]}
    assert histogram(path, "npy", "array").startswith(PNG)
    json.dumps(result)


def test_npz_preview_lists_every_array(tmp_path):
    result = preview(write_npz(tmp_path / "arrays.npz"), "npz", max_rows=3)
    assert result["kind"] == "array"
    assert [(array["name"], array["shape"], array["dtype"], array["first"])
            for array in result["arrays"]] == [
        ("energy", [6], "float64", [0.0, 1.0, 2.0]), ("image", [3, 4, 5], "uint8", [0, 0, 0])]
    assert numeric_columns(result) == ["energy", "image"]
    assert histogram(tmp_path / "arrays.npz", "npz", "energy").startswith(PNG)
    json.dumps(result)


def test_object_arrays_are_refused_because_they_need_pickle(tmp_path):
    path = write_object_npy(tmp_path / "objects.npy")
    message = "cannot preview: object arrays need pickle, which erumlab never loads"
    with pytest.raises(PreviewError, match=message):
        preview(path, "npy")
    archive = tmp_path / "objects.npz"
    np.savez(archive, fine=np.arange(3), bad=np.array([None, 1], dtype=object))
    with pytest.raises(PreviewError, match=message):
        preview(archive, "npz")


def test_a_truncated_npy_file_is_refused(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.arange(1000, dtype="f8"))
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(PreviewError, match="not a valid NumPy array file"):
        preview(path, "npy")


# -- images, text, other ------------------------------------------------------------------------

def test_image_preview_has_size_mode_and_format(tmp_path):
    result = preview(write_png(tmp_path / "map.png"), "image")
    assert result == {"kind": "image", "width": 32, "height": 16, "mode": "RGB", "format": "PNG"}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    path = write_png(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 512 pixels is over twice the limit
    with pytest.raises(PreviewError, match="too large"):
        preview(path, "image")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # over the limit, not yet an error in Pillow
    with pytest.raises(PreviewError, match="too large"):
        preview(path, "image")


def test_a_truncated_png_is_refused(tmp_path):
    path = write_png(tmp_path / "cut.png")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(PreviewError, match="not a valid image file"):
        preview(path, "image")


def test_text_preview_shows_the_first_lines_and_replaces_bad_bytes(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"first line\nsecond \xff line\n" + b"more\n" * 50)
    result = preview(path, "text", max_rows=3)
    assert result == {"kind": "text", "lines": ["first line", "second \ufffd line", "more"],
                      "truncated": True}
    json.dumps(result)


def test_other_formats_have_no_preview_and_no_histogram(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01\x02")
    assert preview(path, "other") == {"kind": "none", "reason": "no preview for this format"}
    with pytest.raises(PreviewError, match="no numeric column 'x'; choose one of: \\(none\\)"):
        histogram(path, "other", "x")


@pytest.mark.parametrize("fmt", ["hdf5", "root", "parquet", "csv", "npy", "npz", "image", "text"])
def test_an_empty_file_is_refused_for_every_format(tmp_path, fmt):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(PreviewError, match="file is empty"):
        preview(path, fmt)


def test_a_missing_file_or_an_unknown_format_is_a_preview_error(tmp_path):
    with pytest.raises(PreviewError, match="does not exist"):
        preview(tmp_path / "gone.h5", "hdf5")
    with pytest.raises(PreviewError, match="unknown format 'fits'"):
        preview(write_png(tmp_path / "a.png"), "fits")


@pytest.mark.parametrize("values", [[1.0, 1.0, 1.0], [2.0**63] * 3, [1.0, 1.0 + 1e-15]])
def test_a_constant_column_still_gets_a_histogram(tmp_path, values):
    path = tmp_path / "constant.npy"
    np.save(path, np.array(values))
    assert histogram(path, "npy", "array").startswith(PNG)


def test_values_beyond_the_float_range_are_refused_not_crashed_on(tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, np.array([-1e308, 1e308]))
    with pytest.raises(PreviewError, match="too wide a range"):
        histogram(path, "npy", "array")


def test_parquet_cells_of_any_type_become_plain_json(tmp_path):
    path = tmp_path / "types.parquet"
    pq.write_table(pa.table({
        "when": [datetime.datetime(2024, 5, 1, 12, 0)], "amount": [decimal.Decimal("1.50")],
        "hits": [[1, 2, 3]], "cell": [{"x": 1, "y": "a"}], "blob": [b"\x00\x01"]}), path)
    assert preview(path, "parquet")["rows"] == [
        ["2024-05-01T12:00:00", "1.50", [1, 2, 3], {"x": 1, "y": "a"}, "b'\\x00\\x01'"]]


def test_a_column_without_finite_values_has_no_histogram(tmp_path):
    path = tmp_path / "nan.npy"
    np.save(path, np.array([np.nan, np.inf]))
    with pytest.raises(PreviewError, match="no finite values"):
        histogram(path, "npy", "array")


def test_every_preview_kind_is_plain_json(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3.0))
    (tmp_path / "a.txt").write_text("hello\n")
    files = {
        "hdf5": write_hdf5(tmp_path / "a.h5"), "root": write_root(tmp_path / "a.root"),
        "parquet": write_parquet(tmp_path / "a.parquet"), "csv": write_csv(tmp_path / "a.csv"),
        "npy": tmp_path / "a.npy", "npz": write_npz(tmp_path / "a.npz"),
        "image": write_png(tmp_path / "a.png"), "text": tmp_path / "a.txt", "other": tmp_path / "a.txt",
    }
    for fmt, path in files.items():
        result = preview(path, fmt)
        assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_the_module_imports_neither_django_nor_pyplot():
    code = ("import sys, erumlab.catalogue.previews as p, pathlib, tempfile, numpy as n\n"
            "f = pathlib.Path(tempfile.mkdtemp()) / 'a.npy'; n.save(f, n.arange(9.0))\n"
            "assert p.histogram(f, 'npy', 'array').startswith(b'\\x89PNG')\n"
            "bad = [m for m in sys.modules if m.split('.')[0] == 'django' or m == 'matplotlib.pyplot']\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(previews.__file__).parents[2])
    assert result.returncode == 0, result.stderr
