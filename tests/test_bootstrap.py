"""Bootstrap: every resample in one batch; Epoch AI's protocol and numbers (LAWS.md section 1)."""

import jax
import numpy as np
import pytest

import jaxlaws

HOFFMANN_UNROUNDED = dict(E=1.693374, A=406.401, B=410.723, alpha=0.339171, beta=0.284908)
# Besiroglu et al. 2024, bootstrap standard errors of their Huber-likelihood fit
EPOCH_SE = {"A": 124.5, "B": 1293.0, "E": 0.0257, "alpha": 0.0154, "beta": 0.0206}


@pytest.fixture(scope="module")
def df():
    return jaxlaws.datasets.load("chinchilla-epoch", subset="standard")


def test_epoch_protocol_standard_errors(df):
    """4000 resamples of the 240 points, each fitted from Hoffmann's unrounded values."""
    bs = jaxlaws.bootstrap(
        jax.random.key(0),
        "chinchilla",
        df,
        4000,
        objective="huber_likelihood",
        starts="init",
        init=HOFFMANN_UNROUNDED,
    )
    print(bs.summary())
    assert bs.n_failed < 0.2 * 4000  # the rest reached max_steps and are excluded, counted
    # the summary says why: each status left out, with its count and meaning
    names, counts = np.unique(bs.status[~bs.ok], return_counts=True)
    assert len(names) > 0 and all(f"{n} {c}: " in bs.summary() for n, c in zip(names, counts))
    for name, se in EPOCH_SE.items():
        assert bs.stderr[name] == pytest.approx(se, rel=0.15), name
    lo, hi = bs.interval()["E"]
    assert lo == pytest.approx(1.769, abs=0.01) and hi == pytest.approx(1.871, abs=0.01)  # Epoch's 95% CI
    exponent = bs.derived(lambda p: p.beta / (p.alpha + p.beta))  # N_opt ~ C^(beta/(alpha+beta))
    lo, hi = exponent.interval
    assert lo < float(exponent.point) < hi


def test_each_resample_equals_a_fit_of_the_resampled_table(df):
    """The batched bootstrap equals fitting each resampled table (rows repeated) one by one."""
    key = jax.random.key(7)
    point = jaxlaws.fit("chinchilla", df)
    bs = jaxlaws.bootstrap(key, "chinchilla", df, 3, point=point)
    counts = np.asarray(jaxlaws.uncertainty.resample_weights(key, len(df), 3)).astype(int)
    assert (counts.sum(axis=1) == len(df)).all()
    for i in range(3):
        table = df.loc[df.index.repeat(counts[i])]
        one = jaxlaws.fit("chinchilla", table, starts="init", init=point.params)
        assert bs.objective[i] == pytest.approx(one.value, rel=1e-9)
        np.testing.assert_allclose(np.stack(bs.samples)[:, i], np.stack(one.params), rtol=1e-6)
    assert bs.table().loc["alpha", "estimate"] == pytest.approx(float(point.params.alpha))


@pytest.mark.filterwarnings("ignore::jaxlaws.ConvergenceWarning")
def test_a_law_fitted_output_by_output_is_bootstrapped_output_by_output():
    """Mixing laws: each resample's outputs are fitted as separate tables (as the point fit),
    the same optima as the joint problem; in chunks under a progress bar, the same numbers."""
    import jaxlaws.uncertainty as U

    rng = np.random.default_rng(0)
    r = rng.dirichlet(np.ones(3), 40)
    truth = jaxlaws.laws.MixingExpParams(
        c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]])
    )
    y = np.asarray(jaxlaws.laws.mixing_exp(truth, r)) * np.exp(rng.normal(0, 0.005, (40, 2)))
    data = {"r": r, "a": y[:, 0], "b": y[:, 1]}
    point = jaxlaws.fit("mixing_exp", data, target=["a", "b"], starts=16)
    kw = dict(target=["a", "b"], point=point)
    split = jaxlaws.bootstrap(3, "mixing_exp", data, 24, **kw)
    chunked = jaxlaws.bootstrap(3, "mixing_exp", data, 24, progress=True, **kw)
    np.testing.assert_array_equal(chunked.objective, split.objective)
    separable, U._separable = U._separable, lambda prob: False
    try:
        joint = jaxlaws.bootstrap(3, "mixing_exp", data, 24, **kw)
    finally:
        U._separable = separable
    ok = split.ok & joint.ok
    assert ok.sum() >= 20
    np.testing.assert_allclose(split.objective[ok], joint.objective[ok], rtol=1e-9)
    np.testing.assert_allclose(np.asarray(split.samples.c)[ok], np.asarray(joint.samples.c)[ok], rtol=1e-6)
