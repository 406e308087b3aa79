"""A fitting problem: a law, an objective, a table, and the compiled solve they share.

:func:`setup` validates a table against a law (its declared input domains, the target's
columns, what the law computes) and lays out the free parameters as one vector ``x`` of
optimiser coordinates. :func:`solve` is the one compiled program behind :func:`jaxlaws.fit`,
:func:`jaxlaws.bootstrap` and batch jobs: it is keyed only on what changes shapes or code
paths (law, objective, layout, the static :class:`~jaxlaws.solvers.Plan`, which arguments
carry a table axis), so a second fit of same-shaped data compiles nothing.

The derivatives are built from the objective's structure: one forward pass of the law gives
the residuals ``r`` and their Jacobian ``J`` (``jax.jacfwd``), the gradient is
``J^T (w phi'(r))``, screening uses the reweighted Gauss-Newton curvature ``J^T diag(w c) J``
and polishing adds the second-order term ``sum_i w_i phi'(r_i) d^2 r_i`` (a Hessian of one
scalar), so no step evaluates the law more often than it must.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxlaws import solvers
from jaxlaws._constraints import Constraint
from jaxlaws.compilation import compiler_options
from jaxlaws.data import LawData, prepare
from jaxlaws.laws import Law, get
from jaxlaws.objectives import Objective, get_objective
from jaxlaws.sharding import local_devices, map_batch, pad_batch

__all__ = ["Layout", "Problem", "setup", "solve", "plan_for", "check_traceable"]


#: The largest change of a log-coordinate (log of a scale) in one solver step: a factor
#: of ``exp(3) = 20``.
STEP_LOG = 3.0
#: The largest change of a linear coordinate in one step, relative to ``max(1, |x|)``.
STEP_LINEAR = 3.0
#: Starts a table polishes in its first round (fewer for fewer than 64 starts: an eighth,
#: at least 2), before its polishing widens.
FIRST_ROUND = 8
#: Polishing steps after which a start that has not converged pauses until its round is
#: complete: it resumes if it is within a factor of two of its table's best objective, and
#: is abandoned otherwise (:class:`~jaxlaws.solvers.Plan`).
SOFT_STEPS = 50
#: Most slots stepped together: a larger pool is stepped block by block (blocks of fewer
#: slots where one evaluation is large, so a block's arrays stay in cache), skipping blocks
#: with no start in them.
BLOCK = 256
#: Starts are screened on the polishing slots when there are at most this many per slot.
INLINE_SCREEN = 16

# ----------------------------------------------------------------------------------------
# Parameter layout: which fields are free, their shapes, and the map to a flat vector.
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each parameter lives in the flat vector ``x`` of optimiser coordinates.

    ``x`` holds the free parameters' coordinates, field by field (a per-pool field
    contributes one entry per pool), followed by the objective's nuisance parameters.
    Frozen fields are passed separately, as arrays, so changing their values does not
    recompile.
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
        """Entries of ``x``: free parameter coordinates and nuisance parameters."""
        return self.law_size + len(self.extra)

    @property
    def law_size(self) -> int:
        """Entries of ``x`` that belong to the law's free parameters."""
        return sum(math.prod(s) for s, f in zip(self.shapes, self.free) if f)

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

    def box(self) -> solvers.Box:
        """Closed bounds on ``x`` from the constraints (nuisance parameters are free), and
        step caps: :data:`STEP_LOG` in log coordinates, ``STEP_LINEAR max(1, |x|)``
        otherwise (a nuisance scale is a log coordinate)."""
        lo, hi, cap_abs, cap_rel = [], [], [], []
        for _, shape, c, _ in self.free_fields():
            a, b = c.box
            k = math.prod(shape)
            lo += [a] * k
            hi += [b] * k
            log = c.transform != "identity"
            cap_abs += [STEP_LOG if log else STEP_LINEAR] * k
            cap_rel += [0.0 if log else STEP_LINEAR] * k
        E = len(self.extra)
        lo += [-np.inf] * E
        hi += [np.inf] * E
        cap_abs += [STEP_LOG] * E
        cap_rel += [0.0] * E
        return solvers.Box(*(np.array(v, np.float64) for v in (lo, hi, cap_abs, cap_rel)))

    def unpack_law(self, x, frozen_values) -> tuple:
        """The law's parameter fields (paper parametrisation) from ``x`` and frozen values."""
        fields, i, k = [], 0, 0
        for shape, free, c in zip(self.shapes, self.free, self.constraints):
            if free:
                n = math.prod(shape)
                fields.append(c.forward(x[i : i + n].reshape(shape)))
                i += n
            else:
                fields.append(frozen_values[k])
                k += 1
        return tuple(fields)

    def unpack(self, x, frozen_values):
        """``x`` -> (the law's fields, nuisance values)."""
        n = self.law_size
        return self.unpack_law(x, frozen_values), tuple(x[n + j] for j in range(len(self.extra)))

    def pack(self, params) -> np.ndarray:
        """Paper-parametrised params (all fields) -> the law part of ``x``."""
        parts = [
            np.ravel(np.asarray(c.inverse(np.asarray(p, np.float64))))
            for p, free, c in zip(params, self.free, self.constraints)
            if free
        ]
        return np.concatenate(parts) if parts else np.zeros(0)


