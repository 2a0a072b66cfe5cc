"""Your data beyond binomial: every form of every family read from CSV and Parquet into its
per-group frame; bad values named by file, row (CSV: line) and column; a header that fits no
form of the family named with the family's column sets; the family from the config."""

from __future__ import annotations

import math
import runpy

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from shrinksim import settings
from shrinksim.errors import ConfigError
from shrinksim.settings import merged
from shrinksim.userdata.forms import FAMILIES, FORMS, OUTPUT_TYPES, family_of, forms_markdown
from shrinksim.userdata.load import check, load, load_data
from shrinksim.userdata.read import UserDataError

EXAMPLES = REPO / "examples"


def csv_file(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def parquet_file(tmp_path, text: str, name: str = "data.parquet"):
    """The CSV ``text`` as Parquet, numbers typed (empty cells: nulls)."""
    frame = pd.read_csv(csv_file(tmp_path, text, "source.csv"), dtype={"group": str})
    path = tmp_path / name
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def error_of(path, family: str, **kwargs) -> str:
    with pytest.raises(UserDataError) as err:
        load_data(path, family, **kwargs)
    return str(err.value)


# (family, file, the expected groups); every output column, is_control included
GOOD = {
    "binomial_outcomes": (
        "binomial",
        "group,y\nA,1\nB,0\nA,0\nA,1\nB,1\nC,0\n",
        {"group": ["A", "B", "C"], "n": [3, 2, 1], "y": [2, 1, 0]},
    ),
    "binomial_groups": (
        "binomial",
        "group,n,successes\nA,10,3\nB,12,5\nC,1,1\n",
        {"group": ["A", "B", "C"], "n": [10, 12, 1], "y": [3, 5, 1]},
    ),
    "poisson_counts": (
        "poisson",
        "group,count,exposure\nw1,0,120.5\nw2,7,2000\nw3,3,0.25\n",
        {"group": ["w1", "w2", "w3"], "y": [0, 7, 3], "exposure": [120.5, 2000.0, 0.25]},
    ),
    # A: 1.5, 2.5, 5 -> mean 3, sd sqrt((2.25 + 0.25 + 4) / 2) = sqrt(3.25); B: 3, 4 -> 3.5,
    # sqrt(0.5); C: one observation -> sd 0
    "gaussian_observations": (
        "gaussian",
        "group,y\nA,1.5\nB,3\nA,2.5\nC,-10\nA,5\nB,4\n",
        {
            "group": ["A", "B", "C"],
            "n": [3, 2, 1],
            "mean": [3.0, 3.5, -10.0],
            "sd": [math.sqrt(3.25), math.sqrt(0.5), 0.0],
        },
    ),
    "gaussian_summaries": (
        "gaussian",
        "group,n,mean,sd\nA,25,71.5,9.8\nB,1,60,\nC,2,-4,0\nD,1,3,0\n",
        {
            "group": ["A", "B", "C", "D"],
            "n": [25, 1, 2, 1],
            "mean": [71.5, 60.0, -4.0, 3.0],
            "sd": [9.8, 0.0, 0.0, 0.0],
        },
    ),  # fmt: skip
    "gaussian_estimates": (
        "gaussian",
        "group,estimate,se\nA,28,15\nB,-3.5,0.5\nC,0,16\n",
        {"group": ["A", "B", "C"], "estimate": [28.0, -3.5, 0.0], "se": [15.0, 0.5, 16.0]},
    ),
}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("case", sorted(GOOD))
def test_every_form_gives_its_per_group_frame(tmp_path, case, fmt):
    family, text, groups = GOOD[case]
    path = (csv_file if fmt == "csv" else parquet_file)(tmp_path, text)
    data = load_data(path, family)
    form = next(f for f in FORMS[family] if f.name == case.split("_")[1])
    assert data.family == family and data.form == form
    expected = pd.DataFrame({"group": groups["group"], "is_control": False} | groups)
    assert list(data.groups.columns) == ["group", "is_control", *form.outputs]
    pd.testing.assert_frame_equal(data.groups, expected, check_dtype=False, rtol=1e-12)
    for column in form.outputs:
        kind = "i" if column in ("n", "y") else "f"
        assert data.groups[column].dtype.kind == kind, column


def test_binomial_is_the_default_and_load_returns_the_frame(tmp_path):
    path = csv_file(tmp_path, GOOD["binomial_groups"][1])
    assert load_data(path).family == "binomial"
    pd.testing.assert_frame_equal(load(path), load_data(path, "binomial").groups)


@pytest.mark.parametrize(
    ("family", "text"),
    [
        ("poisson", "group,count,exposure,is_control\nA,3,10,no\nB,4,10,yes\nC,1,5,no\n"),
        ("gaussian", "group,y,is_control\nA,1,0\nB,2,1\nA,3,0\nB,2.5,1\nC,7,0\n"),
        ("gaussian", "group,n,mean,sd,is_control\nA,3,1,1,f\nB,5,2,1,t\nC,4,3,1,f\n"),
        ("gaussian", "group,estimate,se,is_control\nA,1,1,false\nB,2,1,true\nC,3,1,false\n"),
    ],
)
def test_control_group_by_column_or_config(tmp_path, family, text):
    flagged = csv_file(tmp_path, text, "flagged.csv")
    assert load_data(flagged, family).groups["is_control"].tolist() == [False, True, False]
    lines = [line.rsplit(",", 1)[0] for line in text.splitlines()]  # without is_control
    plain = csv_file(tmp_path, "\n".join(lines) + "\n", "plain.csv")
    named = load_data(plain, family, control="B").groups
    assert named["is_control"].tolist() == [False, True, False]
    message = error_of(plain, family, control="b")
    assert f"userdata.control: group 'b' is not in {plain}, column 'group'" in message
    without_c = [line for line in lines if not line.startswith("C,")]
    two = csv_file(tmp_path, "\n".join(without_c) + "\n", "two.csv")
    message = error_of(two, family, control="B")
    assert f"{two}, column 'group': 1 treatment group(s) besides the control group" in message


# (family_form, file, row, column, problem in CSV, problem in Parquet if it differs); the
# message must say "FILE, row R (line R + 1), column 'C': PROBLEM" (Parquet: no line; a
# problem of the whole file: no row)
BAD = [
    ("poisson", "group,count,exposure\nA,3,10\nB,2.5,10\n", 2, "count", "'2.5' is not an integer", "2.5 is not an integer"),
    ("poisson", "group,count,exposure\nA,3,10\nB,-1,10\n", 2, "count", "-1 is negative; counts must be >= 0", None),
    ("poisson", "group,count,exposure\nA,3,10\nB,x,10\n", 2, "count", "'x' is not an integer", None),
    ("poisson", "group,count,exposure\nA,3,10\nB,,10\n", 2, "count", "missing value", None),
    ("poisson", "group,count,exposure\nA,3,0\nB,1,10\n", 1, "exposure", "0 is not positive; exposure must be > 0", None),
    ("poisson", "group,count,exposure\nA,3,-2\nB,1,10\n", 1, "exposure", "-2 is not positive; exposure must be > 0", None),
    ("poisson", "group,count,exposure\nA,3,inf\nB,1,10\n", 1, "exposure", "'inf' is not a finite number", "inf is not a finite number"),
    ("poisson", "group,count,exposure\nA,3,10\nB,1,10\nA,2,5\n", 3, "group", "group 'A' appears twice (first on row 1)", None),
    ("poisson", "group,count,exposure\nA,3,10\n,1,10\nB,1,1\n", 2, "group", "missing group label", None),
    ("gaussian_observations", "group,y\nA,1\nA,2\nB,abc\nB,3\n", 3, "y", "'abc' is not a number", None),
    ("gaussian_observations", "group,y\nA,1\nA,2\nB,\nB,3\n", 3, "y", "missing value", None),
    ("gaussian_observations", "group,y\nA,1\nA,-inf\nB,2\n", 2, "y", "'-inf' is not a finite number", "-inf is not a finite number"),
    ("gaussian_observations", "group,y\nA,1\nB,2\nC,3\n", None, "y", "every group has a single observation (n = 1)", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,1\nB,0,2,1\n", 2, "n", "0 observations; every group needs n >= 1", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,1\nB,2.5,2,1\n", 2, "n", "'2.5' is not an integer", "2.5 is not an integer"),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,1\nB,-2,2,1\n", 2, "n", "-2 is negative; counts must be >= 0", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,-1\nB,2,2,1\n", 1, "sd", "-1 is negative; sd must be >= 0", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,1\nB,1,2,0.5\n", 2, "sd", "sd = 0.5 with n = 1: one observation has no sd; leave it empty or 0", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,\nB,2,2,1\n", 1, "sd", "missing value; only a group with n = 1 may leave sd empty", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,,1\nB,2,2,1\n", 1, "mean", "missing value", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,nan,1\nB,2,2,1\n", 1, "mean", "'nan' is not a finite number", "missing value"),
    ("gaussian_summaries", "group,n,mean,sd\nA,3,1,1\nB,2,2,1\nB,2,2,1\n", 3, "group", "group 'B' appears twice (first on row 2)", None),
    ("gaussian_summaries", "group,n,mean,sd\nA,1,1,\nB,1,2,0\n", None, "n", "every group has a single observation (n = 1)", None),
    ("gaussian_estimates", "group,estimate,se\nA,1,1\nB,2,0\n", 2, "se", "0 is not positive; se must be > 0", None),
    ("gaussian_estimates", "group,estimate,se\nA,1,1\nB,2,-3\n", 2, "se", "-3 is not positive; se must be > 0", None),
    ("gaussian_estimates", "group,estimate,se\nA,1,1\nB,2,\n", 2, "se", "missing value", None),
    ("gaussian_estimates", "group,estimate,se\nA,one,1\nB,2,1\n", 1, "estimate", "'one' is not a number", None),
    ("gaussian_estimates", "group,estimate,se\nA,1,1\nB,2,1\nA,3,1\n", 3, "group", "group 'A' appears twice (first on row 1)", None),
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("key", "text", "row", "column", "problem", "in_parquet"), BAD)
def test_bad_values_named_with_file_row_and_column(
    tmp_path, fmt, key, text, row, column, problem, in_parquet
):
    path = (csv_file if fmt == "csv" else parquet_file)(tmp_path, text)
    where = [str(path)]
    if row is not None:
        where.append(f"row {row} (line {row + 1})" if fmt == "csv" else f"row {row}")
    where.append(f"column {column!r}")
    if fmt == "parquet" and in_parquet is not None:
        problem = in_parquet
    message = error_of(path, key.split("_")[0])
    assert f"{', '.join(where)}: {problem}" in message, message
    assert len(message.splitlines()) == 2, message  # the heading and this problem only


