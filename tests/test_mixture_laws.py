"""The data-mixture laws: their papers' parametrisations, the published fit of Ye et al.
(yegcjs/mixinglaws @ c58d349, mix_5_domains.ipynb) recovered by the authors' protocol, and
their behaviour at the edges of the simplex. Objectives against scipy are in test_suite."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlaws
from jaxlaws.laws import BIMIX, MIXING_EXP, MIXTURE_ADDITIVE, YE_PILE5, BiMixParams, MixingExpParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite  # noqa: E402

YE = MixingExpParams.from_paper(np.exp(YE_PILE5["log_c"]), np.exp(YE_PILE5["log_k"]), YE_PILE5["t"])


def test_ye_identifiable_form_predicts_as_the_papers_form():
    r = np.random.default_rng(0).dirichlet(np.ones(5), 50)
    c, k, t = np.exp(YE_PILE5["log_c"]), np.exp(YE_PILE5["log_k"]), np.asarray(YE_PILE5["t"])
    paper = c + k * np.exp(r @ t.T)  # L_i = c_i + k_i exp(sum_j t_ij r_j)
    np.testing.assert_allclose(jaxlaws.laws.mixing_exp(YE, r), paper, rtol=1e-13)


@pytest.mark.filterwarnings("ignore:.*other optim:jaxlaws.ConvergenceWarning")  # a rare domain's t
def test_ye_published_fit_is_recovered_with_the_authors_protocol():
    """Runs generated from the published fit (0.3% noise, mixtures in 1/32 as the authors'),
    fitted as the authors did (Huber on raw losses, delta 0.05, their grid): the published
    parameters come back, and so do the losses."""
    df = suite.mixing_data(60)
    res = jaxlaws.fit(
        MIXING_EXP, df, columns={"r": "r_*"}, target="loss_*", objective="huber_linear", delta=0.05
    )
    assert res.status == "converged"
    assert len(res.starts) == 200  # 10 x 20, the authors' grid
    np.testing.assert_allclose(res.params.c, YE.c, rtol=0.03)
    r = df.filter(like="r_").to_numpy()
    np.testing.assert_allclose(
        jaxlaws.laws.mixing_exp(res.params, r), jaxlaws.laws.mixing_exp(YE, r), rtol=5e-3
    )
    # each output's most negative exponent is its own domain, as in the published fit
    assert list(np.argmin(np.asarray(res.params.t), axis=1)) == [0, 1, 2, 3, 4]


def test_bimix_absorbs_the_papers_a():
    A, alpha, B, beta, C = (np.array(v) for v in ([2.0, 0.5], [0.1, 0.2], [3.0, 8.0], [0.3, 0.4], [1.0, 2.5]))
    r = np.array([[0.3, 0.7], [0.9, 0.1]])
    s = np.array([1e3, 5e4])
    paper = A / r**alpha * (B / s[:, None] ** beta + C)
    np.testing.assert_allclose(
        jaxlaws.laws.bimix(BiMixParams.from_paper(A, alpha, B, beta, C), r, s), paper, rtol=1e-13
    )


def test_bimix_needs_every_proportion_positive():
    df = suite.bimix_data()
    df.loc[3, "r_web"] += df.loc[3, "r_code"]
    df.loc[3, "r_code"] = 0.0
    with pytest.raises(ValueError, match=r"column 'r_code', row 3: value 0.0 must be positive"):
        jaxlaws.fit(BIMIX, df, columns={"r": "r_*"}, target="loss_*")


def test_bimix_recovers_its_parameters():
    df = suite.bimix_data()
    res = jaxlaws.fit(BIMIX, df, columns={"r": "r_*"}, target="loss_*", starts=16)
    for name in ("alpha", "beta"):
        np.testing.assert_allclose(getattr(res.params, name), getattr(suite.BIMIX_TRUTH, name), atol=0.02)


def test_additive_law_has_finite_derivatives_where_a_domain_is_absent():
    p = suite.ADDITIVE_TRUTH
    h = jnp.array([[0.6, 0.4, 0.0]])

    def f(p):
        return jnp.sum(MIXTURE_ADDITIVE(p, jnp.array([1e9]), jnp.array([1e10]), h))

    g = jax.grad(f)(p)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in g)
    assert float(g.gamma[0, 2]) == 0.0 and float(g.C[0, 2]) == 0.0  # an absent domain does nothing


@pytest.mark.parametrize("name", ["mixing_exp", "bimix", "mixture_additive"])
def test_mixture_laws_are_registered_with_a_simplex_input(name):
    law = jaxlaws.laws.get(name)
    assert any("simplex" in law.domain(n).name for n in law.inputs)
    assert law.reference


def test_outputs_with_their_own_parameters_are_fitted_one_by_one():
    """The fit of two outputs is the two one-output fits side by side: same parameters, the
    objectives summed, and the reported value is the objective at the reported point."""
    df = suite.mixing_data(40)
    kw = dict(columns={"r": "r_*"}, starts=16)
    both = jaxlaws.fit(MIXING_EXP, df, target=["loss_academic", "loss_prose"], **kw)
    one = [jaxlaws.fit(MIXING_EXP, df, target=[c], **kw) for c in ("loss_academic", "loss_prose")]
    np.testing.assert_allclose(both.params.c, [o.params.c[0] for o in one], rtol=1e-9)
    np.testing.assert_allclose(
        both.params.t, np.concatenate([o.params.t for o in one]), rtol=1e-8, atol=1e-10
    )
    assert both.value == pytest.approx(one[0].value + one[1].value, rel=1e-12)
    prob = jaxlaws.problem.setup(MIXING_EXP, df, target=["loss_academic", "loss_prose"], columns={"r": "r_*"})
    assert float(prob.objective_fn()(both.x)) == pytest.approx(both.value, rel=1e-12)
    assert len(both.starts) >= 16 and set(both.starts["status"]) <= set(jaxlaws.solvers.STATUS_NAMES)
