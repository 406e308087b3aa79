"""Benchmark: the mixture of pools of repeated data that Goyal et al. 2024's data-filtering
law (``laws.FILTERING_MIXTURE``) predicts is best, by ``jaxlaws.propose_mixture`` against
what is done without it, on the same law, in one process.

Part A, Goyal et al.'s Fig. 4 (ImageNet, T-MARS; four pools of 12.8M samples in quality
order, ``laws.GOYAL_FIG4``), 50 budgets ``geomspace(16e6, 5e9)``, 512 passes summed term by
term: ``propose_mixture(starts=1)`` and ``(starts=4)`` against an exhaustive search of the
simplex grid of step 0.05 (1771 points, one jitted call vmapped over grid x budgets) and of
step 0.01 (176,851 points, jitted, in chunks of grid rows per budget; about 3 minutes on
two CPU cores; ``--no-fine-grid`` skips it).

Part B, 8, 16 and 32 pools (``--pools``), generated: pool ``i`` of ``P`` (best first) has
``b_i = linspace(-0.20, -0.08, P)[i]``, ``tau_i = linspace(5.0, 1.5, P)[i]``, shared
``n0 = 1e5 / 0.022`` and ``d = 0.1`` (as Fig. 4), and ``4e9 / P`` unique samples (quality
buckets of a 4B-sample filtered corpus); 8 budgets ``geomspace(1e8, 2e10)``, so at most
``5 P`` passes over a pool and ``max_passes_for(5 P) <= 256`` passes summed term by term.
``propose_mixture(starts=2)`` against

* the best of ``--samples`` (default 10**6) Dirichlet(1, ..., 1) mixtures per budget, what
  RegMix and olmix simulate: drawn once (seeded), evaluated at every budget in jitted chunks;
* scipy SLSQP (``ftol=1e-12``, ``maxiter=500``, the law's value and gradient from
  ``jax.jit(jax.value_and_grad(...))``) from the two starts jaxlaws solves: the uniform
  mixture and the best top-k mixture (the first ``k`` pools mixed uniformly, ``k`` the
  argmin of the law over ``k``); the better of the two per budget.

Every objective compared is the law evaluated (``laws.filtering_mixture``) at the weights
each method returns. jaxlaws' cold time is its first call with those shapes (compile
included); warm times are the best of 3 after a warm-up; the 0.01 grid, the sampler and
SLSQP run once, compiled beforehand. The full run takes about half an hour on two CPU cores,
most of it the 10**6 samples on 32 pools (chunks of 8192, to keep memory under ~2 GB).

    python benchmarks/bench_mixture.py                                      # full (long)
    python benchmarks/bench_mixture.py --pools 8 --samples 20000 --no-fine-grid   # quick
"""

from __future__ import annotations

import os

# SLSQP's small dense solves call OpenBLAS; its threads, spinning against XLA's thread pool in
# the same process, slowed SLSQP on 32 pools ~100x on two cores. One thread, unless set.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

import jaxlaws  # noqa: E402
from jaxlaws import laws  # noqa: E402
from jaxlaws.decide import simplex_grid  # noqa: E402
from jaxlaws.laws.filtering import max_passes_for  # noqa: E402

# Part A: Goyal et al. Fig. 4, four pools of 12.8M samples (LAWS.md section 3)
FIG4 = laws.FilteringMixtureParams(*(jnp.asarray(v, jnp.float64) for v in laws.GOYAL_FIG4))
FIG4_SIZES = np.full(4, 12.8e6)
FIG4_BUDGETS = np.geomspace(16e6, 5e9, 50)
FIG4_PASSES = 512

# Part B: generated pools
CORPUS = 4e9  # unique samples over all pools
B_BUDGETS = np.geomspace(1e8, 2e10, 8)
B_STARTS = 2
CHUNK = 20_000  # Dirichlet samples per jitted call
MAX_ELEMENTS = 2**26  # at most chunk * pools * max_passes terms per budget in one call (memory)
GRID_BATCH = 8192  # grid rows per vmapped batch of the 0.01 grid


def generated(P: int):
    """The Part B problem with ``P`` pools: parameters, pool sizes, ``max_passes``."""
    params = laws.FilteringMixtureParams(
        b=jnp.linspace(-0.20, -0.08, P),
        tau=jnp.linspace(5.0, 1.5, P),
        n0=jnp.asarray(1e5 / 0.022),
        d=jnp.asarray(0.1),
    )
    sizes = np.full(P, CORPUS / P)
    return params, sizes, max_passes_for(B_BUDGETS.max() / sizes.min())


def block(out):
    return jax.block_until_ready(jax.tree_util.tree_leaves(out))


