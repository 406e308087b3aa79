"""Data-filtering law (Goyal et al. 2024): golden values from the authors' reference code,
Theorem 1, and the properties of the continuous-weight mixture (LAWS.md section 3)."""

import importlib
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlaws import laws

PAPER_KEY = "error_if_d_outside_product(paper Eq.3 form, same params)"


def _single(rows, function):
    return [r for r in rows["single_pool"] if r["function"] == function]


def _pool_params(r):
    return laws.params_from_reference_code(r["a"], r["b"], r["tau"], r["d"])


def test_code_form_reproduces_func_effective_utility(goyal_reference):
    rows = _single(goyal_reference, "func_effective_utility")
    assert len(rows) == 55
    for r in rows:
        got = laws.filtering(
            _pool_params(r), r["samples_seen"], r["samples_per_epoch"], form="reference_code"
        )
        assert float(got) == pytest.approx(r["error"], rel=1e-9), r


def test_paper_form_reproduces_d_outside_product(goyal_reference):
    for r in _single(goyal_reference, "func_effective_utility"):
        got = laws.filtering(_pool_params(r), r["samples_seen"], r["samples_per_epoch"])
        assert float(got) == pytest.approx(r[PAPER_KEY], rel=1e-9), r


def test_effective_data_form_reproduces_func_effective_data(goyal_reference):
    rows = _single(goyal_reference, "func_effective_data")
    assert len(rows) == 55
    for r in rows:
        got = laws.filtering(
            _pool_params(r), r["samples_seen"], r["samples_per_epoch"], form="effective_data"
        )
        assert float(got) == pytest.approx(r["error"], rel=1e-9), r


def _mixture_params(param_set, idx):
    return laws.FilteringMixtureParams(
        b=jnp.array([param_set["b_values"][i] for i in idx]),
        tau=jnp.array([param_set["c_values"][i] for i in idx]),
        n0=jnp.float64(1e5 / param_set["best_a"]),
        d=jnp.float64(param_set.get("d_value", 0.1)),
    )


def test_code_form_reproduces_two_pool_aggregation(goyal_reference, goyal_parameters):
    for ex in goyal_reference["aggregation_examples"]:
        ps = goyal_parameters[ex["param_key"]]
        idx = [ps["names"].index(n) for n in ex["pools"]]
        # the reference passes tau already multiplied by p = 2: Theorem 1's tau_hat
        np.testing.assert_allclose(np.array(ex["tau_passed(already x p)"]), 2 * np.array(ps["c_values"])[idx])
        sizes = jnp.full(2, ex["samples_per_epoch(combined)"] / 2)
        got = laws.filtering_mixture(
            _mixture_params(ps, idx),
            ex["samples_seen"],
            sizes,
            jnp.full(2, 0.5),
            form="reference_code",
        )
        assert float(got) == pytest.approx(ex["func_effective_utility_aggregation"], rel=1e-9)


def test_code_form_reproduces_top_k_errors(goyal_reference, goyal_parameters):
    """estimate_best_pool.py: top-k pools mixed uniformly, 12.8M samples each."""
    for ex in goyal_reference["estimate_best_buckets"]:
        if ex["objective"] != "effective_utility":
            continue
        ps = goyal_parameters[ex["param_key"]]
        for k, expected in enumerate(ex["error_top10_top20_top30_top40"], start=1):
            got = laws.filtering_mixture(
                _mixture_params(ps, range(k)),
                ex["samples_seen"],
                jnp.full(k, ex["pool_size_per_bucket"]),
                jnp.full(k, 1.0 / k),
                form="reference_code",
            )
            assert float(got) == pytest.approx(expected, rel=1e-9), (ex, k)
        assert int(np.argmin(ex["error_top10_top20_top30_top40"])) + 1 == ex["best_num_buckets"]


# --- Theorem 1, written independently: pass length pN, tau_hat = p tau, b_eff(k) = mean ---

# Goyal et al. Fig. 4 (ImageNet, T-MARS), LAWS.md section 3
FIG4 = laws.FilteringMixtureParams(*(jnp.asarray(v, jnp.float64) for v in laws.GOYAL_FIG4))


