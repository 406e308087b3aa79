"""Constraints declared with parameters: coordinates, closed bounds, start ranges."""

import math

import numpy as np
import pytest

from jaxlaws import constraints as C

CASES = [
    # constraint, transform, box in the optimiser's coordinate, a value inside
    (C.real, "identity", (-math.inf, math.inf), -3.0),
    (C.positive, "log", (-math.inf, math.inf), 2.5),
    (C.negative, "neglog", (-math.inf, math.inf), -0.2),
    (C.nonnegative, "identity", (0.0, math.inf), 0.0),
    (C.interval(-2, 3), "identity", (-2.0, 3.0), 3.0),
    (C.interval(1e-3, 1e11), "log", (math.log(1e-3), math.log(1e11)), 70.0),
    (C.interval(-10, -0.1), "neglog", (math.log(0.1), math.log(10)), -10.0),
    (C.interval(0.5, math.inf), "log", (math.log(0.5), math.inf), 0.5),
    (C.unit_interval, "identity", (0.0, 1.0), 0.0),
]


@pytest.mark.parametrize("c, transform, box, inside", CASES, ids=[repr(c[0]) for c in CASES])
def test_coordinates_and_closed_bounds(c, transform, box, inside):
    assert c.transform == transform
    np.testing.assert_allclose(c.box, box)
    # a value on a closed bound belongs to the support, and round-trips
    assert c.contains(inside)
    u = c.inverse(np.float64(inside))
    assert isinstance(u, np.floating | float)  # host values stay NumPy (no XLA program)
    assert float(c.forward(u)) == pytest.approx(inside, rel=1e-14, abs=1e-300)
    assert box[0] <= u <= box[1]


def test_open_ends_are_open_and_closed_ends_closed():
    assert not C.positive.contains(0.0) and C.nonnegative.contains(0.0)
    assert C.interval(0, 1).contains(1.0) and not C.interval(0, 1).contains(1.0 + 1e-12)
    assert not C.real.contains(np.nan)


def test_start_ranges():
    assert C.interval(1e-3, 1e3).range == (1e-3, 1e3)  # finite bounds are a range
    assert C.positive.range is None and C.nonnegative.range is None
    c = C.positive.within(10, 1000)
    assert c.range == (10.0, 1000.0) and c.box == C.positive.box  # a range is not a bound
    assert repr(c) == "positive.within(10, 1000)"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: C.interval(3, 3), "interval needs lower < upper"),
        (lambda: C.positive.within(-1, 2), r"start range \(-1.0, 2.0\) is not inside positive"),
        (lambda: C.real.within(2, 1), "a start range needs lo < hi"),
    ],
)
def test_bad_declarations_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
