"""jaxlaws.design: V- and D-optimal scores against a brute-force NumPy computation, the
budget and ``n``, the between-basin term against a brute-force integral, replays that
repeat themselves, and one-line errors for bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

import jaxlaws
from jaxlaws import design
from jaxlaws.design import next_runs, replay

TRUE = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def chinchilla_table(N, D, seed, noise=0.005):
    rng = np.random.default_rng(seed)
    loss = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    return pd.DataFrame({"N": N, "D": D, "loss": loss * np.exp(rng.normal(0, noise, len(N)))})


@pytest.fixture(scope="module")
def case():
    """A Chinchilla fit on 10 small runs, 30 candidates and 4 targets at large N and D."""
    rng = np.random.default_rng(1)
    N = np.geomspace(1e7, 5e8, 10)
    runs = chinchilla_table(N, 20 * N * rng.uniform(0.3, 3, N.size), seed=2)
    fit = jaxlaws.fit("chinchilla", runs, objective="sse_log", starts="init", init=TRUE)
    Nc = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 30))
    cands = pd.DataFrame({"N": Nc, "D": Nc * np.exp(rng.uniform(np.log(5), np.log(100), 30))})
    cands.index = [f"c{i}" for i in range(30)]
    targets = pd.DataFrame({"N": [3e10, 7e10, 1e11, 3e11], "D": [6e11, 1.4e12, 2e12, 6e12]})
    return fit, runs, cands, targets


def log_jacobian(p, N, D):
    """d log L / d (log E, log A, log B, alpha, beta), by hand."""
    a, b = p["A"] * N ** -p["alpha"], p["B"] * D ** -p["beta"]
    L = p["E"] + a + b
    return np.stack([p["E"] / L, a / L, b / L, -a * np.log(N) / L, -b * np.log(D) / L], axis=1), np.log(L)


def brute(fit, runs, cands, targets):
    """The information, the noise variance and each candidate's V and D gain by adding its
    row and inverting again (no Sherman-Morrison)."""
    p = fit.params_dict
    JR, g = log_jacobian(p, runs.N.to_numpy(), runs.D.to_numpy())
    r = g - np.log(runs.loss.to_numpy())
    s2 = r @ r / (len(r) - 5)
    F = JR.T @ JR / s2
    Jc, _ = log_jacobian(p, cands.N.to_numpy(), cands.D.to_numpy())
    Jt, _ = log_jacobian(p, targets.N.to_numpy(), targets.D.to_numpy())

    def V(M):
        return np.mean(np.einsum("tp,pq,tq->t", Jt, np.linalg.inv(M), Jt))

    v = np.array([V(F) - V(F + np.outer(j, j) / s2) for j in Jc])
    d = np.array([np.linalg.slogdet(F + np.outer(j, j) / s2)[1] - np.linalg.slogdet(F)[1] for j in Jc])
    return dict(F=F, s2=s2, Jc=Jc, V=V, v=v, d=d)


@pytest.mark.parametrize("objective", ["sse_log", "huber"])
def test_noise_and_information_match_the_fits_covariance(case, objective):
    _, runs, cands, targets = case
    fit = jaxlaws.fit("chinchilla", runs, objective=objective, starts="init", init=TRUE)
    dn = next_runs(fit, cands, runs=runs, targets=targets, cost="6*N*D", budget=1e30, n=1)
    JR, g = log_jacobian(fit.params_dict, runs.N.to_numpy(), runs.D.to_numpy())
    if objective == "sse_log":
        r = g - np.log(runs.loss.to_numpy())
        assert dn.noise_variance == pytest.approx(r @ r / (len(r) - 5), rel=1e-10)
    # the fit's covariance (paper coordinates) is s^2 (J^T J)^-1 carried by d theta / d u
    scale = np.array([fit.params.E, fit.params.A, fit.params.B, 1.0, 1.0], float)
    cov = dn.noise_variance * np.linalg.inv(JR.T @ JR) * np.outer(scale, scale)
    np.testing.assert_allclose(fit.covariance.to_numpy(), cov, rtol=1e-6)


@pytest.mark.parametrize("criterion", ["v", "d"])
def test_scores_match_brute_force(case, criterion):
    fit, runs, cands, targets = case
    b = brute(fit, runs, cands, targets)
    budget = 2e20
    dn = next_runs(
        fit, cands, runs=runs, targets=targets, cost="6*N*D", budget=budget, n=3, criterion=criterion
    )
    want = b[criterion]
    np.testing.assert_allclose(dn.candidates["gain"].to_numpy(), want, rtol=1e-7, atol=1e-14)
    cost = 6 * cands.N.to_numpy() * cands.D.to_numpy()
    np.testing.assert_allclose(dn.candidates["score"], want / (cost / budget) ** design.COST_POWER, rtol=1e-7)
    assert dn.variance_before == pytest.approx(b["V"](b["F"]), rel=1e-9)
    # the greedy: each pick the best affordable score given the rows picked before it
    F, spent, taken = b["F"].copy(), 0.0, []
    for row in dn.picks.itertuples():
        i = cands.index.get_loc(row.candidate)
        gains = []
        for j in b["Jc"]:
            G = F + np.outer(j, j) / b["s2"]
            gains.append(
                b["V"](F) - b["V"](G)
                if criterion == "v"
                else np.linalg.slogdet(G)[1] - np.linalg.slogdet(F)[1]
            )
        score = np.array(gains) / (cost / budget) ** design.COST_POWER
        ok = np.ones(len(cost), bool)
        ok[taken] = False
        ok &= spent + cost <= budget
        assert i == int(np.argmax(np.where(ok, score, -np.inf)))
        assert row.gain == pytest.approx(gains[i], rel=1e-7)
        F = F + np.outer(b["Jc"][i], b["Jc"][i]) / b["s2"]
        spent += cost[i]
        taken.append(i)
        assert row.variance == pytest.approx(b["V"](F), rel=1e-8)
        assert row.spent == pytest.approx(spent)
    assert dn.variance_after == pytest.approx(b["V"](F), rel=1e-8)


@pytest.mark.parametrize(
    "budget, n, stopped",
    [
        (1e18, None, "budget"),
        (3e19, None, "budget"),
        (1e30, 4, "n"),
        (1e30, None, "candidates"),
        (1e15, 3, "budget"),
    ],
)
def test_picks_within_the_budget_and_n(case, budget, n, stopped):
    fit, runs, cands, targets = case
    cost = 6 * cands.N * cands.D
    dn = next_runs(
        fit, cands.assign(flops=cost), runs=runs, targets=targets, cost="flops", budget=budget, n=n
    )
    assert dn.stopped == stopped
    assert dn.spent <= budget
    assert dn.picks["cost"].sum() == pytest.approx(dn.spent)
    assert n is None or len(dn.picks) <= n
    assert dn.picks["candidate"].is_unique
    if stopped == "budget":  # nothing left that fits
        left = cost.drop(dn.picks["candidate"])
        assert (dn.spent + left > budget).all()
    if stopped == "candidates":
        assert len(dn.picks) == len(cands)
    assert (np.diff(np.r_[dn.variance_before, dn.picks["variance"]]) <= 1e-15).all()
    assert set(dn.frame().columns) >= {"N", "D", "candidate", "cost", "gain", "score", "variance", "spent"}


def test_cost_as_callable_and_column_names_of_the_fit(case):
    fit, runs, cands, targets = case
    renamed = runs.rename(columns={"N": "params", "D": "tokens"})
    fit2 = jaxlaws.fit(
        "chinchilla",
        renamed,
        columns={"N": "params", "D": "tokens"},
        objective="sse_log",
        starts="init",
        init=TRUE,
    )
    c2 = cands.rename(columns={"N": "params", "D": "tokens"})
    a = next_runs(fit, cands, runs=runs, targets=targets, cost="6*N*D", budget=1e20)
    b = next_runs(
        fit2, c2, runs=renamed, targets=targets, cost=lambda t: 6 * t.params * t.tokens, budget=1e20
    )
    c = next_runs(fit2, c2, runs=renamed, targets=targets, cost="6 * N * D", budget=1e20)  # law names too
    assert list(a.picks.candidate) == list(b.picks.candidate) == list(c.picks.candidate)
    np.testing.assert_allclose(a.picks.gain, b.picks.gain, rtol=1e-9)


def test_one_basin_basin_criterion_is_v(case):
    fit, runs, cands, targets = case
    kw = dict(runs=runs, targets=targets, cost="6*N*D", budget=1e20, n=3)
    v = next_runs(fit, cands, criterion="v", **kw)
    b = next_runs(fit, cands, criterion="basin", **kw)
    assert b.n_basins == 1
    np.testing.assert_allclose(b.candidates["gain"], v.candidates["gain"], rtol=1e-12)
    assert list(b.picks.candidate) == list(v.picks.candidate)


@pytest.mark.parametrize("seed, low", [(3, 0.01), (4, 1e-5), (7, 1e-5)])
def test_between_basin_gain_matches_a_brute_force_integral(seed, low):
    """The expected reduction of the basins' disagreement: posterior weights and shifted
    predictions at every y of a fine grid, integrated against the predictive mixture (basins
    of similar predictive spread, and of spreads a hundred times apart)."""
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    K, T, C = 4, 4, 6
    g = rng.normal(0, 0.5, (K, T, C))
    mc = rng.normal(0, 0.3, (K, C))
    s2c = np.exp(rng.uniform(np.log(low), np.log(0.05), (K, C)))
    ft = rng.normal(0, 0.3, (K, T))
    w = rng.dirichlet(np.ones(K))
    x = np.linspace(-design.QUAD_WIDTH, design.QUAD_WIDTH, design.QUAD_NODES)
    got = np.asarray(design._between_gain(*(jnp.asarray(a) for a in (g, mc, s2c, ft, w, x))))
    pairs = [(k, m) for k in range(K) for m in range(k + 1, K)]
    before = sum(w[k] * w[m] * np.mean((ft[k] - ft[m]) ** 2) for k, m in pairs)
    want = np.empty(C)
    for c in range(C):
        s = np.sqrt(s2c[:, c])
        y = np.linspace((mc[:, c] - 12 * s).min(), (mc[:, c] + 12 * s).max(), 400001)
        phi = np.exp(-0.5 * ((y[None] - mc[:, c, None]) / s[:, None]) ** 2) / (
            s[:, None] * np.sqrt(2 * np.pi)
        )
        p = w @ phi
        post = w[:, None] * phi / p
        f = ft[:, :, None] + g[:, :, c, None] * (y[None, None] - mc[:, c, None, None])  # (K, T, y)
        after = sum(post[k] * post[m] * np.mean((f[k] - f[m]) ** 2, axis=0) for k, m in pairs)
        want[c] = max(before - np.trapezoid(p * after, y), 0.0)
    assert np.max(np.abs(got - want)) <= 1e-3 * before
    assert (got > 0).any() and (got < before).all()


def test_basin_criterion_matches_numpy_on_a_fit_with_two_basins():
    """Eight small runs leave Chinchilla two optima about as good (E about 0.9, and E at
    zero); each basin's V-optimal gain weighted by its likelihood, and the expected drop
    of their disagreement by a fine grid, against the design's."""
    rng = np.random.default_rng(2)
    N = np.geomspace(1e7, 3e8, 8)
    D = 20 * N * rng.uniform(0.5, 2, 8)
    loss = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    runs = pd.DataFrame({"N": N, "D": D, "loss": loss * np.exp(rng.normal(0, 0.01, 8))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)
        fit = jaxlaws.fit("chinchilla", runs, objective="sse_log", starts=64, seed=2)
    Nc = np.geomspace(1e7, 1e10, 6)
    cands = pd.DataFrame({"N": Nc, "D": Nc * np.geomspace(5, 100, 6)})
    targets = pd.DataFrame({"N": [3e10, 7e10, 2e11], "D": [6e11, 1.4e12, 4e12]})
    dn = next_runs(fit, cands, runs=runs, targets=targets, cost="6*N*D", budget=1e30, n=1, criterion="basin")
    b = fit.basins[fit.basins.status == "converged"]
    s2 = fit.value / (len(runs) - 5)
    w = np.exp(-0.5 * (b.objective.to_numpy() - fit.value) / s2)
    keep = w / w.sum() >= design.MIN_BASIN_WEIGHT
    b, w = b[keep], w[keep] / w[keep].sum()
    assert dn.n_basins == len(b) == 2
    within, variance, mc, s2c, gains, ft = 0.0, 0.0, [], [], [], []
    for (_, row), wk in zip(b.iterrows(), w):
        p = row[["E", "A", "B", "alpha", "beta"]].to_dict()
        JR, _ = log_jacobian(p, runs.N.to_numpy(), runs.D.to_numpy())
        Jc, gc = log_jacobian(p, cands.N.to_numpy(), cands.D.to_numpy())
        Jt, gt = log_jacobian(p, targets.N.to_numpy(), targets.D.to_numpy())
        S = np.linalg.inv(JR.T @ JR / s2)
        cross = Jt @ S @ Jc.T
        s2k = s2 + np.einsum("cp,pq,cq->c", Jc, S, Jc)
        within = within + wk * np.mean(cross**2, axis=0) / s2k
        variance += wk * np.mean(np.einsum("tp,pq,tq->t", Jt, S, Jt))
        mc.append(gc), s2c.append(s2k), gains.append(cross / s2k), ft.append(gt)
    np.testing.assert_allclose(dn.candidates["gain_within"], within, rtol=1e-6)
    mc, s2c, ft = np.array(mc), np.array(s2c), np.array(ft)
    before = w[0] * w[1] * np.mean((ft[0] - ft[1]) ** 2)
    for c in range(len(cands)):
        s = np.sqrt(s2c[:, c])
        y = np.linspace((mc[:, c] - 12 * s).min(), (mc[:, c] + 12 * s).max(), 200001)
        phi = np.exp(-0.5 * ((y[None] - mc[:, c, None]) / s[:, None]) ** 2) / (
            s[:, None] * np.sqrt(2 * np.pi)
        )
        p = w @ phi
        f = [ft[k][:, None] + gains[k][:, c, None] * (y[None] - mc[k, c]) for k in range(2)]
        after = np.trapezoid(w[0] * w[1] * phi[0] * phi[1] / p * np.mean((f[0] - f[1]) ** 2, axis=0), y)
        assert dn.candidates["gain_between"].iloc[c] == pytest.approx(
            max(before - after, 0.0), abs=1e-3 * before
        )
    assert dn.variance_before == pytest.approx(variance + before, rel=1e-6)


def test_prior_from_declared_ranges():
    """``prior="ranges"``: a Gaussian prior of a quarter of each bound's width, in the
    optimiser's coordinate (log of a positive interval), added to the information."""
    import dataclasses

    from synthetic import POWER, PowerParams

    bounds = dict(E=(0.1, 10.0), A=(1.0, 1e4), alpha=(0.05, 2.0))
    intervals = PowerParams(*(jaxlaws.constraints.interval(*bounds[k]) for k in PowerParams._fields))
    law = dataclasses.replace(POWER, name="bounded_power", constraints=intervals)
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e3, 12)
    runs = pd.DataFrame({"x": x, "y": (1.5 + 20 * x**-0.5) * np.exp(rng.normal(0, 0.01, x.size))})
    fit = jaxlaws.fit(law, runs, objective="sse", starts="init", init=dict(E=1.5, A=20.0, alpha=0.5))
    cands, targets = pd.DataFrame({"x": [2e3, 5e3]}), pd.DataFrame({"x": [1e4, 1e5]})
    kw = dict(runs=runs, targets=targets, cost="x", budget=1e4)
    plain, with_prior = next_runs(fit, cands, **kw), next_runs(fit, cands, prior="ranges", **kw)
    E, A, a = (float(v) for v in fit.params)

    def jac(x):
        t = A * x**-a
        return np.stack([np.full_like(x, E), t, -t * np.log(x) * a], axis=1)

    J = jac(x)
    r = E + A * x**-a - runs.y.to_numpy()
    s2 = r @ r / (len(x) - 3)
    precision = np.array([(4 / np.log(hi / lo)) ** 2 for lo, hi in bounds.values()])
    Jt = jac(targets.x.to_numpy())
    for design_, M in ((plain, J.T @ J / s2), (with_prior, J.T @ J / s2 + np.diag(precision))):
        want = np.mean(np.einsum("tp,pq,tq->t", Jt, np.linalg.inv(M), Jt))
        assert design_.variance_before == pytest.approx(want, rel=1e-7)
    assert with_prior.variance_before < plain.variance_before