def test_text_in_a_typed_parquet_column_is_named(tmp_path):
    path = tmp_path / "text.parquet"
    pq.write_table(
        pa.table({"group": ["A", "B"], "count": ["3", "x"], "exposure": [1.0, 2.0]}), path
    )
    assert f"{path}, row 2, column 'count': 'x' is not an integer" in error_of(path, "poisson")


def test_every_problem_of_a_file_is_listed(tmp_path):
    text = "group,n,mean,sd\nA,0,1,1\nB,2,x,1\nC,1,1,2\nD,2,1,-1\nA,2,1,1\n"
    lines = error_of(csv_file(tmp_path, text), "gaussian").splitlines()
    assert [line.split(": ")[0].split(", ")[1:] for line in lines[1:]] == [
        ["row 1 (line 2)", "column 'n'"],
        ["row 2 (line 3)", "column 'mean'"],
        ["row 3 (line 4)", "column 'sd'"],
        ["row 4 (line 5)", "column 'sd'"],
        ["row 5 (line 6)", "column 'group'"],
    ]


@pytest.mark.parametrize(
    ("family", "text", "message"),
    [
        (
            "gaussian",
            "group,count,exposure\nA,1,2\n",
            "family gaussian expects columns (group, y) or (group, n, mean, sd) or "
            "(group, estimate, se); found (group, count, exposure); (group, count, exposure) "
            "fits family poisson: set userdata.family: poisson if you mean it",
        ),
        (
            "poisson",
            "group,y\nA,1\n",
            "family poisson expects columns "
            "(group, count, exposure); found (group, y); (group, y) fits family binomial or "
            "gaussian: set userdata.family to the one you mean",
        ),
        (
            "binomial",
            "group,estimate,se\nA,1,2\n",
            "family binomial expects columns (group, y) or (group, n, successes); "
            "found (group, estimate, se); (group, estimate, se) fits family gaussian",
        ),
        (
            "poisson",
            "group,count,exposre\nA,1,2\n",
            "missing column 'exposure' (did you mean 'exposre' -> 'exposure'?); family poisson "
            "expects columns (group, count, exposure); found (group, count, exposre)",
        ),
        (
            "gaussian",
            "group,n,mean\nA,1,2\n",
            "missing column 'sd'; family gaussian expects columns",
        ),
        (
            "gaussian",
            "group,y,n\nA,1,2\n",
            "missing columns 'mean', 'sd'; family gaussian expects",
        ),
        (
            "gaussian",
            "group,n,mean,sd,estimate,se\nA,1,2,0,1,1\n",
            "the columns fit more than one form of family gaussian: (group, n, mean, sd) and "
            "(group, estimate, se)",
        ),
    ],
)
def test_header_that_fits_no_form_of_the_family(tmp_path, family, text, message):
    path = csv_file(tmp_path, text)
    assert f"{path}, line 1 (the header): {message}" in error_of(path, family)
    parquet = parquet_file(tmp_path, text)
    assert f"{parquet}: {message}" in error_of(parquet, family)


