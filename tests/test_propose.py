"""propose_mixture: the constrained, repetition-aware mixture proposer, against scipy SLSQP
with the same constraints on the same law, and its behaviour where caps bind."""

import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import jaxlaws
from jaxlaws.laws import MIXING_EXP, MixingExpParams, mixing_exp
from jaxlaws.propose import WEIGHT_FLOOR, project_capped_simplex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_propose  # noqa: E402
import reference  # noqa: E402

TOL = 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_projection_onto_the_capped_simplex_is_the_closest_point(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    v = rng.normal(0, 1, k)
    lo = rng.uniform(0, 0.5 / k, k) * (seed % 2)
    hi = np.maximum(lo, rng.uniform(1.2 / k, 1.0, k))
    w = np.asarray(project_capped_simplex(v, lo, hi))
    assert abs(w.sum() - 1) <= 1e-15 and np.all(w >= lo) and np.all(w <= hi)
    r = minimize(
        lambda x: float(np.sum((x - v) ** 2)),
        np.clip(np.full(k, 1 / k), lo, hi),
        jac=lambda x: 2 * (x - v),
        method="SLSQP",
        bounds=list(zip(lo, hi)),
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert np.sum((w - v) ** 2) <= r.fun + 1e-12


def _violation(w, lo, hi):
    return max(abs(w.sum() - 1), float(np.max(lo - w, initial=0)), float(np.max(w - hi, initial=0)))


@pytest.mark.parametrize("k, kl", [(5, 0.0), (5, 0.05), (10, 0.0)])
def test_no_worse_than_slsqp_with_the_same_constraints(k, kl):
    """The benchmark's problem at 6 of its budgets: objective <= SLSQP's + 1e-9 relative and
    every constraint satisfied to 1e-9, capped and uncapped."""
    params, unique, budgets = bench_propose.problem(k)
    budgets = budgets[::4]
    prop = jaxlaws.propose_mixture(
        MIXING_EXP, params, budgets=budgets, unique_tokens=unique, max_epochs=4.0, kl=kl
    )
    assert prop.converged
    x0 = np.concatenate([np.full((1, k), 1 / k), np.random.default_rng(0).dirichlet(np.ones(k), 7)])
    omega = np.full(5, 0.2)
    assert (prop.bound == 2).any(), "the caps should bind at some budget"
    for b, D in enumerate(budgets):
        for capped in (True, False):
            hi = np.minimum(1.0, 4.0 * unique / D) if capped else np.ones(k)
            lo = np.full(k, WEIGHT_FLOOR if kl else 0.0)
            f_s, w_s, _ = reference.scipy_mixture(
                lambda w: mixing_exp(params, w[None]), x0, lo, hi, omega=omega, kl=kl
            )
            f_j = (prop.objective if capped else prop.uncapped_objective)[0, b]
            w_j = (prop.weights if capped else prop.uncapped_weights)[0, b]
            assert f_j <= f_s + TOL * abs(f_s), (b, capped, f_j, f_s)
            assert _violation(w_j, np.zeros(k), hi) <= TOL


def _scarce_best():
    """Three domains; domain 0 is the best for the one metric, and scarce."""
    params = MixingExpParams(c=np.array([2.0]), t=np.array([[-3.0, -1.0, -0.5]]))
    unique = np.array([1e8, 1e11, 1e11])
    return params, unique


def test_binding_caps_move_weight_off_the_scarce_domain():
    params, unique = _scarce_best()
    budgets = np.array([1e8, 1e9, 1e10])
    prop = jaxlaws.propose_mixture(MIXING_EXP, params, budgets=budgets, unique_tokens=unique, max_epochs=4.0)
    free = prop.uncapped_weights[0]
    assert np.all(free[:, 0] > 0.99)  # uncapped, the scarce domain takes (nearly) everything
    w = prop.weights[0]
    assert w[0, 0] > 0.99  # 1e8 tokens: 1 epoch of the scarce domain, under the cap
    np.testing.assert_allclose(w[1:, 0], 4.0 * unique[0] / budgets[1:], rtol=1e-12)  # at its cap
    assert np.all(prop.epochs[0, :, 0] <= 4.0 + 1e-9)
    assert np.all(prop.bound[0, 1:, 0] == 2)
    assert prop.gap[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(prop.gap[0, 1:] > 1e-3)  # what the caps cost
    frame = prop.frame()
    assert list(frame["bound"])[1:] == ["d0:cap,d2:min", "d0:cap,d2:min"]  # d2 is the worst domain
    assert {"w_d0", "epochs_d0", "objective", "gap", "status"} <= set(frame.columns)


ADDITIVE = jaxlaws.laws.MIXTURE_ADDITIVE.params(
    E=np.array([1.8]),
    A=np.array([400.0]),
    alpha=np.array([0.3]),
    B=np.array([900.0]),
    beta=np.array([0.3]),
    C=np.array([[2.0, 1.0, 0.5]]),
    gamma=np.array([[0.4, 0.3, 0.2]]),
)


def test_effective_data_prices_repetition_in():
    """Muennighoff's effective data per domain, with Shukor et al.'s law (which has a token
    input): no change while no domain repeats; weight moves off the scarce domain once it
    would repeat; SLSQP on the same priced objective agrees."""
    law = jaxlaws.laws.MIXTURE_ADDITIVE
    unique = np.array([1e9, 1e12, 1e12])
    budgets = np.array([1e9, 1e11])
    kw = dict(budgets=budgets, unique_tokens=unique, repetition="effective", at={"N": 1e9})
    prop = jaxlaws.propose_mixture(law, ADDITIVE, **kw)
    assert prop.converged
    np.testing.assert_allclose(prop.weights[0, 0], prop.uncapped_weights[0, 0], atol=1e-9)
    assert prop.weights[0, 1, 0] < prop.uncapped_weights[0, 1, 0] - 0.05
    assert prop.gap[0, 1] > 0 and prop.epochs[0, 1, 0] > 1

    r_star = jaxlaws.propose.R_STAR

    def priced(w, D=budgets[1]):
        seen = w * D
        reps = jnp.maximum(seen / unique - 1, 0)
        eff = jnp.where(seen > unique, unique + unique * r_star * -jnp.expm1(-reps / r_star), seen)
        return law(ADDITIVE, jnp.array([1e9]), eff.sum()[None], (eff / eff.sum())[None])

    x0 = np.concatenate([np.full((1, 3), 1 / 3), np.random.default_rng(0).dirichlet(np.ones(3), 7)])
    f_s, _, _ = reference.scipy_mixture(priced, x0, np.full(3, WEIGHT_FLOOR), np.ones(3), omega=[1.0])
    assert prop.objective[0, 1] <= f_s + TOL * abs(f_s)


def test_pricing_needs_a_token_input():
    params, unique = _scarce_best()
    with pytest.raises(ValueError, match="it has no token input"):
        jaxlaws.propose_mixture(
            MIXING_EXP, params, budgets=[1e9], unique_tokens=unique, repetition="effective"
        )


def test_kl_path_moves_towards_the_prior():
    params, unique, budgets = bench_propose.problem(5)
    prior = np.array([0.4, 0.3, 0.1, 0.1, 0.1])
    prop = jaxlaws.propose_mixture(MIXING_EXP, params, kl=[0.0, 0.1, 1.0, 100.0], prior=prior)
    dist = np.abs(prop.weights[:, 0] - prior).sum(axis=1)
    assert np.all(np.diff(dist) < 0)
    assert dist[-1] < 0.05
    assert prop.weights.shape == (4, 1, 5)


def test_several_budgets_at_once_equal_one_at_a_time():
    params, unique, budgets = bench_propose.problem(5)
    kw = dict(unique_tokens=unique, max_epochs=4.0)
    many = jaxlaws.propose_mixture(MIXING_EXP, params, budgets=budgets[[2, 10, 18]], **kw)
    one = jaxlaws.propose_mixture(MIXING_EXP, params, budgets=budgets[10], **kw)
    np.testing.assert_allclose(many.weights[0, 1], one.weights[0, 0], atol=1e-9)
    np.testing.assert_allclose(many.objective[0, 1], one.objective[0, 0], rtol=1e-12)


def test_a_law_with_a_token_input_gets_the_budget():
    """Shukor et al.'s additive law: the budget feeds D, N is given with ``at``."""
    law, p = jaxlaws.laws.MIXTURE_ADDITIVE, ADDITIVE
    prop = jaxlaws.propose_mixture(law, p, budgets=[1e9, 1e11], at={"N": 1e9})
    assert prop.converged
    w = prop.weights[0]
    direct = [
        float(law(p, jnp.array([1e9]), jnp.array([D]), jnp.asarray(w[i])[None])[0, 0])
        for i, D in enumerate([1e9, 1e11])
    ]
    np.testing.assert_allclose(prop.objective[0], direct, rtol=1e-12)
    assert np.all(w > 0.05)  # w ** gamma: every domain is worth something


def _swarm(n, seed):
    rng = np.random.default_rng(seed)
    truth = MixingExpParams(c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]]))
    r = rng.dirichlet(np.ones(3), n)
    y = np.asarray(mixing_exp(truth, r)) * np.exp(rng.normal(0, 0.01, (n, 2)))
    return pd.DataFrame(
        {"r_a": r[:, 0], "r_b": r[:, 1], "r_c": r[:, 2], "loss_x": y[:, 0], "loss_y": y[:, 1]}
    )


