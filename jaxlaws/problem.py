"""A fitting problem: a law, an objective, a table, and the compiled step loop they share.

:func:`setup` validates a table against a law (its declared input domains, the target's
columns, what the law computes) and lays out the free parameters as one vector ``x`` of
optimiser coordinates. :meth:`Problem.solve` runs the multi-start
(:mod:`jaxlaws.multistart`) behind :func:`jaxlaws.fit`, :func:`jaxlaws.bootstrap` and batch
jobs over one compiled program, :func:`program` (:func:`jaxlaws.solvers.advance` for this
law): it is keyed only on what changes shapes or code paths (law, objective, layout, block
size, which arguments carry a table axis, the number of slots), so a second fit of
same-shaped data compiles nothing.

The derivatives are built from the objective's structure: one forward pass of the law gives
the residuals ``r`` and their Jacobian ``J`` (``jax.jacfwd``), the gradient is
``J^T (w phi'(r))`` and the reweighted Gauss-Newton curvature ``J^T diag(w c) J``
(:func:`_fgh`); the exact Hessian adds the second-order term ``sum_i w_i phi'(r_i) d^2 r_i``
(:func:`_exact`, only where a start asks for it), and geodesic acceleration one more
evaluation of the residuals along the step (:func:`_accel`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxlaws import multistart, solvers
from jaxlaws._constraints import Constraint
from jaxlaws.compilation import compiler_options
from jaxlaws.data import LawData, prepare
from jaxlaws.laws import Law, get
from jaxlaws.objectives import Objective, get_objective
from jaxlaws.sharding import local_devices

__all__ = ["Layout", "Problem", "setup", "policy_for", "slots_for", "check_traceable"]


#: The largest change of a log-coordinate (log of a scale) in one solver step: a factor
#: of ``exp(3) = 20``.
STEP_LOG = 3.0
#: The largest change of a linear coordinate in one step, relative to ``max(1, |x|)``.
STEP_LINEAR = 3.0
#: A log coordinate beyond this (a scale past ``exp(46) = 1e20`` or below ``1e-20``) on a
#: side its constraint leaves open has run off (:data:`~jaxlaws.solvers.DIVERGED`).
RUNAWAY_LOG = 46.0
#: A linear coordinate beyond this magnitude on an open side has run off.
RUNAWAY_LINEAR = 1e20

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

    def output_index(self, m: int) -> np.ndarray:
        """For the one-output layout of a law fitted output by output (every field shaped
        ``(outputs, ...)``): ``(m, size)``, where output ``k``'s coordinates sit in the whole
        law's ``x`` (field by field, each field's rows output by output). ``x[index]`` splits
        a whole ``x`` into the outputs'; ``x[index] = xs`` joins them."""
        index = np.zeros((m, self.law_size), int)
        start = 0
        for _, shape, _, sl in self.free_fields():
            per = math.prod(shape)
            index[:, sl] = start + per * np.arange(m)[:, None] + np.arange(per)[None, :]
            start += m * per
        return index

    def box(self) -> solvers.Box:
        """Closed bounds on ``x`` from the constraints (nuisance parameters are free), and
        step caps: :data:`STEP_LOG` in log coordinates, ``STEP_LINEAR max(1, |x|)``
        otherwise (a nuisance scale is a log coordinate), and runaway bounds on open sides:
        :data:`RUNAWAY_LOG` in log coordinates, :data:`RUNAWAY_LINEAR` otherwise (a start
        that wanders past a range and comes back is common; one past these is not)."""
        lo, hi, cap_abs, cap_rel, away = [], [], [], [], []
        for _, shape, c, _ in self.free_fields():
            a, b = c.box
            k = math.prod(shape)
            lo += [a] * k
            hi += [b] * k
            log = c.transform != "identity"
            cap_abs += [STEP_LOG if log else STEP_LINEAR] * k
            cap_rel += [0.0 if log else STEP_LINEAR] * k
            away += [RUNAWAY_LOG if log else RUNAWAY_LINEAR] * k
        E = len(self.extra)
        lo += [-np.inf] * E
        hi += [np.inf] * E
        cap_abs += [STEP_LOG] * E
        cap_rel += [0.0] * E
        away += [RUNAWAY_LOG] * E
        return solvers.Box(*(np.array(v, np.float64) for v in (lo, hi, cap_abs, cap_rel, away)))

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


