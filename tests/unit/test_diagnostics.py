"""Tests for shrinksim.diagnostics: rank-normalised R-hat, bulk/tail ESS and E-BFMI.

Statistical tolerances were set from the sampling distribution of each statistic, measured
once with 2000 independent replicates (numbers quoted in the comments); every test uses a
fixed seed, so it is deterministic, and the margins make it robust to changing that seed.
Independent reference implementations (pure-Python ranks with statistics.NormalDist and a
literal port of the Stan/ArviZ ESS loop with direct autocovariances) check exact values.
"""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pytest
from scipy.signal import lfilter

from shrinksim.diagnostics import ebfmi, ess_bulk, ess_tail, rhat

CHAINS, ITER = 4, 1000
TOTAL = CHAINS * ITER


def ar1(rng: np.random.Generator, rho: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) chains along axis 1 with unit innovations: x_t = rho x_{t-1} + e_t."""
    e = rng.standard_normal(shape)
    e[:, 0] /= np.sqrt(1.0 - rho**2)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -rho], e, axis=1)


def classic_split_rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat (no ranks, no folding) of raw (chains, iter, ...) draws, written out."""
    half = x.shape[1] // 2
    s = np.concatenate([x[:, :half], x[:, -half:]], axis=0)
    b = half * s.mean(axis=1).var(axis=0, ddof=1)
    w = s.var(axis=1, ddof=1).mean(axis=0)
    return np.sqrt((b / w + half - 1) / half)


# --- independent reference implementation (loops, stdlib normal quantile) --------------


def ref_split(x: np.ndarray) -> np.ndarray:
    half = x.shape[1] // 2
    return np.vstack([x[:, :half], x[:, x.shape[1] - half :]])


