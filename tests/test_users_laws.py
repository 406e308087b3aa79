"""Users' own laws: declared input domains, several outputs, starts from declared ranges,
closed bounds, the basins report and the errors a user meets (LAWS.md is silent on these:
the behaviour is jaxlaws' own, checked here against scipy where a value is computed)."""

import dataclasses
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import jaxlaws
from jaxlaws import constraints as C

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite  # noqa: E402


class PowerParams(NamedTuple):
    E: Any
    A: Any
    alpha: Any


E_RANGE = C.nonnegative.within(0.0, 5.0)


def power_law(E_constraint=E_RANGE):
    return jaxlaws.Law(
        name="power",
        fn=lambda p, x: p.E + p.A * x ** (-p.alpha),
        params=PowerParams,
        inputs=("x",),
        target="y",
        constraints=PowerParams(
            E=E_constraint, A=C.positive.within(1.0, 1e4), alpha=C.positive.within(0.05, 1.0)
        ),
    )


def power_data(E=1.5, noise=0.01, seed=0, n=20):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e10, n)
    return pd.DataFrame({"x": x, "y": (E + 300 * x**-0.3) * np.exp(rng.normal(0, noise, n))})


# --- input domains ----------------------------------------------------------------------


class OneParam(NamedTuple):
    c: Any


def _law(domain, fn=lambda p, v: p.c + 0.0 * jnp.sum(jnp.atleast_2d(v.T).T, axis=-1)):
    return jaxlaws.Law(
        name="probe",
        fn=fn,
        params=OneParam,
        inputs=("v",),
        target="y",
        constraints=OneParam(c=C.positive.within(0.1, 10)),
        domains={"v": domain},
    )


def _table(values):
    values = np.asarray(values, float)
    cols = {f"v{j}": values[:, j] for j in range(values.shape[1])} if values.ndim == 2 else {"v0": values}
    return pd.DataFrame({**cols, "y": np.full(len(values), 2.0)})


DOMAIN_CASES = [
    # domain, values, error (None: accepted)
    ("simplex", [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]], None),
    (
        "simplex",
        [[0.5, 0.5, 0.0], [0.0, 0.2, 0.7]],
        r"columns \['v0', 'v1', 'v2'\], row 1: proportions sum to 0.9",
    ),
    ("simplex", [[1.1, -0.1, 0.0]], r"column 'v1', row 0: value -0.1 must be non-negative"),
    ("nonnegative", [0.0, 1.0, 2.0], None),
    ("nonnegative", [1.0, -2.0, 2.0], r"column 'v0', row 1: value -2.0 must be non-negative"),
    ("positive", [1.0, 0.0, 2.0], r"column 'v0', row 1: value 0.0 must be positive"),
    ("real", [-1.0, 0.0, 3.5], None),
    ("real", [-1.0, np.nan, 3.5], r"column 'v0', row 1: value nan is not finite"),
    ("index", [0, 2, 1], None),
    ("index", [0, 1.5, 1], r"column 'v0', row 1: value 1.5 must be a whole number"),
    ("index", [0, -1, 1], r"column 'v0', row 1: value -1.0 must be non-negative"),
]


@pytest.mark.parametrize(
    "domain, values, error", DOMAIN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(DOMAIN_CASES)]
)
def test_validation_follows_the_declared_domain(domain, values, error):
    table = _table(values)
    columns = {"v": "v*"} if np.ndim(values) == 2 else {"v": "v0"}
    law = _law(domain)
    if error is None:
        d = jaxlaws.data.prepare(law, table, columns=columns)
        assert d.inputs[0].dtype == (np.int64 if domain == "index" else np.float64)
    else:
        with pytest.raises(ValueError, match=error) as err:
            jaxlaws.data.prepare(law, table, columns=columns)
        assert "\n" not in str(err.value)