def _residual_fn(inputs, y_t, frozen_values, *, law, objective, layout):
    """``xl -> r``: the residuals (``transform(prediction) - transform(y)``, flattened) as a
    function of the law's optimiser coordinates."""

    def res(xl):
        params = law.params(*layout.unpack_law(xl, frozen_values))
        pred = law.log_predict(params, *inputs) if objective.space == "log" else law(params, *inputs)
        return jnp.ravel(pred - y_t)

    return res


def _q(r, e, E):
    return jnp.concatenate([r[:, None], jnp.broadcast_to(e, (r.shape[0], E))], axis=1)


def _fgh(x, inputs, y_t, w, out_w, frozen_values, delta, *, law, objective, layout):
    """The objective at ``x``: ``(f, g, H_gn, aux)``, the exact value and gradient, the
    reweighted Gauss-Newton curvature, and ``aux = (J, r)``: the residuals' Jacobian and the
    residuals, for the exact curvature (:func:`_exact`) and geodesic acceleration
    (:func:`_accel`)."""
    n_law = layout.law_size
    xl, e = x[:n_law], x[n_law:]
    E = len(layout.extra)
    res = _residual_fn(inputs, y_t, frozen_values, law=law, objective=objective, layout=layout)

    def twice(xl):
        r = res(xl)
        return r, r

    J, r = jax.jacfwd(twice, has_aux=True)(xl)
    W = _weights(w, out_w, y_t.shape)
    if not E:
        # closed-form loss derivatives (no nuisance parameters)
        rho, d1r, _ = objective.rho_derivatives(r, delta)
        f = jnp.sum(W * rho)
        g = jnp.sum(J * (W * d1r)[:, None], axis=0)
        return f, g, _gram(J, W * objective.irls(r, delta)), (J, r)
    q = _q(r, e, E)

    def point(qi):
        return objective.point(qi[0], tuple(qi[1 + j] for j in range(E)), delta)

    vals = jax.vmap(point)(q)
    d1 = jax.vmap(jax.grad(point))(q)
    f = jnp.sum(W * vals)
    psi = W * d1[:, 0]
    g = jnp.concatenate([jnp.sum(J * psi[:, None], axis=0), jnp.sum(W[:, None] * d1[:, 1:], axis=0)])
    return f, g, _gauss_newton(r, J, W, q, delta, objective, n_law, e, E), (J, r)


def _exact(x, aux, inputs, y_t, w, out_w, frozen_values, delta, *, law, objective, layout):
    """The exact Hessian at ``x``, given ``aux = (J, r)`` from :func:`_fgh` there: the
    loss's curvature on ``J`` plus the second-order term ``sum_i v_i d^2 r_i``
    (``v = w rho'(r)`` held fixed), the Jacobian of ``J^T v``, forward over reverse. It is
    computed apart from the Gauss-Newton part, so what a start gets from :func:`_fgh` never
    depends on whether its block asked for this."""
    J, r = aux
    n_law = layout.law_size
    xl, e = x[:n_law], x[n_law:]
    E = len(layout.extra)
    res = _residual_fn(inputs, y_t, frozen_values, law=law, objective=objective, layout=layout)
    W = _weights(w, out_w, y_t.shape)
    if not E:
        _, d1r, d2r = objective.rho_derivatives(r, delta)
        v = jax.lax.stop_gradient(W * d1r)
        return _gram(J, W * d2r) + jax.jacfwd(lambda z: jax.vjp(res, z)[1](v)[0])(xl)
    q = _q(r, e, E)

    def point(qi):
        return objective.point(qi[0], tuple(qi[1 + j] for j in range(E)), delta)

    d1 = jax.vmap(jax.grad(point))(q)
    d2 = jax.vmap(jax.hessian(point))(q)
    v = jax.lax.stop_gradient(W * d1[:, 0])
    H_ll = _gram(J, W * d2[:, 0, 0]) + jax.hessian(lambda xl: v @ res(xl))(xl)
    H_le = J.T @ (W[:, None] * d2[:, 0, 1:])
    H_ee = jnp.sum(W[:, None, None] * d2[:, 1:, 1:], axis=0)
    return jnp.block([[H_ll, H_le], [H_le.T, H_ee]])


