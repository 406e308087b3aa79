"""Batched Levenberg-Marquardt for small problems, with status codes instead of exceptions.

The solver is written for one start; batches come from ``vmap``. Every loop is bounded by
``max_steps`` and reports why it stopped (:data:`CONVERGED`, :data:`MAX_STEPS`,
:data:`NONFINITE`). The curvature is supplied by the caller with the value and gradient
(``fgh(x) -> (f, g, H)``): the exact Hessian (:func:`newton_fgh`) or, for sums of a robust
loss of residuals, the iteratively reweighted Gauss-Newton matrix (:func:`gauss_newton_fgh`),
which is positive semi-definite and majorises Huber's loss, so it makes fast progress far
from the optimum; the exact Hessian converges quadratically near it.

:func:`multistart` screens every start for a few Gauss-Newton steps, then polishes the
best ones to convergence with Newton steps: the strategy that measured fastest for the
paper's grids (see ``benchmarks/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "NONFINITE",
    "SCREENED",
    "STALLED",
    "STATUS_NAMES",
    "Solution",
    "levenberg_marquardt",
    "multistart",
    "newton_fgh",
    "gauss_newton_fgh",
]

#: The start converged: the last accepted step decreased the objective by less than
#: ``ftol`` relative, or no step could decrease it further and the gradient is small.
CONVERGED = 0
#: ``max_steps`` ran out before convergence.
MAX_STEPS = 1
#: The objective or its derivatives were not finite at the start.
NONFINITE = 2
#: Screened out: after the screening steps this start was not among the best ``polish``.
SCREENED = 3
#: No step decreases the objective any more, yet its gradient is not small (a kink or a
#: numerically flat ridge): the point is not a certified minimum.
STALLED = 4
STATUS_NAMES = ("converged", "max_steps", "nonfinite", "screened_out", "stalled")

_RUNNING = -1


class Solution(NamedTuple):
    """Result of one (or, batched, many) solves."""

    x: jnp.ndarray
    f: jnp.ndarray
    grad_norm: jnp.ndarray
    steps: jnp.ndarray
    status: jnp.ndarray


def newton_fgh(fun: Callable) -> Callable:
    """``x -> (f, grad, Hessian)`` of a scalar function, by autodiff."""

    def fgh(x):
        f, g = jax.value_and_grad(fun)(x)
        return f, g, jax.hessian(fun)(x)

    return fgh


def gauss_newton_fgh(fun: Callable, residuals: Callable, loss_terms: Callable) -> Callable:
    """``x -> (f, grad, J^T C J)``: exact value and gradient, reweighted Gauss-Newton curvature.

    For ``f = sum_i rho(z_i(x)) + (terms linear in x)`` the matrix ``J^T diag(c) J``, with
    ``J = dz/dx`` and ``c_i = rho'(z_i) / z_i``, is positive semi-definite and majorises
    the curvature of a Huber loss (iteratively reweighted least squares).

    Args:
        fun: the scalar objective ``x -> f``.
        residuals: ``x -> z`` (vector).
        loss_terms: ``z -> (f_z, psi, c)``; only ``c`` is used.
    """

    def fgh(x):
        f, g = jax.value_and_grad(fun)(x)
        z = residuals(x)
        J = jax.jacfwd(residuals)(x)
        _, _, c = loss_terms(z)
        return f, g, (J * c[:, None]).T @ J

    return fgh


class _State(NamedTuple):
    x: jnp.ndarray
    f: jnp.ndarray
    g: jnp.ndarray
    H: jnp.ndarray
    lam: jnp.ndarray
    nu: jnp.ndarray
    steps: jnp.ndarray
    status: jnp.ndarray


def cholesky_solve(A, b):
    """Solve ``A x = b`` for a small symmetric positive-definite ``A`` by Cholesky, written
    out in elementwise JAX operations (``P`` is the static size of ``b``).

    Not ``jnp.linalg.cholesky``: on CPU that calls a LAPACK kernel which, batched, waits for
    work it queued on XLA's intra-op thread pool. When several devices share the pool (forced
    host devices under ``shard_map``), every thread can end up waiting, and the process hangs.
    For the few parameters of a law the written-out factorisation is as fast (the 4500-start
    Chinchilla fit timed the same). Where ``A`` is not positive definite the result is not
    finite.
    """
    P = b.shape[-1]
    L = [[None] * P for _ in range(P)]
    for j in range(P):
        s = A[j, j] - sum(L[j][k] * L[j][k] for k in range(j))
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, P):
            L[i][j] = (A[i, j] - sum(L[i][k] * L[j][k] for k in range(j))) / L[j][j]
    y = [None] * P
    for i in range(P):
        y[i] = (b[i] - sum(L[i][k] * y[k] for k in range(i))) / L[i][i]
    x = [None] * P
    for i in reversed(range(P)):
        x[i] = (y[i] - sum(L[k][i] * x[k] for k in range(i + 1, P))) / L[i][i]
    return jnp.stack(x)


def _all_finite(*xs):
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in xs]))


def levenberg_marquardt(fgh: Callable, x0, *, max_steps: int, ftol=1e-13, gtol=1e-9, lam0=1e-3):
    """Minimise from ``x0`` with Levenberg-Marquardt steps on the curvature given by ``fgh``.

    Each step solves ``(H + lam diag(H)) d = -g`` (Marquardt's scaling) by Cholesky; a step
    that fails to factor or does not decrease ``f`` is rejected and ``lam`` grows, an
    accepted one shrinks ``lam`` by Nielsen's rule.

    Args:
        fgh: ``x -> (f, g, H)``.
        x0: start, shape ``(P,)``.
        max_steps: bound on the number of steps (a Python int: it sets the loop bound only).
        ftol: relative decrease of ``f`` below which an accepted step means convergence.
        gtol: when no step decreases ``f`` any more, the point counts as converged if
            ``max |g| <= gtol (1 + |f|)`` or the undamped model predicts a decrease below
            ``ftol |f|`` (a minimum of very high curvature), and as :data:`STALLED`
            otherwise.
        lam0: initial damping.

    Returns:
        A :class:`Solution`; ``status`` is :data:`CONVERGED`, :data:`MAX_STEPS`,
        :data:`NONFINITE` or :data:`STALLED`.
    """
    x0 = jnp.asarray(x0, jnp.float64)
    f0, g0, H0 = fgh(x0)
    ok0 = _all_finite(f0, g0, H0)
    P = x0.shape[0]
    eye = jnp.eye(P)

    def cond(s):
        return (s.status == _RUNNING) & (s.steps < max_steps)

    def body(s):
        diag = jnp.abs(jnp.diag(s.H))
        scale = jnp.maximum(diag, 1e-12 * jnp.max(diag) + 1e-300)
        A = s.H + s.lam * scale * eye
        d = cholesky_solve(A, -s.g)
        factored = jnp.all(jnp.isfinite(d))
        d = jnp.where(factored, d, 0.0)
        predicted = -(s.g @ d + 0.5 * d @ (s.H @ d))
        x_new = s.x + d
        f_new, g_new, H_new = fgh(x_new)
        actual = s.f - f_new
        accept = factored & _all_finite(f_new, g_new, H_new) & (actual > 0)
        rho = actual / jnp.where(predicted > 0, predicted, 1.0)
        lam = jnp.where(accept, s.lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), s.lam * s.nu)
        nu = jnp.where(accept, 2.0, 2.0 * s.nu)
        small = accept & (actual <= ftol * jnp.abs(s.f))
        exact = accept & (f_new == 0.0)
        stalled = lam > 1e20
        status = jnp.where(small | exact, CONVERGED, jnp.where(stalled, STALLED, _RUNNING))
        return _State(
            x=jnp.where(accept, x_new, s.x),
            f=jnp.where(accept, f_new, s.f),
            g=jnp.where(accept, g_new, s.g),
            H=jnp.where(accept, H_new, s.H),
            lam=lam,
            nu=nu,
            steps=s.steps + 1,
            status=status,
        )

    init = _State(
        x=x0,
        f=jnp.where(ok0, f0, jnp.inf),
        g=jnp.where(ok0, g0, 0.0),
        H=jnp.where(ok0, H0, eye),
        lam=jnp.asarray(lam0, jnp.float64),
        nu=jnp.asarray(2.0, jnp.float64),
        steps=jnp.asarray(0),
        status=jnp.where(ok0, _RUNNING, NONFINITE),
    )
    s = jax.lax.while_loop(cond, body, init)
    # A stall is a minimum when the gradient is negligible or when the undamped quadratic
    # model predicts a negligible decrease (a minimum of very high curvature).
    diag = jnp.abs(jnp.diag(s.H))
    left = 0.5 * s.g @ cholesky_solve(s.H + 1e-10 * jnp.maximum(diag, 1e-300) * eye, s.g)
    flat = (jnp.max(jnp.abs(s.g)) <= gtol * (1.0 + jnp.abs(s.f))) | (
        jnp.isfinite(left) & (left <= ftol * jnp.abs(s.f))
    )
    status = jnp.where(s.status == _RUNNING, MAX_STEPS, s.status)
    status = jnp.where((status == STALLED) & flat, CONVERGED, status)
    return Solution(x=s.x, f=s.f, grad_norm=jnp.max(jnp.abs(s.g)), steps=s.steps, status=status)


def multistart(
    screen_fgh: Callable,
    polish_fgh: Callable,
    x0s,
    *,
    screen_steps: int,
    polish: int | None,
    max_steps: int,
    ftol=1e-13,
) -> Solution:
    """Screen every start, polish the best, report every start.

    With ``polish=None`` (or at least as many as there are starts) every start is solved to
    convergence with ``polish_fgh``. Otherwise every start first takes ``screen_steps``
    steps with ``screen_fgh``; the ``polish`` starts with the lowest objective then continue
    with ``polish_fgh`` for up to ``max_steps`` steps; the others report
    :data:`SCREENED` (or :data:`NONFINITE`) with their screened objective.

    Args:
        screen_fgh, polish_fgh: ``x -> (f, g, H)`` for one start.
        x0s: starts, shape ``(S, P)``.
        screen_steps, polish, max_steps: static sizes of the two phases.
        ftol: relative tolerance of convergence.

    Returns:
        A :class:`Solution` with a leading axis of size ``S``.
    """
    n_starts = x0s.shape[0]
    polish_all = jax.vmap(lambda x: levenberg_marquardt(polish_fgh, x, max_steps=max_steps, ftol=ftol))
    if polish is None or polish >= n_starts:
        return polish_all(x0s)
    screened = jax.vmap(lambda x: levenberg_marquardt(screen_fgh, x, max_steps=screen_steps, ftol=ftol))(x0s)
    ranked = jnp.where(jnp.isfinite(screened.f), screened.f, jnp.inf)
    _, best = jax.lax.top_k(-ranked, polish)
    polished = polish_all(screened.x[best])
    status = jnp.where(screened.status == NONFINITE, NONFINITE, SCREENED)
    return Solution(
        x=screened.x.at[best].set(polished.x),
        f=screened.f.at[best].set(polished.f),
        grad_norm=screened.grad_norm.at[best].set(polished.grad_norm),
        steps=screened.steps.at[best].add(polished.steps),
        status=status.at[best].set(polished.status),
    )