# ----------------------------------------------------------------------------------------
# Residuals and their derivatives
# ----------------------------------------------------------------------------------------


def _weights(w, out_w, shape):
    """Per-residual weights: row weights times output weights, flattened."""
    return jnp.ravel(w[:, None] * out_w[None, :] if len(shape) == 2 else w)


def _fgh(x, inputs, y_t, w, out_w, frozen_values, delta, exact, *, law, objective, layout):
    """The objective at ``x``: ``(f, g, H_gn, H)``, the exact value and gradient, the
    reweighted Gauss-Newton curvature and, where the traced flag ``exact`` is true and the
    objective polishes with Newton steps, the exact Hessian (else ``H_gn`` again)."""
    n_law = layout.law_size
    xl, e = x[:n_law], x[n_law:]
    E = len(layout.extra)

    def res(xl):
        params = law.params(*layout.unpack_law(xl, frozen_values))
        pred = law.log_predict(params, *inputs) if objective.space == "log" else law(params, *inputs)
        return jnp.ravel(pred - y_t)

    def twice(xl):
        r = res(xl)
        return r, r

    W = _weights(w, out_w, y_t.shape)
    if not E:
        # closed-form loss derivatives (no nuisance parameters)
        if objective.polish != "newton":
            J, r = jax.jacfwd(twice, has_aux=True)(xl)
            S = None
        else:

            def with_second(xl):
                # residuals and J^T v (v = w rho'(r), held fixed): one forward-mode pass over
                # both gives J and the second-order term sum_i v_i d^2 r_i together
                r, vjp = jax.vjp(res, xl)
                v = jax.lax.stop_gradient(W * objective.rho_derivatives(r, delta)[1])
                return (r, vjp(v)[0]), r

            def first_only(xl):
                J, r = jax.jacfwd(twice, has_aux=True)(xl)
                return J, r, jnp.zeros((n_law, n_law), J.dtype)

            def both(xl):
                (J, S), r = jax.jacfwd(with_second, has_aux=True)(xl)
                return J, r, S

            J, r, S = jax.lax.cond(exact, both, first_only, xl)
        rho, d1r, d2r = objective.rho_derivatives(r, delta)
        f = jnp.sum(W * rho)
        psi = W * d1r
        g = jnp.sum(J * psi[:, None], axis=0)
        Hg = _gram(J, W * objective.irls(r, delta))
        if S is None:
            return f, g, Hg, Hg
        return f, g, Hg, jnp.where(exact, _gram(J, W * d2r) + S, Hg)

    J, r = jax.jacfwd(twice, has_aux=True)(xl)

    q = jnp.concatenate([r[:, None], jnp.broadcast_to(e, (r.shape[0], E))], axis=1)

    def point(qi):
        return objective.point(qi[0], tuple(qi[1 + j] for j in range(E)), delta)

    vals = jax.vmap(point)(q)
    d1 = jax.vmap(jax.grad(point))(q)
    f = jnp.sum(W * vals)
    psi = W * d1[:, 0]
    g = jnp.concatenate([jnp.sum(J * psi[:, None], axis=0), jnp.sum(W[:, None] * d1[:, 1:], axis=0)])
    Hg = _gauss_newton(r, J, W, q, delta, objective, n_law, e, E)
    if objective.polish != "newton":
        return f, g, Hg, Hg

    def newton(_):
        d2 = jax.vmap(jax.hessian(point))(q)
        v = jax.lax.stop_gradient(psi)
        H_ll = _gram(J, W * d2[:, 0, 0]) + jax.hessian(lambda xl: v @ res(xl))(xl)
        H_le = J.T @ (W[:, None] * d2[:, 0, 1:])
        H_ee = jnp.sum(W[:, None, None] * d2[:, 1:, 1:], axis=0)
        return jnp.block([[H_ll, H_le], [H_le.T, H_ee]])

    Hn = jax.lax.cond(exact, newton, lambda _: Hg, None)
    return f, g, Hg, Hn


