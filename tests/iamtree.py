"""Tiny IAM-OnDB trees for tests: the real layout, as folders or as ``*-all.tar.gz`` archives,
with any mix of broken inputs.

``write_tree`` returns what a correct prepare must make of the tree: every good
line (its text, writer and the absolute points written) and every input that must
be left out, with its reason. Good lines come in the site's canonical form and,
for one line in five, in an unusual but valid form (single quotes, attributes in
another order, comments), so both parser paths are exercised.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwkit.strokes import strokes_to_points

BROKEN = (
    "malformed xml",
    "entity declaration",
    "bad coordinates",
    "coordinates out of range",
    "empty stroke set",
    "too few points",
    "empty transcription",
    "no transcription line",
    "no ascii file",
    "not a stroke file",
)
WORDS = ("the", "quick", "brown", "fox", "café", "naïve", "Zürich", "Ærø", "<tag>", "A&B", "[bold]", "42,", "ok?")
ARCHIVES = {"lineStrokes": "lineStrokes-all.tar.gz", "ascii": "ascii-all.tar.gz", "original": "original-xml-all.tar.gz"}

_HEAD = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    "<WhiteboardCaptureSession{attrs}>\n"
    "  <WhiteboardDescription>\n"
    '    <SensorLocation corner="top_left"/>\n'
    '    <DiagonallyOppositeCoords x="6512" y="1376"/>\n'
    '    <VerticallyOppositeCoords x="966" y="1376"/>\n'
    '    <HorizontallyOppositeCoords x="6512" y="787"/>\n'
    "  </WhiteboardDescription>\n"
    "  <StrokeSet>\n"
)
_TAIL = "  </StrokeSet>\n</WhiteboardCaptureSession>\n"
BOMB = (  # billion laughs: expanding &lol9; would take gigabytes
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE WhiteboardCaptureSession [\n'
    '  <!ENTITY lol "lol">\n'
    + "".join(f'  <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10))
    + "]>\n"
)


@dataclass
class Expected:
    text: str
    writer: int
    points: np.ndarray  # absolute x, y, pen_up as written, before any cleaning


@dataclass
class Tree:
    root: Path
    lines: dict[str, Expected] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # line id or relative path -> reason


def form_ids(n: int) -> list[tuple[str, str]]:
    """``(folder, form_id)`` pairs such as ``("a01-000", "a01-000u")``; every fifth form has no suffix."""
    out = []
    for k in range(n):
        folder = f"{chr(ord('a') + k // 6)}{k % 6 + 1:02d}-{(k * 37) % 1000:03d}"
        out.append((folder, folder + ("" if k % 5 == 4 else "uxwz"[k % 4])))
    return out


def random_strokes(
    rng: np.random.Generator, n_points: int, *, jump: bool = False, repeat: bool = False, decimals: bool = False
) -> list[np.ndarray]:
    """A few strokes of a random walk in IAM-like units, optionally with a repeated reading and
    a glitch (a pen-down step far longer than any max_jump the tests use)."""
    steps = rng.integers(-25, 26, size=(n_points, 2)).astype(np.float64)
    if decimals:
        steps += rng.choice([0.0, 0.25, -0.5], size=steps.shape)
    xy = np.cumsum(steps, axis=0) + [2000.0, 1000.0]
    if jump:
        xy[n_points // 3 :] += [1500.0, -900.0]
    if repeat:
        xy[n_points // 2 + 1] = xy[n_points // 2]
    cuts = sorted(rng.choice(np.arange(5, n_points - 5), size=2, replace=False))
    if jump:  # keep the glitch inside a stroke
        cuts = [c for c in cuts if abs(c - n_points // 3) > 1]
    return np.split(xy, cuts)


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def stroke_xml(strokes: Iterable[np.ndarray], *, unusual: bool = False, head_attrs: str = "") -> str:
    parts = [_HEAD.format(attrs=head_attrs)]
    t = 1000.0
    for s in strokes:
        parts.append(f'    <Stroke colour="black" start_time="{t:.2f}" end_time="{t + 0.01 * len(s):.2f}">\n')
        if unusual:
            parts.append("      <!-- <Point x='0' y='0'/> a pen-down comment -->\n")
        for x, y in s:
            t += 0.01
            if unusual:
                parts.append(f"      <Point time='{t:.2f}' y='{_number(y)}'\n        x='{_number(x)}' />\n")
            else:
                parts.append(f'      <Point x="{_number(x)}" y="{_number(y)}" time="{t:.2f}"/>\n')
        parts.append("    </Stroke>\n")
    parts.append(_TAIL)
    return "".join(parts)


def ascii_txt(lines: list[str]) -> bytes:
    ocr, csr = "\n".join(line.upper() for line in lines), "\n".join(lines)
    return f"OCR:\n\n{ocr}\n\nCSR:\n\n{csr}\n".encode("iso-8859-1")


def original_xml(form_id: str, writer: int) -> str:
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession>\n  <General>\n'
        f'    <Form id="{form_id}" writerID="{writer}" Camera="no"/>\n  </General>\n'
        "  <StrokeSet>\n  </StrokeSet>\n</WhiteboardCaptureSession>\n"
    )


def write_tree(
    root: str | Path,
    *,
    forms: int = 4,
    lines_per_form: int = 3,
    writers: int | None = None,
    broken: Iterable[str] = (),
    originals: bool = True,
    task_lists: Mapping[str, Iterable[str]] | None = None,
    archives: bool = False,
    truncate: bool = False,
    demo: bool = False,
    seed: int = 0,
) -> Tree:
    """Write an IAM-OnDB tree at ``root`` and return what prepare must make of it.

    ``writers`` (default ``forms // 2``) writers share the forms round-robin.
    ``broken`` names kinds from ``BROKEN``; each turns one line bad, or adds bad
    inputs ("no ascii file": a whole extra form; "not a stroke file": two stray files). ``truncate`` cuts the lineStrokes
    archive short: the expected lines are then an upper bound.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    broken = list(broken)
    unknown = set(broken) - set(BROKEN)
    assert not unknown, f"unknown broken kinds {unknown}"
    assert lines_per_form >= 3 or "empty transcription" not in broken
    writers = writers or max(1, forms // 2)
    staging = root / ".staging" if archives else root
    tree = Tree(root)
    ids = form_ids(forms + 1)
    slots = [(f, n) for f in range(forms) for n in range(1, lines_per_form + 1)]
    bad_slots = {}
    for kind in ("malformed xml", "entity declaration", "bad coordinates", "coordinates out of range", "empty stroke set",
                 "too few points"):
        if kind in broken:
            bad_slots[slots.pop()] = kind
    if "empty transcription" in broken:  # a middle line: a blank last line would just end the CSR block
        slot = next(s for s in slots if s[1] == 2)
        slots.remove(slot)
        bad_slots[slot] = "empty transcription"

    def put(relpath: str, data: str | bytes) -> None:
        path = staging / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("iso-8859-1") if isinstance(data, str) else data)

    n_forms = forms + ("no ascii file" in broken)
    for f in range(n_forms):
        folder, form = ids[f]
        writer = 10000 + f % writers
        where = f"{folder[:3]}/{folder}"
        texts = []
        for n in range(1, lines_per_form + 1):
            line_id = f"{form}-{n:02d}"
            kind = bad_slots.get((f, n))
            text = "" if kind == "empty transcription" else " ".join(rng.choice(WORDS, size=rng.integers(2, 5)))
            texts.append(text)
            strokes = random_strokes(
                rng, int(rng.integers(60, 90)), jump=n % 2 == 1, repeat=n % 3 == 0, decimals=(f, n) == (0, 1)
            )
            unusual = not kind and (f * lines_per_form + n) % 5 == 0
            xml = stroke_xml(strokes, unusual=unusual)
            if kind == "malformed xml":
                xml = xml[: len(xml) * 3 // 5]
            elif kind == "entity declaration":
                xml = BOMB + stroke_xml(strokes, head_attrs=' note="&lol9;"').split("\n", 1)[1]
            elif kind == "bad coordinates":
                xml = xml.replace('<Point x="', '<Point x="12a', 1)
            elif kind == "coordinates out of range":  # a reading glitch: finite, but far off any board
                xml = xml.replace('<Point x="', '<Point x="9999999', 1)
            elif kind == "empty stroke set":
                xml = stroke_xml([])
            elif kind == "too few points":
                xml = stroke_xml([s[:3] for s in strokes[:2]])
            put(f"lineStrokes/{where}/{line_id}.xml", xml)
            if f == forms:
                tree.skipped[line_id] = "no ascii file"
            elif kind:
                tree.skipped[line_id] = kind
            else:
                tree.lines[line_id] = Expected(text, writer if originals else -1, strokes_to_points(strokes))
        if f < forms:
            put(f"ascii/{where}/{form}.txt", ascii_txt(texts))
        if originals:
            put(f"original/{where}/strokes{form[len(folder):]}.xml", original_xml(form, writer))
        if f == 0 and "no transcription line" in broken:
            line_id = f"{form}-{lines_per_form + 1:02d}"
            put(f"lineStrokes/{where}/{line_id}.xml", stroke_xml(random_strokes(rng, 60)))
            tree.skipped[line_id] = "no transcription line"
    if "not a stroke file" in broken:
        folder = ids[0][0]
        for relpath in (f"lineStrokes/{folder[:3]}/README.txt", f"lineStrokes/{folder[:3]}/{folder}/.DS_Store"):
            put(relpath, b"\x00\x01 not xml")
            tree.skipped[relpath] = "not a stroke file"
    for name, entries in (task_lists or {}).items():
        (root / f"{name}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.txt").write_text("".join(f"{e}\n" for e in entries))
    if demo:
        (root / "DEMO.json").write_text(json.dumps({"generator": "tests"}))
    if archives:
        for part, archive in ARCHIVES.items():
            if (staging / part).is_dir():
                _tar(staging, part, root / archive)
        shutil.rmtree(staging)
        if truncate:
            path = root / ARCHIVES["lineStrokes"]
            data = path.read_bytes()
            path.write_bytes(data[: len(data) * 2 // 3])
    return tree


def _tar(staging: Path, part: str, archive: Path) -> None:
    """Pack a part as the site does: members under ``part/``, files in sorted order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted((staging / part).rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(staging).as_posix())
    archive.write_bytes(buf.getvalue())
