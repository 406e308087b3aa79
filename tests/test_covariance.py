"""The covariance of a fit (Gauss-Newton / Laplace), flat directions, goodness of fit, the
warning for other optima as good as the best, and their place in summaries and records."""

import json
import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from synthetic import POWER

import jaxlaws
from jaxlaws import constraints
from jaxlaws.covariance import huber_efficiency
from jaxlaws.io import fit_record

POWER_GRID = {"E": [0.5, 2.0], "A": [10.0, 1000.0], "alpha": [0.1, 0.5]}


class RedundantParams(NamedTuple):
    E: jnp.ndarray
    A: jnp.ndarray
    c: jnp.ndarray
    alpha: jnp.ndarray


def redundant_law(p, x):
    return p.E + p.A * p.c * x ** (-p.alpha)  # only the product A c is determined


REDUNDANT = jaxlaws.Law(
    name="redundant",
    fn=redundant_law,
    params=RedundantParams,
    inputs=("x",),
    target="y",
    constraints=RedundantParams(
        E=constraints.positive.within(0.5, 3.0),
        A=constraints.positive.within(1.0, 1000.0),
        c=constraints.positive.within(0.1, 10.0),
        alpha=constraints.positive.within(0.1, 1.0),
    ),
)


class SignParams(NamedTuple):
    E: jnp.ndarray
    a: jnp.ndarray
    alpha: jnp.ndarray


def sign_law(p, x):
    return p.E + p.a * p.a * x ** (-p.alpha)  # a and -a fit equally well


SIGN = jaxlaws.Law(
    name="sign",
    fn=sign_law,
    params=SignParams,
    inputs=("x",),
    target="y",
    constraints=SignParams(E=constraints.positive, a=constraints.real, alpha=constraints.positive),
)


def power_data(seed=0, n=30):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e10, n)
    y = 1.7 + 400 * x**-0.33 * np.exp(rng.normal(0, 0.01, x.size))
    return pd.DataFrame({"x": x, "y": y})


def power_np(x, E, A, alpha):
    return E + A * x ** (-alpha)


def power_jac(x, E, A, alpha):
    t = x ** (-alpha)
    return np.stack([np.ones_like(x), t, -A * t * np.log(x)], axis=1)


def fd_jacobian(fun, theta, rel=1e-6):
    """Central differences, independently of JAX."""
    theta = np.asarray(theta, float)
    cols = []
    for j in range(len(theta)):
        h = rel * max(abs(theta[j]), 1e-3)
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        cols.append((fun(up) - fun(dn)) / (2 * h))
    return np.stack(cols, axis=1)


# --- the covariance against independent computations -------------------------------------

# objective, space of the residuals
LEAST_SQUARES = [("sse", "linear"), ("sse_log", "log")]


@pytest.fixture(scope="module")
def power_fits():
    df = power_data()
    return df, {obj: jaxlaws.fit(POWER, df, objective=obj, starts=POWER_GRID) for obj, _ in LEAST_SQUARES}


