"""Fitting a law to a table: batched multi-start fits in one JIT-compiled call.

``fit`` maps the law's parameters to unconstrained coordinates through the constraints
declared with the law, builds the objective on the residuals (``log`` or linear), and runs
every start through :func:`jaxlaws.solvers.multistart`. The compiled solver is keyed only on
what changes shapes or code paths (law, objective, parameter layout, step counts), so a
second fit of same-shaped data compiles nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws import solvers
from jaxlaws._constraints import Constraint
from jaxlaws.data import LawData, prepare
from jaxlaws.laws import Law, get
from jaxlaws.objectives import Objective, get_objective
from jaxlaws.sharding import local_devices, map_batch, pad_batch

__all__ = ["fit", "FitResult", "ConvergenceWarning", "Layout", "make_starts"]


class ConvergenceWarning(UserWarning):
    """The best start did not converge, or the optimum is poorly determined."""


# ----------------------------------------------------------------------------------------
# Parameter layout: which fields are free, their shapes, and the map to a flat vector.
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each parameter lives in the flat unconstrained vector ``x``.

    ``x`` holds the free parameters' unconstrained coordinates, field by field (a per-pool
    field contributes one entry per pool), followed by the objective's nuisance
    parameters. Frozen fields are passed separately, as arrays, so changing their values
    does not recompile.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    free: tuple[bool, ...]
    constraints: tuple[Constraint, ...]
    extra: tuple[str, ...] = ()

    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(n for n, f in zip(self.names, self.free) if f)

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s, f in zip(self.shapes, self.free) if f) + len(self.extra)

    @property
    def labels(self) -> tuple[str, ...]:
        """One label per entry of ``x`` (``b[0]``, ``b[1]`` for per-pool fields)."""
        out = []
        for n, s, f in zip(self.names, self.shapes, self.free):
            if f:
                out += [n] if s == () else [f"{n}[{i}]" for i in range(math.prod(s))]
        return tuple(out) + self.extra

    def free_fields(self):
        """``(name, shape, constraint, slice of x)`` for each free field, in order."""
        i = 0
        for name, shape, free, c in zip(self.names, self.shapes, self.free, self.constraints):
            if free:
                n = math.prod(shape)
                yield name, shape, c, slice(i, i + n)
                i += n

    def unpack(self, x, frozen_values):
        """``x`` -> (paper-parametrised params as a tuple of fields, nuisance values)."""
        fields, i, k = [], 0, 0
        for shape, free, c in zip(self.shapes, self.free, self.constraints):
            if free:
                n = math.prod(shape)
                fields.append(c.forward(x[i : i + n].reshape(shape)))
                i += n
            else:
                fields.append(frozen_values[k])
                k += 1
        return tuple(fields), tuple(x[i + j] for j in range(len(self.extra)))

    def pack(self, params) -> np.ndarray:
        """Paper-parametrised params (all fields) -> the free part of ``x`` (no nuisance)."""
        parts = [
            np.ravel(np.asarray(c.inverse(jnp.asarray(p, jnp.float64))))
            for p, free, c in zip(params, self.free, self.constraints)
            if free
        ]
        return np.concatenate(parts) if parts else np.zeros(0)


def _layout(law: Law, shapes, frozen_names, objective: Objective) -> Layout:
    return Layout(
        names=law.param_names,
        shapes=tuple(shapes),
        free=tuple(n not in frozen_names for n in law.param_names),
        constraints=tuple(law.constraints),
        extra=objective.extra,
    )


# ----------------------------------------------------------------------------------------
# The compiled core: one function for one table, vmapped for bootstrap and for groups.
# ----------------------------------------------------------------------------------------


def _residuals(x, inputs, y_t, frozen_values, law, objective, layout):
    """Residuals of the law at ``x`` in the objective's space, and the nuisance values."""
    fields, extra = layout.unpack(x, frozen_values)
    params = law.params(*fields)
    if objective.space == "log":
        pred = law.log_predict(params, *inputs)
    else:
        pred = law(params, *inputs)
    return pred - y_t, extra


