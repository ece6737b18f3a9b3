"""Properties of the stroke-format converters."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwkit import strokes as S

coord = st.integers(min_value=-20000, max_value=20000)
stroke = st.lists(st.tuples(coord, coord), min_size=1, max_size=30).map(lambda p: np.array(p, float))
stroke_lists = st.lists(stroke, min_size=1, max_size=8)
fast = settings(max_examples=150, deadline=None)


@fast
@given(stroke_lists)
def test_points_round_trip_through_offsets_is_exact(strokes):
    points = S.strokes_to_points(strokes)
    offsets = S.points_to_offsets(points)
    assert np.all(offsets[0, :2] == 0)
    back = S.offsets_to_points(offsets, origin=points[0, :2])
    assert np.array_equal(back, points)


@fast
@given(stroke_lists)
def test_pen_up_marks_exactly_the_last_point_of_each_stroke(strokes):
    points = S.strokes_to_points(strokes)
    ends = np.cumsum([len(s) for s in strokes]) - 1
    assert np.array_equal(np.flatnonzero(points[:, 2] == 1), ends)
    back = S.points_to_strokes(S.offsets_to_points(S.points_to_offsets(points), points[0, :2]))
    assert len(back) == len(strokes)
    for a, b in zip(back, strokes):
        assert np.array_equal(a, b)


@fast
@given(stroke_lists, st.floats(min_value=1.0, max_value=5000.0))
def test_split_jumps_leaves_no_long_pen_down_step(strokes, max_jump):
    points = S.split_jumps(S.strokes_to_points(strokes), max_jump)
    step = np.hypot(*np.diff(points[:, :2], axis=0).T)
    pen_down = points[:-1, 2] == 0
    assert np.all(step[pen_down] <= max_jump)
    # splitting only ever adds pen lifts and keeps every reading
    original = S.strokes_to_points(strokes)
    assert np.array_equal(points[:, :2], original[:, :2])
    assert np.all(points[:, 2] >= original[:, 2])


@fast
@given(stroke_lists)
def test_drop_repeats_keeps_shape_and_stroke_count(strokes):
    doubled = [np.repeat(s, 2, axis=0) for s in strokes]
    cleaned = S.drop_repeats(S.strokes_to_points(doubled))
    once = S.drop_repeats(S.strokes_to_points(strokes))
    assert np.array_equal(cleaned, once)
    assert int(cleaned[:, 2].sum()) == len(strokes)
    assert not np.any(np.all(np.diff(cleaned[:, :2], axis=0) == 0, axis=1) & (cleaned[:-1, 2] == 0))


@fast
@given(
    arrays(np.float32, st.tuples(st.integers(1, 50), st.just(3)), elements=st.floats(-500, 500, width=32)),
    st.tuples(st.floats(-10, 10), st.floats(-10, 10)),
    st.tuples(st.floats(0.1, 100), st.floats(0.1, 100)),
)
def test_normalise_then_denormalise_is_identity(offsets, mean, std):
    back = S.denormalise(S.normalise(offsets, mean, std), mean, std)
    np.testing.assert_allclose(back, offsets, rtol=1e-5, atol=1e-3)
    assert np.array_equal(back[:, 2], offsets[:, 2])


def test_offset_stats_ignore_the_start_row_and_match_numpy():
    rng = np.random.default_rng(0)
    lines = [S.points_to_offsets(S.strokes_to_points([rng.normal(size=(n, 2)) * 50])) for n in (5, 40, 17)]
    mean, std = S.offset_stats(lines)
    steps = np.concatenate([line[1:, :2] for line in lines])
    np.testing.assert_allclose(mean, steps.mean(axis=0))
    np.testing.assert_allclose(std, steps.std(axis=0))


@settings(max_examples=80, deadline=None)
@given(st.lists(arrays(np.float32, st.tuples(st.integers(1, 30), st.just(3)),
                       elements=st.floats(-1e4, 1e4, width=32)), min_size=1, max_size=12))
def test_offset_stats_in_one_pass_equal_numpy_over_everything(lines):
    steps = np.concatenate([line[1:, :2] for line in lines]).astype(np.float64)
    mean, std = S.offset_stats(lines)
    if len(steps) == 0:
        assert list(mean) == [0, 0] and list(std) == [1, 1]
        return
    np.testing.assert_allclose(mean, steps.mean(axis=0), rtol=1e-9, atol=1e-9)
    expected = steps.std(axis=0)
    np.testing.assert_allclose(std, np.where(expected > 0, expected, 1.0), rtol=1e-7, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-3, 1e3), st.floats(5.0, 50.0))
def test_ink_in_other_units_is_brought_to_the_models_and_a_models_own_is_left_alone(seed, factor, model_std):
    rng = np.random.default_rng(seed)
    n = 200
    line = np.column_stack([rng.normal(0, model_std, (n, 2)), rng.random(n) < 0.1]).astype(np.float32)
    line[0, :2] = 0
    std = [model_std, model_std]
    same, one = S.in_model_units(line, std)
    assert one == 1.0 and same is line  # its own units: untouched
    scaled = line.copy()
    scaled[:, :2] *= factor
    back, found = S.in_model_units(scaled, std)
    if 1 / S.UNITS_APART * 1.3 < factor < S.UNITS_APART / 1.3:  # within a hand's range: left as it is
        assert found == 1.0 and np.array_equal(back, scaled)
    elif not 1 / S.UNITS_APART / 1.3 < factor < S.UNITS_APART * 1.3:  # plainly other units: back to the model's
        assert abs(np.log(found * factor)) < np.log(1.3)
        np.testing.assert_allclose(back[:, :2], scaled[:, :2] * found, rtol=1e-5)
        assert np.array_equal(back[:, 2], scaled[:, 2])