@pytest.mark.parametrize("objective, space", LEAST_SQUARES)
def test_least_squares_covariance_is_s2_inverse_jtj_and_curve_fits(power_fits, objective, space):
    df, fits = power_fits
    r = fits[objective]
    x, y = df.x.to_numpy(), df.y.to_numpy()
    theta = np.array([float(v) for v in r.params])
    t = np.log if space == "log" else (lambda v: v)

    def residuals(th):
        return t(power_np(x, *th)) - t(y)

    J = fd_jacobian(residuals, theta)
    res = residuals(theta)
    n, p = J.shape
    expected = res @ res / (n - p) * np.linalg.inv(J.T @ J)
    assert r.covariance.index.tolist() == ["E", "A", "alpha"]
    np.testing.assert_allclose(r.covariance.to_numpy(), expected, rtol=1e-5)

    # scipy's curve_fit on the same model and data, from the optimum
    if space == "log":
        f, jac = (
            (lambda x, *th: np.log(power_np(x, *th))),
            (lambda x, *th: power_jac(x, *th) / power_np(x, *th)[:, None]),
        )
        target = np.log(y)
    else:
        f, jac, target = (lambda x, *th: power_np(x, *th)), (lambda x, *th: power_jac(x, *th)), y
    popt, pcov = optimize.curve_fit(f, x, target, p0=theta, jac=jac, ftol=1e-15, xtol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(popt, theta, rtol=1e-7)
    np.testing.assert_allclose(r.covariance.to_numpy(), pcov, rtol=1e-5)
    np.testing.assert_allclose(list(r.stderr.values()), np.sqrt(np.diag(pcov)), rtol=1e-5)
    corr = pcov / np.sqrt(np.outer(np.diag(pcov), np.diag(pcov)))
    np.testing.assert_allclose(r.correlation.to_numpy(), corr, rtol=1e-5, atol=1e-12)
    assert r.flat_directions == []


def test_huber_covariance_is_the_documented_robust_scale():
    """s^2 = MAD^2 e(k) n / (n - p) over J^T J, e(k) integrated here independently."""
    df = power_data(seed=1)
    r = jaxlaws.fit(POWER, df, objective="huber", starts=POWER_GRID)
    x, y = df.x.to_numpy(), df.y.to_numpy()
    theta = np.array([float(v) for v in r.params])

    def residuals(th):
        return np.log(power_np(x, *th)) - np.log(y)

    J, res = fd_jacobian(residuals, theta), residuals(theta)
    n, p = J.shape
    sigma = np.median(np.abs(res)) / stats.norm.ppf(0.75)
    expected = sigma**2 * e_huber(r.delta / sigma) * n / (n - p) * np.linalg.inv(J.T @ J)
    np.testing.assert_allclose(r.covariance.to_numpy(), expected, rtol=1e-5)


def e_huber(k):
    """``E[psi_k(Z)^2] / P(|Z| <= k)^2`` by quadrature (scipy), apart from jaxlaws."""
    inside = 2 * integrate.quad(lambda z: z * z * stats.norm.pdf(z), 0, k, epsabs=0, epsrel=1e-12)[0]
    return (inside + 2 * k * k * stats.norm.sf(k)) / (stats.norm.cdf(k) - stats.norm.cdf(-k)) ** 2


@pytest.mark.parametrize("k", [1e-9, 1e-6, 0.01, 0.5, 1.345, 3.0, 50.0])
def test_huber_efficiency_against_numerical_integration(k):
    assert huber_efficiency(k) == pytest.approx(e_huber(k), rel=1e-7)
    # the limits: L1 regression's pi / 2, least squares' 1
    assert huber_efficiency(0.0) == pytest.approx(math.pi / 2)
    assert huber_efficiency(math.inf) == 1.0


# --- flat directions ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def redundant_fit():
    df = power_data()
    with pytest.warns(jaxlaws.ConvergenceWarning) as caught:
        r = jaxlaws.fit(REDUNDANT, df, objective="sse", starts=16, seed=0)
    return df, r, [str(w.message) for w in caught]


def test_an_unidentifiable_parameter_has_infinite_stderr_and_a_named_flat_direction(
    power_fits, redundant_fit
):
    df, r, _ = redundant_fit
    assert r.stderr["A"] == math.inf and r.stderr["c"] == math.inf
    assert [sorted(d) for d in r.flat_directions] == [["A", "c"]]
    assert np.isinf(r.covariance.loc["A", "A"]) and np.isnan(r.covariance.loc["A", "E"])
    assert np.isnan(r.correlation.loc["c", "alpha"]) and r.correlation.loc["E", "E"] == 1.0
    # the determined parameters keep the standard errors of the law without the redundancy
    good = power_fits[1]["sse"]
    for name in ("E", "alpha"):
        assert r.stderr[name] == pytest.approx(good.stderr[name], rel=1e-4)
    assert "flat direction" in r.summary() and "A = " in r.summary() and "± inf" in r.summary()


# --- goodness of fit ---------------------------------------------------------------------


@pytest.mark.parametrize("objective, space", LEAST_SQUARES)
def test_goodness_of_fit_against_hand_computation(power_fits, objective, space):
    df, fits = power_fits
    r = fits[objective]
    t = np.log if space == "log" else (lambda v: v)
    pred, y = t(r.predict(df)), t(df.y.to_numpy())
    res = pred - y
    n, k = len(y), 3
    rss = float(res @ res)
    assert r.rmse == pytest.approx(math.sqrt(rss / n), rel=1e-10)
    assert r.r2 == pytest.approx(1 - rss / float(((y - y.mean()) ** 2).sum()), rel=1e-10)
    assert r.aic == pytest.approx(n * math.log(rss / n) + 2 * k, rel=1e-10)
    assert r.bic == pytest.approx(n * math.log(rss / n) + k * math.log(n), rel=1e-10)
    where = "log y" if space == "log" else "y"
    assert (
        f"fit: RMSE {r.rmse:.3g} ({where}), R^2 {r.r2:.4f}, AIC {r.aic:.1f}, BIC {r.bic:.1f}" in r.summary()
    )


# --- the bundled fit ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def chinchilla_fit():
    info = jaxlaws.datasets.info("chinchilla-epoch")
    df = jaxlaws.datasets.load("chinchilla-epoch", subset=info.fit_subset)
    return df, jaxlaws.fit("chinchilla", df)  # warnings are errors here: none may be issued


def test_the_bundled_fit_shows_stderr_and_a_goodness_line_and_warns_of_nothing(chinchilla_fit):
    df, r = chinchilla_fit
    assert r.diagnostics == ()
    text = r.summary()
    for name in ("E", "A", "B", "alpha", "beta"):
        value, se = float(getattr(r.params, name)), r.stderr[name]
        assert 0 < se < 0.2 * value
        assert f"{name} = {value:.8g} ± {se:.3g}" in text
    assert "fit: RMSE" in text and "(log loss), R^2 0.99" in text and "AIC" in text and "BIC" in text
    assert "flat direction" not in text
    # correlations in [-1, 1], symmetric, unit diagonal; A with alpha and B with beta near 1
    c = r.correlation.to_numpy()
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert r.correlation.loc["A", "alpha"] > 0.99 and r.correlation.loc["B", "beta"] > 0.99


# --- other optima as good as the best ----------------------------------------------------


def narrow_D_table():
    """Chinchilla runs whose D barely varies (a factor e^0.3): E and B / D^beta trade off."""
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e10, 40)
    D = 2e10 * np.exp(0.3 * rng.uniform(-1, 1, N.size))
    loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.005, N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def sign_table():
    x = np.geomspace(1e6, 1e10, 30)
    return pd.DataFrame(
        {"x": x, "y": 1.7 + 400 * x**-0.33 * np.exp(np.random.default_rng(0).normal(0, 0.01, 30))}
    )


