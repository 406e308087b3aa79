"""Batched Levenberg-Marquardt for small problems, with status codes instead of exceptions.

The solver is written for one start; batches come from ``vmap``. Every loop is bounded by
``max_steps`` and reports why it stopped (:data:`CONVERGED`, :data:`MAX_STEPS`,
:data:`NONFINITE`, :data:`STALLED`). The curvature comes with the value and gradient
(``fgh(x) -> (f, g, H)``): the exact Hessian, or for sums of a robust loss of residuals the
reweighted Gauss-Newton matrix, which majorises Huber's loss and so makes fast progress far
from the optimum; the exact Hessian converges quadratically near it.

Bounds are closed boxes ``lower <= x <= upper`` (``-inf``/``inf`` where open), handled as
scipy's L-BFGS-B does in spirit: a coordinate at a bound whose gradient points outward is
held there for the step (projected Newton, Bertsekas 1982), the step is projected onto the
box, and convergence is judged on the free coordinates.

One step evaluates ``fgh`` once, at the trial point, so a loop body holds one copy of the
law's derivative program: that keeps compilation short.

:func:`solve_tables` fits many tables (one, the groups of a batch job, or bootstrap
resamples) from many starts in one call: every start is screened with a few Gauss-Newton
steps, then starts are polished in rank order by a pool of ``slots`` solver slots that are
refilled as soon as a start finishes, so the cost is the total number of steps, not the
slowest start's steps times the batch. A table's polishing widens in rounds (``first``,
``2 first``, ``4 first``, ...) until its best objective is reached by at least two starts
and a wider round finds nothing lower; what happens to one table never depends on the
others in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "NONFINITE",
    "SCREENED",
    "STALLED",
    "ABANDONED",
    "STATUS_NAMES",
    "Plan",
    "Box",
    "Solution",
    "TableSolution",
    "make_box",
    "spd_solve",
    "levenberg_marquardt",
    "newton_fgh",
    "solve_tables",
]

#: The start converged: an accepted step decreased the objective by less than ``ftol``
#: relative and the undamped Newton model predicts no more than that from the point reached.
CONVERGED = 0
#: ``max_steps`` ran out before convergence.
MAX_STEPS = 1
#: The objective or its derivatives were not finite at the start.
NONFINITE = 2
#: Not polished: after screening this start ranked below the starts its table polished.
SCREENED = 3
#: No step decreases the objective any more, yet its gradient is not small (a kink or a
#: numerically flat ridge): the point is not a certified minimum.
STALLED = 4
#: Polishing stopped early: after the first stage of steps the start was still far above
#: the best objective its table had reached (see :class:`Plan`'s ``soft_steps``).
ABANDONED = 5
STATUS_NAMES = ("converged", "max_steps", "nonfinite", "screened_out", "stalled", "abandoned")

_RUNNING = -1
_PAUSED = -2
_LAM_MAX = 1e20
#: Largest damping at which a negligible predicted decrease certifies convergence: with
#: Marquardt's scaling the step is then within a factor ``1 + LAM_CERTIFY / mu`` of Newton's
#: along a direction of relative curvature ``mu``.
LAM_CERTIFY = 1e-8
#: Largest damping at which the exact curvature is used: a heavily damped step has left the
#: region where the exact quadratic model holds, and the Gauss-Newton majoriser makes
#: steadier progress there.
LAM_NEWTON = 1e-3
#: A paused start resumes if its objective is at most ``best + HOPE |best|``: twice the best
#: for a positive objective.
HOPE = 1.0
#: The most a good step shrinks the damping by (Nielsen's rule uses 1/3).
LAM_SHRINK = 1.0 / 3.0


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


class LMState(NamedTuple):
    """A start's solver state. ``x + d`` is the next trial point; ``fresh`` marks a state
    whose start has not been evaluated yet (its first trial is the start itself).

    ``Hg`` and ``Hn`` are the two curvatures at ``x`` (Gauss-Newton and exact; the same
    matrix where only one is given); ``newton`` says which the next step uses, ``hn_ok``
    whether ``Hn`` is the exact curvature at ``x`` (it is computed only when some start wants
    it), ``wants`` whether the next evaluation should compute it.
    """

    x: jnp.ndarray
    f: jnp.ndarray
    g: jnp.ndarray
    Hg: jnp.ndarray
    Hn: jnp.ndarray
    hn_ok: jnp.ndarray
    wants: jnp.ndarray
    newton: jnp.ndarray
    d: jnp.ndarray
    pred: jnp.ndarray
    lam: jnp.ndarray
    nu: jnp.ndarray
    steps: jnp.ndarray
    status: jnp.ndarray
    fresh: jnp.ndarray
    gnorm: jnp.ndarray

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


def _damped_solve(H, g, lam, free):
    """``(H + lam diag|H|) d = -g`` on the free coordinates (active ones get ``d = 0``)."""
    P = g.shape[0]
    eye = jnp.eye(P, dtype=H.dtype)
    diag = jnp.abs(jnp.diagonal(H))
    scale = jnp.maximum(diag, 1e-12 * jnp.max(diag) + 1e-300)
    pair = free[:, None] & free[None, :]
    A = jnp.where(pair, H + lam * scale * eye, eye)
    d = spd_solve(A, jnp.where(free, -g, 0.0))
    return jnp.where(free, d, 0.0)


class Box(NamedTuple):
    """Closed bounds ``lo <= x <= hi`` and the largest step a coordinate may take,
    ``max(cap_abs, cap_rel |x|)``: a step that would move a coordinate further is shortened
    as a whole (its direction kept), so one step cannot throw a log-scale parameter to
    ``exp(-130)``, where its gradient vanishes and it never returns."""

    lo: jnp.ndarray
    hi: jnp.ndarray
    cap_abs: jnp.ndarray
    cap_rel: jnp.ndarray


def make_box(P, lower=None, upper=None, cap_abs=None, cap_rel=None) -> Box:
    """A :class:`Box` for ``P`` coordinates (``None``: unbounded, no step cap)."""

    def full(v, fill):
        return (
            jnp.full(P, fill, jnp.float64)
            if v is None
            else jnp.broadcast_to(jnp.asarray(v, jnp.float64), (P,))
        )

    return Box(full(lower, -jnp.inf), full(upper, jnp.inf), full(cap_abs, jnp.inf), full(cap_rel, 0.0))


def _propose(x, g, H, lam, box):
    """The next step from ``x``: damped, shortened to the step cap, projected onto the box,
    with its predicted decrease. Where ``H + lam diag|H|`` does not factor, ``lam`` grows
    (by 16, from at least 1e-8) until it does. Returns ``(d, pred, lam, grew)``."""
    lo, hi = box.lo, box.hi
    free = _free(x, g, lo, hi)

    def cond(c):
        return ~c[2] & (c[0] < _LAM_MAX)

    def body(c):
        lam_k = jnp.where(c[3] == 0, c[0], jnp.maximum(c[0] * 16.0, 1e-8))
        d = _damped_solve(H, g, lam_k, free)
        return lam_k, d, jnp.all(jnp.isfinite(d)), c[3] + 1

    lam, d, ok, tries = jax.lax.while_loop(cond, body, (lam, jnp.zeros_like(g), jnp.asarray(False), 0))
    d = jnp.where(ok, d, 0.0)
    cap = jnp.maximum(box.cap_abs, box.cap_rel * jnp.abs(x))
    d = d * jnp.minimum(1.0, jnp.min(cap / jnp.maximum(jnp.abs(d), 1e-300)))
    d = jnp.clip(x + d, lo, hi) - x
    pred = -(g @ d + 0.5 * d @ (H @ d))
    return d, pred, lam, tries > 1


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
        d=jnp.zeros(P),
        pred=jnp.asarray(0.0),
        lam=jnp.asarray(lam0, jnp.float64),
        nu=jnp.asarray(2.0),
        steps=jnp.asarray(0, jnp.int32),
        status=jnp.asarray(_RUNNING, jnp.int32),
        fresh=jnp.asarray(True),
        gnorm=jnp.asarray(jnp.inf),
    )


#: A Gauss-Newton step that decreases the objective by less than this fraction hands over
#: to the exact Hessian where that is positive definite (Fletcher and Xu's hybrid rule,
#: guarded): Gauss-Newton makes fast progress far from the optimum, where the exact Hessian
#: misleads, and only linear progress near it.
HYBRID_SWITCH = 1e-3


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
    gtol,
    exact=True,
    certify=True,
    computed=True,
) -> LMState:
    """Take the evaluation ``(f_t, g_t, Hg_t, Hn_t)`` at the trial point ``s.x + s.d``:
    accept or reject it, update the damping (Nielsen's rule), choose the next step's
    curvature (Gauss-Newton while it makes fast progress, then exact), test convergence and
    propose the next step. ``exact=False`` keeps to Gauss-Newton steps; ``computed=False``
    says that ``Hn_t`` is not the exact curvature (it was not asked for); ``max_steps`` may be
    an array (one budget per state). ``certify=False`` counts a negligible accepted
    decrease, or a point no step decreases, as convergence without asking the model (for
    objectives whose minimum is a kink, such as a likelihood that is almost L1). A state
    that has stopped (``status >= 0``) is returned unchanged."""
    running = s.status == _RUNNING
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
    Hn = jnp.where(accept, Hn_t, s.Hn)
    hn_ok = jnp.where(accept, computed, s.hn_ok)
    steps = s.steps + 1
    pg = _grad_norm(x, g, box)
    newton = jnp.where(accept, slow, s.newton) & exact & hn_ok
    small = accept & ~s.fresh & (actual <= ftol * jnp.abs(s.f))
    # a rejected trial whose model promised a negligible decrease: the objective cannot
    # show a gain that small. Certified if that model was near-Newton (small damping)
    tiny = ~accept & ~s.fresh & ok & (s.pred <= ftol * jnp.abs(s.f))
    certified_reject = tiny & ((s.lam <= LAM_CERTIFY) | (not certify))
    # after a negligible decrease, or such a rejection, the next step is a near-Newton one:
    # if even that model predicts nothing more from here, the point is certified
    lam = jnp.where(small | tiny, jnp.minimum(jnp.where(small, lam, s.lam), 0.01 * LAM_CERTIFY), lam)
    newton = newton & (lam <= LAM_NEWTON)
    d, pred, lam, grew = _propose(x, g, jnp.where(newton, Hn, Hg), lam, box)
    # the exact curvature stays in use only where it is positive definite at the damping
    newton = newton & ~grew
    # ask for the exact curvature at the next trial while progress is slow or Newton steps run
    wants = exact & (jnp.where(accept, slow, s.wants) | newton)
    certified = ((pred <= ftol * jnp.abs(f)) & (lam <= LAM_CERTIFY)) | (not certify)
    status = jnp.where(s.fresh & ~ok, NONFINITE, _RUNNING)
    status = jnp.where((small & certified) | certified_reject | (accept & (f == 0.0)), CONVERGED, status)
    stalled = (status == _RUNNING) & (lam >= _LAM_MAX)
    # a stall is a minimum where the gradient is negligible, or anywhere for an objective
    # whose minimum is a kink (no step decreases it; its subgradient need not vanish)
    flat = (pg <= gtol * (1.0 + jnp.abs(f))) | (not certify)
    status = jnp.where(stalled, jnp.where(flat, CONVERGED, STALLED), status)
    status = jnp.where((status == _RUNNING) & (steps >= max_steps), MAX_STEPS, status)
    new = LMState(
        x=x,
        f=jnp.where(s.fresh & ~ok, jnp.inf, f),
        g=g,
        Hg=Hg,
        Hn=Hn,
        hn_ok=hn_ok,
        wants=wants,
        newton=newton,
        d=d,
        pred=pred,
        lam=lam,
        nu=nu,
        steps=steps,
        status=status.astype(jnp.int32),
        fresh=jnp.asarray(False),
        gnorm=pg,
    )
    return jax.tree_util.tree_map(lambda a, b: jnp.where(running, a, b), new, s)


def _four(out):
    """``(f, g, H)`` or ``(f, g, H_gauss_newton, H_exact)`` -> the latter."""
    return out if len(out) == 4 else (out[0], out[1], out[2], out[2])


def _run(fgh, x0, box, *, max_steps, ftol, gtol, lam0=1e-3, certify=True) -> LMState:
    def cond(s):
        return s.status == _RUNNING

    def body(s):
        f, g, Hg, Hn = _four(fgh(s.x + s.d))
        return lm_update(s, f, g, Hg, Hn, box, max_steps=max_steps, ftol=ftol, gtol=gtol, certify=certify)

    return jax.lax.while_loop(cond, body, lm_init(x0, lam0))


def _solution(s: LMState) -> Solution:
    return Solution(x=s.x, f=s.f, grad_norm=s.gnorm, steps=s.steps, status=s.status)


def levenberg_marquardt(
    fgh: Callable,
    x0,
    *,
    max_steps: int,
    ftol=1e-13,
    gtol=1e-9,
    lam0=1e-3,
    lower=None,
    upper=None,
    max_step=None,
) -> Solution:
    """Minimise from ``x0`` with Levenberg-Marquardt steps on the curvature given by ``fgh``.

    Each step solves ``(H + lam diag|H|) d = -g`` (Marquardt's scaling) by Cholesky on the
    coordinates not held at a bound, projects ``x + d`` onto the box, and accepts the
    trial point if it decreases ``f``; ``lam`` follows Nielsen's rule.

    Args:
        fgh: ``x -> (f, g, H)``, or ``x -> (f, g, H_gauss_newton, H_exact)`` for the hybrid
            rule (Gauss-Newton steps while they make fast progress, then exact ones).
        x0: start, shape ``(P,)``.
        max_steps: bound on the number of evaluations of ``fgh`` (a Python int).
        ftol: converged when an accepted step decreases ``f`` by less than ``ftol``
            relative and the undamped Newton model predicts no more than that.
        gtol: when no step decreases ``f`` any more, the point counts as converged if
            ``max |g| <= gtol (1 + |f|)`` on the free coordinates or the Newton model
            predicts a negligible decrease, and as :data:`STALLED` otherwise.
        lam0: initial damping.
        lower, upper: closed bounds on ``x`` (default: none).
        max_step: the largest change of a coordinate in one step (default: none).

    Returns:
        A :class:`Solution`; ``status`` is :data:`CONVERGED`, :data:`MAX_STEPS`,
        :data:`NONFINITE` or :data:`STALLED`.
    """
    x0 = jnp.asarray(x0, jnp.float64)
    box = make_box(x0.shape[0], lower, upper, max_step)
    s = _run(fgh, jnp.clip(x0, box.lo, box.hi), box, max_steps=max_steps, ftol=ftol, gtol=gtol, lam0=lam0)
    return _solution(s)


# ----------------------------------------------------------------------------------------
# Many tables, many starts: screen, then polish in rounds with refilled slots
# ----------------------------------------------------------------------------------------


class Plan(NamedTuple):
    """Static sizes of :func:`solve_tables` (they set the compiled program's shapes).

    Attributes:
        screen_steps: Gauss-Newton steps every start takes before ranking (``0``: none;
            starts are then polished in their given order).
        first: starts a table polishes in its first round.
        cap: most starts a table polishes (``first <= cap <= starts``).
        slots: solver slots working at once (refilled as starts finish).
        max_steps: bound on a start's polishing evaluations.
        screen_chunk: ``0`` screens inside the polishing loop, on the same slots (one loop
            in the program: the shortest compilation); otherwise every start is screened
            first, ``screen_chunk`` at a time (for many starts of one table).
        keep_hessian: also return every polished start's exact curvature (diagnostics).
        certify: certify convergence with the model (see :func:`lm_update`).
        block: slots are stepped in blocks of this many (a divisor of ``slots``; ``0``:
            all at once), busy slots first, and a block without a busy slot is skipped.
        soft_steps: a polishing start that has not converged after this many steps pauses
            (``0``: none do). When its round is complete it resumes, up to ``max_steps``,
            if its objective is within a factor :data:`HOPE` (relative) of the best its
            table reached, and is :data:`ABANDONED` otherwise: a slow start heading for a
            worse basin does not hold its table's round.
    """

    screen_steps: int
    first: int
    cap: int
    slots: int
    max_steps: int
    screen_chunk: int = 0
    keep_hessian: bool = False
    certify: bool = True
    block: int = 0
    soft_steps: int = 0


class TableSolution(NamedTuple):
    """Per table ``t`` and start ``s`` (in the given order of the starts)."""

    x: jnp.ndarray  # (T, S, P)
    f: jnp.ndarray  # (T, S)
    grad_norm: jnp.ndarray  # (T, S)
    steps: jnp.ndarray  # (T, S)
    status: jnp.ndarray  # (T, S)
    polished: jnp.ndarray  # (T,) starts polished
    H: Any  # (T, S, P, P) with keep_hessian, else ()
    iterations: jnp.ndarray  # (T,) passes of the loop (every slot steps once per pass)


class _Pool(NamedTuple):
    st: LMState  # (K, ...) the slots' solver states
    kind: jnp.ndarray  # (K,) 0 screening, 1 polishing
    slot_t: jnp.ndarray  # (K,) table, -1 for a free slot
    slot_i: jnp.ndarray  # (K,) the start (screening) or its rank (polishing)
    scr_x: jnp.ndarray  # (T, S, P) screened starts, in the given order
    scr_f: jnp.ndarray  # (T, S)
    scr_next: jnp.ndarray  # (T,) screening tasks dispatched
    scr_done: jnp.ndarray  # (T,) screening tasks finished
    ranked: jnp.ndarray  # (T,) screening finished and ranked
    order: jnp.ndarray  # (T, S) start of each rank
    x_rank: jnp.ndarray  # (T, S, P) screened starts in rank order
    res: jnp.ndarray  # (T, S, P + 4) polished: x, f, |g|, steps, status; by rank
    res_H: Any  # (T, S, P, P) or ()
    saved: Any  # LMState (T, S, ...) of paused starts, by rank (or () without pausing)
    resume: jnp.ndarray  # (T, S) paused starts to resume
    resumed: jnp.ndarray  # (K,) the slot runs a resumed start
    nxt: jnp.ndarray  # (T,) ranks dispatched for polishing
    ck: jnp.ndarray  # (T,) the round boundary being waited for
    prev: jnp.ndarray  # (T,) best objective at the previous boundary
    done: jnp.ndarray  # (T,)
    it: jnp.ndarray


def _take(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def _rows(mask, a, b):
    """``where(mask, a, b)`` with ``mask`` over the leading axis."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


def solve_tables(
    fgh: Callable,
    x0s,
    tables,
    box: Box,
    *,
    plan: Plan,
    ftol=1e-13,
    gtol=1e-9,
    basin_rtol=1e-6,
    start: Callable | None = None,
) -> TableSolution:
    """Minimise one objective per table from the same starts, in one compiled loop.

    Args:
        fgh: ``(x, table, exact) -> (f, g, H_gauss_newton, H_exact)`` for one start and
            one table (``table`` is one slice of ``tables``); ``exact`` is a traced scalar
            bool: where it is false the function may return the Gauss-Newton matrix twice
            (screening steps never use the exact one).
        x0s: starts, shape ``(S, P0)``.
        tables: a pytree whose leaves have a leading axis of ``T`` tables, or ``None`` for
            one table (``fgh`` then gets ``table=None``).
        box: closed bounds and step caps (:class:`Box`), each of shape ``(P,)``.
        plan: the static :class:`Plan`.
        ftol, gtol: convergence tolerances (see :func:`levenberg_marquardt`).
        basin_rtol: relative gap within which two starts reached the same objective.
        start: ``(x0, table) -> x`` completing a start for a table (e.g. appending a
            nuisance parameter's start); default: the start as given.

    Returns:
        A :class:`TableSolution`. Every start is screened (``screen_steps`` Gauss-Newton
        steps), a table's starts are ranked by their screened objective, and polished in
        rank order. A table stops polishing at the first round boundary (``first``,
        ``2 first``, ... starts) at which its best objective is reached by at least two
        converged starts and is no lower than at the previous boundary, or at ``cap``
        starts; starts beyond are :data:`SCREENED`. Starts polished speculatively beyond
        that boundary are discarded, so a table's result depends only on its own starts.
    """
    x0s = jnp.asarray(x0s, jnp.float64)
    S = x0s.shape[0]
    if tables is None:
        T = 1
        table_at = lambda t: None  # noqa: E731
    else:
        T = jax.tree_util.tree_leaves(tables)[0].shape[0]
        table_at = (lambda t: _take(tables, 0)) if T == 1 else (lambda t: _take(tables, t))  # noqa: E731
    box = Box(*(jnp.asarray(b, jnp.float64) for b in box))
    P = box.lo.shape[0]
    opts = dict(ftol=ftol, gtol=gtol, certify=plan.certify)
    first, cap, K = plan.first, plan.cap, plan.slots
    screening = plan.screen_steps > 0 and first < S
    inline = screening and plan.screen_chunk == 0
    pausing = 0 < plan.soft_steps < plan.max_steps
    i32 = jnp.int32

    def begin(x0, tab):
        x = x0 if start is None else start(x0, tab)
        return jnp.clip(x, box.lo, box.hi)

    if T == 1:
        xs0 = jax.vmap(lambda x0: begin(x0, table_at(0)))(x0s)[None]
    else:
        xs0 = jax.vmap(lambda tab: jax.vmap(lambda x0: begin(x0, tab))(x0s))(tables)

    # --- screening ahead of the loop, in chunks (many starts of one table) --------------
    scr_f0 = jnp.full((T, S), jnp.inf)
    ranked0 = jnp.full(T, not screening)
    order0 = jnp.broadcast_to(jnp.arange(S, dtype=i32), (T, S))
    x_rank0 = xs0
    if screening and not inline:

        def screen_one(x0, tab):
            s = _run(
                lambda x: fgh(x, tab, jnp.asarray(False)),
                x0,
                box,
                max_steps=plan.screen_steps + 1,
                **opts,
            )
            return s.x, s.f

        C = plan.screen_chunk
        n_chunks = -(-S // C)
        pad = n_chunks * C - S

        def screen_table(xt, tab):
            xp = jnp.concatenate([xt, jnp.repeat(xt[-1:], pad, axis=0)]).reshape(n_chunks, C, P)
            xs, fs = jax.lax.map(lambda xc: jax.vmap(lambda x0: screen_one(x0, tab))(xc), xp)
            return xs.reshape(-1, P)[:S], fs.reshape(-1)[:S]

        if T == 1:
            xs, fs = screen_table(xs0[0], table_at(0))
            xs, fs = xs[None], fs[None]
        else:
            xs, fs = jax.vmap(screen_table)(xs0, tables)
        scr_f0 = fs
        xs0 = xs
        order0 = jnp.argsort(jnp.where(jnp.isfinite(fs), fs, jnp.inf), axis=1, stable=True).astype(i32)
        x_rank0 = jnp.take_along_axis(xs, order0[..., None], axis=1)
        ranked0 = jnp.ones(T, bool)

    ranks = jnp.arange(S, dtype=i32)
    init = _Pool(
        st=jax.vmap(lm_init)(jnp.zeros((K, P))),
        kind=jnp.zeros(K, i32),
        slot_t=jnp.full(K, -1, i32),
        slot_i=jnp.zeros(K, i32),
        scr_x=xs0,
        scr_f=scr_f0,
        scr_next=jnp.full(T, 0 if inline else S, i32),
        scr_done=jnp.full(T, 0 if inline else S, i32),
        ranked=ranked0,
        order=order0,
        x_rank=x_rank0,
        res=jnp.concatenate(
            [x_rank0, jnp.full((T, S, 3), jnp.inf), jnp.full((T, S, 1), float(_RUNNING))], axis=-1
        ),
        res_H=jnp.zeros((T, S, P, P)) if plan.keep_hessian else (),
        saved=jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (T, S) + a.shape), lm_init(jnp.zeros(P)))
        if pausing
        else (),
        resume=jnp.zeros((T, S), bool),
        resumed=jnp.zeros(K, bool),
        nxt=jnp.zeros(T, i32),
        ck=jnp.full(T, first, i32),
        prev=jnp.full(T, jnp.inf),
        done=jnp.zeros(T, bool),
        it=jnp.asarray(0, i32),
    )
    per_task = plan.screen_steps + 1 + plan.max_steps
    it_cap = -(-(T * (cap + (S if inline else 0))) // K) * (per_task + 1) + 2 * cap + 8

    def dispatch(p: _Pool) -> _Pool:
        return jax.lax.cond(jnp.any(p.slot_t < 0) & jnp.any(pending(p)), fill, lambda p: p, p)

    def pending(p: _Pool):
        live = ~p.done
        return (
            (live & (p.scr_next < S))
            | (live & p.ranked & (p.nxt < jnp.minimum(2 * p.ck, cap)))
            | jnp.any(p.resume, axis=1)
        )

    def fill(p: _Pool) -> _Pool:
        free = p.slot_t < 0
        live = ~p.done
        # in order: screening, resumed starts, the round's starts, the next round's
        w0 = jnp.where(live, S - p.scr_next, 0)
        wr = jnp.sum(p.resume, axis=1, dtype=i32)
        w1 = jnp.where(live & p.ranked, jnp.maximum(p.ck - p.nxt, 0), 0)
        spec_end = jnp.minimum(2 * p.ck, cap)
        w2 = jnp.where(live & p.ranked, jnp.maximum(spec_end - jnp.maximum(p.nxt, p.ck), 0), 0)
        wants = jnp.concatenate([w0, wr, w1, w2]).astype(i32)
        cum = jnp.cumsum(wants, dtype=i32)
        begin_ = cum - wants
        free_rank = jnp.cumsum(free, dtype=i32) - 1
        assign = free & (free_rank < cum[-1])
        e = jnp.clip(jnp.searchsorted(cum, free_rank, side="right").astype(i32), 0, 4 * T - 1)
        part, t_new = e // T, e % T
        offset = free_rank - begin_[e]
        # the resumed ranks of a table, in order
        resume_order = jnp.argsort(~p.resume, axis=1, stable=True).astype(i32)
        base = jnp.where(
            part == 0,
            p.scr_next[t_new],
            jnp.where(part == 2, p.nxt[t_new], jnp.maximum(p.nxt[t_new], p.ck[t_new])),
        )
        i_new = jnp.where(
            part == 1, resume_order[t_new, jnp.clip(offset, 0, S - 1)], jnp.clip(base + offset, 0, S - 1)
        ).astype(i32)
        got = jnp.clip(jnp.sum(free, dtype=i32) - begin_, 0, wants)
        x_new = jnp.where((part == 0)[:, None], p.scr_x[t_new, i_new], p.x_rank[t_new, i_new])
        fresh = jax.vmap(lm_init)(x_new)
        is_resume = assign & (part == 1)
        if pausing:
            saved = jax.tree_util.tree_map(lambda a: a[t_new, i_new], p.saved)
            saved = saved._replace(status=jnp.full(K, _RUNNING, i32))
            fresh = jax.tree_util.tree_map(lambda a, b: _rows(is_resume, a, b), saved, fresh)
        st = jax.tree_util.tree_map(lambda a, b: _rows(assign, a, b), fresh, p.st)
        tr = jnp.where(is_resume, t_new, T)
        return p._replace(
            st=st,
            kind=jnp.where(assign, jnp.minimum(part, 1), p.kind).astype(i32),
            slot_t=jnp.where(assign, t_new, p.slot_t),
            slot_i=jnp.where(assign, i_new, p.slot_i),
            resumed=jnp.where(assign, is_resume, p.resumed),
            resume=p.resume.at[tr, i_new].set(False, mode="drop"),
            scr_next=(p.scr_next + got[:T]).astype(i32),
            nxt=(p.nxt + got[2 * T : 3 * T] + got[3 * T :]).astype(i32),
        )

    B = plan.block if 0 < plan.block < K else K
    n_blocks = K // B

    def evaluate(p: _Pool) -> _Pool:
        if n_blocks > 1:
            # only blocks holding a busy slot are stepped; when busy slots are spread over
            # more blocks than they need, they are moved to the front first. A tail of a few
            # slow starts then costs one block per step, not the whole pool
            def compact(p):
                perm = jnp.argsort(p.slot_t < 0, stable=True)
                return p._replace(
                    st=jax.tree_util.tree_map(lambda a: a[perm], p.st),
                    kind=p.kind[perm],
                    slot_t=p.slot_t[perm],
                    slot_i=p.slot_i[perm],
                    resumed=p.resumed[perm],
                )

            busy_blocks = jnp.sum(jnp.any((p.slot_t >= 0).reshape(n_blocks, B), axis=1), dtype=i32)
            needed = (jnp.sum(p.slot_t >= 0, dtype=i32) + B - 1) // B
            p = jax.lax.cond(busy_blocks > needed, compact, lambda p: p, p)
        active = p.slot_t >= 0
        tt = jnp.maximum(p.slot_t, 0)
        polishing = p.kind == 1
        # the exact curvature is computed in a pass only if some polishing start wants it
        exact = jnp.any(active & polishing & p.st.wants)
        soft = plan.soft_steps if pausing else plan.max_steps
        budget = jnp.where(polishing, jnp.where(p.resumed, plan.max_steps, soft), plan.screen_steps + 1)

        def one(s, t, b, pol):
            f, g, Hg, Hn = fgh(s.x + s.d, table_at(t), exact)
            return lm_update(s, f, g, Hg, Hn, box, max_steps=b, exact=pol, computed=exact, **opts)

        if n_blocks == 1:
            st = jax.vmap(one)(p.st, tt, budget, polishing)
        else:
            busy = jnp.any(active.reshape(n_blocks, B), axis=1)

            def block(b, st):
                def cut(a):
                    return jax.lax.dynamic_slice_in_dim(a, b * B, B)

                def step(st):
                    new = jax.vmap(one)(jax.tree_util.tree_map(cut, st), cut(tt), cut(budget), cut(polishing))
                    return jax.tree_util.tree_map(
                        lambda a, v: jax.lax.dynamic_update_slice_in_dim(a, v, b * B, 0), st, new
                    )

                return jax.lax.cond(busy[b], step, lambda st: st, st)

            st = jax.lax.fori_loop(0, n_blocks, block, p.st)
        finished = active & (st.status != _RUNNING)
        # screening results, by start
        ts = jnp.where(finished & ~polishing, p.slot_t, T)
        scr_x = p.scr_x.at[ts, p.slot_i].set(st.x, mode="drop")
        scr_f = p.scr_f.at[ts, p.slot_i].set(jnp.where(jnp.isfinite(st.f), st.f, jnp.inf), mode="drop")
        scr_done = p.scr_done.at[ts].add(1, mode="drop")
        # polishing results, by rank; a start out of its first stage's steps pauses
        tp = jnp.where(finished & polishing, p.slot_t, T)
        paused = finished & polishing & ~p.resumed & (st.status == MAX_STEPS) if pausing else False
        status_row = jnp.where(paused, _PAUSED, st.status)
        row = jnp.concatenate(
            [
                st.x,
                st.f[:, None],
                st.gnorm[:, None],
                st.steps[:, None].astype(st.x.dtype),
                status_row[:, None].astype(st.x.dtype),
            ],
            axis=1,
        )
        res = p.res.at[tp, p.slot_i].set(row.astype(p.res.dtype), mode="drop")
        saved = p.saved
        if pausing:
            tq = jnp.where(paused, p.slot_t, T)
            saved = jax.tree_util.tree_map(
                lambda buf, v: buf.at[tq, p.slot_i].set(v, mode="drop"), p.saved, st
            )
        res_H = p.res_H
        if plan.keep_hessian:
            res_H = res_H.at[tp, p.slot_i].set(st.Hn, mode="drop")
        return p._replace(
            st=st,
            slot_t=jnp.where(finished, -1, p.slot_t),
            scr_x=scr_x,
            scr_f=scr_f,
            scr_done=scr_done,
            res=res,
            res_H=res_H,
            saved=saved,
        )

    def rank(p: _Pool) -> _Pool:
        newly = ~p.ranked & (p.scr_done >= S)

        def do(p):
            order = jnp.argsort(p.scr_f, axis=1, stable=True).astype(i32)
            x_rank = jnp.take_along_axis(p.scr_x, order[..., None], axis=1)
            return p._replace(
                order=jnp.where(newly[:, None], order, p.order),
                x_rank=_rows(newly, x_rank, p.x_rank),
                ranked=p.ranked | newly,
            )

        return jax.lax.cond(jnp.any(newly), do, lambda p: p, p)

    def checkpoint(p: _Pool) -> _Pool:
        res_f, res_status = p.res[..., P], p.res[..., P + 3]
        in_ck = ranks[None, :] < p.ck[:, None]
        is_paused = res_status == _PAUSED
        completed = (res_status >= 0) | is_paused
        reached = p.ranked & ~p.done & jnp.all(completed | ~in_ck, axis=1)
        fb = jnp.min(jnp.where(in_ck & jnp.isfinite(res_f), res_f, jnp.inf), axis=1)
        # the round's paused starts: those close to the best resume, the others are abandoned
        paused_here = reached[:, None] & in_ck & is_paused
        hopeful = paused_here & (res_f <= (fb + HOPE * jnp.abs(fb))[:, None])
        resuming = jnp.any(hopeful, axis=1)
        res_status = jnp.where(hopeful, float(_RUNNING), jnp.where(paused_here, float(ABANDONED), res_status))
        reached = reached & ~resuming
        tol = basin_rtol * jnp.abs(fb) + 1e-300
        near = in_ck & (res_status == CONVERGED) & (res_f - fb[:, None] <= tol[:, None])
        nb = jnp.sum(near, axis=1, dtype=i32)
        bar = jnp.where(jnp.isfinite(p.prev), p.prev - basin_rtol * jnp.abs(p.prev), jnp.inf)
        improved = fb < bar
        stop = reached & ((p.ck >= cap) | (~improved & (nb >= 2)))
        done = p.done | stop
        # a finished table's speculative starts are dropped
        drop = (p.slot_t >= 0) & done[jnp.maximum(p.slot_t, 0)]
        status = jnp.where(done[:, None] & ~in_ck, float(_RUNNING), res_status)
        return p._replace(
            done=done,
            prev=jnp.where(reached, fb, p.prev),
            ck=jnp.where(reached & ~stop, jnp.minimum(2 * p.ck, cap), p.ck).astype(i32),
            slot_t=jnp.where(drop, -1, p.slot_t),
            res=p.res.at[..., P + 3].set(status),
            resume=p.resume | hopeful,
        )

    def cond(p):
        return ~jnp.all(p.done) & (p.it < it_cap)

    def body(p):
        p = evaluate(dispatch(p))
        if inline:
            p = rank(p)
        p = checkpoint(p)
        return p._replace(it=p.it + 1)

    p = jax.lax.while_loop(cond, body, init)

    # --- every start's result, in the given order ----------------------------------------
    res_status = p.res[..., P + 3].astype(i32)
    polished = res_status >= 0
    f_scr_rank = jnp.take_along_axis(p.scr_f, p.order, axis=1)
    screen_status = jnp.where(jnp.isfinite(f_scr_rank) | (not screening), SCREENED, NONFINITE)
    x_r = jnp.where(polished[..., None], p.res[..., :P], p.x_rank)
    f_r = jnp.where(polished, p.res[..., P], f_scr_rank)
    st_r = jnp.where(polished, res_status, screen_status)
    screened_steps = plan.screen_steps + 1 if screening else 0
    steps_r = screened_steps + jnp.where(polished, p.res[..., P + 2], 0).astype(i32)
    inv = jnp.argsort(p.order, axis=1).astype(i32)

    def back(a):
        idx = inv.reshape(inv.shape + (1,) * (a.ndim - 2))
        return jnp.take_along_axis(a, idx, axis=1)

    return TableSolution(
        x=back(x_r),
        f=back(f_r),
        grad_norm=back(jnp.where(polished, p.res[..., P + 1], jnp.inf)),
        steps=back(steps_r),
        status=back(st_r.astype(i32)),
        polished=jnp.sum(polished, axis=1, dtype=i32),
        H=back(p.res_H) if plan.keep_hessian else (),
        iterations=jnp.full(T, p.it, i32),
    )