def theorem1(b, tau, n0, d, N, n):
    p = len(b)
    length = p * N
    b_eff = lambda k: float(np.mean([bi * 0.5 ** (k / (p * ti)) for bi, ti in zip(b, tau)]))  # noqa: E731
    y = (min(n, length) / n0) ** b_eff(0)
    k = 1
    while k * length < n:
        y *= (min(n, (k + 1) * length) / (k * length)) ** b_eff(k)
        k += 1
    return y + d


@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [5e6, 12.8e6 * 2, 77e6, 640e6, 5e9])
def test_mixture_equals_theorem1_for_equal_pools(p, n):
    b, tau = np.asarray(FIG4.b[:p]), np.asarray(FIG4.tau[:p])
    params = FIG4._replace(b=jnp.asarray(b), tau=jnp.asarray(tau))
    got = laws.filtering_mixture(params, n, jnp.full(p, 12.8e6), jnp.full(p, 1.0 / p))
    assert float(got) == pytest.approx(theorem1(b, tau, float(FIG4.n0), 0.1, 12.8e6, n), rel=1e-12)


@pytest.mark.parametrize("form", ["paper", "reference_code"])
def test_mixture_of_one_pool_equals_filtering(form):
    n = jnp.array([1e6, 12.8e6, 30e6, 200e6, 3e9])
    mix = laws.FilteringMixtureParams(
        b=jnp.array([-0.16]), tau=jnp.array([6.7]), n0=jnp.float64(4e6), d=jnp.float64(0.1)
    )
    single = laws.FilteringParams(a=4e6**0.16, b=-0.16, tau=6.7, d=0.1)
    got = laws.filtering_mixture(mix, n, jnp.array([12.8e6]), jnp.array([1.0]), form=form)
    np.testing.assert_allclose(got, laws.filtering(single, n, 12.8e6, form=form), rtol=1e-13)


def test_free_amplitude_equals_shared_anchor_when_a_is_n0_to_minus_b():
    n, sizes, w = (
        jnp.array([3e7, 5e8]),
        jnp.array([12.8e6, 25.6e6, 6.4e6]),
        jnp.array([0.5, 0.3, 0.2]),
    )
    shared = FIG4._replace(b=FIG4.b[:3], tau=FIG4.tau[:3])
    free = laws.FilteringMixtureFreeParams(a=shared.n0 ** (-shared.b), b=shared.b, tau=shared.tau, d=shared.d)
    np.testing.assert_allclose(
        laws.filtering_mixture(free, n, sizes, w),
        laws.filtering_mixture(shared, n, sizes, w),
        rtol=1e-13,
    )


SIZES = jnp.array([12.8e6, 12.8e6, 12.8e6, 12.8e6])


@pytest.mark.parametrize("n", [8e6, 64e6, 640e6, 5e9])
def test_mixture_is_continuous_as_a_weight_goes_to_zero(n):
    base = jnp.array([0.5, 0.3, 0.2, 0.0])
    at_zero = laws.filtering_mixture(FIG4, n, SIZES, base)
    # a zero-weight pool is the same as no pool at all
    three = FIG4._replace(b=FIG4.b[:3], tau=FIG4.tau[:3])
    assert float(at_zero) == pytest.approx(
        float(laws.filtering_mixture(three, n, SIZES[:3], base[:3])), rel=1e-13
    )
    gaps = []
    for eps in [1e-2, 1e-4, 1e-6, 1e-8]:
        w = base * (1 - eps) + eps * jnp.array([0.0, 0.0, 0.0, 1.0])
        gaps.append(abs(float(laws.filtering_mixture(FIG4, n, SIZES, w) - at_zero)))
    assert gaps[-1] < 1e-6
    assert all(g2 <= g1 * 1.01 for g1, g2 in zip(gaps, gaps[1:]))