def _solve(
    x0s,
    inputs,
    y,
    weights,
    frozen_values,
    delta,
    ftol,
    *,
    law,
    objective,
    layout,
    screen_steps,
    polish,
    max_steps,
):
    y_t = jnp.log(y) if objective.space == "log" else y
    parts = partial(
        _residuals,
        inputs=inputs,
        y_t=y_t,
        frozen_values=frozen_values,
        law=law,
        objective=objective,
        layout=layout,
    )

    def total(x):
        r, extra = parts(x)
        return objective.value(r, weights, delta, extra)

    if objective.extra:
        # nuisance scale: start at the mean absolute residual of each start, times delta
        # (the scale that minimises the likelihood when most residuals are in Huber's
        # linear zone)
        def with_scale(x):
            r, _ = parts(jnp.concatenate([x, jnp.zeros(len(objective.extra))]))
            mad = jnp.sum(weights * jnp.abs(r)) / jnp.sum(weights)
            return jnp.concatenate([x, jnp.log(jnp.maximum(delta * mad, 1e-300))[None]])

        x0s = jax.vmap(with_scale)(x0s)

    def scaled(x):
        r, extra = parts(x)
        return objective.scaled_residuals(r, extra)

    screen = solvers.gauss_newton_fgh(total, scaled, lambda z: objective.terms(z, weights, delta))
    polish_fgh = screen if objective.polish == "gauss_newton" else solvers.newton_fgh(total)
    return solvers.multistart(
        screen,
        polish_fgh,
        x0s,
        screen_steps=screen_steps,
        polish=polish,
        max_steps=max_steps,
        ftol=ftol,
    )


_STATIC = ("law", "objective", "layout", "screen_steps", "polish", "max_steps")
#: One table: starts ``(S, P)``.
solve_one = jax.jit(_solve, static_argnames=_STATIC)


def _solve_resamples(x0s, inputs, y, weights, frozen_values, delta, ftol, **static):
    def one(w):
        return _solve(x0s, inputs, y, w, frozen_values, delta, ftol, **static)

    return jax.vmap(one)(weights)


#: Many resamples of one table: per-point weights ``(R, n)``, the same starts for each.
solve_resamples = jax.jit(_solve_resamples, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=("law", "objective", "layout"))
def objective_hessian(x, inputs, y, weights, frozen_values, delta, *, law, objective, layout):
    """Hessian of the objective at ``x`` in unconstrained coordinates (for diagnostics)."""
    y_t = jnp.log(y) if objective.space == "log" else y

    def total(x):
        r, extra = _residuals(x, inputs, y_t, frozen_values, law, objective, layout)
        return objective.value(r, weights, delta, extra)

    return jax.hessian(total)(x)


# ----------------------------------------------------------------------------------------
# Starts
# ----------------------------------------------------------------------------------------


def _field_shapes(law: Law, data: LawData, init) -> list[tuple[int, ...]]:
    if init is not None:
        return [np.shape(v) for v in init]
    n_pools = None
    if "sizes" in law.inputs:
        n_pools = data.inputs[law.inputs.index("sizes")].shape[-1]
    return [(n_pools,) if n in law.pool_params else () for n in law.param_names]


