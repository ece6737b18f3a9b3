"""A line written half in one hand and half in another is caught; lines in one hand mostly are not."""

import numpy as np
import pytest

from hwkit import demo_style
from hwkit.handstyle import (QUANTILE, Calibration, PrimeCalibration, half_styles, line_style, prime_distance,
                             switches)
from hwkit.strokes import points_to_offsets

WORDS = "the quick brown fox jumps over a lazy dog while seven birds sing in the old garden".split()


def _line(text: str, writer: int, rng: np.random.Generator) -> np.ndarray:
    style = demo_style.random_style(np.random.default_rng(1000 + writer))
    return demo_style.render_line(text, style, rng).points


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=8)) for _ in range(n)]


def test_half_and_half_lines_switch_far_more_often_than_one_hand_lines():
    rng = np.random.default_rng(0)
    real = [points_to_offsets(_line(t, k % 12, rng)) for k, t in enumerate(_texts(rng, 60))]
    calibration = Calibration.from_real(real)
    assert calibration.real_switch_rate <= 3 * (1 - QUANTILE) + 1e-9

    one_hand = [points_to_offsets(_line(t, k % 12, rng)) for k, t in enumerate(_texts(rng, 40))]
    mixed = []
    for k, text in enumerate(_texts(rng, 40)):
        words = text.split()
        left, right = _line(" ".join(words[:4]), k % 12, rng), _line(" ".join(words[4:]), (k % 12) + 20, rng)
        right[:, 0] += left[:, 0].max() - right[:, 0].min() + 60  # a word space on, in the other hand
        right[:, 1] += np.median(left[:, 1]) - np.median(right[:, 1])
        mixed.append(points_to_offsets(np.concatenate([left, right])))
    same = calibration.switch_rate(one_hand)["switch_rate"]
    switched = calibration.switch_rate(mixed)["switch_rate"]
    assert same < 0.3 and switched > 0.6 and switched > 3 * same, (same, switched)
    # one line at a time (how the chooser of tries asks) gives the same verdicts
    assert np.mean([switches(o, calibration.thresholds) for o in mixed]) == switched


def test_a_line_switches_when_any_feature_passes_its_threshold():
    rng = np.random.default_rng(5)
    line = points_to_offsets(_line("the quick brown fox jumps over a lazy dog", 3, rng))
    left, right = half_styles(line)
    gap = np.abs(left - right)
    assert not switches(line, gap + 1e-6)
    for k in range(3):  # each feature alone
        assert switches(line, np.where(np.arange(3) == k, gap - 1e-6, gap + 1e-6)) == (gap[k] > 1e-6)
    assert not switches(np.zeros((10, 3), np.float32), [1e-9] * 3)  # too short to say


def test_a_line_too_short_to_halve_has_no_style():
    assert half_styles(np.zeros((10, 3), np.float32)) is None


def test_a_line_goes_on_in_its_primes_hand_when_its_writer_wrote_both():
    rng = np.random.default_rng(3)
    real = [(points_to_offsets(_line(t, k % 10, rng)), k % 10) for k, t in enumerate(_texts(rng, 80))]
    calibration = PrimeCalibration.from_real([o for o, _ in real], [w for _, w in real])
    assert calibration.same_writer_rate <= 3 * (1 - QUANTILE) + 1e-9 < 0.5 < calibration.other_writer_rate
    primes = [points_to_offsets(_line(t, k % 10, rng)) for k, t in enumerate(_texts(rng, 30))]
    same = [points_to_offsets(_line(t, k % 10, rng)) for k, t in enumerate(_texts(rng, 30))]
    other = [points_to_offsets(_line(t, k % 10 + 20, rng)) for k, t in enumerate(_texts(rng, 30))]
    kept, lost = calibration.other_hand_rate(primes, same), calibration.other_hand_rate(primes, other)
    assert kept["lines"] == lost["lines"] == 30
    assert kept["other_hand_rate"] < 0.3 and lost["other_hand_rate"] > 0.6, (kept, lost)
    for result in (kept, lost):  # each line's verdict, in order, adds up to the share
        assert len(result["per_line"]) == 30 and np.mean(result["per_line"]) == pytest.approx(result["other_hand_rate"])
    short = np.zeros((10, 3), np.float32)
    unmeasured = calibration.other_hand_rate([short, primes[0]], [same[0], other[0]])
    assert line_style(short) is None and unmeasured["lines"] == 1
    assert unmeasured["per_line"] == [None, unmeasured["other_hand_rate"] == 1.0]


def test_a_prime_calibration_needs_two_writers_and_a_pair():
    rng = np.random.default_rng(4)
    lines = [points_to_offsets(_line(t, 1, rng)) for t in _texts(rng, 3)]
    for writers in ([1, 1, 1], [1, 2, 3], [-1, -1, 2]):
        with pytest.raises(ValueError, match="at least two writers"):
            PrimeCalibration.from_real(lines, writers)


def _slanted(offsets: np.ndarray, degrees: float) -> np.ndarray:
    """The line sheared by ``degrees`` from vertical (``dx += tan * dy``): its ink at another slant."""
    out = offsets.copy()
    out[:, 0] += np.tan(np.radians(degrees)) * out[:, 1]
    return out


def test_prime_distance_grows_with_a_slant_change_in_units_of_the_threshold():
    rng = np.random.default_rng(7)
    line = points_to_offsets(_line("the quick brown fox jumps over a lazy dog", 4, rng))
    scale = np.array([1.0, 1.0, 5.0])  # five degrees of slant count as one unit
    assert prime_distance(line, line, scale) == 0.0
    near, far = (prime_distance(line, _slanted(line, d), scale) for d in (4.0, 15.0))
    assert 0 < near < 1 < far  # 4 degrees is within the threshold; 15 beyond it
    assert prime_distance(line, _slanted(line, 15.0), scale * 4) == pytest.approx(far / 4)
    assert prime_distance(_slanted(line, 15.0), line, scale) == pytest.approx(far)  # either way round
    assert prime_distance(line, np.zeros((10, 3), np.float32), scale) == 0.0  # too short to say
