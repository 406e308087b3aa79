"""Levenberg-Marquardt for small problems, with status codes instead of exceptions.

A solver is a state and a step, as in optimistix: :func:`lm_init` makes a start's state,
:func:`lm_update` takes the objective at the trial point and proposes the next one, and
every loop is bounded and reports why it stopped (:data:`CONVERGED`, :data:`MAX_STEPS`,
:data:`NONFINITE`, :data:`STALLED`, :data:`DIVERGED`). The step is written for one start;
batches come from ``vmap``.

The curvature comes with the value and gradient (``fgh(x) -> (f, g, H)``): the exact
Hessian, or for sums of a robust loss of residuals the reweighted Gauss-Newton matrix,
which majorises Huber's loss and so makes fast progress far from the optimum; the exact
Hessian converges quadratically near it (Fletcher and Xu's hybrid rule chooses). Along a
curved valley, a Gauss-Newton step may be corrected by the residuals' second directional
derivative (geodesic acceleration, Transtrum and Sethna 2012), so the step follows the
valley instead of crawling along its chord.

Bounds are closed boxes ``lower <= x <= upper`` (``-inf``/``inf`` where open), handled as
scipy's L-BFGS-B does in spirit: a coordinate at a bound whose gradient points outward is
held there for the step (projected Newton, Bertsekas 1982), the step is projected onto the
box, and convergence is judged on the free coordinates.

:func:`advance` steps a batch of starts (slots) of many tables in one compiled call, for a
bounded number of steps, in blocks that skip finished starts; :mod:`jaxlaws.multistart`
drives it from the host (which starts run, when a fit stops).

References:
    Levenberg 1944, Marquardt 1963; Nielsen, "Damping parameter in Marquardt's method",
    1999; Fletcher and Xu, "Hybrid methods for nonlinear least squares", 1987; Transtrum
    and Sethna, "Improvements to the Levenberg-Marquardt algorithm for nonlinear
    least-squares minimization", arXiv:1201.5885, 2012; Bertsekas, "Projected Newton
    methods for optimization problems with simple constraints", 1982.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "NONFINITE",
    "SCREENED",
    "STALLED",
    "DIVERGED",
    "RUNNING",
    "STATUS_NAMES",
    "Box",
    "LMState",
    "Solution",
    "Slots",
    "make_box",
    "spd_solve",
    "lm_init",
    "lm_init_batch",
    "lm_update",
    "levenberg_marquardt",
    "newton_fgh",
    "advance",
]

#: The start converged: the undamped model predicts a decrease of at most ``ftol`` relative
#: from the point reached (a first-order point on the free coordinates).
CONVERGED = 0
#: ``max_steps`` ran out before convergence.
MAX_STEPS = 1
#: The objective or its derivatives were not finite at the start.
NONFINITE = 2
#: Not polished to the end: the multi-start's rule stopped before this start was needed.
SCREENED = 3
#: No step decreases the objective any more, yet the point is not certified (a kink, or a
#: numerically flat ridge), or it made no progress over :data:`CRAWL_STEPS` steps.
STALLED = 4
#: A coordinate ran off towards the open end of its constraint (beyond the box's
#: ``runaway`` bound): the optimum it heads for lies at zero or infinity.
DIVERGED = 5
STATUS_NAMES = ("converged", "max_steps", "nonfinite", "screened_out", "stalled", "diverged")
#: The status of a start that is still running.
RUNNING = -1

_LAM_MAX = 1e20
#: Largest damping at which a negligible predicted decrease certifies convergence: with
#: Marquardt's scaling the step is then within a factor ``1 + LAM_CERTIFY / mu`` of Newton's
#: along a direction of relative curvature ``mu``.
LAM_CERTIFY = 1e-8
#: Largest damping at which the exact curvature is used: a heavily damped step has left the
#: region where the exact quadratic model holds, and the Gauss-Newton majoriser makes
#: steadier progress there. Moderate damping (set by the Gauss-Newton model's poor fit to a
#: large-residual objective) does not bar it: the exact model's steps then fit well and
#: the damping falls (a bound of 1e-3 kept Newton out of ridges that it crosses in tens of
#: steps where Gauss-Newton crawls for thousands).
LAM_NEWTON = 1.0
#: The most a good step shrinks the damping by (Nielsen's rule uses 1/3).
LAM_SHRINK = 1.0 / 3.0
#: A Gauss-Newton step that decreases the objective by less than this fraction hands over
#: to the exact Hessian where that is positive definite (Fletcher and Xu's hybrid rule,
#: guarded): Gauss-Newton makes fast progress far from the optimum, where the exact Hessian
#: misleads, and only linear progress near it.
HYBRID_SWITCH = 1e-3
#: The exact curvature's second-order part is recomputed after at most this many accepted
#: Newton steps; in between, the last one is added to the current Gauss-Newton matrix (it
#: changes slowly, and costs a Hessian of the law).
REFRESH = 3
#: Geodesic acceleration is used only while it is small against the step it corrects
#: (``|a| <= ACCEL_RATIO |v|`` in Marquardt's scaled norm; Transtrum and Sethna use 0.75).
ACCEL_RATIO = 0.75
#: A start whose objective fell by less than :data:`CRAWL_RTOL` (relative) over this many
#: steps without being certified is :data:`STALLED`: it crawls along a ridge where its
#: steps no longer change the objective.
CRAWL_STEPS = 50
CRAWL_RTOL = 1e-10
#: A start that no step moves any more is a minimum where its Newton decrement (the decrease
#: the undamped model predicts) is at most this, relative to the objective: ``ftol`` is for
#: decreases the objective shows, this for what rounding lets a stuck start certify.
STALL_FTOL = 1e-10


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


# ----------------------------------------------------------------------------------------
# Linear algebra for a few parameters
# ----------------------------------------------------------------------------------------


def spd_solve(A, b):
    """Solve ``A x = b`` for a small symmetric positive-definite ``A``.

    Gauss-Jordan elimination without pivoting (stable for positive-definite matrices, whose
    pivots are all positive), written as one ``lax.fori_loop`` in plain JAX operations, so
    the compiled program is small and has the same size for any number of parameters. Not
    ``jnp.linalg``: on CPU that calls LAPACK kernels which, batched, wait for work queued on
    XLA's intra-op thread pool; when several devices share the pool (forced host devices
    under ``shard_map``) every thread can end up waiting and the process hangs. Where ``A``
    is not positive definite (a pivot is not positive) the result is NaN.
    """
    P = b.shape[-1]
    idx = jnp.arange(P)
    M = jnp.concatenate([A, b[:, None]], axis=1)

    def eliminate(k, M):
        piv = M[k, k]
        row = jnp.where(piv > 0, M[k] / jnp.where(piv > 0, piv, 1.0), jnp.nan)
        factor = jnp.where(idx == k, 0.0, M[:, k])
        return (M - factor[:, None] * row[None, :]).at[k].set(row)

    return jax.lax.fori_loop(0, P, eliminate, M)[:, P]


# ----------------------------------------------------------------------------------------
# One Levenberg-Marquardt step, one evaluation per step
# ----------------------------------------------------------------------------------------


class Box(NamedTuple):
    """Closed bounds ``lo <= x <= hi``, the largest step a coordinate may take,
    ``max(cap_abs, cap_rel |x|)`` (a step that would move a coordinate further is shortened
    as a whole, its direction kept, so one step cannot throw a log-scale parameter to
    ``exp(-130)``, where its gradient vanishes and it never returns), and ``runaway``: a
    coordinate beyond ``+-runaway`` on a side where the box is open has run off towards
    infinity (:data:`DIVERGED`)."""

    lo: jnp.ndarray
    hi: jnp.ndarray
    cap_abs: jnp.ndarray
    cap_rel: jnp.ndarray
    runaway: jnp.ndarray


def make_box(P, lower=None, upper=None, cap_abs=None, cap_rel=None, runaway=None) -> Box:
    """A :class:`Box` for ``P`` coordinates (``None``: unbounded, no step cap, no runaway)."""

    def full(v, fill):
        return (
            jnp.full(P, fill, jnp.float64)
            if v is None
            else jnp.broadcast_to(jnp.asarray(v, jnp.float64), (P,))
        )

    return Box(
        full(lower, -jnp.inf),
        full(upper, jnp.inf),
        full(cap_abs, jnp.inf),
        full(cap_rel, 0.0),
        full(runaway, jnp.inf),
    )


class LMState(NamedTuple):
    """A start's solver state. ``x + d`` is the next trial point; ``fresh`` marks a state
    whose start has not been evaluated yet (its first trial is the start itself).

    ``Hg`` and ``Hn`` are the two curvatures at ``x`` (Gauss-Newton and exact; the same
    matrix where only one is given); ``newton`` says which the next step uses, ``hn_ok``
    whether ``Hn`` is the exact curvature at ``x`` (it is computed only when this start
    asked for it: ``wants``), ``accel`` whether the step ``d`` may still be corrected by
    geodesic acceleration. ``f_ref`` is the objective :data:`CRAWL_STEPS` steps ago (at step
    ``k_ref``), to recognise a crawl.
    """

    x: jnp.ndarray
    f: jnp.ndarray
    g: jnp.ndarray
    Hg: jnp.ndarray
    Hn: jnp.ndarray
    hn_ok: jnp.ndarray
    wants: jnp.ndarray
    newton: jnp.ndarray
    accel: jnp.ndarray
    d: jnp.ndarray
    pred: jnp.ndarray
    cert: jnp.ndarray
    lam: jnp.ndarray
    nu: jnp.ndarray
    steps: jnp.ndarray
    status: jnp.ndarray
    fresh: jnp.ndarray
    gnorm: jnp.ndarray
    f_ref: jnp.ndarray
    k_ref: jnp.ndarray
    age: jnp.ndarray

    @property
    def H(self):
        """The curvature the next step uses."""
        return jnp.where(self.newton, self.Hn, self.Hg)


def _all_finite(*xs):
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in xs]))


def _free(x, g, lo, hi):
    """Coordinates not held at a bound: a bound holds a coordinate whose descent direction
    points out of the box."""
    return ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))


def _scale(H):
    """Marquardt's scaling: the curvature's diagonal, floored at ``1e-12`` of its median.
    The median, not the largest: curvatures of one law can span dozens of orders of
    magnitude (an amplitude multiplying ``N^-alpha`` against an offset), and a floor tied to
    the stiffest coordinate would damp every other to a standstill; one tied to the median
    only holds back the coordinates the objective barely feels (a domain few runs contain),
    whose undamped steps would be huge."""
    diag = jnp.abs(jnp.diagonal(H))
    return jnp.maximum(diag, 1e-12 * jnp.median(diag) + 1e-300)


def _damped_solve(H, b, lam, free):
    """``(H + lam diag|H|) d = b`` on the free coordinates (held ones get ``d = 0``).

    Solved in Marquardt's scaled coordinates, ``D^-1/2 (H + lam D) D^-1/2`` with ``D`` the
    floored diagonal: a unit diagonal plus ``lam``, so parameters whose curvatures differ by
    dozens of orders of magnitude (an amplitude next to an exponent) lose no precision in
    the elimination."""
    P = b.shape[0]
    eye = jnp.eye(P, dtype=H.dtype)
    s = 1.0 / jnp.sqrt(_scale(H))
    pair = free[:, None] & free[None, :]
    A = jnp.where(pair, s[:, None] * H * s[None, :] + lam * eye, eye)
    y = spd_solve(A, jnp.where(free, s * b, 0.0))
    return jnp.where(free, s * y, 0.0)


def _fit_step(x, d, box):
    """Shorten ``d`` to the step cap (its direction kept) and project ``x + d`` onto the box."""
    cap = jnp.maximum(box.cap_abs, box.cap_rel * jnp.abs(x))
    d = d * jnp.minimum(1.0, jnp.min(cap / jnp.maximum(jnp.abs(d), 1e-300)))
    return jnp.clip(x + d, box.lo, box.hi) - x


def _propose(x, g, H, lam, box):
    """The next step from ``x``: damped, shortened to the step cap, projected onto the box,
    with its predicted decrease. Where ``H + lam diag|H|`` does not factor, or the projected
    step would not decrease the quadratic model (projection can turn a Newton step uphill),
    ``lam`` grows (by 16, from at least 1e-8) until it does: a heavily damped step is a
    short scaled-gradient step, which projection keeps downhill. Returns
    ``(d, pred, full, lam, grew)``: ``full`` is the predicted decrease of the damped step
    before the step cap and the box shorten it."""
    free = _free(x, g, box.lo, box.hi)

    def trial(lam_k):
        d0 = _damped_solve(H, -g, lam_k, free)
        ok = jnp.all(jnp.isfinite(d0))
        d0 = jnp.where(ok, d0, 0.0)
        d = _fit_step(x, d0, box)
        pred = -(g @ d + 0.5 * d @ (H @ d))
        # the model's decrease along the whole damped step, before the step cap and the box
        # shorten it: what certifies a first-order point (a capped step predicts little
        # because it is short, not because the point is a minimum)
        full = -(g @ d0 + 0.5 * d0 @ (H @ d0))
        return d, pred, full, ok & ((pred > 0) | jnp.all(d == 0.0))

    def cond(c):
        return ~c[4] & (c[0] < _LAM_MAX)

    def body(c):
        lam_k = jnp.maximum(c[0] * 16.0, 1e-8)
        d, pred, full, ok = trial(lam_k)
        return lam_k, d, pred, full, ok, c[5] + 1

    d, pred, full, ok = trial(lam)
    lam, d, pred, full, ok, tries = jax.lax.while_loop(cond, body, (lam, d, pred, full, ok, 0))
    d = jnp.where(ok, d, 0.0)
    return d, jnp.where(ok, pred, 0.0), jnp.where(ok, full, jnp.inf), lam, tries > 0


def _grad_norm(x, g, box):
    """The largest gradient entry on the coordinates not held at a bound."""
    return jnp.max(jnp.where(_free(x, g, box.lo, box.hi), jnp.abs(g), 0.0))


def lm_init(x0, lam0=1e-3) -> LMState:
    """A fresh state at ``x0`` (evaluated by the first :func:`lm_update`)."""
    x0 = jnp.asarray(x0, jnp.float64)
    P = x0.shape[0]
    return LMState(
        x=x0,
        f=jnp.asarray(jnp.inf),
        g=jnp.zeros(P),
        Hg=jnp.eye(P),
        Hn=jnp.eye(P),
        hn_ok=jnp.asarray(False),
        wants=jnp.asarray(False),
        newton=jnp.asarray(False),
        accel=jnp.asarray(False),
        d=jnp.zeros(P),
        pred=jnp.asarray(0.0),
        cert=jnp.asarray(jnp.inf),
        lam=jnp.asarray(lam0, jnp.float64),
        nu=jnp.asarray(2.0),
        steps=jnp.asarray(0, jnp.int32),
        status=jnp.asarray(RUNNING, jnp.int32),
        fresh=jnp.asarray(True),
        gnorm=jnp.asarray(jnp.inf),
        f_ref=jnp.asarray(jnp.inf),
        k_ref=jnp.asarray(0, jnp.int32),
        age=jnp.asarray(0, jnp.int32),
    )


def lm_init_batch(x0s, lam0=1e-3) -> LMState:
    """Fresh states at the rows of ``x0s``, as NumPy arrays (no program is compiled)."""
    x0s = np.asarray(x0s, np.float64)
    n, P = x0s.shape
    eye = np.broadcast_to(np.eye(P), (n, P, P)).copy()

    def full(v, dtype=np.float64):
        return np.full(n, v, dtype)

    return LMState(
        x=x0s.copy(),
        f=full(np.inf),
        g=np.zeros((n, P)),
        Hg=eye,
        Hn=eye.copy(),
        hn_ok=full(False, bool),
        wants=full(False, bool),
        newton=full(False, bool),
        accel=full(False, bool),
        d=np.zeros((n, P)),
        pred=full(0.0),
        cert=full(np.inf),
        lam=full(lam0),
        nu=full(2.0),
        steps=full(0, np.int32),
        status=full(RUNNING, np.int32),
        fresh=full(True, bool),
        gnorm=full(np.inf),
        f_ref=full(np.inf),
        k_ref=full(0, np.int32),
        age=full(0, np.int32),
    )


def lm_update(
    s: LMState,
    f_t,
    g_t,
    Hg_t,
    Hn_t,
    box: Box,
    *,
    max_steps,
    ftol,
    fatol=0.0,
    exact=True,
    certify=True,
    computed=True,
) -> LMState:
    """Take the evaluation ``(f_t, g_t, Hg_t, Hn_t)`` at the trial point ``s.x + s.d``:
    accept or reject it, update the damping (Nielsen's rule), choose the next step's
    curvature (Gauss-Newton while it makes fast progress, then exact), test convergence and
    propose the next step. ``fatol`` is the objective's rounding floor (an exact fit cannot
    show a relative decrease). ``exact=False`` keeps to Gauss-Newton steps; ``computed=False``
    says that ``Hn_t`` is not the exact curvature (it was not computed); ``max_steps`` may
    be an array (one budget per state). ``certify=False`` counts a negligible accepted
    decrease, or a point no step decreases, as convergence without asking the model (for
    objectives whose minimum is a kink, such as a likelihood that is almost L1). A state
    that has stopped (``status >= 0``) is returned unchanged.

    The exact curvature is taken as such only where this state asked for it (``s.wants``),
    so a start's path never depends on what its batch-mates asked for."""
    running = s.status == RUNNING
    trial = s.x + s.d
    ok = _all_finite(f_t, g_t, Hg_t, Hn_t)
    actual = s.f - f_t
    accept = ok & (s.fresh | (f_t < s.f))
    rho = actual / jnp.where(s.pred > 0, s.pred, 1.0)
    lam = jnp.where(
        s.fresh,
        s.lam,
        jnp.where(accept, s.lam * jnp.maximum(LAM_SHRINK, 1.0 - (2.0 * rho - 1.0) ** 3), s.lam * s.nu),
    )
    nu = jnp.where(accept, 2.0, 2.0 * s.nu)
    slow = ~s.fresh & (actual <= HYBRID_SWITCH * jnp.abs(s.f))
    x = jnp.where(accept, trial, s.x)
    f = jnp.where(accept, f_t, s.f)
    g = jnp.where(accept, g_t, s.g)
    Hg = jnp.where(accept, Hg_t, s.Hg)
    # the exact curvature's second-order part (Hn - Hg) changes slowly: where it was not
    # computed at the trial, the last one computed (at most REFRESH accepted steps ago) is
    # added to the new Gauss-Newton matrix
    fresh_exact = computed & s.wants
    Hn = jnp.where(accept, jnp.where(fresh_exact, Hn_t, Hg_t + (s.Hn - s.Hg)), s.Hn)
    hn_ok = jnp.where(accept, fresh_exact | (s.hn_ok & (s.age + 1 < REFRESH)), s.hn_ok)
    age = jnp.where(accept, jnp.where(fresh_exact, 0, s.age + 1), s.age)
    steps = s.steps + 1
    pg = _grad_norm(x, g, box)
    newton = jnp.where(accept, slow, s.newton) & exact & hn_ok
    small = accept & ~s.fresh & (actual <= ftol * jnp.abs(s.f) + fatol)
    # a rejected trial whose model promised a negligible decrease: the objective cannot
    # show a gain that small. Certified if that model was near-Newton (small damping)
    tiny = ~accept & ~s.fresh & ok & (s.cert <= ftol * jnp.abs(s.f) + fatol)
    certified_reject = tiny & ((s.lam <= LAM_CERTIFY) | (not certify))
    # after a negligible decrease, or such a rejection, the next step is a near-Newton one:
    # if even that model predicts nothing more from here, the point is certified
    lam = jnp.where(small | tiny, jnp.minimum(jnp.where(small, lam, s.lam), 0.01 * LAM_CERTIFY), lam)
    newton = newton & (lam <= LAM_NEWTON)
    d, pred, full, lam, grew = _propose(x, g, jnp.where(newton, Hn, Hg), lam, box)
    # the exact curvature stays in use only where it is positive definite at the damping
    newton = newton & ~grew
    # ask for the exact curvature at the next trial while progress is slow or Newton steps run
    wants = exact & (jnp.where(accept, slow, s.wants) | newton) & (~hn_ok | (age + 1 >= REFRESH))
    certified = ((full <= ftol * jnp.abs(f) + fatol) & (lam <= LAM_CERTIFY)) | (not certify)
    status = jnp.where(s.fresh & ~ok, NONFINITE, RUNNING)
    status = jnp.where((small & certified) | certified_reject | (accept & (f == 0.0)), CONVERGED, status)
    # a coordinate beyond its runaway bound on an open side: the start heads for infinity
    away = jnp.any(((x > box.runaway) & (box.hi == jnp.inf)) | ((x < -box.runaway) & (box.lo == -jnp.inf)))
    status = jnp.where((status == RUNNING) & away, DIVERGED, status)
    # no step decreases the objective any more (the damping ran out), or none did much over
    # CRAWL_STEPS steps (a crawl along a ridge): a minimum if the undamped model predicts a
    # negligible decrease from here (scale-free: the Newton decrement on the free
    # coordinates), or anywhere for an objective whose minimum is a kink; else stalled
    window = (steps - s.k_ref) >= CRAWL_STEPS
    crawl = window & ((s.f_ref - f) <= CRAWL_RTOL * jnp.abs(f))
    stuck = (status == RUNNING) & ((lam >= _LAM_MAX) | crawl)
    H_use = jnp.where(newton, Hn, Hg)
    d_n = _damped_solve(H_use, -g, LAM_CERTIFY, _free(x, g, box.lo, box.hi))
    decrement = -(g @ d_n + 0.5 * d_n @ (H_use @ d_n))
    flat = (
        (jnp.isfinite(decrement) & (decrement <= STALL_FTOL * jnp.abs(f) + fatol))
        | (pg == 0.0)
        | (not certify)
    )
    status = jnp.where(stuck, jnp.where(flat, CONVERGED, STALLED), status)
    status = jnp.where((status == RUNNING) & (steps >= max_steps), MAX_STEPS, status)
    new = LMState(
        x=x,
        f=jnp.where(s.fresh & ~ok, jnp.inf, f),
        g=g,
        Hg=Hg,
        Hn=Hn,
        hn_ok=hn_ok,
        wants=wants,
        newton=newton,
        accel=~newton,
        d=d,
        pred=pred,
        cert=full,
        lam=lam,
        nu=nu,
        steps=steps,
        status=status.astype(jnp.int32),
        fresh=jnp.asarray(False),
        gnorm=pg,
        f_ref=jnp.where(window | s.fresh, f, s.f_ref),
        k_ref=jnp.where(window | s.fresh, steps, s.k_ref).astype(jnp.int32),
        age=age.astype(jnp.int32),
    )
    return jax.tree_util.tree_map(lambda a, b: jnp.where(running, a, b), new, s)


