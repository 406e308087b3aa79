"""Benchmark: ``jaxlaws.propose_mixture`` against scipy SLSQP with the same constraints, on
the same fitted law, from the same starts, in one process.

For 5, 10 and 24 domains, Ye et al.'s exp-linear law with 5 outputs (parameters drawn with
a fixed seed, so that the optimum is interior at small budgets) is minimised at 20 budgets
with per-domain repetition caps (``w_i D <= 4 U_i``) that bind at the larger budgets, and
its uncapped optimum is found too (the proposal reports the gap). scipy solves the same 40
problems, one start at a time, with ``jax.grad`` of the same objective and tight tolerances
(``ftol=1e-15``). Printed per size: the worst relative objective gap (jaxlaws minus scipy;
negative is better), the worst constraint violation of each side, and the time ratio.

    python benchmarks/bench_propose.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np

import jaxlaws
from jaxlaws.laws import MixingExpParams, mixing_exp

try:
    import reference
except ImportError:  # run from the repository root
    from benchmarks import reference

SIZES = (5, 10, 24)
N_BUDGETS = 20
MAX_EPOCHS = 4.0
M = 5


def problem(k: int, seed: int = 0):
    """A Ye law over ``k`` domains with 5 outputs, unique tokens per domain, and budgets."""
    rng = np.random.default_rng(seed + k)
    c = rng.uniform(1.0, 3.0, M)
    t = -rng.uniform(0.0, 3.0, (M, k)) + rng.normal(0.0, 0.3, (M, 1))
    params = MixingExpParams(c=c, t=t)
    unique = np.exp(rng.uniform(np.log(2e8), np.log(2e10), k))
    top = 0.95 * MAX_EPOCHS * unique.sum()
    budgets = np.geomspace(top / 100, top, N_BUDGETS)
    return params, unique, budgets


def constraint_violation(w, lo, hi):
    return max(
        abs(float(np.sum(w)) - 1.0), float(np.max(lo - w, initial=0.0)), float(np.max(w - hi, initial=0.0))
    )


def run(k: int, starts: int, repeats: int = 3):
    params, unique, budgets = problem(k)
    kw = dict(budgets=budgets, unique_tokens=unique, max_epochs=MAX_EPOCHS, starts=starts)
    prop = jaxlaws.propose_mixture(mixing_exp_law(), params, **kw)  # compile
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        prop = jaxlaws.propose_mixture(mixing_exp_law(), params, **kw)
        best = min(best, time.perf_counter() - t)
    x0 = np.concatenate(
        [np.full((1, k), 1.0 / k), np.random.default_rng(0).dirichlet(np.ones(k), starts - 1)]
    )

    def predict(w):
        return mixing_exp(params, w[None])

    omega = np.full(M, 1.0 / M)
    gaps, viol_j, viol_s, t_scipy = [], 0.0, 0.0, 0.0
    lo = np.zeros(k)
    for b, D in enumerate(budgets):
        for capped in (True, False):
            hi = np.minimum(1.0, MAX_EPOCHS * unique / D) if capped else np.ones(k)
            f_s, w_s, secs = reference.scipy_mixture(predict, x0, lo, hi, omega=omega)
            t_scipy += secs
            f_j = prop.objective[0, b] if capped else prop.uncapped_objective[0, b]
            w_j = prop.weights[0, b] if capped else prop.uncapped_weights[0, b]
            gaps.append((f_j - f_s) / abs(f_s))
            viol_j = max(viol_j, constraint_violation(w_j, lo, hi))
            viol_s = max(viol_s, constraint_violation(w_s, lo, hi))
    n_capped = int((prop.bound == 2).any(axis=-1).sum())
    return dict(
        k=k,
        gap=max(gaps),
        viol_j=viol_j,
        viol_s=viol_s,
        t_jax=best,
        t_scipy=t_scipy,
        capped=n_capped,
        converged=int((prop.status == "converged").sum()),
    )


def mixing_exp_law():
    return jaxlaws.laws.MIXING_EXP


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 and 10 domains only")
    ap.add_argument("--starts", type=int, default=8)
    args = ap.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, python {platform.python_version()}")
    print(
        f"{N_BUDGETS} budgets, caps w_i D <= {MAX_EPOCHS:g} U_i, capped and uncapped optimum, "
        f"{args.starts} starts each; scipy SLSQP ftol=1e-15, jax.grad of the same objective"
    )
    print(
        f"{'domains':>7} {'gap (rel)':>11} {'viol jax':>9} {'viol scipy':>10} {'jaxlaws s':>10} "
        f"{'scipy s':>8} {'ratio':>7} {'caps bind':>9} {'converged':>9}"
    )
    for k in SIZES[:2] if args.quick else SIZES:
        r = run(k, args.starts)
        print(
            f"{r['k']:>7} {r['gap']:>11.2e} {r['viol_j']:>9.1e} {r['viol_s']:>10.1e} {r['t_jax']:>10.4f} "
            f"{r['t_scipy']:>8.3f} {r['t_scipy'] / r['t_jax']:>6.1f}x {r['capped']:>6}/{N_BUDGETS} "
            f"{r['converged']:>6}/{N_BUDGETS}"
        )


if __name__ == "__main__":
    main()
