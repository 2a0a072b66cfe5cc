"""Your data: every malformed input is rejected naming file, row and column; good input in
either form gives the same groups; the design-matched study keeps the user's sizes exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from shrinksim import settings, tables
from shrinksim.settings import merged
from shrinksim.shrinkage import theory_shrinkage
from shrinksim.userdata.design import (
    config_problems,
    design_points,
    design_sizes,
    n_for_shrinkage,
    n_for_shrinkage_simulated,
)
from shrinksim.userdata.fit import simulate_design
from shrinksim.userdata.load import load, load_data
from shrinksim.userdata.read import MAX_LISTED, UserDataError

EXAMPLE = REPO / "examples/forum_like.csv"


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def error_of(path, **kwargs) -> str:
    with pytest.raises(UserDataError) as err:
        load(path, **kwargs)
    return str(err.value)


# (file content, the phrases the message must contain); `{f}` is the file's path.
BAD_CSV = {
    "missing_column": (
        "group,n,succeses\nA,10,3\nB,12,5\n",
        ["{f}, line 1 (the header): missing column 'successes'", "did you mean 'succeses'"],
    ),
    "missing_columns_outcomes": (
        "grp,y\nA,1\n",
        ["{f}, line 1 (the header): missing column 'group'", "found (grp, y)"],
    ),
    "non_integer_count": (
        "group,n,successes\nA,10,3\nB,12.5,5\n",
        ["{f}, row 2 (line 3), column 'n': '12.5' is not an integer"],
    ),
    "text_count": (
        "group,n,successes\nA,ten,3\nB,12,5\n",
        ["{f}, row 1 (line 2), column 'n': 'ten' is not an integer"],
    ),
    "negative_count": (
        "group,n,successes\nA,10,-3\nB,12,5\n",
        ["{f}, row 1 (line 2), column 'successes': -3 is negative"],
    ),
    "zero_outcomes": (
        "group,n,successes\nA,0,0\nB,12,5\n",
        ["{f}, row 1 (line 2), column 'n': 0 outcomes"],
    ),
    "successes_above_n": (
        "group,n,successes\nA,10,3\nB,12,13\n",
        ["{f}, row 2 (line 3), column 'successes': successes = 13 is more than n = 12"],
    ),
    "missing_value": (
        "group,n,successes\nA,10,3\nB,,5\n",
        ["{f}, row 2 (line 3), column 'n': missing value"],
    ),
    "y_not_binary": (
        "group,y\nA,1\nA,0\nB,2\nB,1\n",
        ["{f}, row 3 (line 4), column 'y': '2' is not 0 or 1"],
    ),
    "y_text": (
        "group,y\nA,1\nA,yes\nB,0\n",
        ["{f}, row 2 (line 3), column 'y': 'yes' is not 0 or 1"],
    ),
    "empty_file": ("", ["{f}: empty file"]),
    "header_only": ("group,n,successes\n", ["{f}: empty file: a header but no data rows"]),
    "duplicate_group": (
        "group,n,successes\nA,10,3\nB,12,5\nA,8,2\n",
        ["{f}, row 3 (line 4), column 'group': group 'A' appears twice (first on row 1)"],
    ),
    "single_group": (
        "group,n,successes\nA,10,3\n",
        ["{f}, column 'group': a single group ('A')"],
    ),
    "single_group_outcomes": (
        "group,y\nA,1\nA,0\n",
        ["{f}, column 'group': a single group ('A')"],
    ),
    "one_treatment_besides_control": (
        "group,n,successes,is_control\nC,100,40,true\nA,10,3,false\n",
        ["{f}, column 'group': 1 treatment group(s) besides the control group"],
    ),
    "too_many_fields": (
        "group,n,successes\nA,10,3\nB,12,5,9\n",
        ["{f}, row 2 (line 3): malformed CSV: 4 fields, but the header has 3"],
    ),
    "too_few_fields": (
        "group,n,successes\nA,10\nB,12,5\n",
        ["{f}, row 1 (line 2): malformed CSV: 2 fields"],
    ),
    "unclosed_quote": (
        'group,n,successes\nA,10,3\n"B,12,5\n',
        ["{f}, line 3: malformed CSV"],
    ),
    "duplicate_header": (
        "group,n,n,successes\nA,1,1,0\n",
        ["{f}, line 1 (the header), column 'n': appears twice"],
    ),
    "bad_control_flag": (
        "group,n,successes,is_control\nA,10,3,maybe\nB,12,5,no\nC,5,1,no\n",
        ["{f}, row 1 (line 2), column 'is_control': 'maybe' is not true/false"],
    ),
    "two_controls": (
        "group,n,successes,is_control\nA,10,3,1\nB,12,5,1\nC,5,1,0\nD,5,2,0\n",
        ["{f}, row 2 (line 3), column 'is_control': more than one control group"],
    ),
    "control_flag_inconsistent": (
        "group,y,is_control\nA,1,1\nA,0,0\nB,1,0\nC,0,0\n",
        ["{f}, row 2 (line 3), column 'is_control': group 'A' has is_control = True on row 1"],
    ),
    "semicolons": (
        "group;n;successes\nA;10;3\n",
        ["{f}, line 1 (the header): missing column", "shrinksim reads comma-separated files"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_malformed_csv_named_with_file_row_and_column(tmp_path, case):
    content, phrases = BAD_CSV[case]
    path = write(tmp_path, f"{case}.csv", content)
    message = error_of(path)
    for phrase in phrases:
        assert phrase.format(f=path) in message, message


def test_non_utf8_names_row_and_column(tmp_path):
    path = write(tmp_path, "latin1.csv", "group,n,successes\nA,10,3\nCafé,12,5\n".encode("latin-1"))
    message = error_of(path)
    assert f"{path}, row 2 (line 3), column 'group': not UTF-8 text (byte 0xe9" in message


def test_every_problem_listed_and_long_lists_cut(tmp_path):
    rows = "".join(f"G{i},5,{9 if i % 2 else -1}\n" for i in range(30))
    message = error_of(write(tmp_path, "many.csv", "group,n,successes\n" + rows))
    lines = message.splitlines()
    assert len(lines) == 1 + MAX_LISTED + 1
    assert lines[-1].strip() == "... and 20 more problems"


def parquet(tmp_path, name: str, columns: dict) -> object:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    ("columns", "phrase"),
    [
        ({"group": ["A", "B"], "n": [10.0, 2.5], "successes": [1, 1]}, "row 2, column 'n': 2.5"),
        ({"group": ["A", "B"], "n": [10, -2], "successes": [1, 1]}, "row 2, column 'n': -2 is"),
        ({"group": ["A", "B"], "n": [10, 2], "successes": [1, 3]}, "row 2, column 'successes'"),
        ({"group": ["A", "B"], "y": [1, 3]}, "row 2, column 'y': 3 is not 0 or 1"),
        ({"group": ["A", None, "B"], "y": [1, 0, 1]}, "row 2, column 'group': missing group"),
        ({"group": pa.array([], pa.string()), "y": pa.array([], pa.int64())}, "empty file"),
    ],
)
def test_malformed_parquet_named_with_file_row_and_column(tmp_path, columns, phrase):
    path = parquet(tmp_path, "bad.parquet", columns)
    message = error_of(path)
    assert f"{path}" in message and phrase in message, message


def test_unreadable_parquet(tmp_path):
    path = write(tmp_path, "broken.parquet", b"PAR1 this is not parquet")
    assert "cannot read it as Parquet" in error_of(path)


def test_control_named_by_config_must_exist(tmp_path):
    path = write(tmp_path, "d.csv", "group,n,successes\nA,10,3\nB,12,5\nctrl,50,20\n")
    message = error_of(path, control="ctl")
    assert "userdata.control: group 'ctl' is not in" in message and "did you mean 'ctrl'" in message
    assert load(path, control="ctrl")["is_control"].tolist() == [False, False, True]


def test_both_forms_parquet_and_csv_give_the_same_groups(tmp_path):
    groups = load(EXAMPLE)
    assert groups["is_control"].sum() == 1 and len(groups) == 61
    outcomes = []
    for row in groups.itertuples():
        outcomes += [(row.group, int(i < row.y), row.is_control) for i in range(row.n)]
    rng = np.random.default_rng(0)
    long = pd.DataFrame(outcomes, columns=["group", "y", "is_control"]).iloc[
        rng.permutation(len(outcomes))
    ]
    # groups keep the order of first appearance; compare sorted by label
    csv_path = tmp_path / "long.csv"
    long.to_csv(csv_path, index=False)
    pq_path = tmp_path / "long.parquet"
    long.to_parquet(pq_path, index=False)
    expected = groups.sort_values("group", ignore_index=True)
    for path in (csv_path, pq_path):
        got = load(path).sort_values("group", ignore_index=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    tables.to_table(load_data(EXAMPLE).prepared(), tables.USER_DATA)


def test_lenient_but_exact_parsing(tmp_path):
    text = "\ufeffgroup , n,successes,extra\n\nA,10.0,3,x\n 2 ,12,5,\n"
    got = load(write(tmp_path, "ok.csv", text))
    assert got["group"].tolist() == ["A", "2"]
    assert got["n"].tolist() == [10, 12] and got["y"].tolist() == [3, 5]
    assert not got["is_control"].any()


# --- the design-matched study --------------------------------------------------------------


def test_design_reuses_the_users_sizes_exactly():
    data = load(EXAMPLE)
    treated = data.loc[~data["is_control"], "n"].to_numpy()
    point = {"tau": 0.3, "p0": 0.4, "control_n": 1500, "control_p": 0.4, "tau_index": 0}
    sim = simulate_design(7, data, point, 1.0, [0, 1])
    for _, one in sim.groupby("replicate"):
        assert one.loc[~one["is_control"], "n"].tolist() == treated.tolist()
        assert one.loc[one["is_control"], "n"].tolist() == [1500]
    tables.to_table(sim, tables.DATA)
    doubled = simulate_design(7, data, point, 2.0, [0])
    assert doubled.loc[~doubled["is_control"], "n"].tolist() == (2 * treated).tolist()
    half = design_sizes(pd.DataFrame({"n": [1, 3, 35], "is_control": False}), 0.5)
    assert half.tolist() == [1, 2, 18]  # max(1, round(s n)), halves to even


def test_design_data_depend_on_cell_and_replicate_only():
    data = load(EXAMPLE)
    point = {"tau": 0.3, "p0": 0.4, "control_n": 0, "control_p": 0.5, "tau_index": 0}
    both = simulate_design(7, data, point, 1.0, [0, 1])
    alone = simulate_design(7, data, point, 1.0, [1])
    pd.testing.assert_frame_equal(both[both["replicate"] == 1].reset_index(drop=True), alone)
    other = simulate_design(7, data, point | {"tau": 0.31}, 1.0, [1])
    assert not other["y"].equals(alone["y"])


def test_design_points_cover_the_pooled_tau_posterior():
    rng = np.random.default_rng(1)
    draws = [
        pd.DataFrame({"tau": rng.gamma(4, 0.05, 800), "mu": rng.normal(-0.4, 0.1, 800)}),
        pd.DataFrame({"tau": rng.gamma(4, 0.08, 1000), "mu": rng.normal(-0.4, 0.1, 1000)}),
    ]
    data = pd.DataFrame({"group": ["c", "a", "b"], "is_control": [True, False, False],
                         "n": [100, 10, 10], "y": [40, 3, 4]})  # fmt: skip
    points = design_points(draws, [0.05, 0.5, 0.95], data)
    pooled = np.concatenate([draws[0]["tau"], draws[1]["tau"][:800]])
    assert np.allclose(points["tau"], np.quantile(pooled, [0.05, 0.5, 0.95]))
    assert points["control_n"].iloc[0] == 100 and points["control_p"].iloc[0] == 0.4
    assert points["p0"].iloc[0] == pytest.approx(1 / (1 + np.exp(0.4)), abs=0.01)


def test_normal_approximation_inverts_theory():
    for target, tau, p0 in [(0.5, 0.2, 0.4), (0.1, 0.8, 0.3)]:
        n = n_for_shrinkage(target, tau, p0)
        assert theory_shrinkage(n, tau, p0) == pytest.approx(target)


def test_simulated_what_if_interpolates_in_log_n():
    n, s = np.array([10.0, 20, 40, 80]), np.array([0.9, 0.7, 0.4, 0.2])
    value, how = n_for_shrinkage_simulated(n, s, 0.5)
    assert how == "interpolated" and 20 < value < 40
    assert np.log(value) == pytest.approx(np.log(20) + (0.2 / 0.3) * np.log(2))
    assert n_for_shrinkage_simulated(n, s, 0.95) == (10.0, "at most")
    value, how = n_for_shrinkage_simulated(n, s, 0.1)
    assert np.isnan(value) and how == "not reached"


def test_userdata_config(config, schema):
    with_data = merged(config, {"data": str(EXAMPLE)})
    settings.check(with_data, schema)
    assert config_problems(with_data) == []
    bad = merged(with_data, {"grid": {"model": ["none"]}, "userdata": {"scale": [2, 4]}})
    assert len(config_problems(bad)) == 2
    with pytest.raises(settings.ConfigError, match=r"userdata.target: 1.5 must be < 1"):
        settings.check(merged(config, {"userdata": {"target": 1.5}}), schema)


def test_example_file_is_small_and_reproducible(tmp_path):
    import runpy

    assert EXAMPLE.stat().st_size < 100_000
    module = runpy.run_path(str(REPO / "examples/make_forum_like.py"))
    module["main"](tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == EXAMPLE.read_bytes()
