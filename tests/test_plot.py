"""Plots render headless and contain what they claim (axes, series counts)."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import jaxlaws
from jaxlaws import laws, plot
from jaxlaws.decide import optimize_mixture
from jaxlaws.isoflop import isoflop

FIG4 = laws.FilteringMixtureParams(*(jnp.asarray(v, jnp.float64) for v in laws.GOYAL_FIG4))
SIZES = jnp.full(4, 12.8e6)


def test_isoflop_profiles_and_frontier():
    C = np.repeat([1e18, 1e19, 1e20], 7)
    N_opt = 1e8 * (C / 1e18) ** 0.5
    N = N_opt * np.exp(np.tile(np.linspace(-1, 1, 7), 3))
    df = pd.DataFrame({"C": C, "N": N, "loss": 3.0 + 0.2 * (np.log(N) - np.log(N_opt)) ** 2})
    fig = plot.plot_isoflop(isoflop(df), df)
    prof, front = fig.axes
    assert len(prof.lines) == 3  # one profile per budget
    assert len(prof.collections[0].get_offsets()) == 3  # the vertices
    assert front.get_xscale() == front.get_yscale() == "log" and len(front.lines) == 1


def test_bootstrap_histograms():
    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    bs = jaxlaws.bootstrap(jax.random.key(0), "chinchilla", df, 50)
    exponent = bs.derived(lambda p: p.beta / (p.alpha + p.beta))
    fig = plot.plot_bootstrap(bs, {"a = beta/(alpha+beta)": exponent})
    assert [ax.get_title() for ax in fig.axes] == ["E", "A", "B", "alpha", "beta", "a = beta/(alpha+beta)"]
    assert all(len(ax.containers[0]) == 40 for ax in fig.axes)  # the histogram bars


def test_pools_with_pass_boundaries_and_pareto():
    n = np.geomspace(5e6, 2e8, 60)
    fig = plot.plot_pools(FIG4, SIZES, n, weights=[0.4, 0.3, 0.2, 0.1], names=["10%", "20%", "30%", "40%"])
    ax = fig.axes[0]
    curves = [line for line in ax.lines if line.get_linestyle() == "-"]
    boundaries = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert len(curves) == 5  # four pools and the mixture
    assert len(boundaries) == 4 * 15  # passes 1..15 of each 12.8M pool up to 200M samples
    dec = optimize_mixture(FIG4, SIZES, jnp.geomspace(16e6, 5e9, 6))
    fig = plot.plot_pareto(dec, ["10%", "20%", "30%", "40%"])
    weights_ax, error_ax = fig.axes
    assert len(weights_ax.collections) == 4 and len(error_ax.lines) == 2
    fig.savefig("/dev/null", format="png")  # renders headless