POORLY_DETERMINED = [
    # name, law, table, fit options, the parameter named, how far
    (
        "a sign the data cannot see",
        SIGN,
        sign_table,
        dict(objective="sse", starts={"E": [1.0, 2.0], "a": [-20.0, 20.0], "alpha": [0.2, 0.5]}),
        "a =",
        "standard errors",
    ),
    (
        "D barely varies",
        "chinchilla",
        narrow_D_table,
        dict(objective="sse_log", starts=64, seed=0),
        "E =",
        "standard errors",
    ),
]


@pytest.mark.parametrize(
    "name, law, table, kw, param, far", POORLY_DETERMINED, ids=[c[0] for c in POORLY_DETERMINED]
)
def test_other_optima_as_good_as_the_best_are_a_warning(name, law, table, kw, param, far):
    with pytest.warns(jaxlaws.ConvergenceWarning, match="other optim") as caught:
        r = jaxlaws.fit(law, table(), **kw)
    msg = [str(w.message) for w in caught if "other optim" in str(w.message)]
    assert len(msg) == 1 and msg[0] in r.diagnostics
    assert param in msg[0] and far in msg[0] and "Delta chi^2" in msg[0]
    assert f"warning: {msg[0]}" in r.summary()


def test_an_exactly_redundant_parameter_is_also_a_warning(redundant_fit):
    _, r, caught = redundant_fit
    assert any("other optim" in m and "a flat direction" in m for m in caught)


# --- a law fitted output by output ------------------------------------------------------