def make_starts(
    law: Law,
    layout: Layout,
    starts,
    *,
    seed: int = 0,
    init=None,
) -> np.ndarray:
    """Starts as rows of unconstrained free coordinates, shape ``(S, P_free)``.

    Args:
        starts: ``"grid"`` (the law's published grid), ``"init"`` (only ``init``), an int
            (that many random starts drawn uniformly, in unconstrained coordinates, over the
            range of the law's grid), a mapping of parameter name to values (their product
            is the grid; missing free fields take ``init``), a DataFrame with one start per
            row (paper parametrisation), or an array ``(S, P_free)`` of unconstrained
            coordinates.
        seed: for random starts.
        init: parameters (paper parametrisation) for fields a grid does not set.
    """
    free = [
        (n, s, c) for n, s, f, c in zip(layout.names, layout.shapes, layout.free, layout.constraints) if f
    ]
    if isinstance(starts, str) and starts == "init":
        if init is None:
            raise ValueError("starts='init' needs init=")
        return layout.pack(init)[None, :]
    if isinstance(starts, np.ndarray | jnp.ndarray) and np.ndim(starts) == 2:
        arr = np.asarray(starts, np.float64)
        width = layout.size - len(layout.extra)
        if arr.shape[1] != width:
            raise ValueError(f"starts has {arr.shape[1]} columns; the free parameters need {width}")
        return arr
    if isinstance(starts, pd.DataFrame):
        missing = [n for n, _, _ in free if n not in starts.columns]
        if missing:
            raise ValueError(f"starts lacks columns {missing} for free parameters")
        rows = []
        for _, row in starts.iterrows():
            vals = [
                np.broadcast_to(np.asarray(row[n], np.float64), s) if f else None
                for n, s, f in zip(layout.names, layout.shapes, layout.free)
            ]
            rows.append(layout.pack(vals))
        return np.stack(rows)
    grid = dict(zip(law.param_names, law.start_grid)) if law.start_grid is not None else {}
    init_map = dict(zip(law.param_names, init)) if init is not None else {}
    if isinstance(starts, str) and starts == "grid":
        if not grid:
            raise ValueError(
                f"law {law.name!r} has no published start grid: pass starts= (an int for random "
                "starts, a mapping of grids, or a DataFrame)"
            )
        starts = {n: grid[n] for n, _, _ in free}
    if isinstance(starts, Mapping):
        unknown = sorted(set(starts) - set(layout.free_names))
        if unknown:
            raise ValueError(
                f"starts names {unknown}, which are not free parameters {list(layout.free_names)}"
            )
        axes = []
        for n, s, c in free:
            if n in starts:
                vals = np.atleast_1d(np.asarray(starts[n], np.float64))
            elif n in init_map:
                vals = np.asarray(init_map[n], np.float64)[None]
            else:
                raise ValueError(f"no start value for free parameter {n!r}: give it in starts or init")
            axes.append([np.ravel(np.broadcast_to(np.asarray(c.inverse(jnp.asarray(v))), s)) for v in vals])
        return np.stack([np.concatenate(combo) for combo in itertools.product(*axes)])
    if isinstance(starts, int | np.integer):
        if starts < 1:
            raise ValueError(f"starts must be at least 1, got {starts}")
        rng = np.random.default_rng(seed)
        cols = []
        for n, s, c in free:
            if n in grid:
                u = np.asarray(c.inverse(jnp.asarray(np.asarray(grid[n], np.float64))))
                lo, hi = float(np.min(u)), float(np.max(u))
            elif n in init_map:
                u0 = np.asarray(c.inverse(jnp.asarray(init_map[n], jnp.float64)))
                lo, hi = float(np.min(u0)) - 1.0, float(np.max(u0)) + 1.0
            else:
                raise ValueError(f"no range for random starts of {n!r}: the law has no grid; pass init=")
            if hi - lo < 1e-12:
                lo, hi = lo - 0.5, hi + 0.5
            cols.append(rng.uniform(lo, hi, size=(starts, math.prod(s))))
        return np.concatenate(cols, axis=1)
    raise ValueError(f"cannot make starts from {starts!r}")


