"""The :class:`Law` record: a pure law function with the metadata that travels with it."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlaws import domains as _domains

__all__ = ["Law"]


@dataclasses.dataclass(frozen=True)
class Law:
    """A scaling law: ``prediction = fn(params, *inputs, **options)``.

    A ``Law`` is callable exactly like its function, so ``jax.jit``, ``jax.vmap`` and
    ``jax.grad`` apply to it directly. It is hashable, so it can be a static argument.

    Attributes:
        name: registry name (``jaxlaws.laws.get(name)``).
        fn: the pure law function ``fn(params, *inputs, **options) -> prediction``.
        params: the parameter ``NamedTuple`` type, fields named after the paper's symbols.
        inputs: names of the inputs, in call order; also the default data columns.
        target: default name of the predicted column (``"loss"``, ``"error"``); a law with
            several outputs (a prediction of shape ``(n, k)``) names its target columns when
            it is fitted.
        constraints: a ``params`` instance whose fields are :class:`Constraint` objects.
        domains: input name -> :class:`~jaxlaws.domains.Domain` (or its name) for inputs
            that are not ``positive``: ``"nonnegative"``, ``"real"``, ``"simplex"`` (a vector
            of proportions per row) or ``"index"``. Given as a mapping; stored as pairs.
        shapes: parameter name -> shape of a vector or matrix parameter, each dimension an
            int, the name of a vector input (its width: ``"r"`` for proportions of shape
            ``(n, k)``) or ``"outputs"`` (the number of target columns); e.g.
            ``{"c": ("outputs",), "t": ("outputs", "r")}``. Undeclared parameters are
            scalars. Given as a mapping; stored as pairs.
        log_fn: optional numerically stable ``log(prediction)`` (used by log-space fits).
        options: keyword options bound to ``fn`` (e.g. ``form="reference_code"``).
        start_grid: the paper's multi-start grid, one tuple of values per parameter,
            in the paper's parametrisation (the product of the tuples is the grid).
        reference: the paper (authors, title, year).
        pool_params: fields with one entry per pool (their length is the number of pools).
        configure: optional ``(law, inputs) -> law`` binding options that depend on the
            data before a fit (e.g. ``max_passes`` of the filtering laws).
        passes: ``(mixture, budget, sizes)``, three input names, for a law of a mixture of
            pools of repeated data: at a budget ``n`` (input ``budget``), pool ``i`` of
            ``N_i`` unique items (input ``sizes``, one per pool) sampled with weight ``w_i``
            (input ``mixture``) is passed ``w_i n / N_i`` times, and the law may be kinked
            at every whole pass (each kink in ``w_i`` moving only ``w_i``'s own partial
            derivative). :func:`~jaxlaws.propose_mixture` then solves piece by piece
            between kinks and checks the one-sided derivatives at the kinks.
    """

    name: str
    fn: Callable[..., Any]
    params: type
    inputs: tuple[str, ...]
    target: str
    constraints: Any
    log_fn: Callable[..., Any] | None = None
    options: tuple[tuple[str, Any], ...] = ()
    start_grid: tuple[tuple[float, ...], ...] | None = None
    reference: str = ""
    pool_params: tuple[str, ...] = ()
    configure: Callable[..., Any] | None = None
    domains: Any = ()
    shapes: Any = ()
    passes: tuple[str, str, str] | None = None

    def __post_init__(self):
        pairs = self.domains.items() if isinstance(self.domains, Mapping) else self.domains
        pairs = tuple((str(k), _domains.get(v)) for k, v in pairs)
        unknown = sorted(k for k, _ in pairs if k not in self.inputs)
        if unknown:
            raise ValueError(
                f"domains names {unknown}, which are not inputs of {self.name!r}: {list(self.inputs)}"
            )
        object.__setattr__(self, "domains", pairs)
        shapes = self.shapes.items() if isinstance(self.shapes, Mapping) else self.shapes
        shapes = tuple((str(k), tuple(d if isinstance(d, str) else int(d) for d in v)) for k, v in shapes)
        for k, dims in shapes:
            if k not in self.params._fields:
                raise ValueError(f"shapes names {k!r}, which is not a parameter of {self.name!r}")
            bad = [d for d in dims if isinstance(d, str) and d != "outputs" and d not in self.inputs]
            if bad:
                raise ValueError(
                    f"shape of {k!r} names {bad}: a dimension is an int, an input of "
                    f"{self.name!r} ({list(self.inputs)}) or 'outputs'"
                )
        object.__setattr__(self, "shapes", shapes)
        if self.passes is not None:
            passes = tuple(str(v) for v in self.passes)
            if len(passes) != 3 or any(v not in self.inputs for v in passes) or len(set(passes)) != 3:
                raise ValueError(
                    f"passes of {self.name!r} must name three of its inputs (mixture, budget, sizes), "
                    f"got {self.passes!r}; its inputs are {list(self.inputs)}"
                )
            if passes[0] not in self.simplex_inputs:
                raise ValueError(
                    f"passes of {self.name!r}: the mixture {passes[0]!r} must be a simplex input"
                )
            object.__setattr__(self, "passes", passes)
        if len(self.constraints) != len(self.params._fields):
            raise ValueError(
                f"law {self.name!r}: constraints has {len(self.constraints)} entries for "
                f"{len(self.params._fields)} parameters {list(self.params._fields)}"
            )
        from jaxlaws._constraints import Constraint

        for field, c in zip(self.params._fields, self.constraints):
            if not isinstance(c, Constraint):
                raise ValueError(
                    f"law {self.name!r}: the constraint of {field!r} is {c!r}, not a constraint "
                    "(use jaxlaws.constraints.positive, .real, .interval(lo, hi), ...)"
                )

    def domain(self, name: str) -> _domains.Domain:
        """The declared domain of input ``name`` (``positive`` unless declared)."""
        return dict(self.domains).get(name, _domains.positive)

    @property
    def simplex_inputs(self) -> tuple[str, ...]:
        """The inputs declared as a mixture's proportions (``simplex`` or ``open_simplex``)."""
        return tuple(n for n in self.inputs if self.domain(n).proportions)

    def __call__(self, params: NamedTuple, *inputs, **options):
        return self.fn(params, *inputs, **{**dict(self.options), **options})

    def log_predict(self, params: NamedTuple, *inputs, **options):
        """``log(law(params, *inputs))``, through ``log_fn`` when the law has one."""
        opts = {**dict(self.options), **options}
        if self.log_fn is not None:
            return self.log_fn(params, *inputs, **opts)
        return jnp.log(self.fn(params, *inputs, **opts))

    def with_options(self, **options) -> Law:
        """The same law with keyword options bound (e.g. ``form="reference_code"``)."""
        merged = {**dict(self.options), **options}
        return dataclasses.replace(self, options=tuple(sorted(merged.items())))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.params._fields)

    def to_unconstrained(self, params: NamedTuple) -> NamedTuple:
        """Map paper-parametrised ``params`` to unconstrained coordinates."""
        return self.params(*(c.inverse(jnp.asarray(p)) for c, p in zip(self.constraints, params)))

    def from_unconstrained(self, u: NamedTuple) -> NamedTuple:
        """Map unconstrained coordinates back to the paper's parametrisation."""
        return self.params(*(c.forward(x) for c, x in zip(self.constraints, u)))

    def make_params(self, values: Mapping[str, Any] | NamedTuple) -> NamedTuple:
        """Build a ``params`` tuple from a mapping, with an error naming any bad key."""
        if isinstance(values, self.params):
            return values
        values = dict(values._asdict() if hasattr(values, "_asdict") else values)
        unknown = sorted(set(values) - set(self.param_names))
        missing = [f for f in self.param_names if f not in values]
        if unknown or missing:
            raise ValueError(
                f"law {self.name!r} has parameters {list(self.param_names)}; "
                + (f"unknown {unknown}" if unknown else "")
                + ("; " if unknown and missing else "")
                + (f"missing {missing}" if missing else "")
            )
        out = {}
        for k in self.param_names:
            v = values[k]
            arr = np.asarray(v) if not isinstance(v, jax.Array) else v
            if isinstance(v, bool) or arr.dtype.kind not in "iuf":
                raise ValueError(f"parameter {k} of law {self.name!r} must be a number, got {v!r}")
            if not bool(np.all(np.isfinite(np.asarray(arr, np.float64)))):
                raise ValueError(
                    f"parameter {k} of law {self.name!r} is not finite: {np.asarray(v).tolist()!r}"
                )
            out[k] = jnp.asarray(arr, dtype=jnp.float64)
        return self.params(**out)

    def dims_of(self, params: NamedTuple) -> dict[str, int]:
        """The sizes that the declared :attr:`shapes` name (a vector input's width,
        ``"outputs"``), read from ``params``; a ``ValueError`` naming both parameters when
        two of them disagree, or naming one whose shape is not the declared one."""
        seen: dict[str, tuple[str, int]] = {}
        for name, dims in self.shapes:
            shape = tuple(np.shape(getattr(params, name)))
            if len(shape) != len(dims) or any(isinstance(d, int) and d != n for d, n in zip(dims, shape)):
                raise ValueError(
                    f"parameter {name!r} of {self.name!r} has shape {shape}; it is declared {dims}"
                )
            for d, n in zip(dims, shape):
                if isinstance(d, str):
                    first = seen.setdefault(d, (name, n))
                    if first[1] != n:
                        raise ValueError(
                            f"parameters {first[0]!r} and {name!r} of {self.name!r} disagree on "
                            f"{d!r}: {first[1]} against {n}"
                        )
        return {d: n for d, (_, n) in seen.items()}

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options)
        return f"Law({self.name!r}, params={list(self.param_names)}, inputs={list(self.inputs)}{opts})"


def logsumexp_terms(*terms):
    """``log(sum_i exp(t_i))`` of a few broadcastable terms, stably.

    Faster than ``jax.nn.logsumexp`` over a stacked axis (no stacking, no special cases):
    the shift ``m`` cancels exactly in the gradient, so ties in ``max`` are harmless.
    """
    terms = jnp.broadcast_arrays(*terms)
    m = terms[0]
    for t in terms[1:]:
        m = jnp.maximum(m, t)
    total = jnp.exp(terms[0] - m)
    for t in terms[1:]:
        total = total + jnp.exp(t - m)
    return m + jnp.log(total)


def suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
