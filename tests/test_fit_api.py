"""The fit front function: custom laws, statuses, bad input, extrapolation."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy_reference import best_of
from synthetic import POWER

import jaxlaws
from jaxlaws import laws
from jaxlaws.extrapolation import extrapolate


def power_data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e10, 30)
    y = 1.7 + 400 * x**-0.33 * np.exp(rng.normal(0, 0.01, x.size))
    return pd.DataFrame({"x": x, "y": y})


def test_a_users_own_law_fits_through_the_same_fit():
    df = power_data()
    r = jaxlaws.fit(
        POWER, df, objective="sse_log", starts={"E": [0.5, 2], "A": [10, 1000], "alpha": [0.1, 0.5]}
    )
    assert r.converged
    assert float(r.params.alpha) == pytest.approx(0.33, abs=0.03)
    logx, logy = np.log(df.x.to_numpy()), np.log(df.y.to_numpy())

    def sse_log(
        u,
    ):  # the same objective in NumPy, unconstrained coordinates (log E, log A, log alpha)
        E, A, alpha = np.exp(u)
        return float(np.sum((np.log(E + A * np.exp(-alpha * logx)) - logy) ** 2))

    starts = np.log(np.array(np.meshgrid([0.5, 2], [10, 1000], [0.1, 0.5])).reshape(3, -1).T)
    f_scipy, _ = best_of(sse_log, starts)
    assert r.value <= f_scipy + 1e-12


def test_column_mapping():
    df = power_data().rename(columns={"x": "tokens", "y": "val_loss"})
    r = jaxlaws.fit(
        POWER,
        df,
        columns={"x": "tokens"},
        target="val_loss",
        starts={"E": [1], "A": [100], "alpha": [0.3]},
    )
    assert r.columns == {"x": "tokens", "target": "val_loss"}


def test_not_converged_says_so_and_never_returns_nan():
    df = power_data()
    with pytest.warns(jaxlaws.ConvergenceWarning, match="did not converge"):
        r = jaxlaws.fit(POWER, df, starts={"E": [0.1], "A": [1.0], "alpha": [2.0]}, max_steps=2)
    assert r.status == "max_steps" and not r.converged
    assert all(np.isfinite(v) for v in r.params)


def test_boundary_is_reported():
    # a rising target: a falling power term has nothing to explain, A runs to zero (a
    # constant target is refused before fitting: test_bad_inputs.py)
    x = np.geomspace(1, 1e6, 20)
    df = pd.DataFrame({"x": x, "y": 2.0 + 0.01 * (x > 1e3)})
    with pytest.warns(jaxlaws.ConvergenceWarning):
        r = jaxlaws.fit(POWER, df, objective="sse", starts={"E": [1.0], "A": [1.0], "alpha": [0.5]})
    assert any("boundary" in w or "flat ridge" in w for w in r.diagnostics)


BAD_INPUTS = [
    ("missing column", lambda d: d.drop(columns="D"), r"missing column 'D' for input 'D'"),
    (
        "misspelt column",
        lambda d: d.rename(columns={"loss": "los"}),
        r"missing column 'loss'.*did you mean 'los'",
    ),
    (
        "NaN",
        lambda d: d.assign(loss=d.loss.where(d.index != 7)),
        r"column 'loss', row 7: value nan is not finite",
    ),
    (
        "zero size",
        lambda d: d.assign(N=d.N.where(d.index != 3, 0.0)),
        r"column 'N', row 3: value 0.0 must be positive",
    ),
    (
        "negative size",
        lambda d: d.assign(D=d.D.where(d.index != 5, -1e9)),
        r"column 'D', row 5: value -1000000000.0 must be positive",
    ),
    (
        "text in a number column",
        lambda d: d.assign(N=d.N.astype(object).where(d.index != 2, "70B")),
        r"column 'N', row 2: '70B' is not a number",
    ),
    ("too few rows", lambda d: d.head(4), r"4 rows cannot determine 5 free parameters"),
]


@pytest.mark.parametrize("case, edit, message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_one_line_error_naming_the_problem(case, edit, message):
    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    with pytest.raises(ValueError, match=message) as err:
        jaxlaws.fit("chinchilla", edit(df))
    assert "\n" not in str(err.value)


def test_unknown_law_and_objective():
    df = power_data()
    with pytest.raises(ValueError, match="unknown law 'chinchila'"):
        jaxlaws.fit("chinchila", df)
    with pytest.raises(ValueError, match="unknown objective 'hubber'.*did you mean 'huber'"):
        jaxlaws.fit(POWER, df, objective="hubber")


def test_extrapolation_holds_out_the_largest_compute():
    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    e = extrapolate("chinchilla", df, holdout=0.1)
    compute = 6 * df.N * df.D
    assert len(e.heldout) >= 24 and e.fit.n_points == len(df) - len(e.heldout)
    assert (6 * e.heldout.N * e.heldout.D).min() >= compute.drop(e.heldout.index).max()
    print(e.summary())
    assert np.isfinite(e.rmse_log) and e.mean_abs_relative_error < 0.05


def test_mixture_inputs_one_hot():
    df = pd.DataFrame(
        {
            "pool": ["a", "b", "a"],
            "samples": [1e6, 2e6, 3e6],
            "pool_size": [1e6, 5e5, 1e6],
            "error": [0.5, 0.4, 0.3],
        }
    )
    inp = jaxlaws.mixture_inputs(df)
    np.testing.assert_array_equal(inp["weights"], [[1, 0], [0, 1], [1, 0]])
    np.testing.assert_array_equal(inp["sizes"], [[1e6, 5e5], [1e6, 5e5], [1e6, 5e5]])
    mix = laws.FilteringMixtureParams(
        b=jnp.array([-0.2, -0.1]),
        tau=jnp.array([3.0, 2.0]),
        n0=jnp.float64(1e4),
        d=jnp.float64(0.1),
    )
    single = laws.FilteringParams(a=1e4**0.1, b=-0.1, tau=2.0, d=0.1)
    got = laws.filtering_mixture(mix, inp["samples"][1], inp["sizes"][1], inp["weights"][1])
    assert float(got) == pytest.approx(float(laws.filtering(single, 2e6, 5e5)), rel=1e-12)