# ----------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes:
        law: the fitted :class:`~jaxlaws.laws.Law` (with any options the fit bound).
        params: best parameters, in the paper's parametrisation (the law's ``NamedTuple``).
        value: objective at ``params``.
        objective: objective name; ``delta`` its Huber threshold.
        extra: fitted nuisance parameters (``{"sigma": ...}`` for the Huber likelihood).
        status: status of the best start (``"converged"``, ``"max_steps"``, ...).
        starts: one row per start: ``objective``, ``steps``, ``status`` and the parameters
            it reached (paper parametrisation).
        n_best_basin: converged starts whose objective is within ``basin_rtol`` of the best.
        frozen: names of the parameters held fixed.
        n_points: rows fitted.
        columns: the table columns used for each input and the target.
        diagnostics: warnings about the optimum (on a bound, flat ridge), also issued.
        x: best point in unconstrained coordinates (free fields, then nuisance).
    """

    law: Law
    params: NamedTuple
    value: float
    objective: str
    delta: float
    extra: dict
    status: str
    starts: pd.DataFrame
    n_best_basin: int
    frozen: tuple[str, ...]
    n_points: int
    columns: dict
    diagnostics: tuple[str, ...]
    x: np.ndarray

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @property
    def params_dict(self) -> dict[str, Any]:
        """Best parameters as ``{name: float or list}``."""
        return {k: _plain(v) for k, v in self.params._asdict().items()}

    def predict(self, data: pd.DataFrame | Mapping[str, Any], columns: Mapping[str, str] | None = None):
        """The fitted law's prediction for a table with the law's input columns."""
        d = prepare(self.law, _with_dummy_target(self.law, data), columns=columns, positive_target=False)
        return np.asarray(self.law(self.params, *d.inputs))

    def summary(self) -> str:
        lines = [
            f"law {self.law.name}, objective {self.objective} (delta {self.delta:g}), {self.n_points} points",
            f"objective value {self.value:.10e}, status {self.status}, "
            f"{self.n_best_basin} of {len(self.starts)} starts in the best basin",
        ]
        for k, v in self.params_dict.items():
            flag = " (frozen)" if k in self.frozen else ""
            lines.append(f"  {k:>10} = {_fmt(v)}{flag}")
        for k, v in self.extra.items():
            lines.append(f"  {k:>10} = {_fmt(v)} (nuisance)")
        lines += [f"  warning: {w}" for w in self.diagnostics]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"FitResult({self.summary()})"


def _plain(v):
    a = np.asarray(v)
    return float(a) if a.ndim == 0 else a.tolist()


def _fmt(v):
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"
    return f"{v:.8g}"


def _with_dummy_target(law: Law, data):
    if isinstance(data, pd.DataFrame):
        return data if law.target in data.columns else data.assign(**{law.target: 1.0})
    data = dict(data)
    if law.target not in data:
        n = len(np.atleast_1d(next(iter(data.values()))))
        data[law.target] = np.ones(n)
    return data


# ----------------------------------------------------------------------------------------
# The front function
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Everything :func:`fit` and :func:`jaxlaws.bootstrap` share about one table."""

    law: Law
    objective: Objective
    layout: Layout
    data: LawData
    frozen_values: tuple
    init: tuple | None
    delta: float

    def solve(
        self, x0s, *, weights=None, ftol, screen_steps, polish, max_steps, devices=None
    ) -> solvers.Solution:
        """Run the compiled multi-start solve; ``weights`` ``(R, n)`` solves ``R`` resamples.

        Resamples are split across the first ``devices`` local devices (all by default),
        padded to :func:`~jaxlaws.sharding.padded_size`; the padding is dropped. The starts
        of one table stay on one device: screening ranks them jointly.
        """
        devices = local_devices(devices)
        inputs, y, w, frozen_values, delta = self.args()
        static = self.static(screen_steps, polish, max_steps)
        ftol = jnp.asarray(ftol, jnp.float64)
        if weights is None:
            return jax.device_get(
                solve_one(jnp.asarray(x0s), inputs, y, w, frozen_values, delta, ftol, **static)
            )
        weights, n = pad_batch(jnp.asarray(weights, jnp.float64), len(devices))
        args = (jnp.asarray(x0s), inputs, y, weights, frozen_values, delta, ftol)
        batched = (False, False, False, True, False, False, False)
        sol = map_batch(solve_resamples, args, batched, devices, **static)
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:n], jax.device_get(sol))

    def static(self, screen_steps, polish, max_steps) -> dict:
        """The compiled solver's static arguments (what changes shapes or code paths)."""
        return dict(
            law=self.law,
            objective=self.objective,
            layout=self.layout,
            screen_steps=int(screen_steps),
            polish=None if polish is None else int(polish),
            max_steps=int(max_steps),
        )

    def args(self):
        """The solver's dynamic arguments: inputs, target, unit weights, frozen values, delta."""
        return (
            tuple(jnp.asarray(a) for a in self.data.inputs),
            jnp.asarray(self.data.y),
            jnp.ones(len(self.data), jnp.float64),
            tuple(jnp.asarray(v, jnp.float64) for v in self.frozen_values),
            jnp.asarray(self.delta, jnp.float64),
        )


def _configure_law(law: Law, data: LawData) -> Law:
    """Bind data-dependent options, e.g. ``max_passes`` for the filtering laws."""
    if law.configure is None:
        return law
    return law.configure(law, dict(zip(law.inputs, data.inputs)))


