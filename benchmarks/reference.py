"""scipy's side of the comparisons: L-BFGS-B from every start on the objective jaxlaws
minimises, in the same coordinates and bounds (scipy is a benchmark and test dependency).

The gradient is ``jax.grad`` of the same objective (analytic, not finite differences), so
scipy gets the exact gradient it needs; tolerances are scipy's defaults or tight ones
(``ftol=1e-15, gtol=1e-12``), the only setting at which it reaches the optimum on most of
these problems.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from scipy.optimize import minimize

TIGHT = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 100000, "maxfun": 200000}


def scipy_multistart(prob, x0s, *, tight: bool, start_extra=None):
    """Run L-BFGS-B from every start (rows of the law's optimiser coordinates).

    Args:
        prob: a ``jaxlaws.problem.Problem``.
        x0s: starts, shape ``(S, P_law)``.
        tight: tight tolerances (``TIGHT``) or scipy's defaults.
        start_extra: starts of the nuisance parameters (one row per start), if any.

    Returns:
        ``(objectives per start, best x, seconds)``; the time excludes compiling the
        objective (one warm-up call).
    """
    f = prob.objective_fn()
    vg = jax.jit(jax.value_and_grad(f))
    lo, hi = (np.asarray(b) for b in prob.layout.box()[:2])
    bounds = [
        (None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b))
        for a, b in zip(lo, hi)
    ]

    def fun(x):
        v, g = vg(x)
        return float(v), np.asarray(g, np.float64)

    x0s = np.asarray(x0s, np.float64)
    if start_extra is not None:
        x0s = np.concatenate([x0s, np.asarray(start_extra, np.float64)], axis=1)
    x0s = np.clip(x0s, lo, hi)
    fun(x0s[0])  # compile outside the timing
    out, best = [], (np.inf, None)
    t = time.perf_counter()
    for x0 in x0s:
        with np.errstate(all="ignore"):
            r = minimize(fun, x0, method="L-BFGS-B", jac=True, bounds=bounds, options=TIGHT if tight else {})
        v = float(r.fun) if np.isfinite(r.fun) else np.inf
        out.append(v)
        if v < best[0]:
            best = (v, r.x)
    return np.array(out), best[1], time.perf_counter() - t


SLSQP_TIGHT = {"ftol": 1e-15, "maxiter": 2000}


def scipy_mixture(predict, x0s, lo, hi, *, omega, kl=0.0, prior=None, tight=True):
    """SLSQP from every start on ``omega . predict(w) + kl * KL(w || prior)`` subject to
    ``sum(w) = 1`` and ``lo <= w <= hi``: scipy's side of ``propose_mixture``.

    ``predict(w)`` is the law's prediction at one mixture, written by the caller (a
    ``jax.numpy`` function of ``w``); its gradient is ``jax.grad`` of the same objective.

    Returns:
        ``(best objective, best w, seconds)``, the time excluding compilation.
    """
    import jax.numpy as jnp
    from jax.scipy.special import xlogy

    omega = jnp.asarray(omega)
    k = len(lo)
    p = jnp.full(k, 1.0 / k) if prior is None else jnp.asarray(prior)

    def f(w):
        val = jnp.dot(omega, jnp.reshape(predict(w), (-1,)))
        return val + kl * jnp.sum(xlogy(w, w) - xlogy(w, p)) if kl else val

    vg = jax.jit(jax.value_and_grad(f))

    def fun(x):
        v, g = vg(x)
        return float(v), np.asarray(g, np.float64)

    fun(np.full(k, 1.0 / k))
    cons = [{"type": "eq", "fun": lambda x: np.sum(x) - 1.0, "jac": lambda x: np.ones_like(x)}]
    bounds = list(zip(np.asarray(lo, float), np.asarray(hi, float)))
    best = (np.inf, None)
    t = time.perf_counter()
    for x0 in np.asarray(x0s, np.float64):
        x0 = np.clip(x0, lo, hi)
        with np.errstate(all="ignore"):
            r = minimize(
                fun,
                x0,
                jac=True,
                method="SLSQP",
                bounds=bounds,
                constraints=cons,
                options=SLSQP_TIGHT if tight else {},
            )
        feasible = abs(np.sum(r.x) - 1) <= 1e-9 and np.all(r.x >= lo - 1e-9) and np.all(r.x <= hi + 1e-9)
        if feasible and np.isfinite(r.fun) and r.fun < best[0]:
            best = (float(r.fun), r.x)
    return best[0], best[1], time.perf_counter() - t
