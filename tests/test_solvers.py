"""The solvers: Levenberg-Marquardt with closed bounds, the linear solve, and the slot
scheduler that screens and polishes many tables' starts in one loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlaws import solvers


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
    s = solvers.lm_update(s, f, g, H, H, box, max_steps=10, ftol=1e-13, gtol=1e-9)
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


# --- the slot scheduler ------------------------------------------------------------------


def _tables_fgh(x, table, exact):
    """A double well per table: minima at x = +-c (value 0 and table's offset)."""
    c, off = table["c"], table["off"]
    f = (x[0] ** 2 - c**2) ** 2 + off * jax.nn.sigmoid(x[0]) + x[1] ** 2
    g = jax.grad(lambda z: (z[0] ** 2 - c**2) ** 2 + off * jax.nn.sigmoid(z[0]) + z[1] ** 2)(x)
    H = jax.hessian(lambda z: (z[0] ** 2 - c**2) ** 2 + off * jax.nn.sigmoid(z[0]) + z[1] ** 2)(x)
    return f, g, H, H


def _solve(x0s, tables, **plan):
    plan = solvers.Plan(
        **{"screen_steps": 3, "first": 2, "cap": len(x0s), "slots": 4, "max_steps": 100, **plan}
    )
    fn = jax.jit(
        lambda x0s, tables: solvers.solve_tables(_tables_fgh, x0s, tables, solvers.make_box(2), plan=plan)
    )
    return jax.device_get(fn(jnp.asarray(x0s), tables))


X0 = np.array(
    [[3.0, 1.0], [2.5, -1.0], [-2.0, 0.5], [-3.0, 0.0], [0.4, 2.0], [np.inf, 0.0], [1.5, 1.0], [-1.5, 1.0]]
)


def test_every_start_is_reported_with_its_status():
    tables = {"c": jnp.array([1.0]), "off": jnp.array([0.1])}
    sol = _solve(X0, tables, first=8, cap=8)  # polish every start
    status = np.asarray(sol.status[0])
    assert status[5] == solvers.NONFINITE
    assert (status == solvers.CONVERGED).sum() == 7
    # the lower well is at x0 = -1 (the sigmoid's offset is smaller there)
    best = int(np.nanargmin(np.where(np.isfinite(sol.f[0]), sol.f[0], np.inf)))
    assert sol.x[0, best, 0] == pytest.approx(-1.0, abs=0.05)


def test_rounds_widen_until_the_best_is_confirmed_and_stop():
    tables = {"c": jnp.array([1.0]), "off": jnp.array([0.1])}
    sol = _solve(X0, tables)  # rounds of 2, 4, 8 starts in rank order
    status = np.asarray(sol.status[0])
    # the two best screened starts reach the lower well; the round of 4 finds nothing lower
    assert int(sol.polished[0]) == 4
    polished = (status == solvers.CONVERGED) | (status == solvers.STALLED) | (status == solvers.MAX_STEPS)
    assert polished.sum() == 4
    assert set(status[~polished]) <= {solvers.SCREENED, solvers.NONFINITE}
    assert status[5] == solvers.NONFINITE  # the infinite start
    f = np.where(status == solvers.CONVERGED, sol.f[0], np.inf)
    assert (f <= f.min() + 1e-9).sum() >= 2
    # a start left unpolished reports its screened objective, above the best
    assert np.all(sol.f[0][status == solvers.SCREENED] > f.min())
    # with one round of 2 starts only (cap 2), a table stops there
    assert int(_solve(X0, tables, cap=2).polished[0]) == 2


def test_a_tables_result_does_not_depend_on_its_batch_mates():
    both = {"c": jnp.array([1.0, 2.0]), "off": jnp.array([0.1, -0.3])}
    together = _solve(X0, both)
    for t in range(2):
        alone = _solve(X0, {k: v[t : t + 1] for k, v in both.items()})
        for field in ("x", "f", "status", "steps"):
            np.testing.assert_array_equal(
                np.asarray(getattr(together, field))[t], np.asarray(getattr(alone, field))[0]
            )


def test_a_slow_start_far_above_the_best_is_abandoned_and_a_close_one_resumes():
    tables = {"c": jnp.array([1.0]), "off": jnp.array([0.1])}
    x0 = np.array([[-1.05, 0.0], [30.0, 0.0], [1.2, 1.0], [-0.9, 0.5]])
    kw = dict(screen_steps=0, first=4, cap=4, max_steps=100)
    full = _solve(x0, tables, **kw)
    paused = _solve(x0, tables, soft_steps=3, **kw)
    status, steps = np.asarray(paused.status[0]), np.asarray(paused.steps[0])
    # polishing every start to the end: the lower well (0.0269) from starts 0 and 3, the
    # upper one (0.0731) from 1 and 2, in 5 to 15 steps
    assert list(np.asarray(full.status[0])) == [0, 0, 0, 0]
    # after 3 steps, starts 1 and 2 are more than twice the best: abandoned there
    assert list(status[[1, 2]]) == [solvers.ABANDONED] * 2 and list(steps[[1, 2]]) == [3, 3]
    assert solvers.STATUS_NAMES[solvers.ABANDONED] == "abandoned"
    # start 3, paused close to the best, resumed and converged as it would have
    assert status[3] == solvers.CONVERGED and steps[3] == int(full.steps[0, 3]) > 3
    np.testing.assert_allclose(paused.f[0, [0, 3]], full.f[0, [0, 3]], rtol=1e-12)
