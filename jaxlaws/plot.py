"""Plots, thin over the API: matplotlib ``Figure`` objects built without pyplot (headless).

``import jaxlaws`` does not import matplotlib; this module does, when called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = [
    "plot_fit",
    "plot_isoflop",
    "plot_bootstrap",
    "plot_pools",
    "plot_pareto",
    "plot_mixture",
    "plot_proposals",
    "plot_design",
]


def _figure(ncols=1, nrows=1, size=(6.0, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


#: Tick values in this range are written out in full (``2``, ``0.05``, ``300``).
_PLAIN = (1e-3, 1e5)


def _compact(x: float, plain: bool | None = None) -> str:
    """A number in a few characters: ``2``, ``2.5``, ``0.05`` in full, ``3e9`` beyond
    ``_PLAIN`` (or as ``plain`` says)."""
    x = float(x)
    if x == 0:
        return "0"
    if plain is None:
        plain = _PLAIN[0] <= abs(x) < _PLAIN[1]
    if plain:
        return f"{x:.6g}"
    m, e = f"{x:.2e}".split("e")
    return f"{m.rstrip('0').rstrip('.')}e{int(e)}"


def _size(x: float) -> str:
    """A count of parameters or tokens: ``57M``, ``1.1B``, ``1.4T`` (``_compact`` below 1000)."""
    x = float(x)
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return _compact(x)


def _log_mode(axis):
    """``(decades shown, plain)`` for a log axis's view: ``plain`` when every value in view
    is written in full; ``None`` when the view is not a positive interval."""
    lo, hi = sorted(axis.get_view_interval())
    if not (lo > 0 and np.isfinite(hi) and hi > lo):
        return None
    return np.log10(hi / lo), bool(lo >= _PLAIN[0] and hi < _PLAIN[1])


def _decade_values(lo, hi, mantissas):
    """``m 10^k`` for each mantissa and every decade from below ``lo`` to above ``hi``."""
    k0, k1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    return [m * 10.0**k for k in range(k0, k1 + 1) for m in mantissas]


_TICK_CLASSES = []


def _tick_classes():
    """The locator and formatter of :func:`_log_ticks` (built on first use: ``import
    jaxlaws.plot`` does not import matplotlib)."""
    if _TICK_CLASSES:
        return _TICK_CLASSES
    from matplotlib import ticker

    class LogTicks(ticker.LogLocator):
        """Ticks by the decades in view: nice linear steps within half a decade; 1-8 per
        decade within one; decades (majors) and 2-9 (minors) within 2.5; decades beyond, at
        most about 8 of them."""

        def __init__(self, minor: bool = False):
            super().__init__(base=10.0)
            self.minor = minor

        def __call__(self):
            lo, hi = self.axis.get_view_interval()
            return self.tick_values(lo, hi)

        def tick_values(self, vmin, vmax):
            lo, hi = sorted((float(vmin), float(vmax)))
            if not (lo > 0 and np.isfinite(hi) and hi > lo):
                return np.array([])
            d = np.log10(hi / lo)
            if d < 0.5:
                t = [] if self.minor else ticker.MaxNLocator(6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            elif d <= 1.0:
                t = [] if self.minor else _decade_values(lo, hi, (1, 2, 3, 4, 5, 6, 8))
            elif d <= 2.5:
                t = _decade_values(lo, hi, range(2, 10) if self.minor else (1,))
            else:
                k0, k1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
                stride = max(1, -(-(k1 - k0) // 8))
                if self.minor:
                    t = _decade_values(lo, hi, range(2, 10)) if d <= 6 and stride == 1 else []
                    t += [10.0**k for k in range(k0, k1 + 1) if k % stride]
                else:
                    t = [10.0**k for k in range(k0, k1 + 1) if k % stride == 0]
            t = np.asarray(t, np.float64)
            return t[(t > 0) & (t >= lo * (1 - 1e-9)) & (t <= hi * (1 + 1e-9))]

    class LogLabels(ticker.Formatter):
        """Labels for :class:`LogTicks`: values in full where the whole view is in
        ``_PLAIN`` (else ``3e9`` within a decade, ``10^k`` at decades and the bare mantissa
        ``2``, ``5`` at labelled minor ticks); never ``4 x 10^0``."""

        def __init__(self, minor: bool = False):
            self.minor = minor

        def __call__(self, x, pos=None):
            mode = _log_mode(self.axis)
            if mode is None or not x > 0:
                return ""
            d, plain = mode
            k = int(np.floor(np.log10(x) + 1e-9))
            if d <= 1.0:
                return "" if self.minor else _compact(x, plain)
            if self.minor:
                m = round(x / 10.0**k, 6)
                shown = (2, 3, 5) if d <= 1.6 else (2, 5) if d <= 2.5 else ()
                if m not in shown:
                    return ""
                return _compact(x, True) if plain else f"{m:g}"
            return _compact(x, True) if plain else f"$10^{{{k}}}$"

    _TICK_CLASSES[:] = [LogTicks, LogLabels]
    return _TICK_CLASSES


def _log_ticks(axis):
    """Readable ticks on one log ``axis`` (``ax.xaxis``, ``ax.yaxis``, a colourbar's): the
    locator and labels choose at draw time from the decades in view (see
    :func:`_tick_classes`)."""
    ticks, labels = _tick_classes()
    axis.set_major_locator(ticks())
    axis.set_minor_locator(ticks(minor=True))
    axis.set_major_formatter(labels())
    axis.set_minor_formatter(labels(minor=True))
    axis.set_tick_params(which="minor", labelsize="small")


def _log(ax, which: str = "xy"):
    """Log scale with readable ticks (:func:`_log_ticks`) on the axes named in ``which``."""
    for a in which:
        (ax.set_xscale if a == "x" else ax.set_yscale)("log")
        _log_ticks(ax.xaxis if a == "x" else ax.yaxis)


def _palette(n: int) -> list:
    """``n`` distinct colours: tab10, tab20 (its dark colours first) up to 20, a colour map
    sampled evenly beyond."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        order = [*range(0, 20, 2), *range(1, 20, 2)]
        return [colormaps["tab20"](i) for i in order[:n]]
    # evenly sampled, dealt out with a stride so that neighbours in the order (the largest
    # weights, say) get far-apart colours
    stride = next(s for s in range(round(0.38 * n), n) if math.gcd(s, n) == 1)
    colors = colormaps["turbo"](np.linspace(0.03, 0.97, n))
    return [tuple(colors[i * stride % n]) for i in range(n)]


def _sequential():
    """Viridis without its palest yellows (lines stay visible on white)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    return ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.85, 256)), name="viridis_dark")


def _legend_outside(ax, handles=None, labels=None, *, where: str = "upper", **kw):
    """A legend to the right of ``ax``, outside it (the constrained layout makes room)."""
    y, loc = (1.0, "upper left") if where == "upper" else (0.0, "lower left")
    args = () if handles is None else (handles, labels)
    return ax.legend(*args, loc=loc, bbox_to_anchor=(1.02, y), borderaxespad=0.0, **kw)


def _law_and_params(law, params, where: str):
    """The :class:`~jaxlaws.laws.Law` (from a name or a Law) and its parameters, checked: every
    field a finite number inside its declared constraint. One-line errors naming the field."""
    from jaxlaws.laws import Law, get

    if not isinstance(law, str | Law):
        raise TypeError(f"{where}: law must be a law's name or a jaxlaws Law, got {type(law).__name__}")
    law = get(law)
    if not isinstance(params, law.params | Mapping) and not hasattr(params, "_asdict"):
        hint = " (pass its .params)" if hasattr(params, "params") and hasattr(params, "law") else ""
        raise TypeError(
            f"{where}: params must be the parameters of law {law.name!r} (a {law.params.__name__} or "
            f"a mapping of {list(law.param_names)} to numbers), got {type(params).__name__}{hint}"
        )
    params = law.make_params(params)
    for name, c, v in zip(law.param_names, law.constraints, params):
        value = np.asarray(v, np.float64)
        shown = value.tolist()
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: parameter {name} of law {law.name!r} is not finite: {shown!r}")
        if not c.contains(value):
            raise ValueError(
                f"{where}: parameter {name} of law {law.name!r} is {shown!r}, outside its constraint {c!r}"
            )
    return law, params


def _short(v) -> str:
    """A parameter's value in 4 significant digits (a list for a vector)."""
    v = np.asarray(v, np.float64)
    return f"{float(v):.4g}" if v.ndim == 0 else "[" + ", ".join(f"{x:.4g}" for x in v.ravel()) + "]"


def _check_predictions(law, params, pred, d, where: str, positive: bool):
    """One line naming the first row where the law predicts a non-finite (or, for a log axis,
    a non-positive) value, the inputs there and the parameters."""
    rows = np.asarray(pred, np.float64).reshape(len(d), -1)
    bad = ~np.isfinite(rows) | (rows <= 0 if positive else False)
    if not bad.any():
        return
    i, j = (int(v) for v in np.argwhere(bad)[0])
    at = ", ".join(
        f"{n}={np.asarray(v)[i]:.4g}" for n, v in zip(law.inputs, d.inputs) if np.asarray(v).ndim == 1
    )
    ps = ", ".join(f"{k}={_short(v)}" for k, v in params._asdict().items())
    need = "finite positive predictions for its log axis" if positive else "finite predictions"
    raise ValueError(
        f"{where}: law {law.name!r} with {ps} predicts {float(rows[i, j])!r} at row {d.index[i]!r}"
        f"{f' ({at})' if at else ''}; {where} needs {need}"
    )


def _clusters(v, rtol: float = 1e-3) -> np.ndarray:
    """Codes ``0, 1, ...`` (in increasing order of value) grouping values that agree to
    ``rtol``: model sizes read off a plot differ in their seventh digit."""
    v = np.asarray(v)
    if v.ndim > 1:  # a vector per row (proportions): equal rows
        return np.unique(np.round(v.reshape(len(v), -1), 9), axis=0, return_inverse=True)[1].ravel()
    if v.dtype.kind not in "f":
        return np.unique(v, return_inverse=True)[1].ravel()
    order = np.argsort(v, kind="stable")
    s = v[order]
    gap = np.abs(np.diff(s)) > rtol * np.maximum(np.abs(s[1:]), np.abs(s[:-1]))
    codes = np.empty(len(v), np.int64)
    codes[order] = np.concatenate([[0], np.cumsum(gap)])
    return codes


def _inputs_text(values, names) -> str:
    """``N=70B, D=1.4T``: inputs and their values (from 1000 up in ``_size``'s units)."""
    return ", ".join(f"{n}={_size(values[n])}" for n in names)


def _group_value(v):
    """One value standing for a group's rows of an input: the median (a number), the most
    common value (an index), the mean row (a vector)."""
    v = np.asarray(v)
    if v.ndim > 1:
        return v.mean(axis=0)
    if v.dtype.kind in "iu":
        values, counts = np.unique(v, return_counts=True)
        return values[np.argmax(counts)]
    return np.median(v)


def _samples(law, samples, where: str):
    """Parameter samples with a leading axis, checked: a ``BootstrapResult`` of ``law`` (its
    converged resamples) or the law's parameters stacked, at least two, all finite."""
    from jaxlaws.uncertainty import BootstrapResult

    if isinstance(samples, BootstrapResult):
        if samples.law.name != law.name or samples.law.param_names != law.param_names:
            raise ValueError(
                f"{where}: samples are a bootstrap of law {samples.law.name!r}, not {law.name!r}"
            )
        ok = np.asarray(samples.ok)
        samples = type(samples.samples)(*(np.asarray(v)[ok] for v in samples.samples))
    elif not (hasattr(samples, "_asdict") or isinstance(samples, Mapping)):
        raise TypeError(
            f"{where}: samples must be a BootstrapResult or the parameters of law {law.name!r} "
            f"stacked on a leading axis, got {type(samples).__name__}"
        )
    values = dict(samples._asdict() if hasattr(samples, "_asdict") else samples)
    if sorted(values) != sorted(law.param_names):
        raise ValueError(
            f"{where}: samples have fields {sorted(values)}; law {law.name!r} has {list(law.param_names)}"
        )
    arrays = {}
    for name, c in zip(law.param_names, law.constraints):
        v = np.asarray(values[name])
        if v.dtype.kind not in "iuf" or v.ndim < 1:
            raise ValueError(
                f"{where}: samples.{name} must be numbers with a leading axis (one per sample), "
                f"got {v.dtype} of shape {v.shape}"
            )
        v = v.astype(np.float64)
        bad = ~np.isfinite(v.reshape(len(v), -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{where}: samples.{name} is not finite in sample {int(np.argmax(bad))}; pass the converged "
                "resamples (or the BootstrapResult, which keeps only those)"
            )
        if not c.contains(v):
            raise ValueError(f"{where}: samples.{name} has values outside its constraint {c!r}")
        arrays[name] = v
    n = {len(v) for v in arrays.values()}
    if len(n) != 1:
        raise ValueError(f"{where}: the fields of samples have different lengths {sorted(n)}")
    if n.pop() < 2:
        raise ValueError(f"{where}: samples need at least 2 parameter sets for a band")
    return law.params(**arrays)


def _predict_samples(law, samples, inputs) -> np.ndarray:
    """``(S, n)``: the law's prediction at ``inputs`` for each parameter sample."""
    import jax
    import jax.numpy as jnp

    stacked = law.params(*(jnp.asarray(v) for v in samples))
    args = [jnp.asarray(v) for v in inputs]
    return np.asarray(jax.vmap(lambda p: law(p, *args))(stacked), np.float64).reshape(len(samples[0]), -1)


def _extrapolation_inputs(law, target, where: str):
    """The law's inputs at one point, from a mapping naming each of them."""
    unknown = sorted(set(map(str, target)) - set(law.inputs))
    missing = [n for n in law.inputs if n not in target]
    if unknown or missing:
        raise ValueError(
            f"{where}: extrapolate_to must give every input of law {law.name!r} {list(law.inputs)}"
            + (f"; unknown {unknown}" if unknown else "")
            + (f"; missing {missing}" if missing else "")
        )
    out = []
    for n in law.inputs:
        v = target[n]
        a = np.asarray(v)
        vector = law.domain(n).vector
        if isinstance(v, bool) or a.dtype.kind not in "iuf" or a.ndim != vector or not np.all(np.isfinite(a)):
            what = "a vector of finite numbers" if vector else "a finite number"
            raise ValueError(f"{where}: extrapolate_to[{n!r}] must be {what}, got {v!r}")
        if law.domain(n).name == "positive" and not np.all(a > 0):
            raise ValueError(f"{where}: extrapolate_to[{n!r}] must be positive, got {v!r}")
        out.append(
            a.astype(np.int64 if a.dtype.kind in "iu" and law.domain(n).name == "index" else np.float64)
        )
    return out


def plot_fit(
    law,
    params,
    data,
    *,
    x: str | None = None,
    columns=None,
    target: str | None = None,
    by: str | None = None,
    extrapolate_to=None,
    samples=None,
    level: float = 0.9,
    frontier: bool = True,
):
    r"""The fitted law against the data (log-log): its curve for each model size or group,
    optionally extrapolated with a bootstrap band; log residuals below.

    For a law with inputs ``N`` and ``D`` the horizontal axis is compute ``C = 6 N D`` and
    each model size ``N`` in the data (sizes within 0.1% are one) gets its curve
    ``L(N, C / 6N)``, coloured by ``log N`` (viridis, with a compact legend of sizes); other
    inputs (``U``) also split the curves and are held at their values. For other laws the
    curve runs along ``x`` (default: the first input) with the other inputs held at each
    group's values. ``by`` names a column whose values make the groups instead (its other
    inputs held at the group's median). Each curve spans its group's runs, a factor 1.4
    either side. For the Chinchilla family (parameters ``E, A, B, alpha, beta``, inputs
    ``N, D`` and ``U``) the compute-optimal frontier is drawn too: ``N*(C), D*(C)`` from
    :func:`~jaxlaws.laws.chinchilla_optimal` with unlimited unique data (``U = D``).

    Args:
        law: the :class:`~jaxlaws.laws.Law` or its name.
        params: its parameters (its ``NamedTuple``, or a mapping of name to value), each
            inside its declared constraint.
        data: the table fitted (a positive target: the axes are logarithmic).
        x: the column on the horizontal axis (default: compute ``6 N D`` when the law has
            ``N`` and ``D``, else its first input). A column that is not one of the law's
            inputs gets no curves: the predictions at the runs are marked instead.
        columns, target: the column mapping used in the fit.
        by: a column whose values group the runs into curves (default: the held inputs'
            values).
        extrapolate_to: a point to draw the curve out to, its predicted loss marked and
            annotated: compute ``C`` (FLOPs) for the Chinchilla family, the point on the
            compute-optimal frontier; a value of ``x`` for a law without ``N`` and ``D``
            (each group's curve is drawn out to it); or a mapping of every input of the law
            (``{"N": 70e9, "D": 1.4e12}``), drawn as its own curve along ``x``.
        samples: a :class:`~jaxlaws.BootstrapResult` (its converged resamples are used) or
            the law's parameters stacked on a leading axis: each curve gets a band between
            the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles (``numpy.percentile``)
            of the samples' predictions at its points, and the extrapolated point that
            interval.
        level: the band's coverage.
        frontier: draw the compute-optimal frontier (the Chinchilla family, ``x`` compute;
            always, when ``extrapolate_to`` is a compute).

    Returns:
        A ``matplotlib.figure.Figure`` with two axes: data, curves (``Line2D`` with gid
        ``"fit-curve"``, one per group, labelled), the frontier (gid ``"frontier"``), the
        extrapolation (gid ``"extrapolation"``; its point gid ``"extrapolated"``) and bands
        (gid ``"band"``); log residuals ``log(pred / obs)`` against the same x.

    Raises:
        TypeError: ``law``, ``params`` or ``samples`` of the wrong kind.
        ValueError: parameters of another law, missing, not finite or outside their
            constraints; bad data (as for :func:`jaxlaws.fit`); predictions at the data that
            are not finite and positive (a log axis cannot show them); a law predicting
            several metrics (see :func:`plot_mixture`); an ``x`` or ``by`` that is not a
            column; ``extrapolate_to`` not a positive number or a mapping of the law's
            inputs, or a number where the law has no frontier; samples of another law, not
            finite or fewer than two; ``level`` not in (0, 1).
    """
    from matplotlib.lines import Line2D

    from jaxlaws import domains
    from jaxlaws.data import _as_float, _column_error, prepare

    law, params = _law_and_params(law, params, "plot_fit")
    d = prepare(law, data, columns=columns, target=target)
    available = list(data.columns if hasattr(data, "columns") else data)
    named = dict(zip(law.inputs, d.inputs))
    along = None  # the input the curves run along
    if x is None and "N" in named and "D" in named:
        xs, xlabel, along, compute = 6.0 * named["N"] * named["D"], "compute 6ND (FLOPs)", "D", True
    else:
        compute = False
        col = x or law.inputs[0]
        if col in data:  # a column on a log axis: finite and positive
            xs = _as_float(np.asarray(data[col]), col, d.index)
            domains.positive.validate(xs, [col], d.index)
        elif col in named:
            xs = named[col]
        else:
            raise _column_error(col, "x of plot_fit", available)
        xlabel = col
        along = next((n for n in law.inputs if col in (n, d.columns.get(n))), None)
        if along is not None and np.ndim(named[along]) != 1:
            raise ValueError(
                f"plot_fit: x {col!r} is the vector input {along!r} of law {law.name!r}; draw it with "
                "plot_mixture"
            )
    pred = np.asarray(law(params, *d.inputs))
    _check_predictions(law, params, pred, d, "plot_fit", positive=True)
    if np.ndim(d.y) != 1:
        raise ValueError(
            f"plot_fit draws a law with one output; {law.name!r} predicts {np.shape(d.y)[1]} metrics here "
            "(draw them with plot_mixture)"
        )
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"plot_fit: level must be between 0 and 1, got {level!r}")
    if samples is not None:
        samples = _samples(law, samples, "plot_fit")
    xs = np.asarray(xs, np.float64)
    y = np.asarray(d.y, np.float64)
    pred = pred.reshape(-1)
    held = [n for n in law.inputs if n != along]
    if along is None:  # no curves: colour the runs by model size, if the law has one
        held = ["N"] if "N" in named else []
    chinchilla = {"E", "A", "B", "alpha", "beta"} <= set(law.param_names)
    chinchilla = chinchilla and set(law.inputs) <= {"N", "D", "U"}  # it has a compute-optimal frontier

    # the groups: a by column, else the held inputs' values
    if by is not None:
        if by not in available:
            raise _column_error(by, "by of plot_fit", available)
        import pandas as pd

        values = np.asarray(data[by])
        try:
            codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=False)
        except TypeError:
            codes, uniques = pd.factorize(values.astype(str), sort=True, use_na_sentinel=False)
        names = [str(u) for u in uniques]
    elif held:
        per_input = np.stack([_clusters(named[n]) for n in held], axis=1)
        _, codes = np.unique(per_input, axis=0, return_inverse=True)
        codes = codes.ravel()
        names = None
    else:
        codes, names = np.zeros(len(d), np.int64), None
    G = int(codes.max()) + 1
    group_inputs = [{n: _group_value(named[n][codes == g]) for n in held} for g in range(G)]
    if names is None:
        show = [n for n in held if np.ndim(named[n]) == 1]
        names = [_inputs_text(v, show) or law.name for v in group_inputs]

    # colours: by log N (or the one held number) for groups of sizes, distinct otherwise
    key = "N" if "N" in held else held[0] if len(held) == 1 and np.ndim(named[held[0]]) == 1 else None
    if by is None and key is not None and G > 1:
        from matplotlib.colors import LogNorm, Normalize

        kv = np.array([float(v[key]) for v in group_inputs])
        norm = (LogNorm if law.domain(key).name == "positive" else Normalize)(kv.min(), kv.max())
        cmap = _sequential()
        colors = [cmap(norm(v)) for v in kv]
        order = np.argsort(kv, kind="stable")
    else:
        colors = _palette(G) if G > 1 else ["C0"]
        order = np.arange(G)

    # the curves: inputs on a grid of x for each group, the frontier, the extrapolation
    curves = []  # dicts: x, inputs, style

    def inputs_along(grid_x, fixed):
        """The law's inputs along ``grid_x`` (compute or the ``along`` input), others fixed."""
        m = len(grid_x)
        out = []
        for n in law.inputs:
            if n == along:
                out.append(grid_x / (6.0 * float(fixed["N"])) if compute else grid_x)
            else:
                v = np.asarray(fixed[n])
                out.append(np.broadcast_to(v, (m, *v.shape)).copy())
        return out

    if along is not None:
        for g in range(G):
            gx = xs[codes == g]
            lo, hi = gx.min() / 1.4, gx.max() * 1.4
            if hi / lo < 3.0:  # at least half a decade
                c = np.sqrt(lo * hi)
                lo, hi = c / np.sqrt(3.0), c * np.sqrt(3.0)
            grid = np.geomspace(lo, hi, 60)
            curves.append(
                dict(
                    x=grid,
                    inputs=inputs_along(grid, group_inputs[g]),
                    color=colors[g],
                    gid="fit-curve",
                    label=names[g],
                    lw=1.2,
                    ls="-",
                    z=2,
                )
            )
    points = []  # extrapolated points: dicts x, inputs, label

    def frontier_inputs(C):
        from jaxlaws.laws import ChinchillaParams, chinchilla_optimal

        p = ChinchillaParams(*(getattr(params, f) for f in ChinchillaParams._fields))
        N, D = (np.asarray(v, np.float64) for v in chinchilla_optimal(p, np.asarray(C, np.float64)))
        return [{"N": N, "D": D, "U": D}[n] for n in law.inputs]

    x_end = xs.max()
    if extrapolate_to is not None:
        if along is None:
            raise ValueError(
                f"plot_fit: extrapolate_to needs x to be compute or an input of law {law.name!r}; "
                f"{xlabel!r} is neither"
            )
        if isinstance(extrapolate_to, Mapping):
            at = _extrapolation_inputs(law, extrapolate_to, "plot_fit")
            fixed = dict(zip(law.inputs, at))
            px = 6.0 * float(fixed["N"]) * float(fixed["D"]) if compute else float(fixed[along])
            grid = np.geomspace(min(xs.min(), px), max(xs.max(), px), 80)
            scalars = [n for n in law.inputs if np.ndim(fixed[n]) == 0]
            curves.append(
                dict(
                    x=grid,
                    inputs=inputs_along(grid, fixed),
                    color="C3",
                    gid="extrapolation",
                    label=f"extrapolation ({_inputs_text(fixed, [n for n in scalars if n != along])})",
                    lw=1.6,
                    ls="--",
                    z=3,
                )
            )
            text = _inputs_text(fixed, scalars) + (f" (C={_compact(px)})" if compute else "")
            points.append(dict(x=px, inputs=[np.asarray(v)[None] for v in at], label=text))
            x_end = max(x_end, px)
        else:
            v = np.asarray(extrapolate_to)
            if (
                isinstance(extrapolate_to, bool)
                or v.dtype.kind not in "iuf"
                or v.ndim
                or not (np.isfinite(v) and v > 0)
            ):
                raise ValueError(
                    "plot_fit: extrapolate_to must be a positive number (compute, or a value of x) or a "
                    f"mapping of the law's inputs, got {extrapolate_to!r}"
                )
            px = float(v)
            x_end = max(x_end, px)
            if compute:
                if not chinchilla:
                    raise ValueError(
                        f"plot_fit: extrapolate_to a compute needs the compute-optimal frontier, which law "
                        f"{law.name!r} has not; give a mapping of its inputs {list(law.inputs)}"
                    )
                at = frontier_inputs(np.array([px]))
                fixed = dict(zip(law.inputs, at))
                points.append(
                    dict(
                        x=px,
                        inputs=at,
                        label=f"C={_compact(px)} (N={_size(fixed['N'][0])}, D={_size(fixed['D'][0])})",
                    )
                )
                frontier = True
            else:
                for g in range(G):
                    c = curves[g]
                    if px > c["x"][-1]:
                        grid = np.geomspace(c["x"][0], px, 80)
                    else:
                        grid = np.geomspace(min(c["x"][0], px), c["x"][-1], 80)
                    c.update(x=grid, inputs=inputs_along(grid, group_inputs[g]))
                    at = inputs_along(np.array([px]), group_inputs[g])
                    points.append(dict(x=px, inputs=at, label=f"{xlabel}={_compact(px)}, {names[g]}"))
    if frontier and compute and chinchilla:
        grid = np.geomspace(xs.min(), x_end, 80)
        label = "compute-optimal" + (" (unique data unlimited)" if "U" in law.inputs else "")
        curves.append(
            dict(
                x=grid,
                inputs=frontier_inputs(grid),
                color="k",
                gid="frontier",
                label=label,
                lw=1.2,
                ls="--",
                z=5,
            )
        )

    # every curve and point predicted in one call (and once per sample)
    parts = [c["inputs"] for c in curves] + [p["inputs"] for p in points]
    sizes = np.cumsum([0] + [len(c["x"]) for c in curves] + [1 for _ in points])
    curve_pred = bounds = None
    if parts:
        joined = [np.concatenate([np.asarray(pt[i]) for pt in parts]) for i in range(len(law.inputs))]
        curve_pred = np.asarray(law(params, *joined), np.float64).reshape(-1)
        q = [50.0 * (1.0 - level), 50.0 * (1.0 + level)]
        bounds = (
            np.percentile(_predict_samples(law, samples, joined), q, axis=0) if samples is not None else None
        )
    for i, c in enumerate(curves + points):
        c["y"] = curve_pred[sizes[i] : sizes[i + 1]]
        c["band"] = None if bounds is None else bounds[:, sizes[i] : sizes[i + 1]]
    for p in points:
        if not (np.isfinite(p["y"][0]) and p["y"][0] > 0):
            raise ValueError(
                f"plot_fit: law {law.name!r} predicts {float(p['y'][0])!r} at the extrapolation "
                f"{p['label']}; a log axis needs a finite positive value"
            )

    fig = _figure_rows((7.6, 6.4), (3.0, 1.0))
    ax, rax = fig.axes
    row_colors = [colors[g] for g in codes]
    ax.scatter(xs, y, s=14, c=row_colors, edgecolors="white", linewidths=0.3, zorder=4)
    if along is None:  # no curves along a column that is not an input: the predictions at the runs
        ax.scatter(xs, pred, s=14, marker="x", c=row_colors, zorder=4, gid="prediction")
        if samples is not None:
            lo, hi = np.percentile(
                _predict_samples(law, samples, d.inputs), [50.0 * (1 - level), 50.0 * (1 + level)], axis=0
            )
            bar = ax.errorbar(xs, pred, yerr=[pred - lo, hi - pred], fmt="none", ecolor="0.5", lw=0.8)
            for c in bar.lines[2]:
                c.set_gid("band")
    for c in curves:
        ax.plot(
            c["x"],
            c["y"],
            color=c["color"],
            lw=c["lw"],
            ls=c["ls"],
            zorder=c["z"],
            gid=c["gid"],
            label=c["label"],
        )
        if c["band"] is not None:
            face = (*_rgb(c["color"]), 0.15 if c["gid"] == "fit-curve" else 0.2)
            ax.fill_between(
                c["x"],
                c["band"][0],
                c["band"][1],
                facecolor=face,
                edgecolor="none",
                zorder=c["z"] - 1,
                gid="band",
            )
    y_all = [y]
    notes = []
    for p in points:
        py = float(p["y"][0])
        ax.plot(
            [p["x"]],
            [py],
            marker="*",
            ms=13,
            color="C3",
            mec="k",
            mew=0.6,
            ls="none",
            zorder=6,
            gid="extrapolated",
            label="_extrapolated",
        )
        note = f"{d.columns['target']} = {py:.3g}"
        if p["band"] is not None:
            lo, hi = float(p["band"][0, 0]), float(p["band"][1, 0])
            bar = ax.errorbar(
                [p["x"]],
                [py],
                yerr=[[py - lo], [hi - py]],
                fmt="none",
                ecolor="C3",
                capsize=4,
                lw=1.4,
                zorder=5,
            )
            for c in bar.lines[2]:
                c.set_gid("extrapolated-interval")
            note += f" ({level:.0%}: {lo:.3g} to {hi:.3g})"
            y_all.append([lo, hi])
        notes.append(f"{note}\nat {p['label']}")
        y_all.append([py])
    if notes:  # one box in the lower left, which a falling curve leaves empty
        if len(notes) > 4:
            notes[3:] = [f"... and {len(notes) - 3} more"]
        ax.annotate(
            "\n".join(notes),
            (points[0]["x"], float(points[0]["y"][0])) if len(points) == 1 else (0.03, 0.04),
            xycoords="data" if len(points) == 1 else "axes fraction",
            xytext=(0.03, 0.04),
            textcoords="axes fraction",
            ha="left",
            va="bottom",
            fontsize="small",
            bbox=dict(boxstyle="round,pad=0.4", fc="white", ec="0.7", alpha=0.9),
            arrowprops=dict(arrowstyle="->", color="C3", lw=1.0, shrinkB=8) if len(points) == 1 else None,
            zorder=7,
            gid="extrapolation-note",
        )
    y_all = np.concatenate([np.ravel(v) for v in y_all])
    pad = max((y_all.max() / y_all.min()) ** 0.08, 1.03)
    ax.set_ylim(y_all.min() / pad, y_all.max() * pad)
    _log(ax)
    ax.set_ylabel(d.columns["target"])
    ax.set_title(
        f"{law.name}: data and fit" + (f", {level:.0%} bootstrap band" if samples is not None else "")
    )

    # the legends, outside: the groups (a few sizes for many), then what the marks are
    shown = [int(g) for g in order]
    if len(shown) > 10:
        shown = [shown[int(round(i))] for i in np.linspace(0, len(shown) - 1, 8)]
    if G > 1:
        style = dict(lw=2) if along is not None else dict(marker="o", ls="none", ms=5)
        handles = [Line2D([], [], color=colors[g], **style) for g in shown]
        title = by if by is not None else "model size N" if key == "N" else key or ", ".join(held)
        if len(shown) < G:
            title += f" ({G} {'curves' if along is not None else 'groups'})"
        groups = _legend_outside(
            ax, handles, [names[g] for g in shown], title=title, fontsize="small", title_fontsize="small"
        )
        ax.add_artist(groups)
    marks = [Line2D([], [], marker="o", color="0.4", ls="none", ms=4)]
    labels = ["runs"]
    if along is None:
        marks.append(Line2D([], [], marker="x", color="0.4", ls="none", ms=5))
        labels.append(f"{law.name} at the runs")
    elif G >= 1:
        marks.append(Line2D([], [], color=colors[shown[-1]], lw=1.2))
        labels.append(
            f"{law.name} fit"
            + ("" if G == 1 else " per model size" if by is None and key == "N" else " per group")
        )
    for c in curves:
        if c["gid"] != "fit-curve":
            marks.append(Line2D([], [], color=c["color"], lw=c["lw"], ls=c["ls"]))
            labels.append(c["label"])
    if points:
        marks.append(Line2D([], [], marker="*", color="C3", mec="k", mew=0.6, ls="none", ms=10))
        labels.append("extrapolated")
    if samples is not None:
        from matplotlib.patches import Patch

        marks.append(Patch(facecolor=(0.5, 0.5, 0.5, 0.25)))
        labels.append(f"{level:.0%} band ({len(samples[0])} samples)")
    _legend_outside(ax, marks, labels, where="lower", fontsize="small")

    rax.scatter(xs, np.log(pred) - np.log(y), s=10, c=row_colors, zorder=3)
    rax.axhline(0.0, color="k", lw=0.8)
    _log(rax, "x")
    rax.set_xlabel(xlabel)
    rax.set_ylabel("log(pred / obs)")
    return fig


