"""One table of laws drives the invariants every law must satisfy.

For each case: the law matches an independent NumPy reference written from the paper's
formula, ``jit`` equals eager, ``vmap`` equals a Python loop, ``jax.grad`` matches central
finite differences, and float64 is preserved.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlaws import laws

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite  # noqa: E402


class Case(NamedTuple):
    id: str
    fn: object  # callable(params, *inputs)
    params: NamedTuple
    inputs: tuple
    reference: object  # numpy callable(params, *inputs) -> array


# --- NumPy references, written from the papers' formulas (product forms, explicit loops) ---


def np_chinchilla(p, N, D):
    return p.E + p.A / N**p.alpha + p.B / D**p.beta


def np_chinchilla_log(lp, N, D):
    return np.log(np.exp(lp.e) + np.exp(lp.a) / N**lp.alpha + np.exp(lp.b) / D**lp.beta)


def np_data_constrained(p, N, D, U):
    G = (p.alpha * p.A / (p.beta * p.B)) ** (1 / (p.alpha + p.beta))
    U_N = np.minimum(G * (U * G) ** (p.beta / p.alpha), N)
    R_D = np.maximum(D / U - 1, 0)
    R_N = np.maximum(N / U_N - 1, 0)
    Dp = U + U * p.R_D_star * (1 - np.exp(-R_D / p.R_D_star))
    Np = U_N + U_N * p.R_N_star * (1 - np.exp(-R_N / p.R_N_star))
    return p.E + p.A / Np**p.alpha + p.B / Dp**p.beta


def _np_filter_one(a, b, tau, d, n, N, form):
    """Goyal Eq. 3 as a product over passes, boundaries n_j = j N clamped at n."""
    k = 0
    prod = 1.0
    first = a * min(n, N) ** b
    while (k + 1) * N < n:
        k += 1
        b_k = b * 0.5 ** (k / tau)
        prod *= (min(n, (k + 1) * N) / (k * N)) ** b_k
    return first * prod + d if form == "paper" else (first + d) * prod


def np_filtering(p, n, N, form="paper"):
    return np.array(
        [_np_filter_one(p.a, p.b, p.tau, p.d, float(ni), float(N), form) for ni in np.atleast_1d(n)]
    )


def np_mixture(p, n, sizes, weights):
    """The LAWS.md section 3 formula, pass by pass, pool by pool."""
    out = []
    for ni in np.atleast_1d(n):
        simpson = sum(w * w / min(Ni, w * ni) for w, Ni in zip(weights, sizes) if w > 0)
        n_eff = 1.0 / simpson
        total = 0.0
        for b, tau, Ni, w in zip(p.b, p.tau, sizes, weights):
            if w == 0:
                continue
            tau_hat = tau * n_eff / Ni
            L = Ni / w  # pass length of this pool in total samples
            s = math.log(min(ni, L) / p.n0)
            j = 1
            while j * L < ni:
                s += 0.5 ** (j / tau_hat) * (math.log(min(ni, (j + 1) * L)) - math.log(j * L))
                j += 1
            total += w * b * s
        out.append(math.exp(total) + p.d)
    return np.array(out)


def np_mixing_exp(p, r):
    """Ye et al. Eq. 6, output by output: c_i + exp(sum_j t_ij r_j) (k_i absorbed into t)."""
    out = np.empty((r.shape[0], p.c.shape[0]))
    for n in range(r.shape[0]):
        for i in range(p.c.shape[0]):
            out[n, i] = p.c[i] + math.exp(sum(p.t[i, j] * r[n, j] for j in range(r.shape[1])))
    return out


def np_bimix(p, r, s):
    """BiMix: A_i / r_i^alpha_i * (B_i / s^beta_i + C_i), with A_i = 1 (absorbed)."""
    return np.array(
        [
            [(p.B[i] / s[n] ** p.beta[i] + p.C[i]) / r[n, i] ** p.alpha[i] for i in range(r.shape[1])]
            for n in range(len(s))
        ]
    )


def np_mixture_additive(p, N, D, h):
    """Shukor et al.'s additive law: E + A/N^alpha + B/D^beta + 1 / sum_j C_j h_j^gamma_j."""
    out = np.empty((len(N), p.E.shape[0]))
    for n in range(len(N)):
        for i in range(p.E.shape[0]):
            mix = sum(p.C[i, j] * h[n, j] ** p.gamma[i, j] for j in range(h.shape[1]) if h[n, j] > 0)
            out[n, i] = p.E[i] + p.A[i] / N[n] ** p.alpha[i] + p.B[i] / D[n] ** p.beta[i] + 1.0 / mix
    return out


f64 = np.float64
CH = laws.ChinchillaParams(E=f64(1.8172), A=f64(477.84), B=f64(2143.9), alpha=f64(0.3473), beta=f64(0.3672))
GOYAL = laws.params_from_reference_code(0.025, -0.16, 6.7272727272727275, 0.1)
GOYAL_NP = laws.FilteringParams(*(float(x) for x in GOYAL))
MIX = laws.FilteringMixtureParams(
    b=np.array([-0.18, -0.15, -0.12, -0.10]),
    tau=np.array([4.36, 4.27, 3.00, 1.55]),
    n0=f64(1e5 / 0.022),
    d=f64(0.1),
)
SIZES = np.full(4, 12.8e6)
W = np.array([0.4, 0.3, 0.2, 0.1])
R3 = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]])

