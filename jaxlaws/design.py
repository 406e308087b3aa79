"""Which runs to train next: sequential design for a fitted law, under a compute budget.

:func:`next_runs` takes a fit (:func:`jaxlaws.fit`), the table it was fitted on, a table of
candidate runs with their costs and a table of target points (where predictions matter:
the large models one will train), and picks, one at a time, the candidate whose run is
expected to reduce the predictive error at the targets most per unit of cost, until ``n``
picks or until no candidate fits in what is left of the budget. :func:`replay` runs the
same loop on a pool of finished runs, revealing each chosen run's outcome and refitting,
and records how well the law predicts the targets at fractions of the pool's cost (the
protocol of ScaleBench, Li et al. 2026).

**The linearised model.** Let ``g(x; u)`` be the law's prediction in the space the fit
measures residuals in (``log`` of the target for the log objectives ``huber``, ``sse_log``
and ``huber_likelihood``; the target itself for ``sse`` and ``huber_linear``) and ``u`` the
fit's free parameters in the **optimiser's coordinates** (``log`` of a positive parameter,
the parameter itself for a real one; frozen parameters and the objective's nuisance scale
excluded). ``j(x) = dg/du`` at the fitted ``u`` is taken by ``jax.jacfwd`` of the law over
every row of a table at once, runs, candidates and targets in one compiled call (one per
basin, ``vmap``-ed). The information of the fitted runs is

.. math:: M = J_R^T J_R / s^2 + \\Lambda, \\qquad \\Sigma = M^{-1}

with ``s^2`` the residual variance of the fit, computed from its residuals exactly as
:mod:`jaxlaws.covariance` does (``RSS / (n - p)`` for least squares; Huber's variance at a
robust MAD scale for the Huber objectives), and ``Lambda`` a prior precision (zero by
default; ``prior="ranges"``: ``(4 / width)^2`` per coordinate, ``width`` the declared range
of the parameter in its optimiser coordinate, as ScaleBench's ``(log hi - log lo) / 4``
prior standard deviation). ``Sigma`` is ``M``'s inverse with the eigenvalues of the
unit-diagonal curvature floored at :data:`~jaxlaws.covariance.FLAT_RTOL` of the largest (a
direction the runs do not determine has a large, finite variance). Every score is invariant
to a reparametrisation of ``u`` when ``Lambda = 0``: the coordinates matter only to the prior
and to the floor.

**Criteria** (for a candidate ``c``, Jacobian ``j_c``, and targets ``t = 1..T``):

- ``"v"`` (V-optimal): the mean predictive variance at the targets,
  ``V = (1/T) sum_t j_t^T Sigma j_t``, and its reduction when ``c``'s row is added
  (Sherman-Morrison, the outcome's noise variance ``s^2``):
  ``dV_c = (1/T) sum_t (j_t^T Sigma j_c)^2 / (s^2 + j_c^T Sigma j_c)``.
- ``"d"`` (D-optimal): the gain in ``log det M``: ``log(1 + j_c^T Sigma j_c / s^2)``.
- ``"basin"`` (ScaleBench's MSPE, ``mspe.py``): the fit's distinct optima
  (:attr:`jaxlaws.FitResult.basins`) ``k = 1..K``, each with its own ``Sigma_k`` (the
  Jacobians at its parameters, the common ``s^2``), its target predictions ``f_k`` and a
  likelihood weight ``w_k ~ exp(-Delta chi^2_k / 2)`` from its objective gap
  (``Delta chi^2 = 2 Delta f / (h s^2)``, :mod:`jaxlaws.covariance`'s metric; basins of
  weight below :data:`MIN_BASIN_WEIGHT` are dropped). The expected squared error at the
  targets is ``MSPE = sum_k w_k V_k + sum_{k<l} w_k w_l |f_k - f_l|^2 / T``, and a
  candidate's gain is ``dV_within + dV_between``: ``dV_within = sum_k w_k dV_{c,k}`` (the
  V-optimal gain in each basin) and ``dV_between`` the expected reduction of the
  between-basin term once ``y_c`` is observed. Given ``y``, basin ``k``'s predictions move
  by ``g_k (y - m_k)`` (``m_k`` its prediction at ``c``, ``g_k = J_t Sigma_k j_c / s_k^2``,
  ``s_k^2 = s^2 + j_c^T Sigma_k j_c``) and its weight becomes ``w_k phi_k(y) / p(y)``
  (``phi_k = N(m_k, s_k^2)``, ``p = sum_k w_k phi_k``), so
  ``E[between after] = int sum_{k<l} w_k w_l phi_k phi_l / p |f'_k(y) - f'_l(y)|^2 / T dy``,
  computed by the trapezoid rule on the union of the basins' grids (:data:`QUAD_NODES`
  points over ``m_k +- 8 s_k`` each, so each basin is resolved at its own scale: within
  ``1e-3`` of the between-basin term of a fine grid in the tests, with basins' spreads a
  hundred times apart). ScaleBench's ``mspe.py`` uses a 500-point trapezoid on one grid
  for all candidates, clusters the starts by the divergence of their predictions and
  weighs modes by BIC; here the basins are jaxlaws' (distinct objective values) and the
  weights its likelihood ratio. With one basin, ``"basin"`` is ``"v"``.

**Cost and the greedy loop.** A candidate's score is its gain per ``(cost / budget) **
cost_power``. ``cost_power = 1`` is the textbook cost-benefit greedy (gain per unit of
cost); ScaleBench uses ``0.4`` (``mspe.py``, ``baseline_dopt.py``; ``0.3`` in ``vopt.py``),
which leans less hard towards cheap runs: with costs spread over decades, the gain per
unit cost of a tiny run far from the targets usually beats a run near them, though the
near run says more about the targets. The default :data:`COST_POWER` is ScaleBench's
``0.4``, the setting its published Table 2 was run with. Candidates are picked one at a time
(every candidate scored in one batched call); a pick adds its row to the information
(``M += j_c j_c^T / s^2``, no refit: its outcome is not known) and the rest are scored
again. For ``"basin"``, whose between-basin term depends on the outcome, the picked run's
outcome is taken to be its expected value ``sum_k w_k m_k`` (the "kriging believer" of
Ginsbourger et al. 2010): the weights and the basins' predictions are updated as if it had
been observed. A candidate is picked at most once.

References:
    Li et al., "Spend Less, Fit Better: Budget-Efficient Scaling Law Fitting via Active
    Experiment Selection", arXiv 2604.22753, 2026 (ScaleBench); Fedorov, *Theory of Optimal
    Experiments*, 1972; Krause and Guestrin, "A note on the budgeted maximization of
    submodular functions", 2005; Ginsbourger, Le Riche and Carraro, "Kriging is well-suited
    to parallelize optimization", 2010.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws import solvers
from jaxlaws.covariance import FLAT_RTOL, huber_efficiency
from jaxlaws.data import LawData, fitted_input_columns, prepare
from jaxlaws.fit import BASIN_RTOL, FitResult
from jaxlaws.laws import Law, get
from jaxlaws.problem import Layout, Problem, setup
from jaxlaws.starts import draws_starts, make_starts

__all__ = [
    "Design",
    "Replay",
    "next_runs",
    "replay",
    "costs",
    "CRITERIA",
    "COST_POWER",
    "MAX_BASINS",
    "MIN_BASIN_WEIGHT",
    "QUAD_NODES",
    "QUAD_WIDTH",
]

#: The criteria of :func:`next_runs`; :func:`replay` takes ``"random"`` and ``"cheapest"`` too.
CRITERIA = ("v", "d", "basin")
#: Baselines of :func:`replay` that pick without the fit.
BASELINES = ("random", "cheapest")
#: Default exponent of the cost in a score, ``gain / (cost / budget) ** cost_power``
#: (ScaleBench's, module docstring).
COST_POWER = 0.4
#: Most basins the ``"basin"`` criterion keeps (best first).
MAX_BASINS = 8
#: Basins whose normalised likelihood weight is below this are dropped (as ScaleBench's 0.001).
MIN_BASIN_WEIGHT = 1e-3
#: The expected between-basin term is integrated by the trapezoid rule on the union of
#: every basin's grid of this many points, evenly spaced over its predictive mean plus or
#: minus ``QUAD_WIDTH`` standard deviations.
QUAD_NODES = 64
QUAD_WIDTH = 8.0
#: The residual variance is floored at this fraction of the fitted target's variance (an
#: exact fit would otherwise make the information infinite).
NOISE_FLOOR = 1e-12
#: :func:`replay`'s initial design: the cheapest runs, as many as this times the free
#: parameters, within this fraction of the pool's cost (ScaleBench's ``cheap_init``).
INIT_PER_PARAM = 2.5
INIT_FRACTION = 0.02
#: :func:`replay`'s refits start from the previous fit's basins (at most this many) and
#: random starts, this many in all.
REFIT_STARTS = 16
WARM_BASINS = 8

_POLISHED = (solvers.CONVERGED, solvers.MAX_STEPS, solvers.STALLED, solvers.DIVERGED)
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


# ----------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class Design:
    """The runs :func:`next_runs` picked, in pick order.

    Attributes:
        picks: the chosen candidate rows in pick order: the candidate's columns, then
            ``candidate`` (its row label), ``cost``, ``gain`` (the criterion's expected gain
            when it was picked: variance for ``"v"`` and ``"basin"``, in the fitted space's
            units squared; ``log det`` for ``"d"``), ``score`` (``gain / (cost / budget) **
            cost_power``), ``variance`` (the predicted mean variance at the targets after
            this pick) and ``spent`` (the cost of the picks so far).
        candidates: every candidate with its ``cost``, first-round ``gain`` and ``score``
            (given the fitted runs only), and ``pick`` (its position in :attr:`picks`, -1 if
            not picked); for ``"basin"``, ``gain_within`` and ``gain_between`` too.
        criterion: ``"v"``, ``"d"`` or ``"basin"``.
        budget: the budget; spent: the picks' total cost.
        cost_power: the exponent of the cost in a score.
        variance_before, variance_after: the predicted mean variance at the targets (for
            ``"basin"``, the mean squared prediction error, basins' disagreement included)
            before the picks and after them.
        noise_variance: ``s^2``, the fit's residual variance in the fitted space.
        space: ``"log"`` or ``"linear"``: the space the variances are in.
        n_basins: basins used (1 for ``"v"`` and ``"d"``).
        stopped: ``"n"`` (``n`` picks made), ``"budget"`` (no candidate left fits in the
            budget) or ``"candidates"`` (every candidate picked).
    """

    picks: pd.DataFrame
    candidates: pd.DataFrame
    criterion: str
    budget: float
    spent: float
    cost_power: float
    variance_before: float
    variance_after: float
    noise_variance: float
    space: str
    n_basins: int
    stopped: str

    def frame(self) -> pd.DataFrame:
        """The picks, one row each in pick order (:attr:`picks`)."""
        return self.picks.copy()

    def summary(self) -> str:
        what = "mean squared prediction error" if self.criterion == "basin" else "mean predictive variance"
        where = "log of the target" if self.space == "log" else "the target"
        basins = f", {self.n_basins} basins" if self.criterion == "basin" else ""
        lines = [
            f"criterion {self.criterion!r}{basins}, cost power {self.cost_power:g}: {len(self.picks)} picks, "
            f"cost {self.spent:.4g} of budget {self.budget:.4g} (stopped: {_STOPPED[self.stopped]})",
            f"{what} at the targets ({where}): {self.variance_before:.4g} -> {self.variance_after:.4g}"
            + (
                f" ({100.0 * (1.0 - self.variance_after / self.variance_before):.1f}% lower)"
                if self.variance_before > 0
                else ""
            ),
        ]
        p = self.picks
        for i, (label, cost, gain, score, var) in enumerate(
            zip(p["candidate"], p["cost"], p["gain"], p["score"], p["variance"]), start=1
        ):
            lines.append(
                f"  {i:>3}. row {_label(label)}: cost {cost:.4g}, gain {gain:.4g}, score {score:.4g}, "
                f"then {var:.4g}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Design({self.summary()})"


def _label(v) -> str:
    """A row label as the user wrote it (``3``, ``'c3'``), not as NumPy's repr."""
    return repr(v.item() if isinstance(v, np.generic) else v)


_STOPPED = {
    "n": "n picks made",
    "budget": "no candidate left fits in the budget",
    "candidates": "every candidate picked",
}


@dataclasses.dataclass(frozen=True, repr=False)
class Replay:
    """A replay of sequential design on a pool of finished runs (:func:`replay`).

    Attributes:
        checkpoints: one row per budget fraction: ``fraction``, ``budget`` (that fraction of
            the pool's cost), ``spent`` and ``runs`` of the fit used there (the last whose
            runs cost at most the budget), ``r2`` (``1 - SSE / SST`` of the targets' true
            values, in the target's own space), ``r2_clipped`` (clipped to ``[-1, 1]`` as
            ScaleBench reports it) and ``within`` (``False`` where even the initial design
            cost more than the budget: its fit is used).
        steps: one row per state of the design: ``step`` (0 for the initial design),
            ``row`` (the pool row added, ``None`` at step 0), ``cost``, ``spent``,
            ``fraction`` (``spent`` over the pool's cost), ``gain`` and ``score`` of the pick
            (``nan`` for the baselines), and for each state that was fitted ``r2``,
            ``objective``, ``status`` and ``basins`` (``nan`` / ``None`` where not: the
            baselines are fitted only at the checkpoints).
        criterion: ``"v"``, ``"d"``, ``"basin"``, ``"random"`` or ``"cheapest"``.
        seed: the seed of the random starts and of the baselines' draws.
        initial: the pool row labels of the initial design.
        total_cost: the pool's total cost.
    """

    checkpoints: pd.DataFrame
    steps: pd.DataFrame
    criterion: str
    seed: int
    initial: tuple
    total_cost: float

    def frame(self) -> pd.DataFrame:
        """The checkpoints (:attr:`checkpoints`)."""
        return self.checkpoints.copy()

    def summary(self) -> str:
        lines = [
            f"replay {self.criterion!r} (seed {self.seed}): initial design {len(self.initial)} runs, "
            f"{len(self.steps) - 1} picks, pool cost {self.total_cost:.4g}"
        ]
        for _, r in self.checkpoints.iterrows():
            note = "" if r["within"] else " (the initial design alone costs more)"
            lines.append(
                f"  {100 * r['fraction']:6.2f}% of the cost: {int(r['runs'])} runs, spent "
                f"{r['spent'] / self.total_cost:.4%}, target R^2 {r['r2']:.4f}{note}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Replay({self.summary()})"


# ----------------------------------------------------------------------------------------
# Costs
# ----------------------------------------------------------------------------------------


def costs(
    cost: str | Callable[[pd.DataFrame], Any],
    table: pd.DataFrame,
    *,
    names: Mapping[str, Any] | None = None,
    role: str = "candidates",
) -> np.ndarray:
    """Each row's cost, checked positive and finite.

    Args:
        cost: a column of ``table``; an expression of its columns (and of the law's input
            names, through ``names``) with numbers, ``+ - * / **`` and parentheses, such as
            ``"6*N*D"`` (parsed, never evaluated as Python); or a callable ``table -> costs``.
        table: the rows.
        names: extra names an expression may use (a law input's name -> its column).
        role: the table's name in messages.

    Returns:
        The costs, shape ``(rows,)``, float64.

    Raises:
        ValueError: an expression with an unknown name or a construct other than the above,
            a column that is not numeric, or a cost that is not positive and finite (naming
            the row and the value).
        TypeError: ``cost`` neither a string nor a callable.
    """
    index = list(table.index)
    if callable(cost):
        values = np.asarray(cost(table))
        what = f"cost {getattr(cost, '__name__', 'callable')}"
    elif isinstance(cost, str):
        if cost in table.columns:
            values, what = table[cost].to_numpy(), f"cost column {cost!r}"
        else:
            values, what = _expression(cost, table, dict(names or {}), role), f"cost {cost!r}"
    else:
        raise TypeError(
            f"cost must be a column name, an expression such as '6*N*D', or a callable, got "
            f"{type(cost).__name__}"
        )
    values = np.broadcast_to(np.asarray(values), (len(index),)) if np.ndim(values) == 0 else values
    if values.dtype.kind == "b":
        raise ValueError(f"{role}: {what} holds true/false values, not costs")
    if values.dtype.kind not in "iuf":
        try:
            values = np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{role}: {what} is not numeric") from None
    values = np.asarray(values, np.float64)
    if values.shape != (len(index),):
        raise ValueError(f"{role}: {what} gave shape {values.shape} for {len(index)} rows")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = float(values[i])
        raise ValueError(f"{role}: {what}, row {index[i]!r}: value {v!r} is not a positive cost")
    return values


def _expression(text: str, table: pd.DataFrame, names: dict, role: str) -> np.ndarray:
    """Evaluate a cost expression over a table's columns: names, numbers, ``+ - * / **``,
    unary signs and parentheses only."""
    rule = "only column names, numbers, + - * / ** and parentheses"
    if len(text) > 1000:
        raise ValueError(f"{role}: cost expression is longer than 1000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(
            f"{role}: cost {text!r} is neither a column of the table nor an expression ({rule}); the table "
            f"has columns {[str(c) for c in table.columns]}"
        ) from None

    def column(name):
        col = name if name in table.columns else names.get(name)
        if col is None or isinstance(col, list) or col not in table.columns:
            raise ValueError(
                f"{role}: cost expression {text!r} names {name!r}, which is not a column of the table "
                f"{[str(c) for c in table.columns]}"
            )
        v = table[col].to_numpy()
        if v.dtype.kind not in "iuf":
            raise ValueError(f"{role}: cost expression {text!r}: column {col!r} is not numeric")
        return v.astype(np.float64)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return column(node.id)
        raise ValueError(f"{role}: cost expression {text!r}: {ast.unparse(node)!r} is not allowed ({rule})")

    with np.errstate(all="ignore"):
        return np.asarray(ev(tree), np.float64)


# ----------------------------------------------------------------------------------------
# The linearised model: Jacobians, information, noise
# ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _linearise(law: Law, layout: Layout, space: str):
    """The jitted ``(xs (K, P), frozen, inputs) -> (g (K, n), J (K, n, P))``: each basin's
    prediction in the fitted space and its Jacobian in the optimiser's coordinates, at every
    row of one table (``jax.jacfwd`` over the rows at once, ``vmap`` over basins)."""

    def one(xl, frozen_values, inputs):
        def pred(z):
            params = law.params(*layout.unpack_law(z, frozen_values))
            out = law.log_predict(params, *inputs) if space == "log" else law(params, *inputs)
            g = jnp.ravel(out)
            return g, g

        J, g = jax.jacfwd(pred, has_aux=True)(xl)
        return g, J

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def _inverse(M):
    """``M^-1`` of a symmetric positive semi-definite ``M``, the eigenvalues of its
    unit-diagonal form floored at ``FLAT_RTOL`` of the largest."""
    diag = jnp.diagonal(M)
    d = jnp.where(diag > 0, jnp.sqrt(jnp.where(diag > 0, diag, 1.0)), 1.0)
    lam, V = jnp.linalg.eigh(M / jnp.outer(d, d))
    lam = jnp.maximum(lam, FLAT_RTOL * jnp.maximum(lam[-1], 1e-300))
    return (V / lam) @ V.T / jnp.outer(d, d)


class _State(NamedTuple):
    """The design's state: per basin the information ``M`` (K, P, P), weight ``w`` (K,),
    predictions at the targets ``ft`` (K, T) and at the candidates ``mc`` (K, C)."""

    M: jnp.ndarray
    w: jnp.ndarray
    ft: jnp.ndarray
    mc: jnp.ndarray


def _between_gain(g, mc, s2c, ft, w, x):
    """Expected reduction of the basins' disagreement at the targets (module docstring):
    ``g`` (K, T, C) gains, ``mc`` (K, C) and ``s2c`` (K, C) the predictive means and
    variances at the candidates, ``ft`` (K, T), ``w`` (K,); ``x`` (Q,) the standardised
    grid each basin contributes (trapezoid rule on the union of the basins' grids)."""
    K, T = ft.shape
    dm = mc - mc[0]  # means relative to the best basin's (K, C)
    u = (ft - ft[0])[:, :, None] - g * dm[:, None, :]  # (K, T, C)
    Guu = jnp.einsum("ktc,ltc->klc", u, u) / T
    Gug = jnp.einsum("ktc,ltc->klc", u, g) / T
    Ggg = jnp.einsum("ktc,ltc->klc", g, g) / T

    def pair(G):  # mean over t of (a_k - a_l)(b_k - b_l) from the Gram G[k, l] = a_k . b_l / T
        dg = jnp.diagonal(G, axis1=0, axis2=1).T  # (K, C)
        return dg[:, None, :] + dg[None, :, :] - G - jnp.swapaxes(G, 0, 1)

    A, B, Cq = pair(Guu), 2.0 * pair(Gug), pair(Ggg)  # |f'_k - f'_l|^2 / T = A + B y + C y^2
    dft = ft[:, None, :] - ft[None, :, :]
    before = 0.5 * jnp.einsum("k,l,kl->", w, w, jnp.mean(dft * dft, axis=-1))
    s = jnp.sqrt(s2c)
    y = jnp.sort((dm[:, None, :] + s[:, None, :] * x[None, :, None]).reshape(-1, dm.shape[1]), axis=0)
    z = (y[:, None, :] - dm[None]) / s[None]  # (N, K, C)
    logwp = jnp.log(jnp.maximum(w, 1e-300))[None, :, None] - 0.5 * z * z - jnp.log(s)[None]
    logp = jax.scipy.special.logsumexp(logwp, axis=1) - 0.5 * jnp.log(2.0 * jnp.pi)  # (N, C)
    post = jax.nn.softmax(logwp, axis=1)

    def quad(G):  # sum_{k,l} post_k post_l G_kl at every point
        return jnp.einsum("nkc,klc,nlc->nc", post, G, post)

    F = jnp.exp(logp) * 0.5 * (quad(A) + y * quad(B) + y * y * quad(Cq))
    after = jnp.sum(0.5 * (y[1:] - y[:-1]) * (F[1:] + F[:-1]), axis=0)
    return jnp.maximum(before - after, 0.0)


@functools.partial(jax.jit, static_argnames=("criterion",))
def _gains(state: _State, Jc, Jt, s2, x, *, criterion: str):
    """Every candidate's gain ``(total, within, between)``, each (C,), in one call."""
    Sig = jax.vmap(_inverse)(state.M)
    A = jnp.einsum("kcp,kpq->kcq", Jc, Sig)  # Sigma_k j_c
    lev = jnp.maximum(jnp.sum(A * Jc, axis=-1), 0.0)  # (K, C): j_c^T Sigma_k j_c
    zero = jnp.zeros(Jc.shape[1])
    if criterion == "d":
        gain = jnp.log1p(lev[0] / s2)
        return gain, gain, zero
    s2c = s2 + lev
    cross = jnp.einsum("ktp,kcp->ktc", Jt, A)  # (K, T, C): j_t^T Sigma_k j_c
    within = jnp.sum(state.w[:, None] * jnp.mean(cross * cross, axis=1) / s2c, axis=0)
    if criterion == "v" or Jc.shape[0] == 1:
        return within, within, zero
    between = _between_gain(cross / s2c[:, None, :], state.mc, s2c, state.ft, state.w, x)
    return within + between, within, between


@jax.jit
def _value(state: _State, Jt):
    """The mean squared prediction error at the targets: ``sum_k w_k V_k`` plus the basins'
    disagreement (the mean predictive variance for one basin)."""
    Sig = jax.vmap(_inverse)(state.M)
    V = jnp.mean(jnp.einsum("ktp,kpq,ktq->kt", Jt, Sig, Jt), axis=1)
    d = state.ft[:, None, :] - state.ft[None, :, :]
    between = 0.5 * jnp.einsum("k,l,kl->", state.w, state.w, jnp.mean(d * d, axis=-1))
    return jnp.sum(state.w * V) + between


@functools.partial(jax.jit, static_argnames=("believe",))
def _add(state: _State, Jc, Jt, s2, c, *, believe: bool) -> _State:
    """The state after candidate ``c``'s row is added (no outcome: its information only; with
    ``believe``, its outcome taken as the basins' expected value)."""
    j = Jc[:, c, :]  # (K, P)
    M = state.M + j[:, :, None] * j[:, None, :] / s2
    if not believe:
        return state._replace(M=M)
    Sig = jax.vmap(_inverse)(state.M)
    a = jnp.einsum("kpq,kq->kp", Sig, j)
    s2c = s2 + jnp.maximum(jnp.sum(a * j, axis=-1), 0.0)  # (K,)
    m = state.mc[:, c]
    y = jnp.sum(state.w * m)
    shift = (y - m) / s2c
    ft = state.ft + jnp.einsum("ktp,kp->kt", Jt, a) * shift[:, None]
    mc = state.mc + jnp.einsum("kcp,kp->kc", Jc, a) * shift[:, None]
    logw = jnp.log(jnp.maximum(state.w, 1e-300)) - 0.5 * (y - m) ** 2 / s2c - 0.5 * jnp.log(s2c)
    return _State(M, jax.nn.softmax(logw), ft, mc)


class _Fitted(NamedTuple):
    """A fit as the design sees it: the problem (its table, objective, layout), the rows
    fitted (weights), the basins' law coordinates ``xs`` (K, P) best first, their objective
    gaps in ``Delta chi^2`` and the residual variance."""

    prob: Problem
    W: np.ndarray
    xs: np.ndarray
    dchi2: np.ndarray
    s2: float


def _noise(prob: Problem, x: np.ndarray, W: np.ndarray, g: np.ndarray, J: np.ndarray) -> tuple[float, float]:
    """``(s^2, Delta chi^2 per unit of objective gap)`` of a fit at ``x`` on the rows of
    weight ``W`` (:func:`jaxlaws.covariance._block`'s formulas), from its fitted-space
    predictions ``g`` and Jacobian ``J`` at the rows."""
    obj = prob.objective
    y = np.asarray(prob.data.y, np.float64).ravel()
    y_t = np.log(y) if obj.space == "log" else y
    keep = W > 0
    r, Wk, Jk = (g - y_t)[keep], W[keep], J[keep]
    n = len(r)
    A = np.sqrt(Wk)[:, None] * Jk
    d = np.sqrt(np.sum(A * A, axis=0))
    d = np.where(np.isfinite(d) & (d > 0), d, 1.0)
    S = np.linalg.svd(A / d, compute_uv=False) if A.size else np.zeros(0)
    lam = S * S
    rank = int(np.sum(lam >= FLAT_RTOL * lam.max())) if lam.size and lam.max() > 0 else 0
    dof = n - rank
    h = 2.0
    extra = tuple(jnp.asarray(v) for v in x[prob.layout.law_size :])
    unit = float(obj.scale(jnp.ones(()), extra)) if prob.layout.extra else 1.0
    if dof <= 0:
        s2 = math.nan
    elif obj.name in ("sse", "sse_log"):
        s2, h = float(np.sum(Wk * r * r)) / dof, 2.0
    else:
        sigma = 1.482602218505602 * float(np.median(np.sqrt(Wk) * np.abs(r)))
        k = (prob.delta / unit) * math.sqrt(float(np.mean(Wk))) / sigma if sigma > 0 else math.inf
        s2 = sigma * sigma * huber_efficiency(k) * n / dof
        h = (1.0 if math.isinf(k) else math.erf(k / math.sqrt(2.0))) * unit * unit
    yk = y_t[keep]
    floor = NOISE_FLOOR * max(float(np.var(yk)) if n > 1 else 0.0, 1e-300)
    if not np.isfinite(s2) or s2 < floor:
        s2 = floor
    return float(s2), float(2.0 / (h * s2))


def _basin_x(law: Law, layout: Layout, table: pd.DataFrame) -> np.ndarray:
    """The law coordinates of each row of a basins (or starts) table (paper parametrisation,
    labelled as :attr:`jaxlaws.problem.Layout.labels`)."""
    labels = list(layout.labels[: layout.law_size])
    values = table[labels].to_numpy(np.float64)
    out = np.empty_like(values)
    for _, _, c, sl in layout.free_fields():
        out[:, sl] = np.asarray(c.inverse(values[:, sl]), np.float64)
    return out


def _keep_basins(xs, dchi2, max_basins) -> tuple[np.ndarray, np.ndarray]:
    """Basins (best first) with a finite point and a normalised weight of at least
    :data:`MIN_BASIN_WEIGHT`, at most ``max_basins``."""
    xs, dchi2 = np.asarray(xs, np.float64), np.asarray(dchi2, np.float64)
    ok = np.all(np.isfinite(xs), axis=1) & np.isfinite(dchi2)
    ok[0] = True
    xs, dchi2 = xs[ok][:max_basins], np.maximum(dchi2[ok][:max_basins], 0.0)
    w = np.exp(-0.5 * (dchi2 - dchi2[0]))
    keep = w / w.sum() >= MIN_BASIN_WEIGHT
    keep[0] = True
    return xs[keep], dchi2[keep]


def _prior(layout: Layout, prior) -> np.ndarray:
    """The prior precision per law coordinate (module docstring)."""
    P = layout.law_size
    if prior is None:
        return np.zeros(P)
    out = np.zeros(P)
    for _, _, c, sl in layout.free_fields():
        lo, hi = c.box
        if c.range is not None:
            lo, hi = sorted(float(v) for v in np.asarray(c.inverse(np.asarray(c.range, np.float64))))
        if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
            out[sl] = (4.0 / (hi - lo)) ** 2
    return out


def _check_table(table, role: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{role} must be a pandas DataFrame, got {type(table).__name__}")


def _prefixed(role: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with a ValueError's message prefixed by the table's name."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        raise ValueError(f"{role}: {e}") from None


def _inputs_of(law: Law, fitted_columns: Mapping, table: pd.DataFrame, role: str, target=None) -> LawData:
    """A table's law inputs (validated against the law's domains), read from the columns the
    fit read (or the law's own names), and its target where asked."""
    columns = fitted_input_columns(law, fitted_columns, table)
    return _prefixed(
        role,
        prepare,
        law,
        table,
        columns=columns,
        target=target,
        positive_target=False,
        require_target=target is not None,
    )


def _check_common(criterion, criteria, cost_power, prior, max_basins):
    if not isinstance(criterion, str) or criterion not in criteria:
        raise ValueError(f"criterion must be one of {list(criteria)}, got {criterion!r}")
    if isinstance(cost_power, bool) or not isinstance(cost_power, int | float) or not cost_power >= 0:
        raise ValueError(f"cost_power must be a number >= 0, got {cost_power!r}")
    if not math.isfinite(cost_power):
        raise ValueError(f"cost_power must be finite, got {cost_power!r}")
    if prior is not None and prior != "ranges":
        raise ValueError(f"prior must be None or 'ranges', got {prior!r}")
    if isinstance(max_basins, bool) or not isinstance(max_basins, int | np.integer) or max_basins < 1:
        raise ValueError(f"max_basins must be a whole number >= 1, got {max_basins!r}")


def _concat_inputs(*datas: LawData) -> tuple:
    return tuple(
        jnp.asarray(np.concatenate([np.asarray(d.inputs[i]) for d in datas], axis=0))
        for i in range(len(datas[0].inputs))
    )


class _Scorer(NamedTuple):
    """Everything the greedy loop needs, as arrays."""

    state: _State
    Jc: jnp.ndarray
    Jt: jnp.ndarray
    s2: float
    criterion: str


def _scorer(model: _Fitted, cand: LawData | None, cand_rows, targets: LawData, criterion, prior) -> _Scorer:
    """Linearise every basin at the fitted rows, the candidates and the targets (one call),
    and build the information of the fitted rows. ``cand`` ``None``: the candidates are
    ``cand_rows``, positions in the fitted problem's table (a replay's pool)."""
    prob = model.prob
    layout = prob.layout
    xs = model.xs if criterion == "basin" else model.xs[:1]
    K = len(xs)
    datas = (prob.data, targets) if cand is None else (prob.data, cand, targets)
    inputs = _concat_inputs(*datas)
    frozen = tuple(jnp.asarray(np.asarray(v, np.float64)) for v in prob.frozen_values)
    g, J = _linearise(prob.law, layout, prob.objective.space)(jnp.asarray(xs), frozen, inputs)
    g, J = np.asarray(g), np.asarray(J)
    n = len(prob.data)
    T = len(targets)
    JR, Jt, ft = J[:, :n], J[:, -T:], g[:, -T:]
    if cand is None:
        Jc, mc = J[:, cand_rows], g[:, cand_rows]
    else:
        Jc, mc = J[:, n:-T], g[:, n:-T]
    W = model.W
    M = np.einsum("knp,n,knq->kpq", JR, W, JR) / model.s2 + np.diag(_prior(layout, prior))[None]
    w = np.exp(-0.5 * (model.dchi2[:K] - model.dchi2[0]))
    state = _State(jnp.asarray(M), jnp.asarray(w / w.sum()), jnp.asarray(ft), jnp.asarray(mc))
    if not (np.all(np.isfinite(J)) and np.all(np.isfinite(g))):
        bad = "the fitted runs" if not np.all(np.isfinite(JR)) else "the candidates or the targets"
        raise ValueError(f"the law's prediction or its derivatives are not finite at {bad}")
    return _Scorer(state, jnp.asarray(Jc), jnp.asarray(Jt), float(model.s2), criterion)


def _score_all(sc: _Scorer, cost, budget, cost_power):
    x = jnp.linspace(-QUAD_WIDTH, QUAD_WIDTH, QUAD_NODES)
    total, within, between = (
        np.asarray(v) for v in _gains(sc.state, sc.Jc, sc.Jt, sc.s2, x, criterion=sc.criterion)
    )
    return total, within, between, total / (cost / budget) ** cost_power


def _greedy(sc: _Scorer, cost, budget, n, cost_power):
    """Pick candidates one at a time (module docstring). Returns the picks as
    ``(position, gain, score, variance after, spent)``, the first round's scores, the
    variance before, and why it stopped."""
    C = len(cost)
    taken = np.zeros(C, bool)
    spent = 0.0
    state = sc.state
    before = float(_value(state, sc.Jt))
    picks, first, stopped = [], None, None
    limit = C if n is None else int(n)
    while len(picks) < limit:
        total, within, between, score = _score_all(sc._replace(state=state), cost, budget, cost_power)
        if first is None:
            first = (total, within, between, score)
        afford = ~taken & (spent + cost <= budget * (1.0 + 1e-12))
        if not afford.any():
            stopped = "candidates" if taken.all() else "budget"
            break
        s = np.where(afford & np.isfinite(score), score, -np.inf)
        c = int(np.argmax(s)) if np.isfinite(s).any() else int(np.flatnonzero(afford)[0])
        state = _add(state, sc.Jc, sc.Jt, sc.s2, c, believe=sc.criterion == "basin" and len(state.w) > 1)
        taken[c] = True
        spent += float(cost[c])
        picks.append((c, float(total[c]), float(score[c]), float(_value(state, sc.Jt)), spent))
    if first is None:  # only with no candidates at all
        first = _score_all(sc, cost, budget, cost_power)
    if stopped is None:
        stopped = "candidates" if taken.all() else "n"
    return picks, first, before, stopped


# ----------------------------------------------------------------------------------------
# From a FitResult
# ----------------------------------------------------------------------------------------


def _from_fit(model: FitResult, runs: pd.DataFrame, max_basins: int) -> _Fitted:
    cols = dict(model.columns)
    target = cols.pop("target", None)
    if isinstance(target, list):
        if len(target) != 1:
            raise ValueError(
                f"next_runs takes a fit of one output; this fit has {len(target)} target columns {target}"
            )
        target = target[0]
    frozen = {n: np.asarray(getattr(model.params, n)) for n in model.frozen}
    law = model.law
    columns = fitted_input_columns(law, cols, runs)
    prob = _prefixed(
        "runs",
        setup,
        law,
        runs,
        columns=columns,
        target=target,
        objective=model.objective,
        delta=model.delta,
        frozen=frozen or None,
    )
    if prob.data.n_outputs != 1:
        raise ValueError(f"next_runs takes a fit of one output; this one has {prob.data.n_outputs}")
    if len(prob.data) != model.n_points:
        raise ValueError(
            f"runs has {len(prob.data)} rows, but the fit was fitted on {model.n_points}: pass the table it "
            "was fitted on"
        )
    x = np.asarray(model.x, np.float64)
    if x.shape != (prob.layout.size,):
        raise ValueError(f"the fit's point has {x.size} coordinates; its law on runs has {prob.layout.size}")
    f = float(prob.objective_fn()(jnp.asarray(x)))
    if not np.isclose(f, model.value, rtol=1e-6, atol=1e-12):
        raise ValueError(
            f"runs is not the table the fit was fitted on: the fit's objective there is {f:.10g}, the fit "
            f"reports {model.value:.10g}"
        )
    P = prob.layout.law_size
    W = np.ones(len(prob.data))
    frozen_j = tuple(jnp.asarray(np.asarray(v, np.float64)) for v in prob.frozen_values)
    g, J = _linearise(prob.law, prob.layout, prob.objective.space)(
        jnp.asarray(x[None, :P]), frozen_j, tuple(jnp.asarray(a) for a in prob.data.inputs)
    )
    s2, chi2 = _noise(prob, x, W, np.asarray(g[0]), np.asarray(J[0]))
    table = model.basins
    xs, gaps = [x[:P]], [0.0]
    if len(table) > 1:
        others = table.iloc[1:]
        others = others[(others["status"] == "converged") & np.isfinite(others["objective"])]
        if len(others):
            xs += list(_basin_x(law, prob.layout, others))
            gaps += list(np.maximum(others["objective"].to_numpy(np.float64) - model.value, 0.0))
    xs, dchi2 = _keep_basins(np.array(xs), np.array(gaps) * chi2, max_basins)
    return _Fitted(prob, W, xs, dchi2, s2)


def next_runs(
    model: FitResult,
    candidates: pd.DataFrame,
    *,
    runs: pd.DataFrame,
    targets: pd.DataFrame,
    cost: str | Callable[[pd.DataFrame], Any] = "cost",
    budget: float,
    n: int | None = None,
    criterion: str = "v",
    cost_power: float = COST_POWER,
    prior: str | None = None,
    max_basins: int = MAX_BASINS,
) -> Design:
    """Which runs to train next: candidates picked greedily, one at a time, by the expected
    reduction of the predictive error at the targets per unit of cost, within a budget.

    The fit is linearised at its optimum (and, for ``"basin"``, at each of its basins) in
    the optimiser's coordinates, every candidate is scored in one batched call, the best
    affordable one is picked, its row added to the information (no refit: its outcome is not
    known yet), and the rest are scored again (module docstring for the formulas).

    .. math::
        \\Delta V_c = \\frac{1}{T}\\sum_t \\frac{(j_t^T \\Sigma j_c)^2}{s^2 + j_c^T \\Sigma j_c},
        \\qquad \\mathrm{score}_c = \\Delta V_c \\,/\\, (\\mathrm{cost}_c / \\mathrm{budget})^{\\gamma}

    Args:
        model: the fit (:func:`jaxlaws.fit`) of the runs finished so far.
        candidates: the runs one could train: the law's input columns (named as the fit's
            table named them, or as the law does) and the cost column, if ``cost`` names one.
        runs: the table ``model`` was fitted on (a :class:`~jaxlaws.FitResult` does not
            keep its rows); checked against the fit's row count and objective.
        targets: input points where predictions matter (the law's input columns).
        cost: a column of ``candidates``, an expression of its columns or of the law's
            input names (``"6*N*D"``: names, numbers, ``+ - * / **``, parentheses), or a
            callable ``candidates -> costs``. Costs must be positive.
        budget: the most the picks may cost together.
        n: the most picks (default: as many as the budget allows).
        criterion: ``"v"`` (V-optimal, default), ``"d"`` (D-optimal) or ``"basin"``
            (ScaleBench's MSPE over the fit's basins).
        cost_power: ``gamma``, the exponent of the cost in a score (default
            :data:`COST_POWER`, ScaleBench's 0.4; ``1`` is gain per unit of cost).
        prior: ``None`` (the Gauss-Newton information alone) or ``"ranges"`` (a Gaussian
            prior of standard deviation a quarter of each parameter's declared range, in
            its optimiser coordinate, as ScaleBench's).
        max_basins: the most basins ``"basin"`` uses (best first).

    Returns:
        A :class:`Design`.

    Raises:
        TypeError: a table that is not a DataFrame, or a cost of the wrong type.
        ValueError: in one line: a missing law input (naming the column and the table), an
            input outside the law's domain (naming the table, column, row and value), a cost
            that is not positive (row and value), a cost expression with an unknown name,
            ``runs`` that is not the fit's table, a bad ``budget``, ``n`` or ``criterion``.

    Example:
        >>> import numpy as np, pandas as pd, jaxlaws
        >>> from jaxlaws.design import next_runs
        >>> rng = np.random.default_rng(1)
        >>> N = np.geomspace(1e7, 5e8, 10)
        >>> D = 20 * N * rng.uniform(0.3, 3, 10)
        >>> loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.005, 10))
        >>> runs = pd.DataFrame({"N": N, "D": D, "loss": loss})
        >>> init = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
        >>> res = jaxlaws.fit("chinchilla", runs, objective="sse_log", starts="init", init=init)
        >>> cands = pd.DataFrame({"N": np.geomspace(1e7, 3e9, 6), "D": np.geomspace(2e8, 6e10, 6)})
        >>> targets = pd.DataFrame({"N": [7e10], "D": [1.4e12]})
        >>> d = next_runs(res, cands, runs=runs, targets=targets, cost="6*N*D", budget=2e20, n=2)
        >>> len(d.picks) <= 2 and d.spent <= 2e20 and d.variance_after < d.variance_before
        True

    References:
        Li et al. 2026 (ScaleBench, arXiv 2604.22753); Fedorov 1972.
    """
    if not isinstance(model, FitResult):
        raise TypeError(f"model must be a jaxlaws.FitResult (from jaxlaws.fit), got {type(model).__name__}")
    for table, role in ((candidates, "candidates"), (runs, "runs"), (targets, "targets")):
        _check_table(table, role)
    _check_common(criterion, CRITERIA, cost_power, prior, max_basins)
    if isinstance(budget, bool) or not isinstance(budget, int | float | np.floating | np.integer):
        raise ValueError(f"budget must be a positive number, got {budget!r}")
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be a positive number, got {budget!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1):
        raise ValueError(f"n must be a whole number >= 1 or None, got {n!r}")
    law = model.law
    cand = _inputs_of(law, model.columns, candidates, "candidates")
    tgt = _inputs_of(law, model.columns, targets, "targets")
    names = {k: v for k, v in fitted_input_columns(law, model.columns, candidates).items() if k in law.inputs}
    cost_v = costs(cost, candidates, names=names, role="candidates")
    fitted = _from_fit(model, runs, max_basins)
    sc = _scorer(fitted, cand, None, tgt, criterion, prior)
    picks, first, before, stopped = _greedy(sc, cost_v, float(budget), n, cost_power)
    total, within, between, score = first
    order = np.full(len(candidates), -1)
    for i, (c, *_) in enumerate(picks):
        order[c] = i
    table = candidates.copy()
    table["cost"] = cost_v
    table["gain"] = total
    if criterion == "basin":
        table["gain_within"], table["gain_between"] = within, between
    table["score"] = score
    table["pick"] = order
    pos = [c for c, *_ in picks]
    ours = ["candidate", "cost", "gain", "score", "variance", "spent"]
    chosen = candidates.iloc[pos].drop(columns=[c for c in ours if c in candidates.columns])
    chosen = chosen.reset_index(drop=True)
    chosen["candidate"] = [candidates.index[c] for c in pos]
    chosen["cost"] = cost_v[pos]
    for j, name in enumerate(("gain", "score", "variance", "spent"), start=1):
        chosen[name] = [p[j] for p in picks]
    return Design(
        picks=chosen,
        candidates=table,
        criterion=criterion,
        budget=float(budget),
        spent=picks[-1][4] if picks else 0.0,
        cost_power=float(cost_power),
        variance_before=before,
        variance_after=picks[-1][3] if picks else before,
        noise_variance=sc.s2,
        space=fitted.prob.objective.space,
        n_basins=int(sc.state.w.shape[0]),
        stopped=stopped,
    )


# ----------------------------------------------------------------------------------------
# Replay on a pool of finished runs
# ----------------------------------------------------------------------------------------

_SETUP_KEYS = ("columns", "target", "objective", "delta", "frozen", "init")
_SOLVE_KEYS = ("starts", "ftol", "max_steps", "screen_steps", "polish", "basin_rtol", "max_starts")


class _Refit(NamedTuple):
    x: np.ndarray  # best, optimiser coordinates (law and nuisance)
    f: float
    status: str
    xs: np.ndarray  # basins' law coordinates, best first
    fs: np.ndarray  # their objectives


def _refit(prob: Problem, W: np.ndarray, x0s: np.ndarray, draw, opts: dict) -> _Refit:
    """The multi-start on the rows of weight ``W`` of the pool's problem (one compiled
    program for every subset of the pool: the rows are weighted, not cut)."""
    rtol = opts["basin_rtol"]
    sol = prob.solve(
        x0s,
        weights=W[None, :],
        ftol=opts["ftol"],
        polish=opts["polish"],
        screen_steps=opts["screen_steps"],
        max_steps=opts["max_steps"],
        draw=draw,
        basin_rtol=rtol,
        max_starts=opts["max_starts"],
    )
    f, x, code = np.asarray(sol.f[0]), np.asarray(sol.x[0]), np.asarray(sol.status[0])
    finite = np.isfinite(f)
    if not finite.any():
        raise ValueError("no start gave a finite objective on the replay's runs")
    best = int(np.argmin(np.where(finite, f, np.inf)))
    atol = float(sol.floor[0])
    P = prob.layout.law_size
    xs, fs = [x[best, :P]], [f[best]]
    done = np.flatnonzero(finite & (code == solvers.CONVERGED))
    done = done[np.argsort(f[done], kind="stable")]
    head = f[best]
    for i in done:
        if f[i] - head > rtol * abs(head) + atol + 1e-300:
            xs.append(x[i, :P])
            fs.append(f[i])
            head = f[i]
    return _Refit(x[best], float(f[best]), solvers.STATUS_NAMES[int(code[best])], np.array(xs), np.array(fs))


def _initial(initial, cost_v: np.ndarray, index: list, n_law: int, n_params: int) -> np.ndarray:
    """The initial design as positions in the pool (``n_law`` the law's free parameters,
    ``n_params`` with the objective's nuisance ones: a fit needs more rows)."""
    C = len(cost_v)
    if initial is None:
        order = np.argsort(cost_v, kind="stable")
        n_init = int(INIT_PER_PARAM * n_law)
        limit = INIT_FRACTION * cost_v.sum()
        chosen, spent = [int(order[0])], float(cost_v[order[0]])
        for i in order[1:]:
            if len(chosen) >= n_init:
                break
            if spent + cost_v[i] <= limit:
                chosen.append(int(i))
                spent += float(cost_v[i])
        for i in order:  # a fit needs more rows than free parameters
            if len(chosen) > n_params:
                break
            if int(i) not in chosen:
                chosen.append(int(i))
        return np.array(chosen)
    if isinstance(initial, int | np.integer) and not isinstance(initial, bool):
        if not n_params < initial <= C:
            raise ValueError(
                f"initial must be more than the {n_params} free parameters and at most the pool's {C} rows, "
                f"got {initial}"
            )
        return np.argsort(cost_v, kind="stable")[: int(initial)]
    if isinstance(initial, Sequence | np.ndarray | pd.Index) and not isinstance(initial, str):
        where = {label: i for i, label in enumerate(index)}
        out = []
        for label in initial:
            if label not in where:
                raise ValueError(f"initial names row {label!r}, which is not in the pool")
            out.append(where[label])
        if len(set(out)) <= n_params:
            raise ValueError(
                f"initial has {len(set(out))} distinct rows; a fit of {n_params} free parameters needs more"
            )
        return np.array(list(dict.fromkeys(out)))
    raise ValueError(f"initial must be None, a number of runs or a list of pool row labels, got {initial!r}")


def replay(
    law: str | Law,
    pool: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    cost: str | Callable[[pd.DataFrame], Any] = "cost",
    fractions: Sequence[float] = (0.01, 0.05, 0.10),
    criterion: str = "v",
    seed: int = 0,
    initial=None,
    cost_power: float = COST_POWER,
    prior: str | None = None,
    max_basins: int = MAX_BASINS,
    fit_kwargs: Mapping[str, Any] | None = None,
) -> Replay:
    """Replay sequential design on a pool of finished runs: pick, reveal, refit, record.

    From an initial design (by default ScaleBench's: the cheapest runs in order of cost, the
    cheapest always, then while they cost at most :data:`INIT_FRACTION` of the pool and
    number at most :data:`INIT_PER_PARAM` times the law's free parameters; and at least one
    more than the free parameters, which a fit needs), one run at a time is picked from the
    rest of the pool among those that fit in the largest fraction's budget: by the
    criterion (scored as :func:`next_runs` scores, against the current fit), at random
    (``"random"``, uniformly among the affordable) or the cheapest (``"cheapest"``, ties
    broken at random). Its outcome is revealed and the law refitted, warm: from the previous
    fit's basins (up to :data:`WARM_BASINS`) and random starts, :data:`REFIT_STARTS` in all.
    The first fit starts as :func:`jaxlaws.fit` does (``fit_kwargs["starts"]``). Every fit
    runs on the whole pool's table with zero weight on the runs not yet chosen, so one
    compiled program serves the whole replay. At each fraction of the pool's cost, the fit
    of the last design that cost at most that much predicts the targets, and its ``R^2``
    (``1 - SSE / SST`` of the targets' true values) is recorded. The baselines are fitted
    only at the fractions (their picks do not depend on the fits).

    This follows ScaleBench's loops (``mspe.py``, ``vopt.py``, ``baseline_dopt.py``): the
    same initial design, picks within the largest fraction's budget, and each fraction's
    ``R^2`` from the fit before the pick that passed it. Its fits are scipy's L-BFGS-B from
    64 starts (:mod:`benchmarks.bench_scalebench`); pass ``fit_kwargs={"objective": "sse"}``
    for its objective.

    Args:
        law: a law name or :class:`~jaxlaws.laws.Law`.
        pool: the finished runs: the law's inputs, the target and the cost column (if
            ``cost`` names one).
        targets: the target region: the law's inputs and the target's true values.
        cost: as :func:`next_runs`'s, over the pool.
        fractions: budgets, as fractions of the pool's total cost.
        criterion: ``"v"``, ``"d"``, ``"basin"``, ``"random"`` or ``"cheapest"``.
        seed: seed of the random starts and of the baselines' draws.
        initial: ``None`` (ScaleBench's initial design), a number of the cheapest runs, or
            a list of pool row labels.
        cost_power, prior, max_basins: as :func:`next_runs`'s.
        fit_kwargs: options of the fits: ``columns``, ``target``, ``objective``, ``delta``,
            ``frozen``, ``init`` (as :func:`jaxlaws.fit`'s) and ``starts`` (of the first
            fit), ``ftol``, ``max_steps``, ``screen_steps``, ``polish``, ``basin_rtol``,
            ``max_starts``.

    Returns:
        A :class:`Replay`; the same arguments give the same replay.

    Raises:
        TypeError: a table that is not a DataFrame.
        ValueError: in one line: bad input as :func:`next_runs`, a fraction outside
            ``(0, 1]``, an option ``fit_kwargs`` does not take, an initial design with no
            more rows than free parameters.
    """
    _check_table(pool, "pool")
    _check_table(targets, "targets")
    _check_common(criterion, CRITERIA + BASELINES, cost_power, prior, max_basins)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    try:
        fr = np.atleast_1d(np.asarray(fractions, np.float64))
    except (TypeError, ValueError):
        fr = np.array([np.nan])
    if fr.ndim != 1 or fr.size == 0 or not np.all((fr > 0) & (fr <= 1)):
        raise ValueError(f"fractions must be numbers in (0, 1], got {fractions!r}")
    fr = np.sort(fr)
    kw = dict(fit_kwargs or {})
    unknown = sorted(set(kw) - set(_SETUP_KEYS) - set(_SOLVE_KEYS))
    if unknown:
        takes = list(_SETUP_KEYS + _SOLVE_KEYS)
        raise ValueError(f"fit_kwargs has {unknown}, which replay does not take: it takes {takes}")
    setup_kw = {k: kw[k] for k in _SETUP_KEYS if k in kw}
    opts = dict(ftol=1e-13, polish="adaptive", screen_steps=None, max_steps=500, basin_rtol=BASIN_RTOL)
    opts.update({k: kw[k] for k in _SOLVE_KEYS if k in kw and k != "starts"})
    opts.setdefault("max_starts", None)
    law = get(law)
    prob = _prefixed("pool", setup, law, pool, **setup_kw)
    if prob.data.n_outputs != 1:
        raise ValueError(f"replay takes a law of one output; the pool's target has {prob.data.n_outputs}")
    layout = prob.layout
    law = prob.law
    tgt = _inputs_of(law, prob.data.columns, targets, "targets", target=prob.data.columns["target"])
    y_t = np.asarray(tgt.y, np.float64)
    sst = float(np.sum((y_t - y_t.mean()) ** 2))
    names = {k: v for k, v in prob.data.columns.items() if k in law.inputs}
    cost_v = costs(cost, pool, names=names, role="pool")
    index = list(pool.index)
    total = float(cost_v.sum())
    budget = float(fr[-1] * total)
    P = layout.law_size
    sel = np.zeros(len(pool), bool)
    sel[_initial(initial, cost_v, index, layout.law_size, layout.size)] = True
    initial_rows = tuple(index[i] for i in np.flatnonzero(sel))
    frozen = tuple(jnp.asarray(np.asarray(v, np.float64)) for v in prob.frozen_values)
    t_inputs = tuple(jnp.asarray(a) for a in tgt.inputs)

    def r2_of(x):
        params = law.params(*layout.unpack_law(jnp.asarray(x[:P]), frozen))
        pred = np.asarray(law(params, *t_inputs), np.float64).ravel()
        sse = float(np.sum((y_t - pred) ** 2))
        return 1.0 - sse / sst if sst > 0 and np.isfinite(sse) else math.nan

    first_starts = kw.get("starts")
    x0_first = make_starts(law, layout, first_starts, seed=seed, init=prob.init)
    draw_first = None
    if draws_starts(law, first_starts) and opts["polish"] == "adaptive":

        def draw_first(n, k):
            return make_starts(law, layout, int(n), seed=seed, init=prob.init, stream=k)

    def fit_at(mask, previous: _Refit | None, step: int) -> _Refit:
        W = mask.astype(np.float64)
        if previous is None:
            return _refit(prob, W, x0_first, draw_first, opts)
        warm = previous.xs[:WARM_BASINS]
        extra = make_starts(law, layout, REFIT_STARTS - len(warm), seed=seed, init=prob.init, stream=1 + step)
        return _refit(prob, W, np.concatenate([warm, extra]), None, opts)

    def model_of(mask, r: _Refit) -> _Fitted:
        W = mask.astype(np.float64)
        g, J = _linearise(law, layout, prob.objective.space)(
            jnp.asarray(r.x[None, :P]), frozen, tuple(jnp.asarray(a) for a in prob.data.inputs)
        )
        s2, chi2 = _noise(prob, r.x, W, np.asarray(g[0]), np.asarray(J[0]))
        xs, dchi2 = _keep_basins(r.xs, (r.fs - r.f) * chi2, max_basins)
        return _Fitted(prob, W, xs, dchi2, s2)

    rng = np.random.default_rng(seed)
    all_rows = np.arange(len(pool))
    by_model = criterion in CRITERIA
    current = fit_at(sel, None, 0)
    spent = float(cost_v[sel].sum())
    history = [dict(step=0, row=None, cost=math.nan, spent=spent, gain=math.nan, score=math.nan)]
    masks = [sel.copy()]
    fits: dict[int, _Refit] = {0: current}
    step = 0
    while True:
        afford = ~sel & (spent + cost_v <= budget * (1.0 + 1e-12))
        if not afford.any():
            break
        gain = score = math.nan
        pos = np.flatnonzero(afford)
        if criterion == "random":
            c = int(rng.choice(pos))
        elif criterion == "cheapest":
            low = cost_v[pos].min()
            c = int(rng.choice(pos[cost_v[pos] <= low * (1.0 + 1e-12)]))
        else:  # every pool row scored (one shape for the whole replay), the affordable compared
            sc = _scorer(model_of(sel, current), None, all_rows, tgt, criterion, prior)
            total_g, _, _, s = _score_all(sc, cost_v, budget, cost_power)
            s = np.where(afford & np.isfinite(s), s, -np.inf)
            c = int(np.argmax(s)) if np.isfinite(s).any() else int(pos[0])
            gain, score = float(total_g[c]), float(s[c])
        step += 1
        sel[c] = True
        spent += float(cost_v[c])
        history.append(
            dict(step=step, row=index[c], cost=float(cost_v[c]), spent=spent, gain=gain, score=score)
        )
        masks.append(sel.copy())
        if by_model:
            current = fit_at(sel, current, step)
            fits[step] = current
    spents = np.array([h["spent"] for h in history])
    rows, previous = [], fits[0]
    for f in fr:
        ok = np.flatnonzero(spents <= f * total * (1.0 + 1e-12))
        i = int(ok[-1]) if ok.size else 0
        if i not in fits:
            fits[i] = fit_at(masks[i], previous, 10_000 + i)
        previous = fits[i]
        r2 = r2_of(fits[i].x)
        rows.append(
            dict(
                fraction=float(f),
                budget=float(f * total),
                spent=float(spents[i]),
                runs=int(masks[i].sum()),
                r2=r2,
                r2_clipped=float(np.clip(r2, -1.0, 1.0)) if np.isfinite(r2) else -1.0,
                within=bool(ok.size),
            )
        )
    for h in history:
        r = fits.get(h["step"])
        h["fraction"] = h["spent"] / total
        h["r2"] = r2_of(r.x) if r is not None else math.nan
        h["objective"] = r.f if r is not None else math.nan
        h["status"] = r.status if r is not None else None
        h["basins"] = len(r.xs) if r is not None else 0
    cols = ["step", "row", "cost", "spent", "fraction", "gain", "score", "r2"]
    steps = pd.DataFrame(history)[cols + ["objective", "status", "basins"]]
    steps["row"] = pd.Series([h["row"] for h in history], dtype=object)  # labels as given
    return Replay(
        checkpoints=pd.DataFrame(rows),
        steps=steps,
        criterion=criterion,
        seed=int(seed),
        initial=initial_rows,
        total_cost=total,
    )