def pool_and_targets():
    rng = np.random.default_rng(5)
    N = np.exp(rng.uniform(np.log(1e7), np.log(2e9), 40))
    pool = chinchilla_table(N, N * np.exp(rng.uniform(np.log(5), np.log(80), 40)), seed=6)
    pool["cost"] = 6 * pool.N * pool.D
    Nt = np.array([5e9, 1e10, 3e10])
    return pool, chinchilla_table(Nt, 20 * Nt, seed=7, noise=0.0)


@pytest.mark.parametrize("criterion", ["v", "random"])
def test_replay_with_a_seed_repeats_itself(criterion):
    pool, targets = pool_and_targets()
    kw = dict(
        cost="cost", fractions=(0.02, 0.05), criterion=criterion, seed=3, fit_kwargs={"objective": "sse_log"}
    )
    a = replay("chinchilla", pool, targets, **kw)
    b = replay("chinchilla", pool, targets, **kw)
    pd.testing.assert_frame_equal(a.frame(), b.frame())
    pd.testing.assert_frame_equal(a.steps, b.steps)
    total = pool.cost.sum()
    cp = a.checkpoints
    assert (cp.spent[cp.within] <= cp.fraction[cp.within] * total * (1 + 1e-12)).all()
    assert a.steps.spent.iloc[-1] <= 0.05 * total * (1 + 1e-12)
    assert a.steps.row.iloc[1:].is_unique and not set(a.steps.row.iloc[1:]) & set(a.initial)
    assert np.isfinite(cp.r2).all()


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(candidates="drop D"), ValueError, r"^candidates: missing column 'D'"),
        (
            dict(cost="bad row"),
            ValueError,
            r"^candidates: cost column 'cost', row 'c3': value -1\.0 is not a positive",
        ),
        (
            dict(cost="6*N*Q"),
            ValueError,
            r"^candidates: cost expression '6\*N\*Q' names 'Q', which is not a column",
        ),
        (dict(cost="__import__('os').getcwd()"), ValueError, r"is not allowed \(only column names"),
        (dict(targets="N zero"), ValueError, r"^targets: column 'N', row 1: value 0\.0 must be positive"),
        (dict(budget=-1.0), ValueError, r"^budget must be a positive number"),
        (dict(n=0), ValueError, r"^n must be a whole number >= 1"),
        (dict(criterion="a"), ValueError, r"^criterion must be one of \['v', 'd', 'basin'\]"),
        (dict(runs="other"), ValueError, r"^runs is not the table the fit was fitted on"),
        (dict(model="dict"), TypeError, r"^model must be a jaxlaws\.FitResult"),
        (dict(targets="dict"), TypeError, r"^targets must be a pandas DataFrame"),
    ],
)
def test_bad_input_is_one_line(case, change, error, match):
    fit, runs, cands, targets = case
    kw = dict(model=fit, candidates=cands.assign(cost=6 * cands.N * cands.D), runs=runs, targets=targets)
    kw.update(cost="cost", budget=1e20, n=None, criterion="v")
    for key, value in change.items():
        if value == "drop D":
            kw["candidates"] = kw["candidates"].drop(columns="D")
        elif value == "bad row":
            kw["candidates"].loc["c3", "cost"] = -1.0
        elif value == "N zero":
            kw["targets"] = targets.assign(N=[3e10, 0.0, 1e11, 3e11])
        elif value == "other":
            kw["runs"] = runs.assign(loss=runs.loss * 1.01)
        elif value == "dict":
            kw[key] = {}
        else:
            kw[key] = value
    model, candidates = kw.pop("model"), kw.pop("candidates")
    with pytest.raises(error, match=match) as info:
        next_runs(model, candidates, **kw)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(fractions=(0.0, 0.1)), r"^fractions must be numbers in \(0, 1\]"),
        (dict(fit_kwargs={"bogus": 1}), r"^fit_kwargs has \['bogus'\], which replay does not take"),
        (dict(criterion="x"), r"^criterion must be one of \['v', 'd', 'basin', 'random', 'cheapest'\]"),
        (dict(cost="6*N*Z"), r"^pool: cost expression '6\*N\*Z' names 'Z'"),
        (dict(initial=["nope"]), r"^initial names row 'nope', which is not in the pool"),
    ],
)
def test_replay_bad_input_is_one_line(kw, match):
    pool, targets = pool_and_targets()
    with pytest.raises(ValueError, match=match):
        replay("chinchilla", pool, targets, **{"cost": "cost", **kw})
