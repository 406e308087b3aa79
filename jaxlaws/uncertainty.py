"""Bootstrap uncertainty: every resample fitted in one batched, JIT-compiled call.

A resample is a vector of per-point weights (how often each row was drawn), so every
resample has the same shapes and the whole bootstrap is one ``vmap`` of the fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws import solvers
from jaxlaws.fit import FitResult, _separable, fit, make_starts, setup
from jaxlaws.laws import Law, get
from jaxlaws.progress import in_chunks

__all__ = ["bootstrap", "BootstrapResult", "resample_weights"]


def resample_weights(key, n_points: int, n_resamples: int) -> jnp.ndarray:
    """Counts of each point in ``n_resamples`` resamples with replacement, ``(R, n)``."""
    idx = jax.random.randint(key, (n_resamples, n_points), 0, n_points)
    return jax.vmap(lambda i: jnp.bincount(i, length=n_points))(idx).astype(jnp.float64)


#: What each status of a resample left out of the statistics means, for the summary.
_WHY = {
    "max_steps": "still descending when max_steps ran out (pass a larger max_steps)",
    "stalled": "no step made progress, yet the point is not certified a minimum",
    "diverged": "a parameter ran off towards an open end of its constraint",
    "nonfinite": "the objective is not finite at its start",
    "screened_out": "not polished",
}


@dataclasses.dataclass(frozen=True, repr=False)
class BootstrapResult:
    """The outcome of :func:`bootstrap`.

    Attributes:
        law: the law.
        point: the fit to the full table (the point estimate).
        samples: one parameter set per resample (the law's NamedTuple, leading axis ``R``).
        extra: nuisance samples, e.g. ``{"sigma": (R,)}``.
        objective: objective value per resample.
        status: status name per resample; statistics use the converged ones only.
    """

    law: Law
    point: FitResult
    samples: NamedTuple
    extra: dict
    objective: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """Mask of the resamples whose fit converged."""
        return self.status == "converged"

    @property
    def n_failed(self) -> int:
        return int((~self.ok).sum())

    def _columns(self) -> dict[str, np.ndarray]:
        out = {}
        for name, v in self.samples._asdict().items():
            v = np.asarray(v)[self.ok]
            if v.ndim == 1:
                out[name] = v
            else:
                for j in range(v.shape[1]):
                    out[f"{name}[{j}]"] = v[:, j]
        for name, v in self.extra.items():
            out[name] = np.asarray(v)[self.ok]
        return out

    def frame(self) -> pd.DataFrame:
        """The converged resamples as a DataFrame, one column per parameter."""
        return pd.DataFrame(self._columns())

    def _enough(self) -> dict[str, np.ndarray]:
        """The converged resamples' columns; an error if fewer than two converged."""
        n_ok = int(self.ok.sum())
        if n_ok < 2:
            raise ValueError(
                f"only {n_ok} of {len(self.status)} resamples converged: too few for a standard "
                "error or an interval (statuses: "
                + ", ".join(f"{k} {v}" for k, v in zip(*np.unique(self.status, return_counts=True)))
                + ")"
            )
        return self._columns()

    @property
    def stderr(self) -> dict[str, float]:
        """Bootstrap standard error of each parameter (std over converged resamples).

        Raises:
            ValueError: fewer than two resamples converged.
        """
        return {k: float(np.std(v, ddof=1)) for k, v in self._enough().items()}

    def interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile interval of each parameter (over converged resamples).

        Raises:
            ValueError: fewer than two resamples converged, or ``level`` not in (0, 1).
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level!r}")
        q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
        return {k: tuple(float(x) for x in np.percentile(v, q)) for k, v in self._enough().items()}

    def table(self, level: float = 0.95) -> pd.DataFrame:
        """Estimate, standard error and percentile interval per parameter."""
        est = dict(self.point.params_dict)
        est.update(self.point.extra)
        flat = {}
        for k, v in est.items():
            if isinstance(v, list):
                flat.update({f"{k}[{j}]": x for j, x in enumerate(v)})
            else:
                flat[k] = v
        se, ci = self.stderr, self.interval(level)
        rows = [
            {
                "parameter": k,
                "estimate": flat.get(k, np.nan),
                "stderr": se[k],
                "lower": ci[k][0],
                "upper": ci[k][1],
            }
            for k in se
        ]
        return pd.DataFrame(rows).set_index("parameter")

    def derived(self, fn: Callable[[NamedTuple], Any], level: float = 0.95) -> Derived:
        """A quantity derived from the parameters, with its bootstrap distribution.

        ``fn(params)`` is a function of one parameter set returning a number or an array of
        numbers (e.g. the optimal-N exponent ``lambda p: p.beta / (p.alpha + p.beta)``).
        Written with ``jax.numpy`` it is vmapped over the resamples; a function JAX cannot
        trace (NumPy, ``math``, Python branches on the values) is called once per resample
        on NumPy values instead.

        Raises:
            TypeError: ``fn`` is not callable, or returns something other than numbers.
            ValueError: fewer than two resamples converged, ``level`` not in (0, 1), or the
                quantity is not finite at the point estimate or on some resample.
        """
        if not callable(fn):
            raise TypeError(f"derived: fn must be a function of one parameter set, got {type(fn).__name__}")
        self._enough()
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level!r}")
        with np.errstate(all="ignore"):  # NumPy in fn: a non-finite value is reported below
            point = _numbers(fn(self.point.params))
        ok = np.flatnonzero(self.ok)
        host = [np.asarray(v) for v in self.samples]
        keep = self.law.params(*(jnp.asarray(v[ok]) for v in host))
        try:
            values = np.asarray(jax.vmap(lambda p: jnp.asarray(fn(p), jnp.float64))(keep))
        except _UNTRACEABLE:  # NumPy or Python on the values: one call per resample
            with np.errstate(all="ignore"):
                values = np.stack([_numbers(fn(self.law.params(*(v[i] for v in host)))) for i in ok])
        if not (np.all(np.isfinite(point)) and np.all(np.isfinite(values))):
            raise ValueError(
                "the derived quantity is not finite at the point estimate or on "
                f"{int((~np.isfinite(values)).reshape(len(values), -1).any(axis=1).sum())} resamples"
            )
        return Derived(point=point, samples=values, level=level)

    def failures(self) -> str:
        """Why the resamples left out did not converge: each status, its count and meaning."""
        names, counts = np.unique(self.status[~self.ok], return_counts=True)
        return "; ".join(f"{n} {c}: {_WHY.get(str(n), str(n))}" for n, c in zip(names, counts))

    def summary(self, level: float = 0.95) -> str:
        head = f"bootstrap of {self.law.name}: {len(self.status)} resamples, {self.n_failed} did not converge"
        head += f" (excluded; {self.failures()})" if self.n_failed else ""
        if self.ok.sum() < 2:
            return head + ": too few converged for standard errors"
        return head + "\n" + self.table(level).to_string(float_format=lambda x: f"{x:.6g}")

    def __repr__(self) -> str:
        return f"BootstrapResult({self.summary()})"


