"""jaxlaws against ScaleBench's own scipy protocol, on every law instance of the three tasks in
``../shared/anchors/scalebench`` (Li et al. 2026, arXiv 2604.22753; MIT code, CC-BY-4.0 data).

Their "All Data" protocol (``baseline_full_train.py``): for each group, 64 starts from
``RandomState(42 + rep)``, log-uniform inside ``PARAM_BOUNDS`` where the lower bound is
positive (uniform otherwise), L-BFGS-B with their analytic Jacobian (``ftol=1e-15,
gtol=1e-10, maxiter=2000``), on the mean squared error; the best start wins. Their code runs
from ``../shared`` in this process (``multistart_fit`` with one worker: their pool has
``cpu_count() - 1`` workers, one on these 2 cores).

jaxlaws fits the same law (their function with the JAX backend, bounds as closed
intervals, ``objective="sse"``, every other setting at its default) in the same process:

- **same starts**: their 64 starts of ``RandomState(42)``; objective against theirs, warm
  time (after one warm-up fit) against theirs;
- **own starts**: no ``starts``, seeds 0 to 4 (the multi-start draws from the bounds and
  draws more while its stopping rule does not hold);
- **reference**: 1024 random starts, every one polished (``polish=None``);
- **cold** (``--cold``): the first fit in a fresh process with the compilation cache off,
  and with a cache that an earlier process filled ("cache warm").

The best objective any method reached on an instance is the lowest of scipy's five seeds
(``RandomState(42..46)``), jaxlaws' runs and the reference. Test R^2 is their
``evaluate_global`` (all groups' test rows together, clipped to [-1, 1]).

Usage: ``python benchmarks/bench_scalebench.py [--tasks vocab ...] [--cold] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import scalebench as sb  # noqa: E402

import jaxlaws  # noqa: E402

SEEDS = range(5)
SCIPY_SEEDS = range(42, 47)

COLD_SCRIPT = """
import sys, time, warnings
t0 = time.perf_counter()
sys.path.insert(0, {bench!r})
import scalebench as sb, jaxlaws
{cache}
warnings.simplefilter("ignore")
task = [t for t in sb.load({task!r}) if t.sl_id == {sl!r}][0]
law = sb.law_of(task)
df = sb.table(task, 0)
x0 = sb.to_coordinates(law, sb.their_starts(task, 42))
t1 = time.perf_counter()
jaxlaws.fit(law, df, objective="sse", starts=x0)
t2 = time.perf_counter()
print(t2 - t1, t2 - t0)
"""


def scipy_fit(task, group, seed):
    bft = sb.protocol()
    bft.N_WORKERS = 1  # their pool has cpu_count() - 1 workers: one here
    bft.setup_task(task, group)
    g = task.groups[group]
    t = time.perf_counter()
    theta = bft.multistart_fit(g.X_train, g.y_train, sb.N_STARTS, np.random.RandomState(seed))
    return theta, time.perf_counter() - t


def jaxlaws_fit(law, df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        r = jaxlaws.fit(law, df, objective="sse", **kw)
        return r, time.perf_counter() - t


def theta_of(r):
    return np.array([float(v) for v in r.params])


def cold(task, cache_dir):
    """(first fit, whole process) in a fresh process: cache off, then cache warm."""
    out = []
    for setting in ("off", "fill", "warm"):
        cache = (
            "jaxlaws.compilation.enable_compilation_cache(" + repr(cache_dir) + ")"
            if setting != "off"
            else ""
        )
        code = COLD_SCRIPT.format(
            bench=str(pathlib.Path(__file__).parent), cache=cache, task=task.dataset_name, sl=task.sl_id
        )
        env = {**os.environ, "JAXLAWS_CACHE_DIR": "off"}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        if setting != "fill":
            out.append(tuple(float(v) for v in proc.stdout.split()[-2:]))
    return out


def run_instance(task, args, cache_root):
    law = sb.law_of(task)
    rows = []
    thetas = {"scipy": [], "same": []}
    for gi in range(len(task.groups)):
        df = sb.table(task, gi)
        n = len(df)
        g = task.groups[gi]
        x0 = sb.to_coordinates(law, sb.their_starts(task, 42))
        # scipy: their protocol, seeds 42..46 (42 is the one timed and compared)
        sc = [scipy_fit(task, gi, s) for s in SCIPY_SEEDS[: (5 if args.seeds else 1)]]
        sc_mse = [sb.mse(task, th, g.X_train, g.y_train) for th, _ in sc]
        thetas["scipy"].append(sc[0][0])
        # jaxlaws from the same starts: warm-up, then timed
        jaxlaws_fit(law, df, starts=x0)
        same, t_same = jaxlaws_fit(law, df, starts=x0)
        thetas["same"].append(theta_of(same))
        own = [jaxlaws_fit(law, df, seed=s) for s in (SEEDS if args.seeds else [])]
        ref = jaxlaws_fit(law, df, starts=args.ref, polish=None)[0] if args.ref else None
        vals = (
            [v * n for v in sc_mse] + [same.value] + [r.value for r, _ in own] + ([ref.value] if ref else [])
        )
        best = min(vals)
        row = dict(
            instance=f"{task.dataset_name}/{task.sl_id}",
            group=gi,
            n=n,
            best=best,
            scipy=sc_mse[0] * n,
            scipy_time=sc[0][1],
            scipy_seeds=[v * n for v in sc_mse],
            same=same.value,
            same_status=same.status,
            same_time=t_same,
            same_polished=same.n_polished,
            own=[r.value for r, _ in own],
            own_time=[t for _, t in own],
            own_starts=[len(r.starts) for r, _ in own],
            own_unseen=[r.unseen for r, _ in own],
            ref=ref.value if ref else None,
        )
        rows.append(row)
    r2 = {k: sb.r2_global(task, v) for k, v in thetas.items()}
    if args.cold:
        (c_fit, c_proc), (w_fit, w_proc) = cold(task, tempfile.mkdtemp(dir=cache_root))
        for row in rows:
            row.update(cold=c_fit, cold_process=c_proc, cache_warm=w_fit, cache_warm_process=w_proc)
    for row in rows:
        row.update(r2_scipy=r2["scipy"], r2_same=r2["same"])
    return rows


def rel(a, b):
    return (a - b) / abs(b)


def report(rows):
    print(
        "\n| instance | g | scipy obj | jaxlaws same-start obj (rel) | warm s: jaxlaws / scipy (ratio) | "
        "own seeds: worst rel to best | own starts | cold / cache-warm s | test R^2 scipy / jaxlaws |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        own = max((rel(v, r["best"]) for v in r["own"]), default=float("nan"))
        cold = f"{r['cold']:.2f} / {r['cache_warm']:.2f}" if "cold" in r else ""
        same = f"{r['same']:.6e} ({rel(r['same'], r['scipy']):+.1e})"
        warm = f"{r['same_time']:.3f} / {r['scipy_time']:.3f} ({r['scipy_time'] / r['same_time']:.1f}x)"
        starts = ",".join(str(k) for k in r["own_starts"])
        print(
            f"| {r['instance']} | {r['group']} | {r['scipy']:.6e} | {same} | {warm} | {own:.1e} "
            f"| {starts} | {cold} | {r['r2_scipy']:.4f} / {r['r2_same']:.4f} |"
        )
    for task in sb.TASKS:
        rs = [r for r in rows if r["instance"].startswith(task)]
        if rs:
            ts, tj = sum(r["scipy_time"] for r in rs), sum(r["same_time"] for r in rs)
            print(f"{task}: scipy {ts:.2f} s, jaxlaws {tj:.2f} s, ratio {ts / tj:.1f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", default=list(sb.TASKS), help="task names or parts of them")
    ap.add_argument("--laws", nargs="*", default=None, help="sl ids (default: all)")
    ap.add_argument(
        "--no-seeds", dest="seeds", action="store_false", help="skip own-start seeds and scipy seeds"
    )
    ap.add_argument("--ref", type=int, default=1024, help="reference run's random starts (0: none)")
    ap.add_argument("--cold", action="store_true", help="also time fresh processes")
    ap.add_argument("--json", default=None, help="write every row here")
    args = ap.parse_args(argv)
    sb.install()
    rows = []
    with tempfile.TemporaryDirectory() as cache_root:
        for name in sb.TASKS:
            if not any(t in name for t in args.tasks):
                continue
            for task in sb.load(name):
                if args.laws and task.sl_id not in args.laws:
                    continue
                got = run_instance(task, args, cache_root)
                for r in got:
                    own = max((rel(v, r["best"]) for v in r["own"]), default=float("nan"))
                    ratio = r["scipy_time"] / r["same_time"]
                    print(
                        f"{r['instance']:38s} g{r['group']} same {rel(r['same'], r['scipy']):+.2e} "
                        f"({r['same_status']}, {r['same_polished']} polished) "
                        f"{r['same_time']:.3f}s vs {r['scipy_time']:.3f}s ({ratio:.1f}x) "
                        f"own worst {own:+.1e} starts {r['own_starts']} "
                        + (f"cold {r['cold']:.2f} cache {r['cache_warm']:.2f}" if "cold" in r else ""),
                        flush=True,
                    )
                rows += got
                if args.json:  # after every instance, whole or not at all
                    tmp = pathlib.Path(args.json + ".tmp")
                    tmp.write_text(json.dumps(rows, indent=1))
                    os.replace(tmp, args.json)
    report(rows)


if __name__ == "__main__":
    main()
