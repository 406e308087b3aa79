"""Where a polishing step's time goes: jaxlaws' step against a plain vmapped
Levenberg-Marquardt step on the same law and table.

For one law (a ScaleBench vocabulary law on its 1080 rows by default, or a suite law) and a
batch of starts, in one process, each timed over 50 steps of a jitted loop:

- **plain LM step**: ``jax.jacfwd`` of the residuals, ``J^T J``, ``J^T r`` and a damped
  solve (``jnp.linalg.solve``) per start, vmapped: the law's arithmetic cost;
- jaxlaws' pieces: the objective with gradient and Gauss-Newton curvature
  (``problem._fgh``), the exact Hessian's second-order term (``problem._exact``), geodesic
  acceleration (``problem._accel``, one more evaluation of the residuals);
- **the engine's step**: ``solvers.advance`` on the starts, every one running, microseconds
  per start-step (blocks, state packing, the Levenberg-Marquardt update included).

    python benchmarks/profile_step.py                       # vocabulary sl_1 (ScaleBench)
    python benchmarks/profile_step.py --suite "chinchilla (Epoch's table)"
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from jaxlaws import problem, solvers  # noqa: E402
from jaxlaws.starts import make_starts  # noqa: E402

STEPS = 50


def per_start(fn, xs) -> float:
    """Microseconds per start and step of ``fn`` vmapped over the rows of ``xs``."""

    def total(x):
        return sum(jnp.sum(a) for a in jax.tree_util.tree_leaves(fn(x)))

    loop = jax.jit(
        lambda xs: jax.lax.fori_loop(0, STEPS, lambda i, xs: xs + 1e-300 * jax.vmap(total)(xs)[:, None], xs)
    )
    loop(xs).block_until_ready()
    t = time.perf_counter()
    loop(xs).block_until_ready()
    return (time.perf_counter() - t) / (STEPS * xs.shape[0]) * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", help="a law of benchmarks/suite.py instead of ScaleBench's")
    ap.add_argument("--task", default="vocab_scaling_law")
    ap.add_argument("--law", default="sl_1")
    ap.add_argument("--starts", type=int, default=64)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.suite:
        import suite

        c = suite.case(args.suite)
        law, df, kw, name = c.law, c.table(), c.fit_kwargs, c.name
    else:
        import scalebench as sb

        task = [t for t in sb.load(args.task) if t.sl_id == args.law][0]
        law, df, kw, name = sb.law_of(task), sb.table(task, 0), {"objective": "sse"}, task.task_id
    prob = problem.setup(law, df, **kw)
    lo, hi = prob.layout.box()[:2]
    xs = jnp.asarray(
        np.clip(
            make_starts(prob.law, prob.layout, args.starts, seed=0),
            lo[: prob.layout.law_size],
            hi[: prob.layout.law_size],
        )
    )
    inputs, y, w, out_w, fv, delta = prob.args()
    y_t = jnp.log(y) if prob.objective.space == "log" else y
    common = dict(law=prob.law, objective=prob.objective, layout=prob.layout)
    res = problem._residual_fn(inputs, y_t, fv, **common)

    def plain(x):
        J, r = jax.jacfwd(res)(x), res(x)
        H = J.T @ J
        return jnp.linalg.solve(H + 1e-3 * jnp.diag(jnp.diag(H)), -(J.T @ r))

    def fgh(x):
        return problem._fgh(x, inputs, y_t, w, out_w, fv, delta, **common)

    rows = [("plain LM step (jacfwd, J^T J, solve)", per_start(plain, xs))]
    rows.append(("jaxlaws objective, gradient, Gauss-Newton", per_start(lambda x: fgh(x)[:3], xs)))
    if prob.objective.polish == "newton":
        rows.append(
            (
                "  + exact Hessian",
                per_start(
                    lambda x: problem._exact(x, fgh(x)[3], inputs, y_t, w, out_w, fv, delta, **common), xs
                ),
            )
        )
    rows.append(
        (
            "  + geodesic acceleration",
            per_start(
                lambda x: problem._accel(x, x, fgh(x)[3], inputs, y_t, w, out_w, fv, delta, **common), xs
            ),
        )
    )
    # the engine's step: every start running for STEPS steps
    K, B = problem.slots_for(args.starts, prob.n_residuals, prob.layout.size)
    st = solvers.lm_init_batch(
        np.concatenate([np.asarray(xs), np.zeros((len(xs), len(prob.layout.extra)))], 1)
    )
    sl = solvers.Slots(st, np.zeros(K, np.int32), np.full(K, 10**6, np.int32), np.arange(K, dtype=np.int32))
    for accel in (False, True):
        static = dict(
            law=prob.law,
            objective=prob.objective,
            layout=prob.layout,
            block=B,
            max_steps=10**6,
            certify=prob.objective.certify,
            accelerate=accel and not prob.layout.extra,
            tabled=(False, False, False),
        )
        fn = functools.partial(problem._jitted(jax.default_backend()), **static)
        data = (inputs, y, w, out_w, fv, delta, np.float64(1e-13))
        jax.device_get(fn(sl, np.int32(STEPS), np.int32(0), *data))
        t = time.perf_counter()
        out = jax.device_get(fn(sl, np.int32(STEPS), np.int32(0), *data))
        dt = time.perf_counter() - t
        steps = int(np.sum(np.asarray(out.st.steps)))
        label = "engine step, with acceleration" if accel else "engine step, Gauss-Newton/Newton only"
        rows.append((f"{label} (blocks of {B})", dt / max(steps, 1) * 1e6))
    print(
        f"{name}: {len(df)} rows, {prob.layout.size} parameters, {args.starts} starts, "
        f"{jax.default_backend()}"
    )
    for label, us in rows:
        print(f"  {label:55s} {us:8.1f} us per start-step ({us / rows[0][1]:.2f}x plain)")


if __name__ == "__main__":
    main()
