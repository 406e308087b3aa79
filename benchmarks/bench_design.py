"""jaxlaws.design.replay against ScaleBench's Table 2, on the three tasks in ``../shared/anchors/scalebench``
(Li et al. 2026, "Spend Less, Fit Better", arXiv 2604.22753; MIT code, CC-BY-4.0 data).

**What is compared.** For each task (``data_constrained``, ``vocab``, ``parallel``) and each law
instance (``sl_1`` .. ``sl_10``; ``--instances`` picks a subset), :func:`jaxlaws.design.replay`
runs sequential design on each group's pool (the task's train split, with its cost proxy from
their ``registry.py``) towards the group's targets (the test split), for the criteria ``v``,
``d``, ``basin`` (jaxlaws' version of their MSPE), ``random`` and ``cheapest``, seeds ``0 ..
repeats-1``, and records the fit at 1%, 5% and 10% of the pool's cost. Table 2 is "task-level":
their code (``mspe.py DATASET 10``, ``python -m benchmark.main --dataset ... --repeat 10``) runs
every law instance of a task, 10 repeats each, and writes one mean and std over the repeats per
instance; how those were pooled into one cell per task is not in the published code. Here a task
cell is the mean over instances and repeats, ± the mean over instances of the std over repeats
(``np.std``, as theirs); ``--per-instance`` prints each instance's mean ± std too.

**How.** Their protocol, where jaxlaws lets it be followed:

- fits: ``fit_kwargs={"objective": "sse"}`` (their mean squared error; the argmin is the same);
  jaxlaws' own multi-start (its starts drawn from the bounds; their 64 scipy L-BFGS-B starts are
  not replayed);
- the range prior (``prior="ranges"``, their ``prior_std = width / 4`` in ``mspe.py``,
  ``vopt.py`` and ``baseline_dopt.py``) for ``v``, ``d`` and ``basin`` (``--prior none`` drops
  it); their cost exponent per method: ``0.3`` for ``v`` (``vopt.py``), ``0.4`` for ``d`` and
  ``basin`` (``baseline_dopt.py``, ``mspe.py``); ``--cost-power`` sets one for all;
- R^2: their ``evaluate_global`` (``benchmark/runner.py``, ``mspe.py``): the groups' target
  predictions concatenated (``parallel`` has two groups, ``pile`` and ``stack``; the other tasks
  one), ``1 - SSE / SST`` clipped to ``[-1, 1]``, a group with non-finite predictions left out,
  ``-1`` when none is left. It is rebuilt exactly from each group's unclipped ``r2``
  (``SSE_g = (1 - r2_g) SST_g``);
- differences left in: replay's initial design has at least one more run than the law's free
  parameters (theirs may have fewer); when that design alone costs more than a budget, replay
  reports its fit there (``within`` false) where theirs reports the fit of fewer runs, or -1.
  Such cells are marked ``*`` and counted under "over budget". Their ``Random`` and ``Cheapest``
  rows come from ``benchmark/runner.py`` (no initial design, 64 uniform starts, a pick that
  overshoots a checkpoint deferred to the next one); replay's baselines start from the same
  initial design as the criteria.

"designs" counts the distinct pick sequences over the repeats (summed over the instances): for
``v``, ``d`` and ``basin`` the picks depend on the seed only through the fits' random starts, so
"deterministic" is printed where every repeat picked the same runs; ``cheapest`` is
deterministic up to ties in cost.

**Timing** (skipped with ``--no-timing``): on the first instance of each task, one whole replay
(every group, all budgets, one seed) of jaxlaws' ``basin`` (first in the process, compilation
included, then again warm) against their ``mspe.py`` ``run_one`` on the same instance (every
group, seed 42 as their first repeat), run in a subprocess from a scratch folder, with their
process pool (``multiprocessing`` fork, ``mspe.N_WORKERS`` set to ``--workers``, by default as
many workers as cores: ``os.cpu_count()``; their default is ``cpu_count() - 1``). It needs
numpy, scipy and pyarrow; if an import fails the timing says so and is skipped.

**Length** (2 cores shared with other work). ``--quick`` (data_constrained ``sl_1``, one
repeat, ``v`` and ``random``, and the timing) took 4.5 minutes, 3.8 of them in ``mspe.py``. The
full run is 3 tasks x 10 instances x 5 criteria x 10 repeats = 1,500 replays (two groups each on
``parallel``), estimated from single replays at 12 to 17 hours: ``vocab`` most of it (1,080-run
pools; ``v`` made 340 picks within 10% of the cost, one refit each, 130 s a replay; ``random``
70 s), ``data_constrained`` about an hour (3 to 13 s a replay), ``parallel`` about 20 minutes
(18 runs a group; the initial designs cost more than 5%, for most laws more than 10%, so there
are few picks or none), and the timing's
``mspe.py`` runs (3.8 minutes on data_constrained ``sl_1``; on ``vocab``, with a 64-start scipy
refit per pick, likely an hour or more).

Usage: ``python benchmarks/bench_design.py [--quick] [--tasks vocab ...] [--instances sl_1 ...]
[--criteria v basin ...] [--repeats 10] [--no-timing] [--workers N] [--per-instance]
[--json out.json]``
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

from jaxlaws import design  # noqa: E402

FRACTIONS = (0.01, 0.05, 0.10)
CRITERIA = ("v", "d", "basin", "random", "cheapest")
SHORT = {
    "data_constrained_scaling_law": "data_con",
    "vocab_scaling_law": "vocab",
    "parallel_scaling_law": "parallel",
}
#: Their cost exponent per method (``vopt.py`` 0.3; ``baseline_dopt.py`` and ``mspe.py`` 0.4).
COST_POWER = {"v": 0.3, "d": 0.4, "basin": 0.4}
#: Their Table 2 row for each of replay's criteria.
THEIR_ROW = {"v": "V-opt", "d": "D-opt", "basin": "Ours (MSPE)", "random": "Random", "cheapest": "Cheapest"}

#: ScaleBench's Table 2 (target-region R^2, mean ± std), budget -> row -> task -> (mean, std).
#: Source: ``../shared/anchors/scalebench/TABLE2.md`` (the README of PlanarG/active-sl @ e0a58ff,
#: "Table 2"); the ``Cheapest`` row, which TABLE2.md leaves out, from the same README
#: (github.com/PlanarG/active-sl, README.md @ f7f0388). "All Data" fits every pool row (100%).
TABLE2 = {
    0.01: {
        "Random": {"vocab": (0.54, 0.57), "parallel": (-1.00, 0.00), "data_con": (-0.74, 0.48)},
        "Cheapest": {"vocab": (0.30, 0.71), "parallel": (-1.00, 0.00), "data_con": (-0.58, 0.64)},
        "D-opt": {"vocab": (0.95, 0.03), "parallel": (-1.00, 0.00), "data_con": (0.71, 0.43)},
        "V-opt": {"vocab": (0.96, 0.02), "parallel": (-1.00, 0.00), "data_con": (0.58, 0.53)},
        "Ours (MSPE)": {"vocab": (0.96, 0.02), "parallel": (-1.00, 0.00), "data_con": (0.73, 0.37)},
    },
    0.05: {
        "Random": {"vocab": (0.53, 0.62), "parallel": (0.27, 0.02), "data_con": (-0.36, 0.71)},
        "Cheapest": {"vocab": (0.53, 0.62), "parallel": (0.42, 0.03), "data_con": (-0.56, 0.65)},
        "D-opt": {"vocab": (0.97, 0.01), "parallel": (0.70, 0.52), "data_con": (0.80, 0.17)},
        "V-opt": {"vocab": (0.97, 0.00), "parallel": (0.69, 0.53), "data_con": (0.83, 0.17)},
        "Ours (MSPE)": {"vocab": (0.98, 0.00), "parallel": (0.77, 0.39), "data_con": (0.85, 0.16)},
    },
    0.10: {
        "Random": {"vocab": (0.59, 0.54), "parallel": (0.19, 0.01), "data_con": (0.12, 0.62)},
        "Cheapest": {"vocab": (0.55, 0.63), "parallel": (0.42, 0.03), "data_con": (-0.40, 0.64)},
        "D-opt": {"vocab": (0.97, 0.00), "parallel": (0.99, 0.00), "data_con": (0.77, 0.16)},
        "V-opt": {"vocab": (0.98, 0.00), "parallel": (0.99, 0.00), "data_con": (0.85, 0.13)},
        "Ours (MSPE)": {"vocab": (0.98, 0.00), "parallel": (0.99, 0.00), "data_con": (0.86, 0.11)},
    },
}
ALL_DATA = {"vocab": (0.93, 0.16), "parallel": (0.99, 0.00), "data_con": (0.79, 0.23)}

MSPE_SCRIPT = """
import json, os, sys, time, warnings
t0 = time.perf_counter()
sys.path.insert(0, {bench!r})
warnings.simplefilter("ignore")
import numpy as np
import scalebench as sb
sb.install()
sys.argv = ["mspe.py", {task!r}, "1"]
import mspe
from benchmark.runner import get_checkpoints
mspe.N_WORKERS = {workers}
task = [t for t in mspe.load_tasks_for_dataset({task!r}) if t.sl_id == {sl!r}][0]
mspe.CHECKPOINTS = get_checkpoints(task)
t1 = time.perf_counter()
per_group = []
for gi in range(len(task.groups)):
    mspe.setup_task(task, gi)
    per_group.append(mspe.run_one({seed}, verbose=False))
