"""Mixing weights over data pools by gradient, against the authors' top-k strategy and an
exhaustive 0.05 grid (golden values: LAWS.md section 3 and the authors' reference code)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlaws import laws
from jaxlaws.decide import optimize_mixture, simplex_grid

# Goyal et al. Fig. 4 (ImageNet, T-MARS): top 10%, 10-20%, 20-30%, 30-40%; four 12.8M pools
FIG4 = laws.FilteringMixtureParams(*(jnp.asarray(v, jnp.float64) for v in laws.GOYAL_FIG4))
SIZES = jnp.full(4, 12.8e6)
BUDGETS = jnp.array([16e6, 32e6, 64e6, 128e6, 256e6, 640e6, 1.28e9, 5e9])


@pytest.fixture(scope="module")
def sweep():
    return optimize_mixture(FIG4, SIZES, BUDGETS)


@pytest.fixture(scope="module")
def grid_optimum():
    grid = jnp.asarray(simplex_grid(4, 0.05))
    err = jax.vmap(lambda n: jax.vmap(lambda w: laws.filtering_mixture(FIG4, n, SIZES, w))(grid))(BUDGETS)
    best = jnp.argmin(err, axis=1)
    return np.asarray(grid[best]), np.asarray(err.min(axis=1))


def test_authors_code_form_top_k_choices(goyal_reference, goyal_parameters):
    """estimate_best_pool.py with tmars_imagenet1k_utility: 10, 10, 20, 20 percent."""
    ps = goyal_parameters["tmars_imagenet1k_utility"]
    params = laws.FilteringMixtureParams(
        b=jnp.array(ps["b_values"][:4]),
        tau=jnp.array(ps["c_values"][:4]),
        n0=jnp.float64(1e5 / ps["best_a"]),
        d=jnp.float64(ps["d_value"]),
    )
    rows = [
        r
        for r in goyal_reference["estimate_best_buckets"]
        if r["param_key"] == "tmars_imagenet1k_utility" and r["objective"] == "effective_utility"
    ]
    n = jnp.array([r["samples_seen"] for r in rows])
    dec = optimize_mixture(params, jnp.full(4, 12.8e6), n, form="reference_code")
    assert list(np.asarray(dec.best_k)) == [r["best_num_buckets"] for r in rows] == [1, 1, 2, 2]
    for i, r in enumerate(rows):
        np.testing.assert_allclose(dec.topk_errors[i], r["error_top10_top20_top30_top40"], rtol=1e-9)
        assert float(dec.error[i]) <= min(r["error_top10_top20_top30_top40"]) + 1e-12


def test_top_k_switch_points(sweep):
    """Top-1 -> top-2 between 32M and 64M, top-2 -> top-3 between 256M and 640M (LAWS.md 3)."""
    k = dict(zip(np.asarray(BUDGETS).tolist(), np.asarray(sweep.best_k).tolist()))
    assert k[32e6] == 1 and k[64e6] == 2
    assert k[256e6] == 2 and k[640e6] == 3


def test_grid_reference_values(grid_optimum):
    """Best 0.05-grid weight on the top-10% pool: 1.0, 0.8, 0.7, 0.6, 0.55, 0.45, 0.4 (LAWS.md 3)."""
    w, err = grid_optimum
    np.testing.assert_allclose(w[:7, 0], [1.0, 0.8, 0.7, 0.6, 0.55, 0.45, 0.4], atol=1e-12)
    np.testing.assert_allclose(w[7], [0.4, 0.3, 0.2, 0.1], atol=1e-12)  # at 5B
    assert err[7] == pytest.approx(0.5926, abs=1e-4)


def test_gradient_optimum_beats_top_k_and_the_grid_at_every_budget(sweep, grid_optimum):
    _, grid_err = grid_optimum
    best_topk = np.asarray(sweep.topk_errors).min(axis=1)
    err = np.asarray(sweep.error)
    assert np.all(err <= best_topk + 1e-12)
    assert np.all(err <= grid_err + 1e-12)
    # at 5B samples: at or below 0.5926 against 0.6083 for the best top-k
    assert err[-1] <= 0.5926 and best_topk[-1] == pytest.approx(0.6083, abs=1e-4)
    np.testing.assert_allclose(np.asarray(sweep.weights).sum(axis=1), 1.0, rtol=1e-12)


def test_top_pool_share_falls_as_compute_grows(sweep):
    share = np.asarray(sweep.weights)[:, 0]
    assert share[0] > 0.95
    assert np.all(np.diff(share) <= 1e-6)
    assert share[-1] < 0.5


def test_decisions_for_a_stack_of_parameter_sets_in_one_call(sweep):
    scales = jnp.array([0.95, 1.0, 1.05])
    stack = FIG4._replace(b=FIG4.b[None, :] * scales[:, None], tau=jnp.tile(FIG4.tau, (3, 1)))
    dec = optimize_mixture(stack, SIZES, BUDGETS[-2:])
    assert dec.weights.shape == (3, 2, 4)
    np.testing.assert_allclose(dec.error[1], sweep.error[-2:], rtol=1e-9)
    spread = np.asarray(dec.weights[:, -1, 0]).std()
    assert spread > 0  # the decision's spread over the parameter sets


def test_weight_sensitivity_matches_finite_differences():
    """IFT derivatives against central differences of the re-optimised weights. The law has a
    kink at every pass of every pool (at 2B samples the pools make 16 to 61 passes), so the
    differences average over kinks: agreement to 15%, and the weights stay on the simplex."""
    from jaxlaws.decide import mixture_sensitivity

    n, h = 2e9, 1e-3
    w0 = optimize_mixture(FIG4, SIZES, n).weights[0]
    sens = mixture_sensitivity(FIG4, SIZES, n, w0)
    for j in (0, 1):
        up = optimize_mixture(FIG4._replace(b=FIG4.b.at[j].add(h)), SIZES, n).weights[0]
        dn = optimize_mixture(FIG4._replace(b=FIG4.b.at[j].add(-h)), SIZES, n).weights[0]
        np.testing.assert_allclose(sens["b"][:, j], (up - dn) / (2 * h), rtol=0.15, atol=0.02)
    np.testing.assert_allclose(sens["b"].sum(axis=0), 0.0, atol=1e-9)
    # a better top pool (more negative b) takes more weight from the others
    assert sens["b"][0, 0] < 0 and np.all(sens["b"][1:, 0] > 0)