def test_a_law_fitted_output_by_output_has_one_block_per_output_as_its_own_fits():
    rng = np.random.default_rng(0)
    r = rng.dirichlet(np.ones(3), 24)
    t = np.array([[-1.0, 0.5, 0.2], [0.3, -2.0, 0.1]])
    loss = (np.array([1.0, 2.0]) + np.exp(r @ t.T)) * np.exp(rng.normal(0, 0.01, (24, 2)))
    df = pd.DataFrame({"p_a": r[:, 0], "p_b": r[:, 1], "p_c": r[:, 2], "y1": loss[:, 0], "y2": loss[:, 1]})
    kw = dict(columns={"r": "p_*"}, objective="sse_log", starts=32, seed=0)
    joint = jaxlaws.fit("mixing_exp", df, target=["y1", "y2"], **kw)
    for k, y in enumerate(("y1", "y2")):
        alone = jaxlaws.fit("mixing_exp", df, target=[y], **kw)
        np.testing.assert_allclose(joint.stderr["c"][k], alone.stderr["c"][0], rtol=1e-6)
        np.testing.assert_allclose(joint.stderr["t"][k], alone.stderr["t"][0], rtol=1e-6)
    corr = joint.correlation
    assert corr.shape == (8, 8) and corr.loc["c[0]", "c[1]"] == 0.0 and corr.loc["c[1]", "t[4]"] < -0.9
    assert joint.uncertainty.n == 48 and joint.uncertainty.k == 8
    rec = json.loads(json.dumps(fit_record(joint, df), allow_nan=False))
    assert [b["labels"] for b in rec["correlation"]] == [
        ["c[0]", "t[0]", "t[1]", "t[2]"],
        ["c[1]", "t[3]", "t[4]", "t[5]"],
    ]


def test_a_parameter_of_many_entries_is_summarised_not_listed():
    from jaxlaws.fit import SUMMARY_ENTRIES, _fmt_value

    values = np.linspace(1, 2, 5 * SUMMARY_ENTRIES).reshape(5, -1)
    se = np.full(values.shape, 0.1)
    se[0, 0] = np.inf
    text = _fmt_value(values.tolist(), se.tolist())
    assert (
        text.startswith("shape (5, 12): min 1, median 1.5, max 2; stderr min 0.1") and "1 inf (flat)" in text
    )
    assert _fmt_value([1.0, 2.0], [0.5, np.inf]) == "[1, 2] ± [0.5, inf]"


# --- the saved record --------------------------------------------------------------------


def test_the_saved_record_is_json_with_the_new_keys(chinchilla_fit, redundant_fit):
    df, r = chinchilla_fit
    rec = json.loads(json.dumps(fit_record(r, df, dataset="chinchilla-epoch"), allow_nan=False))
    assert rec["stderr"] == pytest.approx(r.stderr)
    (block,) = rec["correlation"]
    assert block["labels"] == ["E", "A", "B", "alpha", "beta"]
    np.testing.assert_allclose(block["matrix"], r.correlation.to_numpy())
    assert rec["flat_directions"] == []
    assert rec["fit_space"] == "log" and rec["n_residuals"] == 240
    for key in ("rmse", "r2", "aic", "bic"):
        assert rec[key] == pytest.approx(getattr(r, key))
    # infinite standard errors as "inf", undefined correlations as null
    df2, r2, _ = redundant_fit
    rec2 = json.loads(json.dumps(fit_record(r2, df2), allow_nan=False))
    assert rec2["stderr"]["A"] == "inf" and float(rec2["stderr"]["A"]) == math.inf
    labels = rec2["correlation"][0]["labels"]
    assert rec2["correlation"][0]["matrix"][labels.index("A")][labels.index("E")] is None
    assert sorted(rec2["flat_directions"][0]["parameters"]) == ["A", "c"]


def test_frozen_parameters_have_no_variance():
    df = power_data()
    r = jaxlaws.fit(
        REDUNDANT,
        df,
        objective="sse",
        starts=8,
        seed=0,
        init={"E": 1.7, "A": 1.0, "c": 400.0, "alpha": 0.33},
        frozen=["A"],
    )
    assert r.stderr["A"] == 0.0 and list(r.covariance.index) == ["E", "c", "alpha"]
    assert r.flat_directions == [] and all(np.isfinite(list(r.stderr.values())))
    assert "A = 1 (frozen)" in r.summary()