def lm_accelerate(s: LMState, rhs, box: Box) -> LMState:
    """Correct a Gauss-Newton step by geodesic acceleration.

    ``rhs`` is ``J^T C r_vv``: the residuals' second directional derivative along the step
    ``v = s.d``, weighted as in the curvature. The acceleration ``a`` solves the same damped
    system, ``(H + lam D) a = -rhs``, and the step becomes ``v + a / 2`` where
    ``|a| <= ACCEL_RATIO |v|`` (scaled by ``D``), else stays ``v``. A state that is not
    running, or whose next step is a Newton step, is returned unchanged.
    """
    use = s.accel & (s.status == RUNNING) & _all_finite(rhs)
    free = _free(s.x, s.g, box.lo, box.hi) & (s.d != 0.0)
    a = _damped_solve(s.Hg, -rhs, s.lam, free)
    D = _scale(s.Hg)
    small = jnp.sum(D * a * a) <= ACCEL_RATIO**2 * jnp.sum(D * s.d * s.d)
    use = use & small & _all_finite(a)
    d = _fit_step(s.x, s.d + 0.5 * jnp.where(use, a, 0.0), box)
    # the damping and the certificate keep to the Gauss-Newton model of the velocity ``v``
    # (``s.pred``): the accelerated step is judged by the objective alone
    return s._replace(d=jnp.where(use, d, s.d))


