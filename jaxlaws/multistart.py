"""The multi-start: which starts run, and when a fit has seen enough.

Every start of every table is one Levenberg-Marquardt run (a *task*). The host keeps every
task's solver state and hands batches of them (slots) to a compiled step loop
(:func:`jaxlaws.solvers.advance`), the running ones first, so the cost is the steps the
running tasks take. A task's path depends only on its own start and table, never on which
tasks share its batch: the schedule decides only which tasks run to their end.

The schedule, per table:

1. **Screening**: every start takes ``screen_steps`` steps; the starts are then ranked by
   the objective they reached.
2. **Rounds**: the best ``first`` starts are polished to their end, then the next, doubling
   (``first``, ``2 first``, ``4 first``, ...), until the stopping rule holds or every start
   is polished.
3. **Drawing** (where jaxlaws draws the starts): once every start is polished and the rule
   does not hold, as many new starts are drawn, screened and ranked, and the rounds go on,
   up to ``max_starts`` starts (or ``max_seconds``).

**The stopping rules.** A table's best objective must have been reached by ``min_hits``
converged starts. For the starts given (a grid, a table), the rounds then stop at the
first widening that finds nothing lower. Where jaxlaws draws the starts, every one is
polished (the polished starts are then the uniform sample the rule speaks of) and Boender
and Rinnooy Kan's model (1987) decides: with ``N`` starts converged at ``W`` distinct optima
(told apart by their objective), under a uniform prior on the number of optima and on the
sizes of their regions of attraction, the posterior expected number of optima not yet seen
is ``W (N - 1) / (N - W - 2) - W``. What matters is a lower one: if each optimum not yet
seen is as likely to be the lowest as any seen, the expected number of optima lower than
the best that no start reached is that estimate divided by ``W + 1``. A table stops once
that is at most ``missed`` (0.05); until then as many starts are drawn again, up to
``max_starts`` (or ``max_seconds``). Both estimates are reported.

Polishing more never ends higher: a start's path does not depend on the schedule, so
``polish=None`` (every start polished) ends at or below the default.

Reference:
    Boender and Rinnooy Kan, "Bayesian stopping rules for multistart global optimization
    methods", Mathematical Programming 37 (1987) 59-80.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jaxlaws import solvers

__all__ = ["Policy", "TableSolution", "run", "unseen_basins", "count_basins"]


@dataclasses.dataclass(frozen=True)
class Policy:
    """How a multi-start proceeds (see the module's docstring).

    Attributes:
        screen_steps: steps every start takes before ranking (``0``: none).
        first: starts polished in a table's first round.
        cap: most starts of the given ones a table polishes (``None``: all).
        max_steps: bound on a start's steps.
        min_hits: converged starts the best optimum needs before a table may stop.
        missed: the rule stops a table once the expected number of optima lower than its
            best that no start reached is at most this (``inf``: the plain rule, stop at the
            first widening that confirms the best and finds nothing lower; negative: never).
        basin_rtol: relative objective gap within which starts reached the same optimum.
        max_starts: most starts drawn in all (when ``draw`` is given).
        max_seconds: the time after which no round is widened and nothing is drawn.
    """

    screen_steps: int
    first: int
    cap: int | None
    max_steps: int
    min_hits: int = 2
    missed: float = 0.05
    basin_rtol: float = 1e-6
    max_starts: int = 1024
    max_seconds: float | None = None


class TableSolution(NamedTuple):
    """Per table ``t`` and start ``s`` (starts in the order given, then the ones drawn)."""

    x: np.ndarray  # (T, S, P)
    f: np.ndarray  # (T, S)
    grad_norm: np.ndarray  # (T, S)
    steps: np.ndarray  # (T, S)
    status: np.ndarray  # (T, S)
    polished: np.ndarray  # (T,) starts polished
    H: Any  # (T, S, P, P): each start's curvature where it stopped
    unseen: np.ndarray  # (T,) the expected number of optima not yet seen
    missed: np.ndarray  # (T,) the expected number of them lower than the best
    stopped_by_rule: np.ndarray  # (T,) whether the rule held (else the starts ran out)
    floor: np.ndarray  # (T,) the objective's rounding floor


def count_basins(f, rtol: float, atol: float = 0.0) -> tuple[int, int]:
    """``(N, W)``: the finite objectives and how many distinct optima they form (sorted,
    a new optimum opens where an objective is more than ``rtol`` (relative) plus ``atol``
    above the last one's lowest)."""
    v = np.sort(np.asarray(f, float)[np.isfinite(f)])
    if v.size == 0:
        return 0, 0
    W, low = 1, v[0]
    for x in v[1:]:
        if x - low > rtol * abs(low) + atol + 1e-300:
            W, low = W + 1, x
    return int(v.size), W


def unseen_basins(n: int, w: int) -> float:
    """Boender and Rinnooy Kan's posterior expected number of optima not yet seen after
    ``n`` local searches that found ``w`` distinct ones (``inf`` while ``n <= w + 2``).

    Example:
        >>> round(unseen_basins(8, 1), 3), round(unseen_basins(30, 3), 3), unseen_basins(4, 2)
        (0.4, 0.48, inf)
    """
    if n <= w + 2:
        return float("inf")
    return w * (n - 1) / (n - w - 2) - w


class _Store:
    """Every task's solver state on the host, growing as starts are drawn."""

    def __init__(self, template: solvers.LMState):
        self.fields = {
            k: np.zeros((0,) + np.shape(v)[1:], np.asarray(v).dtype) for k, v in template._asdict().items()
        }
        self.table = np.zeros(0, np.int64)
        self.pos = np.zeros(0, np.int64)  # position in its table's polishing order; -1: unranked

    def __len__(self):
        return self.table.size

    def add(self, states: solvers.LMState, tables) -> np.ndarray:
        """Add one task per row of ``states`` for each table in ``tables``; their ids."""
        first, n = len(self), len(states.x)
        for k, v in states._asdict().items():
            self.fields[k] = np.concatenate(
                [self.fields[k]] + [np.asarray(v, self.fields[k].dtype)] * len(tables)
            )
        self.table = np.concatenate([self.table, np.repeat(np.asarray(tables, np.int64), n)])
        self.pos = np.concatenate([self.pos, np.full(n * len(tables), -1, np.int64)])
        return np.arange(first, len(self))

    def take(self, idx):
        return solvers.LMState(**{k: v[idx] for k, v in self.fields.items()})

    def put(self, idx, st: solvers.LMState):
        for k, v in st._asdict().items():
            self.fields[k][idx] = np.asarray(v)


def run(
    step: Callable,
    init: Callable,
    x0s,
    n_tables: int,
    policy: Policy,
    *,
    slots: int,
    block: int,
    draw: Callable | None = None,
    floor=None,
    progress: Callable[[int], None] | None = None,
) -> TableSolution:
    """Run the multi-start of ``n_tables`` tables from the starts ``x0s``.

    Args:
        step: ``(Slots, n_steps, refill_at) -> Slots`` on NumPy arrays: the compiled
            :func:`jaxlaws.solvers.advance` of the problem.
        init: ``x0s (n, P) -> LMState`` of fresh states (NumPy arrays with a leading axis).
        x0s: starts, shape ``(S, P)`` (every table's), or ``(T, S, P)`` (each table its own).
        n_tables: tables solved (each from every start).
        policy: the :class:`Policy`.
        slots, block: slots per call of ``step`` (a multiple of ``block``).
        draw: ``(n, k) -> (n, P)``, the ``k``-th batch of ``n`` new random starts, for a
            multi-start that draws more when its rule does not hold.
        floor: each table's objective rounding floor (default 0): objectives closer than
            that (plus ``basin_rtol`` relative) are one optimum.
        progress: called with the number of finished tables after every segment.

    Returns:
        A :class:`TableSolution`.
    """
    t0 = time.perf_counter()
    T = int(n_tables)
    floor = np.zeros(T) if floor is None else np.broadcast_to(np.asarray(floor, np.float64), (T,))
    x0s = np.asarray(x0s, np.float64)
    store = _Store(init(x0s.reshape(-1, x0s.shape[-1])[:1]))
    if x0s.ndim == 3:  # one set of starts per table
        for t in range(T):
            store.add(init(x0s[t]), [t])
    else:
        store.add(init(x0s), range(T))
    fl = store.fields
    order = [np.zeros(0, np.int64) for _ in range(T)]  # each table's polishing order (task ids)
    upto = np.zeros(T, np.int64)  # the polished prefix of ``order`` being run
    done = np.zeros(T, bool)
    prev = np.full(T, np.inf)
    unseen = np.full(T, np.inf)
    missed = np.full(T, np.inf)
    by_rule = np.zeros(T, bool)
    screen = policy.screen_steps
    drawn = [x0s.shape[-2]]

    def stopped(t, rule):
        done[t], by_rule[t] = True, rule

    def judge(t):
        """Table ``t`` finished a round: stop, widen, or draw more starts. Whether the table
        goes on (its next round may be complete already)."""
        polished = order[t][: upto[t]]
        fp = np.where(np.isfinite(fl["f"][polished]), fl["f"][polished], np.inf)
        conv = fl["status"][polished] == solvers.CONVERGED
        # the local searches that ended at a minimum, and the distinct minima among them
        atol = floor[t]
        n, w = count_basins(np.where(conv, fp, np.inf), policy.basin_rtol, atol)
        unseen[t] = unseen_basins(n, w)
        # each optimum not yet seen is as likely to be the lowest as any of the w seen
        missed[t] = unseen[t] / (w + 1)
        # the best objective any polished start reached, converged or not: a crawl that
        # ended below every converged start leaves the best unconfirmed
        fb = np.min(fp)
        hits = (
            int(np.sum(conv & (fp - fb <= policy.basin_rtol * abs(fb) + atol + 1e-300)))
            if np.isfinite(fb)
            else 0
        )
        improved = not np.isfinite(prev[t]) or fb < prev[t] - policy.basin_rtol * abs(prev[t]) - atol
        prev[t] = fb
        confirmed = hits >= policy.min_hits
        # the plain rule (``missed=inf``): confirmed, and the last widening found nothing lower
        rule = confirmed and (missed[t] <= policy.missed if np.isfinite(policy.missed) else not improved)
        cap = len(order[t]) if policy.cap is None else min(policy.cap, len(order[t]))
        if rule or (policy.max_seconds is not None and time.perf_counter() - t0 > policy.max_seconds):
            stopped(t, rule)
        elif upto[t] < cap:
            upto[t] = min(2 * upto[t], cap)
            return True
        elif draw is not None and sum(drawn) < policy.max_starts:
            k = min(sum(drawn), policy.max_starts - sum(drawn))
            xs = np.asarray(draw(k, len(drawn)), np.float64)
            drawn.append(len(xs))
            store.add(init(xs), np.flatnonzero(~done))  # every table still going gets them
            return True
        else:
            stopped(t, False)
        return False

    def settle():
        """Rank tables whose screening is complete; judge tables whose round is complete."""
        nonlocal fl
        again = True
        while again:
            again = False
            fl = store.fields
            running = fl["status"] == solvers.RUNNING
            tab = store.table
            unranked = store.pos < 0
            screening = np.bincount(tab[unranked & running & (fl["steps"] < screen)], minlength=T)
            waiting = np.bincount(tab[unranked], minlength=T)
            for t in np.flatnonzero(~done & (waiting > 0) & (screening == 0)):
                new = np.flatnonzero(unranked & (tab == t))
                rest = np.concatenate([order[t][upto[t] :], new])
                f = fl["f"][rest]
                rest = rest[np.argsort(np.where(np.isfinite(f), f, np.inf), kind="stable")]
                order[t] = np.concatenate([order[t][: upto[t]], rest])
                store.pos[order[t]] = np.arange(len(order[t]))
                if upto[t] == 0:
                    upto[t] = min(policy.first, len(order[t]))
            unranked = store.pos < 0
            in_round = ~unranked & (store.pos < upto[tab])
            busy = np.bincount(tab[in_round & running], minlength=T)
            waiting = np.bincount(tab[unranked], minlength=T)
            for t in np.flatnonzero(~done & (waiting == 0) & (busy == 0) & (upto > 0)):
                again |= judge(t)

    def wanted():
        """Tasks that should run now, in priority order (screening first, then the lowest
        objective), with their step budgets."""
        running = fl["status"] == solvers.RUNNING
        tab = store.table
        unranked = store.pos < 0
        live = running & ~done[tab]
        scr = live & unranked & (fl["steps"] < screen)
        pol = live & ~unranked & (store.pos < upto[tab])
        idx = np.flatnonzero(scr | pol)
        f = fl["f"][idx]
        idx = idx[np.lexsort((np.where(np.isfinite(f), f, np.inf), ~scr[idx]))]
        return idx, np.where(scr[idx], screen, policy.max_steps).astype(np.int32)

    K = slots
    settle()
    while not done.all():
        idx, budget = wanted()
        if not idx.size:
            raise RuntimeError("multistart: no task to run and a table not finished")  # pragma: no cover
        more = idx.size > K
        idx, budget = idx[:K], budget[:K]
        n = idx.size
        pad = K - n
        sl = solvers.Slots(
            st=store.take(np.concatenate([idx, np.repeat(idx[-1:], pad)])),
            table=store.table[np.concatenate([idx, np.repeat(idx[-1:], pad)])].astype(np.int32),
            budget=np.concatenate([budget, np.zeros(pad, np.int32)]),
            task=np.arange(K, dtype=np.int32),
        )
        n_steps = screen if screen > 0 and np.all(budget == screen) else policy.max_steps
        out = step(sl, n_steps, K // 2 if more else 0)
        task = np.asarray(out.task)
        real = task < n
        store.put(idx[task[real]], solvers.LMState(*(np.asarray(a)[real] for a in out.st)))
        settle()
        if progress is not None:
            progress(int(done.sum()))
    return _collect(store, order, upto, unseen, missed, by_rule, T, floor)


def _collect(store: _Store, order, upto, unseen, missed, by_rule, T, floor) -> TableSolution:
    fl = store.fields
    S = max(int(np.sum(store.table == t)) for t in range(T))
    P = fl["x"].shape[1]
    x = np.zeros((T, S, P))
    f = np.full((T, S), np.inf)
    gn = np.full((T, S), np.inf)
    steps = np.zeros((T, S), np.int64)
    status = np.full((T, S), solvers.SCREENED, np.int64)
    H = np.zeros((T, S, P, P))
    polished = np.zeros(T, np.int64)
    for t in range(T):
        ids = np.flatnonzero(store.table == t)
        k = len(ids)
        done = np.isin(ids, order[t][: upto[t]])
        st = fl["status"][ids]
        x[t, :k] = fl["x"][ids]
        f[t, :k] = np.where(np.isfinite(fl["f"][ids]), fl["f"][ids], np.inf)
        steps[t, :k] = fl["steps"][ids]
        # a start the rule did not need (or only screened) is reported as screened out
        status[t, :k] = np.where(
            done & (st >= 0), st, np.where(st == solvers.NONFINITE, st, solvers.SCREENED)
        )
        gn[t, :k] = np.where(done, fl["gnorm"][ids], np.inf)
        H[t, :k] = np.where(fl["hn_ok"][ids][:, None, None], fl["Hn"][ids], fl["Hg"][ids])
        polished[t] = int(done.sum())
    return TableSolution(
        x=x,
        f=f,
        grad_norm=gn,
        steps=steps,
        status=status,
        polished=polished,
        H=H,
        unseen=unseen.copy(),
        missed=missed.copy(),
        stopped_by_rule=by_rule.copy(),
        floor=np.array(floor),
    )
