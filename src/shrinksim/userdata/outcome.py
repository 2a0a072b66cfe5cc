"""The outcome family of your data and its population, for every stage after the file is read.

The prepared groups (table USER_DATA) carry the family they are fitted as in their ``family``
column (:attr:`shrinksim.userdata.load.UserData.fitted_as`: the configured family, or
``gaussian_se`` for estimates with known standard errors); :func:`data_family` reads it. The
theory curve and the figures' words of that family come from
:class:`shrinksim.study.outcome.StudyOutcome` at your fitted population (:func:`population`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from shrinksim.families import OUTCOME_FAMILIES, OutcomeFamily, study_family
from shrinksim.study.outcome import StudyOutcome

BINOMIAL = OUTCOME_FAMILIES["binomial"]

_POPULATION = {"logit": "p0", "log": "rate", "identity": "mean"}
"""The StudyOutcome setting that holds mu on the natural scale, by link."""


def data_family(data: pd.DataFrame) -> OutcomeFamily:
    """The family the prepared groups ``data`` are fitted as (their ``family`` column; a frame
    without one is binomial, as every frame was before there were families)."""
    if "family" not in data.columns:
        return BINOMIAL
    names = sorted(set(data["family"].dropna()))
    if len(names) != 1 or names[0] not in OUTCOME_FAMILIES:
        raise ValueError(f"the groups have no single known family: {names}")
    return OUTCOME_FAMILIES[names[0]]


def check_settings(family: OutcomeFamily, settings: Mapping[str, Any]) -> None:
    """Raise ValueError unless the fit ``settings`` name the groups' family (``family``,
    absent for binomial): the rule's settings and the prepared data must agree."""
    named = study_family(settings).name
    if named != family.name:
        raise ValueError(f"the settings fit family {named!r}; the data are {family.name!r}")


def natural_mean(family: OutcomeFamily, mu: float) -> float:
    """``mu`` on the natural scale: expit (binomial; scipy's, as the binomial analysis always
    computed it), exp (poisson) or mu itself."""
    if family.link == "logit":
        return float(expit(mu))
    return float(family.natural(np.float64(mu)))


def population(family: OutcomeFamily, mu: float, sigma: float = float("nan")) -> StudyOutcome:
    """The family at mean effect ``mu`` and, for gaussian, within-group sd ``sigma``: its
    theory curve (at a group's size: n, exposure or se) and labels."""
    found = {_POPULATION[family.link]: natural_mean(family, mu)}
    if np.isfinite(sigma):
        found["sigma"] = float(sigma)
    return StudyOutcome(family, **found)


def size_text(family: OutcomeFamily, value: float) -> str:
    """A group size as text: whole outcomes; an exposure or se to three significant digits
    (whole numbers from 100 on, with thousands separators)."""
    if family.size == "n":
        return f"{value:.0f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