def _gram(J, c):
    """``J^T diag(c) J`` as one fused multiply-and-sum (faster than a batched matmul of
    tiny matrices on CPU)."""
    return jnp.sum(J[:, :, None] * (c[:, None, None] * J[:, None, :]), axis=0)


def _gauss_newton(r, J, W, q, delta, objective, n_law, e, E):
    """Reweighted Gauss-Newton curvature of the objective on the scaled residuals."""

    def scale(qi):
        return objective.scale(qi[0], tuple(qi[1 + j] for j in range(E)))

    if not E:
        return _gram(J, W * objective.irls(r, delta))
    z = jax.vmap(scale)(q)
    dz = jax.vmap(jax.grad(scale))(q)
    c = W * objective.irls(z, delta)
    Jz = jnp.concatenate([dz[:, :1] * J, dz[:, 1:]], axis=1)
    H = _gram(Jz, c)
    off = jax.hessian(lambda ee: objective.offset(tuple(ee[j] for j in range(E)), delta))(e)
    return H.at[n_law:, n_law:].add(jnp.sum(W) * off)


def _start_extra(x, inputs, y_t, w, out_w, frozen_values, delta, *, law, objective, layout):
    """Append the nuisance parameters' start to a start of the law's parameters: the
    likelihood's scale starts at ``delta`` times the mean absolute residual (the scale that
    minimises it when most residuals are in Huber's linear zone)."""
    if not layout.extra:
        return x
    params = law.params(*layout.unpack_law(x, frozen_values))
    pred = law.log_predict(params, *inputs) if objective.space == "log" else law(params, *inputs)
    W = _weights(w, out_w, y_t.shape)
    mad = jnp.sum(W * jnp.abs(jnp.ravel(pred - y_t))) / jnp.sum(W)
    return jnp.concatenate([x, jnp.log(jnp.maximum(delta * mad, 1e-300))[None]])


# ----------------------------------------------------------------------------------------
# The compiled solve
# ----------------------------------------------------------------------------------------


def program(x0s, inputs, y, w, out_w, frozen_values, delta, ftol, *, law, objective, layout, plan, tabled):
    """Every start of every table in one call; ``tabled`` says which of ``(inputs, y, w)``
    carry a leading table axis (none: one table)."""
    box = solvers.Box(*(jnp.asarray(b) for b in layout.box()))
    y_t = jnp.log(y) if objective.space == "log" else y
    data = {"inputs": inputs, "y": y_t, "w": w}
    keys = [k for k, b in zip(("inputs", "y", "w"), tabled) if b]
    tables = {k: data[k] for k in keys} if keys else None
    common = dict(law=law, objective=objective, layout=layout)

    def unpack(tab):
        d = dict(data)
        if tab is not None:
            d.update(tab)
        return d["inputs"], d["y"], d["w"], out_w, frozen_values, delta

    fgh = partial(_fgh, **common)
    start = partial(_start_extra, **common)
    return solvers.solve_tables(
        lambda x, tab, exact: fgh(x, *unpack(tab), exact),
        x0s,
        tables,
        box,
        plan=plan,
        ftol=ftol,
        start=lambda x, tab: start(x, *unpack(tab)),
    )


