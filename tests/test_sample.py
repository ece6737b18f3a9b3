"""Sampling: the stop rule and the cap, seeds, priming, bias, batching; style files; pictures."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image

from hwkit import render
from hwkit.alphabet import Alphabet
from hwkit.animate import animated_svg
from hwkit.errors import StyleError, TextError
from hwkit.heatmaps import attention_figure, density_figure, density_grid
from hwkit.mdn import split_params
from hwkit.config import ModelConfig
from hwkit.models import Attention, Stepper, build_model, finished
from hwkit.sample import (MARK_POINTS, MARKS, STROKE_TAIL, Density, Prime, replace_unknown, sample_text,
                          sample_unconditional, wrap)
from hwkit.strokes import PEN_UP, normalise, offsets_to_points, points_to_strokes
from hwkit.style import load_style, save_style, style_from_store

from helpers import synthetic_lines

SVG = "{http://www.w3.org/2000/svg}"
ALPHABET = Alphabet(" abc")
STATS = {"mean": [2.0, 0.5], "std": [3.0, 2.5]}


def tiny_model(kind: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    size = len(ALPHABET) if kind == "synthesis" else 0
    config = ModelConfig(kind, hidden=16, layers=2, mixtures=3, window_mixtures=2, alphabet_size=size)
    return build_model(config).eval()


def fixed_window(model: torch.nn.Module, step: float) -> torch.nn.Module:
    """Make the window ignore the network: alpha = beta = 1 and kappa grows by ``step`` a point."""
    k = model.config.window_mixtures
    with torch.no_grad():
        model.window.weight.zero_()
        model.window.bias.zero_()
        model.window.bias[2 * k :] = math.log(step)
    return model


def prime_line(n_points: int = 30) -> Prime:
    return Prime(synthetic_lines(1, min_points=n_points, max_points=n_points, seed=3)[0].offsets, "ab")


# -- stopping -----------------------------------------------------------------------


def test_stop_rule_fires_exactly_when_the_stop_position_outweighs_every_character():
    lengths = torch.tensor([2, 2, 2, 1])
    phi = torch.tensor(
        [
            [0.2, 0.5, 0.6, 0.0],  # stop column above both characters: stop
            [0.2, 0.6, 0.6, 0.0],  # a tie is not "exceeds": go on
            [0.7, 0.1, 0.6, 0.0],  # the first character still outweighs it: go on
            [0.3, 0.4, 9.0, 9.0],  # length 1: column 1 is its stop; the padding beyond is ignored
        ]
    )[:, None, :]
    attention = Attention(phi=phi, kappa=torch.zeros(4, 1, 1))
    assert finished(attention, lengths)[:, 0].tolist() == [True, False, False, True]


@pytest.mark.parametrize("pen_logit", [None, 50.0, -50.0])
def test_lines_stop_by_the_rule_at_the_predicted_step_each_on_its_own_in_one_batch(pen_logit):
    # kappa = 0.4 t exactly; the stop column L + 1 wins once kappa > L + 0.5, at t = ceil((L + 0.5) / 0.4)
    # (0.1 from any tie). Row 0 is the start token, step t writes row t, the stopping step writes nothing,
    # so the rule cuts the lines at 9, 4 and 7 rows; each then finishes the stroke under way, up to its
    # first pen lift, and keeps the marks after it. A pen that never lifts (past STROKE_TAIL) ends at the cut.
    model = fixed_window(tiny_model("synthesis"), 0.4)
    if pen_logit is not None:
        with torch.no_grad():
            model.head.bias[0] = pen_logit  # the end-of-stroke logit
    texts, cuts = ["abc", "a", "ab"], [9, 4, 7]
    went_on = False
    for seed in (1, 2, 3):
        result = sample_text(model, ALPHABET, texts, stats=STATS, seed=seed)
        assert [line.stop for line in result.lines] == ["rule"] * 3
        for line, text, cut in zip(result.lines, texts, cuts):
            n = len(line.offsets)
            if pen_logit is None or pen_logit > 0:
                lifts = np.flatnonzero(line.offsets[cut - 1 :, PEN_UP]) + cut - 1
                assert n == cut or lifts[0] <= cut - 1 + STROKE_TAIL  # the stroke under way ends at its lift
                for a, b in zip(lifts, lifts[1:]):  # then marks: short strokes the pen moves left to reach
                    assert b - a <= MARK_POINTS and line.offsets[a + 1, 0] < 0
                went_on |= n > cut
            else:
                assert n == cut
            assert line.text == text and line.phi.shape == (n, len(text) + 1)
            assert line.eos.shape == (n,) and line.offsets[-1, PEN_UP] == 1
        assert result.stop_counts() == {"rule": 3}
    assert pen_logit is not None or went_on, "no line had a stroke under way at the cut: the test tests nothing"


def test_the_cap_stops_a_line_whose_window_never_moves():
    model = fixed_window(tiny_model("synthesis"), 1e-12)
    result = sample_text(model, ALPHABET, ["ab", "abc"], stats=STATS, seed=0, points_per_char=5)
    assert [line.stop for line in result.lines] == ["cap", "cap"]
    assert [len(line.offsets) for line in result.lines] == [1 + 5 * 2 + 100, 1 + 5 * 3 + 100]


def test_unconditional_lines_end_at_length_or_after_the_requested_pen_lifts():
    model = tiny_model("prediction")
    result = sample_unconditional(model, 3, stats=STATS, length=40, seed=1)
    assert [len(line.offsets) for line in result.lines] == [40, 40, 40]
    assert all(line.stop == "length" and line.text == "" and line.phi is None for line in result.lines)
    result = sample_unconditional(model, 6, stats=STATS, length=300, strokes=2, seed=1)
    for line in result.lines:
        lifts = int(line.offsets[:, PEN_UP].sum())
        assert line.stop == "strokes" and lifts == 2 and line.offsets[-1, PEN_UP] == 1
        assert line.offsets[0].tolist() == [0, 0, 0]
    assert len({len(line.offsets) for line in result.lines}) > 1  # each line stopped on its own


# -- randomness, priming, bias ----------------------------------------------------------


def test_same_seed_same_lines_other_seed_other_lines():
    model = fixed_window(tiny_model("synthesis"), 0.05)
    a = sample_text(model, ALPHABET, ["abc", "cab"], stats=STATS, seed=7)
    b = sample_text(model, ALPHABET, ["abc", "cab"], stats=STATS, seed=7)
    c = sample_text(model, ALPHABET, ["abc", "cab"], stats=STATS, seed=8)
    for x, y in zip(a.lines, b.lines):
        assert np.array_equal(x.offsets, y.offsets) and np.array_equal(x.eos, y.eos)
    assert not np.array_equal(a.lines[0].offsets, c.lines[0].offsets)
    assert sample_unconditional(tiny_model("prediction"), 1, stats=STATS, length=5, seed=None).seed >= 0


def test_adding_lines_to_a_batch_leaves_the_earlier_lines_alone():
    model = tiny_model("prediction")
    two = sample_unconditional(model, 2, stats=STATS, length=30, seed=5)
    three = sample_unconditional(model, 3, stats=STATS, length=30, seed=5)
    for x, y in zip(two.lines, three.lines):
        np.testing.assert_allclose(x.offsets, y.offsets, rtol=1e-5, atol=1e-5)
    assert not np.allclose(three.lines[0].offsets, three.lines[1].offsets)  # streams differ per line


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_priming_reproduces_the_prime_then_continues_from_what_the_network_read(kind):
    model = tiny_model(kind) if kind == "prediction" else fixed_window(tiny_model(kind), 0.05)
    prime = prime_line(30)
    p = len(prime.offsets)
    if kind == "prediction":
        kept = sample_unconditional(model, 2, stats=STATS, length=20, seed=3, primes=prime, keep_prime=True)
        new = sample_unconditional(model, 2, stats=STATS, length=20, seed=3, primes=prime)
    else:
        kept = sample_text(model, ALPHABET, ["c", "c"], stats=STATS, seed=3, primes=prime, keep_prime=True)
        new = sample_text(model, ALPHABET, ["c", "c"], stats=STATS, seed=3, primes=prime)
    for k, n in zip(kept.lines, new.lines):
        assert k.prime_rows == p and n.prime_rows == 0
        assert np.array_equal(k.offsets[:p], prime.offsets)  # exactly the prime, not a round trip
        assert np.allclose(k.offsets[p + 1 :], n.offsets[1:])  # then the same new part
        assert n.offsets[0, :2].tolist() == [0, 0] and len(n.offsets) == len(k.offsets) - p
    if kind == "synthesis":
        assert kept.lines[0].text == "ab c" and new.lines[0].text == "c"
        assert kept.lines[0].phi.shape[1] == 5 and new.lines[0].phi.shape[1] == 2

    # What the network predicted over the prime equals one whole-sequence forward over it.
    x = torch.from_numpy(normalise(prime.offsets, STATS["mean"], STATS["std"]))
    x[0, :2] = 0
    with torch.no_grad():
        if kind == "prediction":
            out, _ = model(x[None, :-1])
        else:
            chars = torch.from_numpy(ALPHABET.encode("ab c"))[None]
            out, _, _ = model(x[None, :-1], chars, chars != 0)
    mix = split_params(out[0])
    mu = mix.mu.numpy() * np.float32(STATS["std"]) + np.float32(STATS["mean"])
    assert np.allclose(kept.lines[0].density.mu[1:p], mu, atol=1e-4)
    assert np.allclose(kept.lines[0].eos[1:p], torch.sigmoid(mix.eos_logit).numpy(), atol=1e-5)


def test_a_primed_line_starts_where_its_window_reaches_its_text(monkeypatch):
    # The window creeps (kappa 0.05 a point): after the 30-point prime of "ab" it is still short of "c"
    # (column 3), and the untrained net lifts its pen often, so whole strokes end before the window arrives.
    model = fixed_window(tiny_model("synthesis"), 0.05)
    prime, first = prime_line(30), len("ab ")
    p = len(prime.offsets)
    options = {"stats": STATS, "seed": 3, "primes": prime, "keep_prime": True}
    kept = sample_text(model, ALPHABET, ["c", "c"], **options)
    with monkeypatch.context() as m:
        m.setattr("hwkit.sample._prime_rows", lambda *args: 0)
        drawn = sample_text(model, ALPHABET, ["c", "c"], **options)
    dropped_any = False
    for line, whole in zip(kept.lines, drawn.lines):
        new, everything = line.offsets[p:], whole.offsets[p:]
        drop = len(everything) - len(new)
        dropped_any |= drop > 0
        ends = np.flatnonzero(everything[:, PEN_UP] > 0.5)
        centre = whole.phi[p:].argmax(1)
        # what went is whole strokes, each finished before the window reached the text; the next one after it
        assert drop == 0 or everything[drop - 1, PEN_UP] == 1
        assert all(centre[e] < first for e in ends if e < drop)
        assert centre[ends[ends >= drop][0]] >= first
        # the rest is the same ink, and the pen still ends where it did
        assert np.allclose(new[1:], everything[drop + 1 :]) and np.array_equal(line.phi[p:], whole.phi[p + drop :])
        assert np.allclose(line.offsets[:, :2].sum(0), whole.offsets[:, :2].sum(0), atol=1e-3)
        assert len(line.eos) == len(line.offsets) and len(line.density.mu) == len(line.offsets)
    assert dropped_any, "the fixture drew no stroke before the window reached the text: it tests nothing"
    alone = sample_text(model, ALPHABET, ["c", "c"], stats=STATS, seed=3, primes=prime)
    assert [len(a.offsets) for a in alone.lines] == [len(k.offsets) - p for k in kept.lines]


def test_marks_after_the_last_lift_are_short_strokes_reached_by_moving_left():
    from hwkit.sample import _marks

    def line(*strokes):  # (points, first dx) per stroke after a lift at row 2; pen lifts on each stroke's last point
        pen, dx = [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]
        for points, first_dx in strokes:
            pen += [0.0] * (points - 1) + [1.0]
            dx += [first_dx] + [1.0] * (points - 1)
        return np.array(pen), np.array(dx)

    far = 1000
    assert _marks(*line((3, -5.0), (8, -2.0), (4, 3.0)), 2, far, 0.0) == (2 + 3 + 8, True)  # two marks, then right
    assert _marks(*line((3, 5.0)), 2, far, 0.0) == (2, True)  # to the right: not the line's
    assert _marks(*line((MARK_POINTS + 1, -5.0)), 2, far, 0.0) == (2, True)  # too long for a mark
    assert _marks(*line(*[(2, -1.0)] * (MARKS + 1)), 2, far, 0.0) == (2 + 2 * MARKS, True)  # at most MARKS
    assert _marks(*line((3, -5.0)), 2, far, -6.0) == (2, True)  # "left" is relative to the normalised origin
    pen, dx = line((3, -5.0), (MARK_POINTS, -1.0))
    assert _marks(pen[:-3], dx[:-3], 2, far, 0.0) == (5, False)  # the second stroke may still be a mark: wait
    assert _marks(pen[:5], dx[:5], 2, 4, 0.0) == (2, True)  # the line may have no rows past 4: no wait


@pytest.mark.parametrize("kappa_step, seed, pen_logit", [(0.05, 3, None), (0.21, 1, None), (0.21, 3, None),
                                                          (0.21, 1, -50.0), (0.001, 1, None)])  # fmt: skip
def test_streamed_rows_join_up_to_each_line_as_it_is_kept(kappa_step, seed, pen_logit):
    # primed lines (whose first strokes may be the prime's and go) beside unprimed ones, stopping at different
    # steps: at 0.21 "abc" meets the rule right after a check (its last row must still lift the pen), and
    # lines wait for the stroke under way to end; a pen that never lifts waits STROKE_TAIL points, then ends
    # where the rule fired; at 0.001 no window reaches its text and every line stops at the cap
    model = fixed_window(tiny_model("synthesis"), kappa_step)
    if pen_logit is not None:
        with torch.no_grad():
            model.head.bias[0] = pen_logit
    texts, primes = ["c", "ab", "c", "abc", "abc"], [prime_line(30), None, prime_line(40), None, prime_line(20)]
    chunks = []
    result = sample_text(model, ALPHABET, texts, stats=STATS, seed=seed, primes=primes, on_rows=chunks.append,
                         points_per_char=20)  # fmt: skip
    assert len(chunks) > 2 and all(len(call) == len(texts) for call in chunks)
    for i, line in enumerate(result.lines):
        streamed = np.concatenate([call[i] for call in chunks])
        assert streamed.shape == line.offsets.shape
        np.testing.assert_allclose(streamed, line.offsets, atol=1e-5)


def test_a_larger_bias_gives_a_smaller_spread_of_offsets():
    # Same network, same seed: bias 3 shrinks every std dev by e^3 (about 20x). The
    # spread must fall below half; with 32 x 120 offsets its estimate is good to a few
    # per cent, so an ignored bias (ratio ~1) cannot pass.
    model = tiny_model("prediction")
    spread = {}
    for bias in (0.0, 3.0):
        result = sample_unconditional(model, 32, stats=STATS, length=120, seed=5, bias=bias)
        spread[bias] = np.concatenate([line.offsets[1:, :2] for line in result.lines]).std(0)
    assert np.all(spread[3.0] < 0.5 * spread[0.0]), spread


def test_texts_must_be_encodable_and_can_be_repaired():
    model = tiny_model("synthesis")
    with pytest.raises(TextError, match="'x'"):
        sample_text(model, ALPHABET, ["abx"], stats=STATS, seed=0)
    with pytest.raises(TextError):
        sample_text(model, ALPHABET, ["  "], stats=STATS, seed=0)
    alphabet = Alphabet(" abce'-")
    assert replace_unknown(alphabet, "\u00e9a\u2019B\u2014z") == ("ea'b- ", {"\u00e9": "e", "\u2019": "'", "B": "b",
                                                                         "\u2014": "-", "z": " "})  # fmt: skip
    assert wrap("the quick  brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]


def test_brackets_and_slashes_are_replaced_by_the_nearest_the_alphabet_has():
    assert replace_unknown(Alphabet(" ab()-"), "[a]{b}<a>/b\\")[0] == "(a)(b)(a)-b-"
    assert replace_unknown(Alphabet(" ab[]/l"), "(a) {b} a\\b|")[0] == "[a] [b] a/bl"
    new, made = replace_unknown(Alphabet(" ab"), "[a/b]")
    assert new == " a b " and made == {"[": " ", "/": " ", "]": " "}


def test_results_export_as_plain_arrays_and_json():
    result = sample_text(fixed_window(tiny_model("synthesis"), 0.4), ALPHABET, ["abc", "a"], stats=STATS, seed=0)
    arrays = result.as_arrays()
    assert arrays["line_offsets"].tolist() == [0, 9, 13]
    assert np.array_equal(arrays["offsets"][9:13], result.lines[1].offsets)
    assert arrays["text"].tolist() == ["abc", "a"] and arrays["stop"].tolist() == ["rule", "rule"]
    doc = result.as_dict()
    assert [len(line["offsets"]) for line in doc["lines"]] == [9, 4] and doc["seed"] == 0


# -- style files ------------------------------------------------------------------------


def test_style_round_trip_from_a_store(tiny_store, tmp_path):
    prime, about = style_from_store(tiny_store, "x00-003")
    path = save_style(tmp_path / "s" / "style.json", prime, about)
    back = load_style(path)
    assert back.text == prime.text and back.offsets.dtype == np.float32
    assert np.array_equal(back.offsets, prime.offsets)  # float32 survives JSON exactly
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    for bad, message in ((tmp_path / "bad.json", "not an hwkit style"), (tmp_path / "none.json", "no such")):
        with pytest.raises(StyleError, match=message):
            load_style(bad)


# -- pictures ---------------------------------------------------------------------------


def _n_strokes(offsets: np.ndarray) -> int:
    return len(points_to_strokes(offsets_to_points(offsets)))


def test_animated_svg_times_every_stroke_and_escapes_captions():
    lines = [line.offsets for line in synthetic_lines(3, min_points=60, max_points=90)]
    svg = animated_svg(lines, ["a <b> & c", "", "x"])
    assert "&lt;b&gt; &amp; c" in svg
    paths = list(ET.fromstring(svg).iter(f"{SVG}path"))
    assert len(paths) == sum(_n_strokes(line) for line in lines)
    begins = []
    for path in paths:
        anims = {a.get("attributeName"): a for a in path.iter(f"{SVG}animate")}
        assert set(anims) == {"stroke-dashoffset", "visibility"}
        key_times = [float(k) for k in anims["stroke-dashoffset"].get("keyTimes").split(";")]
        assert key_times == sorted(key_times) and key_times[1] < key_times[2] < 1
        begins.append(key_times[1])
    assert begins == sorted(begins) and begins[0] == 0  # strokes play in writing order, from the start


def test_eos_shading_draws_a_piece_per_point_and_the_png_keeps_the_layout_size():
    lines = [line.offsets for line in synthetic_lines(2, min_points=40, max_points=60)]
    values = [np.linspace(0, 1, len(line)) for line in lines]
    placed = render.layout(lines, ["one", "two <2>"])
    root = ET.fromstring(render.shaded_svg(placed, values))
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "line"]
    for group, line in zip(groups, lines):
        strokes = [g for g in group.iter(f"{SVG}g") if g.get("class") == "stroke"]
        assert len(strokes) == _n_strokes(line)
        assert sum(len(list(s.iter(f"{SVG}polyline"))) for s in strokes) == len(line)
    colours = [p.get("stroke") for p in groups[0].iter(f"{SVG}polyline")]
    assert colours[0] == render.shade_colour(0) and colours[-1] == render.shade_colour(1)
    image = render.shaded_png(placed, values, width=500)
    assert image.size == render.layout_png(placed, width=500).size


def test_density_grid_holds_one_unit_of_probability_per_predicted_point():
    n, m = 12, 2
    offsets = np.zeros((n, 3), np.float32)
    offsets[1:, 0] = 10.0
    offsets[:, 1] = np.sin(np.arange(n)) * 5
    density = Density(
        weights=np.full((n, m), 0.5),
        mu=np.tile([[10.0, 0.0]], (n, m, 1)),
        sigma=np.full((n, m, 2), 1.5),
        rho=np.tile([0.3, -0.5], (n, 1)),
    )
    grid, (x0, x1, y1, y0) = density_grid(offsets, density)
    cell = (x1 - x0) / grid.shape[1]
    assert (y1 - y0) / grid.shape[0] == pytest.approx(cell, rel=0.05)
    # the last step's mass lands beyond the line's box, partly off the grid
    assert grid.sum() * cell**2 == pytest.approx(n - 1, abs=0.6)


def test_attention_and_density_figures_are_written(tmp_path):
    model = fixed_window(tiny_model("synthesis"), 0.2)
    result = sample_text(model, ALPHABET, ["abc", "b a"], stats=STATS, seed=0)
    for draw, name in ((attention_figure, "a.png"), (density_figure, "d.png")):
        path = draw(result.lines, tmp_path / name)
        with Image.open(path) as image:
            assert image.width > 300 and image.height > 200
    with pytest.raises(ValueError, match="synthesis"):
        attention_figure(sample_unconditional(tiny_model("prediction"), 1, stats=STATS, length=5).lines, tmp_path / "x.png")


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_a_big_batch_steps_as_its_lines_would_in_a_small_one(kind):
    """From 8 lines (on one thread) the stepper may run its matmuls on oneDNN (models._PACKED_MIN_BATCH): same numbers."""
    model = tiny_model(kind)
    b = 9
    chars = torch.tensor([[1, 2, 3, 1]] * b)
    big = Stepper(model, chars, chars != 0) if kind == "synthesis" else Stepper(model)
    small = Stepper(model, chars[:2], chars[:2] != 0) if kind == "synthesis" else Stepper(model)
    x = torch.randn(b, 20, 3, generator=torch.Generator().manual_seed(0))
    state = small_state = None
    with torch.no_grad():
        for t in range(20):
            out, state, _ = big(x[:, t], state)
            small_out, small_state, _ = small(x[:2, t], small_state)
            torch.testing.assert_close(out[:2], small_out, atol=1e-5, rtol=1e-4)
            for a, s in zip(state, small_state):
                torch.testing.assert_close(a[:2], s, atol=1e-5, rtol=1e-4)


def test_one_line_steps_alike_on_one_thread_and_on_two():
    """On two threads even one line runs on oneDNN (see ``Stepper._pack``): same numbers as MKL's on one."""
    model = tiny_model("prediction")
    x = torch.randn(1, 20, 3, generator=torch.Generator().manual_seed(1))

    def run(threads: int) -> list[torch.Tensor]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            stepper, state, outs = Stepper(model), None, []
            for t in range(20):
                out, state, _ = stepper(x[:, t], state)
                outs.append(out)
            tried_onednn[threads] = stepper._packed is not None
            return outs
        finally:
            torch.set_num_threads(before)

    tried_onednn: dict[int, bool] = {}
    for a, b in zip(run(1), run(2)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert tried_onednn == {1: False, 2: True}


def test_stops_read_off_after_the_loop_are_those_of_a_check_per_point():
    """Each line of a batch ends at its own third pen lift or its length, whenever the others end."""
    model = tiny_model("prediction")
    for n_lines in (1, 2, 9):
        lines = sample_unconditional(model, n_lines, stats=STATS, length=50, strokes=3, seed=5).lines
        for line in lines:
            lifts = line.offsets[:-1, PEN_UP].sum()  # the last row is a lift either way
            if line.stop == "strokes":
                assert lifts == 2 and len(line.offsets) <= 50
            else:
                assert line.stop == "length" and len(line.offsets) == 50 and lifts <= 2
        assert any(line.stop == "strokes" for line in lines) or n_lines == 1