def setup(
    law,
    data,
    *,
    columns=None,
    target=None,
    objective="huber",
    delta=1e-3,
    init=None,
    frozen=None,
) -> _Problem:
    """Validate and assemble a fitting problem (shared by ``fit`` and ``bootstrap``)."""
    law = get(law)
    obj = get_objective(objective)
    d = prepare(law, data, columns=columns, target=target, positive_target=obj.space == "log")
    law = _configure_law(law, d)
    if init is not None:
        init = law.make_params(init)
        init = law.params(*(np.asarray(v, np.float64) for v in init))
    if frozen is None:
        frozen_names = ()
        frozen_map = {}
    elif isinstance(frozen, Mapping):
        frozen_map = dict(frozen)
        frozen_names = tuple(frozen_map)
    else:
        frozen_names = tuple(frozen)
        if init is None:
            raise ValueError("frozen given as names needs init= for their values")
        frozen_map = {n: getattr(init, n) for n in frozen_names}
    unknown = sorted(set(frozen_names) - set(law.param_names))
    if unknown:
        raise ValueError(
            f"frozen names {unknown}, which are not parameters of {law.name!r}: {list(law.param_names)}"
        )
    shapes = _field_shapes(law, d, init)
    layout = _layout(law, shapes, set(frozen_names), obj)
    n_free = layout.size
    if len(d) < n_free:
        raise ValueError(
            f"{len(d)} rows cannot determine {n_free} free parameters {list(layout.labels)}: "
            "give more rows or freeze parameters"
        )
    frozen_values = tuple(
        np.broadcast_to(np.asarray(frozen_map[n], np.float64), s)
        for n, s, f in zip(layout.names, layout.shapes, layout.free)
        if not f
    )
    return _Problem(law, obj, layout, d, frozen_values, init, float(delta))


def fit(
    law: str | Law,
    data: pd.DataFrame | Mapping[str, Any],
    *,
    columns: Mapping[str, str] | None = None,
    target: str | None = None,
    objective: str = "huber",
    delta: float = 1e-3,
    starts="grid",
    seed: int = 0,
    init=None,
    frozen: Sequence[str] | Mapping[str, Any] | None = None,
    polish: int | None = 32,
    screen_steps: int = 5,
    max_steps: int = 500,
    ftol: float = 1e-13,
    basin_rtol: float = 1e-6,
    devices: int | None = None,
) -> FitResult:
    """Fit a law to a table from many starts at once.

    Every start takes ``screen_steps`` iteratively reweighted Gauss-Newton
    (Levenberg-Marquardt) steps; the ``polish`` best continue with Newton steps until the
    relative decrease of the objective falls below ``ftol`` (or ``max_steps``). All starts
    run in one batched, JIT-compiled call.

    .. math:: \\hat\\theta = \\arg\\min_\\theta \\sum_i \\rho(\\log \\hat y_\\theta(x_i) - \\log y_i)

    Args:
        law: a built-in law name (``"chinchilla"``, ...) or a :class:`~jaxlaws.laws.Law`
            (including your own).
        data: a DataFrame (or mapping of columns) with the law's inputs and target.
        columns: law input name -> column name where they differ.
        target: the column to fit (default: the law's target).
        objective: ``"huber"`` (default: summed Huber on log residuals, as Hoffmann,
            Muennighoff and Epoch), ``"huber_linear"``, ``"sse"`` (linear, as Goyal),
            ``"sse_log"``, or ``"huber_likelihood"`` (Epoch's, with a free scale).
        delta: Huber threshold.
        starts: ``"grid"`` (the law's published grid), ``"init"``, an int (random starts
            from ``seed``), a mapping of per-parameter values (a grid), a DataFrame (one start
            per row) or an array of unconstrained coordinates. See :func:`make_starts`.
        seed: seed of random starts.
        init: parameters (mapping or the law's NamedTuple) for ``starts="init"``, for
            frozen fields and for fields a grid leaves out.
        frozen: names of parameters held at their ``init`` values, or a mapping of values.
        polish: how many of the best screened starts to solve to convergence (``None``:
            all).
        screen_steps: Gauss-Newton steps every start takes before screening.
        max_steps: bound on the polishing steps.
        ftol: relative objective decrease that counts as converged.
        basin_rtol: relative objective gap within which a start is in the best basin.
        devices: accepted for symmetry with :func:`jaxlaws.bootstrap`; the starts of one
            fit run on one device (screening ranks them jointly).

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: bad input (named column, row and value), unknown law or objective,
            fewer rows than free parameters, or no start with a finite objective.

    Warns:
        ConvergenceWarning: the best start did not converge, lies on a constraint's
            boundary, or sits on a flat ridge.

    Example:
        >>> import jaxlaws
        >>> df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
        >>> res = jaxlaws.fit("chinchilla", df)
        >>> f"{res.value:.8e}"
        '1.01827402e-03'

    References:
        Hoffmann et al. 2022 (App. D.2); Besiroglu et al. 2024.
    """
    prob = setup(
        law,
        data,
        columns=columns,
        target=target,
        objective=objective,
        delta=delta,
        init=init,
        frozen=frozen,
    )
    x0s = make_starts(prob.law, prob.layout, starts, seed=seed, init=prob.init)
    sol = prob.solve(
        x0s,
        ftol=ftol,
        screen_steps=screen_steps,
        polish=polish,
        max_steps=max_steps,
        devices=devices,
    )
    return _result(prob, sol, basin_rtol)