_STATIC = ("law", "objective", "layout", "plan", "tabled")


@functools.cache
def _jitted(backend: str):
    return jax.jit(program, static_argnames=_STATIC, compiler_options=compiler_options())


def solve(*args, **static):
    """The compiled solve (one program per law, objective, layout, plan and shapes),
    compiled with :func:`jaxlaws.compilation.compiler_options`."""
    return _jitted(jax.default_backend())(*args, **static)


def lower(*args, **static):
    """``jax.jit(...).lower`` of :func:`solve` (to inspect or time its compilation)."""
    return _jitted(jax.default_backend()).lower(*args, **static)


#: Gauss-Newton steps a table's screening may spend in all, spread over its starts (see
#: :func:`auto_screen_steps`).
SCREEN_BUDGET = 2560


def auto_screen_steps(n_starts: int) -> int:
    """Screening steps per start: ``SCREEN_BUDGET / starts``, between 3 and 20 (20 for up
    to 128 starts, 3 for Hoffmann's 4500-start grid). Longer screening ranks starts by the
    basin they are heading for rather than by where they began, and Gauss-Newton steps make
    steadier progress far from an optimum than Newton steps (measured on the suite in
    ``benchmarks/``); many starts need only a short screen to find the best few."""
    return int(min(20, max(3, -(-SCREEN_BUDGET // max(int(n_starts), 1)))))


def plan_for(
    n_starts: int,
    n_tables: int,
    n_residuals: int,
    n_params: int,
    *,
    polish,
    screen_steps: int,
    max_steps: int,
    keep_hessian: bool = False,
    certify: bool = True,
) -> solvers.Plan:
    """The static plan of a solve.

    ``polish="adaptive"`` (default) polishes :data:`FIRST_ROUND` starts per table first (an
    eighth of them, at least 2, for fewer than 64) and widens in rounds; an int polishes
    exactly that many; ``None`` polishes every start.
    The number of solver slots grows with the work available and shrinks with the size of
    one evaluation, so a batch keeps its slots busy without holding more than it uses.
    """
    for name, value, least in (("max_steps", max_steps, 1), ("screen_steps", screen_steps, 0)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least
        ):
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    if (
        polish is not None
        and polish != "adaptive"
        and (isinstance(polish, bool) or not isinstance(polish, int | np.integer) or polish < 1)
    ):
        raise ValueError(f"polish must be 'adaptive', None or a whole number >= 1, got {polish!r}")
    S = int(n_starts)
    if screen_steps is None:
        screen_steps = auto_screen_steps(S)
    if polish is None:
        first = cap = S
    elif isinstance(polish, str):
        if polish != "adaptive":
            raise ValueError(f"polish must be 'adaptive', an int or None, got {polish!r}")
        first, cap = min(S, FIRST_ROUND, max(2, S // 8)), S
    else:
        if int(polish) < 1:
            raise ValueError(f"polish must be at least 1, got {polish}")
        first = cap = min(int(polish), S)
    work = max(1, n_residuals) * max(1, n_params)
    budget = max(16, (1 << 21) // work)
    slots = int(min(n_tables * cap, max(16, min(n_tables * 2 * first, budget))))
    # many slots are stepped in blocks (small enough to stay in cache), so that a tail of
    # slow starts steps one block
    size = 1 << max(5, min(BLOCK.bit_length() - 1, ((1 << 18) // work).bit_length() - 1))
    block = 0
    if slots > 2 * size:
        slots = -(-slots // size) * size
        block = size
    # screen on the polishing slots (one loop, the shortest compilation) unless there are
    # many more starts than slots: then screen ahead, in cache-sized chunks
    inline = n_tables * S <= INLINE_SCREEN * slots
    chunk = 0 if inline else int(min(S, max(16, (1 << 18) // work)))
    return solvers.Plan(
        screen_steps=int(screen_steps),
        first=int(first),
        cap=int(cap),
        slots=slots,
        max_steps=int(max_steps),
        screen_chunk=chunk,
        keep_hessian=bool(keep_hessian),
        certify=bool(certify),
        block=block,
        soft_steps=SOFT_STEPS if SOFT_STEPS < max_steps else 0,
    )


# ----------------------------------------------------------------------------------------
# Setup: validation and layout
# ----------------------------------------------------------------------------------------

_TRACE_ERRORS = (
    jax.errors.TracerArrayConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def check_traceable(law: Law, params, inputs) -> jax.ShapeDtypeStruct:
    """Trace the law once on abstract values; the shape of its prediction.

    Raises:
        ValueError: the law cannot be traced by JAX (NumPy calls or Python branches on
            parameters), in one line that says to use ``jax.numpy``.
    """
    try:
        return jax.eval_shape(lambda p, *a: law(p, *a), params, *inputs)
    except _TRACE_ERRORS as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(
            f"law {law.name!r} cannot be traced by JAX ({type(err).__name__}: {first[:120]}): write it "
            "with jax.numpy (jnp.exp, jnp.where) instead of numpy, math or Python if/float on parameters"
        ) from None
    except (AttributeError, NameError, TypeError, IndexError, KeyError, ValueError, ZeroDivisionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        where = _law_line(err)
        shapes = ", ".join(f"{n} {tuple(a.shape)}" for n, a in zip(law.inputs, inputs))
        raise ValueError(
            f"law {law.name!r} fails on its inputs ({shapes}){where}: {type(err).__name__}: {first[:160]}"
        ) from None


def _law_line(err) -> str:
    """`` (FILE:LINE)`` of the innermost frame outside JAX and jaxlaws, where the user's law
    raised ``err``."""
    import traceback

    frames = [f for f in traceback.extract_tb(err.__traceback__) if "/jax/" not in f.filename]
    frames = [f for f in frames if "/jaxlaws/" not in f.filename.replace("\\", "/")]
    return f" ({os.path.basename(frames[-1].filename)}, line {frames[-1].lineno})" if frames else ""


@dataclasses.dataclass(frozen=True)
class Problem:
    """Everything :func:`jaxlaws.fit`, :func:`jaxlaws.bootstrap` and batch jobs share
    about one table."""

    law: Law
    objective: Objective
    layout: Layout
    data: LawData
    frozen_values: tuple
    init: tuple | None
    delta: float
    output_weights: np.ndarray

    @property
    def n_residuals(self) -> int:
        return len(self.data) * self.data.n_outputs

    def plan(self, n_starts, n_tables=1, *, polish, screen_steps, max_steps, keep_hessian=False):
        return plan_for(
            n_starts,
            n_tables,
            self.n_residuals,
            self.layout.size,
            polish=polish,
            screen_steps=screen_steps,
            max_steps=max_steps,
            keep_hessian=keep_hessian,
            # a likelihood that is almost L1 has its minimum at a kink: no model certifies it
            certify=self.objective.polish == "newton",
        )

    def objective_fn(self):
        """The objective the solver minimises, as a pure JAX function of ``x`` (the free
        parameters' optimiser coordinates, then nuisance parameters) for this table: for
        handing to another optimiser, or checking a fit."""
        inputs, y, w, out_w, frozen_values, delta = self.args()
        y_t = jnp.log(y) if self.objective.space == "log" else y
        law, obj, layout = self.law, self.objective, self.layout
        W = _weights(w, out_w, y_t.shape)

        def f(x):
            params = law.params(*layout.unpack_law(x[: layout.law_size], frozen_values))
            pred = law.log_predict(params, *inputs) if obj.space == "log" else law(params, *inputs)
            extra = tuple(x[layout.law_size + j] for j in range(len(layout.extra)))
            return obj.value(jnp.ravel(pred - y_t), W, delta, extra)

        return f

    def args(self):
        """The solver's dynamic arguments: inputs, target, unit row weights, output
        weights, frozen values, delta."""
        return (
            tuple(jnp.asarray(a) for a in self.data.inputs),
            jnp.asarray(self.data.y),
            jnp.asarray(np.ones(len(self.data))),
            jnp.asarray(self.output_weights),
            tuple(jnp.asarray(np.asarray(v, np.float64)) for v in self.frozen_values),
            jnp.asarray(np.float64(self.delta)),
        )

    def static(self, plan: solvers.Plan, tabled=(False, False, False)) -> dict:
        return dict(law=self.law, objective=self.objective, layout=self.layout, plan=plan, tabled=tabled)

    def solve(
        self,
        x0s,
        *,
        weights=None,
        ftol,
        polish,
        screen_steps,
        max_steps,
        keep_hessian=False,
        devices=None,
    ) -> solvers.TableSolution:
        """Run the compiled solve; ``weights`` ``(R, n)`` solves ``R`` resamples of the table.

        Resamples are split across the first ``devices`` local devices (all by default),
        padded to :func:`~jaxlaws.sharding.padded_size`; the padding is dropped.
        """
        inputs, y, w, out_w, frozen_values, delta = self.args()
        x0s = jnp.asarray(np.asarray(x0s, np.float64))
        ftol = jnp.asarray(np.float64(ftol))
        S = x0s.shape[0]
        if weights is None:
            plan = self.plan(
                S, 1, polish=polish, screen_steps=screen_steps, max_steps=max_steps, keep_hessian=keep_hessian
            )
            sol = solve(x0s, inputs, y, w, out_w, frozen_values, delta, ftol, **self.static(plan))
            return jax.device_get(sol)
        devs = local_devices(devices)
        weights, n = pad_batch(jnp.asarray(weights, jnp.float64), len(devs))
        per_device = weights.shape[0] // len(devs)
        plan = self.plan(S, per_device, polish=polish, screen_steps=screen_steps, max_steps=max_steps)
        args = (x0s, inputs, y, weights, out_w, frozen_values, delta, ftol)
        batched = (False, False, False, True, False, False, False, False)
        sol = map_batch(program, args, batched, devs, **self.static(plan, (False, False, True)))
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:n], jax.device_get(sol))


def _configure_law(law: Law, data: LawData) -> Law:
    """Bind data-dependent options, e.g. ``max_passes`` for the filtering laws."""
    if law.configure is None:
        return law
    return law.configure(law, dict(zip(law.inputs, data.inputs)))


def _field_shapes(law: Law, data: LawData, init) -> list[tuple[int, ...]]:
    """Each parameter's shape: declared with the law (dimensions resolved from the data:
    a vector input's width, the number of outputs), else from ``init``, else scalar."""
    dims = {name: a.shape[-1] for name, a in zip(law.inputs, data.inputs) if a.ndim == 2}
    dims["outputs"] = data.n_outputs
    declared = dict(law.shapes)
    for name in law.pool_params:
        declared.setdefault(name, ("sizes",))
    out = []
    for k, name in enumerate(law.param_names):
        if name in declared:
            spec = declared[name]
            missing = [d for d in spec if isinstance(d, str) and d not in dims]
            if missing:
                raise ValueError(
                    f"parameter {name!r} of {law.name!r} takes its shape from {missing}, which is not a "
                    "vector input of this table"
                )
            out.append(tuple(dims[d] if isinstance(d, str) else d for d in spec))
        elif init is not None:
            out.append(np.shape(init[k]))
        else:
            out.append(())
    return out


def _output_weights(output_weights, k: int, target) -> np.ndarray:
    if output_weights is None:
        return np.ones(k)
    ow = np.atleast_1d(np.asarray(output_weights, np.float64))
    if ow.shape != (k,):
        raise ValueError(f"output_weights has {ow.size} entries for {k} target columns {target}")
    if not np.all(np.isfinite(ow)) or np.any(ow < 0) or not np.any(ow > 0):
        raise ValueError(f"output_weights must be finite, non-negative and not all zero, got {ow.tolist()}")
    return ow


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
    output_weights=None,
) -> Problem:
    """Validate and assemble a fitting problem (shared by fit, bootstrap and batch jobs)."""
    law = get(law)
    obj = get_objective(objective)
    if not (isinstance(delta, int | float | np.floating) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive number, got {delta!r}")
    d = prepare(law, data, columns=columns, target=target, positive_target=obj.space == "log")
    law = _configure_law(law, d)
    if init is not None:
        init = law.make_params(init)
        init = law.params(*(np.asarray(v, np.float64) for v in init))
    if frozen is None:
        frozen_names, frozen_map = (), {}
    elif isinstance(frozen, Mapping):
        frozen_map = dict(frozen)
        frozen_names = tuple(frozen_map)
    else:
        frozen_names = tuple(frozen)
        if init is None:
            raise ValueError(
                "frozen given as names needs init= for their values (--init on the command line)"
            )
        frozen_map = {n: getattr(init, n) for n in frozen_names if n in law.param_names}
    unknown = sorted(set(frozen_names) - set(law.param_names))
    if unknown:
        raise ValueError(
            f"frozen names {unknown}, which are not parameters of {law.name!r}: {list(law.param_names)}"
        )
    shapes = _field_shapes(law, d, init)
    if init is not None:
        try:
            init = law.params(*(np.broadcast_to(v, s).copy() for v, s in zip(init, shapes)))
        except ValueError:
            got = {n: np.shape(v) for n, v in zip(law.param_names, init)}
            raise ValueError(
                f"init has shapes {got}; the parameters of {law.name!r} here have shapes "
                f"{dict(zip(law.param_names, shapes))}"
            ) from None
    if frozen_names and set(frozen_names) >= set(law.param_names) and not obj.extra:
        raise ValueError(f"every parameter of {law.name!r} is frozen: there is nothing to fit")
    if init is not None:
        for name, value, c in zip(law.param_names, init, law.constraints):
            if name not in frozen_names and not c.contains(value):
                raise ValueError(
                    f"init {name} = {np.asarray(value).tolist()!r} is outside its constraint ({c!r})"
                )
    layout = Layout(
        names=law.param_names,
        shapes=tuple(shapes),
        free=tuple(n not in frozen_names for n in law.param_names),
        constraints=tuple(law.constraints),
        extra=obj.extra,
    )
    n_free = layout.size
    n_obs = len(d) * d.n_outputs
    if n_obs < n_free:
        raise ValueError(
            f"{len(d)} rows cannot determine {n_free} free parameters {list(layout.labels)}: "
            "give more rows or freeze parameters"
        )
    y_flat = np.asarray(d.y).ravel()
    if y_flat.size > 1 and np.all(y_flat == y_flat[0]):
        raise ValueError(
            f"the target {d.columns['target']!r} is constant (every row {y_flat[0]:g}): "
            "there is no trend to fit a law to"
        )
    frozen_values = tuple(
        np.broadcast_to(np.asarray(frozen_map[n], np.float64), s)
        for n, s, f in zip(layout.names, layout.shapes, layout.free)
        if not f
    )
    probe = law.params(
        *(jax.ShapeDtypeStruct(s, jnp.float64) for s in shapes)
    )  # what the law computes, traced once
    out = check_traceable(law, probe, tuple(jnp.asarray(a) for a in d.inputs))
    want = tuple(np.shape(d.y))
    if tuple(out.shape) != want:
        raise ValueError(
            f"law {law.name!r} predicts shape {tuple(out.shape)} for {len(d)} rows, but the target "
            f"{d.columns['target']!r} has shape {want}"
            + ("" if len(want) == 1 else ": name one target column per output")
        )
    ow = _output_weights(output_weights, d.n_outputs, d.columns["target"])
    return Problem(law, obj, layout, d, frozen_values, init, float(delta), ow)
