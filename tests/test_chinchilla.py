"""Chinchilla law against published numbers (sources beside each value)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlaws import datasets, laws
from jaxlaws.objectives import huber_sum


@pytest.fixture(scope="module")
def points():
    df = datasets.load("chinchilla-epoch", subset="standard")
    return jnp.asarray(df.N.values), jnp.asarray(df.D.values), jnp.asarray(df.loss.values)


def huber_objective(params, points):
    N, D, L = points
    return float(huber_sum(laws.CHINCHILLA.log_predict(params, N, D) - jnp.log(L), 1e-3))


@pytest.mark.parametrize(
    "params, expected",
    [
        # Hoffmann et al. 2022 rounded values (E 1.69, A 406.4, B 410.7, alpha .34, beta .28);
        # summed Huber on the 240 points 4.1210e-3 (LAWS.md section 1, Besiroglu et al. 2024).
        (laws.ChinchillaParams(1.69, 406.4, 410.7, 0.34, 0.28), 4.1210e-3),
        # Hoffmann et al. unrounded TeX values: 1.23109e-3 (LAWS.md section 1).
        (laws.ChinchillaParams(1.693374, 406.401, 410.723, 0.339171, 0.284908), 1.23109e-3),
    ],
    ids=["rounded", "unrounded"],
)
def test_huber_at_hoffmann_values(points, params, expected):
    got = huber_objective(laws.ChinchillaParams(*(jnp.float64(x) for x in params)), points)
    assert got == pytest.approx(expected, rel=1e-4)


def test_log_form_equals_log_of_law(points):
    N, D, _ = points
    p = laws.ChinchillaParams(*(jnp.float64(x) for x in (1.8172, 477.84, 2143.9, 0.3473, 0.3672)))
    np.testing.assert_allclose(
        laws.chinchilla_log(p.to_log(), N, D), jnp.log(laws.chinchilla(p, N, D)), rtol=1e-14
    )
    back = p.to_log().to_params()
    np.testing.assert_allclose(jnp.stack(back), jnp.stack(p), rtol=1e-14)


def test_log_form_is_stable_where_the_naive_form_overflows():
    # a = 800: A = exp(800) overflows float64, LSE does not.
    lp = laws.ChinchillaLogParams(*(jnp.float64(x) for x in (800.0, 5.0, 0.5, 30.0, 0.3)))
    out = laws.chinchilla_log(lp, jnp.float64(1e10), jnp.float64(1e11))
    terms = [800.0 - 30.0 * np.log(1e10), 5.0 - 0.3 * np.log(1e11), 0.5]
    assert float(out) == pytest.approx(np.logaddexp.reduce(terms), rel=1e-14)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.log(np.exp(800.0) / 1e10**30.0))  # the naive form overflows


# Check compute-optimal allocation at several fitted parameter sets and budgets.
OPTIMAL_CASES = [
    (laws.ChinchillaParams(1.8172, 477.84, 2143.9, 0.347313, 0.367183), 5.76e23),
    (laws.ChinchillaParams(1.69, 406.4, 410.7, 0.34, 0.28), 1e21),
    (laws.ChinchillaParams(*laws.MUENNIGHOFF_C4[:5]), 1e24),
]


@pytest.mark.parametrize("params, C", OPTIMAL_CASES)
def test_closed_form_optimum_is_on_the_isoflop_line_and_minimises_it(params, C):
    params = laws.ChinchillaParams(*(jnp.float64(x) for x in params))
    N_opt, D_opt = laws.chinchilla_optimal(params, C)
    assert float(6 * N_opt * D_opt) == pytest.approx(C, rel=1e-12)

    def along_line(log_n):  # loss on the iso-FLOP line as a function of log N
        n = jnp.exp(log_n)
        return laws.chinchilla(params, n, C / (6 * n))

    x0 = jnp.log(N_opt)
    assert abs(float(jax.grad(along_line)(x0))) < 1e-10
    assert float(jax.grad(jax.grad(along_line))(x0)) > 0
    grid = x0 + jnp.linspace(-2.0, 2.0, 401)
    losses = jax.vmap(along_line)(grid)
    assert float(jnp.min(losses)) >= float(along_line(x0)) - 1e-14


def test_gopher_budget_with_muennighoff_constants(muennighoff_reference):
    """Muennighoff et al.'s C4 constants at Gopher's 5.76e23 FLOPs (datablations code output)."""
    ref = muennighoff_reference["c4_chinchilla_coefficients"]["gopher_5.76e23"]
    N_opt, D_opt = laws.chinchilla_optimal(laws.ChinchillaParams(*laws.MUENNIGHOFF_C4[:5]), 5.76e23)
    assert float(N_opt) == pytest.approx(ref["N_opt"], rel=1e-9)
    assert float(D_opt) == pytest.approx(ref["D_opt"], rel=1e-9)


def test_law_record_calls_the_function(points):
    N, D, _ = points
    p = laws.ChinchillaParams(*(jnp.float64(x) for x in (1.8172, 477.84, 2143.9, 0.3473, 0.3672)))
    np.testing.assert_array_equal(laws.CHINCHILLA(p, N, D), laws.chinchilla(p, N, D))
    u = laws.CHINCHILLA.to_unconstrained(p)
    np.testing.assert_allclose(u.E, jnp.log(p.E))  # Hoffmann's e = log E
    np.testing.assert_allclose(jnp.stack(laws.CHINCHILLA.from_unconstrained(u)), jnp.stack(p), rtol=1e-14)
    assert len(np.array(np.meshgrid(*laws.CHINCHILLA.start_grid)).reshape(5, -1).T) == 4500
