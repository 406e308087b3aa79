"""Propose a data mixture: minimise a fitted mixture law's predicted metrics over the simplex.

Given a law with an input on the simplex (the proportions of the training mixture, fitted
from a swarm of runs, :mod:`jaxlaws.swarm`), :func:`propose_mixture` finds the proportions
``w`` that minimise a weighted sum of its predicted metrics,

.. math::
    \\min_w \\; \\sum_m \\omega_m\\, \\hat L_m(w, \\ldots) + \\lambda\\, \\mathrm{KL}(w \\,\\|\\, p)
    \\quad \\text{s.t.}\\quad \\sum_i w_i = 1,\\;\\; l_i \\le w_i \\le u_i,\\;\\;
    w_i D \\le e_{\\max} U_i,

with, per domain ``i``, a minimum and maximum weight ``l_i, u_i`` and a repetition cap: at a
budget of ``D`` tokens, domain ``i`` with ``U_i`` unique tokens is seen ``w_i D / U_i``
times, at most ``e_max``. Repetition can instead be priced in by Muennighoff et al.'s
effective data per domain (``repetition="effective"``): domain ``i`` contributes
``D'_i = U_i + U_i R^* (1 - e^{-R_i/R^*})`` effective tokens, ``R_i = w_i D / U_i - 1``
repetitions, and the law is evaluated at the effective proportions ``D'_i / \\sum_j D'_j``
(and at ``\\sum_j D'_j`` tokens if it takes a token input).

The feasible set (a box intersected with the simplex) is handled exactly: every iterate is
the Euclidean projection onto it (computed in closed form from the sorted breakpoints), and
each step is a Newton step on the free coordinates with the sum constraint, eigenvalues of
the reduced Hessian made positive (so a non-convex law of a user's gets descent steps too),
followed by a projected Armijo line search. Every (parameter set, budget, KL strength,
start) runs in one JIT-compiled, vmapped call; the capped and the uncapped problem are
solved in the same batch, so the report of what the caps cost comes at no extra call.

Pools of repeated data (a law declaring :attr:`~jaxlaws.laws.Law.passes`, such as Goyal et
al.'s data-filtering mixture, budgets in samples and ``unique_tokens`` the pools' sizes) go
through the same engine: pool ``i`` is passed ``w_i n / N_i`` times, and the law has a kink
at every whole pass, where optima often sit. Between kinks the law is smooth, so the solver
works piece by piece and checks the exact one-sided condition at the kinks (see
:func:`_solve`); the report adds the passes per pool, the pools on a whole pass (``bound``
3) and the authors' top-k mixtures with what the optimum gains over the best of them.

Bootstrap samples of the law (:func:`jaxlaws.bootstrap`) give the distribution of the
optimal mixture: one problem per resample, in the same call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws.laws import Law
from jaxlaws.laws.data_constrained import _repetitions, _saturating
from jaxlaws.progress import in_chunks
from jaxlaws.sharding import local_devices, map_batch, padded_size

__all__ = ["MixtureProposal", "propose_mixture", "project_capped_simplex", "R_STAR"]

#: Muennighoff et al. 2023's fitted R*_D (``LAWS.md``, data-constrained section): the
#: repetitions after which repeated tokens are worth 1 - 1/e of new ones.
R_STAR = 15.387756

#: Every weight is kept at least this far from zero (unless its maximum is lower): the
#: gradients of a KL pull and of laws with ``w ** gamma`` terms are infinite at 0. What it
#: can cost is ``1e-12`` times a gradient, far below any tolerance.
WEIGHT_FLOOR = 1e-12

#: Coordinates this close to a bound (at most; less near the optimum), and pushed towards
#: it by the gradient, are held at it for a step (Bertsekas' epsilon-active set).
ACTIVE_EPS = 1e-2

#: A first-order gain below this fraction of the objective is rounding: the proposal is
#: stationary to float64.
FLAT_RTOL = 1e-15

STATUS = ("converged", "max_steps", "not_finite", "stalled")

#: Candidate starts per start solved: ``SCREEN * starts`` Dirichlet draws are evaluated and
#: the ``starts`` lowest (with the uniform mixture) are solved.
SCREEN = 4


# ----------------------------------------------------------------------------------------
# The feasible set
# ----------------------------------------------------------------------------------------


def project_capped_simplex(v, lo, hi):
    """Euclidean projection of ``v`` onto ``{w : sum(w) = 1, lo <= w <= hi}``.

    The projection is ``clip(v - tau, lo, hi)`` for the ``tau`` at which it sums to one;
    the sum is piecewise linear in ``tau`` between the breakpoints ``v - hi`` and ``v - lo``,
    so ``tau`` is found exactly by sorting them. Needs ``sum(lo) <= 1 <= sum(hi)``.
    """
    v, lo, hi = jnp.asarray(v), jnp.asarray(lo), jnp.asarray(hi)
    bps = jnp.sort(jnp.concatenate([v - hi, v - lo]))
    sums = jnp.sum(jnp.clip(v[None, :] - bps[:, None], lo, hi), axis=1)  # non-increasing
    j = jnp.clip(jnp.sum(sums >= 1.0) - 1, 0, bps.shape[0] - 2)
    t0, t1, s0, s1 = bps[j], bps[j + 1], sums[j], sums[j + 1]
    tau = jnp.where(s0 > s1, t0 + (s0 - 1.0) * (t1 - t0) / jnp.where(s0 > s1, s0 - s1, 1.0), t0)
    w = jnp.clip(v - tau, lo, hi)
    # rounding: put the last ulp of the sum on the coordinates strictly inside their bounds
    inside = (w > lo) & (w < hi)
    n_in = jnp.sum(inside).astype(w.dtype)
    w = jnp.where(inside, w + (1.0 - jnp.sum(w)) / jnp.maximum(n_in, 1.0), w)
    return jnp.clip(w, lo, hi)


# ----------------------------------------------------------------------------------------
# The solver: projected Newton on the capped simplex
# ----------------------------------------------------------------------------------------


def _reduced_direction(g, H, free, lam):
    """Newton direction on ``{d : d_i = 0 off the free set, sum(d) = 0}`` with damping
    ``lam`` (Levenberg-Marquardt, relative to the Hessian's scale), by Cholesky.

    Where the damped reduced Hessian is not positive definite (a law that is not convex
    there), the direction is the scaled projected gradient and ``ok`` is false, so that the
    caller raises the damping.
    """
    k = g.shape[0]
    fm = free.astype(g.dtype)
    nf = jnp.maximum(jnp.sum(fm), 1.0)
    Q = jnp.diag(fm) - jnp.outer(fm, fm) / nf  # projector onto the subspace
    M = Q @ H @ Q
    scale = jnp.maximum(jnp.max(jnp.abs(jnp.diag(M))), jnp.finfo(g.dtype).tiny)
    M = M + scale * (jnp.eye(k) - Q) + (lam + 1e-12) * scale * jnp.eye(k)
    Qg = Q @ g
    chol = jnp.linalg.cholesky(M)
    d = -Q @ jax.scipy.linalg.cho_solve((chol, True), Qg)
    ok = jnp.all(jnp.isfinite(d)) & (jnp.dot(g, d) < 0)
    return jnp.where(ok, d, -Qg / (scale * (1.0 + lam))), ok


def _kkt(w, g, f, lo, hi, scale):
    """Whether ``w`` is stationary: the scaled projected-gradient step ``y - w`` (0 exactly
    at a KKT point) is shorter than ``xtol``, or what the step would gain, ``g . (w - y)``,
    is below the rounding of ``f`` (a law whose metrics no longer change in float64, such as
    an exponential term underflowing, has nothing left to minimise). Returns the step's
    length and the flatness test."""
    y = project_capped_simplex(w - g / scale, lo, hi)
    flat = jnp.dot(g, w - y) <= FLAT_RTOL * jnp.abs(f)
    return jnp.max(jnp.abs(w - y)), flat


#: Step lengths tried at once along a Newton direction (1, 1/2, ..., 1/32); the longest
#: that meets the Armijo condition is taken. Where none does, the damping grows.
TRIAL_STEPS = 6


def _solve(fun, w0, lo, hi, width=None, *, max_steps, xtol):
    """Minimise ``fun`` over the capped simplex ``{sum w = 1, lo <= w <= hi}`` from ``w0``:
    ``(w, f, steps, status, kkt)``.

    One bounded loop of one step function (as optimistix's solvers): each step takes the
    gradient and Hessian at the current point and either moves it by a projected Newton
    step (binding coordinates to their bound, a Newton step with the sum constraint on the
    free ones, eigenvalues of the reduced Hessian made positive by Levenberg-Marquardt
    damping, and the longest of :data:`TRIAL_STEPS` step lengths, tried at once, that meets
    the Armijo condition), or, at a stationary point, decides what comes next.

    ``width``, for a law kinked at whole passes (:attr:`~jaxlaws.laws.Law.passes`): kinks
    in ``w_i`` at every multiple of ``width[i]`` (``inf``: none). Between kinks the law is
    smooth, so the box splits into pieces ``J_i width_i <= w_i <= (J_i + 1) width_i``, on
    each of which the problem is the smooth one above. A kink is a valley (a pass is worth
    less than the one before), so optima often sit on kinks. Stage 0 takes Newton steps on
    the whole box whose model adds the kinks' curvature (each partial's jump at the next kink,
    spread over a piece), which brings ``w0`` to within a fraction of a piece of the
    optimum; stage 1 solves on the piece holding that point, derivatives taken a few
    hundred ulps inside the piece (so a coordinate on its face gets the piece's one-sided
    derivative). At the piece's optimum it compares the one-sided derivatives: where moving
    mass from the coordinate with the largest left derivative ``g-`` to the one with the
    smallest right derivative ``g+`` lowers the objective (``g-_j > g+_i``), every
    coordinate on a face that takes part moves to the neighbouring piece and the solve goes
    on from the same point (so the objective never rises); it stops when no move gains. The
    optimum then meets the exact first-order condition of the kinked problem,
    ``max g- <= min g+`` over the coordinates that can move down and up, and ``kkt`` is that
    condition's violation over the Hessian's scale (without kinks, the length of the scaled
    projected-gradient step; 0 at a KKT point).
    """
    k_dim = w0.shape[0]
    fixed = hi <= lo  # a domain held at one value: its derivatives may be infinite there
    kinks = width is not None
    if kinks:
        kinked = jnp.isfinite(width)
        h = jnp.where(kinked, width, 1.0)
        # far inside a piece (>= 1e-11 of its width) and far above rounding (>= 1e-14 of w)
        eps = jnp.where(kinked, jnp.minimum(jnp.maximum(1e-11 * h, 1e-14), 0.25 * h), 0.0)
        coarse = jnp.where(jnp.any(kinked), 0.1 * jnp.min(h), xtol)  # a tenth of a piece
        max_moves = 4 * k_dim + 8
    else:
        kinked, h, eps, coarse, max_moves = jnp.zeros(k_dim, bool), jnp.ones(k_dim), jnp.zeros(k_dim), xtol, 0
    g_of = jax.grad(fun)
    trial = 0.5 ** jnp.arange(TRIAL_STEPS, dtype=w0.dtype)

    def cond(s):
        return (~s["done"]) & (s["k"] < max_steps) & (s["moves"] <= max_moves)

    def body(s):
        w, f, J, lam, stage = s["w"], s["f"], s["J"], s["lam"], s["stage"]
        whole = stage == 0
        plo = jnp.where(kinked & ~whole, jnp.maximum(lo, J * h), lo)
        phi = jnp.maximum(jnp.where(kinked & ~whole, jnp.minimum(hi, (J + 1.0) * h), hi), plo)
        face_lo, face_hi = kinked & (plo > lo), kinked & (phi < hi)
        v = jnp.clip(w, jnp.where(face_lo, plo + eps, -jnp.inf), jnp.where(face_hi, phi - eps, jnp.inf))
        H, g = jax.hessian(fun)(v), g_of(v)
        if kinks:
            # one-sided partials: at the kink above w in stage 0 (the kinks' curvature), at
            # w itself in stage 1 (the test for a move)
            centre = jnp.where(whole, (jnp.floor(w / h) + 1.0) * h, w)
            # never below the lower bound (a weight at its floor has no left side; the law
            # or a KL pull may not be defined below 0)
            sides = jax.vmap(g_of)(jnp.stack([centre + eps, jnp.maximum(centre - eps, lo)]))
            gp, gm = sides[0], sides[1]
            jump = jnp.where(kinked, jnp.maximum(gp - gm, 0.0) / h, 0.0)
            H = H + jnp.diag(jnp.where(whole, jump, 0.0))
        H = jnp.where(fixed[:, None] | fixed[None, :], 0.0, H)
        g = jnp.where(fixed, 0.0, g)
        scale = jnp.maximum(jnp.max(jnp.abs(jnp.diag(H))), 1e-300)
        step, flat = _kkt(w, g, f, plo, phi, scale)

        # the Newton step on the current box
        y = project_capped_simplex(w - g / scale, plo, phi)
        act = jnp.minimum(ACTIVE_EPS, jnp.max(jnp.abs(w - y)))
        at_lo = (w <= plo + act) & (y <= plo)
        at_hi = (w >= phi - act) & (y >= phi)
        free = ~(at_lo | at_hi)
        # binding coordinates go to their bound; the free ones keep the sum and take the
        # Newton step of the rest, on the subspace that keeps both
        delta = jnp.where(at_lo, plo - w, jnp.where(at_hi, phi - w, 0.0))
        n_free = jnp.maximum(jnp.sum(free).astype(w.dtype), 1.0)
        base = delta + jnp.where(free, -jnp.sum(delta) / n_free, 0.0)
        d, newton = _reduced_direction(g + H @ base, H, free, lam)
        d = base + d
        wt = jax.vmap(lambda t: project_capped_simplex(w + t * d, plo, phi))(trial)
        ft = jax.vmap(fun)(wt)
        # Armijo, with the rounding of f as slack: near a minimum the gain of a step is below
        # what f resolves, and the gradient still steers it
        slack = 4.0 * jnp.finfo(f.dtype).eps * jnp.abs(f)
        armijo = jnp.isfinite(ft) & (ft <= f + 1e-4 * (wt - w) @ g + slack)
        # flat to rounding: stationary, unless a short full Newton step is still accepted
        # (near a smooth minimum the gradient resolves w far below what f resolves)
        converging = armijo[0] & (jnp.max(jnp.abs(wt[0] - w)) <= 1e-6)
        stationary = (step <= jnp.where(whole, coarse, xtol)) | (flat & ~converging)
        ok = jnp.any(armijo) & ~stationary
        i = jnp.argmax(armijo)
        moved = jnp.max(jnp.abs(wt[i] - w))
        grow = (~jnp.any(armijo)) | (~newton)
        lam_new = jnp.where(grow, jnp.maximum(lam * 100.0, 1e-6), jnp.where(i == 0, lam * 0.1, lam))
        lam_new = jnp.where(lam_new < 1e-14, 0.0, lam_new)
        stuck = (~ok) & ~stationary & (lam_new > 1e12)

        # at a stationary point: stage 0 hands over to the pieces; stage 1 moves to the
        # neighbouring pieces where the one-sided derivatives say it gains, else stops
        out = dict(s)
        if kinks:
            # a coordinate within rounding of its bound cannot move across it
            can_up, can_dn = w < hi - WEIGHT_FLOOR, w > lo + WEIGHT_FLOOR
            best_up = jnp.min(jnp.where(can_up, gp, jnp.inf))
            best_dn = jnp.max(jnp.where(can_dn, gm, -jnp.inf))
            gap = best_dn - best_up
            viol = jnp.maximum(jnp.where(jnp.isfinite(gap), gap, 0.0), 0.0)
            flat_k = viol * jnp.max(hi - lo) <= FLAT_RTOL * jnp.abs(f)
            tol = 1e-10 * jnp.maximum(jnp.max(jnp.abs(gp)), jnp.max(jnp.abs(gm)))
            top = face_hi & (w >= phi - 1e-9 * h) & (gp < best_dn - tol)
            bottom = face_lo & (w <= plo + 1e-9 * h) & (gm > best_up + tol)
            move = jnp.any(top | bottom)
            # stage 0 hands over once within a tenth of a piece (stationary at that scale,
            # or its steps that short, or its line search failing near a kink)
            w_new = jnp.where(ok, wt[i], w)
            handover = whole & (stationary | (ok & (moved <= coarse)) | ~jnp.any(armijo) | stuck)
            piece_end = ~whole & stationary
            J_here = jnp.where(kinked, jnp.floor(w_new / h + 1e-9), 0.0)
            J_moved = J + top.astype(J.dtype) - bottom.astype(J.dtype)
            out["J"] = jnp.where(handover, J_here, jnp.where(piece_end, J_moved, J))
            out["stage"] = jnp.where(handover, 1, stage)
            out["moves"] = s["moves"] + (piece_end & move).astype(jnp.int32)
            finished = piece_end & ~move
            stuck = stuck & ~whole
            out["kkt"] = jnp.where(piece_end, jnp.where(flat_k, 0.0, viol / scale), step)
            out["flat"] = piece_end & flat_k
            out["lam"] = jnp.where(stationary | handover, 0.0, lam_new)
        else:
            finished = stationary
            out["kkt"], out["flat"] = step, flat
            out["lam"] = jnp.where(stationary, lam, lam_new)
        out["w"] = jnp.where(ok, wt[i], w)
        out["f"] = jnp.where(ok, ft[i], f)
        out["k"] = s["k"] + (~stationary).astype(jnp.int32)
        # a full Newton step this short has converged (a short step after backtracking has not)
        small = ok & (i == 0) & (moved <= xtol) & ((stage == 1) if kinks else True)
        out["done"] = finished | stuck | ~jnp.isfinite(out["f"]) | small
        return out

    w0 = project_capped_simplex(w0, lo, hi)
    f0 = fun(w0)
    init = dict(
        w=w0,
        f=f0,
        J=jnp.zeros_like(w0),
        lam=jnp.zeros((), w0.dtype),
        stage=jnp.zeros((), jnp.int32),
        k=jnp.zeros((), jnp.int32),
        moves=jnp.zeros((), jnp.int32),
        done=~jnp.isfinite(f0),
        kkt=jnp.asarray(jnp.inf, w0.dtype),
        flat=jnp.zeros((), bool),
    )
    s = jax.lax.while_loop(cond, body, init)
    ok = (s["kkt"] <= 1e3 * xtol) | s["flat"]
    if kinks:
        ok = ok & (s["stage"] == 1) & s["done"]
    out_of_steps = (s["k"] >= max_steps) | (s["moves"] > max_moves)
    status = jnp.where(~jnp.isfinite(s["f"]), 2, jnp.where(ok, 0, jnp.where(out_of_steps, 1, 3)))
    return s["w"], s["f"], s["k"], status, s["kkt"]


# ----------------------------------------------------------------------------------------
# The objective: a law's predicted metrics at a mixture
# ----------------------------------------------------------------------------------------


def _predict(law, spec, w, params, budget, fixed, priced, unique, r_star):
    """The law's predicted metrics at mixture ``w``, shape ``(m,)``.

    ``spec`` says, per law input in order, ``"mix"`` (the simplex input), ``"budget"`` (fed
    the token budget), ``"unique"`` (fed the unique tokens or items per domain, a pool
    law's sizes) or ``"fixed"`` (the next value of ``fixed``). Where ``priced`` is set,
    repetition is priced in by effective data per domain (Muennighoff et al. 2023).
    """
    seen = w * budget
    # Muennighoff's D' = U + U R* (1 - exp(-R / R*)) where the domain repeats; the tokens
    # themselves where it does not (so a domain held at 0 has no 0 / 0)
    eff = jnp.where(seen > unique, _saturating(unique, _repetitions(seen, unique), r_star), seen)
    tokens = jnp.where(priced, jnp.sum(eff), budget)
    h = jnp.where(priced, eff / jnp.sum(eff), w)
    args, j = [], 0
    for kind in spec:
        if kind == "mix":
            args.append(h[None, :])
        elif kind == "budget":
            args.append(jnp.reshape(tokens, (1,)))
        elif kind == "unique":
            args.append(unique[None, :])
        else:
            args.append(jnp.reshape(fixed[j], (1,)))
            j += 1
    return jnp.reshape(law(params, *args), (-1,))


def _objective(law, spec):
    """``f(w, ...)``: the weighted predicted metrics plus ``lam * KL(w || prior)``."""

    def fun(w, params, budget, fixed, priced, lam, prior, unique, omega, r_star):
        pred = _predict(law, spec, w, params, budget, fixed, priced, unique, r_star)
        kl = jnp.sum(jax.scipy.special.xlogy(w, w) - jax.scipy.special.xlogy(w, prior))
        return jnp.dot(omega, pred) + jnp.where(lam > 0, lam * kl, 0.0)

    return fun


def _batch(
    params,
    budget,
    fixed,
    priced,
    lam,
    lo,
    hi,
    starts,
    prior,
    unique,
    omega,
    r_star,
    *,
    law,
    spec,
    max_steps,
    n_starts,
    n_topk,
):
    """One problem per leading row of ``params, budget, fixed, priced, lam, lo, hi, starts``.

    ``starts`` holds candidate starts per problem ``(problems, C, k)``; the ``n_starts``
    with the lowest objective (the first candidate, the uniform mixture, always among them
    when two or more are solved) are solved, and the best result is kept. For a law kinked at whole passes
    (:attr:`Law.passes`) every start is solved piece by piece (:func:`_solve`), and the
    objective at the ``n_topk`` top-k mixtures (the first ``k`` domains mixed uniformly)
    is returned beside it.
    """
    fun = _objective(law, spec)
    n_problems, n_cand, k = starts.shape

    def f_at(p, b, fx, pr, la, w):
        return fun(w, p, b, fx, pr, la, prior, unique, omega, r_star)

    def each(tree, times):  # every problem's row repeated for each of its starts
        return jax.tree_util.tree_map(lambda a: jnp.repeat(a, times, axis=0), tree)

    per_problem = (params, budget, fixed, priced, lam)
    x0 = jax.vmap(project_capped_simplex)(starts.reshape(-1, k), *each((lo, hi), n_cand))
    x0 = x0.reshape(n_problems, n_cand, k)
    if n_cand > n_starts:  # screen the candidates by their objective
        fc = jax.vmap(f_at)(*each(per_problem, n_cand), x0.reshape(-1, k)).reshape(n_problems, n_cand)
        fc = jnp.where(jnp.isfinite(fc), fc, jnp.inf)
        if n_starts > 1:  # the first (the uniform mixture) stays
            fc = fc.at[:, 0].set(-jnp.inf)
        x0 = jnp.take_along_axis(x0, jnp.argsort(fc, axis=1)[:, :n_starts, None], axis=1)

    def solve(p, b, fx, pr, la, low, up, w0):
        width = jnp.where(pr, jnp.inf, unique / b) if law.passes is not None else None
        return _solve(partial(f_at, p, b, fx, pr, la), w0, low, up, width, max_steps=max_steps, xtol=1e-10)

    # one flat batch of (problem, start) pairs: one level of vmap traces and compiles fastest
    w, fv, steps, status, kkt = (
        a.reshape(n_problems, n_starts, *a.shape[1:])
        for a in jax.vmap(solve)(*each((*per_problem, lo, hi), n_starts), x0.reshape(-1, k))
    )
    fok = jnp.where(jnp.isfinite(fv), fv, jnp.inf)
    i = jnp.argmin(fok, axis=1)
    best = fok[jnp.arange(n_problems), i]
    same = jnp.sum(jnp.abs(fok - best[:, None]) <= 1e-9 * jnp.maximum(jnp.abs(best), 1e-300)[:, None], axis=1)

    def pick(a):
        return a[jnp.arange(n_problems), i]

    w_best = pick(w)
    metrics = jax.vmap(lambda p, b, fx, pr, wb: _predict(law, spec, wb, p, b, fx, pr, unique, r_star))(
        params, budget, fixed, priced, w_best
    )
    if n_topk:
        rows = jnp.tile(topk_weights(k)[:n_topk], (n_problems, 1))
        topk = jax.vmap(f_at)(*each(per_problem, n_topk), rows).reshape(n_problems, n_topk)
    else:
        topk = jnp.zeros((n_problems, 0))
    return w_best, pick(fv), metrics, pick(steps), pick(status), pick(kkt), same, topk


def topk_weights(n_pools: int) -> jnp.ndarray:
    """Rows ``k = 1..P``: the first ``k`` pools mixed uniformly (Goyal et al.'s top-k
    strategy, pools in quality order)."""
    k = jnp.arange(1, n_pools + 1, dtype=jnp.float64)[:, None]
    return jnp.where(jnp.arange(n_pools, dtype=jnp.float64)[None, :] < k, 1.0 / k, 0.0)


# ----------------------------------------------------------------------------------------
# The front function
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class MixtureProposal:
    """The outcome of :func:`propose_mixture`.

    Arrays are indexed ``[kl strength, budget, ...]``: ``L`` strengths of the KL pull (one
    when ``kl`` is a number), ``B`` budgets (one when none is given), ``k`` domains and ``m``
    predicted metrics.

    Attributes:
        domains: domain names (the columns the law's proportions were fitted on).
        outputs: names of the predicted metrics.
        budgets: token budgets, ``(B,)`` (NaN where the law needs none and none was given).
        kl: strengths of the KL pull, ``(L,)``.
        weights: the proposed mixture, ``(L, B, k)``.
        objective: the minimised objective (weighted metrics plus the KL pull), ``(L, B)``.
        metrics: predicted metrics at ``weights``, ``(L, B, m)``.
        epochs: implied passes over each domain ``w_i D / U_i``, ``(L, B, k)`` (``None``
            without unique-token counts).
        bound: ``(L, B, k)``: 0 free, -1 at its minimum weight, 1 at its maximum weight, 2 at
            its repetition cap, 3 (pools) on a kink of the law: a whole number of passes.
        uncapped_weights, uncapped_objective: the optimum without repetition caps or pricing
            (minimum and maximum weights kept); the same as the proposal when there are none.
        gap: ``objective - uncapped_objective`` (>= 0 up to rounding): what repetition costs.
        status: ``"converged"``, ``"max_steps"``, ``"not_finite"`` or ``"stalled"`` (stopped
            short of a KKT point with steps left: no step length lowers the objective) per
            problem, ``(L, B)``.
        steps: solver steps of the best start; ``n_best``: starts that reached the best.
        kkt: scaled projected-gradient residual at the proposal (0 at a KKT point; a
            proposal is also converged where what a step could gain is below the rounding of
            the objective, so a flat law's weights may be anywhere on its flat set).
        max_epochs: the repetition cap, if one was set.
        topk_objective: for pools (a law with :attr:`~jaxlaws.laws.Law.passes`), the
            objective of the top-k mixtures (the first ``k`` pools mixed uniformly, Goyal et
            al.'s strategy), ``(L, B, k)``; :attr:`best_k` and :attr:`topk_gain` read it.
        samples: for a bootstrap, the proposal per converged resample: a dict of
            ``weights (S, L, B, k)``, ``objective (S, L, B)``, ``status (S, L, B)``,
            ``n_failed`` (resamples left out: a proposal of theirs did not converge) and,
            with unique tokens, ``epochs``; else ``None``.
    """

    domains: tuple
    outputs: tuple
    budgets: np.ndarray
    kl: np.ndarray
    weights: np.ndarray
    objective: np.ndarray
    metrics: np.ndarray
    epochs: np.ndarray | None
    bound: np.ndarray
    uncapped_weights: np.ndarray
    uncapped_objective: np.ndarray
    gap: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    n_best: np.ndarray
    kkt: np.ndarray
    samples: dict | None = None
    max_epochs: float | None = None
    topk_objective: np.ndarray | None = None

    @property
    def best_k(self) -> np.ndarray | None:
        """For pools (a law with :attr:`~jaxlaws.laws.Law.passes`, pools in quality order,
        best first): the ``k`` whose top-k mixture (the best ``k`` pools mixed uniformly,
        Goyal et al.'s strategy) has the lowest objective, ``(L, B)``; else ``None``."""
        return None if self.topk_objective is None else np.argmin(self.topk_objective, axis=-1) + 1

    @property
    def topk_gain(self) -> np.ndarray | None:
        """How much lower the proposal's objective is than the best top-k mixture's, ``(L, B)``
        (>= 0 where the top-k mixtures are feasible, down to what the weight floor of 1e-12
        costs where the best is a top-k mixture); ``None`` without pools."""
        if self.topk_objective is None:
            return None
        return np.min(self.topk_objective, axis=-1) - self.objective

    @property
    def converged(self) -> bool:
        """Every proposal converged."""
        return bool(np.all(self.status == "converged"))

    def frame(self) -> pd.DataFrame:
        """One row per (KL strength, budget): weights, implied epochs, objective, gap, status."""
        rows = []
        L, B, _ = self.weights.shape
        for li in range(L):
            for bi in range(B):
                row = {"kl": float(self.kl[li]), "budget": float(self.budgets[bi])}
                row.update({f"w_{d}": float(v) for d, v in zip(self.domains, self.weights[li, bi])})
                if self.epochs is not None:
                    row.update({f"epochs_{d}": float(v) for d, v in zip(self.domains, self.epochs[li, bi])})
                row.update({f"pred_{o}": float(v) for o, v in zip(self.outputs, self.metrics[li, bi])})
                if self.topk_objective is not None:
                    row.update(
                        best_k=int(self.best_k[li, bi]),
                        best_topk_objective=float(np.min(self.topk_objective[li, bi])),
                        gain_over_topk=float(self.topk_gain[li, bi]),
                    )
                row.update(
                    objective=float(self.objective[li, bi]),
                    uncapped_objective=float(self.uncapped_objective[li, bi]),
                    gap=float(self.gap[li, bi]),
                    bound=",".join(
                        f"{d}:{_BOUND_NAMES[int(c)]}" for d, c in zip(self.domains, self.bound[li, bi]) if c
                    ),
                    status=str(self.status[li, bi]),
                )
                rows.append(row)
        return pd.DataFrame(rows)

    def _sample_weights(self) -> np.ndarray:
        if self.samples is None:
            raise ValueError(
                "this proposal has no bootstrap samples: pass a BootstrapResult to propose_mixture"
            )
        w = self.samples["weights"]
        if w.shape[0] < 2:
            raise ValueError(
                f"too few converged resamples for a spread ({w.shape[0]}); at least 2 are needed"
            )
        return w

    @property
    def mean(self) -> np.ndarray:
        """Mean proposed weights over the bootstrap resamples, ``(L, B, k)``."""
        return self._sample_weights().mean(axis=0)

    @property
    def stderr(self) -> np.ndarray:
        """Standard deviation of the proposed weights over the resamples, ``(L, B, k)``."""
        return self._sample_weights().std(axis=0, ddof=1)

    def interval(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals of each proposed weight over the bootstrap resamples: one row
        per (KL strength, budget, domain) with the point proposal, the mean and the bounds."""
        if not (isinstance(level, float | int) and 0 < level < 1):
            raise ValueError(f"level must be between 0 and 1, got {level!r}")
        w = self._sample_weights()
        q = np.quantile(w, [(1 - level) / 2, (1 + level) / 2], axis=0)
        rows = []
        L, B, k = self.weights.shape
        for li in range(L):
            for bi in range(B):
                for j, d in enumerate(self.domains):
                    rows.append(
                        {
                            "kl": float(self.kl[li]),
                            "budget": float(self.budgets[bi]),
                            "domain": d,
                            "weight": float(self.weights[li, bi, j]),
                            "mean": float(w[:, li, bi, j].mean()),
                            "lower": float(q[0, li, bi, j]),
                            "upper": float(q[1, li, bi, j]),
                        }
                    )
        return pd.DataFrame(rows)

    def summary(self, max_domains: int = 8) -> str:
        """The proposals: a table of every weight for up to ``max_domains`` domains, else one
        line per proposal with its largest weights (the rest named by count)."""
        lines = [f"mixture over {len(self.domains)} domains, {len(self.outputs)} predicted metric(s)"]
        frame = self.frame()
        if len(self.domains) <= max_domains:
            cols = ["kl", "budget", *[f"w_{d}" for d in self.domains], "objective", "gap", "status"]
            lines.append(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
            return "\n".join(lines)
        for _, row in frame.iterrows():
            w = np.array([row[f"w_{d}"] for d in self.domains])
            order = [j for j in np.argsort(-w, kind="stable") if w[j] > 0]
            shown = ", ".join(f"{self.domains[j]} {w[j]:.4g}" for j in order[:max_domains])
            rest = len(order) - max_domains
            zero = len(self.domains) - len(order)
            budget = "" if not np.isfinite(row["budget"]) else f"budget {row['budget']:.4g}, "
            lines.append(
                f"  kl {row['kl']:g}, {budget}{shown}"
                + (f", {rest} more above 0" if rest > 0 else "")
                + (f" ({zero} at 0)" if zero else "")
                + f"; objective {row['objective']:.6g}, {row['status']}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


_BOUND_NAMES = {-1: "min", 1: "max", 2: "cap", 3: "pass"}


def _per_domain(value, k: int, name: str, domains=()) -> np.ndarray:
    """A number, one value per domain, or a mapping of every domain's name to its value."""
    if isinstance(value, Mapping):
        unknown = [d for d in value if d not in domains]
        missing = [d for d in domains if d not in value]
        if unknown or missing or len(domains) != k:
            raise ValueError(
                f"{name} as a mapping must give every domain of the mixture {list(domains)} a value: "
                + (f"unknown {unknown}" if unknown else f"missing {missing}")
            )
        value = [value[d] for d in domains]
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number, one number per domain ({k}) or a mapping of domain to number, "
            f"got {type(value).__name__} {value!r:.60}"
        ) from None
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    if arr.shape != (k,):
        raise ValueError(f"{name} must be a number or one value per domain ({k}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        j = int(np.argmax(~np.isfinite(arr)))
        raise ValueError(f"{name} of domain {j} is {float(arr[j])!r}: it must be finite")
    return arr


def _resolve(model, params):
    """``(law, point params, stacked samples or None, domain names, output names)``."""
    from jaxlaws.fit import FitResult
    from jaxlaws.io import SavedFit
    from jaxlaws.laws import get
    from jaxlaws.uncertainty import BootstrapResult

    samples, columns = None, {}
    if isinstance(model, BootstrapResult):
        law, point, columns = model.law, model.point.params, model.point.columns
        ok = np.asarray(model.ok)
        if ok.sum() < 2:
            raise ValueError(
                f"the bootstrap has {int(ok.sum())} converged resample(s); at least 2 are needed"
            )
        samples = type(model.samples)(*(jnp.asarray(np.asarray(v)[ok], jnp.float64) for v in model.samples))
    elif isinstance(model, FitResult):
        law, point, columns = model.law, model.params, model.columns
    elif isinstance(model, SavedFit):
        law, point, columns = model.law, model.params, model.record.get("columns", {})
    else:
        law = get(model)
        if params is None:
            raise ValueError(f"propose_mixture with the law {law.name!r} needs its params")
        point = law.make_params(params)
    if params is not None and not isinstance(model, Law | str):
        raise ValueError("params is for a law given by name or as a Law; a fit carries its own")
    point = type(point)(*(jnp.asarray(v, jnp.float64) for v in point))
    return law, point, samples, columns


def propose_mixture(
    model,
    params=None,
    *,
    budgets=None,
    at: Mapping[str, Any] | None = None,
    metric_weights: Sequence[float] | None = None,
    min_weight=0.0,
    max_weight=1.0,
    unique_tokens=None,
    max_epochs: float | None = None,
    repetition: str | None = None,
    r_star: float = R_STAR,
    prior=None,
    kl=0.0,
    budget_input: str | None = None,
    starts: int = 8,
    seed: int = 0,
    max_steps: int = 100,
    progress: bool = False,
    devices: int | None = None,
) -> MixtureProposal:
    """The mixture of data domains that a fitted mixture law predicts is best.

    Minimises ``sum_m metric_weights[m] * prediction_m(w) + kl * KL(w || prior)`` over
    proportions ``w`` on the simplex, with per-domain minimum and maximum weights and, at
    each token budget ``D``, per-domain repetition caps ``w_i D <= max_epochs * U_i`` (or
    repetition priced in by effective data, ``repetition="effective"``). Every budget, KL
    strength, start and (for a bootstrap) resample is solved in one batched, compiled call.

    Args:
        model: a :class:`~jaxlaws.FitResult` or saved fit of a law with an input on the
            simplex; a :class:`~jaxlaws.BootstrapResult` of one (the proposal is made for
            the point fit and for every converged resample, giving its distribution); or a
            law (name or :class:`~jaxlaws.laws.Law`) with ``params``.
        params: the law's parameters, when ``model`` is a law.
        budgets: training tokens, one or several. Needed for repetition caps or pricing and
            for a law with a token input (``budget_input``).
        at: values of the law's other inputs (model size ``N``...), a number each or one
            per budget.
        metric_weights: weight of each predicted metric (default: their mean, ``1/m``
            each); a negative weight maximises a metric (an accuracy).
        min_weight, max_weight: bounds on each domain's weight (a number, one per domain, or a
            mapping of every domain's name to its value; likewise ``unique_tokens`` and
            ``prior``).
        unique_tokens: unique tokens per domain ``U_i`` (for caps, pricing and the implied
            epochs).
        max_epochs: cap on passes over each domain (``w_i D <= max_epochs * U_i``).
        repetition: ``"cap"`` (the default when ``max_epochs`` is given), ``"effective"``
            (Muennighoff's effective data per domain, with ``r_star``; for a law with a token
            input, which is fed the effective tokens) or ``None``.
        r_star: Muennighoff et al.'s ``R*_D`` for ``repetition="effective"``.
        prior: proportions to pull towards with ``kl`` (default: uniform); all positive.
        kl: strength of the pull, a number or a sequence (a path over its strength).
        budget_input: the law input fed the token budget (default ``"D"`` where the law has
            one).
        starts: starts solved per problem: of the candidates (the uniform mixture, the
            prior, for pools the top-k mixtures, and ``4 * starts`` Dirichlet draws), the
            uniform mixture and the ``starts - 1`` others with the lowest objective (with
            ``starts=1``, the lowest of all). A bootstrap's resamples start from the point
            fit's proposal and the uniform mixture.
        seed: seed of the Dirichlet starts.
        max_steps: projected-Newton steps per start.
        progress: solve the problems in ten chunks under a progress bar (shown where stderr
            is a terminal), as the command line does.
        devices: split the problems across this many local devices (default: one); results
            agree to rounding whatever the number (:mod:`jaxlaws.sharding`). (Not the default:
            with two forced CPU host devices a bootstrap's proposals once hung in XLA.)

    Returns:
        A :class:`MixtureProposal`.

    Raises:
        ValueError: a law without a simplex input; a missing input value; bounds or caps that
            no mixture satisfies (naming the budget); a prior off the simplex; a proposal
            whose predicted metrics are not finite.

    Warns:
        ConvergenceWarning: a proposal whose best start did not reach a KKT point.

    Example:
        >>> import jaxlaws
        >>> swarm = jaxlaws.swarm.load("olmix-dclm", metrics="hellaswag*")  # doctest: +SKIP
        >>> res = jaxlaws.fit("mixing_exp", swarm)              # doctest: +SKIP
        >>> jaxlaws.propose_mixture(res, budgets=[1e9, 1e10], unique_tokens=U, max_epochs=4)  # doctest: +SKIP
    """
    law, point, samples, columns = _resolve(model, params)
    simplex = law.simplex_inputs
    if len(simplex) != 1:
        raise ValueError(
            f"propose_mixture needs a law with one input on the simplex (the mixture); {law.name!r} has "
            f"{len(simplex)}: declare domains={{'r': 'simplex'}} on the law"
        )
    mix = simplex[0]
    domains = columns.get(mix)
    outputs = columns.get("target")
    pool = law.passes is not None and law.passes[0] == mix  # pools of repeated data (kinked)
    sizes_input = law.passes[2] if pool else None
    if pool and not isinstance(domains, list | tuple):  # a fit from a long table of pool runs
        domains = columns.get("pools")
    if budget_input is None:
        budget_input = law.passes[1] if pool else ("D" if "D" in law.inputs else None)
    if budget_input is not None and (budget_input not in law.inputs or budget_input == mix):
        raise ValueError(f"budget_input {budget_input!r} is not an input of {law.name!r}: {list(law.inputs)}")
    at = dict(at or {})
    unknown = sorted(set(at) - set(law.inputs))
    if unknown or mix in at or (budget_input in at):
        bad = unknown or [mix if mix in at else budget_input]
        raise ValueError(
            f"at names {bad}: give values of the law's inputs other than the mixture "
            f"({mix!r}) and the budget ({budget_input!r}); its inputs are {list(law.inputs)}"
        )
    fixed_names = [n for n in law.inputs if n not in (mix, budget_input, sizes_input)]
    missing = [n for n in fixed_names if n not in at]
    if missing:
        raise ValueError(f"the law {law.name!r} needs values of {missing}: pass at={{{missing[0]!r}: ...}}")
    if repetition not in (None, "cap", "effective"):
        raise ValueError(f"repetition must be 'cap', 'effective' or None, got {repetition!r}")
    if repetition is None and max_epochs is not None:
        repetition = "cap"
    if repetition == "cap" and max_epochs is None:
        raise ValueError("repetition='cap' needs max_epochs")
    if repetition == "effective" and max_epochs is not None:
        raise ValueError("give max_epochs (caps) or repetition='effective' (pricing), not both")
    if repetition == "effective" and budget_input is None:
        raise ValueError(
            f"repetition='effective' prices repeated tokens as fewer effective tokens, which the law "
            f"{law.name!r} cannot tell (it has no token input): cap repetition with max_epochs instead"
        )

    # budgets
    needs_budget = budget_input is not None or repetition is not None
    if budgets is None:
        if needs_budget:
            what = f"the law's input {budget_input!r}" if budget_input else f"repetition={repetition!r}"
            raise ValueError(f"budgets (training tokens) are needed for {what}")
        budgets_arr = np.array([np.nan])
    else:
        budgets_arr = np.atleast_1d(np.asarray(budgets, np.float64))
        if budgets_arr.ndim != 1 or budgets_arr.size == 0:
            raise ValueError(
                f"budgets must be one number or a list of numbers, got shape {budgets_arr.shape}"
            )
        bad = ~(np.isfinite(budgets_arr) & (budgets_arr > 0))
        if bad.any():
            raise ValueError(f"every budget must be finite and positive, got {float(budgets_arr[bad][0])!r}")
    B = budgets_arr.size

    # the mixture's width and the names
    dims = law.dims_of(point)
    if mix in dims and isinstance(domains, list | tuple) and len(domains) != dims[mix]:
        raise ValueError(
            f"the parameters mix {dims[mix]} domains; the fit names {len(domains)}: {list(domains)}"
        )
    k = int(np.asarray(_width(law, point, mix, domains)))
    domains = (
        tuple(str(d) for d in domains)
        if isinstance(domains, list | tuple)
        else tuple(f"d{j}" for j in range(k))
    )
    if len(domains) != k:
        domains = tuple(f"d{j}" for j in range(k))

    fixed = []
    for n in fixed_names:
        v = np.asarray(at[n], np.float64)
        v = np.broadcast_to(v, (B,)) if v.ndim == 0 else v
        if v.shape != (B,):
            raise ValueError(f"at[{n!r}] must be a number or one value per budget ({B}), got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"at[{n!r}] holds {float(v[~np.isfinite(v)][0])!r}: values must be finite")
        dom = law.domain(n)
        try:
            dom.validate(v[:, None] if dom.vector else v, [f"at[{n!r}]"], list(range(B)))
        except ValueError as err:
            raise ValueError(str(err).replace("column ", "", 1)) from None
        fixed.append(v)
    fixed = np.stack(fixed, axis=1) if fixed else np.zeros((B, 0))

    lo = _per_domain(min_weight, k, "min_weight", domains)
    hi = _per_domain(max_weight, k, "max_weight", domains)
    if np.any(lo < 0) or np.any(hi > 1) or np.any(lo > hi):
        j = int(np.argmax((lo < 0) | (hi > 1) | (lo > hi)))
        raise ValueError(
            f"domain {domains[j]!r}: min_weight {lo[j]:g} and max_weight {hi[j]:g} must satisfy "
            "0 <= min <= max <= 1"
        )
    unique = np.ones(k)
    if unique_tokens is not None:
        unique = _per_domain(unique_tokens, k, "unique_tokens", domains)
        if np.any(unique <= 0):
            j = int(np.argmax(unique <= 0))
            raise ValueError(f"unique_tokens of domain {domains[j]!r} is {unique[j]:g}: it must be positive")
    elif pool:
        raise ValueError(
            f"the law {law.name!r} mixes pools of repeated data: pass unique_tokens, the unique "
            f"items in each pool (its input {sizes_input!r})"
        )
    elif repetition is not None:
        raise ValueError(f"repetition={repetition!r} needs unique_tokens (one count per domain)")
    for name, value in (("max_epochs", max_epochs), ("r_star", r_star)):
        if value is None and name == "max_epochs":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r:.60}")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and positive, got {value!r}")

    kl_arr = np.atleast_1d(np.asarray(kl, np.float64))
    if kl_arr.ndim != 1 or not np.all(np.isfinite(kl_arr)) or np.any(kl_arr < 0):
        raise ValueError(f"kl must be a non-negative number or a list of them, got {kl!r}")
    L = kl_arr.size
    prior_arr = np.full(k, 1.0 / k) if prior is None else _per_domain(prior, k, "prior", domains)
    if np.any(prior_arr <= 0) or abs(prior_arr.sum() - 1.0) > 1e-9:
        raise ValueError(f"prior must be positive proportions summing to 1, got {prior_arr.tolist()}")

    # bounds per budget: the caps, and the floor that keeps gradients finite
    cap = (
        np.full((B, k), np.inf) if max_epochs is None else max_epochs * unique[None, :] / budgets_arr[:, None]
    )
    hi_cap = np.minimum(hi[None, :], cap)  # (B, k)
    if lo.sum() > 1 + 1e-12:
        raise ValueError(f"the minimum weights sum to {lo.sum():.6g} > 1: no mixture satisfies them")
    for bi in range(B):
        if np.any(lo > hi_cap[bi]) or hi_cap[bi].sum() < 1 - 1e-12:
            what = f"at a budget of {budgets_arr[bi]:g} tokens, " if budgets is not None else ""
            j = int(np.argmax(lo > hi_cap[bi]))
            why = (
                f"domain {domains[j]!r} may have at most {hi_cap[bi, j]:.6g} but at least {lo[j]:.6g}"
                if np.any(lo > hi_cap[bi])
                else f"the weights' maxima (max_weight, max_epochs * unique_tokens / budget) sum to "
                f"{hi_cap[bi].sum():.6g} < 1"
            )
            raise ValueError(
                f"{what}{why}: no mixture satisfies the bounds (raise max_epochs or max_weight, or "
                "lower the budget)"
            )
    lo_cap = np.minimum(np.maximum(lo, WEIGHT_FLOOR), hi_cap)  # (B, k)
    lo_free = np.broadcast_to(np.minimum(np.maximum(lo, WEIGHT_FLOOR), hi), (B, k))
    m = _n_outputs(law, point, mix, k, sizes_input)
    try:
        omega = np.full(m, 1.0 / m) if metric_weights is None else np.asarray(metric_weights, np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"metric_weights must be {m} number(s), one per predicted metric, got {metric_weights!r:.60}"
        ) from None
    if omega.shape != (m,) or not np.all(np.isfinite(omega)) or not np.any(omega != 0):
        raise ValueError(
            f"metric_weights must be {m} finite number(s), one per predicted metric, not all zero, "
            f"got {metric_weights!r}"
        )
    outputs = (
        tuple(str(o) for o in outputs)
        if isinstance(outputs, list | tuple) and len(outputs) == m
        else ((str(outputs),) if isinstance(outputs, str) and m == 1 else tuple(f"y{j}" for j in range(m)))
    )

    for name, value, least in (("starts", starts, 1), ("max_steps", max_steps, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    devs = local_devices(1 if devices is None else devices)
    rng = np.random.default_rng(seed)
    # candidate starts: the uniform mixture, the prior, for pools the top-k mixtures, and
    # Dirichlet draws; the `starts` candidates with the lowest objective are solved
    x0 = [np.full(k, 1.0 / k)] + ([prior_arr] if prior is not None else [])
    x0 = np.concatenate([np.array(x0), *([np.asarray(topk_weights(k))] if pool else [])])
    x0 = np.concatenate([x0, rng.dirichlet(np.ones(k), size=SCREEN * starts)])
    if pool and "max_passes" in dict(law.options) and budgets is not None:
        # a fit binds the passes its data need; the budgets proposed for may need more
        from jaxlaws.laws.filtering import max_passes_for

        need = max_passes_for(np.max(budgets_arr) * np.max(hi) / np.min(unique))
        if need > dict(law.options)["max_passes"]:
            law = law.with_options(max_passes=need)

    spec = tuple(
        "mix" if n == mix else "budget" if n == budget_input else "unique" if n == sizes_input else "fixed"
        for n in law.inputs
    )
    has_rep = repetition is not None
    priced = repetition == "effective"
    budget_vals = np.where(np.isnan(budgets_arr), 1.0, budgets_arr)

    # problems: [capped (L*B)] + [uncapped (L*B) if there are caps or pricing], for the point
    # and for every resample
    def rows(n_sets, with_uncapped):
        reps = [(lo_cap, hi_cap, priced)] + (
            [(lo_free, np.broadcast_to(hi, (B, k)), False)] if with_uncapped else []
        )
        parts = {"budget": [], "fixed": [], "priced": [], "lam": [], "lo": [], "hi": []}
        for los, his, pr in reps:
            for li in range(L):
                parts["budget"].append(budget_vals)
                parts["fixed"].append(fixed)
                parts["priced"].append(np.full(B, pr))
                parts["lam"].append(np.full(B, kl_arr[li]))
                parts["lo"].append(los)
                parts["hi"].append(his)
        one = {key: np.concatenate(v) for key, v in parts.items()}
        return {key: np.tile(v, (n_sets,) + (1,) * (v.ndim - 1)) for key, v in one.items()}, len(reps)

    def run(param_sets, n_sets, with_uncapped, starts_of=None):
        """Every problem of every parameter set; ``starts_of``: each set's starts per
        problem ``(n_rep * L * B, S, k)`` (default: the shared starts ``x0``)."""
        r, n_rep = rows(n_sets, with_uncapped)
        per_set = n_rep * L * B
        stacked = jax.tree_util.tree_map(lambda v: jnp.repeat(v, per_set, axis=0), param_sets)
        first = np.broadcast_to(x0, (per_set,) + x0.shape) if starts_of is None else starts_of
        problem_starts = np.tile(first, (n_sets, 1, 1))
        per_problem = [r["budget"], r["fixed"], r["priced"], r["lam"], r["lo"], r["hi"], problem_starts]

        def solve(rows):
            # padded (repeating the last problem) to a multiple of the devices, at least
            # MIN_PER_DEVICE each, so that no result depends on how many share its batch
            real = len(rows)
            rows = np.concatenate([rows, np.repeat(rows[-1:], padded_size(real, len(devs)) - real)])
            out = map_batch(
                _batch,
                (
                    jax.tree_util.tree_map(lambda v: v[rows], stacked),
                    *(jnp.asarray(a[rows]) for a in per_problem),
                    jnp.asarray(prior_arr),
                    jnp.asarray(unique),
                    jnp.asarray(omega),
                    jnp.asarray(float(r_star)),
                ),
                (True,) * 8 + (False,) * 4,
                devs,
                law=law,
                spec=spec,
                max_steps=int(max_steps),
                n_starts=min(int(starts), problem_starts.shape[1]),
                n_topk=k if pool else 0,
            )
            return tuple(np.asarray(a)[:real] for a in out)

        out = in_chunks(solve, len(problem_starts), progress, "proposing", "problem")
        return [np.asarray(a).reshape((n_sets, n_rep, L, B) + np.asarray(a).shape[1:]) for a in out]

    def snap(w, upper):
        """The floor is for the gradients: a weight at it is reported as 0, its mass given to
        the weight with the most room below its maximum (so no bound is crossed)."""
        at_floor = (w <= 2 * WEIGHT_FLOOR) & (lo <= 0)
        freed = np.where(at_floor, w, 0.0).sum(axis=-1, keepdims=True)
        w = np.where(at_floor, 0.0, w)
        room = np.where(at_floor, -np.inf, np.broadcast_to(upper, w.shape) - w)  # not back to a 0
        j = np.argmax(room, axis=-1)[..., None]
        np.put_along_axis(w, j, np.take_along_axis(w, j, axis=-1) + freed, axis=-1)
        return w

    upper = np.stack([hi_cap, np.broadcast_to(hi, (B, k))])[:, None]  # (capped/uncapped, 1, B, k)
    point_set = jax.tree_util.tree_map(lambda v: v[None], point)
    w, f, metrics, steps, status, kkt, same, topk = run(point_set, 1, has_rep)
    w = snap(w, upper[: w.shape[1]][None])
    w_c, f_c = w[0, 0], f[0, 0]
    w_u, f_u = (w[0, 1], f[0, 1]) if has_rep else (w_c, f_c)
    if not np.all(np.isfinite(metrics[0, 0])):
        li, bi = (int(v) for v in np.argwhere(~np.isfinite(metrics[0, 0]).all(axis=-1))[0])
        raise ValueError(
            f"the predicted metrics are not finite at the proposal for kl={kl_arr[li]:g}"
            + (f" at a budget of {budgets_arr[bi]:g}" if budgets is not None else "")
            + (
                ": the budget is too far below the pools' sizes for these parameters"
                if pool
                else ": check the law's parameters and inputs"
            )
        )
    epochs = (
        w_c * budget_vals[None, :, None] / unique
        if unique_tokens is not None and budgets is not None
        else None
    )
    tol = 1e-9
    bound = np.zeros(w_c.shape, np.int8)
    bound[np.abs(w_c - lo) <= tol] = -1
    bound[np.abs(w_c - hi) <= tol] = 1
    if pool and epochs is not None:  # on a kink: a whole number of passes over the pool
        whole = np.round(epochs)
        bound[(bound == 0) & (whole >= 1) & (np.abs(epochs - whole) <= 1e-9 * np.maximum(whole, 1.0))] = 3
    bound[(np.abs(w_c - hi_cap[None]) <= tol) & (hi_cap[None] < hi)] = 2
    status_names = np.asarray(STATUS)[status[0, 0]]
    if np.any(status_names != "converged"):
        import warnings

        from jaxlaws.fit import ConvergenceWarning

        off = status_names[status_names != "converged"]
        warnings.warn(
            f"{off.size} of {status_names.size} proposals did not converge (status {off[0]}): "
            "see MixtureProposal.status; raise max_steps or check the law",
            ConvergenceWarning,
            stacklevel=2,
        )

    sample_out = None
    if samples is not None:
        S = int(np.asarray(samples[0]).shape[0])
        # a resample's optimum is near the point's: start there, and from the uniform mixture
        near = w[0, 0].reshape(L * B, 1, k)
        uniform = np.broadcast_to(np.full(k, 1.0 / k), (L * B, 1, k))
        ws, fs, _, _, st, _, _, _ = run(samples, S, False, np.concatenate([near, uniform], axis=1))
        ws = snap(ws, upper[:1][None])
        sample_out = {
            "weights": ws[:, 0],
            "objective": fs[:, 0],
            "status": np.asarray(STATUS)[st[:, 0]],
        }
        good = (st[:, 0] == 0).all(axis=(1, 2))
        sample_out = {key: v[good] for key, v in sample_out.items()}
        if epochs is not None:
            sample_out["epochs"] = sample_out["weights"] * budget_vals[None, None, :, None] / unique
        sample_out["n_failed"] = int((~good).sum())

    return MixtureProposal(
        domains=domains,
        outputs=outputs,
        budgets=budgets_arr,
        kl=kl_arr,
        weights=w_c,
        objective=f_c,
        metrics=metrics[0, 0],
        epochs=epochs,
        bound=bound,
        uncapped_weights=w_u,
        uncapped_objective=f_u,
        gap=f_c - f_u,
        status=status_names,
        steps=steps[0, 0],
        n_best=same[0, 0],
        topk_objective=topk[0, 0] if pool else None,
        kkt=kkt[0, 0],
        samples=sample_out,
        max_epochs=None if max_epochs is None else float(max_epochs),
    )


def _width(law, params, mix, domains):
    """Number of domains: from the fit's columns, else from a parameter shaped by the mixture."""
    if isinstance(domains, list | tuple) and len(domains) > 1:
        return len(domains)
    for name, dims in law.shapes:
        if mix in dims:
            return np.shape(getattr(params, name))[dims.index(mix)]
    for name in law.pool_params:  # one entry per pool, on the last axis
        if np.ndim(getattr(params, name)):
            return np.shape(getattr(params, name))[-1]
    raise ValueError(
        f"cannot tell how many domains the law {law.name!r} mixes: none of its parameters is "
        f"shaped by {mix!r}"
    )


def _n_outputs(law, params, mix, k, sizes_input=None) -> int:
    """Number of predicted metrics: the law traced once at one mixture (one line if it fails)."""
    from jaxlaws.problem import check_traceable

    args = [
        jax.ShapeDtypeStruct((1, k) if n in (mix, sizes_input) else (1,), jnp.float64) for n in law.inputs
    ]
    out = check_traceable(law, params, args)
    return int(np.prod(out.shape[1:])) if len(out.shape) > 1 else 1
