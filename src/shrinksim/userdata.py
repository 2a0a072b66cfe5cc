"""Your design, your data: read and check a user's binomial groups, fit them, and plan the
design-matched simulation.

Input: a CSV or Parquet file in one of two forms,

* one row per outcome: columns ``group`` and ``y`` (0 or 1);
* one row per group: columns ``group``, ``n`` (outcomes) and ``successes``;

either with an optional ``is_control`` column (true/false, 1/0, yes/no) marking one control
group, which can also be named by the configuration (``userdata.control``). Other columns
are ignored. :func:`load` checks everything before any job runs and raises
:class:`UserDataError` with one line per problem naming the file, row and column; it never
writes anything.

The result is one row per group: ``group`` (the label, as text), ``is_control``, ``n``,
``y`` (successes), in the order the groups first appear in the file.

The design-matched study (:func:`design_points`, :func:`design_sizes`) simulates data sets
with exactly the user's treatment-group sizes (times a what-if ``scale``) and control group,
at true tau values spread over the fitted tau posterior, through
:func:`shrinksim.simulate.simulate_sizes`.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import expit

OUTCOME_COLUMNS = ("group", "y")
GROUP_COLUMNS = ("group", "n", "successes")
CONTROL_COLUMN = "is_control"
MAX_LISTED = 10
"""Problems listed in one error message; the rest are counted."""

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}

USER_DATA = pa.schema(
    [
        pa.field("group", pa.string()),
        pa.field("is_control", pa.bool_()),
        pa.field("n", pa.int32()),
        pa.field("y", pa.int32()),
    ]
)
"""The user's data, one row per group (``y`` = successes)."""


class UserDataError(ValueError):
    """A problem with the user's data file; one line per problem, each naming file, row and
    column."""


class _Problems:
    """Collects problems of one file, each located by row (1-based data row) and column."""

    def __init__(self, path: str, line_numbers: Sequence[int] | None) -> None:
        self.path = path
        self.lines = line_numbers  # CSV: the file line of each data row; Parquet: None
        self.found: list[str] = []

    def where(self, row: int | None = None, column: str | None = None) -> str:
        parts = [self.path]
        if row is not None:
            line = f" (line {self.lines[row - 1]})" if self.lines is not None else ""
            parts.append(f"row {row}{line}")
        if column is not None:
            parts.append(f"column {column!r}")
        return ", ".join(parts)

    def add(self, what: str, row: int | None = None, column: str | None = None) -> None:
        self.found.append(f"{self.where(row, column)}: {what}")

    def raise_if_any(self) -> None:
        if self.found:
            shown = self.found[:MAX_LISTED]
            more = len(self.found) - len(shown)
            if more:
                shown.append(f"... and {more} more problem{'s' if more > 1 else ''}")
            raise UserDataError("invalid data file:\n  " + "\n  ".join(shown))


def _fail(where: str, what: str) -> UserDataError:
    """An error at ``where`` (the file, then row, line or column, comma-separated)."""
    return UserDataError(f"invalid data file:\n  {where}: {what}")


def _is_parquet(path: Path, head: bytes) -> bool:
    return path.suffix.lower() in (".parquet", ".pq") or head[:4] == b"PAR1"


def _read_csv(path: str, raw: bytes) -> tuple[list[str], list[list[Any]], list[int]]:
    """Header, data rows and the file line of each data row; decoding and shape problems
    raise at once (nothing after them can be trusted)."""
    if not raw.strip():
        raise _fail(path, "empty file; expected a header line and one row per group or outcome")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw.count(b"\n", 0, err.start) + 1
        field = raw[line_start : err.start].count(b",")
        header = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().split(",")
        if line > 1:
            # data row number = line - 1 when no blank or multi-line rows come before it
            where = f"{path}, row {line - 1} (line {line})"
            if field < len(header):
                where += f", column {header[field].strip()!r}"
        else:
            where = f"{path}, line 1 (the header)"
        raise _fail(
            where,
            f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "save the file as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet)",
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[Any]] = []
    lines: list[int] = []
    header: list[str] | None = None
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line
            if header is None:
                header = [f.strip() for f in fields]
                continue
            rows.append(fields)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise _fail(f"{path}, line {reader.line_num}", f"malformed CSV ({err})") from None
    assert header is not None  # raw.strip() was not empty
    for i, name in enumerate(header):
        if not name:
            raise _fail(f"{path}, line 1 (the header)", f"column {i + 1} has no name")
        if name in header[:i]:
            raise _fail(f"{path}, line 1 (the header), column {name!r}", "appears twice")
    for i, fields in enumerate(rows, start=1):
        if len(fields) != len(header):
            raise _fail(
                f"{path}, row {i} (line {lines[i - 1]})",
                f"malformed CSV: {len(fields)} fields, but the header has {len(header)} "
                f"({', '.join(header)})",
            )
    if not rows:
        raise _fail(path, "empty file: a header but no data rows")
    return header, rows, lines


