"""Benchmark: every law of the suite (``benchmarks/suite.py``), jaxlaws against scipy, in one run.

For each law, from the same 64 random starts (seed 0):

- jaxlaws cold: the first fit in a fresh Python process, without and with a warm persistent
  compilation cache (the process is started twice with one cache directory; the second
  run's fit is timed). The fit's time and the whole process's wall time are both printed;
- jaxlaws warm: the best of three fits in this process after one warm-up;
- scipy L-BFGS-B from every start with the exact gradient (``jax.grad`` of the same
  objective, in the same coordinates and bounds), at scipy's default tolerances and at
  tight ones (``ftol=1e-15, gtol=1e-12``); ``OPENBLAS_NUM_THREADS=1``.

It prints the objectives (jaxlaws' minus scipy's tight one, relative) and the time ratios,
and, with ``--big``, the rows of ``bench_fit.py`` (Hoffmann's 4500-start grid and Epoch's
4000-resample bootstrap) and the batch job of ``bench_sharding.py`` (1000 groups of 12 runs).

    python benchmarks/bench_laws.py                # the suite
    python benchmarks/bench_laws.py --big          # and the big rows
    python benchmarks/bench_laws.py --big-only     # the big rows alone
    python benchmarks/bench_laws.py --only Farseer --skip-cold
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
STARTS = 64

CHILD = """
import json, sys, time, warnings
t0 = time.perf_counter()
sys.path.insert(0, {here!r})
import jaxlaws, suite
from jaxlaws.compilation import enable_compilation_cache
cache = {cache!r}
if cache:
    enable_compilation_cache(cache)