#: What JAX raises when a function turns a traced value into a concrete one (NumPy, ``math``,
#: ``float()``, ``if`` on a value): :meth:`BootstrapResult.derived` then calls it per resample.
_UNTRACEABLE = (
    jax.errors.TracerArrayConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.NonConcreteBooleanIndexError,
)


def _numbers(out) -> np.ndarray:
    """``out`` as a float64 array, or a one-line ``TypeError`` naming what it is instead."""
    try:
        arr = np.asarray(out)
    except (TypeError, ValueError):  # ragged lists, objects NumPy cannot convert
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        what = type(out).__name__
        if isinstance(out, np.ndarray):
            what += f" of dtype {out.dtype}"
        raise TypeError(f"derived: fn must return a number or an array of numbers, got {what}")
    return arr.astype(np.float64)


@dataclasses.dataclass(frozen=True)
class Derived:
    """A derived quantity: its value at the point estimate and over the resamples."""

    point: np.ndarray
    samples: np.ndarray
    level: float = 0.95

    @property
    def stderr(self):
        return np.std(self.samples, axis=0, ddof=1)

    @property
    def interval(self):
        q = [(1 - self.level) / 2 * 100, (1 + self.level) / 2 * 100]
        lo, hi = np.percentile(self.samples, q, axis=0)
        return lo, hi

    def __repr__(self) -> str:
        lo, hi = self.interval
        return f"Derived(point={self.point}, stderr={self.stderr}, {self.level:.0%} interval=({lo}, {hi}))"


