"""MCMC convergence diagnostics: rank-normalised split R-hat, bulk/tail ESS and E-BFMI.

Implements the diagnostics of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat for assessing
convergence of MCMC", Bayesian Analysis 16(2), with the conventions of Stan and ArviZ:
split chains drop the middle draw when the number of iterations is odd, ranks are average
ranks pooled over all (split) chains, normal scores use Blom's offset
``ndtri((r - 3/8) / (S + 1/4))`` and the ESS uses Geyer's initial monotone sequence.

``rhat``, ``ess_bulk`` and ``ess_tail`` take draws of shape
``(chains, iterations, *param_shape)`` and are vectorised over the parameters; results
have shape ``param_shape`` (0-d for a scalar parameter). A parameter that is constant,
contains NaN, or has fewer than 4 iterations gives NaN (no exception, no warning).
"""

from __future__ import annotations

import functools
import statistics

import numpy as np

__all__ = ["ebfmi", "ess_bulk", "ess_tail", "mcse_mean", "rhat"]

_MIN_DRAWS = 4
# Autocovariance lags computed directly before falling back to a full FFT; Geyer's
# truncation of well-mixing chains almost always happens within these lags.
_DIRECT_LAGS = 16


def _check_draws(draws: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Return draws as a float (chains, iterations, n_params) array plus the param shape."""
    x = np.asarray(draws, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"draws must have shape (chains, iterations, ...), got {x.shape}")
    param_shape = tuple(x.shape[2:])
    return x.reshape(x.shape[0], x.shape[1], int(np.prod(param_shape))), param_shape


def _param_major(x: np.ndarray) -> np.ndarray:
    """Contiguous copy (K, C * N) of (C, N, K) draws: one row of pooled draws per parameter."""
    return np.ascontiguousarray(x.transpose(2, 0, 1)).reshape(x.shape[2], -1)


def _split_chains(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Split chains of (C, N, K) draws in half -> contiguous (K, 2C, N // 2).

    For an odd number of iterations the middle draw is dropped (as in Stan and ArviZ).
    ``out`` is an optional float buffer with at least that many elements.
    """
    n_chains, n, k = x.shape
    half = n // 2
    shape = (k, 2 * n_chains, half)
    split = np.empty(shape) if out is None else out.reshape(-1)[: np.prod(shape)].reshape(shape)
    split[:, :n_chains] = x[:, :half].transpose(2, 0, 1)
    split[:, n_chains:] = x[:, n - half :].transpose(2, 0, 1)
    return split


def _sort_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort the pooled draws of each parameter of (K, C, N) ``x``.

    Returns ``order`` (K, S): flat indices into ``x`` in ascending order of value, and the
    sorted values (K, S), with ``S = C * N``; NaNs sort last.
    """
    k = x.shape[0]
    size = x.size // k
    order = np.argsort(x.reshape(k, size), axis=1)
    order += (np.arange(k) * size)[:, None]
    return order, x.ravel()[order]


def _sorted_invalid(ordered: np.ndarray) -> np.ndarray:
    """Flag (K,) rows of sorted values (K, S) that are constant or contain NaN (sorted last)."""
    return (ordered[:, 0] == ordered[:, -1]) | np.isnan(ordered[:, -1])


def _normal_scores(order: np.ndarray, ordered: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Rank-normalise: scatter normal scores of pooled average ranks back to draw order.

    ``order`` and ``ordered`` come from :func:`_sort_rows` (K, S). The result, written to the
    flat float buffer ``out`` (which may be ``ordered`` itself), equals
    ``ndtri((rankdata(row, method="average") - 3/8) / (S + 1/4))`` per parameter; scores
    are looked up in a table indexed by twice the (half-integer) average rank and tie runs
    are patched sparsely.
    """
    k, size = ordered.shape
    # Flat indices (in a (K, S - 1) layout) of sorted neighbours j, j + 1 that are tied.
    tied = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])
    # Normal score of average rank r = i / 2 + 1, where i = start + end (0-based) of a tie run.
    table = _score_table(size)
    z = out.reshape(-1)
    z[order] = np.tile(table[0::2], (k, 1))  # untied draw at sorted position j: i = 2 j
    if tied.size:
        # Runs of consecutive tied pairs (j, j + 1) form the tie groups in sorted order.
        pos = tied + tied // (size - 1)  # flat index of j in the (K, S) layout
        new_run = np.ones(pos.size, dtype=bool)
        new_run[1:] = np.diff(pos) != 1
        first = pos[new_run]
        count = np.diff(np.append(np.flatnonzero(new_run), pos.size)) + 1
        group_start = np.repeat(np.cumsum(count) - count, count)
        members = np.repeat(first, count) + np.arange(count.sum()) - group_start
        z[order.ravel()[members]] = np.repeat(table[2 * (first % size) + count - 1], count)
    return z