t2 = time.perf_counter()
r2 = [sb.r2_global(task, [g[cp] for g in per_group]) for cp in mspe.CHECKPOINTS]
print(json.dumps(dict(run=t2 - t1, process=t2 - t0, workers=mspe.N_WORKERS, r2=r2)))
"""


# ----------------------------------------------------------------------------------------
# One instance
# ----------------------------------------------------------------------------------------


def groups_of(task):
    """Each group's pool (train split, with its ``cost``) and targets (test split)."""
    out = []
    for gi, g in enumerate(task.groups):
        pool = sb.table(task, gi)
        pool["cost"] = np.asarray(g.cost_train, np.float64)
        out.append((pool, sb.table(task, gi, "test")))
    return out


def global_r2(r2s, targets) -> float:
    """Their ``evaluate_global`` from each group's unclipped R^2: groups concatenated, a group
    without a finite R^2 left out, clipped to [-1, 1], -1 when no group is left."""
    ys, sse = [], 0.0
    for r2, tg in zip(r2s, targets):
        if not np.isfinite(r2):
            continue
        y = np.asarray(tg["y"], np.float64)
        sse += (1.0 - r2) * float(np.sum((y - y.mean()) ** 2))
        ys.append(y)
    if not ys:
        return -1.0
    y = np.concatenate(ys)
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst < 1e-300 or not np.isfinite(sse):
        return -1.0
    return float(np.clip(1.0 - sse / sst, -1.0, 1.0))


