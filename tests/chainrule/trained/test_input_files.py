"""Input files for ``predict`` and ``evaluate``, generated: every file is read in full or refused in one line
naming it, and nothing is written for a refused one."""

import contextlib
import io
import json

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from tests.chainrule.reliability import SETTINGS, assert_clean_error, fresh

EDGE_CELLS = ["nan", "inf", "-inf", "1e308", "1e39", "-0", "5e-324", " 1.5 ", "", "abc", "0x1", "1e", "+2",
              "1_0", "\u0661", "3.4028235e38"]
CELLS = st.one_of(st.floats(-100, 100).map(repr), st.integers(-5, 5).map(str), st.sampled_from(EDGE_CELLS))
LABELS = st.sampled_from(["0", "1", "2", "2.0", "1.5", "cat", "3", "-1", " 1 ", "1e0", "nan", ""])


@st.composite
def input_csv(draw):
    rows, columns = draw(st.integers(0, 4)), draw(st.sampled_from([2, 2, 2, 1, 3]))
    header = draw(st.sampled_from(["none", "names", "one name", "label", "label first"]))
    table = [[draw(CELLS) for _ in range(columns)] for _ in range(rows)]
    if header.startswith("label"):
        for row in table:
            row.insert(0 if header == "label first" else len(row), draw(LABELS))
        names = [f"x{i}" for i in range(columns)]
        names.insert(0 if header == "label first" else len(names), "label")
        table.insert(0, names)
    elif header == "names":
        table.insert(0, [draw(st.sampled_from(["x", "café", "size (cm)", "a b"])) + str(i) for i in range(columns)])
    elif header == "one name":
        table.insert(0, ["0.5"] * (columns - 1) + ["y"])
    lines = [",".join(row) for row in table]
    if draw(st.booleans()) and lines:
        lines.insert(draw(st.integers(0, len(lines))), "")
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + (ending if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text, encoding


def data_rows(text: str) -> list[list[str]]:
    """The oracle: the non-blank rows, less the first one when any of its values is not a number."""
    rows = [line.split(",") for line in text.splitlines() if line.strip(" ,")]
    numeric = rows and all(is_float(v) for v in rows[0])
    return rows if numeric else rows[1:]


def is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@SETTINGS
@given(case=input_csv(), command=st.sampled_from(["predict", "evaluate"]))
@example(case=("0.5,1.0\n0.2,0.3\n", "utf-8-sig"), command="predict")  # the byte-order mark made row 1 a header
@example(case=("\nx,y\n0.2,0.3\n", "utf-8"), command="predict")  # numpy's loadtxt skipped the blank line
def test_generated_input_files_are_read_in_full_or_refused_naming_them(case, command, finished_run, tmp_path):
    from chainrule.cli import main

    text, encoding = case
    folder = fresh(tmp_path)
    path = folder / "in.csv"
    path.write_bytes(text.encode(encoding, errors="replace"))
    args = [command, str(finished_run), str(path)] if command == "predict" else [command, str(finished_run),
                                                                                   "--data", str(path)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([*args, "--out", str(folder / "p.csv")] if command == "predict" else args)
    err_text = err.getvalue()
    if code != 0:
        assert_clean_error(code, err_text, "in.csv")
        return
    assert encoding.startswith("utf-8") or text.isascii(), "a file in another encoding was read"
    rows = data_rows(text.removeprefix("\ufeff"))
    first = next(line for line in text.removeprefix("\ufeff").splitlines() if line.strip(" ,")).split(",")
    has_label = "label" in first
    if command == "predict":
        predicted = (folder / "p.csv").read_text().splitlines()[1:]
        assert len(predicted) == len(rows), (text, predicted)
        assert all("nan" not in line for line in predicted)
    else:
        assert has_label, "evaluate ran without labels"
        labels = [row[first.index("label")].strip() for row in rows]
        assert all(float(v) in (0.0, 1.0, 2.0) for v in labels), labels
        report = json.loads((finished_run / "evaluation.json").read_text())
        assert int(np.sum(report["confusion"])) == len(rows)


@st.composite
def input_npz(draw):
    rows = draw(st.integers(0, 4))
    shape = draw(st.sampled_from([(rows, 2), (rows, 2), (rows,), (rows, 3), (rows, 1, 2), (rows, 2, 1)]))
    dtype = draw(st.sampled_from(["float32", "float64", "float16", "int64", "uint8", "bool", "complex64", "<U3"]))
    values = draw(st.lists(st.sampled_from([0.5, -1.0, 3.0, np.nan, np.inf, 1e39, 1e308, 7.0]),
                           min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    with np.errstate(all="ignore"):
        X = np.array(values).reshape(shape).astype(dtype)
    arrays = {draw(st.sampled_from(["X", "X_test", "features"])): X}
    if draw(st.booleans()):
        labels = draw(st.lists(st.sampled_from(["0", "1", "2", "2.0", "1.5", "-1", "3", "cat"]), min_size=rows,
                               max_size=rows + draw(st.integers(0, 1))))
        y_dtype = draw(st.sampled_from(["int64", "float64", "<U3"]))
        y = np.array(labels) if y_dtype == "<U3" else np.array([float(v) if is_float(v) else 0.0 for v in labels])
        arrays["y" if "X" in arrays else "y_test"] = y.astype(y_dtype) if y_dtype == "int64" else y
    return arrays


@SETTINGS
@given(arrays=input_npz(), command=st.sampled_from(["predict", "evaluate"]))
def test_generated_npz_inputs_are_read_in_full_or_refused_naming_them(arrays, command, finished_run, tmp_path):
    from chainrule.cli import main

    folder = fresh(tmp_path)
    path = folder / "in.npz"
    np.savez(path, **arrays)
    args = [command, str(finished_run), str(path), "--out", str(folder / "p.csv")] if command == "predict" \
        else [command, str(finished_run), "--data", str(path)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    if code != 0:
        assert_clean_error(code, err.getvalue(), "in.npz")
        return
    X = arrays.get("X", arrays.get("X_test"))
    assert X.dtype.kind in "iuf" and np.abs(X.astype(np.float64)).max(initial=0) < 3.5e38  # finite in float32
    if command == "predict":
        assert len((folder / "p.csv").read_text().splitlines()) == len(X) + 1
    else:
        y = arrays.get("y", arrays.get("y_test"))
        assert y is not None and len(y) == len(X) and set(np.asarray(y, dtype=float).tolist()) <= {0.0, 1.0, 2.0}
        report = json.loads((finished_run / "evaluation.json").read_text())
        assert int(np.sum(report["confusion"])) == len(X)