def test_vector_columns_by_list_and_by_glob_agree():
    df = suite.mixing_data()
    by_glob = jaxlaws.data.prepare(suite.MIXING, df, columns={"r": "r_*"}, target="loss_*")
    names = [f"r_{d}" for d in suite.DOMAINS]
    by_list = jaxlaws.data.prepare(
        suite.MIXING, df, columns={"r": names}, target=[f"loss_{d}" for d in suite.DOMAINS]
    )
    np.testing.assert_array_equal(by_glob.inputs[0], by_list.inputs[0])
    assert by_glob.columns["r"] == names and by_glob.y.shape == (40, 5)
    assert (by_glob.inputs[0] == 0).any()  # zeros in the proportions
    with pytest.raises(ValueError, match=r"no column matches 'q_\*' for input 'r'"):
        jaxlaws.data.prepare(suite.MIXING, df, columns={"r": "q_*"}, target="loss_*")


# --- several outputs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixing_fit():
    df = suite.mixing_data()
    return jaxlaws.fit(suite.MIXING, df, columns={"r": "r_*"}, target="loss_*", starts=16, seed=0)


def test_a_mixing_law_with_zeros_and_five_outputs_fits(mixing_fit):
    r = mixing_fit
    assert r.converged and r.n_points == 40
    assert np.shape(r.params.t) == (5, 5) and np.shape(r.params.c) == (5,)
    # the generating parameters (Ye et al.'s fit) are recovered where the data determine them
    np.testing.assert_allclose(r.params.c, suite.YE_2024.c, rtol=0.05)
    pred = r.predict(suite.mixing_data())
    assert pred.shape == (40, 5)


def test_output_weights_change_the_objective_and_are_checked():
    df = suite.mixing_data()
    kw = dict(columns={"r": "r_*"}, target="loss_*", starts=4, seed=0)
    w = jaxlaws.fit(suite.MIXING, df, output_weights=[1, 1, 1, 1, 2], **kw)
    u = jaxlaws.fit(suite.MIXING, df, **kw)
    assert w.value > u.value
    with pytest.raises(ValueError, match="output_weights has 3 entries for 5 target columns"):
        jaxlaws.fit(suite.MIXING, df, output_weights=[1, 1, 1], **kw)


def test_a_target_of_the_wrong_width_is_one_line():
    df = suite.mixing_data()
    five = dataclasses.replace(suite.MIXING, shapes={"c": (5,), "t": (5, "r")})  # five outputs, fixed
    with pytest.raises(
        ValueError, match=r"predicts shape \(40, 5\) for 40 rows, but the target .* has shape \(40, 3\)"
    ):
        jaxlaws.fit(five, df, columns={"r": "r_*"}, target=["loss_academic", "loss_prose", "loss_dialogue"])


# --- starts from declared ranges -------------------------------------------------------------


def test_a_law_without_grid_or_init_starts_from_its_ranges():
    r = jaxlaws.fit(power_law(), power_data())  # no grid, no init, no starts
    assert len(r.starts) == jaxlaws.starts.DEFAULT_RANDOM_STARTS
    assert r.converged and float(r.params.alpha) == pytest.approx(0.3, abs=0.03)


def test_random_starts_are_log_uniform_over_positive_ranges():
    law = power_law()
    prob = jaxlaws.problem.setup(law, power_data())
    x0 = jaxlaws.starts.make_starts(law, prob.layout, 4000, seed=0)
    logA = x0[:, 1]
    assert logA.min() >= np.log(1.0) and logA.max() <= np.log(1e4)
    # uniform in log A: each decade holds about a quarter of the starts
    counts = np.histogram(logA, bins=np.log([1, 10, 100, 1e3, 1e4]))[0]
    assert counts.min() > 900


def test_a_law_with_neither_grid_nor_ranges_names_what_to_pass():
    law = jaxlaws.Law(
        name="bare",
        fn=lambda p, x: p.E + p.A * x ** (-p.alpha),
        params=PowerParams,
        inputs=("x",),
        target="y",
        constraints=PowerParams(E=C.positive, A=C.positive, alpha=C.positive.within(0.1, 1)),
    )
    with pytest.raises(
        ValueError, match=r"law 'bare' has no range for random starts of \['E', 'A'\]: declare one"
    ):
        jaxlaws.fit(law, power_data())