def _four(out):
    """``(f, g, H)`` or ``(f, g, H_gauss_newton, H_exact)`` -> the latter."""
    return out if len(out) == 4 else (out[0], out[1], out[2], out[2])


def levenberg_marquardt(
    fgh: Callable,
    x0,
    *,
    max_steps: int,
    ftol=1e-13,
    lam0=1e-3,
    lower=None,
    upper=None,
    max_step=None,
) -> Solution:
    """Minimise from ``x0`` with Levenberg-Marquardt steps on the curvature given by ``fgh``.

    Each step solves ``(H + lam diag|H|) d = -g`` (Marquardt's scaling) on the coordinates
    not held at a bound, projects ``x + d`` onto the box, and accepts the trial point if it
    decreases ``f``; ``lam`` follows Nielsen's rule.

    Args:
        fgh: ``x -> (f, g, H)``, or ``x -> (f, g, H_gauss_newton, H_exact)`` for the hybrid
            rule (Gauss-Newton steps while they make fast progress, then exact ones).
        x0: start, shape ``(P,)``.
        max_steps: bound on the number of evaluations of ``fgh`` (a Python int).
        ftol: converged when an accepted step decreases ``f`` by less than ``ftol``
            relative and the undamped Newton model predicts no more than that.
        lam0: initial damping.
        lower, upper: closed bounds on ``x`` (default: none).
        max_step: the largest change of a coordinate in one step (default: none).

    Returns:
        A :class:`Solution`; ``status`` is :data:`CONVERGED`, :data:`MAX_STEPS`,
        :data:`NONFINITE` or :data:`STALLED`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxlaws import solvers
        >>> fgh = solvers.newton_fgh(lambda x: jnp.sum((x - 2.0) ** 2))
        >>> sol = solvers.levenberg_marquardt(fgh, jnp.zeros(2), max_steps=50)
        >>> solvers.STATUS_NAMES[int(sol.status)], [round(float(v), 6) for v in sol.x]
        ('converged', [2.0, 2.0])
    """
    x0 = jnp.asarray(x0, jnp.float64)
    box = make_box(x0.shape[0], lower, upper, max_step)

    def body(s):
        f, g, Hg, Hn = _four(fgh(s.x + s.d))
        return lm_update(s, f, g, Hg, Hn, box, max_steps=max_steps, ftol=ftol)

    s = jax.lax.while_loop(lambda s: s.status == RUNNING, body, lm_init(jnp.clip(x0, box.lo, box.hi), lam0))
    return Solution(x=s.x, f=s.f, grad_norm=s.gnorm, steps=s.steps, status=s.status)