def test_n_eff_properties():
    N = jnp.float64(12.8e6)
    # p equal pools, uniform, after a full pass: N_eff = p N, so tau_hat = p tau
    for p in (1, 2, 4):
        tau_hat = laws.effective_tau(jnp.ones(p), jnp.full(p, N), jnp.full(p, 1.0 / p), 10 * p * N)
        np.testing.assert_allclose(tau_hat, p, rtol=1e-14)
    # a 5% sprinkle of three more pools barely moves the best pool's half-life
    tau_hat = laws.effective_tau(jnp.ones(4), jnp.full(4, N), jnp.array([0.85, 0.05, 0.05, 0.05]), 100 * N)
    assert float(tau_hat[0]) < 1.5


@pytest.mark.parametrize(
    "w, n",
    [
        ([0.4, 0.3, 0.2, 0.1], 700e6),
        ([0.7, 0.1, 0.1, 0.1], 77e6),
        ([0.25, 0.25, 0.25, 0.25], 333e6),
        ([0.6, 0.4, 0.0, 0.0], 1.1e9),
    ],
)
def test_weight_gradient_matches_finite_differences(w, n):
    w = jnp.asarray(w)
    f = lambda w: laws.filtering_mixture(FIG4, n, SIZES, w)  # noqa: E731
    g = jax.grad(f)(w)
    # stay away from pass boundaries: no p_i = w_i n / N_i within h of an integer
    passes = np.asarray(w)[np.asarray(w) > 0] * n / 12.8e6
    h = 1e-7
    assert np.all(np.abs(passes - np.round(passes)) > 10 * h * n / 12.8e6)
    for i in range(4):
        if float(w[i]) == 0.0:
            continue  # one-sided: the formula is defined for w >= 0
        e = jnp.zeros(4).at[i].set(h)
        fd = (f(w + e) - f(w - e)) / (2 * h)
        assert float(g[i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize(
    "w, n",
    [
        ([1.0, 0.0, 0.0, 0.0], 64e6),  # zero weights
        ([0.5, 0.5, 0.0, 0.0], 12.8e6),  # exactly on a pass boundary
        ([0.25, 0.25, 0.25, 0.25], 1e6),  # far below one pass
        ([0.97, 0.01, 0.01, 0.01], 1e11),  # thousands of passes (past max_passes)
    ],
)
def test_mixture_gradients_are_finite(w, n):
    w = jnp.asarray(w)
    gw = jax.grad(lambda w: laws.filtering_mixture(FIG4, n, SIZES, w))(w)
    gp = jax.grad(lambda p: laws.filtering_mixture(p, n, SIZES, w))(FIG4)
    gn = jax.grad(lambda n: laws.filtering_mixture(FIG4, n, SIZES, w))(jnp.float64(n))
    assert np.all(np.isfinite(gw)) and np.isfinite(gn)
    assert all(np.all(np.isfinite(x)) for x in gp)


@pytest.mark.parametrize("n", [1e6, 12.8e6, 25.6e6, 1e9])
@pytest.mark.parametrize("tau", [1e-3, 6.7, 1e6])
@pytest.mark.parametrize("form", laws.FORMS)
def test_single_pool_gradients_are_finite(n, tau, form):
    p = laws.FilteringParams(
        a=jnp.float64(11.0), b=jnp.float64(-0.16), tau=jnp.float64(tau), d=jnp.float64(0.1)
    )
    g = jax.grad(lambda q: laws.filtering(q, n, 12.8e6, form=form))(p)
    gn = jax.grad(lambda x: laws.filtering(p, x, 12.8e6, form=form))(jnp.float64(n))
    assert all(np.isfinite(x) for x in g) and np.isfinite(gn)


def test_passes_past_max_passes_are_summed_in_closed_form():
    """Passes from ``max_passes`` on are summed in closed form: the midpoint-rule integral
    is within ``(c^2 + 2c/K + 2/K^2) / 24`` of the tail it replaces (``c = log 2 / tau``),
    itself below ``|b| 0.5^(K / tau) log(p / K)``; term by term it is exact."""
    p = laws.FilteringParams(
        a=jnp.float64(11.0), b=jnp.float64(-0.16), tau=jnp.float64(20.0), d=jnp.float64(0.1)
    )
    n, N = 400 * 12.8e6, 12.8e6
    K = laws.passes_needed(n, N)
    exact = laws.filtering(p, n, N, max_passes=K)
    assert float(laws.filtering(p, n, N, max_passes=4 * K)) == pytest.approx(float(exact), rel=1e-14)
    c = math.log(2) / 20.0
    for K_small in (16, 64, 128):
        approx = laws.filtering(p, n, N, max_passes=K_small)
        tail = 0.16 * 0.5 ** (K_small / 20.0) * math.log(400 / K_small)
        midpoint = (c**2 + 2 * c / K_small + 2 / K_small**2) / 24
        assert abs(math.log(float(approx) - 0.1) - math.log(float(exact) - 0.1)) <= midpoint * tail + 1e-15


@pytest.mark.parametrize("tau", [2.0, 30.0, 300.0, 3000.0, 1e5])
@pytest.mark.parametrize("passes", [1500.0, 5000.0, 3e4])
def test_the_closed_form_tail_matches_the_sum_term_by_term(tau, passes):
    """Past 1024 passes (the most summed term by term) the closed form agrees with the
    exact sum to 1e-8 (the log-passes sum) and to rounding (the effective-data sum, a
    geometric series)."""
    filtering = importlib.import_module("jaxlaws.laws.filtering")
    p, t = jnp.asarray([passes]), jnp.asarray([tau])
    K = int(2 ** math.ceil(math.log2(passes + 2)))
    closed = filtering._decayed_log_passes(p, t, 1024)
    exact = filtering._decayed_log_passes(p, t, K)
    np.testing.assert_allclose(closed, exact, rtol=1e-8)
    closed = filtering._decayed_passes(p, t, 1024)
    exact = filtering._decayed_passes(p, t, K)
    np.testing.assert_allclose(closed, exact, rtol=1e-13)


def test_memory_does_not_grow_with_the_number_of_passes():
    """A pool of one sample seen up to 1e12 times (1e12 passes; summed term by term that was
    25 TB): at most 1024 passes are compiled, and the fit and a mixture sweep at 1e15
    samples run in ordinary memory."""
    assert laws.max_passes_for([1e12]) == laws.DEFAULT_MAX_PASSES == 1024
    assert laws.max_passes_for([3.5]) == 8 and laws.max_passes_for([0.2]) == 2
    with pytest.raises(ValueError, match="must be finite"):
        laws.max_passes_for([np.inf])
    n = np.geomspace(1e3, 1e12, 12)
    truth = laws.FilteringParams(a=2.0, b=-0.1, tau=5.0, d=0.05)
    y = np.asarray(laws.filtering(truth, n, 1.0)) * np.exp(np.random.default_rng(0).normal(0, 0.002, n.size))
    import jaxlaws

    # one start at the truth: past 1e3 passes d is not identified, and drawn starts crawl
    # towards d = 0 through 1024-pass evaluations (tens of seconds for a memory test)
    with warnings.catch_warnings():  # d, a and tau lie on a flat ridge there: said in a warning
        warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)
        res = jaxlaws.fit(
            "filtering",
            {"samples": n, "pool_size": np.ones_like(n), "error": y},
            starts="init",
            init=truth._asdict(),
        )
    assert dict(res.law.options)["max_passes"] == 1024
    assert res.status == "converged" and np.isfinite(res.value)
    from jaxlaws.decide import optimize_mixture

    dec = optimize_mixture(FIG4, SIZES, [1e15], starts=2)
    assert np.all(np.isfinite(np.asarray(dec.error))) and abs(float(np.sum(dec.weights)) - 1) < 1e-9


def test_unknown_form_is_a_clear_error():
    p = laws.FilteringParams(a=1.0, b=-0.1, tau=2.0, d=0.1)
    with pytest.raises(ValueError, match="unknown form 'code'"):
        laws.filtering(p, 1e6, 1e6, form="code")
    with pytest.raises(ValueError, match="unknown form 'effective_data'"):
        laws.filtering_mixture(FIG4, 1e6, SIZES, jnp.full(4, 0.25), form="effective_data")
