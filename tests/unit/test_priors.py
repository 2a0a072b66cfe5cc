"""The prior-family registry: it matches the Stan function file, and every family encodes,
draws and evaluates exactly as the code it replaced (bit for bit)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import integrate, stats

from conftest import REPO
from shrinksim import priors
from shrinksim.errors import ConfigError
from shrinksim.priors import FAMILIES, Prior, PriorFamily, parse_prior

STAN_FILE = REPO / "stan/prior.stanfunctions"
_LPDF = r"return (\w+)_lpdf\(x \| ((?:args\[\d\](?:, )?)+)\);"


def _slots(args: str) -> tuple[int, ...]:
    return tuple(int(i) for i in re.findall(r"args\[(\d)\]", args))


def _stan_families() -> tuple[dict[int, tuple[str, tuple[int, ...]]], tuple[str, tuple[int, ...]]]:
    """``prior_lpdf``'s lines: {code: (name, slots)} of the ``if (family == k)`` lines, and
    (name, slots) of the final unconditional ``return`` (the family of the remaining code)."""
    body = STAN_FILE.read_text(encoding="utf-8").split("real prior_lpdf", 1)[1]
    lines = [line.strip() for line in body.splitlines() if "_lpdf(x" in line]
    coded, fallback = {}, None
    for line in lines:
        if match := re.fullmatch(r"if \(family == (\d+)\) " + _LPDF, line):
            coded[int(match.group(1))] = (match.group(2), _slots(match.group(3)))
        elif match := re.fullmatch(_LPDF, line):
            assert fallback is None, f"two unconditional returns in {STAN_FILE}"
            fallback = (match.group(1), _slots(match.group(2)))
        else:
            raise AssertionError(f"unexpected line in prior_lpdf: {line}")
    assert fallback is not None
    return coded, fallback


def test_registry_matches_the_stan_function_file():
    coded, (last_name, last_slots) = _stan_families()
    for code, (name, slots) in coded.items():
        assert name in FAMILIES, f"Stan family {code} = {name} is not in priors.FAMILIES"
        assert (FAMILIES[name].code, FAMILIES[name].stan_slots) == (code, slots)
    # the unconditional return serves the one family without an `if` line
    assert last_name in FAMILIES, f"Stan family {last_name} is not in priors.FAMILIES"
    assert last_name not in {name for name, _ in coded.values()}
    assert FAMILIES[last_name].stan_slots == last_slots
    assert FAMILIES[last_name].code not in coded
    assert set(FAMILIES) == {last_name} | {name for name, _ in coded.values()}
    codes = sorted(f.code for f in FAMILIES.values())
    assert codes == list(range(1, len(FAMILIES) + 1))


def test_stan_comment_documents_every_code():
    comment = " ".join(
        line for line in STAN_FILE.read_text(encoding="utf-8").splitlines() if line.startswith("//")
    )
    for family in FAMILIES.values():
        assert f"{family.code} = {family.name}(" in comment


@pytest.mark.parametrize(
    ("text", "family", "args", "encoded"),
    [
        ("student_t(3, 0, 2.5)", 1, (3, 0, 2.5), [3, 0, 2.5]),
        ("normal(0, 1)", 2, (0, 1), [0, 0, 1]),
        ("cauchy(0,5)", 3, (0, 5), [0, 0, 5]),
        ("exponential(1)", 4, (1,), [0, 0, 1]),
    ],
)
def test_prior_encoding_as_stan_data(text, family, args, encoded):
    prior = parse_prior(text, "priors.x")
    assert prior == Prior(prior.family, tuple(float(a) for a in args))
    assert prior.stan_data("tau_prior") == {"tau_prior_family": family, "tau_prior_args": encoded}


# --- the formulas the registry replaced (config.Prior.stan_data, sbc.draw_prior,
# --- reference.log_density, userplot.half_prior_pdf), copied verbatim


def _old_stan_args(prior: Prior) -> list[float]:
    if prior.family == "student_t":
        args = list(prior.args)
    elif prior.family == "exponential":
        args = [0.0, 0.0, prior.args[0]]
    else:
        args = [0.0, *prior.args]
    return [float(a) for a in args]


def _old_draw(rng: np.random.Generator, prior: Prior, positive: bool) -> float:
    family, args = prior.family, prior.args
    while True:
        if family == "student_t":
            x = args[1] + args[2] * rng.standard_t(args[0])
        elif family == "normal":
            x = rng.normal(args[0], args[1])
        elif family == "cauchy":
            x = args[0] + args[1] * rng.standard_cauchy()
        else:
            x = rng.exponential(1.0 / args[0])
        if not positive or x >= 0:
            return float(x)


def _old_dist(prior: Prior):
    family, args = prior.family, prior.args
    if family == "student_t":
        return stats.t(args[0], loc=args[1], scale=args[2])
    if family == "normal":
        return stats.norm(loc=args[0], scale=args[1])
    if family == "cauchy":
        return stats.cauchy(loc=args[0], scale=args[1])
    return stats.expon(scale=1.0 / args[0])


def _old_half_pdf(prior: Prior, x: np.ndarray) -> np.ndarray:
    dist = _old_dist(prior)
    if prior.family == "exponential":
        return dist.pdf(x)
    return dist.pdf(x) / dist.sf(0.0)


OLD_CASES = [
    "student_t(3, 0, 2.5)",
    "student_t(1.5, -2, 10)",
    "normal(0, 1)",
    "normal(1.5, 0.3)",
    "cauchy(0, 5)",
    "cauchy(-1, 0.5)",
    "exponential(1)",
    "exponential(0.3)",
]


@pytest.mark.parametrize("text", OLD_CASES)
def test_same_numbers_as_the_old_code(text):
    prior = parse_prior(text, "priors.x")
    data = prior.stan_data("tau_prior")
    assert data["tau_prior_family"] == FAMILIES[prior.family].code
    assert data["tau_prior_args"] == _old_stan_args(prior)
    for positive in (False, True):
        new, old = np.random.default_rng(7), np.random.default_rng(7)
        draws = [prior.sample(new, positive) for _ in range(200)]
        assert draws == [_old_draw(old, prior, positive) for _ in range(200)]
        assert new.bit_generator.state == old.bit_generator.state  # same calls, same order
    x = np.linspace(-3.0, 30.0, 301)
    assert np.array_equal(prior.log_density(x), _old_dist(prior).logpdf(x))
    half = x[x >= 0]
    assert np.array_equal(prior.half_density(half), _old_half_pdf(prior, half))


# --- registry-driven: every family, present or future, gets the same checks

EXAMPLE_ARGS = {"nu": 4.0, "loc": 0.5, "scale": 2.0, "rate": 1.5}


def _example(family: PriorFamily) -> Prior:
    return Prior(family.name, tuple(EXAMPLE_ARGS[p] for p in family.params))


def _family_contract(family: PriorFamily) -> None:
    prior = _example(family)
    assert parse_prior(str(prior), "priors.x") == prior
    data = prior.stan_data("p")
    assert data["p_family"] == family.code
    assert len(data["p_args"]) == priors.STAN_ARGS
    assert [data["p_args"][s - 1] for s in family.stan_slots] == list(prior.args)
    rng = np.random.default_rng(1)
    assert all(prior.sample(rng, positive=True) >= 0 for _ in range(100))
    x = np.array([0.1, 1.0, 3.0])
    assert prior.log_density(x) == pytest.approx(np.log(family.dist(prior.args).pdf(x)))
    total = integrate.quad(lambda t: float(prior.half_density(t)), 0, np.inf)[0]
    assert total == pytest.approx(1.0, rel=1e-6)
    for i in family.positive:
        bad = [*prior.args]
        bad[i] = 0.0
        with pytest.raises(ConfigError, match=f"priors.x: {family.positive_what} must be > 0"):
            parse_prior(str(Prior(family.name, tuple(bad))), "priors.x")
    short = ", ".join(["1"] * (family.arity + 1))
    with pytest.raises(ConfigError, match=f"{family.name} takes {family.arity} arguments"):
        parse_prior(f"{family.name}({short})", "priors.x")


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_every_family_keeps_the_contract(family):
    _family_contract(family)


def test_a_new_family_is_one_registry_entry(monkeypatch):
    """A family added to FAMILIES alone is parsed, encoded, drawn and evaluated everywhere
    (its Stan line is the other half: test_registry_matches_the_stan_function_file)."""
    lognormal = PriorFamily(
        name="lognormal",
        code=len(FAMILIES) + 1,
        params=("loc", "scale"),
        stan_slots=(2, 3),
        positive=(1,),
        positive_what="scale",
        draw=lambda rng, a: rng.lognormal(a[0], a[1]),
        dist=lambda a: stats.lognorm(a[1], scale=np.exp(a[0])),
        support_positive=True,
    )
    monkeypatch.setitem(FAMILIES, "lognormal", lognormal)
    _family_contract(lognormal)
    assert "lognormal(2 args)" in str(
        pytest.raises(ConfigError, parse_prior, "gamma(1)", "p").value
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "student_t 3",
            "priors.x: cannot read prior 'student_t 3'; write e.g. student_t(3, 0, 2.5)",
        ),
        (
            "gamma(2, 1)",
            "priors.x: unknown prior family 'gamma'; allowed: student_t(3 args), "
            "normal(2 args), cauchy(2 args), exponential(1 args)",
        ),
        ("normal(0, a)", "priors.x: prior arguments must be numbers, got 'normal(0, a)'"),
        ("normal(0)", "priors.x: normal takes 2 arguments"),
        ("normal(0, inf)", "priors.x: prior arguments must be finite, got 'normal(0, inf)'"),
        (
            "student_t(0, 0, 1)",
            "priors.x: scale and degrees of freedom must be > 0, got 'student_t(0, 0, 1)'",
        ),
        (
            "cauchy(0, -1)",
            "priors.x: scale and degrees of freedom must be > 0, got 'cauchy(0, -1)'",
        ),
        ("exponential(0)", "priors.x: rate must be > 0, got 'exponential(0)'"),
    ],
)
def test_parse_errors_are_worded_as_before(text, message):
    with pytest.raises(ConfigError) as err:
        parse_prior(text, "priors.x")
    assert str(err.value) == message


def test_str_is_the_config_text():
    assert str(parse_prior("student_t(3, 0, 2.5)", "p")) == "student_t(3, 0, 2.5)"
    assert str(parse_prior(" exponential( 1 ) ", "p")) == "exponential(1)"
    assert FAMILIES["student_t"].label == "student_t(nu, loc, scale)"