from jaxlaws.problem import setup
from jaxlaws.starts import make_starts
c = suite.case({name!r})
df = c.table()
t1 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    prob = setup(c.law, df, **c.fit_kwargs)
    x0s = make_starts(prob.law, prob.layout, {starts}, seed=0, init=prob.init)
    r = jaxlaws.fit(c.law, df, starts=x0s, **c.fit_kwargs)
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "fit": t2 - t1, "value": r.value}}))
"""


def cold(name: str, cache: str | None) -> dict:
    """The first fit of ``name`` in a fresh process (with ``cache`` as its compilation cache)."""
    env = {**os.environ, "JAXLAWS_CACHE_DIR": "off"}
    code = CHILD.format(here=str(HERE), cache=cache, name=name, starts=STARTS)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="one law of the suite (its name)")
    ap.add_argument("--skip-cold", action="store_true", help="skip the fresh-process timings")
    ap.add_argument("--big", action="store_true", help="also the 4500-start grid, bootstrap and batch job")
    ap.add_argument("--big-only", action="store_true", help="only those big rows")
    args = ap.parse_args()

    import jax
    import numpy as np
    import reference
    import suite

    import jaxlaws
    from jaxlaws.problem import setup
    from jaxlaws.starts import make_starts

    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}), "
        f"{len(jax.devices())} device(s), python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores"
    )
    cases = [] if args.big_only else [suite.case(args.only)] if args.only else list(suite.CASES)
    rows = []
    for c in cases:
        df = c.table()
        row = {"law": c.name}
        if not args.skip_cold:
            row["cold"] = cold(c.name, None)
            with tempfile.TemporaryDirectory() as d:
                cold(c.name, d)
                row["cached"] = cold(c.name, d)
        prob = setup(c.law, df, **c.fit_kwargs)
        # the same starts on both sides (given, so jaxlaws draws no more)
        x0s = make_starts(prob.law, prob.layout, STARTS, seed=0, init=prob.init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)
            r = jaxlaws.fit(c.law, df, starts=x0s, **c.fit_kwargs)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                r = jaxlaws.fit(c.law, df, starts=x0s, **c.fit_kwargs)
                times.append(time.perf_counter() - t)
        row.update(warm=min(times), value=r.value, polished=r.n_polished, status=r.status, P=r.x.size)
        f_def, _, t_def = reference.scipy_multistart(prob, x0s, tight=False)
        f_tight, _, t_tight = reference.scipy_multistart(prob, x0s, tight=True)
        row.update(scipy_default=t_def, scipy_tight=t_tight, f_default=f_def.min(), f_tight=f_tight.min())
        rows.append(row)
        gap = (r.value - f_tight.min()) / abs(f_tight.min())
        line = (
            f"{c.name:32s} P {row['P']:2d} | jaxlaws {r.value:.10e} ({r.status}, {r.n_polished} polished)"
            f" | scipy tight {f_tight.min():.10e} (rel {gap:+.1e}), default {f_def.min():.10e}"
            f" | warm {row['warm']:.3f} s, scipy default {t_def:.2f} s ({t_def / row['warm']:.1f}x),"
            f" tight {t_tight:.2f} s ({t_tight / row['warm']:.1f}x)"
        )
        if "cold" in row:
            line += (
                f" | cold fit {row['cold']['fit']:.2f} s (process {row['cold']['process']:.2f} s),"
                f" cache warm {row['cached']['fit']:.2f} s (process {row['cached']['process']:.2f} s)"
            )
        print(line, flush=True)
    if args.big or args.big_only:
        big(np)


def big(np) -> None:
    """The 4500-start grid, Epoch's 4000-resample bootstrap and a 1000-group batch job."""
    import jax
    from bench_fit import HOFFMANN_UNROUNDED, run_scipy, scipy_objective
    from bench_sharding import _groups

    import jaxlaws
    from jaxlaws import laws
    from jaxlaws.batch import fit_groups

    df = jaxlaws.datasets.load("chinchilla-epoch", subset="standard")
    logN, logD, logL = (np.log(df[c].to_numpy()) for c in ("N", "D", "loss"))
    res = jaxlaws.fit("chinchilla", df)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        res = jaxlaws.fit("chinchilla", df)
        times.append(time.perf_counter() - t)
    grid = np.array(np.meshgrid(*laws.HOFFMANN_GRID.values(), indexing="ij")).reshape(5, -1).T
    _, value_and_grad = scipy_objective(logN, logD, logL, np.ones_like(logN))
    f_an, t_an = run_scipy(grid, value_and_grad, True)
    print(
        f"4500-start grid: jaxlaws {res.value:.10e} in {min(times):.3f} s; scipy analytic {f_an:.10e} in "
        f"{t_an:.1f} s ({t_an / min(times):.0f}x)",
        flush=True,
    )
    key, R = jax.random.key(0), 4000
    kw = dict(objective="huber", starts="init", init=HOFFMANN_UNROUNDED, point=res)
    jaxlaws.bootstrap(key, "chinchilla", df, R, **kw)
    t = time.perf_counter()
    bs = jaxlaws.bootstrap(key, "chinchilla", df, R, **kw)
    t_bs = time.perf_counter() - t
    from scipy.optimize import minimize

    W = np.asarray(jaxlaws.uncertainty.resample_weights(key, len(df), R))
    x0 = laws.CHINCHILLA.make_params(HOFFMANN_UNROUNDED).to_log()
    x0 = np.array([x0.a, x0.b, x0.e, x0.alpha, x0.beta], dtype=float)
    idx = np.random.default_rng(0).choice(R, 400, replace=False)
    tight = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000, "maxfun": 40000}
    t = time.perf_counter()
    gaps = []
    for i in idx:
        _, vg = scipy_objective(logN, logD, logL, W[i])
        r = minimize(vg, x0, method="L-BFGS-B", jac=True, options=tight)
        gaps.append(bs.objective[i] - r.fun)
    t_sc = (time.perf_counter() - t) * R / len(idx)
    print(
        f"bootstrap {R}: jaxlaws {t_bs:.2f} s ({bs.n_failed} not converged); scipy tight {t_sc:.1f} s "
        f"(from 400 resamples, scaled) ({t_sc / t_bs:.1f}x); objective gap median {np.median(gaps):+.1e}",
        flush=True,
    )
    data = _groups(1000)
    with tempfile.TemporaryDirectory() as d:
        for chunk in (64, 256, 1000):
            fit_groups(
                "chinchilla",
                _groups(chunk),
                "g",
                f"{d}/w{chunk}.jsonl",
                starts=16,
                chunk=chunk,
                progress=False,
            )
            t = time.perf_counter()
            out = fit_groups(
                "chinchilla", data, "g", f"{d}/o{chunk}.jsonl", starts=16, chunk=chunk, progress=False
            )
            dt = time.perf_counter() - t
            print(
                f"batch job 1000 groups x 12 runs, 16 starts, chunk {chunk}: {1000 / dt:.0f} fits/s "
                f"({dict(out.status.value_counts())})",
                flush=True,
            )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