def test_gaussian_y_is_never_read_as_binomial_and_vice_versa(tmp_path):
    path = csv_file(tmp_path, "group,y\nA,1\nA,0\nB,0.5\nB,1\n")
    assert (
        "row 3 (line 4), column 'y': '0.5' is not 0 or 1 (one row per outcome; numeric outcomes: "
        "family gaussian)" in error_of(path, "binomial")
    )
    assert load_data(path, "gaussian").groups["mean"].tolist() == [0.5, 0.75]
    binary = csv_file(tmp_path, "group,y\nA,1\nA,0\nB,0\nB,0\n", "binary.csv")
    assert load_data(binary, "gaussian").groups["n"].tolist() == [2, 2]
    assert load_data(binary, "binomial").groups["y"].tolist() == [1, 0]


# --- the family from the configuration ---------------------------------------------------


def test_family_from_the_config():
    assert family_of({"userdata": {"control": None}}) == "binomial"
    assert family_of({"family": "poisson", "userdata": {}}) == "poisson"
    assert family_of({"family": "poisson", "userdata": {"family": "gaussian"}}) == "gaussian"
    assert family_of({"family": "gaussian", "userdata": {"family": None}}) == "gaussian"
    with pytest.raises(ConfigError) as err:
        family_of({"userdata": {"family": "gausian"}})
    assert (
        "userdata.family: 'gausian' is not one of ['binomial', 'poisson', 'gaussian'] "
        "(did you mean 'gaussian'?)" in str(err.value)
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"userdata": {"family": "gausian"}},
            "userdata.family: 'gausian' is not one of ['binomial', 'poisson', 'gaussian'] "
            "(did you mean 'gaussian'?)",
        ),
        (
            {"family": "Poisson"},
            "family: 'Poisson' is not one of ['binomial', 'poisson', 'gaussian'] "
            "(did you mean 'poisson'?)",
        ),
        (
            {"userdata": {"family": 2}},
            "userdata.family: 2 is not one of ['binomial', 'poisson', 'gaussian']",
        ),
    ],
)
def test_bad_family_is_one_error_naming_key_and_values(config, schema, override, expected):
    with pytest.raises(ConfigError) as err:
        settings.check(merged(config, override), schema)
    assert str(err.value).splitlines() == ["invalid configuration:", f"  {expected}"]


