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


# ----------------------------------------------------------------------------------------
# The engine across the law's kinks (issue 19)
# ----------------------------------------------------------------------------------------


def _one_sided(params, n, sizes, w, max_passes=512):
    """Right and left partial derivatives of the law at w, written out here: gradients a
    hair (1e-11 of a pass) above and below w in every coordinate (each kink moves only its
    own coordinate's partial)."""
    h = np.asarray(sizes) / n
    eps = np.maximum(1e-11 * h, 1e-14)
    grad = jax.grad(lambda v: laws.filtering_mixture(params, n, jnp.asarray(sizes), v, max_passes=max_passes))
    return np.asarray(grad(jnp.asarray(w + eps))), np.asarray(grad(jnp.asarray(w - eps)))


@pytest.fixture(scope="module")
def proposal():
    import jaxlaws

    law = laws.FILTERING_MIXTURE.with_options(max_passes=512)
    return jaxlaws.propose_mixture(law, FIG4, budgets=BUDGETS, unique_tokens=SIZES)


def test_the_one_sided_conditions_hold_at_every_optimum(proposal):
    """At an optimum on the simplex no exchange of mass gains: the largest left derivative
    among the pools that can give weight is at most the smallest right derivative among
    those that can take it (exact first-order condition of the kinked problem)."""
    assert (proposal.status == "converged").all()
    for b, n in enumerate(np.asarray(BUDGETS)):
        w = proposal.weights[0, b]
        gp, gm = _one_sided(FIG4, float(n), SIZES, w)
        give, take = w > 1e-9, w < 1 - 1e-9
        assert gm[give].max() <= gp[take].min() + 1e-9 * np.abs(gp).max(), n
    # some optima sit on a kink (at 32M and 256M samples: 2 passes over the best pool, 7
    # over the second), reported as bound 3 ("pass") with a whole number of passes
    on_pass = proposal.bound[0] == 3
    assert on_pass[1, 0] and on_pass[4, 1]
    np.testing.assert_allclose(proposal.epochs[0][on_pass], [2.0, 7.0], rtol=1e-9)
    assert "d0:pass" in proposal.frame()["bound"].iloc[1]
    # the report: the best top-k and what the optimum gains over it
    decision = optimize_mixture(FIG4, SIZES, BUDGETS)
    np.testing.assert_array_equal(proposal.best_k[0], np.asarray(decision.best_k))
    assert (proposal.topk_gain[0] >= -1e-12).all() and proposal.topk_gain[0, -1] > 0.015


@pytest.mark.parametrize("n", [40e6, 300e6, 2e9])
def test_agrees_with_an_exhaustive_grid_on_three_pools(n):
    """Three pools, an exhaustive 0.002 grid (125,751 mixtures): the proposal is at or below
    the grid's best and within a grid step of its weights."""
    import jaxlaws

    params = FIG4._replace(b=FIG4.b[:3], tau=FIG4.tau[:3])
    sizes = SIZES[:3]
    grid = jnp.asarray(simplex_grid(3, 0.002))
    err = np.asarray(
        jax.jit(jax.vmap(lambda w: laws.filtering_mixture(params, n, sizes, w, max_passes=256)))(grid)
    )
    law = laws.FILTERING_MIXTURE.with_options(max_passes=256)
    prop = jaxlaws.propose_mixture(law, params, budgets=[n], unique_tokens=sizes)
    assert prop.objective[0, 0] <= err.min() + 1e-12
    np.testing.assert_allclose(prop.weights[0, 0], np.asarray(grid[np.argmin(err)]), atol=0.004)


def test_a_bootstrap_stack_gives_one_decision_per_resample():
    """propose_mixture on a bootstrap of a pools fit: one decision per converged resample,
    each the decision for that resample's parameters alone."""
    from test_fit_filtering import synthetic_pools

    import jaxlaws

    df = synthetic_pools()
    boot = jaxlaws.bootstrap(0, "filtering_mixture", df, 6, objective="sse", seed=0)
    assert boot.ok.sum() >= 4
    budgets = [1e8, 2e9]
    prop = jaxlaws.propose_mixture(boot, budgets=budgets, unique_tokens=np.full(4, 12.8e6))
    S = int(boot.ok.sum())
    assert prop.samples["weights"].shape == (S - prop.samples["n_failed"], 1, 2, 4)
    law = boot.law
    for s, i in enumerate(np.flatnonzero(boot.ok)[:2]):
        one = type(boot.samples)(*(np.asarray(v)[i] for v in boot.samples))
        alone = jaxlaws.propose_mixture(law, one, budgets=budgets, unique_tokens=np.full(4, 12.8e6))
        np.testing.assert_allclose(prop.samples["objective"][s], alone.objective, rtol=1e-12)
        np.testing.assert_allclose(prop.samples["weights"][s], alone.weights, atol=1e-7)


def test_pools_take_the_domain_engines_bounds_caps_and_kl_pull():
    """The same constraints as domain mixtures: a cap on passes (at a whole pass, a kink),
    a minimum weight, a KL pull towards the uniform mixture; each respected and reported."""
    import jaxlaws

    law = laws.FILTERING_MIXTURE.with_options(max_passes=512)
    free = jaxlaws.propose_mixture(law, FIG4, budgets=[1.28e9], unique_tokens=SIZES)
    assert free.epochs[0, 0, 0] > 40  # unconstrained, the best pool is seen ~41 times
    capped = jaxlaws.propose_mixture(law, FIG4, budgets=[1.28e9], unique_tokens=SIZES, max_epochs=30)
    assert capped.epochs[0, 0, 0] == pytest.approx(30, rel=1e-12) and capped.bound[0, 0, 0] == 2
    assert capped.objective[0, 0] > capped.uncapped_objective[0, 0] and capped.converged
    np.testing.assert_allclose(capped.uncapped_objective, free.objective, rtol=1e-12)
    floor = jaxlaws.propose_mixture(law, FIG4, budgets=[1.28e9], unique_tokens=SIZES, min_weight=0.15)
    assert floor.weights[0, 0].min() >= 0.15 - 1e-12 and floor.converged
    pulled = jaxlaws.propose_mixture(law, FIG4, budgets=[1.28e9], unique_tokens=SIZES, kl=[0.0, 0.01, 1.0])
    spread = np.abs(pulled.weights[:, 0] - 0.25).max(axis=1)
    assert spread[0] > spread[1] > spread[2] and pulled.converged
