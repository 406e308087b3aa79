"""Benchmark: Hoffmann's 4500-start Chinchilla fit and Epoch's 4000-resample bootstrap,
jaxlaws against scipy L-BFGS-B one start (one resample) at a time, in one process.

Prints both objectives and the time ratio. scipy runs two ways: with a finite-difference
gradient (what ``scipy.optimize.minimize(objective, x0, method="L-BFGS-B")`` does, as the
published fits were run) and with an analytic gradient written by hand (the fastest scipy
can be made). jaxlaws is timed after one warm-up call (its compile time is printed apart).

    python benchmarks/bench_fit.py                 # everything, as recorded in README.md
    python benchmarks/bench_fit.py --scipy-subset 450   # scipy on a random tenth, scaled up
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

import jaxlaws
from jaxlaws import laws

HOFFMANN_UNROUNDED = dict(E=1.693374, A=406.401, B=410.723, alpha=0.339171, beta=0.284908)
DELTA = 1e-3


def scipy_objective(logN, logD, logL, w):
    """Summed Huber on log residuals (Hoffmann's objective), value and analytic gradient."""

    def value(x):
        a, b, e, alpha, beta = x
        pred = logsumexp([a - alpha * logN, b - beta * logD, np.full_like(logN, e)], axis=0)
        r = pred - logL
        ar = np.abs(r)
        return float(np.sum(w * np.where(ar <= DELTA, 0.5 * r * r, DELTA * (ar - 0.5 * DELTA))))

    def value_and_grad(x):
        a, b, e, alpha, beta = x
        T = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
        m = T.max(0)
        s = np.exp(T - m)
        tot = s.sum(0)
        r = m + np.log(tot) - logL
        s /= tot
        ar = np.abs(r)
        f = np.sum(w * np.where(ar <= DELTA, 0.5 * r * r, DELTA * (ar - 0.5 * DELTA)))
        psi = w * np.clip(r, -DELTA, DELTA)
        g = np.array([psi @ s[0], psi @ s[1], psi @ s[2], -(psi * s[0]) @ logN, -(psi * s[1]) @ logD])
        return float(f), g

    return value, value_and_grad


def run_scipy(starts, fun, jac):
    t = time.perf_counter()
    best = np.inf
    for x0 in starts:
        res = minimize(fun, x0, method="L-BFGS-B", jac=jac)
        best = min(best, res.fun)
    return best, time.perf_counter() - t


def timed(fn, repeats):
    out = fn()
    jax.block_until_ready(jax.tree_util.tree_leaves(getattr(out, "x", [])) or [0])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--scipy-subset", type=int, default=0, help="run scipy on this many random starts/resamples and scale"
    )
    ap.add_argument("--resamples", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-numeric", action="store_true", help="skip scipy with finite-difference gradients")
    ap.add_argument("--only", choices=["fit", "bootstrap"], help="run one of the two benchmarks")
    args = ap.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}), "
        f"python {platform.python_version()}, {platform.machine()}"
    )
    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    logN, logD, logL = (np.log(df[c].to_numpy()) for c in ("N", "D", "loss"))
    rng = np.random.default_rng(0)

    # --- 1. Hoffmann's 4500-start grid -------------------------------------------------
    if args.only == "bootstrap":
        return bootstrap_benchmark(args, df, jaxlaws.fit("chinchilla", df), logN, logD, logL, rng)
    t = time.perf_counter()
    jaxlaws.fit("chinchilla", df)
    first = time.perf_counter() - t
    res, t_jax = timed(lambda: jaxlaws.fit("chinchilla", df), args.repeats)
    grid = np.array(np.meshgrid(*laws.HOFFMANN_GRID.values(), indexing="ij")).reshape(5, -1).T
    sub = grid if not args.scipy_subset else grid[rng.choice(len(grid), args.scipy_subset, replace=False)]
    scale = len(grid) / len(sub)
    value, value_and_grad = scipy_objective(logN, logD, logL, np.ones_like(logN))
    print("\n== Chinchilla, Hoffmann's 4500-start grid, summed Huber (delta 1e-3), 240 points ==")
    print(
        f"jaxlaws            objective {res.value:.10e}  {t_jax:8.3f} s  "
        f"(first call with compile {first:.1f} s)"
    )
    f_an, t_an = run_scipy(sub, value_and_grad, True)
    t_an *= scale
    print(
        f"scipy analytic     objective {f_an:.10e}  {t_an:8.3f} s  ratio {t_an / t_jax:7.1f}x"
        + (f"  (scaled from {len(sub)} starts)" if scale > 1 else "")
    )
    if not args.skip_numeric:
        f_nu, t_nu = run_scipy(sub, value, None)
        t_nu *= scale
        print(f"scipy finite-diff  objective {f_nu:.10e}  {t_nu:8.3f} s  ratio {t_nu / t_jax:7.1f}x")
    best_scipy = min(f_an, f_nu if not args.skip_numeric else np.inf)
    print(f"objective gap jaxlaws - best scipy: {res.value - best_scipy:+.3e}")

    if args.only != "fit":
        bootstrap_benchmark(args, df, res, logN, logD, logL, rng)


def bootstrap_benchmark(args, df, res, logN, logD, logL, rng):
    """Epoch's bootstrap: 4000 resamples, each fitted from Hoffmann's unrounded values."""
    R = args.resamples
    key = jax.random.key(0)
    kw = dict(objective="huber", starts="init", init=HOFFMANN_UNROUNDED, point=res)
    t = time.perf_counter()
    jaxlaws.bootstrap(key, "chinchilla", df, R, **kw)
    first = time.perf_counter() - t
    bs, t_jax = timed(lambda: jaxlaws.bootstrap(key, "chinchilla", df, R, **kw), args.repeats)
    W = np.asarray(jaxlaws.uncertainty.resample_weights(key, len(df), R))
    idx = np.arange(R) if not args.scipy_subset else rng.choice(R, min(args.scipy_subset, R), replace=False)
    scale = R / len(idx)
    x0 = laws.CHINCHILLA.make_params(HOFFMANN_UNROUNDED).to_log()
    x0 = np.array([x0.a, x0.b, x0.e, x0.alpha, x0.beta], dtype=float)
    print(f"\n== Bootstrap, {R} resamples, each from Hoffmann's unrounded values (Epoch's protocol) ==")
    print(
        f"jaxlaws            {t_jax:8.3f} s  (first call with compile {first:.1f} s), "
        f"SE alpha {bs.stderr['alpha']:.4f} beta {bs.stderr['beta']:.4f} E {bs.stderr['E']:.4f}"
    )
    # default tolerances stop early (Besiroglu et al.); tight ones reach jaxlaws' objective
    tight = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000, "maxfun": 40000}
    for name, numeric, opts in (
        ("analytic", False, {}),
        ("analytic tight", False, tight),
        ("finite-diff", True, {}),
    ):
        if numeric and args.skip_numeric:
            continue
        t = time.perf_counter()
        gaps = []
        for i in idx:
            value, value_and_grad = scipy_objective(logN, logD, logL, W[i])
            r = minimize(
                value if numeric else value_and_grad,
                x0,
                method="L-BFGS-B",
                jac=None if numeric else True,
                options=opts,
            )
            gaps.append(bs.objective[i] - r.fun)
        dt = (time.perf_counter() - t) * scale
        print(
            f"scipy {name:<14} {dt:8.3f} s  ratio {dt / t_jax:7.1f}x   "
            f"jaxlaws objective - scipy's per resample: median {np.median(gaps):+.2e}, "
            f"max {np.max(gaps):+.2e}"
        )


if __name__ == "__main__":
    main()