def test_a_law_written_with_numpy_says_to_use_jax_numpy():
    law = jaxlaws.Law(
        name="numpy_law",
        fn=lambda p, x: p.E + p.A * np.exp(-p.alpha * np.log(x)),
        params=PowerParams,
        inputs=("x",),
        target="y",
        constraints=power_law().constraints,
    )
    with pytest.raises(
        ValueError, match=r"law 'numpy_law' cannot be traced by JAX .*write it with jax.numpy"
    ) as err:
        jaxlaws.fit(law, power_data())
    assert "\n" not in str(err.value)


# --- closed bounds ----------------------------------------------------------------------------


def test_a_parameter_may_sit_on_its_closed_bound():
    # a negative offset in the data: E's optimum is its lower bound 0, reached exactly
    df = power_data(E=-0.02, noise=0.005, seed=3)
    with pytest.warns(jaxlaws.ConvergenceWarning, match=r"E = 0 sits at its lower bound"):
        r = jaxlaws.fit(power_law(), df, objective="sse_log")
    assert float(r.params.E) == 0.0 and r.converged
    # scipy L-BFGS-B with the same bound is no better
    from scipy.optimize import minimize

    x, y = df.x.to_numpy(), df.y.to_numpy()

    def f(v):
        return float(np.sum((np.log(v[0] + np.exp(v[1]) * x ** (-v[2])) - np.log(y)) ** 2))

    best = min(
        minimize(
            f,
            v0,
            method="L-BFGS-B",
            bounds=[(0, None), (None, None), (1e-3, None)],
            options={"ftol": 1e-15, "gtol": 1e-12},
        ).fun
        for v0 in ([1.0, 5.0, 0.3], [0.1, 3.0, 0.5], [2.0, 7.0, 0.2])
    )
    assert r.value <= best * (1 + 1e-9)


def test_no_bound_warning_far_inside_a_wide_interval():
    law = power_law(E_constraint=C.interval(1e-3, 1e11))
    r = jaxlaws.fit(law, power_data(E=70.0, noise=0.001), objective="sse_log")
    assert float(r.params.E) == pytest.approx(70.0, rel=0.01)
    assert not any("bound" in w for w in r.diagnostics)


# --- the basins report ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*other optim:jaxlaws.ConvergenceWarning")
def test_basins_are_reported_best_first_with_their_counts():
    runs = jaxlaws.datasets.load("datablations-c4")
    kw = dict(init=jaxlaws.laws.MUENNIGHOFF_C4, frozen=["E", "A", "B", "alpha", "beta"])
    r = jaxlaws.fit("data_constrained", runs, polish=None, **kw)
    b = r.basins
    assert len(b) >= 2 and list(b.columns[:2]) == ["objective", "starts"]
    assert b.objective.is_monotonic_increasing and b.objective.iloc[0] == r.value
    assert b.starts.sum() == (r.starts.status == "converged").sum()
    assert b.starts.iloc[0] == r.n_best_basin
    # the paper's point (15.37, 5.32) is one of them (LAWS.md section 2)
    paper = b[(b.R_D_star - 15.37).abs() < 0.05]
    assert len(paper) == 1 and paper.objective.iloc[0] == pytest.approx(0.0158259, abs=1e-6)
    assert "basins" in r.summary()


def test_extrapolation_of_a_negative_target_reports_a_linear_error():
    df = suite.vocab_data(120)
    e = jaxlaws.extrapolate(suite.VOCAB, df, by="D", holdout=0.1, objective="huber_linear", starts=16)
    assert np.isnan(e.rmse_log) and e.rmse < 0.05
    assert "RMSE of log" not in e.summary() and f"RMSE {e.rmse:.4g}" in e.summary()
