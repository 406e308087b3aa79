"""The solvers: Levenberg-Marquardt with closed bounds, the linear solve, the compiled step
loop over slots, and the multi-start that screens, polishes in rounds and draws more."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlaws import multistart, solvers


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def test_converges_on_rosenbrock():
    sol = solvers.levenberg_marquardt(
        solvers.newton_fgh(rosenbrock), jnp.array([-1.2, 1.0, 0.5]), max_steps=200
    )
    assert int(sol.status) == solvers.CONVERGED
    np.testing.assert_allclose(sol.x, 1.0, atol=1e-6)


def test_status_codes():
    fgh = solvers.newton_fgh(rosenbrock)
    assert (
        int(solvers.levenberg_marquardt(fgh, jnp.array([-1.2, 1.0]), max_steps=2).status) == solvers.MAX_STEPS
    )
    assert (
        int(solvers.levenberg_marquardt(fgh, jnp.array([jnp.nan, 1.0]), max_steps=50).status)
        == solvers.NONFINITE
    )
    assert solvers.STATUS_NAMES[solvers.SCREENED] == "screened_out"


def test_vmap_equals_a_python_loop():
    fgh = solvers.newton_fgh(rosenbrock)
    x0s = jnp.array([[-1.2, 1.0], [2.0, 2.0], [0.0, -1.0]])
    batched = jax.vmap(lambda x: solvers.levenberg_marquardt(fgh, x, max_steps=100))(x0s)
    for i in range(3):
        one = solvers.levenberg_marquardt(fgh, x0s[i], max_steps=100)
        np.testing.assert_allclose(batched.x[i], one.x, rtol=1e-12)
        assert int(batched.steps[i]) == int(one.steps)


def _quadratic(target):
    def f(x):
        return jnp.sum((x - target) ** 2) + 0.5 * (x[0] - x[1]) ** 2

    return solvers.newton_fgh(f)


@pytest.mark.parametrize(
    "x0, lower, upper, expect",
    [
        # the unconstrained minimum (2, -1) lies outside the box: the optimum sits on a bound
        ([0.5, 0.5], [0.0, 0.0], [1.0, 1.0], None),
        # a start exactly on a bound is free to leave it
        ([1.0, 0.0], [0.0, 0.0], [1.0, 1.0], None),
        # an interior optimum is unaffected by a box around it
        ([0.0, 0.0], [-5.0, -5.0], [5.0, 5.0], "interior"),
    ],
)
def test_closed_bounds_as_l_bfgs_b(x0, lower, upper, expect):
    from scipy.optimize import minimize

    target = np.array([2.0, -1.0])
    fgh = _quadratic(jnp.asarray(target))
    sol = solvers.levenberg_marquardt(fgh, jnp.asarray(x0), max_steps=100, lower=lower, upper=upper)
    assert int(sol.status) == solvers.CONVERGED
    assert np.all(np.asarray(sol.x) >= lower) and np.all(np.asarray(sol.x) <= upper)

    def f(x):
        return float(np.sum((x - target) ** 2) + 0.5 * (x[0] - x[1]) ** 2)

    ref = minimize(
        f, x0, method="L-BFGS-B", bounds=list(zip(lower, upper)), options={"ftol": 1e-15, "gtol": 1e-12}
    )
    assert float(sol.f) <= ref.fun + 1e-12
    np.testing.assert_allclose(np.asarray(sol.x), ref.x, atol=1e-6)
    if expect == "interior":
        np.testing.assert_allclose(np.asarray(sol.x), [1.25, -0.25], atol=1e-9)


def test_a_step_moves_a_coordinate_at_most_the_cap():
    # far from the optimum of exp(x): Newton's step would be huge; the cap keeps it at 3
    fgh = solvers.newton_fgh(lambda x: jnp.sum((jnp.exp(x) - 1e8) ** 2))
    box = solvers.make_box(1, cap_abs=3.0)
    s = solvers.lm_init(jnp.array([0.0]))
    f, g, H = fgh(s.x)
    s = solvers.lm_update(s, f, g, H, H, box, max_steps=10, ftol=1e-13)
    assert float(jnp.max(jnp.abs(s.d))) <= 3.0 + 1e-12


@pytest.mark.parametrize("P", [1, 2, 5, 13, 35])
def test_spd_solve_matches_numpy(P):
    rng = np.random.default_rng(P)
    M = rng.normal(size=(P, P))
    A = M @ M.T + P * np.eye(P)
    b = rng.normal(size=P)
    x = solvers.spd_solve(jnp.asarray(A), jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(A, b), rtol=1e-11, atol=1e-12)
    xs = jax.vmap(solvers.spd_solve)(jnp.stack([A, 2 * A]), jnp.stack([b, b]))
    np.testing.assert_allclose(np.asarray(xs[1]), np.linalg.solve(2 * A, b), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("A", [[[1.0, 2.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]]])
def test_spd_solve_is_not_finite_where_not_positive_definite(A):
    x = solvers.spd_solve(jnp.asarray(A), jnp.ones(2))
    assert not np.all(np.isfinite(np.asarray(x)))


# --- the multi-start: screening, rounds, the stopping rule, drawing more ---------------


def _well(x, table):
    """A double well per table: minima at x = +-c (the sigmoid's offset tells them apart)."""
    c, off = table
    return (x[0] ** 2 - c**2) ** 2 + off * jax.nn.sigmoid(x[0]) + x[1] ** 2


def _evaluate(tables):
    def evaluate(x, t):
        tab = (tables[0][t], tables[1][t])
        f, g = jax.value_and_grad(lambda z: _well(z, tab))(x)
        return f, g, jax.hessian(lambda z: _well(z, tab))(x), ()

    return evaluate


def _multistart(x0s, tables, draw=None, slots=8, block=2, **policy):
    """Run the multi-start on the double wells with ``policy`` (first 2 starts, screen 3)."""
    tables = tuple(jnp.asarray(v) for v in tables)
    step_fn = jax.jit(
        lambda sl, n, r: solvers.advance(
            _evaluate(tables), sl, n, r, solvers.make_box(2), block=block, max_steps=100, ftol=1e-13
        )
    )
    policy = multistart.Policy(**{"screen_steps": 3, "first": 2, "cap": None, "max_steps": 100, **policy})
    return multistart.run(
        lambda sl, n, r: jax.device_get(step_fn(sl, n, r)),
        solvers.lm_init_batch,
        x0s,
        len(tables[0]),
        policy,
        slots=slots,
        block=block,
        draw=draw,
    )


X0 = np.array(
    [[3.0, 1.0], [2.5, -1.0], [-2.0, 0.5], [-3.0, 0.0], [0.4, 2.0], [np.inf, 0.0], [1.5, 1.0], [-1.5, 1.0]]
)
ONE = ([1.0], [0.1])


def test_every_start_is_reported_with_its_status():
    sol = _multistart(X0, ONE, first=8, screen_steps=0, missed=np.inf)  # every start polished
    status = np.asarray(sol.status[0])
    assert status[5] == solvers.NONFINITE
    assert (status == solvers.CONVERGED).sum() == 7
    # the lower well is at x0 = -1 (the sigmoid's offset is smaller there)
    best = int(np.argmin(sol.f[0]))
    assert sol.x[0, best, 0] == pytest.approx(-1.0, abs=0.01)


def test_rounds_widen_until_the_best_is_confirmed_and_a_widening_finds_nothing_lower():
    sol = _multistart(X0, ONE, missed=np.inf)  # rounds of 2, 4, 8 starts in rank order
    status = np.asarray(sol.status[0])
    # the two best screened starts reach the lower well; the round of 4 finds nothing lower
    assert int(sol.polished[0]) == 4 and bool(sol.stopped_by_rule[0])
    polished = np.isin(status, [solvers.CONVERGED, solvers.STALLED, solvers.MAX_STEPS])
    assert polished.sum() == 4
    assert set(status[~polished]) <= {solvers.SCREENED, solvers.NONFINITE}
    f = np.where(status == solvers.CONVERGED, sol.f[0], np.inf)
    assert (f <= f.min() + 1e-9).sum() >= 2
    # a start left unpolished reports the objective it was screened at, above the best
    assert np.all(sol.f[0][status == solvers.SCREENED] > f.min())
    # with one round of 2 starts only (cap 2), a table stops there
    assert int(_multistart(X0, ONE, missed=np.inf, cap=2).polished[0]) == 2


def test_a_tables_result_does_not_depend_on_its_batch_mates_nor_the_slots():
    """A table's starts take the same path whatever shares their batch: the same bits in the
    same compiled program (another batch-mate), the same steps and statuses and the same
    objectives to rounding in another (another number of tables, slots or block size)."""
    both = ([1.0, 2.0], [0.1, -0.3])
    together = _multistart(X0, both, missed=np.inf)
    other_mate = _multistart(X0, ([1.0, 0.5], [0.1, 0.2]), missed=np.inf)
    for field in ("x", "f", "status", "steps"):
        np.testing.assert_array_equal(
            np.asarray(getattr(other_mate, field))[0], np.asarray(getattr(together, field))[0]
        )
    for slots, block in [(8, 2), (2, 2), (4, 4), (16, 1)]:
        for t in range(2):
            alone = _multistart(X0, ([both[0][t]], [both[1][t]]), missed=np.inf, slots=slots, block=block)
            for field in ("status", "steps"):
                np.testing.assert_array_equal(
                    np.asarray(getattr(alone, field))[0], np.asarray(getattr(together, field))[t]
                )
            np.testing.assert_allclose(alone.f[0], together.f[t], rtol=1e-14)
            np.testing.assert_allclose(
                alone.x[0][np.isfinite(alone.f[0])],
                together.x[t][np.isfinite(together.f[t])],
                rtol=1e-12,
                atol=1e-14,
            )


def test_polishing_more_never_ends_higher():
    """Every start's path is its own: polishing every start reaches the default's best or
    lower, for every cap on the rounds."""
    rng = np.random.default_rng(3)
    x0s = rng.uniform(-3, 3, size=(32, 2))
    tables = ([1.0, 1.5, 0.7], [0.4, -0.2, 0.05])
    every = _multistart(x0s, tables, first=32, screen_steps=0, missed=np.inf)
    for cap in (2, 4, 8, None):
        some = _multistart(x0s, tables, missed=np.inf, cap=cap)
        assert np.all(every.f.min(axis=1) <= some.f.min(axis=1))
        polished = np.isin(some.status, [solvers.CONVERGED, solvers.STALLED, solvers.MAX_STEPS])
        # a start polished under both schedules ends in the same place
        np.testing.assert_array_equal(np.where(polished, some.f, 0.0), np.where(polished, every.f, 0.0))


def test_the_rule_draws_more_starts_until_it_holds():
    """Both first starts head for the upper well; the rule wants the best reached by two
    converged starts and few optima lower than it unseen, so more batches are drawn, each
    from its own stream."""
    calls = []

    def draw(n, k):
        calls.append((n, k))
        return np.random.default_rng(k).uniform(-3, 3, size=(n, 2))

    x0s = np.array([[2.0, 0.0], [1.8, 0.3]])  # both head for the upper well
    sol = _multistart(x0s, ONE, draw=draw, first=2, missed=0.05, min_hits=2, max_starts=64)
    assert calls and calls[0] == (2, 1) and [k for _, k in calls] == list(range(1, len(calls) + 1))
    assert bool(sol.stopped_by_rule[0]) and float(sol.missed[0]) <= 0.05
    conv = sol.status[0] == solvers.CONVERGED
    assert sol.x[0, np.argmin(np.where(conv, sol.f[0], np.inf)), 0] == pytest.approx(-1.0, abs=0.01)
    # a budget stops the drawing; the result says the rule did not hold
    capped = _multistart(x0s, ONE, draw=draw, first=2, missed=0.0, min_hits=2, max_starts=6)
    assert sol.f.shape[1] >= 4 and capped.f.shape[1] == 6 and not bool(capped.stopped_by_rule[0])


@pytest.mark.parametrize("n, w, unseen", [(8, 1, 0.4), (30, 3, 0.48), (17, 2, 6 / 13), (4, 2, np.inf)])
def test_boender_rinnooy_kan_expected_unseen_optima(n, w, unseen):
    # W (N - 1) / (N - W - 2) - W (Boender and Rinnooy Kan 1987), undefined while N <= W + 2
    assert multistart.unseen_basins(n, w) == pytest.approx(unseen)


def test_basins_are_told_apart_by_their_objective():
    assert multistart.count_basins([1.0, 1.0 + 1e-9, 2.0, np.inf, 2.0 + 3e-6], 1e-6) == (4, 3)


def test_a_start_running_to_infinity_is_stopped_as_diverged():
    """exp(-x) has its infimum at x = +inf: the start is stopped once x passes the runaway
    bound, with a status of its own, not after max_steps of crawl."""

    def evaluate(x, t):
        f, g = jax.value_and_grad(lambda z: jnp.exp(-z[0]) + z[1] ** 2)(x)
        return f, g, jax.hessian(lambda z: jnp.exp(-z[0]) + z[1] ** 2)(x), ()

    box = solvers.make_box(2, cap_abs=3.0, runaway=46.0)
    sl = solvers.Slots(
        solvers.lm_init_batch(np.array([[0.0, 1.0]] * 2)),
        np.zeros(2, np.int32),
        np.full(2, 500, np.int32),
        np.arange(2, dtype=np.int32),
    )
    out = jax.device_get(
        jax.jit(lambda sl: solvers.advance(evaluate, sl, 500, 0, box, block=2, max_steps=500, ftol=1e-13))(sl)
    )
    assert list(np.asarray(out.st.status)) == [solvers.DIVERGED] * 2
    assert np.all(np.asarray(out.st.x)[:, 0] > 46.0) and np.all(np.asarray(out.st.steps) < 100)
    assert solvers.STATUS_NAMES[solvers.DIVERGED] == "diverged"