def replay_instance(law, groups, criterion, seed, args) -> dict:
    """One whole replay of an instance (every group, all budgets, one seed)."""
    kw = {}
    if criterion in COST_POWER:
        kw["cost_power"] = args.cost_power if args.cost_power is not None else COST_POWER[criterion]
        kw["prior"] = None if args.prior == "none" else "ranges"
    t = time.perf_counter()
    reps = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pool, targets in groups:
            reps.append(
                design.replay(
                    law,
                    pool,
                    targets,
                    cost="cost",
                    fractions=FRACTIONS,
                    criterion=criterion,
                    seed=seed,
                    fit_kwargs={"objective": "sse"},
                    **kw,
                )
            )
    elapsed = time.perf_counter() - t
    r2, within, runs = [], [], []
    for i in range(len(FRACTIONS)):
        rows = [r.checkpoints.iloc[i] for r in reps]
        r2.append(global_r2([float(row["r2"]) for row in rows], [tg for _, tg in groups]))
        within.append(all(bool(row["within"]) for row in rows))
        runs.append(sum(int(row["runs"]) for row in rows))
    picks = tuple(tuple(str(v) for v in r.steps["row"].iloc[1:]) for r in reps)
    return dict(seed=seed, r2=r2, within=within, runs=runs, picks=picks, time=elapsed)


# ----------------------------------------------------------------------------------------
# Timing against mspe.py
# ----------------------------------------------------------------------------------------