def _rgb(color):
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def _figure_rows(size, heights):
    """A figure of stacked axes sharing x, with these relative heights."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    fig.subplots(len(heights), 1, sharex=True, height_ratios=list(heights), squeeze=False)
    return fig


def plot_isoflop(result, data, *, compute: str = "C", N: str = "N", loss: str = "loss"):
    """IsoFLOP profiles: loss against N per budget, each budget's parabola vertex, and the
    compute-optimal frontier ``N*(C) = k C^a``.

    Args:
        result: an :class:`~jaxlaws.isoflop.IsoflopResult`; data: its table.

    Returns:
        A ``Figure`` with two axes: the profiles (one series per budget plus the vertices),
        and ``N*`` against ``C`` with the fitted power law.
    """
    fig, axes = _figure(2, 1, size=(12.0, 4.2))
    ax, fx = axes[0, 0], axes[0, 1]
    budgets = result.budgets
    cmap = _sequential()
    lc = np.log(np.asarray(budgets["C"], np.float64))
    span = np.ptp(lc) if lc.size > 1 and np.ptp(lc) > 0 else 1.0
    for c, v in zip(budgets["C"], lc):
        g = data[np.isclose(data[compute].to_numpy(float), c, rtol=1e-9)].sort_values(N)
        ax.plot(g[N], g[loss], "o-", ms=3, lw=0.8, color=cmap((v - lc.min()) / span), label=_compact(c))
    ax.scatter(budgets["N_opt"], budgets["loss_opt"], marker="*", s=80, color="C3", zorder=3, label="N*")
    _log(ax, "x")
    ax.set_xlabel("parameters N")
    ax.set_ylabel(loss)
    ax.set_title("isoFLOP profiles")
    _legend_outside(
        ax, fontsize="small", ncols=1 if len(lc) <= 12 else 2, title="C (FLOPs)", title_fontsize="small"
    )
    fx.scatter(budgets["C"], budgets["N_opt"], color="k", label="N* per budget")
    cs = np.geomspace(budgets["C"].min(), budgets["C"].max(), 50)
    fx.plot(cs, result.k * cs**result.a, color="C3", label=f"N* = {result.k:.3g} C^{result.a:.3f}")
    _log(fx)
    fx.set_xlabel("compute C (FLOPs)")
    fx.set_ylabel("optimal N*")
    fx.set_title("compute-optimal frontier")
    fx.legend()
    return fig


def plot_bootstrap(bs, derived: Mapping | None = None, bins: int = 40):
    """Bootstrap distributions: one histogram per parameter (and per derived quantity), the
    point estimate and the interval marked (95% for parameters, a derived quantity's own).

    Args:
        bs: a :class:`~jaxlaws.BootstrapResult`.
        derived: ``{name: quantity}``, each quantity a function of one parameter set
            (``lambda p: p.beta / (p.alpha + p.beta)``, computed with
            :meth:`~jaxlaws.BootstrapResult.derived`) or a ``Derived`` it returned.
        bins: histogram bins.

    Returns:
        A ``matplotlib.figure.Figure`` with one axis per parameter, then per derived quantity.

    Raises:
        TypeError: ``bs`` is not a ``BootstrapResult``, ``derived`` not a mapping, or one of
            its values neither a function nor a ``Derived``.
        ValueError: a derived name that is also a parameter's, or as for
            :meth:`~jaxlaws.BootstrapResult.derived`.
    """
    from jaxlaws.uncertainty import BootstrapResult, Derived

    if not isinstance(bs, BootstrapResult):
        raise TypeError(
            f"plot_bootstrap: bs must be a BootstrapResult from jaxlaws.bootstrap, got {type(bs).__name__}"
        )
    if derived is not None and not isinstance(derived, Mapping):
        raise TypeError(
            "plot_bootstrap: derived must map names to functions of the parameters or Derived "
            f"quantities, got {type(derived).__name__}"
        )
    frame = bs.frame()
    quantities: dict[str, Derived] = {}
    for name, q in (derived or {}).items():
        if name in frame:
            raise ValueError(
                f"plot_bootstrap: derived quantity {name!r} has the name of a parameter; give it another"
            )
        if isinstance(q, Derived):
            quantities[name] = q
        elif callable(q):
            quantities[name] = bs.derived(q)
        else:
            raise TypeError(
                f"plot_bootstrap: derived[{name!r}] must be a function of the parameters or a Derived "
                f"from BootstrapResult.derived, got {type(q).__name__}"
            )
    table = bs.table()
    names = list(frame.columns) + list(quantities)
    fig, axes = _figure(len(names), 1, size=(2.6 * len(names), 2.6))
    for ax, name in zip(axes[0], names):
        if name in frame:
            values, point = frame[name].to_numpy(), table.loc[name, "estimate"]
            lo, hi = table.loc[name, "lower"], table.loc[name, "upper"]
        else:
            d = quantities[name]
            values, point = np.ravel(d.samples), float(np.ravel(d.point)[0])
            lo, hi = (float(np.ravel(v)[0]) for v in d.interval)
        ax.hist(values, bins=bins, color="C0", alpha=0.8)
        ax.axvline(point, color="k", lw=1.2)
        ax.axvspan(lo, hi, color="C1", alpha=0.2)
        ax.set_title(str(name))
    return fig


def plot_pools(params, sizes, n, weights=None, *, names=None, form: str = "paper"):
    """Error against samples seen for each pool alone, and for a mixture, with each pool's
    pass boundaries marked (dotted lines at ``n = j N_i``).

    Args:
        params: :class:`~jaxlaws.laws.FilteringMixtureParams`; sizes: ``(P,)``.
        n: samples seen (the horizontal grid).
        weights: a mixture to draw too (``(P,)``), or ``None``.
    """
    import jax.numpy as jnp

    from jaxlaws.laws import filtering_mixture

    n = np.asarray(n, float)
    sizes = np.asarray(sizes, float)
    P = sizes.shape[0]
    names = list(names) if names is not None else [f"pool {i}" for i in range(P)]
    fig, axes = _figure(1, 1, size=(7.5, 4.2))
    ax = axes[0, 0]
    colors = _palette(P)
    for i in range(P):
        w = np.eye(P)[i]
        y = np.asarray(
            filtering_mixture(params, jnp.asarray(n), jnp.asarray(sizes), jnp.asarray(w), form=form)
        )
        ax.plot(n, y, color=colors[i], label=names[i])
        for j in range(1, int(n.max() // sizes[i]) + 1):
            if j * sizes[i] >= n.min():
                ax.axvline(j * sizes[i], color=colors[i], lw=0.4, ls=":")
    if weights is not None:
        y = filtering_mixture(
            params, jnp.asarray(n), jnp.asarray(sizes), jnp.asarray(weights, float), form=form
        )
        ax.plot(n, np.asarray(y), color="k", lw=2, label="mixture " + ", ".join(f"{w:.2f}" for w in weights))
    _log(ax, "x")
    ax.set_xlabel("samples seen n")
    ax.set_ylabel("error")
    ax.set_title("error against compute, pass boundaries dotted")
    _legend_outside(ax, fontsize="small")
    return fig


def plot_pareto(decision, names=None):
    """The filtering frontier: best weights against budget (stacked), and the predicted
    error of the gradient optimum beside the best top-k mixture.

    Args:
        decision: a :class:`~jaxlaws.decide.MixtureDecision` over a sweep of budgets (from
            :func:`~jaxlaws.decide.optimize_mixture`).
        names: one label per pool (default ``pool 0``, ``pool 1``, ...).

    Raises:
        TypeError: ``decision`` is not a ``MixtureDecision``.
        ValueError: ``names`` has not one label per pool.
    """
    from jaxlaws.decide import MixtureDecision

    if not isinstance(decision, MixtureDecision):
        raise TypeError(
            "plot_pareto: decision must be a MixtureDecision from jaxlaws.decide.optimize_mixture, "
            f"got {type(decision).__name__}"
        )
    n = np.asarray(decision.n, float)
    w = np.asarray(decision.weights, float)
    P = w.shape[-1]
    names = list(names) if names is not None else [f"pool {i}" for i in range(P)]
    if len(names) != P:
        raise ValueError(f"plot_pareto: names must give one label per pool ({P}), got {len(names)}")
    fig, axes = _figure(2, 1, size=(12.0, 4.2))
    ax, ex = axes[0, 0], axes[0, 1]
    ax.stackplot(n, w.T, labels=names, colors=_palette(P), alpha=0.85, edgecolor="white", linewidth=0.4)
    _log(ax, "x")
    ax.set_ylim(0, 1)
    ax.set_xlabel("samples seen n")
    ax.set_ylabel("sampling weight")
    ax.set_title("best weights per budget")
    handles, labels = ax.get_legend_handles_labels()
    _legend_outside(ax, handles[::-1], labels[::-1], fontsize="small")  # top of the stack first
    ex.plot(n, np.asarray(decision.error), "k-", label="gradient optimum")
    ex.plot(n, np.asarray(decision.topk_errors).min(axis=1), "C3--", label="best top-k (uniform)")
    _log(ex, "x")
    ex.set_xlabel("samples seen n")
    ex.set_ylabel("predicted error")
    ex.set_title("Pareto frontier")
    ex.legend()
    return fig


def plot_mixture(
    law, params, data, *, domain=None, columns=None, target=None, reference=None, at=None, max_panels=6
):
    """Predicted metrics against one domain's weight, with the swarm's runs.

    The curve moves the weight of ``domain`` from 0 to 1 and scales the other domains of
    ``reference`` (default: the swarm's mean mixture) to fill the rest; the dots are the
    runs, at their own weight of the domain (their other domains differ, so they scatter
    about the curve).

    Args:
        law, params: a fitted mixture law (an input on the simplex), or its name, and its
            parameters (its ``NamedTuple`` or a mapping), each inside its constraint.
        data: the swarm (:class:`~jaxlaws.swarm.Swarm` or the table fitted).
        domain: the domain's column name or index (default: the first).
        columns, target: the fit's column mapping (a swarm supplies its own).
        reference: the mixture the other domains follow (default: the runs' mean).
        at: values of the law's other inputs (default: their median over the runs).
        max_panels: at most this many metrics, one panel each.

    Returns:
        A ``matplotlib.figure.Figure``.

    Raises:
        TypeError: ``law`` or ``params`` of the wrong kind.
        ValueError: parameters of another law, missing, not finite or outside their
            constraints; bad data; predictions at the runs that are not finite.
    """
    from jaxlaws.data import prepare

    law, params = _law_and_params(law, params, "plot_mixture")
    d = prepare(law, data, columns=columns, target=target, positive_target=False)
    mix = law.simplex_inputs
    if len(mix) != 1:
        raise ValueError(
            f"plot_mixture needs a law with one input on the simplex; {law.name!r} has {len(mix)}"
        )
    _check_predictions(law, params, law(params, *d.inputs), d, "plot_mixture", positive=False)
    j_in = law.inputs.index(mix[0])
    r = np.asarray(d.inputs[j_in])
    names = d.columns[mix[0]] if isinstance(d.columns[mix[0]], list) else [f"d{i}" for i in range(r.shape[1])]
    if domain is None:
        j = 0
    elif isinstance(domain, int | np.integer) and not isinstance(domain, bool):
        j = int(domain)
        if not 0 <= j < len(names):
            raise ValueError(f"domain {j} is out of range: the mixture has {len(names)} domains")
    elif domain in names:
        j = names.index(domain)
    else:
        raise ValueError(f"domain {domain!r} is not one of the mixture's domains {names}")
    ref = np.asarray(r.mean(axis=0) if reference is None else reference, np.float64)
    if ref.shape != (r.shape[1],):
        raise ValueError(f"reference must have one weight per domain ({r.shape[1]}), got shape {ref.shape}")
    rest = np.delete(ref, j)
    rest = rest / rest.sum() if rest.sum() > 0 else np.full(rest.size, 1.0 / max(rest.size, 1))
    x = np.linspace(0.0, 1.0, 201)
    grid = np.insert(np.outer(1.0 - x, rest), j, x, axis=1)
    args = []
    for i, (n, v) in enumerate(zip(law.inputs, d.inputs)):
        if i == j_in:
            args.append(grid)
        else:
            value = (at or {}).get(n, np.median(np.asarray(v, np.float64)))
            args.append(np.full(x.size, float(value)))
    pred = np.asarray(law(params, *args)).reshape(x.size, -1)
    y = np.asarray(d.y).reshape(len(d), -1)
    tcols = d.columns["target"] if isinstance(d.columns["target"], list) else [d.columns["target"]]
    k = min(y.shape[1], max_panels)
    ncols = min(k, 3)
    nrows = -(-k // ncols)
    fig, axes = _figure(ncols, nrows, size=(4.2 * ncols, 3.4 * nrows))
    for m in range(nrows * ncols):
        ax = axes[m // ncols, m % ncols]
        if m >= k:
            ax.set_visible(False)
            continue
        ax.scatter(r[:, j], y[:, m], s=10, color="C0", alpha=0.7, label="runs")
        ax.plot(x, pred[:, m], color="C1", label=f"{law.name}, others as reference")
        ax.set_xlabel(f"weight of {names[j]}")
        ax.set_ylabel(tcols[m] if m < len(tcols) else f"metric {m}")
        if m == 0:
            ax.legend(fontsize="small")
    fig.suptitle(f"{law.name}: predicted metrics against the weight of {names[j]}")
    return fig


def plot_proposals(proposal, *, level: float = 0.9, kl_index: int = 0, max_domains: int = 12):
    """Proposed weights against the budget, with bootstrap intervals where there are samples.

    Args:
        proposal: a :class:`~jaxlaws.propose.MixtureProposal`.
        level: the intervals' coverage (with bootstrap samples).
        kl_index: which KL strength of a path to draw.
        max_domains: draw the domains with the largest weights, at most this many.

    Raises:
        TypeError: ``proposal`` is not a ``MixtureProposal``.
        ValueError: ``kl_index`` out of range.

    Returns:
        A ``matplotlib.figure.Figure``: a line per domain over the budgets (bars for one
        budget), and the implied epochs below when unique tokens were given.
    """
    from jaxlaws.propose import MixtureProposal

    if not isinstance(proposal, MixtureProposal):
        raise TypeError(
            "plot_proposals: proposal must be a MixtureProposal from jaxlaws.propose_mixture, "
            f"got {type(proposal).__name__}"
        )
    if not 0 <= kl_index < len(proposal.kl):
        raise ValueError(
            f"kl_index {kl_index} is out of range: the proposal has {len(proposal.kl)} strengths"
        )
    w = proposal.weights[kl_index]  # (B, k)
    samples = proposal.samples["weights"][:, kl_index] if proposal.samples is not None else None
    if samples is not None and samples.shape[0] >= 2:
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    else:
        lo = hi = None
    # the domains with the largest weights (or upper bounds); those never above 0 left out
    reach = w.max(axis=0) if hi is None else np.maximum(w.max(axis=0), hi.max(axis=0))
    order = np.argsort(-reach, kind="stable")
    n_zero = int(np.sum(reach <= 0))
    order = (order[reach[order] > 0] if n_zero < len(order) else order)[:max_domains]
    colors = dict(zip(order.tolist(), _palette(order.size)))
    rows = 2 if proposal.epochs is not None else 1
    ncols = 1 if order.size <= 16 else 2
    fig, axes = _figure(1, rows, size=(6.5 + 2.2 * ncols, 3.8 * rows))
    ax = axes[0, 0]
    B = w.shape[0]
    budgets = proposal.budgets
    names = [proposal.domains[i] for i in order]
    if B == 1:
        pos = np.arange(order.size)
        err = (
            None if lo is None else np.abs(np.stack([w[0, order] - lo[0, order], hi[0, order] - w[0, order]]))
        )
        ax.bar(pos, w[0, order], yerr=err, color=[colors[i] for i in order], capsize=3, ecolor="0.2")
        ax.set_xticks(pos, names, rotation=45, ha="right")
        ax.set_ylabel("proposed weight")
    else:
        for i in order:
            rgb = _rgb(colors[i])
            ax.plot(budgets, w[:, i], marker="o", ms=3, color=rgb, label=proposal.domains[i], zorder=3)
            if lo is not None:  # each domain's own colour, translucent, with an edge
                ax.fill_between(
                    budgets,
                    lo[:, i],
                    hi[:, i],
                    facecolor=(*rgb, 0.2),
                    edgecolor=(*rgb, 0.8),
                    linewidth=0.7,
                    zorder=2,
                    gid="band",
                )
        _log(ax, "x")
        ax.set_xlabel("budget (tokens)")
        ax.set_ylabel("proposed weight")
        title = (
            "domain"
            if order.size == len(proposal.domains)
            else f"top {order.size} of {len(proposal.domains)}" + (f" ({n_zero} at 0)" if n_zero else "")
        )
        _legend_outside(ax, fontsize="small", ncols=ncols, title=title)
    band = f", {level:.0%} bootstrap intervals" if lo is not None else ""
    ax.set_title(f"proposed mixture (kl={proposal.kl[kl_index]:g}){band}")
    if proposal.epochs is not None:
        ex = axes[1, 0]
        e = np.where(proposal.epochs[kl_index] > 0, proposal.epochs[kl_index], np.nan)  # none: no mark
        if B == 1:
            ex.bar(np.arange(order.size), e[0, order], color=[colors[i] for i in order])
            ex.set_xticks(np.arange(order.size), names, rotation=45, ha="right")
            _log(ex, "y")
        else:
            for i in order:
                ex.plot(budgets, e[:, i], marker="o", ms=3, color=colors[i])
            _log(ex)
            ex.set_xlabel("budget (tokens)")
        if proposal.max_epochs is not None:
            ex.axhline(proposal.max_epochs, color="k", ls="--", lw=0.8, label=f"cap {proposal.max_epochs:g}")
            _legend_outside(ex, fontsize="small")
        ex.set_ylabel("implied epochs")
    return fig


#: Columns :func:`~jaxlaws.design.next_runs` adds to the candidates (not inputs to plot).
_DESIGN_COLUMNS = (
    "candidate",
    "cost",
    "gain",
    "gain_within",
    "gain_between",
    "score",
    "pick",
    "variance",
    "spent",
)


def _design_table(table, name: str, needed, where: str):
    """A table of points to draw (``targets``, ``runs``): ``None`` or a DataFrame with the
    numeric columns ``needed``."""
    import pandas as pd

    if table is None:
        return None
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{where}: {name} must be a pandas DataFrame, got {type(table).__name__}")
    for col in needed:
        if col not in table.columns:
            raise ValueError(f"{where}: {name} has no column {col!r}; its columns are {list(table.columns)}")
        if table[col].to_numpy().dtype.kind not in "iuf":
            raise ValueError(f"{where}: {name}'s column {col!r} is not numeric")
    return table


def plot_design(design, *, x=None, y=None, targets=None, runs=None):
    """Which runs to train next: the candidates, the picks (numbered in pick order), the
    fitted runs and the targets in the plane of two inputs; beside it, the predicted
    uncertainty at the targets before the picks and after each.

    Args:
        design: a :class:`~jaxlaws.design.Design` (from :func:`~jaxlaws.design.next_runs`).
        x, y: columns of the candidates on the axes (default: the first two numeric columns
            that ``next_runs`` did not add; with one, ``x`` and the candidates' cost on
            ``y``). An axis is logarithmic when every value on it is positive.
        targets: the target points, a DataFrame with the columns ``x`` and ``y`` (drawn as
            stars; as vertical lines when ``y`` is the cost).
        runs: the runs the fit was made on, with the columns ``x`` and ``y`` (drawn as dots;
            as ticks along the bottom when ``y`` is the cost).

    Returns:
        A ``matplotlib.figure.Figure`` with two axes: the plane, and the root of the mean
        predictive variance at the targets (of the mean squared prediction error for the
        ``"basin"`` criterion) against the number of picks, from the fitted runs alone (0).

    Raises:
        TypeError: ``design`` is not a ``Design``, or ``targets`` or ``runs`` not a DataFrame.
        ValueError: ``x`` or ``y`` not a numeric column of the candidates, or a column
            missing from ``targets`` or ``runs``.
    """
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    from jaxlaws.design import Design

    where = "plot_design"
    if not isinstance(design, Design):
        raise TypeError(
            f"{where}: design must be a Design from jaxlaws.design.next_runs, got {type(design).__name__}"
        )
    cand = design.candidates
    numeric = [
        c for c in cand.columns if c not in _DESIGN_COLUMNS and pd.api.types.is_numeric_dtype(cand[c].dtype)
    ]
    if x is None:
        if not numeric:
            raise ValueError(f"{where}: the candidates have no numeric input column to draw")
        x = numeric[0]
    if y is None:
        y = next((c for c in numeric if c != x), "cost")
    for name, col in (("x", x), ("y", y)):
        if col not in cand.columns or not pd.api.types.is_numeric_dtype(cand[col].dtype):
            raise ValueError(
                f"{where}: {name}={col!r} is not a numeric column of the candidates; they have {numeric}"
            )
    on_cost = y in _DESIGN_COLUMNS  # the targets and the runs have no value there
    needed = (x,) if on_cost else (x, y)
    targets = _design_table(targets, "targets", needed, where)
    runs = _design_table(runs, "runs", needed, where)

    fig, axes = _figure(2, 1, size=(11.5, 4.6))
    ax, vx = axes[0, 0], axes[0, 1]
    picked = cand["pick"].to_numpy() >= 0
    cx, cy = cand[x].to_numpy(np.float64), cand[y].to_numpy(np.float64)
    xs, ys = [cx], [cy]
    if runs is not None:
        rx = runs[x].to_numpy(np.float64)
        xs.append(rx)
        if on_cost:
            ax.plot(
                rx,
                np.zeros_like(rx),
                "|",
                ms=10,
                color="0.3",
                transform=ax.get_xaxis_transform(),
                label="fitted runs",
                gid="runs",
            )
        else:
            ry = runs[y].to_numpy(np.float64)
            ys.append(ry)
            ax.scatter(rx, ry, s=14, color="0.25", zorder=2, label="fitted runs", gid="runs")
    ax.scatter(
        cx[~picked],
        cy[~picked],
        s=36,
        facecolors="none",
        edgecolors="0.55",
        zorder=2,
        label="candidates",
        gid="candidates",
    )
    p = design.picks
    px, py = p[x].to_numpy(np.float64), p[y].to_numpy(np.float64)
    ax.scatter(px, py, s=60, color="C3", edgecolors="k", linewidths=0.6, zorder=4, label="picks", gid="picks")
    for i, (u, v) in enumerate(zip(px, py), start=1):
        ax.annotate(
            str(i),
            (u, v),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize="small",
            fontweight="bold",
            color="C3",
            zorder=5,
            gid="pick-number",
        )
    if targets is not None:
        tx = targets[x].to_numpy(np.float64)
        xs.append(tx)
        if on_cost:
            for j, t in enumerate(tx):
                ax.axvline(t, color="C1", ls="--", lw=1.2, label="targets" if j == 0 else None, gid="targets")
        else:
            ty = targets[y].to_numpy(np.float64)
            ys.append(ty)
            ax.scatter(
                tx,
                ty,
                s=160,
                marker="*",
                color="C1",
                edgecolors="k",
                linewidths=0.5,
                zorder=4,
                label="targets",
                gid="targets",
            )
    for which, values in (("x", xs), ("y", ys)):
        v = np.concatenate(values)
        v = v[np.isfinite(v)]
        if v.size and np.all(v > 0):
            _log(ax, which)
    ax.set_xlabel(str(x))
    ax.set_ylabel("cost" if y == "cost" else str(y))
    ax.set_title(f"{len(p)} picks of {len(cand)} candidates")
    _legend_outside(ax, fontsize="small")

    steps = np.arange(len(p) + 1)
    var = np.concatenate([[design.variance_before], p["variance"].to_numpy(np.float64)])
    sd = np.sqrt(np.maximum(var, 0.0))
    vx.plot(steps, sd, "o-", color="C3", ms=5, gid="uncertainty")
    vx.axhline(sd[0], color="0.5", ls=":", lw=1, label="before the picks")
    vx.xaxis.set_major_locator(MaxNLocator(integer=True))
    space = "log of the target" if design.space == "log" else "the target"
    what = "RMS prediction error" if design.criterion == "basin" else "RMS predictive s.d."
    vx.set_ylabel(f"{what} at the targets\n({space})")
    vx.set_xlabel(f"picks (cost {_compact(design.spent)} of budget {_compact(design.budget)})")
    lower = f" ({100.0 * (1.0 - sd[-1] / sd[0]):.0f}% lower)" if sd[0] > 0 else ""
    vx.set_title(f"{sd[0]:.3g} -> {sd[-1]:.3g}{lower}")
    vx.legend(fontsize="small")
    basins = f", {design.n_basins} basins" if design.criterion == "basin" else ""
    fig.suptitle(f"next runs: criterion {design.criterion!r}{basins}, cost power {design.cost_power:g}")
    return fig