def _gram(J, c):
    """``J^T diag(c) J``: a matrix product for tables of more than a few dozen rows, one fused
    multiply-and-sum for fewer (faster than a batched product of tiny matrices on CPU)."""
    if J.shape[0] > 32:
        return (J * c[:, None]).T @ J
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
    """Complete a start's nuisance coordinates (the entries of ``x`` after the law's): the
    likelihood's scale starts at ``delta`` times the mean absolute residual (the scale that
    minimises it when most residuals are in Huber's linear zone)."""
    if not layout.extra:
        return x
    n = layout.law_size
    params = law.params(*layout.unpack_law(x[:n], frozen_values))
    pred = law.log_predict(params, *inputs) if objective.space == "log" else law(params, *inputs)
    W = _weights(w, out_w, y_t.shape)
    mad = jnp.sum(W * jnp.abs(jnp.ravel(pred - y_t))) / jnp.sum(W)
    return jnp.concatenate([x[:n], jnp.log(jnp.maximum(delta * mad, 1e-300))[None]])


def _floor(inputs, y_t, w, out_w, frozen_values, delta, *, objective):
    """The objective's rounding floor on a table (:meth:`~jaxlaws.objectives.Objective.floor`)."""
    return objective.floor(jnp.ravel(y_t), _weights(w, out_w, y_t.shape))


#: Step fraction of the finite difference that gives the residuals' second directional
#: derivative (Transtrum and Sethna use 0.1).
ACCEL_H = 0.1


def _accel(x, v, aux, inputs, y_t, w, out_w, frozen_values, delta, *, law, objective, layout):
    """The right-hand side of geodesic acceleration at ``x`` along the step ``v``,
    ``J^T diag(c) r_vv``: the residuals' second directional derivative, by one more
    evaluation of the residuals, ``r_vv = (2 / h) ((r(x + h v) - r(x)) / h - J v)``, weighted
    as in the Gauss-Newton curvature (``aux = (J, r)`` from the evaluation at ``x``)."""
    J, r = aux
    c = _weights(w, out_w, y_t.shape) * objective.irls(r, delta)
    n = layout.law_size
    xh = x[:n] + ACCEL_H * v[:n]
    params = law.params(*layout.unpack_law(xh, frozen_values))
    pred = law.log_predict(params, *inputs) if objective.space == "log" else law(params, *inputs)
    r_h = jnp.ravel(pred - y_t)
    rvv = (2.0 / ACCEL_H) * ((r_h - r) / ACCEL_H - J @ v[:n])
    return jnp.concatenate([J.T @ (c * rvv), jnp.zeros(len(layout.extra))])


# ----------------------------------------------------------------------------------------
# The compiled step loop
# ----------------------------------------------------------------------------------------


def program(
    slots,
    n_steps,
    refill_at,
    inputs,
    y,
    w,
    out_w,
    frozen_values,
    delta,
    ftol,
    *,
    law,
    objective,
    layout,
    block,
    max_steps,
    certify,
    accelerate,
    tabled,
):
    """A bounded number of solver steps on a batch of slots (:func:`jaxlaws.solvers.advance`)
    for this law, objective and layout; ``tabled`` says which of ``(inputs, y, w)`` carry a
    leading table axis (a slot's table is its index into them)."""
    box = solvers.Box(*(jnp.asarray(b) for b in layout.box()))
    y_t = jnp.log(y) if objective.space == "log" else y
    data = {"inputs": inputs, "y": y_t, "w": w}
    keys = [k for k, b in zip(("inputs", "y", "w"), tabled) if b]
    common = dict(law=law, objective=objective, layout=layout)

    def args(t):
        d = dict(data)
        for k in keys:
            d[k] = jax.tree_util.tree_map(lambda a: a[t], data[k])
        return d["inputs"], d["y"], d["w"], out_w, frozen_values, delta

    return solvers.advance(
        lambda x, t: _fgh(x, *args(t), **common),
        slots,
        n_steps,
        refill_at,
        box,
        block=block,
        max_steps=max_steps,
        ftol=ftol,
        certify=certify,
        exact=(lambda x, aux, t: _exact(x, aux, *args(t), **common))
        if objective.polish == "newton"
        else None,
        accelerate=(lambda x, v, aux, t: _accel(x, v, aux, *args(t), **common)) if accelerate else None,
        start=(lambda x, t: _start_extra(x, *args(t), **common)) if layout.extra else None,
        floor=lambda t: _floor(*args(t), objective=objective),
    )