CASES = [
    Case(
        "chinchilla",
        laws.chinchilla,
        CH,
        (np.geomspace(1e7, 1e11, 7), np.geomspace(1e9, 1e13, 7)),
        np_chinchilla,
    ),
    Case(
        "chinchilla_log",
        laws.chinchilla_log,
        CH.to_log(),
        (np.geomspace(1e7, 1e11, 7), np.geomspace(1e9, 1e13, 7)),
        np_chinchilla_log,
    ),
    Case(
        "data_constrained",
        laws.data_constrained,
        laws.DataConstrainedParams(*(f64(x) for x in laws.MUENNIGHOFF_C4)),
        # 1 epoch (R_D = 0), several epochs, N below and above U_N
        (
            np.array([1e8, 1e9, 6.34e9, 8.67e9, 2e10]),
            np.array([1e9, 2e10, 242e9, 178e9, 4e11]),
            np.array([1e9, 5e9, 25e9, 25e9, 1e10]),
        ),
        np_data_constrained,
    ),
    Case(
        "filtering_paper",
        laws.filtering,
        GOYAL,
        # below one pass, a pass boundary, fractional and many passes
        (np.array([6.4e6, 12.8e6, 19.2e6, 64.1e6, 640e6]), f64(12.8e6)),
        lambda p, n, N: np_filtering(GOYAL_NP, n, N, "paper"),
    ),
    Case(
        "filtering_code",
        lambda p, n, N: laws.filtering(p, n, N, form="reference_code"),
        GOYAL,
        (np.array([6.4e6, 12.8e6, 19.2e6, 64.1e6, 640e6]), f64(12.8e6)),
        lambda p, n, N: np_filtering(GOYAL_NP, n, N, "reference_code"),
    ),
    Case(
        "filtering_mixture",
        laws.filtering_mixture,
        MIX,
        (np.array([8e6, 30e6, 100e6, 700e6, 5e9]), SIZES, W),
        np_mixture,
    ),
    Case(
        "mixing_exp",
        laws.mixing_exp,
        laws.MixingExpParams(c=np.array([1.5, 2.0]), t=np.array([[-2.0, -0.5, 0.3], [0.2, -1.5, -0.6]])),
        (R3,),  # zeros and a vertex
        np_mixing_exp,
    ),
    Case(
        "bimix",
        laws.bimix,
        laws.BiMixParams(
            alpha=np.array([0.12, 0.25, 0.08]),
            B=np.array([6.0, 9.0, 4.0]),
            beta=np.array([0.35, 0.45, 0.3]),
            C=np.array([1.9, 1.2, 2.4]),
        ),
        (np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.05, 0.05, 0.9]]), np.array([1e3, 5e3, 2e4])),
        np_bimix,
    ),
    Case(
        "mixture_additive",
        laws.mixture_additive,
        suite.ADDITIVE_TRUTH,
        (
            np.geomspace(1e8, 1e9, 4),
            np.geomspace(2e9, 5e10, 4),
            np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]),
        ),
        np_mixture_additive,
    ),
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request):
    return request.param


def test_matches_numpy_reference(case):
    got = np.asarray(case.fn(case.params, *case.inputs))
    want = case.reference(case.params, *case.inputs)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_float64_preserved(case):
    out = case.fn(case.params, *case.inputs)
    assert out.dtype == jnp.float64
    grads = jax.grad(lambda p: jnp.sum(case.fn(p, *case.inputs)))(case.params)
    for g in grads:
        assert jnp.asarray(g).dtype == jnp.float64


def test_jit_equals_eager(case):
    eager = case.fn(case.params, *case.inputs)
    jitted = jax.jit(case.fn)(case.params, *case.inputs)
    np.testing.assert_allclose(jitted, eager, rtol=1e-14)


def test_vmap_equals_loop(case):
    """Batch over a stack of parameter sets (the multi-start / bootstrap axis)."""
    scales = np.array([0.9, 1.0, 1.1])
    batch = jax.tree_util.tree_map(lambda x: np.stack([x * s for s in scales]), case.params)
    batched = jax.vmap(lambda p: case.fn(p, *case.inputs))(batch)
    for i in range(len(scales)):
        p_i = jax.tree_util.tree_map(lambda x, i=i: x[i], batch)
        np.testing.assert_allclose(batched[i], case.fn(p_i, *case.inputs), rtol=1e-14)


def test_grad_matches_central_differences(case):
    """d(sum of predictions)/d(param) against central differences in each coordinate."""
    f = lambda p: jnp.sum(case.fn(p, *case.inputs))  # noqa: E731
    grads = jax.grad(f)(case.params)
    flat, unravel = jax.flatten_util.ravel_pytree(case.params)
    gflat, _ = jax.flatten_util.ravel_pytree(grads)
    assert np.all(np.isfinite(gflat))
    for k in range(flat.size):
        h = 1e-6 * max(abs(float(flat[k])), 1e-3)
        e = np.zeros(flat.size)
        e[k] = h
        fd = (f(unravel(flat + e)) - f(unravel(flat - e))) / (2 * h)
        np.testing.assert_allclose(gflat[k], fd, rtol=2e-5, atol=1e-9 * max(1.0, abs(float(fd))))


def test_every_registered_law_is_in_the_table():
    covered = {
        "chinchilla",
        "data_constrained",
        "filtering",
        "filtering_mixture",
        "mixing_exp",
        "bimix",
        "mixture_additive",
    }
    assert set(laws.REGISTRY) == covered
