"""Plots, thin over the API: matplotlib ``Figure`` objects built without pyplot (headless).

``import jaxlaws`` does not import matplotlib; this module does, when called.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_fit", "plot_isoflop", "plot_bootstrap", "plot_pools", "plot_pareto"]


def _figure(ncols=1, nrows=1, size=(6.0, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def plot_fit(law, params, data, *, x: str | None = None, columns=None, target: str | None = None):
    """The fitted law against the data (log-log), with log residuals below.

    Args:
        law: the :class:`~jaxlaws.laws.Law`; params: its parameters.
        data: the table fitted.
        x: the column on the horizontal axis (default: compute ``6 N D`` when the law has
            ``N`` and ``D``, else its first input).
        columns, target: the column mapping used in the fit.

    Returns:
        A ``matplotlib.figure.Figure`` with two axes: data and predictions; residuals.
    """
    from jaxlaws.data import prepare

    d = prepare(law, data, columns=columns, target=target, positive_target=False)
    named = dict(zip(law.inputs, d.inputs))
    if x is None and "N" in named and "D" in named:
        xs, xlabel = 6.0 * named["N"] * named["D"], "compute 6ND (FLOPs)"
    else:
        col = x or law.inputs[0]
        xs, xlabel = np.asarray(data[col], float) if col in data else named[col], col
    pred = np.asarray(law(params, *d.inputs))
    fig, axes = _figure(1, 2, size=(6.5, 6.0))
    ax, rax = axes[0, 0], axes[1, 0]
    ax.scatter(xs, d.y, s=12, label="data", color="C0")
    ax.scatter(xs, pred, s=8, marker="x", label=f"{law.name} fit", color="C1")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(d.columns["target"])
    ax.set_title(f"{law.name}: data and fit")
    ax.legend()
    rax.scatter(xs, np.log(pred) - np.log(d.y), s=10, color="C2", label="log residual")
    rax.axhline(0.0, color="k", lw=0.8)
    rax.set_xscale("log")
    rax.set_xlabel(xlabel)
    rax.set_ylabel("log(pred) - log(obs)")
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
    fig, axes = _figure(2, 1, size=(11.0, 4.2))
    ax, fx = axes[0, 0], axes[0, 1]
    budgets = result.budgets
    for i, c in enumerate(budgets["C"]):
        g = data[np.isclose(data[compute].to_numpy(float), c, rtol=1e-9)].sort_values(N)
        ax.plot(g[N], g[loss], "o-", ms=3, lw=0.8, color=f"C{i % 10}", label=f"{c:.2g}")
    ax.scatter(budgets["N_opt"], budgets["loss_opt"], marker="*", s=80, color="k", zorder=3, label="N*")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel(loss)
    ax.set_title("isoFLOP profiles")
    ax.legend(fontsize=6, ncol=2, title="C (FLOPs)", title_fontsize=7)
    fx.scatter(budgets["C"], budgets["N_opt"], color="k", label="N* per budget")
    cs = np.geomspace(budgets["C"].min(), budgets["C"].max(), 50)
    fx.plot(cs, result.k * cs**result.a, color="C3", label=f"N* = {result.k:.3g} C^{result.a:.3f}")
    fx.set_xscale("log")
    fx.set_yscale("log")
    fx.set_xlabel("compute C (FLOPs)")
    fx.set_ylabel("optimal N*")
    fx.set_title("compute-optimal frontier")
    fx.legend()
    return fig


def plot_bootstrap(bs, derived: dict | None = None, bins: int = 40):
    """Bootstrap distributions: one histogram per parameter (and per derived quantity), the
    point estimate and the 95% interval marked.

    Args:
        bs: a :class:`~jaxlaws.BootstrapResult`.
        derived: ``{name: Derived}`` from :meth:`~jaxlaws.BootstrapResult.derived`.
    """
    frame = bs.frame()
    table = bs.table()
    names = list(frame.columns) + list(derived or {})
    fig, axes = _figure(len(names), 1, size=(2.6 * len(names), 2.6))
    for ax, name in zip(axes[0], names):
        if name in frame:
            values, point = frame[name].to_numpy(), table.loc[name, "estimate"]
            lo, hi = table.loc[name, "lower"], table.loc[name, "upper"]
        else:
            d = derived[name]
            values, point = np.ravel(d.samples), float(np.ravel(d.point)[0])
            lo, hi = (float(np.ravel(v)[0]) for v in d.interval)
        ax.hist(values, bins=bins, color="C0", alpha=0.8)
        ax.axvline(point, color="k", lw=1.2)
        ax.axvspan(lo, hi, color="C1", alpha=0.2)
        ax.set_title(name)
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
    fig, axes = _figure(1, 1, size=(6.5, 4.2))
    ax = axes[0, 0]
    for i in range(P):
        w = np.eye(P)[i]
        y = np.asarray(
            filtering_mixture(params, jnp.asarray(n), jnp.asarray(sizes), jnp.asarray(w), form=form)
        )
        ax.plot(n, y, color=f"C{i}", label=names[i])
        for j in range(1, int(n.max() // sizes[i]) + 1):
            if j * sizes[i] >= n.min():
                ax.axvline(j * sizes[i], color=f"C{i}", lw=0.4, ls=":")
    if weights is not None:
        y = filtering_mixture(
            params, jnp.asarray(n), jnp.asarray(sizes), jnp.asarray(weights, float), form=form
        )
        ax.plot(n, np.asarray(y), color="k", lw=2, label="mixture " + ", ".join(f"{w:.2f}" for w in weights))
    ax.set_xscale("log")
    ax.set_xlabel("samples seen n")
    ax.set_ylabel("error")
    ax.set_title("error against compute, pass boundaries dotted")
    ax.legend(fontsize=7)
    return fig


def plot_pareto(decision, names=None):
    """The filtering frontier: best weights against budget (stacked), and the predicted
    error of the gradient optimum beside the best top-k mixture.

    Args:
        decision: a :class:`~jaxlaws.decide.MixtureDecision` over a sweep of budgets.
    """
    n = np.asarray(decision.n, float)
    w = np.asarray(decision.weights, float)
    P = w.shape[-1]
    names = list(names) if names is not None else [f"pool {i}" for i in range(P)]
    fig, axes = _figure(2, 1, size=(11.0, 4.2))
    ax, ex = axes[0, 0], axes[0, 1]
    ax.stackplot(n, w.T, labels=names, alpha=0.85)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("samples seen n")
    ax.set_ylabel("sampling weight")
    ax.set_title("best weights per budget")
    ax.legend(fontsize=7, loc="lower left")
    ex.plot(n, np.asarray(decision.error), "k-", label="gradient optimum")
    ex.plot(n, np.asarray(decision.topk_errors).min(axis=1), "C3--", label="best top-k (uniform)")
    ex.set_xscale("log")
    ex.set_xlabel("samples seen n")
    ex.set_ylabel("predicted error")
    ex.set_title("Pareto frontier")
    ex.legend()
    return fig
