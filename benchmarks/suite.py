"""The suite of laws the engine is judged on: the shapes users fit, written as users write them.

Each case is a law (a built-in one, or a ``jaxlaws.Law`` written in a few lines with its
constraints, input domains and start ranges) and a table: generated with seeded noise at
realistic sizes, or a public table bundled with jaxlaws. ``benchmarks/bench_laws.py`` times
jaxlaws against scipy on every case; ``tests/test_suite.py`` checks that jaxlaws' objective
is no higher than scipy's at tight tolerances from the same starts.

Public tables (``jaxlaws.datasets``): ``datablations-c4`` (Apache-2.0, Muennighoff et al.
2023), ``gadre-overtraining`` (MIT, Gadre et al. 2024) and ``chinchilla-epoch`` (Epoch AI's
reading of Hoffmann et al.'s figure; no licence stated, numbers only); the swarm
``olmix-dclm`` (``jaxlaws.swarm``, Apache-2.0, allenai/olmix).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

import jaxlaws
from jaxlaws import constraints as C

__all__ = ["Case", "CASES", "case"]


@dataclasses.dataclass(frozen=True)
class Case:
    """A law and its table, with the keyword arguments of ``jaxlaws.fit``."""

    name: str
    law: Any
    data: Any  # () -> DataFrame or mapping
    fit_kwargs: dict
    source: str

    def table(self):
        return self.data()


# --- a single power law with offset on 8 points -----------------------------------------


class PowerParams(NamedTuple):
    E: Any
    A: Any
    alpha: Any


POWER = jaxlaws.Law(
    name="power_offset",
    fn=lambda p, x: p.E + p.A * x ** (-p.alpha),
    params=PowerParams,
    inputs=("x",),
    target="y",
    constraints=PowerParams(
        E=C.nonnegative.within(0.0, 5.0), A=C.positive.within(1.0, 1e5), alpha=C.positive.within(0.05, 1.0)
    ),
)


def power_data():
    rng = np.random.default_rng(8)
    x = np.geomspace(1e7, 1e10, 8)
    y = 1.9 + 420.0 * x**-0.33 * np.exp(rng.normal(0, 0.01, x.size))
    return pd.DataFrame({"x": x, "y": y})


# --- Kaplan et al. 2020: L(N, D) = ((N_c / N)^(a_N / a_D) + D_c / D)^a_D ------------------


class KaplanParams(NamedTuple):
    Nc: Any
    Dc: Any
    aN: Any
    aD: Any


KAPLAN = jaxlaws.Law(
    name="kaplan",
    fn=lambda p, N, D: ((p.Nc / N) ** (p.aN / p.aD) + p.Dc / D) ** p.aD,
    params=KaplanParams,
    inputs=("N", "D"),
    target="loss",
    constraints=KaplanParams(
        Nc=C.positive.within(1e10, 1e16),
        Dc=C.positive.within(1e10, 1e16),
        aN=C.positive.within(0.03, 0.3),
        aD=C.positive.within(0.03, 0.3),
    ),
)


def gadre_c4():
    df = jaxlaws.datasets.load("gadre-overtraining")
    return df[df.dataset == "c4_original"].reset_index(drop=True)


# --- Tao et al. 2024: unigram-normalised loss with vocabulary parameters ------------------


class VocabParams(NamedTuple):
    E: Any
    A1: Any
    alpha1: Any
    A2: Any
    alpha2: Any
    B: Any
    beta: Any


def vocab_law(p, Nnv, Nv, D):
    """``L_u = -E + A1 / N_nv^alpha1 + A2 / N_v^alpha2 + B / D^beta`` (N in millions, D in
    billions of tokens; L_u is negative)."""
    return -p.E + p.A1 / Nnv**p.alpha1 + p.A2 / Nv**p.alpha2 + p.B / D**p.beta


VOCAB = jaxlaws.Law(
    name="vocab",
    fn=vocab_law,
    params=VocabParams,
    inputs=("Nnv", "Nv", "D"),
    target="Lu",
    constraints=VocabParams(
        E=C.positive.within(1.0, 10.0),
        A1=C.positive.within(0.1, 10.0),
        alpha1=C.positive.within(0.1, 1.0),
        A2=C.positive.within(0.01, 10.0),
        alpha2=C.positive.within(0.1, 1.0),
        B=C.positive.within(0.1, 10.0),
        beta=C.positive.within(0.1, 1.0),
    ),
)

#: Tao et al.'s published fit (sail-sg/scaling-with-vocab, optimal_Nv_predict.py), with
#: alpha1 = beta as they constrained it.
TAO_2024 = VocabParams(
    E=5.5327846803337435,
    A1=1.8313851559554126,
    alpha1=0.44660634152009615,
    A2=0.19584238398665638,
    alpha2=0.6707374679896795,
    B=2.1241123120064955,
    beta=0.44660634152009615,
)


def vocab_data(n=300):
    rng = np.random.default_rng(7)
    V = rng.choice([4096, 6144, 8192, 10240, 16384, 24576, 32768, 48128, 64512, 96256], n)
    k = rng.integers(0, 6, n)
    Nnv = np.geomspace(33.2, 1130.0, 6)[k]  # millions
    d = np.array([512, 768, 1024, 1280, 1536, 2048])[k]
    D = np.exp(rng.uniform(np.log(0.2), np.log(150.0), n))  # billions of tokens
    Nv = V * d / 1e6
    Lu = np.asarray(vocab_law(TAO_2024, Nnv, Nv, D)) + rng.normal(0, 0.01, n)
    return pd.DataFrame({"Nnv": Nnv, "Nv": Nv, "D": D, "Lu": Lu})


# --- Farseer (Li et al. 2025): stretched exponentials in N -------------------------------


class FarseerParams(NamedTuple):
    a1: Any
    b1: Any
    alpha: Any
    a2: Any
    b2: Any
    beta: Any
    a3: Any
    b3: Any
    gamma: Any


def farseer(p, N, D):
    """``L = exp(a3 N^gamma + b3) + exp(a2 N^beta + b2) D^(-exp(a1 N^alpha + b1))``."""
    return jnp.exp(p.a3 * N**p.gamma + p.b3) + jnp.exp(p.a2 * N**p.beta + p.b2) * D ** (
        -jnp.exp(p.a1 * N**p.alpha + p.b1)
    )


FARSEER = jaxlaws.Law(
    name="farseer",
    fn=farseer,
    params=FarseerParams,
    inputs=("N", "D"),
    target="bpc",
    constraints=FarseerParams(
        a1=C.real.within(-0.5, 0.5),
        b1=C.real.within(-1.0, 1.0),
        alpha=C.real.within(0.05, 0.3),
        a2=C.real.within(10.0, 200.0),
        b2=C.real.within(-10.0, 0.0),
        beta=C.real.within(-0.3, -0.02),
        a3=C.real.within(-0.1, 0.1),
        b3=C.real.within(-1.0, 1.0),
        gamma=C.real.within(0.05, 0.3),
    ),
)

#: Li et al. 2025, Eq. 15.
FARSEER_2025 = FarseerParams(
    a1=-0.124, b1=0.424, alpha=0.123, a2=88.01, b2=-6.287, beta=-0.1, a3=-0.021, b3=-0.091, gamma=0.169
)


def farseer_data():
    rng = np.random.default_rng(5)
    N = np.geomspace(2.01e8, 6.37e9, 12)
    D = np.geomspace(1e9, 5.12e11, 10)
    NN, DD = (a.ravel() for a in np.meshgrid(N, D, indexing="ij"))
    bpc = np.asarray(farseer(FARSEER_2025, NN, DD)) * np.exp(rng.normal(0, 0.003, NN.size))
    return pd.DataFrame({"N": NN, "D": DD, "bpc": bpc})


# --- Ye et al. 2024: exp-linear data-mixing law, 5 domains, 5 outputs ---------------------


class MixingParams(NamedTuple):
    c: Any  # (outputs,)
    t: Any  # (outputs, domains)


MIXING = jaxlaws.Law(
    name="mixing_exp",
    # L_i = c_i + exp(sum_j t_ij r_j): Ye et al.'s k_i is absorbed into t (sum_j r_j = 1)
    fn=lambda p, r: p.c + jnp.exp(r @ p.t.T),
    params=MixingParams,
    inputs=("r",),
    target="loss",
    domains={"r": "simplex"},
    shapes={"c": ("outputs",), "t": ("outputs", "r")},
    constraints=MixingParams(c=C.positive.within(0.5, 5.0), t=C.real.within(-10.0, 5.0)),
)

#: Ye et al.'s fit for 5 Pile domains (``jaxlaws.laws.YE_PILE5``, from yegcjs/mixinglaws),
#: in this law's identifiable form: t + log k.
YE_2024 = MixingParams(
    c=np.exp(np.asarray(jaxlaws.laws.YE_PILE5["log_c"])),
    t=np.asarray(jaxlaws.laws.YE_PILE5["t"]) + np.asarray(jaxlaws.laws.YE_PILE5["log_k"])[:, None],
)
DOMAINS = jaxlaws.laws.YE_PILE5["domains"]


def mixing_data(n=40):
    """Mixtures in multiples of 1/32 with 1 to 5 domains present (zeros elsewhere)."""
    rng = np.random.default_rng(24)
    rows = []
    while len(rows) < n:
        k = rng.integers(1, 6)
        present = rng.choice(5, k, replace=False)
        counts = np.zeros(5)
        counts[present] = rng.multinomial(32 - k, np.full(k, 1 / k)) + 1
        rows.append(counts / 32)
    r = np.array(rows)
    loss = np.asarray(YE_2024.c + np.exp(r @ YE_2024.t.T)) * np.exp(rng.normal(0, 0.003, (n, 5)))
    table = {f"r_{d}": r[:, j] for j, d in enumerate(DOMAINS)}
    table.update({f"loss_{d}": loss[:, j] for j, d in enumerate(DOMAINS)})
    return pd.DataFrame(table)


# --- Ge et al. 2024: BiMix, 4 domains, proportion and steps -------------------------------

BIMIX_TRUTH = jaxlaws.laws.BiMixParams(
    alpha=np.array([0.12, 0.25, 0.08, 0.18]),
    B=np.array([6.0, 9.0, 4.0, 7.5]),
    beta=np.array([0.35, 0.45, 0.3, 0.4]),
    C=np.array([1.9, 1.2, 2.4, 1.6]),
)
BIMIX_DOMAINS = ("web", "code", "books", "papers")


def bimix_data(n_mix=20):
    """20 mixtures (every proportion at least 0.02) each evaluated at 5 step counts."""
    rng = np.random.default_rng(31)
    r = rng.dirichlet(np.full(4, 2.0), n_mix)
    r = (r + 0.02) / (1 + 0.08)
    steps = np.array([1e3, 2e3, 5e3, 1e4, 2e4])
    R, S = np.repeat(r, steps.size, axis=0), np.tile(steps, n_mix)
    loss = np.asarray(jaxlaws.laws.bimix(BIMIX_TRUTH, R, S)) * np.exp(rng.normal(0, 0.003, R.shape))
    table = {f"r_{d}": R[:, j] for j, d in enumerate(BIMIX_DOMAINS)} | {"s": S}
    table.update({f"loss_{d}": loss[:, j] for j, d in enumerate(BIMIX_DOMAINS)})
    return pd.DataFrame(table)


# --- Shukor et al. 2025: additive law in N, D and the mixture, 3 domains, 2 targets ------

ADDITIVE_TRUTH = jaxlaws.laws.MixtureAdditiveParams(
    E=np.array([1.8, 2.1]),
    A=np.array([400.0, 300.0]),
    alpha=np.array([0.32, 0.3]),
    B=np.array([900.0, 1200.0]),
    beta=np.array([0.3, 0.33]),
    C=np.array([[2.0, 1.0, 0.5], [0.6, 2.5, 0.8]]),
    gamma=np.array([[0.4, 0.3, 0.2], [0.25, 0.45, 0.3]]),
)


def additive_data():
    """3 model sizes x 3 token counts x 10 mixtures (some with a domain at zero)."""
    rng = np.random.default_rng(32)
    h = rng.dirichlet(np.ones(3), 10)
    h[:3, 2] = 0.0
    h = h / h.sum(axis=1, keepdims=True)
    N, D = np.array([1e8, 3e8, 1e9]), np.array([2e9, 1e10, 5e10])
    NN, DD, HH = (a.reshape(-1, *a.shape[3:]) for a in np.meshgrid(N, D, np.arange(10), indexing="ij"))
    H = h[HH.astype(int)]
    loss = np.asarray(jaxlaws.laws.mixture_additive(ADDITIVE_TRUTH, NN, DD, H))
    loss = loss * np.exp(rng.normal(0, 0.003, loss.shape))
    table = {"N": NN, "D": DD} | {f"h_{j}": H[:, j] for j in range(3)}
    return pd.DataFrame(table | {"loss_a": loss[:, 0], "loss_b": loss[:, 1]})


# --- Caballero et al. 2022: broken power law with one break -------------------------------


class BrokenParams(NamedTuple):
    a: Any
    b: Any
    c0: Any
    c1: Any
    d1: Any
    f1: Any


BROKEN = jaxlaws.Law(
    name="broken_power",
    fn=lambda p, x: p.a + p.b * x ** (-p.c0) * (1.0 + (x / p.d1) ** (1.0 / p.f1)) ** (-p.c1 * p.f1),
    params=BrokenParams,
    inputs=("x",),
    target="y",
    constraints=BrokenParams(
        a=C.nonnegative.within(0.0, 1.0),
        b=C.positive.within(0.1, 100.0),
        c0=C.real.within(0.0, 1.0),
        c1=C.real.within(-1.0, 2.0),
        d1=C.positive.within(1e2, 1e7),
        f1=C.positive.within(0.1, 2.0),
    ),
)


def broken_data():
    rng = np.random.default_rng(6)
    x = np.geomspace(1e2, 1e7, 40)
    p = BrokenParams(a=0.2, b=5.0, c0=0.1, c1=0.4, d1=1e4, f1=0.5)
    y = np.asarray(BROKEN(p, x)) * np.exp(rng.normal(0, 0.005, x.size))
    return pd.DataFrame({"x": x, "y": y})


# --- synthetic Chinchilla and data-constrained tables ------------------------------------


def chinchilla_data():
    """IsoFLOP-style runs at realistic sizes, noise 1% (Hoffmann et al.'s fitted values)."""
    rng = np.random.default_rng(1)
    C_ = np.repeat(np.geomspace(6e18, 3e21, 9), 10)
    N = np.exp(np.log(np.sqrt(C_ / 6 / 20)) + np.tile(np.linspace(-1.5, 1.5, 10), 9))
    D = C_ / (6 * N)
    p = jaxlaws.laws.ChinchillaParams(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    loss = np.asarray(jaxlaws.laws.chinchilla(p, N, D)) * np.exp(rng.normal(0, 0.01, N.size))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


CASES: tuple[Case, ...] = (
    Case(
        "chinchilla (Epoch's table)",
        "chinchilla",
        lambda: jaxlaws.datasets.load("chinchilla-epoch", subset="standard"),
        {},
        "chinchilla-epoch, 240 runs (Epoch AI; no licence stated)",
    ),
    Case("chinchilla (synthetic)", "chinchilla", chinchilla_data, {}, "synthetic, 90 runs, noise 1%"),
    Case(
        "data-constrained, all 7 free",
        "data_constrained",
        lambda: jaxlaws.datasets.load("datablations-c4"),
        {},
        "datablations-c4, 182 runs (Apache-2.0)",
    ),
    Case(
        "Kaplan L(N, D)",
        KAPLAN,
        gadre_c4,
        {"columns": {"N": "N_nonembed"}, "target": "loss_c4"},
        "gadre-overtraining c4_original, 34 runs (MIT)",
    ),
    Case(
        "vocabulary (Tao et al.)",
        VOCAB,
        vocab_data,
        {"objective": "huber_linear"},
        "synthetic from Tao et al.'s fit, 300 runs, negative target",
    ),
    Case("Farseer", FARSEER, farseer_data, {}, "synthetic from Li et al.'s fit, 120 runs"),
    Case(
        "mixing, 5 domains x 5 outputs",
        MIXING,
        mixing_data,
        {"columns": {"r": "r_*"}, "target": "loss_*"},
        "synthetic from Ye et al.'s fit, 40 mixtures with zeros",
    ),
    Case(
        "mixing_exp on olmix-dclm, 24 domains, hellaswag",
        jaxlaws.laws.MIXING_EXP,
        lambda: jaxlaws.swarm.load("olmix-dclm", metrics=["hellaswag:rc::olmes"]),
        {},
        "allenai/olmix DCLM swarm, 127 runs (Apache-2.0)",
    ),
    Case(
        "BiMix, 4 domains",
        jaxlaws.laws.BIMIX,
        bimix_data,
        {"columns": {"r": "r_*"}, "target": "loss_*"},
        "synthetic, 20 mixtures x 5 step counts",
    ),
    Case(
        "mixture additive (Shukor et al.)",
        jaxlaws.laws.MIXTURE_ADDITIVE,
        additive_data,
        {"columns": {"h": "h_*"}, "target": "loss_*"},
        "synthetic, 3 N x 3 D x 10 mixtures, zeros in the mixture",
    ),
    Case("broken power law", BROKEN, broken_data, {}, "synthetic, 40 points"),
    Case("power law + offset, 8 points", POWER, power_data, {}, "synthetic, 8 points"),
)


def case(name: str) -> Case:
    """The case called ``name``."""
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(name)