def ref_z(x: np.ndarray) -> np.ndarray:
    """Average ranks over all chains by hand, then Blom normal scores via NormalDist."""
    flat = x.ravel().tolist()
    size = len(flat)
    idx = sorted(range(size), key=flat.__getitem__)
    ranks = [0.0] * size
    i = 0
    while i < size:
        j = i
        while j + 1 < size and flat[idx[j + 1]] == flat[idx[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[idx[t]] = (i + j) / 2 + 1
        i = j + 1
    nd = NormalDist()
    return np.array([nd.inv_cdf((r - 0.375) / (size + 0.25)) for r in ranks]).reshape(x.shape)


def ref_rhat_basic(x: np.ndarray) -> float:
    n = x.shape[1]
    b = n * np.var(x.mean(axis=1), ddof=1)
    w = np.mean(x.var(axis=1, ddof=1))
    return math.sqrt((b / w + n - 1) / n)


def ref_rhat(x: np.ndarray) -> float:
    s = ref_split(x)
    if np.ptp(s) == 0:
        return math.nan
    folded = np.abs(s - np.median(s))
    bulk = ref_rhat_basic(ref_z(s))
    return bulk if np.ptp(folded) == 0 else max(bulk, ref_rhat_basic(ref_z(folded)))


def ref_ess(x: np.ndarray, constant: float = math.nan) -> float:
    """Literal port of Stan's/ArviZ's ESS loop, autocovariance by direct sums."""
    m, n = x.shape
    if np.ptp(x) == 0:
        return constant
    c = x - x.mean(axis=1, keepdims=True)
    acov = np.array([[c[j, : n - t] @ c[j, t:] / n for t in range(n)] for j in range(m)])
    mean_var = acov[:, 0].mean() * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + (np.var(x.mean(axis=1), ddof=1) if m > 1 else 0.0)
    rho_t = np.zeros(n)
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - acov[:, 1].mean()) / var_plus
    rho_t[0], rho_t[1] = rho_even, rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0:
        rho_even = 1.0 - (mean_var - acov[:, t + 1].mean()) / var_plus
        rho_odd = 1.0 - (mean_var - acov[:, t + 2].mean()) / var_plus
        if rho_even + rho_odd >= 0:
            rho_t[t + 1], rho_t[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho_t[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:
        if rho_t[t + 1] + rho_t[t + 2] > rho_t[t - 1] + rho_t[t]:
            rho_t[t + 1] = rho_t[t + 2] = (rho_t[t - 1] + rho_t[t]) / 2
        t += 2
    tau = -1 + 2 * rho_t[: max_t + 1].sum() + rho_t[max_t + 1 : max_t + 2].sum()
    return m * n / max(tau, 1 / math.log10(m * n))


def ref_ess_bulk(x: np.ndarray) -> float:
    s = ref_split(x)
    return math.nan if np.ptp(s) == 0 else ref_ess(ref_z(s))


def ref_ess_tail(x: np.ndarray) -> float:
    if np.ptp(x) == 0:
        return math.nan
    q05, q95 = np.quantile(x, [0.05, 0.95])
    size = ref_split(x).size
    return min(
        ref_ess(ref_split((x <= q05).astype(float)), constant=size),
        ref_ess(ref_split((x <= q95).astype(float)), constant=size),
    )


def mixed_draws(rng: np.random.Generator, chains: int, n: int) -> np.ndarray:
    """(chains, n, 7) draws exercising every code path: iid, strong positive (FFT path) and
    negative autocorrelation, ties, a near-binary parameter whose tail indicator is constant,
    a skewed parameter and a chain offset."""
    return np.stack(
        [
            rng.standard_normal((chains, n)),
            ar1(rng, 0.97, (chains, n)),
            ar1(rng, -0.8, (chains, n)),
            np.round(ar1(rng, 0.5, (chains, n))),
            (rng.random((chains, n)) < 0.97).astype(float),
            np.exp(3 * rng.standard_normal((chains, n))),
            rng.standard_normal((chains, n)) + 0.7 * np.arange(chains)[:, None],
        ],
        axis=-1,
    )


# --- hand-computed values ---------------------------------------------------------------


def test_rhat_tiny_hand_computed():
    # draws 1..8 in 2 chains of 4 -> split chains [1,2] [3,4] [5,6] [7,8], ranks 1..8.
    x = np.arange(1.0, 9.0).reshape(2, 4)
    nd = NormalDist()

    def score(r: float) -> float:
        return nd.inv_cdf((r - 3 / 8) / (8 + 1 / 4))

    def basic(chains: list[list[float]]) -> float:
        n = 2
        means = [sum(c) / n for c in chains]
        grand = sum(means) / len(means)
        b = n * sum((m - grand) ** 2 for m in means) / (len(means) - 1)
        w = sum((c[0] - c[1]) ** 2 / 2 for c in chains) / len(chains)  # var of 2 values
        return math.sqrt((b / w + n - 1) / n)

    bulk = basic(
        [[score(1), score(2)], [score(3), score(4)], [score(5), score(6)], [score(7), score(8)]]
    )
    # |x - 4.5| = [3.5 2.5] [1.5 .5] [.5 1.5] [2.5 3.5]; each value appears twice, so the
    # average ranks are .5 -> 1.5, 1.5 -> 3.5, 2.5 -> 5.5, 3.5 -> 7.5.
    fold = basic(
        [
            [score(7.5), score(5.5)],
            [score(3.5), score(1.5)],
            [score(1.5), score(3.5)],
            [score(5.5), score(7.5)],
        ]
    )
    assert bulk > fold  # the trend is a location problem, so the bulk part dominates
    # 1e-12: only the last bits of the normal quantile (scipy ndtri vs stdlib) can differ.
    assert float(rhat(x)) == pytest.approx(max(bulk, fold), rel=1e-12)


def test_ess_tiny_hand_computed():
    # One chain 0,1,0,1,0,1,0,1 -> split chains 0101 and 0101; pooled average ranks are
    # 2.5 (zeros) and 6.5 (ones), whose normal scores are -z and +z. Each split chain is
    # -z, z, -z, z: W = (4/3) z^2, lag-1 autocovariance -3/4 z^2 (biased, /4), B = 0, so
    # var_plus = W 3/4 = z^2 and rho_1 = 1 - (W - acov_1) / var_plus = -13/12. With 4 draws
    # per split chain Geyer's loop does not run: tau = -1 + rho_0 = 0, bounded below by
    # 1 / log10(8), so ESS = 8 log10(8), the cap.
    x = np.tile([0.0, 1.0], 4)[None, :]
    assert float(ess_bulk(x)) == pytest.approx(8 * math.log10(8), rel=1e-12)
    assert ref_ess_bulk(x) == pytest.approx(8 * math.log10(8), rel=1e-12)


def test_ebfmi_tiny_hand_computed():
    # E = 1, 2, 4: sum diff^2 = 1 + 4 = 5; mean 7/3, sum dev^2 = (16 + 1 + 25) / 9 = 14/3.
    assert ebfmi(np.array([[1.0, 2.0, 4.0]])) == pytest.approx([15 / 14], rel=1e-14)


# --- agreement with the reference loops ---------------------------------------------------


@pytest.mark.parametrize(("chains", "n"), [(1, 9), (2, 4), (2, 5), (4, 10), (3, 33), (4, 200)])
def test_matches_reference_implementation(chains, n):
    x = mixed_draws(np.random.default_rng(100 + n), chains, n)
    got = np.stack([rhat(x), ess_bulk(x), ess_tail(x)])
    want = np.array(
        [[f(x[..., j]) for j in range(x.shape[-1])] for f in (ref_rhat, ref_ess_bulk, ref_ess_tail)]
    )
    # 1e-9: the two differ only in rounding (FFT vs direct autocovariances, ndtri vs
    # NormalDist); Geyer's truncation decisions and tie handling must agree exactly.
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


# --- iid draws --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iid() -> np.ndarray:
    return np.random.default_rng(20240601).standard_normal((CHAINS, ITER, 50))


def test_rhat_iid_close_to_one(iid):
    r = rhat(iid)
    # Exact lower bound: between-chain variance >= 0, so R-hat >= sqrt((n - 1) / n) with
    # n = 500 draws per split chain.
    assert np.all(r >= math.sqrt((ITER // 2 - 1) / (ITER // 2)) - 1e-12)
    # For iid draws R-hat - 1 ~ (F - 1) / (2 n), F ~ F(7, 3992): measured mean 1.0003,
    # sd 0.0005, max 1.0033 over 2000 replicates; 1.01 is > 10 sd away.
    assert np.all(np.abs(r - 1) < 0.01)


def test_ess_bulk_iid_near_total(iid):
    rel = ess_bulk(iid) / TOTAL
    # Measured for 4 x 1000 iid: bulk ESS / 4000 has mean 0.986, sd 0.043, range
    # [0.80, 1.13] over 2000 replicates. Each parameter within 30% (~7 sd), and the mean
    # of 50 (sd 0.006) within 5% (> 5 sd beyond its 1.4% bias).
    assert np.all(np.abs(rel - 1) < 0.3)
    assert abs(rel.mean() - 1) < 0.05


def test_ess_tail_iid_near_total(iid):
    rel = ess_tail(iid) / TOTAL
    # Measured: tail ESS / 4000 has mean 0.961, sd 0.041, range [0.75, 1.07] (a min of two
    # noisy indicator ESS is biased low). Looser: each within 35% (~8 sd), the mean of 50
    # (sd 0.006) within 10% (> 10 sd beyond the 3.9% bias).
    assert np.all(np.abs(rel - 1) < 0.35)
    assert abs(rel.mean() - 1) < 0.1


# --- autocorrelated draws -----------------------------------------------------------------


def test_ess_bulk_ar1_matches_theory():
    rho = 0.9
    x = ar1(np.random.default_rng(7), rho, (CHAINS, ITER, 200))
    expected = TOTAL * (1 - rho) / (1 + rho)  # 210.5 for AR(1)
    rel = ess_bulk(x) / expected
    # A single AR(0.9) ESS estimate is noisy: measured mean ratio 1.018, sd 0.177 over
    # 2000 replicates (truncation after ~40 lags of 500-draw split chains). So the mean of
    # 200 independent parameters (sd 0.0125) is required within 20% (> 14 sd) and their
    # median (measured 1.03; medians of 200 ranged 1.01-1.04 over 10 batches) within 10%.
    assert abs(rel.mean() - 1) < 0.2
    assert abs(np.median(rel) - 1) < 0.1
    assert np.all(rel < 2.5)  # measured max 1.61; autocorrelation must reduce the ESS


def test_ess_negative_autocorrelation_exceeds_total():
    # Antithetic chains (rho = -0.5) have ESS = N (1 + 0.5) / (1 - 0.5) = 3 N theoretically.
    # Measured: ESS / N mean 3.17, sd 0.28, min 2.22, max 3.60 (= log10 4000, the cap) over
    # 2000 replicates, so > 1.5 N is ~6 sd below the mean; the cap N log10 N must hold.
    x = ar1(np.random.default_rng(8), -0.5, (CHAINS, ITER, 20))
    b = ess_bulk(x)
    assert np.all(b > 1.5 * TOTAL)
    assert np.all(b <= TOTAL * math.log10(TOTAL) * (1 + 1e-12))


# --- non-convergence --------------------------------------------------------------------


def test_rhat_detects_shifted_chain():
    x = np.random.default_rng(11).standard_normal((CHAINS, ITER, 20))
    x[0] += 3.0  # one chain 3 sd away
    # Measured: R-hat 1.473, sd 0.005, min 1.453 over 2000 replicates: far above 1.1.
    assert np.all(rhat(x) > 1.1)


def test_rhat_folding_detects_scale_difference():
    x = np.random.default_rng(12).standard_normal((CHAINS, ITER, 20))
    x[3] *= 3.0  # same location, one chain three times wider
    # The location-based split R-hat sees nothing (all chain means are 0): measured mean
    # 1.0000, sd 0.0008, max 1.0053 over 2000 replicates, so < 1.01 is > 10 sd ...
    assert np.all(classic_split_rhat(x) < 1.01)
    # ... but the folded draws |x - median| differ in location. Measured R-hat 1.146,
    # sd 0.010, min 1.110 over 2000 replicates; 1.05 is > 9 sd below the mean.
    assert np.all(rhat(x) > 1.05)


# --- shapes, vectorisation, edge cases -------------------------------------------------


def test_scalar_input_gives_0d():
    x = np.random.default_rng(1).standard_normal((CHAINS, 100))
    for f in (rhat, ess_bulk, ess_tail):
        out = f(x)
        assert isinstance(out, np.ndarray)
        assert out.shape == ()
        assert np.isfinite(out)


def test_param_shape_is_kept():
    x = np.random.default_rng(2).standard_normal((CHAINS, 100, 3, 2))
    for f in (rhat, ess_bulk, ess_tail):
        assert f(x).shape == (3, 2)
        assert f(x[..., :0]).shape == (3, 0)  # no parameters: empty result, no error


def test_vectorised_equals_per_parameter_loop():
    rng = np.random.default_rng(3)
    x = mixed_draws(rng, CHAINS, 301)[..., :6].reshape(CHAINS, 301, 3, 2).copy()
    x[:, :, 2, 1] = 4.0  # constant parameter among the others
    original = x.copy()
    for f in (rhat, ess_bulk, ess_tail):
        vec = f(x)
        np.testing.assert_array_equal(x, original)  # the input is not modified
        loop = np.array([[f(x[:, :, i, j]) for j in range(2)] for i in range(3)])
        np.testing.assert_array_equal(vec, loop)  # exactly, NaN included


def test_constant_parameter_is_nan_without_warnings():
    x = np.random.default_rng(4).standard_normal((CHAINS, 200, 3))
    x[..., 1] = 2.5
    x[0, 5, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would fail the test
        for f in (rhat, ess_bulk, ess_tail):
            out = f(x)
            assert np.isfinite(out[0])
            assert np.isnan(out[1])  # constant
            assert np.isnan(out[2])  # contains NaN
        assert np.isnan(ebfmi(np.ones((2, 50)))).all()


def test_too_few_iterations_is_nan_and_bad_ndim_raises():
    x = np.random.default_rng(5).standard_normal((CHAINS, 3, 2))
    for f in (rhat, ess_bulk, ess_tail):
        assert np.isnan(f(x)).all()
        with pytest.raises(ValueError):
            f(np.zeros(10))


def test_odd_number_of_iterations_drops_middle_draw():
    # Stan/ArviZ convention: the middle draw of an odd-length chain is not used.
    x = np.random.default_rng(6).standard_normal((CHAINS, 101))
    y = x.copy()
    y[:, 50] = 1e6
    assert float(rhat(x)) == float(rhat(y))
    assert float(ess_bulk(x)) == float(ess_bulk(y))


# --- E-BFMI -----------------------------------------------------------------------------


def test_ebfmi_random_walk_is_small():
    e = np.random.default_rng(9).standard_normal((CHAINS, ITER)).cumsum(axis=1)
    out = ebfmi(e)
    assert out.shape == (CHAINS,)
    # For a random walk sum(diff^2) ~ N while sum((E - mean)^2) ~ N^2 / 6: E-BFMI is about
    # 6 / N; measured mean 0.011, max 0.073 over 2000 replicates, far below the 0.3 alarm.
    assert np.all(out < 0.3)


def test_ebfmi_white_noise_is_two():
    e = np.random.default_rng(10).standard_normal((CHAINS, ITER))
    # E-BFMI of white noise is 2 (1 - lag-1 autocorrelation) -> 2 in expectation with sd
    # about 2 / sqrt(N) = 0.063 (measured 0.062); 0.3 is ~5 sd.
    np.testing.assert_allclose(ebfmi(e), 2.0, atol=0.3)
