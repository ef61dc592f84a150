"""Intrinsic dimension (SPEC §4): box counting and nearest-neighbour estimators."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory import (
    UnresolvedDimensionWarning,
    box_counting_dimension,
    box_counts,
    mle_dimension,
    twonn_dimension,
)
from theory.known_sets import (
    CANTOR_DIMENSION,
    SIERPINSKI_DIMENSION,
    cantor_set,
    embedded_cube,
    finite_set,
    sierpinski_triangle,
    spec_covariates,
)

N = 20_000
KNOWN_SETS = {
    "segment in R^10": (lambda seed: embedded_cube(N, 1, 10, seed=seed), 1.0),
    "square in R^10": (lambda seed: embedded_cube(N, 2, 10, seed=seed), 2.0),
    "3-cube in R^10": (lambda seed: embedded_cube(N, 3, 10, seed=seed), 3.0),
    "Cantor set": (lambda seed: cantor_set(N, seed=seed), CANTOR_DIMENSION),
    "Sierpinski triangle": (lambda seed: sierpinski_triangle(N, seed=seed), SIERPINSKI_DIMENSION),
    "25 points in R^5": (lambda seed: finite_set(N, 25, 5, seed=seed), 0.0),
}


@pytest.mark.parametrize("name", list(KNOWN_SETS))
def test_box_counting_recovers_known_dimensions(name):
    sample, truth = KNOWN_SETS[name]
    for seed in (0, 1):
        estimate = box_counting_dimension(sample(seed))
        assert estimate.resolved, estimate.reason
        assert abs(estimate.dimension - truth) <= 0.15, (seed, estimate.dimension)
        assert estimate.scales.size >= 5
        assert np.all(np.diff(estimate.scales) < 0)  # coarse to fine


@pytest.mark.parametrize(
    "name", ["segment in R^10", "square in R^10", "Cantor set", "Sierpinski triangle",
             "25 points in R^5"]
)
def test_occupied_box_counts_recover_low_dimensional_sets(name):
    # order=0 is the literal definition. On a 3-cube at an angle to the grid in R^10
    # (or a square in R^50), 20,000 points miss many sliver boxes and it is not
    # reliable to ±0.15 (docs/theory.md has the measured ranges).
    sample, truth = KNOWN_SETS[name]
    estimate = box_counting_dimension(sample(0), order=0)
    assert estimate.resolved, estimate.reason
    assert abs(estimate.dimension - truth) <= 0.15


def test_occupied_box_counts_are_biased_low_when_boxes_outnumber_points():
    # A 4-cube from 20,000 points: the automatic fit stops at 10 points per box and
    # reads 4; the slope where ε^-4 nears n (N between 40% and 90% of n) reads far less.
    n = 20_000
    points = spec_covariates(n, 4, ambient=4, seed=0)
    assert abs(box_counting_dimension(points, order=0).dimension - 4.0) <= 0.15
    grid = box_counts(points)
    near_n = (grid.occupied > 0.4 * n) & (grid.occupied < 0.9 * n)
    slope = np.polyfit(np.log(grid.boxes_per_side[near_n]), np.log(grid.occupied[near_n]), 1)[0]
    assert slope < 3.0


def sample_for_invariance(seed: int) -> np.ndarray:
    return embedded_cube(2_000, 2, 4, seed=seed)


@given(seed=st.integers(0, 1000), shift=st.lists(st.floats(-100, 100), min_size=4, max_size=4))
def test_estimate_is_invariant_to_translation(seed, shift):
    points = sample_for_invariance(seed)
    moved = points + np.asarray(shift)
    for order in (0, 2):
        a = box_counting_dimension(points, order=order, warn=False)
        b = box_counting_dimension(moved, order=order, warn=False)
        assert b.dimension == pytest.approx(a.dimension, abs=1e-9)


@given(seed=st.integers(0, 1000), factor=st.floats(1e-3, 1e3))
def test_estimate_is_invariant_to_scaling(seed, factor):
    points = sample_for_invariance(seed)
    for order in (0, 2):
        a = box_counting_dimension(points, order=order, warn=False)
        b = box_counting_dimension(points * factor, order=order, warn=False)
        assert b.dimension == pytest.approx(a.dimension, abs=1e-9)
        np.testing.assert_allclose(b.scales, a.scales * factor, rtol=1e-9)


@given(seed=st.integers(0, 1000), perm_seed=st.integers(0, 1000))
def test_estimate_is_invariant_to_permuting_coordinates(seed, perm_seed):
    points = sample_for_invariance(seed)
    permuted = points[:, np.random.default_rng(perm_seed).permutation(points.shape[1])]
    for order in (0, 2):
        a = box_counting_dimension(points, order=order, warn=False)
        b = box_counting_dimension(permuted, order=order, warn=False)
        assert b.dimension == a.dimension


def test_twenty_dimensions_from_1e5_points_is_reported_unresolved():
    points = spec_covariates(100_000, 20, seed=0)
    for order in (0, 2):
        with pytest.warns(UnresolvedDimensionWarning):
            estimate = box_counting_dimension(points, order=order)
        assert not estimate.resolved
        assert "lower bound" in estimate.reason


def test_box_counting_finds_a_plane_among_1e5_points_in_50_dimensions():
    # Its cost is measured by benchmarks/dimension_estimates.py, not asserted here.
    points = embedded_cube(100_000, 2, 50, seed=0)
    estimate = box_counting_dimension(points)
    assert abs(estimate.dimension - 2.0) <= 0.15


def test_box_counts_on_a_hand_sized_example():
    grid = box_counts(np.array([[0.0], [0.3], [1.0], [1.0]]), ratio=2.0)
    assert grid.boxes_per_side[:4].tolist() == [1, 2, 4, 8]
    assert grid.occupied[:4].tolist() == [1, 2, 3, 3]
    # At k = 1 all 6 pairs share the box; at k = 2 so do (0, 0.3) and the two copies
    # of 1.0; from k = 4 on only the copies do.
    assert grid.shared_pairs[:4].tolist() == [6.0, 2.0, 1.0, 1.0]


def test_neighbour_estimators_recover_low_dimensions():
    for truth in (1, 2, 3):
        points = embedded_cube(3_000, truth, 10, seed=truth)
        for estimate in (twonn_dimension(points), mle_dimension(points)):
            assert abs(estimate.dimension - truth) <= 0.3, estimate
            assert estimate.stderr > 0


def test_neighbour_estimators_degrade_more_gracefully_than_box_counting():
    points = spec_covariates(1_500, 20, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvedDimensionWarning)
        boxes = box_counting_dimension(points, order=0)
    twonn = twonn_dimension(points)
    assert not boxes.resolved
    assert twonn.resolved and 12.0 < twonn.dimension < 22.0


def test_subsampled_queries_need_a_seed_and_reproduce_with_it():
    points = embedded_cube(2_000, 2, 5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        twonn_dimension(points, n_queries=500)
    a = twonn_dimension(points, n_queries=500, seed=3)
    b = twonn_dimension(points, n_queries=500, seed=3)
    assert a.dimension == b.dimension
    c = mle_dimension(points, n_queries=500, seed=np.random.default_rng(3))
    assert abs(c.dimension - 2.0) <= 0.3


@pytest.mark.parametrize("estimator", [box_counting_dimension, twonn_dimension, mle_dimension])
def test_bad_points_raise_naming_the_argument(estimator):
    good = embedded_cube(500, 2, 3, seed=0)
    with_nan = good.copy()
    with_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="points.*NaN"):
        estimator(with_nan)
    with_inf = good.copy()
    with_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="points.*infinite"):
        estimator(with_inf)
    with pytest.raises(ValueError, match="points has 2 rows"):
        estimator(good[:2])
    with pytest.raises(ValueError, match="single point"):
        estimator(np.ones((500, 3)))
    with pytest.raises(ValueError, match=r"\[n, D\]"):
        estimator(good[:, 0])


def test_bad_box_counting_options_raise_naming_the_option():
    points = embedded_cube(500, 2, 3, seed=0)
    with pytest.raises(ValueError, match="order"):
        box_counting_dimension(points, order=1)
    with pytest.raises(ValueError, match="max_fill"):
        box_counting_dimension(points, order=0, max_fill=0.0)
    with pytest.raises(ValueError, match="ratio"):
        box_counting_dimension(points, ratio=1.0)


# Hostile inputs: each estimator answers correctly, says it cannot, or refuses `points`.

LATTICE_50 = np.stack(np.meshgrid(np.arange(50), np.arange(50)), -1).reshape(-1, 2)


def rounded_square(n: int, decimals: int) -> np.ndarray:
    return np.round(np.random.default_rng(0).uniform(size=(n, 2)), decimals)


@pytest.mark.parametrize("estimator", [twonn_dimension, mle_dimension])
@pytest.mark.parametrize("spacing", [1.0, 0.1])  # 0.1 · i is not exact in binary
def test_neighbour_estimators_refuse_a_lattice(estimator, spacing):
    # Every point of a 50 × 50 lattice has 2 to 4 neighbours at one distance: μ = 1.
    # At spacing 0.1 the ties differ in the last bits, and TwoNN read 5e14, "resolved".
    estimate = estimator(LATTICE_50 * spacing)
    assert not estimate.resolved
    assert np.isnan(estimate.dimension)
    assert "lattice" in estimate.reason and "ties" in estimate.reason


@pytest.mark.parametrize("estimator", [twonn_dimension, mle_dimension])
def test_neighbour_estimators_refuse_data_rounded_to_their_neighbour_scale(estimator):
    # 2,000 points of the square rounded to 2 decimals: neighbours sit 0.01 apart on a
    # grid, TwoNN read 3.6 (truth 2) and called it resolved.
    coarse = estimator(rounded_square(2_000, 2))
    assert not coarse.resolved and np.isnan(coarse.dimension)
    assert "rounded" in coarse.reason
    # Rounding far below the neighbour scale is harmless and is not refused.
    fine = estimator(rounded_square(2_000, 5))
    assert fine.resolved and abs(fine.dimension - 2.0) <= 0.15


@pytest.mark.parametrize("factor", [1e308, 1e-300, 2.0**-1060])
def test_estimates_do_not_depend_on_magnitudes_near_the_float64_limits(factor):
    # At ±1e308 the range max − min overflows (box counting put every point in one box
    # and answered 0.0, "resolved"); at 1e-300 squared distances underflow; 2^-1060 is
    # subnormal. Rescaling by powers of two inside the estimators avoids all three.
    # (Subnormal coordinates keep fewer bits, which moves a few points a little.)
    points = np.random.default_rng(0).uniform(-1.0, 1.0, size=(5_000, 2))
    for order in (0, 2):
        unit = box_counting_dimension(points, order=order)
        extreme = box_counting_dimension(points * factor, order=order)
        assert extreme.resolved
        assert extreme.dimension == pytest.approx(unit.dimension, abs=1e-3)
    for estimator in (twonn_dimension, mle_dimension):
        unit, extreme = estimator(points), estimator(points * factor)
        assert extreme.resolved
        assert extreme.dimension == pytest.approx(unit.dimension, abs=1e-3)


@st.composite
def hostile_samples(draw) -> np.ndarray:
    """Finite float arrays ``[n, D]``: arbitrary ones, and samples with ties, repeats,
    outliers or a scale anywhere from subnormal to 2^1023."""
    kind = draw(st.sampled_from(["arbitrary", "uniform", "lattice", "rounded", "repeats",
                                 "outlier"]))
    if kind == "arbitrary":
        shape = st.tuples(st.integers(1, 40), st.integers(1, 3))
        finite = st.floats(allow_nan=False, allow_infinity=False)
        return draw(arrays(np.float64, shape, elements=finite))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, dim = draw(st.integers(21, 300)), draw(st.integers(1, 3))
    if kind == "uniform":
        x = rng.uniform(-1.0, 1.0, (n, dim))
    elif kind == "lattice":
        side = max(2, round(n ** (1 / dim)))
        x = np.stack(np.meshgrid(*[np.arange(side)] * dim), -1).reshape(-1, dim).astype(float)
    elif kind == "rounded":
        x = np.round(rng.uniform(size=(n, dim)), draw(st.integers(0, 4)))
    elif kind == "repeats":
        distinct = draw(st.integers(1, 30))
        x = rng.uniform(size=(distinct, dim))[rng.integers(0, distinct, n)]
    else:
        x = rng.uniform(size=(n, dim))
        x[0] = draw(st.sampled_from([1e308, -1e308, 1e-308, 1e200]))
        return x
    # Any power of two that keeps the largest |value| below 2^1024 (finite).
    top = 1024 - int(np.frexp(np.max(np.abs(x)))[1])
    return np.ldexp(x, draw(st.integers(-1074, top)))


HONEST_ESTIMATORS = {
    "TwoNN": twonn_dimension,
    "MLE k=2..5": lambda x: mle_dimension(x, k_min=2, k_max=5),
    "MLE default": mle_dimension,
    "box q=0": lambda x: box_counting_dimension(x, order=0, min_count=2, max_fill=0.5, warn=False),
    "box q=2": lambda x: box_counting_dimension(x, order=2, min_count=2, min_pairs=10,
                                                warn=False),
}


@settings(max_examples=150)
@given(points=hostile_samples())
def test_estimators_answer_say_they_cannot_or_refuse_the_points(points):
    for name, estimator in HONEST_ESTIMATORS.items():
        try:
            estimate = estimator(points)
        except ValueError as error:
            assert "points" in str(error), (name, str(error))
            continue
        if estimate.resolved:
            assert math.isfinite(estimate.dimension), (name, estimate)
        else:
            assert estimate.reason, (name, estimate)