def test_bootstrap_intervals_of_the_proposal_shrink_as_the_swarm_grows():
    widths = {}
    for n in (20, 200):
        df = _swarm(n, seed=n)
        bs = jaxlaws.bootstrap(0, MIXING_EXP, df, 64, columns={"r": "r_*"}, target="loss_*", starts=16)
        prop = jaxlaws.propose_mixture(bs)
        iv = prop.interval(0.9)
        assert list(iv["domain"]) == ["r_a", "r_b", "r_c"]
        assert np.all(iv["lower"] <= iv["upper"])
        widths[n] = float((iv["upper"] - iv["lower"]).mean())
        assert prop.samples["weights"].shape[1:] == (1, 1, 3)
        assert prop.mean.shape == (1, 1, 3)
    assert widths[200] < 0.6 * widths[20], widths


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(budgets=[1e9], max_epochs=4), "needs unique_tokens"),
        (dict(max_epochs=4, unique_tokens=[1e8] * 5), "budgets (training tokens) are needed"),
        (dict(budgets=[1e9, -1.0]), "every budget must be finite and positive, got -1.0"),
        (dict(budgets=[np.nan]), "every budget must be finite and positive"),
        (dict(budgets=[1e12], unique_tokens=[1e8] * 5, max_epochs=4), "sum to 0.002 < 1: no mixture"),
        (dict(min_weight=0.3), "the minimum weights sum to 1.5 > 1"),
        (dict(min_weight=[0, 0, 0.5, 0, 0], max_weight=[1, 1, 0.4, 1, 1]), "domain 'd2': min_weight 0.5"),
        (dict(max_weight=[1, 1, 1]), "max_weight must be a number or one value per domain (5)"),
        (dict(prior=[0.5, 0.5, 0, 0, 0], kl=1.0), "prior must be positive proportions"),
        (dict(kl=-1.0), "kl must be a non-negative number"),
        (dict(metric_weights=[1, 2]), "metric_weights must be 5 finite number(s)"),
        (dict(repetition="often"), "repetition must be 'cap', 'effective' or None"),
        (dict(budgets=[1e9], unique_tokens=[1e8] * 5, max_epochs=4, repetition="effective"), "not both"),
        (
            dict(budgets=[1e9], unique_tokens=[1e8, 0, 1, 1, 1], max_epochs=4),
            "unique_tokens of domain 'd1' is 0",
        ),
        (dict(at={"N": 1e9}), "at names ['N']"),
        (dict(starts=0), "starts must be a whole number >= 1"),
        (dict(budget_input="N"), "budget_input 'N' is not an input"),
    ],
)
def test_bad_arguments_are_one_line(kwargs, message):
    params, _, _ = bench_propose.problem(5)
    with pytest.raises(ValueError) as err:
        jaxlaws.propose_mixture(MIXING_EXP, params, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_law_without_a_simplex_input_is_refused():
    with pytest.raises(ValueError, match="needs a law with one input on the simplex"):
        jaxlaws.propose_mixture("chinchilla", jaxlaws.laws.ChinchillaParams(1.7, 400.0, 410.0, 0.34, 0.28))


def test_a_fit_of_a_swarm_names_the_domains_and_metrics():
    df = _swarm(40, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = jaxlaws.fit(MIXING_EXP, df, columns={"r": "r_*"}, target="loss_*", starts=16)
    prop = jaxlaws.propose_mixture(res, metric_weights=[1.0, 0.0])
    assert prop.domains == ("r_a", "r_b", "r_c")
    assert prop.outputs == ("loss_x", "loss_y")
    # only loss_x counts: its best domain (t = -2) takes everything
    assert prop.weights[0, 0, 0] > 0.99
    jax.block_until_ready(prop.weights)


def test_a_proposal_that_did_not_converge_says_so():
    params, unique, budgets = bench_propose.problem(10)
    with pytest.warns(jaxlaws.ConvergenceWarning, match="proposals did not converge"):
        prop = jaxlaws.propose_mixture(MIXING_EXP, params, budgets=budgets[:3], max_steps=1)
    assert not prop.converged
    assert set(prop.status.ravel()) <= {"converged", "max_steps"} and "max_steps" in set(prop.status.ravel())


def test_a_users_mixture_law_proposes_as_the_built_in_one():
    """The suite's ten-line law (benchmarks/suite.py, k absorbed into t as in MIXING_EXP)."""
    import suite

    params, unique, budgets = bench_propose.problem(5)
    kw = dict(budgets=budgets[::5], unique_tokens=unique, max_epochs=4.0)
    mine = jaxlaws.propose_mixture(suite.MIXING, suite.MixingParams(c=params.c, t=params.t), **kw)
    ours = jaxlaws.propose_mixture(MIXING_EXP, params, **kw)
    np.testing.assert_allclose(mine.objective, ours.objective, rtol=1e-13)
    np.testing.assert_allclose(mine.weights, ours.weights, atol=1e-9)


def test_a_weight_at_the_floor_is_reported_as_zero():
    """The floor keeps gradients finite; the proposal reports such a weight as exactly 0
    (its mass given to another domain, the weights summing to one)."""
    params = MixingExpParams(c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]]))
    prop = jaxlaws.propose_mixture(MIXING_EXP, params)
    w = prop.weights[0, 0]
    assert w[2] == 0.0 and w.sum() == pytest.approx(1.0, abs=1e-15) and 0.2 < w[0] < 0.4
    assert prop.frame()["w_d2"].iloc[0] == 0.0 and prop.frame()["bound"].iloc[0] == "d2:min"


def test_proposals_solved_in_chunks_under_a_progress_bar_agree():
    params = MixingExpParams(c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]]))
    kw = dict(budgets=np.geomspace(1e9, 5e11, 40), unique_tokens=[1e8, 1e11, 1e11], max_epochs=4)
    one = jaxlaws.propose_mixture(MIXING_EXP, params, **kw)
    chunked = jaxlaws.propose_mixture(MIXING_EXP, params, progress=True, **kw)
    np.testing.assert_allclose(chunked.weights, one.weights, rtol=0, atol=1e-14)
    assert (chunked.status == one.status).all()