def test_every_form_fills_its_outputs():
    for family, forms in FORMS.items():
        for form in forms:
            assert form.family == family and set(form.outputs) <= set(OUTPUT_TYPES)
            if form.per == "group":
                assert [c.out for c in form.columns] == list(form.outputs), form.name
            else:
                assert [c.out for c in form.columns] == [None], form.name
                assert list(form.reduce([1, 0, 1])) == list(form.outputs), form.name
    # the two forms of one family that give the same columns give the same meaning
    assert FORMS["gaussian"][0].outputs == FORMS["gaussian"][1].outputs


def test_schema_names_the_registrys_families(schema):
    assert schema["properties"]["family"]["enum"] == list(FAMILIES)
    assert schema["properties"]["userdata"]["properties"]["family"]["enum"] == list(FAMILIES)
    assert list(FORMS) == list(FAMILIES)


@pytest.mark.parametrize(
    ("family", "name", "groups", "fitted_as"),
    [("poisson", "poisson_rates.csv", 20, "poisson"),
     ("gaussian", "gaussian_scores.csv", 15, "gaussian"),
     ("gaussian", "eight_schools.csv", 8, "gaussian_se")],
)  # fmt: skip
def test_examples_pass_the_config_check(config, schema, family, name, groups, fitted_as):
    with_data = merged(config, {"data": str(EXAMPLES / name), "userdata": {"family": family}})
    settings.check(with_data, schema)  # every family's data are fitted now
    assert check(with_data).fitted_as == fitted_as
    top_level = merged(config, {"data": str(EXAMPLES / name), "family": family})
    settings.check(top_level, schema)
    assert check(top_level).fitted_as == fitted_as
    assert len(load_data(EXAMPLES / name, family).groups) == groups
    as_binomial = merged(with_data, {"userdata": {"family": "binomial"}})
    with pytest.raises(UserDataError) as err:
        check(as_binomial)
    if name == "gaussian_scores.csv":  # group, y: outcomes of either family, never guessed
        expected = (
            f"{EXAMPLES / name}, row 1 (line 2), column 'y': '72.5' is not 0 or 1 "
            "(one row per outcome; numeric outcomes: family gaussian)"
        )
    else:
        expected = f"{EXAMPLES / name}, line 1 (the header): family binomial expects columns"
    assert expected in str(err.value)


def test_eight_schools_are_rubins():
    data = load_data(EXAMPLES / "eight_schools.csv", "gaussian")
    assert data.form.name == "estimates"
    assert data.groups["estimate"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert data.groups["se"].tolist() == [15, 10, 16, 11, 9, 11, 10, 18]


def test_examples_are_reproducible(tmp_path):
    module = runpy.run_path(str(EXAMPLES / "make_family_examples.py"))
    module["main"](tmp_path)
    for name in ("poisson_rates.csv", "gaussian_scores.csv", "eight_schools.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_docs_list_the_registrys_forms():
    assert forms_markdown() in (REPO / "docs/your-data.md").read_text()