def _result(prob: _Problem, sol: solvers.Solution, basin_rtol: float) -> FitResult:
    f = np.asarray(sol.f)
    finite = np.isfinite(f)
    if not finite.any():
        raise ValueError(
            f"no start gave a finite objective for law {prob.law.name!r}: check the data's "
            "scale and the starts"
        )
    best = int(np.argmin(np.where(finite, f, np.inf)))
    x = np.asarray(sol.x[best])
    fields, extra = prob.layout.unpack(jnp.asarray(x), tuple(jnp.asarray(v) for v in prob.frozen_values))
    params = prob.law.params(*(jax.device_get(v) for v in fields))
    status = solvers.STATUS_NAMES[int(sol.status[best])]
    converged = np.asarray(sol.status) == solvers.CONVERGED
    in_basin = converged & (np.abs(f - f[best]) <= basin_rtol * abs(f[best]) + 1e-300)
    starts = _starts_table(prob, sol)
    extra_out = {}
    for name, v in zip(prob.layout.extra, extra):
        if name == "log_sigma":
            extra_out["sigma"] = float(np.exp(v))
        else:
            extra_out[name] = float(v)
    diagnostics = _diagnose(prob, x, status)
    for msg in diagnostics:
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return FitResult(
        law=prob.law,
        params=params,
        value=float(f[best]),
        objective=prob.objective.name,
        delta=prob.delta,
        extra=extra_out,
        status=status,
        starts=starts,
        n_best_basin=int(in_basin.sum()),
        frozen=tuple(n for n, fr in zip(prob.layout.names, prob.layout.free) if not fr),
        n_points=len(prob.data),
        columns=dict(prob.data.columns),
        diagnostics=diagnostics,
        x=x,
    )


def _starts_table(prob: _Problem, sol: solvers.Solution) -> pd.DataFrame:
    table = {
        "objective": np.asarray(sol.f),
        "steps": np.asarray(sol.steps),
        "status": np.array(solvers.STATUS_NAMES)[np.asarray(sol.status)],
    }
    xs = np.asarray(sol.x)
    for name, shape, c, sl in prob.layout.free_fields():
        vals = np.asarray(c.forward(jnp.asarray(xs[:, sl])))
        if shape == ():
            table[name] = vals[:, 0]
        else:
            for j in range(vals.shape[1]):
                table[f"{name}[{j}]"] = vals[:, j]
    return pd.DataFrame(table)


def _diagnose(prob: _Problem, x: np.ndarray, status: str) -> tuple[str, ...]:
    out = []
    if status != "converged":
        out.append(f"the best start stopped with status {status!r}: the fit did not converge")
    labels = prob.layout.labels
    for name, shape, c, sl in prob.layout.free_fields():
        u = x[sl]
        if c.name in ("positive", "negative") and np.any(np.abs(u) > 25):
            out.append(
                f"{name} = {_fmt(_plain(c.forward(jnp.asarray(u.reshape(shape)))))} is running to the "
                f"boundary of its constraint ({c!r}): the optimum may lie on the boundary"
            )
        if c.name == "interval" and np.any(np.abs(u) > 15):
            out.append(f"{name} sits at a bound of {c!r}")
    if status != "converged":
        return tuple(out)  # curvature away from a minimum says nothing about identification
    H = np.asarray(
        objective_hessian(
            jnp.asarray(x), *prob.args(), law=prob.law, objective=prob.objective, layout=prob.layout
        )
    )
    if np.all(np.isfinite(H)) and H.size:
        # scale-free curvature: correlation-like normalisation by the diagonal
        d = np.sqrt(np.maximum(np.abs(np.diag(H)), 1e-300))
        evals, evecs = np.linalg.eigh(H / np.outer(d, d))
        if evals[0] < 1e-9 * max(evals[-1], 1e-300):
            v = np.abs(evecs[:, 0])
            names = [labels[k] for k in np.argsort(-v)[:3] if v[k] > 0.2]
            out.append(
                f"the optimum sits on a flat ridge (relative curvature {evals[0] / evals[-1]:.1e}) "
                f"along {names}: these parameters are poorly determined"
            )
    return tuple(out)