def _as_key(key):
    """A ``jax.random`` key from a key or a whole-number seed."""
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"the bootstrap seed must be >= 0, got {key}")
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or key.shape == (2,)):
        return key
    raise ValueError(f"key must be a jax.random key (jax.random.key(0)) or a whole-number seed, got {key!r}")


def bootstrap(
    key,
    law: str | Law,
    data: pd.DataFrame | Mapping[str, Any],
    n_resamples: int = 1000,
    *,
    starts="point",
    point: FitResult | None = None,
    columns: Mapping[str, str] | None = None,
    target: str | None = None,
    objective: str = "huber",
    delta: float = 1e-3,
    init=None,
    frozen: Sequence[str] | Mapping[str, Any] | None = None,
    output_weights: Sequence[float] | None = None,
    seed: int = 0,
    polish: int | str | None = "adaptive",
    screen_steps: int | None = None,
    max_steps: int = 500,
    ftol: float = 1e-13,
    devices: int | None = None,
    progress: bool = False,
    **fit_kwargs,
) -> BootstrapResult:
    """Bootstrap a fit: resample the rows with replacement and refit, all in one batch.

    Args:
        key: a ``jax.random`` key, or a whole-number seed (the resamples are a function of
            it).
        law, data, columns, target, objective, delta, init, frozen, output_weights: as
            for :func:`jaxlaws.fit`.
        n_resamples: number of resamples ``R`` (at least 2).
        starts: the starts of every resample: ``"point"`` (default: the full-data
            optimum), ``"init"`` (Epoch's protocol: every resample from ``init``), or any
            ``starts`` of :func:`jaxlaws.fit` (all of them for every resample).
        point: a full-data fit to reuse (otherwise it is fitted with ``fit_kwargs``).
        polish, screen_steps, max_steps, ftol: as for :func:`jaxlaws.fit`, per resample.
        devices: shard the resamples across this many local devices (default: all).
        progress: solve the resamples in ten chunks under a progress bar (shown where
            stderr is a terminal), as the command line does.
        **fit_kwargs: passed to the full-data fit (e.g. its ``starts``).

    Returns:
        A :class:`BootstrapResult` with standard errors, percentile intervals, the samples
        and :meth:`BootstrapResult.derived` for derived quantities.

    Raises:
        ValueError: ``n_resamples`` below 2, or bad input (as for :func:`jaxlaws.fit`).

    Example:
        >>> import jax, jaxlaws
        >>> df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
        >>> bs = jaxlaws.bootstrap(jax.random.key(0), "chinchilla", df, 200)
        >>> 0.005 < bs.stderr["alpha"] < 0.05
        True

    References:
        Besiroglu et al., "Chinchilla Scaling: A replication attempt", 2024 (protocol).
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 2:
        raise ValueError(f"n_resamples must be a whole number of at least 2, got {n_resamples!r}")
    key = _as_key(key)
    if point is not None and point.law.name != get(law).name:
        raise ValueError(f"point is a fit of {point.law.name!r}, not of {get(law).name!r}")
    common = dict(
        columns=columns,
        target=target,
        objective=objective,
        delta=delta,
        init=init,
        frozen=frozen,
        output_weights=output_weights,
    )
    if point is None:
        point = fit(
            law,
            data,
            devices=devices,
            **common,
            polish=polish,
            screen_steps=screen_steps,
            max_steps=max_steps,
            ftol=ftol,
            **fit_kwargs,
        )
    prob = setup(law, data, **common)
    R = int(n_resamples)
    weights = np.asarray(resample_weights(key, len(prob.data), R))
    solve = dict(ftol=ftol, screen_steps=screen_steps, polish=polish, max_steps=max_steps, devices=devices)
    if _separable(prob) and not (isinstance(starts, str) and starts == "init"):
        xb, fb, codes = in_chunks(
            _separable_solver(prob, data, point, weights, starts, seed, columns, solve),
            R,
            progress,
            "bootstrap",
            "resample",
        )
    else:
        if isinstance(starts, str) and starts == "point":
            x0s = point.x[None, : prob.layout.law_size]
        else:
            x0s = make_starts(prob.law, prob.layout, starts, seed=seed, init=prob.init)

        def one_chunk(rows):
            sol = prob.solve(x0s, weights=weights[rows], **solve)
            return _best(sol)

        xb, fb, codes = in_chunks(one_chunk, R, progress, "bootstrap", "resample")
    fvals = tuple(jnp.asarray(v) for v in prob.frozen_values)
    fields, extra = jax.vmap(lambda x: prob.layout.unpack(x, fvals))(jnp.asarray(xb))
    samples = prob.law.params(*(np.asarray(v) for v in fields))
    extra_out = {}
    for name, v in zip(prob.layout.extra, extra):
        extra_out["sigma" if name == "log_sigma" else name] = (
            np.exp(np.asarray(v)) if name == "log_sigma" else np.asarray(v)
        )
    status = np.array(solvers.STATUS_NAMES)[codes]
    return BootstrapResult(
        law=prob.law, point=point, samples=samples, extra=extra_out, objective=fb, status=status
    )


def _best(sol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each table's best start: ``(x, f, status code)``."""
    f = np.asarray(sol.f)
    best = np.argmin(np.where(np.isfinite(f), f, np.inf), axis=1)
    rows = np.arange(len(best))
    return np.asarray(sol.x)[rows, best], f[rows, best], np.asarray(sol.status)[rows, best]