def _read_parquet(path: str) -> tuple[list[str], list[list[Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise _fail(path, f"cannot read it as Parquet: {err}") from None
    if table.num_rows == 0:
        raise _fail(path, "empty file: no rows")
    header = [str(name).strip() for name in table.column_names]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return header, [list(row) for row in zip(*columns, strict=True)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _count(value: Any) -> int:
    """An integer count, or ValueError saying what is wrong (no sign check here)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a count")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float):
        number = value
    else:
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not an integer") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{value!r} is not an integer")
    return int(number)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text in ("0.0",):
        return False
    if text == "1.0":
        return True
    raise ValueError(f"{value!r} is not true/false (or 1/0, yes/no)")


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _missing_columns(path: str, header: list[str]) -> UserDataError:
    found = ", ".join(repr(h) for h in header)
    if "n" in header or "successes" in header:
        need = [c for c in GROUP_COLUMNS if c not in header]
        form = "one row per group needs columns group, n, successes"
    else:
        need = [c for c in OUTCOME_COLUMNS if c not in header]
        form = (
            "one row per outcome needs columns group, y (0/1); "
            "one row per group needs group, n, successes"
        )
    hints = []
    for name in need:
        close = difflib.get_close_matches(name, header, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} -> {name!r}?")
    hint = f" (did you mean {', '.join(hints)})" if hints else ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        hint += "; the header has no commas: shrinksim reads comma-separated files"
    missing = ", ".join(repr(c) for c in need)
    plural = "s" if len(need) > 1 else ""
    return _fail(
        f"{path}, line 1 (the header)",
        f"missing column{plural} {missing}{hint}; {form}; found {found}",
    )


def load(path: str | Path, control: str | int | None = None) -> pd.DataFrame:
    """Read and check the user's data; one row per group (see the module docstring).

    ``control`` names the control group's label (config ``userdata.control``), as an
    alternative to an ``is_control`` column. Raises :class:`UserDataError` listing every
    problem found, each with the file, row and column.
    """
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise _fail(name, f"cannot read it: {err.strerror or err}") from None
    if _is_parquet(path, raw[:4]):
        header, rows = _read_parquet(name)
        lines = None
    else:
        header, rows, lines = _read_csv(name, raw)
    if "group" in header and "n" in header and "successes" in header:
        form = "groups"
    elif "group" in header and "y" in header and "n" not in header and "successes" not in header:
        form = "outcomes"
    else:
        raise _missing_columns(name, header)
    col = {h: i for i, h in enumerate(header)}
    problems = _Problems(name, lines)
    has_flag = CONTROL_COLUMN in col
    labels: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for r, fields in enumerate(rows, start=1):
        raw_label = fields[col["group"]]
        if _missing(raw_label):
            problems.add("missing group label", r, "group")
            continue
        label = _label(raw_label)
        flag = False
        if has_flag:
            try:
                flag = _flag(fields[col[CONTROL_COLUMN]])
            except ValueError as err:
                problems.add(str(err), r, CONTROL_COLUMN)
        if form == "groups":
            counts = {}
            for column in ("n", "successes"):
                value = fields[col[column]]
                if _missing(value):
                    problems.add("missing value", r, column)
                    continue
                try:
                    counts[column] = _count(value)
                except ValueError as err:
                    problems.add(str(err), r, column)
                    continue
                if counts[column] < 0:
                    problems.add(f"{counts[column]} is negative; counts must be >= 0", r, column)
                    del counts[column]
            if counts.get("n") == 0:
                problems.add("0 outcomes; every group needs n >= 1", r, "n")
            if "n" in counts and "successes" in counts and counts["successes"] > counts["n"]:
                problems.add(
                    f"successes = {counts['successes']} is more than n = {counts['n']}",
                    r,
                    "successes",
                )
            if label in labels:
                problems.add(
                    f"group {label!r} appears twice (first on row {first_row[label]}); "
                    "one row per group has each group once",
                    r,
                    "group",
                )
                continue
            first_row[label] = r
            labels[label] = {
                "is_control": flag,
                "n": counts.get("n", 0),
                "y": counts.get("successes", 0),
            }
        else:
            value = fields[col["y"]]
            y = None
            if _missing(value):
                problems.add("missing value; y must be 0 or 1", r, "y")
            else:
                try:
                    y = 1 if value is True else 0 if value is False else _count(value)
                except ValueError:
                    y = None
                if y not in (0, 1):
                    problems.add(f"{value!r} is not 0 or 1 (one row per outcome)", r, "y")
                    y = None
            if label not in labels:
                first_row[label] = r
                labels[label] = {"is_control": flag, "n": 0, "y": 0}
            elif has_flag and labels[label]["is_control"] != flag:
                problems.add(
                    f"group {label!r} has is_control = {labels[label]['is_control']} on row "
                    f"{first_row[label]} but {flag} here",
                    r,
                    CONTROL_COLUMN,
                )
            labels[label]["n"] += 1
            labels[label]["y"] += y or 0
    problems.raise_if_any()
    frame = pd.DataFrame(
        {
            "group": pd.Series(list(labels), dtype=object),
            "is_control": [v["is_control"] for v in labels.values()],
            "n": [v["n"] for v in labels.values()],
            "y": [v["y"] for v in labels.values()],
        }
    )
    if control is not None:
        wanted = _label(control)
        if wanted not in labels:
            close = difflib.get_close_matches(wanted, list(labels), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserDataError(
                f"invalid data file:\n  userdata.control: group {wanted!r} is not in "
                f"{name}, column 'group'{hint}"
            )
        if has_flag and frame["is_control"].any() and not labels[wanted]["is_control"]:
            marked = frame.loc[frame["is_control"], "group"].iloc[0]
            raise UserDataError(
                f"invalid data file:\n  userdata.control names group {wanted!r} but "
                f"{name}, column {CONTROL_COLUMN!r} marks group {marked!r} (row "
                f"{first_row[marked]})"
            )
        frame["is_control"] = frame["group"] == wanted
    controls = frame.loc[frame["is_control"], "group"].tolist()
    if len(controls) > 1:
        problems.add(
            f"more than one control group ({', '.join(repr(c) for c in controls[:5])}); "
            "mark at most one",
            first_row[controls[1]],
            CONTROL_COLUMN,
        )
    treated = frame.loc[~frame["is_control"], "group"].tolist()
    if len(frame) == 1:
        problems.add(
            f"a single group ({treated[0] if treated else controls[0]!r}); partial pooling "
            "needs at least two groups",
            column="group",
        )
    elif len(treated) < 2:
        problems.add(
            f"{len(treated)} treatment group(s) besides the control group; shrinkage needs at "
            "least two",
            column="group",
        )
    problems.raise_if_any()
    frame["n"] = frame["n"].astype(int)
    frame["y"] = frame["y"].astype(int)
    return frame


def treatment_sizes(data: pd.DataFrame) -> np.ndarray:
    """Outcomes per treatment group, in the file's order."""
    return data.loc[~data["is_control"], "n"].to_numpy(int)


def design_sizes(data: pd.DataFrame, scale: float) -> np.ndarray:
    """Treatment-group sizes of the what-if design ``scale`` x the user's: max(1, round(s n))."""
    return np.maximum(1, np.rint(scale * treatment_sizes(data))).astype(int)


def control_group(data: pd.DataFrame) -> tuple[int, float]:
    """(outcomes, success probability) of the control group, (0, 0.5) without one.

    The probability is the observed proportion, kept off 0 and 1 by half an outcome.
    """
    control = data[data["is_control"]]
    if control.empty:
        return 0, 0.5
    n, y = int(control["n"].iloc[0]), int(control["y"].iloc[0])
    return n, float(np.clip(y / n, 0.5 / n, 1 - 0.5 / n))


def design_points(
    draws: Sequence[pd.DataFrame], quantiles: Sequence[float], data: pd.DataFrame
) -> pd.DataFrame:
    """True tau values and population mean of the design-matched study.

    ``draws`` are the draws tables of the partial-pooling fits (one per prior, ``mu`` and
    ``tau`` columns); every prior contributes equally (its first ``m`` draws, ``m`` the
    smallest number of draws), so every prior is fitted to the same simulated data sets.
    Returns one row per quantile: ``tau_index``, ``quantile``, ``tau``, ``p0`` (expit of the
    posterior median of mu), ``control_n``, ``control_p``.
    """
    usable = [d for d in draws if len(d) and d["tau"].notna().all()]
    if not usable:
        raise ValueError("no partial-pooling fit of the data has draws; see the fit logs")
    m = min(len(d) for d in usable)
    tau = np.concatenate([d["tau"].to_numpy()[:m] for d in usable])
    mu = np.concatenate([d["mu"].to_numpy()[:m] for d in usable])
    control_n, control_p = control_group(data)
    return pd.DataFrame(
        {
            "tau_index": np.arange(len(quantiles)),
            "quantile": np.asarray(quantiles, dtype=float),
            "tau": np.quantile(tau, quantiles),
            "p0": float(expit(np.median(mu))),
            "control_n": control_n,
            "control_p": control_p,
        }
    )


def design_key(scale: float, tau: float) -> str:
    """Seed key of the design-matched data cell (scale, tau)."""
    return f"userdata/scale~{scale:g}/tau~{tau:.6g}"


def n_for_shrinkage(target: float, tau: float | np.ndarray, p0: float) -> np.ndarray:
    """Outcomes per group at which the normal approximation B(n) = s2 / (s2 + tau^2),
    s2 = 1 / (n p0 (1 - p0)), equals ``target``: n = (1 - X) / (X tau^2 p0 (1 - p0))."""
    tau = np.asarray(tau, dtype=float)
    with np.errstate(divide="ignore"):
        return (1 - target) / (target * tau**2 * p0 * (1 - p0))


def n_for_shrinkage_simulated(
    n: np.ndarray, shrinkage: np.ndarray, target: float
) -> tuple[float, str]:
    """Smallest mean n per group at which the simulated shrinkage reaches ``target``,
    interpolated linearly in log n between the what-if designs, and how it was found:
    ``"interpolated"``; ``"at most"`` (the smallest design is already at or below the target:
    n is that design's, an upper bound); ``"not reached"`` (no design reaches it: NaN)."""
    order = np.argsort(n)
    n, s = np.asarray(n, float)[order], np.asarray(shrinkage, float)[order]
    ok = ~np.isnan(s)
    n, s = n[ok], s[ok]
    if not len(n) or s.min() > target:
        return float("nan"), "not reached"
    if s[0] <= target:
        return float(n[0]), "at most"
    i = int(np.flatnonzero(s <= target)[0])
    x0, x1, y0, y1 = np.log(n[i - 1]), np.log(n[i]), s[i - 1], s[i]
    return float(np.exp(x0 + (target - y0) * (x1 - x0) / (y1 - y0))), "interpolated"


def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems of the ``userdata:`` settings that the schema cannot see."""
    found = []
    if "partial" not in config["grid"]["model"]:
        found.append("grid.model: must include 'partial' when data is set (the fit of your data)")
    if 1 not in [float(s) for s in config["userdata"]["scale"]]:
        found.append("userdata.scale: must include 1 (your own group sizes)")
    return found


# --- fitting the user's data ---------------------------------------------------------------

_QUANTITY = ("mean", "sd", "median", "q025", "q975")


def _summary_fields(prefix: str) -> list[pa.Field]:
    return [pa.field(f"{prefix}_{q}", pa.float64()) for q in _QUANTITY]


USER_GROUPS = pa.schema(
    [
        pa.field("prior", pa.string()),
        pa.field("model", pa.string()),
        *USER_DATA,
        pa.field("obs_p", pa.float64()),
        pa.field("obs_logit", pa.float64()),
        *_summary_fields("theta"),
        *_summary_fields("p"),
        pa.field("shrink_ratio", pa.float64()),
        pa.field("shrinkage_normal", pa.float64()),
    ]
)
"""Every group of every fit of the user's data: data, posterior summaries, and how far it
moved: ``shrink_ratio`` = (observed - posterior mean) / (observed - pooled) on the log-odds
scale, ``shrinkage_normal`` = the normal approximation s2 / (s2 + tau^2) at its own n, with
s2 = 1 / (n p (1 - p)), p = expit(median mu), tau = median tau (partial pooling only)."""


def _user_fits_schema() -> pa.Schema:
    from shrinksim.tables import CELL_FIELDS, FITS

    skip = {f.name for f in CELL_FIELDS} | {"replicate"}
    return pa.schema(
        [
            pa.field("prior", pa.string()),
            pa.field("model", pa.string()),
            pa.field("groups", pa.int32()),
            pa.field("outcomes", pa.int64()),
            *[f for f in FITS if f.name not in skip],
            pa.field("shrinkage", pa.float64()),
            pa.field("shrinkage_ratio", pa.float64()),
        ]
    )


USER_FITS = _user_fits_schema()
"""One row per fit of the user's data: status, mu and tau summaries, diagnostics, and the
shrinkage factor and ratio of :mod:`shrinksim.summarize`."""


def fit_key(prior: str, model: str) -> str:
    """Seed key of a fit of the user's data (replicate 0)."""
    return f"userdata/prior~{prior}/model~{model}"


def fit_user_data(
    engine: Any,
    compiled: dict[str, str],
    data: pd.DataFrame,
    prior: str,
    model: str,
    settings: Mapping[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit the user's groups once with ``model`` (under ``prior`` for partial pooling).

    Returns (groups, fit row, draws): :data:`USER_GROUPS` rows, a :data:`USER_FITS` row, and
    the draws (``chain``, ``draw``, ``mu``, ``tau``, ``theta[i]`` for the i-th group of
    ``data``; absent parameters are NaN). A failed fit gives no group rows and no draws.
    """
    from shrinksim.config import DataCell, FitCell
    from shrinksim.fit import fit_replicate
    from shrinksim.summarize import (
        fit_shrinkage,
        pooled_logit,
        shrinkage_ratios,
        theory_shrinkage,
    )

    treated = treatment_sizes(data)
    cell = FitCell(
        DataCell(int(round(treated.mean())), len(treated), "tau", float("nan")), prior, model
    )
    kept: dict[str, np.ndarray] = {}

    def keep(draws: Any, theta: np.ndarray) -> None:
        chains, iterations = theta.shape[:2]
        kept["chain"] = np.repeat(np.arange(chains), iterations)
        kept["draw"] = np.tile(np.arange(iterations), chains)
        for name in ("mu", "tau"):
            value = draws.params.get(name)
            kept[name] = (
                value.reshape(-1) if value is not None else np.full(theta[..., 0].size, np.nan)
            )
        for i in range(theta.shape[-1]):
            kept[f"theta[{i + 1}]"] = theta[..., i].reshape(-1)

    groups = data.reset_index(drop=True)
    summary, row = fit_replicate(
        engine, compiled, cell, groups, settings, 0, key=fit_key(prior, model), on_draws=keep
    )
    row |= {"prior": prior, "model": model, "groups": len(data), "outcomes": int(data["n"].sum())}
    if summary is None:
        fit = pd.DataFrame([row]).reindex(columns=USER_FITS.names)
        return USER_GROUPS.empty_table().to_pandas(), fit, pd.DataFrame()
    mu_mean = row.get("mu_mean", float("nan"))
    measured = fit_shrinkage(summary.assign(mu_mean=mu_mean))
    row |= measured.to_dict()
    pooled = pooled_logit(summary, mu_mean)
    summary["shrink_ratio"] = shrinkage_ratios(
        summary["obs_logit"].to_numpy(), summary["theta_mean"].to_numpy(), pooled
    )
    if model == "partial":
        p0 = float(expit(row["mu_median"]))
        summary["shrinkage_normal"] = theory_shrinkage(summary["n"], row["tau_median"], p0)
    else:
        summary["shrinkage_normal"] = np.nan
    summary = summary.assign(prior=prior, model=model)
    fit = pd.DataFrame([row]).reindex(columns=USER_FITS.names)
    return summary, fit, pd.DataFrame(kept).assign(prior=prior, model=model)


# --- the design-matched study -------------------------------------------------------------


def simulate_design(
    seed: int, data: pd.DataFrame, point: Mapping[str, Any], scale: float, replicates: list[int]
) -> pd.DataFrame:
    """Data sets with the user's treatment-group sizes times ``scale`` and the user's control
    group, at the true tau and p0 of design ``point`` (a row of :func:`design_points`);
    table :data:`shrinksim.tables.DATA`."""
    from shrinksim.simulate import simulate_sizes

    sizes = design_sizes(data, scale)
    key = design_key(scale, float(point["tau"]))
    return pd.concat(
        [
            simulate_sizes(
                seed,
                key,
                r,
                sizes,
                float(point["tau"]),
                float(point["p0"]),
                int(point["control_n"]),
                float(point["control_p"]),
            )
            for r in replicates
        ],
        ignore_index=True,
    )


def fit_design(
    engine: Any,
    compiled: dict[str, str],
    simulated: pd.DataFrame,
    point: Mapping[str, Any],
    scale: float,
    prior: str,
    settings: Mapping[str, Any],
    progress: Any = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit simulated design-matched data sets with partial pooling under ``prior``; tables
    :data:`shrinksim.tables.GROUPS` and :data:`shrinksim.tables.FITS`, whose cell columns say
    n_per_group = the rounded mean treatment-group size, spread = the true tau."""
    from shrinksim.config import DataCell, FitCell
    from shrinksim.fit import fit_batch

    first = simulated[simulated["replicate"] == simulated["replicate"].min()]
    treated = first.loc[~first["is_control"], "n"]
    tau = float(point["tau"])
    cell = FitCell(DataCell(int(round(treated.mean())), len(treated), "tau", tau), prior, "partial")
    key = f"{design_key(scale, tau)}/prior~{prior}/model~partial"
    done = fit_batch(engine, compiled, cell, simulated, settings, progress=progress, key=key)
    return done.groups, done.fits


def recovery(groups: pd.DataFrame) -> pd.DataFrame:
    """How well one fit recovers the true group log-odds (treatment groups): RMSE of the
    posterior mean and, for comparison, of the observed log-odds; 95 % interval coverage."""
    from shrinksim.summarize import FIT_KEY

    treat = groups[~groups["is_control"]].assign(
        err_post=lambda d: (d["theta_mean"] - d["true_logit"]) ** 2,
        err_obs=lambda d: (d["obs_logit"] - d["true_logit"]) ** 2,
        covered=lambda d: (
            (d["theta_q025"] <= d["true_logit"]) & (d["true_logit"] <= d["theta_q975"])
        ),
    )
    out = treat.groupby(FIT_KEY, sort=True).agg(
        rmse_posterior=("err_post", "mean"),
        rmse_observed=("err_obs", "mean"),
        coverage95=("covered", "mean"),
    )
    out[["rmse_posterior", "rmse_observed"]] = np.sqrt(out[["rmse_posterior", "rmse_observed"]])
    return out.reset_index()


DESIGN_FITS = pa.schema(
    [
        pa.field("scale", pa.float64()),
        pa.field("tau_index", pa.int32()),
        pa.field("quantile", pa.float64()),
        pa.field("tau", pa.float64()),
        pa.field("prior", pa.string()),
        pa.field("replicate", pa.int32()),
        pa.field("n_mean", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("tau_mean", pa.float64()),
        pa.field("shrinkage", pa.float64()),
        pa.field("shrinkage_ratio", pa.float64()),
        pa.field("shrinkage_theory", pa.float64()),
        pa.field("rmse_posterior", pa.float64()),
        pa.field("rmse_observed", pa.float64()),
        pa.field("coverage95", pa.float64()),
    ]
)
"""One row per design-matched fit: shrinkage (:mod:`shrinksim.summarize` definitions, theory
at the mean size) and recovery of the true group effects."""

DESIGN_CELLS = pa.schema(
    [
        pa.field("scale", pa.float64()),
        pa.field("tau_index", pa.int32()),
        pa.field("quantile", pa.float64()),
        pa.field("tau", pa.float64()),
        pa.field("prior", pa.string()),
        pa.field("n_mean", pa.float64()),
        pa.field("fits", pa.int32()),
        pa.field("fits_ok", pa.int32()),
        pa.field("shrinkage_mean", pa.float64()),
        pa.field("shrinkage_mcse", pa.float64()),
        pa.field("shrinkage_theory", pa.float64()),
        pa.field("rmse_posterior", pa.float64()),
        pa.field("rmse_observed", pa.float64()),
        pa.field("coverage95", pa.float64()),
    ]
)
"""Design-matched shrinkage per (scale, tau, prior): mean over replicates with MCSE."""

WHATIF = pa.schema(
    [
        pa.field("prior", pa.string()),
        pa.field("tau_index", pa.int32()),
        pa.field("quantile", pa.float64()),
        pa.field("tau", pa.float64()),
        pa.field("target", pa.float64()),
        pa.field("n_now", pa.float64()),
        pa.field("n_simulated", pa.float64()),
        pa.field("n_simulated_how", pa.string()),
        pa.field("n_theory", pa.float64()),
    ]
)
"""What-if answer: mean outcomes per treatment group at which shrinkage falls to ``target``:
interpolated from the simulated designs (``n_simulated_how``: interpolated, at most, not
reached; see :func:`n_for_shrinkage_simulated`) and from the normal approximation; ``n_now``
is the user's mean size."""


def design_fit_rows(
    groups: pd.DataFrame,
    fits: pd.DataFrame,
    point: Mapping[str, Any],
    scale: float,
) -> pd.DataFrame:
    """:data:`DESIGN_FITS` rows of one design cell's fits."""
    from shrinksim.summarize import FIT_KEY, shrinkage_per_fit

    p0 = float(point["p0"])
    per_fit = shrinkage_per_fit(groups, fits, p0)
    if len(groups):
        per_fit = per_fit.merge(recovery(groups), on=FIT_KEY, how="left")
        sizes = groups[~groups["is_control"]].groupby("replicate")["n"].mean()
        per_fit["n_mean"] = per_fit["replicate"].map(sizes)
    else:
        per_fit = per_fit.assign(
            rmse_posterior=np.nan, rmse_observed=np.nan, coverage95=np.nan, n_mean=np.nan
        )
    return per_fit.assign(
        scale=float(scale),
        tau_index=int(point["tau_index"]),
        quantile=float(point["quantile"]),
        tau=float(point["tau"]),
    ).reindex(columns=DESIGN_FITS.names)


def design_cells(per_fit: pd.DataFrame) -> pd.DataFrame:
    """:data:`DESIGN_CELLS`: per (scale, tau, prior), means over replicates (fits with
    estimates) and the MCSE of the shrinkage."""
    keys = ["scale", "tau_index", "quantile", "tau", "prior"]

    def reduce(cell: pd.DataFrame) -> pd.Series:
        ok = cell.dropna(subset=["shrinkage"])
        mcse = ok["shrinkage"].std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan
        return pd.Series(
            {
                "n_mean": cell["n_mean"].mean(),
                "fits": len(cell),
                "fits_ok": int((cell["status"] == "ok").sum()),
                "shrinkage_mean": ok["shrinkage"].mean() if len(ok) else np.nan,
                "shrinkage_mcse": mcse,
                "shrinkage_theory": cell["shrinkage_theory"].iloc[0],
                "rmse_posterior": ok["rmse_posterior"].mean(),
                "rmse_observed": ok["rmse_observed"].mean(),
                "coverage95": ok["coverage95"].mean(),
            }
        )

    return per_fit.groupby(keys, sort=True)[per_fit.columns.drop(keys)].apply(reduce).reset_index()


def whatif(cells: pd.DataFrame, points: pd.DataFrame, target: float) -> pd.DataFrame:
    """:data:`WHATIF`: per prior and tau, the mean n per group giving shrinkage ``target``."""
    p0 = float(points["p0"].iloc[0])
    rows = []
    for (prior, k), line in cells.groupby(["prior", "tau_index"], sort=True):
        tau = float(line["tau"].iloc[0])
        n_sim, how = n_for_shrinkage_simulated(
            line["n_mean"].to_numpy(), line["shrinkage_mean"].to_numpy(), target
        )
        rows.append(
            {
                "prior": prior,
                "tau_index": k,
                "quantile": float(line["quantile"].iloc[0]),
                "tau": tau,
                "target": target,
                "n_now": float(line.loc[line["scale"] == 1.0, "n_mean"].mean()),
                "n_simulated": n_sim,
                "n_simulated_how": how,
                "n_theory": float(n_for_shrinkage(target, tau, p0)),
            }
        )
    return pd.DataFrame(rows, columns=WHATIF.names)