@functools.lru_cache(maxsize=8)
def _score_table(size: int) -> np.ndarray:
    """``ndtri((r - 3/8) / (S + 1/4))`` for every average rank r = 1, 1.5, ..., S = ``size``.

    Python's ``NormalDist.inv_cdf`` (Wichura's AS 241, full double precision) instead of
    scipy: a fitting job then does not import scipy (0.3 s per job); cached per size.
    """
    inv_cdf = statistics.NormalDist().inv_cdf
    p = (np.arange(2 * size - 1) / 2.0 + 1.0 - 0.375) / (size + 0.25)
    table = np.array([inv_cdf(q) for q in p.tolist()])
    table.flags.writeable = False
    return table


def _split_rhat(x: np.ndarray) -> np.ndarray:
    """Classic potential scale reduction of already split (K, C, N) chains -> (K,)."""
    n = x.shape[-1]
    between = n * np.var(np.mean(x, axis=-1), axis=-1, ddof=1)
    within = np.mean(np.var(x, axis=-1, ddof=1), axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _autocov_fft(centred: np.ndarray) -> np.ndarray:
    """Chain-averaged biased autocovariance of centred (K, C, N) chains at all lags -> (K, N)."""
    n = centred.shape[-1]
    m = 1 << (2 * n - 1).bit_length()  # zero padding to >= 2n - 1: no circular wrap
    spec = np.fft.rfft(centred, n=m, axis=-1)
    acov = np.fft.irfft(spec.real**2 + spec.imag**2, n=m, axis=-1)[..., :n] / n
    return acov.mean(axis=1)


def _autocov_direct(centred: np.ndarray, lags: int) -> np.ndarray:
    """Chain-averaged biased autocovariance of centred (K, C, N) chains at lags < ``lags``."""
    n = centred.shape[-1]
    acov = np.stack(
        [np.einsum("kct,kct->kc", centred[..., : n - t], centred[..., t:]) for t in range(lags)],
        axis=-1,
    )
    return (acov / n).mean(axis=1)


def _geyer_tau(
    mean_acov: np.ndarray, var_between: np.ndarray, n: int, kmax: int
) -> tuple[np.ndarray, np.ndarray]:
    """Integrated autocorrelation time from chain-averaged autocovariances (K, L).

    Combines chains as ``rho_t = 1 - (W - mean_acov_t) / var_plus`` with
    ``var_plus = W (n - 1) / n + B / n``, truncates at the first non-positive pair sum
    ``rho_2k + rho_2k+1`` (Geyer's initial positive sequence, over the pairs k <= kmax that
    Stan's/ArviZ's loop visits), makes the pair sums monotone and adds Stan's final even
    term. Returns ``tau`` and a flag for whether the given L lags sufficed to decide it.
    """
    within = mean_acov[:, 0] * n / (n - 1.0)
    var_plus = within * (n - 1.0) / n + var_between
    rho = 1.0 - (within[:, None] - mean_acov) / var_plus[:, None]
    rho[:, 0] = 1.0
    kuse = min(kmax, rho.shape[1] // 2 - 1)
    pairs = rho[:, 0 : 2 * kuse + 2 : 2] + rho[:, 1 : 2 * kuse + 2 : 2]
    nonpos = pairs <= 0
    found = nonpos.any(axis=1)
    stop = np.where(found, nonpos.argmax(axis=1), kuse)
    kept = np.arange(kuse + 1) < stop[:, None]
    pair_sum = np.where(kept, np.minimum.accumulate(pairs, axis=1), 0.0).sum(axis=1)
    # Stan/ArviZ keep rho at the truncation lag 2 * stop when it is positive (or when its
    # pair was stored because the pair sum is >= 0, i.e. exactly zero or lags ran out).
    last_even = np.take_along_axis(rho, 2 * stop[:, None], axis=1)[:, 0]
    last_pair = np.take_along_axis(pairs, stop[:, None], axis=1)[:, 0]
    last = np.where((last_even > 0) | (last_pair >= 0), last_even, 0.0)
    tau = -1.0 + 2.0 * pair_sum + last
    return tau, found | (kuse == kmax)


def _ess(x: np.ndarray, constant: float = np.nan) -> np.ndarray:
    """Stan's effective sample size of (K, C, N) chains -> (K,); centres ``x`` in place.

    Autocovariances come from direct sums for the first lags and from an FFT for the
    parameters whose Geyer truncation needs more lags. ``tau`` is bounded below by
    ``1 / log10(C N)`` (so ESS <= C N log10(C N)) as in Stan and ArviZ. Constant
    parameters get ``constant``; parameters with NaN get NaN.
    """
    k, c, n = x.shape
    size = c * n
    if n < 2:
        return np.full(k, np.nan)
    flat = x.reshape(k, -1)
    is_constant = np.all(flat == flat[:, :1], axis=1)
    chain_mean = x.mean(axis=-1)
    var_between = np.var(chain_mean, axis=-1, ddof=1) if c > 1 else np.zeros(k)
    x -= chain_mean[..., None]
    kmax = max((n - 3) // 2, 0)
    tau, decided = _geyer_tau(_autocov_direct(x, min(n, _DIRECT_LAGS)), var_between, n, kmax)
    if not decided.all():
        redo = ~decided
        tau[redo] = _geyer_tau(_autocov_fft(x[redo]), var_between[redo], n, kmax)[0]
    ess = size / np.maximum(tau, 1.0 / np.log10(size))
    ess = np.where(is_constant, constant, ess)
    return np.where(np.isnan(chain_mean).any(axis=1), np.nan, ess)


def rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat: max of the bulk and the folded (|x - median|) split R-hat.

    ``draws`` has shape (chains, iterations, *param_shape); returns shape param_shape.
    Constant parameters give NaN. If only the folded draws are constant (a symmetric
    two-valued parameter) the bulk value is returned.
    """
    x, param_shape = _check_draws(draws)
    if x.shape[1] < _MIN_DRAWS or x.size == 0:
        return np.full(param_shape, np.nan)
    with np.errstate(all="ignore"):
        split = _split_chains(x)
        k, c, n = split.shape
        order, ordered = _sort_rows(split)
        invalid = _sorted_invalid(ordered)
        bulk = _split_rhat(_normal_scores(order, ordered, out=split).reshape(k, c, n))
        # Fold in sorted order: |x - median| is V-shaped there, so a stable sort is cheap.
        size = c * n
        median = 0.5 * (ordered[:, (size - 1) // 2] + ordered[:, size // 2])
        folded = np.abs(np.subtract(ordered, median[:, None], out=ordered), out=ordered)
        fold_order = np.argsort(folded, axis=1, kind="stable")
        fold_order += (np.arange(k) * size)[:, None]
        folded_sorted = folded.ravel()[fold_order]
        fold_order = order.ravel()[fold_order]  # flat indices into draw order
        folded_invalid = _sorted_invalid(folded_sorted)
        z = _normal_scores(fold_order, folded_sorted, out=folded_sorted).reshape(k, c, n)
        tail = np.where(folded_invalid, np.nan, _split_rhat(z))
        out = np.where(invalid, np.nan, np.fmax(bulk, tail))
    return out.reshape(param_shape)


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size: Stan's ESS of the rank-normalised split chains.

    ``draws`` has shape (chains, iterations, *param_shape); returns shape param_shape.
    """
    x, param_shape = _check_draws(draws)
    if x.shape[1] < _MIN_DRAWS or x.size == 0:
        return np.full(param_shape, np.nan)
    with np.errstate(all="ignore"):
        split = _split_chains(x)
        order, ordered = _sort_rows(split)
        invalid = _sorted_invalid(ordered)
        z = _normal_scores(order, ordered, out=split).reshape(split.shape)
        out = np.where(invalid, np.nan, _ess(z))
    return out.reshape(param_shape)


def ess_tail(draws: np.ndarray) -> np.ndarray:
    """Tail effective sample size: min of the split-chain ESS of I(x <= q05) and I(x <= q95).

    Quantiles are pooled over all draws (numpy's default linear interpolation). As in
    ArviZ, an indicator that is constant although the parameter is not (>= 95% of the draws
    tied at an extreme value) counts as fully informative (ESS = number of split draws).
    ``draws`` has shape (chains, iterations, *param_shape); returns shape param_shape.
    """
    x, param_shape = _check_draws(draws)
    if x.shape[1] < _MIN_DRAWS or x.size == 0:
        return np.full(param_shape, np.nan)
    k = x.shape[2]
    with np.errstate(all="ignore"):
        rows = _param_major(x)
        rows.sort(axis=1)
        invalid = _sorted_invalid(rows)
        q05, q95 = np.quantile(rows, [0.05, 0.95], axis=1)[:, :, None, None]
        split = _split_chains(x, out=rows)
        indicators = np.empty((2 * k, *split.shape[1:]))
        np.less_equal(split, q05, out=indicators[:k])
        np.less_equal(split, q95, out=indicators[k:])
        ess = _ess(indicators, constant=float(split[0].size))
        out = np.where(invalid, np.nan, np.minimum(ess[:k], ess[k:]))
    return out.reshape(param_shape)


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """Per-chain energy Bayesian fraction of missing information (E-BFMI).

    ``energy`` is the sampler's ``energy__`` of shape (chains, iterations) (a 1-D array is
    one chain). Returns ``sum(diff(E)**2) / sum((E - mean(E))**2)`` per chain, shape
    (chains,); values below 0.3 indicate that the sampler explores the energy poorly.
    """
    e = np.atleast_2d(np.asarray(energy, dtype=float))
    if e.ndim != 2:
        raise ValueError(f"energy must have shape (chains, iterations), got {e.shape}")
    with np.errstate(all="ignore"):
        num = np.sum(np.diff(e, axis=1) ** 2, axis=1)
        den = np.sum((e - e.mean(axis=1, keepdims=True)) ** 2, axis=1)
        return num / den


def mcse_mean(draws: np.ndarray) -> np.ndarray:
    """Monte Carlo standard error of the posterior mean: sd / sqrt(ESS), with Stan's ESS of
    the split chains of the draws themselves (not rank-normalised), as posterior's
    ``mcse_mean``. ``draws`` has shape (chains, iterations, *param_shape)."""
    x, param_shape = _check_draws(draws)
    if x.shape[1] < _MIN_DRAWS or x.size == 0:
        return np.full(param_shape, np.nan)
    sd = x.reshape(-1, x.shape[2]).std(axis=0, ddof=1)
    with np.errstate(all="ignore"):
        ess = _ess(_split_chains(x))
    return (sd / np.sqrt(ess)).reshape(param_shape)