def best_of(fn, repeats=3):
    """``fn()`` and its best wall time over ``repeats`` runs (after a warm-up)."""
    block(fn())
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        block(out)
        best = min(best, time.perf_counter() - t)
    return out, best


def once(fn):
    t = time.perf_counter()
    out = fn()
    block(out)
    return out, time.perf_counter() - t


def law_at(params, sizes, max_passes):
    """The law as a function of (budget, weights), jitted and vmapped over rows of both."""
    sizes = jnp.asarray(sizes, jnp.float64)

    def f(n, w):
        return laws.filtering_mixture(params, n, sizes, w, max_passes=max_passes)

    return f, jax.jit(jax.vmap(f))


def jaxlaws_run(law, params, budgets, sizes, starts):
    """``propose_mixture`` cold (first call, compile included) and warm (best of 3)."""

    def call():
        return jaxlaws.propose_mixture(law, params, budgets=budgets, unique_tokens=sizes, starts=starts)

    prop, cold = once(call)
    _, warm = best_of(call)
    return prop, cold, warm


def engine_summary(prop):
    st = Counter(prop.status[0].tolist())
    gain = prop.topk_gain[0]
    return (
        f"status {dict(st)}, max steps {int(prop.steps[0].max())}, max kkt {float(prop.kkt[0].max()):.1e}, "
        f"gain over best top-k min {gain.min():+.1e} median {np.median(gain):+.1e}, "
        f"on a whole pass {int((prop.bound[0] == 3).any(axis=-1).sum())}/{len(gain)}"
    )


def header():
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, python {platform.python_version()}")


# ----------------------------------------------------------------------------------------
# Part A
# ----------------------------------------------------------------------------------------


def part_a(fine: bool):
    law = laws.FILTERING_MIXTURE.with_options(max_passes=FIG4_PASSES)
    B = len(FIG4_BUDGETS)
    print(
        f"\nPart A: Goyal et al. Fig. 4, 4 pools of 12.8M samples, {B} budgets 16M..5B samples, "
        f"max_passes {FIG4_PASSES}"
    )
    # jaxlaws first: its cold time is the first compilation in the process
    runs = {s: jaxlaws_run(law, FIG4, FIG4_BUDGETS, FIG4_SIZES, s) for s in (1, 4)}
    f, f_rows = law_at(FIG4, FIG4_SIZES, FIG4_PASSES)
    budgets = jnp.asarray(FIG4_BUDGETS)

    coarse = jnp.asarray(simplex_grid(4, 0.05))

    @jax.jit
    def coarse_search(n):
        err = jax.vmap(lambda nb: jax.vmap(lambda w: f(nb, w))(coarse))(n)
        return err.min(axis=1)

    grids = {}
    err, t = best_of(lambda: coarse_search(budgets))
    grids["0.05"] = (len(coarse), np.asarray(err), t, "best of 3")
    if fine:
        grid = jnp.asarray(simplex_grid(4, 0.01))

        @jax.jit
        def fine_search(n):
            # per budget, the grid in vmapped batches of rows: memory stays ~0.1 GB
            return jax.lax.map(
                lambda nb: jax.lax.map(lambda w: f(nb, w), grid, batch_size=GRID_BATCH).min(), n
            )

        fine_search.lower(budgets).compile()
        err, t = once(lambda: fine_search(budgets))
        grids["0.01"] = (len(grid), np.asarray(err), t, "one run")

    print(f"{'method':<26} {'time s':>9}  {'/ jaxlaws s=1':>13} {'/ jaxlaws s=4':>13}")
    for s, (_, cold, warm) in runs.items():
        print(f"{f'jaxlaws starts={s} cold':<26} {cold:>9.3f}  (first call, compile included)")
        print(f"{f'jaxlaws starts={s} warm':<26} {warm:>9.3f}  (best of 3)")
    for step, (pts, _, t, how) in grids.items():
        r1, r4 = t / runs[1][2], t / runs[4][2]
        print(f"{f'grid {step} ({pts} pts)':<26} {t:>9.3f}  {r1:>12.1f}x {r4:>12.1f}x  ({how})")
    if not fine:
        print("(0.01 grid skipped: --no-fine-grid)")

    print(f"{'jaxlaws - grid error':<26} {'max':>9} {'median':>9}  {'<= grid+1e-12':>13}")
    for s, (prop, _, _) in runs.items():
        ours = np.asarray(f_rows(budgets, jnp.asarray(prop.weights[0])))
        for step, (_, gerr, _, _) in grids.items():
            gap = ours - gerr
            ok = int((gap <= 1e-12).sum())
            print(
                f"{f'starts={s} vs {step} grid':<26} {gap.max():>+9.1e} {np.median(gap):>+9.1e}  {ok:>8}/{B}"
            )
    for s, (prop, _, _) in runs.items():
        ours = np.asarray(f_rows(budgets, jnp.asarray(prop.weights[0])))
        drift = np.abs(ours - prop.objective[0]).max()
        print(f"jaxlaws starts={s}: {engine_summary(prop)}; |objective - law at weights| <= {drift:.0e}")
        for b in np.flatnonzero(prop.status[0] != "converged"):
            print(
                f"  budget {FIG4_BUDGETS[b]:.3g}: status {prop.status[0, b]}, kkt {float(prop.kkt[0, b]):.1e}"
            )


