"""Smoothing keeps every sampled point within the tolerance of the drawn curve."""

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwkit import curves

strokes = arrays(np.float64, st.tuples(st.integers(1, 80), st.just(2)), elements=st.floats(-200, 200))


def _distance_to_curve(points: np.ndarray, beziers: np.ndarray) -> np.ndarray:
    """Measured on a much finer flattening than ``smooth`` checks itself with."""
    return curves.distances_to_polyline(points, curves.flatten(beziers, steps=512))


@settings(max_examples=150, deadline=None)
@given(strokes, st.sampled_from([0.01, 0.1, 0.5, 2.0, 10.0]))
@example(np.array([[0, 0.03125], [0, 0], [-0.03125, 0], *[[0, 0]] * 12, [-32, 0]]), 0.01)  # a tight bend, a long span
def test_every_point_lies_within_the_tolerance_of_the_curve(xy, tolerance):
    beziers = curves.smooth(xy, tolerance)
    assert beziers.shape[1:] == (4, 2) and len(beziers) >= 1
    np.testing.assert_allclose(beziers[0, 0], xy[0])
    np.testing.assert_allclose(beziers[-1, 3], xy[-1])
    np.testing.assert_allclose(beziers[1:, 0], beziers[:-1, 3])  # one unbroken chain
    if len(beziers) > 1 or np.any(beziers[0, 0] != beziers[0, 3]):
        assert _distance_to_curve(xy, beziers).max() <= tolerance * (1 + 1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000))
def test_a_looser_tolerance_never_needs_more_spans_on_a_handwriting_like_stroke(seed):
    rng = np.random.default_rng(seed)
    turn = np.cumsum(rng.normal(0, 0.3, 120))
    xy = np.cumsum(np.stack([np.cos(turn), np.sin(turn)], 1), axis=0)
    sizes = [len(curves.smooth(xy, tol)) for tol in (0.01, 0.1, 1.0)]
    assert sizes[0] >= sizes[1] >= sizes[2] and sizes[2] < 119  # a smooth stroke needs far fewer spans


def test_a_stroke_of_one_point_is_a_dot():
    beziers = curves.smooth(np.array([[3.0, 4.0], [3.0, 4.0]]), 0.1)
    assert beziers.shape == (1, 4, 2) and np.all(beziers == [3.0, 4.0])


def test_catmull_rom_passes_through_its_points_and_simplify_keeps_the_ends():
    xy = np.array([[0, 0], [1, 2], [3, 3], [6, 1], [7, -2]], float)
    beziers = curves.catmull_rom(xy)
    np.testing.assert_allclose(beziers[:, 0], xy[:-1])
    np.testing.assert_allclose(beziers[:, 3], xy[1:])
    keep = curves.simplify(np.array([[0, 0], [1, 0.001], [2, 0], [3, 5]], float), 0.01)
    assert list(keep) == [0, 2, 3]


def test_svg_path_writes_one_cubic_per_span():
    beziers = curves.smooth(np.array([[0, 0], [5, 5], [10, 0], [15, 5]], float), 0.01)
    d = curves.svg_path(beziers)
    assert d.startswith("M0.00,0.00") and d.count("C") == len(beziers)