def _separable_solver(prob, data, point, weights, starts, seed, columns, solve) -> Callable:
    """For a law fitted output by output (see :func:`jaxlaws.fit`): ``rows -> (x, f, status
    code)`` of those resamples, one table per output and resample, each output started
    from its own part of the point fit (or from ``starts``), the outputs joined."""
    tcols = list(prob.data.columns["target"])
    m, n = len(tcols), len(prob.data)
    sub = setup(
        prob.law, data, columns=columns, target=[tcols[0]], objective=prob.objective.name, delta=prob.delta
    )
    index = sub.layout.output_index(m)
    if isinstance(starts, str) and starts == "point":  # (outputs, starts, per-output coordinates)
        first = np.asarray(point.x)[index][:, None, :]
    else:
        given = np.asarray(make_starts(sub.law, sub.layout, starts, seed=seed, init=None))
        first = np.broadcast_to(given, (m,) + given.shape)
    y = np.asarray(prob.data.y, np.float64).T[:, None, :, None]  # (outputs, 1, rows, 1)
    ow = np.asarray(prob.output_weights, np.float64)

    def run(rows):
        r = len(rows)
        x0s = np.repeat(first, r, axis=0)  # table k * r + i: output k of resample i
        sol = sub.solve(
            x0s,
            tables={
                "y": np.broadcast_to(y, (m, r, n, 1)).reshape(m * r, n, 1),
                "w": np.tile(weights[rows], (m, 1)),
            },
            **solve,
        )
        xb, fb, codes = (a.reshape((m, r) + a.shape[1:]) for a in _best(sol))  # table k * r + i
        x = np.empty((r, index.size))
        x[:, index] = xb.transpose(1, 0, 2)  # each resample's outputs joined
        worst = np.where((codes != solvers.CONVERGED).any(axis=0), codes.max(axis=0), solvers.CONVERGED)
        return x, (ow[:, None] * fb).sum(axis=0), worst

    return run