# ----------------------------------------------------------------------------------------
# Many starts of many tables: a bounded number of steps on a batch of slots
# ----------------------------------------------------------------------------------------


class Slots(NamedTuple):
    """A batch of starts being stepped: their solver states, the table each belongs to,
    the step at which each pauses (its budget in this call), and which task (an index the
    caller keeps) each slot holds. Slots are reordered (the running ones first), so the
    caller reads ``task`` to put results back."""

    st: LMState  # (K, ...)
    table: jnp.ndarray  # (K,) int
    budget: jnp.ndarray  # (K,) int: a slot runs while steps < budget
    task: jnp.ndarray  # (K,) int


def _rows(mask, a, b):
    """``where(mask, a, b)`` with ``mask`` over the leading axis."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


def _running(sl: Slots):
    return (sl.st.status == RUNNING) & (sl.st.steps < sl.budget)


def advance(
    evaluate: Callable,
    sl: Slots,
    n_steps,
    refill_at,
    box: Box,
    *,
    block: int,
    max_steps: int,
    ftol,
    certify: bool = True,
    exact: Callable | None = None,
    accelerate: Callable | None = None,
    start: Callable | None = None,
    floor: Callable | None = None,
) -> Slots:
    """Step the running slots of a batch at most ``n_steps`` times, in one compiled loop.

    A slot runs while its state is running and its steps are below its budget. Every step
    reorders the slots so the running ones come first (when that saves a block), then steps
    only the blocks of ``block`` slots that hold a running one; a block computes the exact
    curvature, the acceleration and the starts' completion only when one of its slots
    needs them. The loop ends after ``n_steps`` steps, or once at most ``refill_at`` slots
    are running (so the caller can refill the others).

    Args:
        evaluate: ``(x, table) -> (f, g, H_gauss_newton, aux)`` for one start of table
            ``table`` (an int); ``aux`` is passed to ``exact`` and ``accelerate``.
        sl: the :class:`Slots` (their number a multiple of ``block``).
        n_steps, refill_at: traced ints.
        box: bounds, step caps and runaway bounds.
        block: slots stepped together.
        max_steps: a start's bound on steps.
        ftol, certify: see :func:`lm_update`.
        exact: optional ``(x, aux, table) -> H_exact``, the exact curvature (else every step
            is a Gauss-Newton one); computed for a block only when one of its slots asks.
        accelerate: optional ``(x, v, aux, table) -> J^T C r_vv`` for geodesic
            acceleration of Gauss-Newton steps (``aux``: what ``evaluate`` returned at ``x``
            after its curvatures).
        start: optional ``(x, table) -> x`` completing a fresh start (e.g. a nuisance
            parameter's start from its residuals).
        floor: optional ``table -> fatol``, the objective's rounding floor on a table (see
            :func:`lm_update`).

    Returns:
        The slots after the loop, reordered.
    """
    K = sl.table.shape[0]
    B = block
    n_blocks = K // B
    pack, unpack = _packer(jax.tree_util.tree_map(lambda a: a[0], sl.st))

    def step_all(buf, table, budget):
        # the slots' states are one (K, F) buffer, so that updating a block in place is
        # plain to XLA (no copy of the whole batch per block)
        def step_block(k, buf):
            st = jax.vmap(unpack)(jax.lax.dynamic_slice_in_dim(buf, k * B, B))
            tab = jax.lax.dynamic_slice_in_dim(table, k * B, B)
            live = (st.status == RUNNING) & (st.steps < jax.lax.dynamic_slice_in_dim(budget, k * B, B))
            # what a block computes is decided from its live slots, by conditionals around
            # the whole block (inside vmap they would cost the branches their fusion); a
            # slot uses only what it asked for, so its path never depends on its block
            if start is not None:
                fresh = jnp.any(live & st.fresh)
                x = jax.lax.cond(
                    fresh,
                    lambda x: jnp.where(st.fresh[:, None], jax.vmap(start)(x, tab), x),
                    lambda x: x,
                    st.x,
                )
                st = st._replace(x=x)
            trial = st.x + st.d
            f, g, Hg, aux = jax.vmap(evaluate)(trial, tab)
            fatol = jax.vmap(floor)(tab) if floor is not None else jnp.zeros(B)
            if exact is not None:
                want = jnp.any(live & st.wants)
                Hn = jax.lax.cond(want, lambda a: jax.vmap(exact)(trial, a, tab), lambda a: Hg, aux)
            else:
                want, Hn = False, Hg
            new = jax.vmap(
                lambda s, f, g, Hg, Hn, fa: lm_update(
                    s,
                    f,
                    g,
                    Hg,
                    Hn,
                    box,
                    max_steps=max_steps,
                    ftol=ftol,
                    fatol=fa,
                    certify=certify,
                    exact=exact is not None,
                    computed=want,
                )
            )(st, f, g, Hg, Hn, fatol)
            if accelerate is not None:
                # a step from a point just accepted, whose residuals and Jacobian this
                # evaluation gave, may be accelerated
                moved = (new.status == RUNNING) & new.accel & jnp.all(new.x == trial, axis=1) & (new.f == f)
                new = jax.lax.cond(
                    jnp.any(live & moved),
                    lambda n: jax.vmap(
                        lambda s, m, a, t: lm_accelerate(
                            s, jnp.where(m, accelerate(s.x, s.d, a, t), jnp.nan), box
                        )
                    )(n, moved, aux, tab),
                    lambda n: n,
                    new,
                )
            new = jax.tree_util.tree_map(lambda a, c: _rows(live, a, c), new, st)
            return jax.lax.dynamic_update_slice_in_dim(buf, jax.vmap(pack)(new), k * B, 0)

        return step_block

    def running(buf, budget):
        st = jax.vmap(unpack)(buf)
        return (st.status == RUNNING) & (st.steps < budget)

    def cond(c):
        buf, table, budget, task, it = c
        return (it < n_steps) & (jnp.sum(running(buf, budget), dtype=jnp.int32) > refill_at)

    def body(c):
        buf, table, budget, task, it = c
        live = running(buf, budget)
        need = (jnp.sum(live, dtype=jnp.int32) + B - 1) // B
        if n_blocks > 1:
            busy = jnp.sum(jnp.any(live.reshape(n_blocks, B), axis=1), dtype=jnp.int32)

            def compact(c):
                perm = jnp.argsort(~live, stable=True)
                return tuple(a[perm] for a in c)

            buf, table, budget, task = jax.lax.cond(
                busy > need, compact, lambda c: c, (buf, table, budget, task)
            )
        buf = jax.lax.fori_loop(0, need, step_all(buf, table, budget), buf)
        return buf, table, budget, task, it + 1

    buf = jax.vmap(pack)(sl.st)
    buf, table, budget, task, _ = jax.lax.while_loop(
        cond, body, (buf, sl.table, sl.budget, sl.task, jnp.asarray(0, jnp.int32))
    )
    return Slots(st=jax.vmap(unpack)(buf), table=table, budget=budget, task=task)


def _packer(example: LMState):
    """``(pack, unpack)`` between one state and a flat float64 row (integers and flags are
    exact in float64)."""
    leaves = list(example)
    shapes = [jnp.shape(a) for a in leaves]
    dtypes = [jnp.asarray(a).dtype for a in leaves]
    sizes = [int(np.prod(sh)) for sh in shapes]
    offsets = np.cumsum([0] + sizes)

    def pack(st: LMState):
        return jnp.concatenate([jnp.ravel(a).astype(jnp.float64) for a in st])

    def unpack(row) -> LMState:
        out = []
        for i, (sh, dt) in enumerate(zip(shapes, dtypes)):
            v = row[offsets[i] : offsets[i + 1]].reshape(sh)
            out.append(v > 0.5 if dt == jnp.bool_ else v.astype(dt))
        return LMState(*out)

    return pack, unpack
