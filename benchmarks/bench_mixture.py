"""Benchmark: mixing weights over 4 pools for 50 budgets, by gradient (jaxlaws'
``optimize_mixture``) against an exhaustive grid on the simplex (step 0.05, 1771 points),
in one process. Prints the objective gap at the optimum and the time ratio.

The grid is evaluated as fast as it can be: one vmapped, jitted call over grid x budgets.

    python benchmarks/bench_mixture.py
"""

from __future__ import annotations

import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxlaws  # noqa: F401  (x64)
from jaxlaws import laws
from jaxlaws.decide import optimize_mixture, simplex_grid

# Goyal et al. Fig. 4 (ImageNet, T-MARS), four 12.8M pools (LAWS.md section 3)
FIG4 = laws.FilteringMixtureParams(*(jnp.asarray(v, jnp.float64) for v in laws.GOYAL_FIG4))
SIZES = jnp.full(4, 12.8e6)


def main():
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, python {platform.python_version()}")
    budgets = jnp.geomspace(16e6, 5e9, 50)
    grid = jnp.asarray(simplex_grid(4, 0.05))
    max_passes = 512

    @jax.jit
    def grid_search(n):
        err = jax.vmap(
            lambda nb: jax.vmap(lambda w: laws.filtering_mixture(FIG4, nb, SIZES, w, max_passes=max_passes))(
                grid
            )
        )(n)
        return grid[jnp.argmin(err, axis=1)], err.min(axis=1)

    def timed(fn):
        jax.block_until_ready(jax.tree_util.tree_leaves(fn()))
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            out = fn()
            jax.block_until_ready(jax.tree_util.tree_leaves(out))
            best = min(best, time.perf_counter() - t)
        return out, best

    (gw, gerr), t_grid = timed(lambda: grid_search(budgets))
    dec, t_grad = timed(lambda: optimize_mixture(FIG4, SIZES, budgets, max_passes=max_passes))
    gap = np.asarray(dec.error) - np.asarray(gerr)
    best_topk = np.asarray(dec.topk_errors).min(axis=1)
    print(f"4 pools, {len(budgets)} budgets from 16M to 5B samples; grid: {len(grid)} weight vectors")
    print(f"exhaustive 0.05 grid   {t_grid:8.3f} s")
    print(f"gradient (13 starts)   {t_grad:8.3f} s   ratio grid/gradient {t_grid / t_grad:6.2f}x")
    print(
        f"gradient error - grid error: max {gap.max():+.2e}, median {np.median(gap):+.2e} "
        f"(<= 0 at {int((gap <= 1e-12).sum())} of {len(gap)} budgets)"
    )
    print(
        f"gradient error - best top-k: max {(np.asarray(dec.error) - best_topk).max():+.2e}; "
        f"at 5B: gradient {float(dec.error[-1]):.4f}, grid {float(gerr[-1]):.4f}, "
        f"best top-k {best_topk[-1]:.4f}"
    )
    # a finer grid needs many more points for the same precision: 0.01 on 4 pools
    fine = simplex_grid(4, 0.01)
    print(f"(a 0.01 grid would have {len(fine)} points, {len(fine) / len(grid):.0f}x the 0.05 grid)")


if __name__ == "__main__":
    main()
