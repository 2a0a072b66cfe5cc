"""Configuration errors and their wording, shared by every check (imports nothing of shrinksim).

:mod:`shrinksim.settings` re-exports both names; modules below it (:mod:`shrinksim.priors`,
the SBC design checks) import them from here, so no check imports :mod:`shrinksim.settings`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration problem; the message has one line per problem, each naming its key."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``word``, or ``""`` if none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
