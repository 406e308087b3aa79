"""The batched Levenberg-Marquardt solver: convergence, status codes, batching."""

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


@pytest.mark.parametrize("polish", [None, 2])
def test_multistart_reports_every_start(polish):
    fgh = solvers.newton_fgh(rosenbrock)
    x0s = jnp.array([[-1.2, 1.0], [2.0, 2.0], [0.0, -1.0], [5.0, 5.0], [jnp.inf, 0.0]])
    sol = solvers.multistart(fgh, fgh, x0s, screen_steps=3, polish=polish, max_steps=200)
    status = np.asarray(sol.status)
    assert status[4] == solvers.NONFINITE
    assert (status == solvers.CONVERGED).sum() == (4 if polish is None else 2)
    if polish is not None:
        assert (status == solvers.SCREENED).sum() == 2
    assert np.nanmin(np.asarray(sol.f)) < 1e-20


@pytest.mark.parametrize("P", [1, 2, 5, 13])
def test_cholesky_solve_matches_numpy(P):
    rng = np.random.default_rng(P)
    M = rng.normal(size=(P, P))
    A = M @ M.T + P * np.eye(P)
    b = rng.normal(size=P)
    x = solvers.cholesky_solve(jnp.asarray(A), jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(A, b), rtol=1e-12, atol=1e-12)
    # batched like the solver uses it
    xs = jax.vmap(solvers.cholesky_solve)(jnp.stack([A, 2 * A]), jnp.stack([b, b]))
    np.testing.assert_allclose(np.asarray(xs[1]), np.linalg.solve(2 * A, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("A", [[[1.0, 2.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]]])
def test_cholesky_solve_is_not_finite_where_not_positive_definite(A):
    x = solvers.cholesky_solve(jnp.asarray(A), jnp.ones(2))
    assert not np.all(np.isfinite(np.asarray(x)))