_STATIC = ("law", "objective", "layout", "block", "max_steps", "certify", "accelerate", "tabled")


@functools.cache
def _jitted(backend: str):
    return jax.jit(program, static_argnames=_STATIC, compiler_options=compiler_options())


@functools.lru_cache(maxsize=32)
def _sharded(devices: tuple, n_data: int, static: tuple):
    from jax.sharding import Mesh, PartitionSpec

    mesh = Mesh(np.array(devices), ("slots",))
    specs = (PartitionSpec("slots"),) + (PartitionSpec(),) * (n_data + 2)
    fn = functools.partial(program, **dict(static))
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("slots"), check_vma=False),
        compiler_options=compiler_options(),
    )


def lower(*args, **static):
    """``jax.jit(...).lower`` of the step program (to inspect or time its compilation)."""
    return _jitted(jax.default_backend()).lower(*args, **static)


#: Steps a table's screening may spend in all, spread over its starts (see
#: :func:`auto_screen_steps`).
SCREEN_BUDGET = 2560


def auto_screen_steps(n_starts: int) -> int:
    """Screening steps per start: ``SCREEN_BUDGET / starts``, between 3 and 20 (20 for up
    to 128 starts, 3 for Hoffmann's 4500-start grid). Longer screening ranks starts by the
    basin they are heading for rather than by where they began; many starts need only a
    short screen to find the best few."""
    return int(min(20, max(3, -(-SCREEN_BUDGET // max(int(n_starts), 1)))))


#: Starts a table polishes in its first round (fewer for fewer than 64 starts: an eighth,
#: at least 2), before its polishing widens.
FIRST_ROUND = 8
#: The stopping rule's bound on the expected number of optima lower than the best that no
#: start reached (:mod:`jaxlaws.multistart`).
MISSED = 0.05
#: Converged starts the best optimum needs before a fit may stop.
MIN_HITS = 2
#: Most random starts a multi-start draws in all, by default (``max_starts``).
MAX_STARTS = 1024
#: Most slots stepped at once.
MAX_SLOTS = 4096


def policy_for(
    n_starts: int,
    *,
    polish,
    screen_steps,
    max_steps: int,
    drawn: bool = False,
    missed: float = MISSED,
    min_hits: int = MIN_HITS,
    max_starts: int | None = None,
    max_seconds: float | None = None,
    basin_rtol: float = 1e-6,
) -> multistart.Policy:
    """The multi-start's :class:`~jaxlaws.multistart.Policy`.

    ``polish="adaptive"`` (default) polishes :data:`FIRST_ROUND` starts per table first (an
    eighth of them, at least 2, for fewer than 64) and widens in rounds: for the starts
    given, until the best objective is reached by ``min_hits`` converged starts and a
    widening finds nothing lower; for starts jaxlaws draws (``drawn``), every start is
    polished and more are drawn, up to ``max_starts``, until the expected number of optima
    lower than the best that no start reached (after Boender and Rinnooy Kan) is at most
    ``missed``. An int polishes exactly that many of the best screened starts; ``None``
    polishes every start (no screening: every start runs to its end).
    """
    for name, value, least in (("max_steps", max_steps, 1), ("screen_steps", screen_steps, 0)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least
        ):
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    if polish is not None and not (isinstance(polish, str) and polish == "adaptive"):
        if isinstance(polish, bool) or not isinstance(polish, int | np.integer) or polish < 1:
            raise ValueError(f"polish must be 'adaptive', None or a whole number >= 1, got {polish!r}")
    S = int(n_starts)
    if screen_steps is None:
        screen_steps = auto_screen_steps(S)
    screen = int(min(screen_steps, max_steps))
    if polish is None:
        first, cap, screen, rule = S, None, 0, -1.0
    elif isinstance(polish, str) and drawn:
        # starts jaxlaws draws: every one is polished, so the polished starts are the
        # uniform sample Boender and Rinnooy Kan's rule is about (a screened subset would
        # hide the rare basins); more are drawn while the rule does not hold
        first, cap, rule = S, None, float(missed)
    elif isinstance(polish, str):
        # the starts given: rounds until the best is confirmed and a widening finds nothing
        # lower
        first, cap, rule = min(S, FIRST_ROUND, max(2, S // 8)), None, np.inf
    else:
        first = cap = min(int(polish), S)
        rule = -1.0
    if first >= S:
        screen = 0  # every start is polished: ranking them changes nothing
    return multistart.Policy(
        screen_steps=screen,
        first=int(first),
        cap=cap,
        max_steps=int(max_steps),
        min_hits=int(min_hits),
        missed=rule,
        basin_rtol=float(basin_rtol),
        max_starts=int(max_starts) if max_starts is not None else (max(MAX_STARTS, S) if drawn else S),
        max_seconds=max_seconds,
    )


def slots_for(n_tasks: int, n_residuals: int, n_params: int, n_devices: int = 1) -> tuple[int, int]:
    """``(slots, block)``: how many starts are stepped per call (across all devices), and
    together.

    On CPU a block holds about ``2**13`` residual-parameter products (2 to 256 starts), so
    a tail of slow starts costs a few starts' work per step, not the batch's; on an
    accelerator a device's slots are one block. A device's slots are a power of two (a few
    programs serve every batch size), at least a block, at most :data:`MAX_SLOTS` and about
    ``2**22`` products. The block does not depend on the number of devices, so a start's
    arithmetic is the same on one device or several.
    """
    work = max(1, n_residuals) * max(1, n_params)
    cap = max(1, min(MAX_SLOTS, (1 << 22) // work))
    per_device = -(-int(n_tasks) // n_devices)
    K = 1 << max(0, int(min(per_device, cap) - 1).bit_length())
    if jax.default_backend() == "cpu":
        B = 1 << max(1, min(8, ((1 << 13) // work).bit_length() - 1))
        K = max(K, B)
    else:
        B = K
    return int(K * n_devices), int(B)


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

    def solve(
        self,
        x0s,
        *,
        weights=None,
        tables: dict | None = None,
        n_tables: int | None = None,
        ftol,
        polish,
        screen_steps,
        max_steps,
        devices=None,
        draw=None,
        accelerate: bool = True,
        progress=None,
        **rule,
    ) -> multistart.TableSolution:
        """Run the multi-start from ``x0s`` (rows of the law's optimiser coordinates; with a
        leading table axis, each table's own).

        ``weights`` ``(R, n)`` solves ``R`` resamples of the table; ``tables`` (a dict with
        any of ``inputs``, ``y``, ``w`` carrying a leading table axis) solves many tables of
        one shape (the first ``n_tables`` of them: the rest pad the arrays to a shape shared
        by every call); otherwise this problem's table. ``draw`` ``(n, k) -> starts`` lets the
        multi-start draw more starts while its rule does not hold; ``rule`` holds the
        :func:`policy_for` options (``missed``, ``min_hits``, ``max_starts``,
        ``max_seconds``, ``basin_rtol``). Slots are split across the first ``devices`` local
        devices (all by default; one for a single table). ``progress(n)`` is called with the
        number of finished tables after every compiled segment.
        """
        inputs, y, w, out_w, frozen_values, delta = self.args()
        tabled = [False, False, False]
        T = 1
        if weights is not None:
            w = jnp.asarray(weights, jnp.float64)
            tabled[2], T = True, w.shape[0]
        for i, k in enumerate(("inputs", "y", "w")):
            if tables is not None and k in tables:
                v = tables[k]
                v = tuple(jnp.asarray(a) for a in v) if k == "inputs" else jnp.asarray(v, jnp.float64)
                inputs, y, w = (v, y, w) if i == 0 else (inputs, v, w) if i == 1 else (inputs, y, v)
                tabled[i] = True
                T = jax.tree_util.tree_leaves(v)[0].shape[0]
        x0s = np.asarray(x0s, np.float64)
        S = x0s.shape[-2]
        policy = policy_for(
            S, polish=polish, screen_steps=screen_steps, max_steps=max_steps, drawn=draw is not None, **rule
        )
        devs = local_devices(devices) if T > 1 else local_devices(1)
        n_res = int(np.prod(np.shape(y)[1:] if tabled[1] else np.shape(y)))
        K, B = slots_for(T * S, n_res, self.layout.size, len(devs))
        static = dict(
            law=self.law,
            objective=self.objective,
            layout=self.layout,
            block=B,
            max_steps=int(max_steps),
            # a likelihood that is almost L1 has its minimum at a kink: no model certifies it
            certify=self.objective.certify,
            accelerate=bool(accelerate) and not self.layout.extra,
            tabled=tuple(tabled),
        )
        data = (inputs, y, w, out_w, frozen_values, delta, jnp.asarray(np.float64(ftol)))
        if len(devs) == 1:
            fn = functools.partial(_jitted(jax.default_backend()), **static)
        else:
            fn = _sharded(tuple(devs), len(data), tuple(sorted(static.items())))
        n_extra = len(self.layout.extra)

        def step(sl, n_steps, refill_at):
            out = fn(sl, np.int32(n_steps), np.int32(refill_at // len(devs)), *data)
            return jax.device_get(out)

        def init(xs):
            xs = np.asarray(xs, np.float64).reshape(-1, np.shape(xs)[-1])
            xs = np.concatenate([xs, np.zeros((len(xs), n_extra))], axis=1)
            lo, hi = (np.asarray(b) for b in self.layout.box()[:2])
            return solvers.lm_init_batch(np.clip(xs, lo, hi))

        T = T if n_tables is None else int(n_tables)
        floor = self._floors(y, w, out_w, tabled, T)
        return multistart.run(
            step, init, x0s, T, policy, slots=K, block=B, draw=draw, floor=floor, progress=progress
        )

    def _floors(self, y, w, out_w, tabled, T) -> np.ndarray:
        """Each table's objective rounding floor, on the host."""
        y, w, out_w = np.asarray(y, np.float64), np.asarray(w, np.float64), np.asarray(out_w, np.float64)
        out = np.zeros(T)
        for t in range(T):
            yt = y[t] if tabled[1] else y
            wt = w[t] if tabled[2] else w
            yt = np.log(yt) if self.objective.space == "log" else yt
            W = (wt[:, None] * out_w[None, :]).ravel() if yt.ndim == 2 else wt
            out[t] = self.objective.floor(yt.ravel(), W)
        return out


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
    if n_obs <= n_free:
        raise ValueError(
            f"{len(d)} rows "
            + (f"x {d.n_outputs} outputs " if d.n_outputs > 1 else "")
            + f"cannot determine {n_free} free parameters {list(layout.labels)}: "
            "a fit needs more points than parameters (give more rows or freeze parameters)"
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
    if d.n_outputs > 1 and len(d) <= n_free:
        _check_points_per_output(law, layout, d, frozen_values)
    ow = _output_weights(output_weights, d.n_outputs, d.columns["target"])
    return Problem(law, obj, layout, d, frozen_values, init, float(delta), ow)


def _check_points_per_output(law: Law, layout: Layout, d: LawData, frozen_values) -> None:
    """Refuse a multi-output fit where some output has no more rows than the parameters it
    depends on (found from the law's Jacobian at a random point inside the constraints)."""
    box = layout.box()
    rng = np.random.default_rng(0)
    n_law = layout.law_size
    lo, hi = box.lo[:n_law], box.hi[:n_law]
    u, z = rng.uniform(0.1, 0.9, n_law), rng.normal(0.0, 1.0, n_law)
    with np.errstate(invalid="ignore"):
        x = np.select(
            [np.isfinite(lo) & np.isfinite(hi), np.isfinite(lo), np.isfinite(hi)],
            [lo + u * (hi - lo), lo + u, hi - u],
            z,
        )
    inputs = tuple(jnp.asarray(a) for a in d.inputs)

    def predict(xl):
        return law(law.params(*layout.unpack_law(xl, frozen_values)), *inputs).reshape(len(d), -1)

    J = np.asarray(jax.jacfwd(predict)(jnp.asarray(x)))  # (rows, outputs, law coordinates)
    per_output = (np.abs(J) > 0).any(axis=0).sum(axis=1) + len(layout.extra)
    k = int(np.argmax(per_output))
    if len(d) <= per_output[k]:
        names = d.columns["target"]
        name = names[k] if isinstance(names, list) else f"output {k}"
        raise ValueError(
            f"{len(d)} rows cannot determine the {int(per_output[k])} free parameters that output "
            f"{name!r} depends on: a fit needs more points than parameters for each output (give "
            "more rows or freeze parameters)"
        )
