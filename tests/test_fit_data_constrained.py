"""Stage 2 of Muennighoff et al.'s fit: R*_D, R*_N with the rest frozen (LAWS.md section 2)."""

import numpy as np
import pytest

import jaxlaws
from jaxlaws import laws

FROZEN = ["E", "A", "B", "alpha", "beta"]


@pytest.fixture(scope="module")
def runs():
    return jaxlaws.datasets.load("datablations-c4")


@pytest.fixture(scope="module")
def paper_grid_fit(runs):
    # the paper's start grid R*_D, R*_N in {4, 8, ..., 20}, the law's declared grid, every
    # start polished; the basins at (15.4, 5.3), (47, 2.3) and beyond differ by 0.1% in
    # objective: the fit says that R*_D and R*_N are poorly determined
    with pytest.warns(jaxlaws.ConvergenceWarning, match="other optim.* fit the data as well as the best"):
        return jaxlaws.fit("data_constrained", runs, init=laws.MUENNIGHOFF_C4, frozen=FROZEN, polish=None)


@pytest.mark.filterwarnings("ignore:.*other optim:jaxlaws.ConvergenceWarning")  # R*_D is poorly determined
def test_adaptive_polishing_finds_what_polishing_every_start_finds(runs, paper_grid_fit):
    r = jaxlaws.fit("data_constrained", runs, init=laws.MUENNIGHOFF_C4, frozen=FROZEN)
    assert r.n_polished < 25
    # the same basin, to rounding (the two plans compile to programs with other slot counts)
    assert r.value == pytest.approx(paper_grid_fit.value, rel=1e-12)
    np.testing.assert_allclose(np.asarray(r.params), np.asarray(paper_grid_fit.params), rtol=1e-7)


def test_paper_grid_finds_both_basins(paper_grid_fit):
    r = paper_grid_fit
    assert len(r.starts) == 25
    converged = r.starts[r.starts.status == "converged"]
    # the paper's optimum: objective 0.0158259 at about (15.39, 5.31) (datablations code)
    paper = converged[(converged.R_D_star > 10) & (converged.R_D_star < 20)]
    assert len(paper) >= 10
    assert paper.objective.min() == pytest.approx(0.0158259, abs=1e-6)
    row = paper.loc[paper.objective.idxmin()]
    assert row.R_D_star == pytest.approx(15.37, abs=0.05) and row.R_N_star == pytest.approx(5.32, abs=0.05)
    # below the paper's point: a local minimum at about (47.0, 2.33), objective 0.0158074,
    # reached from 3 of the 25 starts (its Hessian is positive definite). The lowest basin,
    # (95.4, 1.71) at 0.0158047 (LAWS.md section 2), is reached from this grid only by
    # L-BFGS-B overshooting along the flat R*_D ridge (2 of 25 starts); Gauss-Newton steps
    # stay in the nearer basins. The wider grid below finds it.
    assert r.value == pytest.approx(0.0158074, abs=1e-7)
    assert r.value < paper.objective.min()
    assert float(r.params.R_D_star) == pytest.approx(47.0, rel=1e-2)
    assert float(r.params.R_N_star) == pytest.approx(2.33, rel=1e-2)


def test_frozen_parameters_stay_exactly_frozen(paper_grid_fit):
    for name in FROZEN:
        assert float(getattr(paper_grid_fit.params, name)) == float(getattr(laws.MUENNIGHOFF_C4, name))
    assert paper_grid_fit.frozen == tuple(FROZEN)


def test_wider_multistart_reaches_the_lower_basin(runs):
    grid = {"R_D_star": np.geomspace(1, 1000, 20), "R_N_star": np.geomspace(0.1, 100, 20)}
    r = jaxlaws.fit("data_constrained", runs, init=laws.MUENNIGHOFF_C4, frozen=FROZEN, starts=grid)
    assert r.value == pytest.approx(0.0158047, abs=1e-7)
    assert r.n_best_basin >= 2


@pytest.mark.filterwarnings("ignore:.*other optim:jaxlaws.ConvergenceWarning")  # R*_D is poorly determined
def test_frozen_by_mapping_and_random_starts_are_reproducible(runs):
    frozen = {k: getattr(laws.MUENNIGHOFF_C4, k) for k in FROZEN}
    a = jaxlaws.fit("data_constrained", runs, frozen=frozen, starts=50, seed=3, polish=None)
    b = jaxlaws.fit("data_constrained", runs, frozen=frozen, starts=50, seed=3, polish=None)
    c = jaxlaws.fit("data_constrained", runs, frozen=frozen, starts=50, seed=4, polish=None)
    np.testing.assert_array_equal(a.starts.to_numpy(), b.starts.to_numpy())
    assert not np.array_equal(a.starts.objective.to_numpy(), c.starts.objective.to_numpy())
    assert (a.starts.status == "converged").all()