def time_mspe(task, workers: int) -> dict:
    """Their ``mspe.run_one`` on every group of one instance, seed 42, in a subprocess."""
    code = MSPE_SCRIPT.format(
        bench=str(pathlib.Path(__file__).parent),
        task=task.dataset_name,
        sl=task.sl_id,
        workers=int(workers),
        seed=sb.RNG_SEED,
    )
    with tempfile.TemporaryDirectory() as scratch:  # mspe writes nothing from run_one; a scratch cwd anyway
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=scratch)
        wall = time.perf_counter() - t
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        missing = "ModuleNotFoundError" in proc.stderr or "ImportError" in proc.stderr
        why = "their code needs a package that is not installed" if missing else "their code failed"
        return dict(error=f"{why}: {tail[0]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out


def timing(task, law, groups, args) -> None:
    name = f"{SHORT[task.dataset_name]}/{task.sl_id}"
    cold = replay_instance(law, groups, "basin", 0, args)
    warm = replay_instance(law, groups, "basin", 0, args)
    budgets = ", ".join(f"{f:.0%}" for f in FRACTIONS)
    print(f"\ntiming {name}: one whole replay (every group, budgets {budgets}, one seed), basin criterion")
    print(
        f"  jaxlaws basin, seed 0: first in this process {cold['time']:.1f} s (compilation included), "
        f"again {warm['time']:.1f} s; R^2 {' / '.join(f'{v:.3f}' for v in warm['r2'])}; "
        f"runs {' / '.join(str(v) for v in warm['runs'])}",
        flush=True,
    )
    if args.no_mspe:
        print("  mspe.py: skipped (--no-mspe)")
        return
    theirs = time_mspe(task, args.workers)
    if "error" in theirs:
        print(f"  mspe.py: skipped, {theirs['error']}")
        return
    print(
        f"  their mspe.py run_one, seed {sb.RNG_SEED}, {theirs['workers']} fork workers: "
        f"{theirs['run']:.1f} s (process {theirs['wall']:.1f} s with imports); "
        f"R^2 {' / '.join(f'{v:.3f}' for v in theirs['r2'])}"
    )
    print(
        f"  ratio mspe.py / jaxlaws: {theirs['run'] / warm['time']:.1f}x warm, "
        f"{theirs['run'] / cold['time']:.1f}x with jaxlaws' compilation",
        flush=True,
    )


# ----------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------


def cell(values, stds=None) -> str:
    v = np.asarray(values, np.float64)
    s = float(np.mean(stds)) if stds is not None else float(np.std(v))
    return f"{v.mean():+.2f} ± {s:.2f}"


def summarise(task_name: str, results: dict, criteria, args) -> list[dict]:
    """Print the task's table; ``results[instance][criterion]`` is the list of replays."""
    short = SHORT[task_name]
    instances = list(results)
    print(f"\n### {short} ({len(instances)} instance(s): {', '.join(instances)}; {args.repeats} repeat(s))\n")
    print("| budget | criterion | jaxlaws R^2 | ScaleBench Table 2 | designs | over budget | s / replay |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for i, f in enumerate(FRACTIONS):
        for c in criteria:
            per = [[r["r2"][i] for r in results[k][c]] for k in instances]
            means = [float(np.mean(p)) for p in per]
            stds = [float(np.std(p)) for p in per]
            flat = [v for p in per for v in p]
            n_over = sum(not r["within"][i] for k in instances for r in results[k][c])
            n_all = sum(len(results[k][c]) for k in instances)
            distinct = sum(len({r["picks"] for r in results[k][c]}) for k in instances)
            det = "deterministic" if args.repeats > 1 and distinct == len(instances) else f"{distinct}"
            secs = float(np.mean([r["time"] for k in instances for r in results[k][c]]))
            theirs = TABLE2[f][THEIR_ROW[c]][short]
            mark = " *" if n_over else ""
            ref = f"{THEIR_ROW[c]} {theirs[0]:+.2f} ± {theirs[1]:.2f}"
            ours = f"{cell(flat, stds)}{mark}"
            print(f"| {f:.0%} | {c} | {ours} | {ref} | {det} | {n_over}/{n_all} | {secs:.1f} |")
            rows.append(
                dict(
                    task=short,
                    fraction=f,
                    criterion=c,
                    mean=float(np.mean(flat)),
                    std_over_repeats=float(np.mean(stds)),
                    instance_means=dict(zip(instances, means)),
                    instance_stds=dict(zip(instances, stds)),
                    over_budget=n_over,
                    replays=n_all,
                    distinct_designs=distinct,
                    seconds_per_replay=secs,
                    theirs=theirs,
                )
            )
    a = ALL_DATA[short]
    print(f"| 100% | All Data (theirs) | | {a[0]:+.2f} ± {a[1]:.2f} | | | |")
    print(
        "\n`*`: in the replays counted under 'over budget' the initial design (at least one more run "
        "than the free parameters) alone costs more than the budget; its fit is reported there."
    )
    if args.per_instance:
        print("\n| instance | criterion | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " |")
        print("|---|---|" + "---|" * len(FRACTIONS))
        for k in instances:
            for c in criteria:
                vals = [cell([r["r2"][i] for r in results[k][c]]) for i in range(len(FRACTIONS))]
                print(f"| {k} | {c} | " + " | ".join(vals) + " |")
    return rows


# ----------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", default=list(sb.TASKS), help="task names or parts of them")
    ap.add_argument("--instances", nargs="*", default=None, help="law instances (sl ids; default: all)")
    ap.add_argument("--criteria", nargs="*", default=list(CRITERIA), choices=CRITERIA)
    ap.add_argument("--repeats", type=int, default=10, help="seeds 0 .. repeats-1")
    ap.add_argument("--quick", action="store_true", help="data_constrained sl_1, one repeat, v and random")
    ap.add_argument("--prior", choices=("ranges", "none"), default="ranges")
    ap.add_argument("--cost-power", type=float, default=None, help="one cost exponent for v, d and basin")
    ap.add_argument("--no-timing", action="store_true", help="skip the timing against mspe.py")
    ap.add_argument("--no-mspe", action="store_true", help="time jaxlaws only")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="mspe.py's process pool")
    ap.add_argument("--per-instance", action="store_true", help="print each instance's mean ± std")
    ap.add_argument("--json", default=None, help="write every replay and cell here")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 1
        args.criteria = ["v", "random"]
        args.tasks = [args.tasks[0] if args.tasks != list(sb.TASKS) else "data_constrained"]
        args.instances = args.instances or ["sl_1"]
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    sb.install()
    t_start = time.perf_counter()
    names = [n for n in sb.TASKS if any(t in n for t in args.tasks)]
    cells, replays = [], []
    for name in names:
        tasks = [t for t in sb.load(name) if args.instances is None or t.sl_id in args.instances]
        if not tasks:
            print(f"{name}: no instance among {args.instances}")
            continue
        if not args.no_timing:
            first = tasks[0]
            timing(first, sb.law_of(first), groups_of(first), args)
        results = {}
        for task in tasks:
            law, groups = sb.law_of(task), groups_of(task)
            results[task.sl_id] = {}
            for c in args.criteria:
                t = time.perf_counter()
                got = [replay_instance(law, groups, c, seed, args) for seed in range(args.repeats)]
                results[task.sl_id][c] = got
                for r in got:
                    replays.append(dict(task=SHORT[name], instance=task.sl_id, criterion=c, **r))
                r2 = " ".join(
                    cell([r["r2"][i] for r in got]) if len(got) > 1 else f"{got[0]['r2'][i]:+.3f}"
                    for i in range(len(FRACTIONS))
                )
                at = "/".join(f"{f:.0%}" for f in FRACTIONS)
                print(
                    f"{SHORT[name]}/{task.sl_id} {c:8s} R^2 at {at}: {r2}  "
                    f"({time.perf_counter() - t:.1f} s, {len(got)} repeat(s))",
                    flush=True,
                )
        cells += summarise(name, results, args.criteria, args)
    total = time.perf_counter() - t_start
    print(f"\ntotal {total:.0f} s ({total / 60:.1f} min)")
    if args.json:
        for r in replays:
            r["picks"] = [list(p) for p in r["picks"]]
        pathlib.Path(args.json).write_text(json.dumps(dict(cells=cells, replays=replays), indent=1))


if __name__ == "__main__":
    main()
