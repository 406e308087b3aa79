"""Plots, thin over the API: matplotlib ``Figure`` objects built without pyplot (headless).

``import jaxlaws`` does not import matplotlib; this module does, when called.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_fit"]


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