# ----------------------------------------------------------------------------------------
# Part B
# ----------------------------------------------------------------------------------------


def sampler(f, P, max_passes, samples, seed=0):
    """Best of ``samples`` Dirichlet(1, ..., 1) mixtures per budget, in jitted chunks:
    ``(best error (B,), best weights (B, P), seconds, chunk)``."""
    W = np.random.default_rng(seed).dirichlet(np.ones(P), samples)
    chunk = int(min(CHUNK, samples, max(MAX_ELEMENTS // (P * max_passes), 256)))
    n_chunks = -(-samples // chunk)
    W = np.concatenate([W, np.repeat(W[-1:], n_chunks * chunk - samples, axis=0)])  # pad: one shape
    budgets = jnp.asarray(B_BUDGETS)

    @jax.jit
    def chunk_best(w, n):
        err = jax.lax.map(lambda nb: jax.vmap(lambda x: f(nb, x))(w), n)  # (B, chunk)
        return err.min(axis=1), err.argmin(axis=1)

    block(chunk_best(jnp.asarray(W[:chunk]), budgets))  # compile
    t = time.perf_counter()
    best = np.full(len(B_BUDGETS), np.inf)
    arg = np.zeros(len(B_BUDGETS), int)
    for c in range(n_chunks):
        e, i = (np.asarray(a) for a in chunk_best(jnp.asarray(W[c * chunk : (c + 1) * chunk]), budgets))
        better = e < best
        best = np.where(better, e, best)
        arg = np.where(better, c * chunk + i, arg)
    return best, W[arg], time.perf_counter() - t, chunk


def slsqp(f, P, starts):
    """SLSQP per budget from each start in ``starts`` (B, S, P): ``(best weights (B, P),
    seconds, iterations, failed solves)``."""
    vg = jax.jit(jax.value_and_grad(f, argnums=1))
    block(vg(jnp.asarray(B_BUDGETS[0]), jnp.asarray(starts[0, 0])))  # compile

    cons = {"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones_like(w)}
    out = np.zeros((len(B_BUDGETS), P))
    iters = failed = 0
    t = time.perf_counter()
    for b, n in enumerate(B_BUDGETS):
        nb = jnp.asarray(n)

        def fun(w, nb=nb):
            v, g = vg(nb, jnp.asarray(w))
            return float(v), np.asarray(g, dtype=np.float64)

        best = (np.inf, None)
        for x0 in starts[b]:
            res = minimize(
                fun,
                x0,
                jac=True,
                method="SLSQP",
                bounds=[(0.0, 1.0)] * P,
                constraints=cons,
                options={"ftol": 1e-12, "maxiter": 500},
            )
            iters += int(res.nit)
            failed += int(not res.success)
            if res.fun < best[0]:
                best = (res.fun, res.x)
        out[b] = best[1]
    return out, time.perf_counter() - t, iters, failed


def part_b(pools, samples):
    print(
        f"\nPart B: generated pools, P = {', '.join(map(str, pools))}: pool i (best first) has "
        "b_i = linspace(-0.20, -0.08, P)[i], tau_i = linspace(5.0, 1.5, P)[i], n0 = 1e5/0.022, d = 0.1, "
        f"{CORPUS:.0e}/P unique samples; {len(B_BUDGETS)} budgets geomspace(1e8, 2e10); "
        f"jaxlaws starts={B_STARTS}"
    )
    print(
        f"sampler: best of {samples} Dirichlet(1,...,1) mixtures per budget (seeded, drawn once); "
        "SLSQP (ftol 1e-12, maxiter 500, jitted jax value_and_grad) from the uniform and the best "
        "top-k mixture (first k pools uniform, k = argmin of the law), better of the two"
    )
    rows = []
    for P in pools:
        params, sizes, K = generated(P)
        law = laws.FILTERING_MIXTURE.with_options(max_passes=K)
        prop, cold, warm = jaxlaws_run(law, params, B_BUDGETS, sizes, B_STARTS)
        f, f_rows = law_at(params, sizes, K)
        budgets = jnp.asarray(B_BUDGETS)
        ours = np.asarray(f_rows(budgets, jnp.asarray(prop.weights[0])))

        s_err, _, t_s, chunk = sampler(f, P, K, samples)

        topk = np.tril(np.ones((P, P))) / np.arange(1, P + 1)[:, None]  # row k-1: first k pools uniform
        nb_rows = jnp.repeat(budgets, P)
        topk_err = np.asarray(f_rows(nb_rows, jnp.tile(jnp.asarray(topk), (len(B_BUDGETS), 1)))).reshape(
            -1, P
        )
        best_k = topk_err.argmin(axis=1)
        x0 = np.stack([np.broadcast_to(np.full(P, 1.0 / P), (len(B_BUDGETS), P)), topk[best_k]], axis=1)
        w_q, t_q, iters, failed = slsqp(f, P, x0)
        w_q = np.clip(w_q, 0.0, None)
        q_err = np.asarray(f_rows(budgets, jnp.asarray(w_q / w_q.sum(axis=1, keepdims=True))))

        gap_s, gap_q = ours - s_err, ours - q_err
        rows.append(
            dict(
                P=P,
                K=K,
                passes=B_BUDGETS.max() / sizes.min(),
                cold=cold,
                warm=warm,
                t_s=t_s,
                chunk=chunk,
                t_q=t_q,
                iters=iters,
                failed=failed,
                gap_s=gap_s,
                gap_q=gap_q,
                ok_q=int((gap_q <= 1e-12 * np.abs(q_err)).sum()),
                q_err=q_err,
                prop=prop,
                k_agree=int((best_k + 1 == prop.best_k[0]).sum()),
            )
        )
        r = rows[-1]
        print(
            f"  P={P}: max passes {r['passes']:.0f} -> max_passes {K}; sampler chunks of {chunk}; "
            f"SLSQP {iters} iterations, {failed} of {2 * len(B_BUDGETS)} solves not successful; "
            f"best k {(best_k + 1).tolist()} (jaxlaws' best_k agrees at {r['k_agree']}/{len(B_BUDGETS)})"
        )
    nb = len(B_BUDGETS)
    print(
        f"{'P':>3} {'jax cold':>9} {'jax warm':>9} {'sampler s':>10} {'SLSQP s':>8} {'smp/jax':>8} "
        f"{'SLSQP/jax':>9} | {'jax-smp max':>11} {'<=0':>5} | {'jax-SLSQP max':>13} {'<=1e-12r':>8} | conv"
    )
    for r in rows:
        conv = int((r["prop"].status[0] == "converged").sum())
        print(
            f"{r['P']:>3} {r['cold']:>9.3f} {r['warm']:>9.3f} {r['t_s']:>10.2f} {r['t_q']:>8.2f} "
            f"{r['t_s'] / r['warm']:>7.0f}x {r['t_q'] / r['warm']:>8.1f}x | {r['gap_s'].max():>+11.1e} "
            f"{int((r['gap_s'] <= 0).sum()):>2}/{nb} | {r['gap_q'].max():>+13.1e} {r['ok_q']:>5}/{nb} | "
            f"{conv}/{nb}"
        )
    for r in rows:
        print(f"jaxlaws P={r['P']}: {engine_summary(r['prop'])}")
        st = r["prop"].status[0]
        for b in np.flatnonzero((st != "converged") | (r["gap_q"] > 1e-12 * np.abs(r["q_err"]))):
            print(
                f"  budget {B_BUDGETS[b]:.3g}: status {st[b]}, steps {int(r['prop'].steps[0, b])}, "
                f"kkt {float(r['prop'].kkt[0, b]):.1e}, jaxlaws - SLSQP {r['gap_q'][b]:+.1e}, "
                f"passes {np.round(r['prop'].epochs[0, b], 3).tolist()}"
            )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-fine-grid", action="store_true", help="skip the 0.01 grid of Part A (minutes)")
    ap.add_argument("--pools", default="8,16,32", help="pool counts of Part B, comma-separated")
    ap.add_argument("--samples", type=int, default=1_000_000, help="Dirichlet samples per budget (Part B)")
    args = ap.parse_args()
    pools = [int(p) for p in args.pools.split(",") if p.strip()]
    header()
    print(
        f"scipy {scipy.__version__}, jaxlaws {getattr(jaxlaws, '__version__', '?')}, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    part_a(fine=not args.no_fine_grid)
    part_b(pools, args.samples)


if __name__ == "__main__":
    main()
