"""W3C InkML in and out: annotated ink files -> lines, generated lines -> an InkML file.

Which ink is a line
    InkML has no notion of a text line; corpora mark their units by annotating
    groups. CROHME puts ``<annotation type="truth">`` on ``<traceGroup>``s that
    point at traces through ``<traceView traceDataRef="...">``; IAMonDo nests
    ``<traceView>`` containers (Document > Textblock > Textline > Word) that carry
    ``<annotation type="transcription">`` and ``<annotation type="type">``. Both
    kinds of element are groups here. A group with a transcription and no
    transcribed group inside it is one line, of all the ink inside it: CROHME
    gives its symbols, IAMonDo its words. ``group_type`` chooses the groups of one
    ``type`` annotation instead (``"Textline"`` for IAMonDo's lines, the level
    line synthesis wants), each with all the ink inside it. A transcribed group
    that holds transcribed groups is a container (CROHME wraps its symbols in one
    labelled "Segmentation"), not an input: ink in it outside its transcribed
    parts is reported as lacking a transcription, as is ink in no transcribed
    group at all. The file's top-level transcription belongs to ``<ink>`` as to
    an outermost group: it is the line, of all the file's ink, when no group
    inside is transcribed (a file of loose traces, or of unlabelled groups).
    A trace that some ``<traceView>`` refers to is data, not ink of its own: it
    counts only where it is referred to (IAMonDo's raw-data group and CROHME's
    top-level traces would otherwise be reported as unannotated ink).

Ids and skips
    A file of one input is ``<stem>``; a file of several is ``<stem>-<k>``, ``k``
    counting lines and skipped groups alike in document order (zero-padded, so ids
    sort in file order), so a line keeps its id when a sibling is mended or broken.
    A broken group costs only itself; what spoils the whole file (bad XML, a DTD,
    another root) is reported once under ``<stem>``.

Trace values (InkML 2011)
    Points are separated by commas; values by whitespace, or by nothing where a
    sign or a difference prefix separates them (``3-5``, ``'23'43``), as the tools
    that write differences do. The prefixes ``!`` (explicit), ``'`` (first
    difference) and ``"`` (second difference) stick to their channel until the next
    prefix, and every trace starts explicit; a difference with nothing to apply to
    is refused rather than guessed. Channel order comes from the ``<traceFormat>``
    in force (default X Y); values of every other channel are counted by position
    and otherwise ignored, so ``T``/``F``/``*``/``?`` are accepted there and refused
    in X and Y. Intermittent channels may be left off the end of a point.
    ``type="penUp"`` traces are dropped (hover, not ink); continuation traces stay
    separate strokes; a ``<traceView>`` with ``from``/``to`` ranges is refused.

Contexts
    The trace format and ink source in force come from, in increasing priority:
    the default (X Y, raw units); a ``<traceFormat>`` or ``<inkSource>`` placed
    directly in ``<ink>`` (CROHME does this, though the schema does not allow it)
    and a top-level ``<context>``, each for what follows it; ``contextRef`` on a
    ``<traceGroup>``; ``contextRef`` on the ``<trace>``. A ``<context>`` builds on
    its ``contextRef``, then its ``inkSource``/``inkSourceRef``, then its
    ``traceFormat``/``traceFormatRef``. The reserved ids ``#DefaultContext``,
    ``#DefaultTraceFormat`` and ``#DefaultInkSource`` name the defaults. Brushes,
    canvases and canvas transforms are ignored: they hold no channels.

Units
    When both X and Y have a physical scale, points are converted to millimetres;
    otherwise both stay in raw file units (converting one axis would distort the
    ink). A channel's ``units`` attribute (m, cm, mm, in, pt, pc) gives the scale
    of its values directly; failing that, the ink source's ``resolution`` channel
    property does, either as values per length (``1000`` in ``1/cm``) or as a
    length per value (``0.1`` in ``mm``); a resolution that cannot be read is
    ignored. Millimetres, because a physical unit is the only one that devices
    share; the store's normalisation makes the scale itself irrelevant to the
    networks, but cleaning thresholds such as ``max_jump`` are in store units.
    A channel with ``orientation="-ve"`` is negated, so y always grows downward
    (InkML's own convention, as in IAM-OnDB and SVG).

Safety
    ``defusedxml`` is not a dependency, so files go through expat directly with
    the policy of ``iam.py``: a DOCTYPE is refused as soon as it starts, before
    its internal subset (where entity declarations live) is read, so no entity is
    ever expanded and no external DTD or entity is ever fetched. InkML needs no
    DTD, so no valid file is lost.

Writing
    One ``<traceGroup>`` per line with ``<annotation type="truth">``, one
    ``<trace>`` per stroke, X and Y declared in a context that every group
    refers to. Absolute positions are written (every reader understands them;
    differences would only save bytes), each as the shortest decimal that reads
    back as the same float64, so ``parse_inkml(write_inkml(x))`` returns exactly
    the points of ``offsets_to_points(x)``; offsets recomputed from them match the
    originals to float32 rounding of the running sum.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar
from xml.parsers import expat
from xml.sax.saxutils import escape

import numpy as np

from hwkit.iam import ENTITY, MALFORMED, Skip
from hwkit.strokes import offsets_to_points, points_to_offsets, points_to_strokes, strokes_to_points

INKML_NS = "http://www.w3.org/2003/InkML"
_XML_NS = "http://www.w3.org/XML/1998/namespace"

# Skip reasons (MALFORMED and ENTITY are shared with iam.py, so summaries group them together).
NOT_INKML = "not an inkml file"
NO_TRACES = "no traces"
NO_TRANSCRIPTION = "no transcription"
OTHER_TYPE = "other group type"  # only with group_type: ink outside every group of that type
CHANNEL_MISMATCH = "channel mismatch"
NO_XY = "no x or y channel"
NON_NUMERIC = "non-numeric trace value"
BAD_DIFFERENCE = "difference without a previous value"
UNRESOLVED = "unresolved reference"
UNSUPPORTED = "unsupported inkml feature"

_TEXT_TYPES = ("truth", "transcription")
_DEFAULT_IDS = ("DefaultContext", "DefaultTraceFormat", "DefaultInkSource")
_MM_PER = {"m": 1000.0, "cm": 10.0, "mm": 1.0, "in": 25.4, "pt": 25.4 / 72, "pc": 25.4 / 6}


@dataclass(frozen=True, eq=False)
class InkLine:
    """One annotated unit of ink: absolute ``points`` ``(n, 3)`` x, y, pen_up (float64, y down,
    millimetres or raw units as the file allows) and its text (stripped; may be empty)."""

    points: np.ndarray
    text: str
    line_id: str

    @property
    def offsets(self) -> np.ndarray:
        """The line in the store's format: offsets ``(n, 3)`` float32, row 0 at the origin."""
        return points_to_offsets(self.points).astype(np.float32)


@dataclass(frozen=True)
class Skipped:
    """An input left out: a whole file (``line_id`` is the stem) or one group, and why."""

    line_id: str
    reason: str


def parse_inkml(data: bytes, name: str, *, group_type: str | None = None) -> list[InkLine | Skipped]:
    """Every input of one InkML file, in document order: an ``InkLine``, or a ``Skipped``
    with one of the reason constants above. Never raises for bad input.

    ``name`` (a file name, or its path within a corpus) only names the results:
    ids are built on it without its suffix, folders kept, so that files of the
    same name in different folders never share an id. ``group_type`` picks the
    groups annotated ``<annotation type="type">`` with that value as the lines,
    instead of the innermost transcribed groups.
    """
    stem = os.path.splitext(name)[0]
    try:
        doc = _Document(_read_xml(data))
        units = doc.units(group_type)
    except Skip as skip:
        return [Skipped(stem, skip.reason)]
    except RecursionError:  # nesting far deeper than any ink needs
        return [Skipped(stem, UNSUPPORTED)]
    width = max(2, len(str(len(units))))
    ids = [stem] if len(units) == 1 else [f"{stem}-{k:0{width}d}" for k in range(1, len(units) + 1)]
    return [unit.result(doc, line_id) for unit, line_id in zip(units, ids)]


# -- XML --------------------------------------------------------------------------


def _read_xml(data: bytes) -> ET.Element:
    """Parse with expat, refusing any DTD; InkML elements (or un-namespaced ones) get bare tag
    names, ``xml:id`` stays ``xml:id``, anything foreign keeps its ``{uri}name``."""

    def refuse(*_args) -> None:
        raise Skip(ENTITY)

    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = lambda tag, attrs: builder.start(_local(tag), {_local(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(_local(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, LookupError, ValueError):  # the last two: an unknown or multi-byte declared encoding
        raise Skip(MALFORMED) from None
    root = builder.close()
    if root.tag != "ink":
        raise Skip(NOT_INKML)
    return root


def _local(name: str) -> str:
    uri, sep, local = name.rpartition("}")
    if not sep or uri == INKML_NS:
        return local
    return f"xml:{local}" if uri == _XML_NS else f"{{{uri}}}{local}"


def _text(element: ET.Element) -> str:
    return "".join(element.itertext())


def _annotation(element: ET.Element, types: Sequence[str]) -> str | None:
    """The text of the first direct ``<annotation>`` of one of ``types``, None if there is none; its runs of
    whitespace made one space, as a pretty-printer's line breaks and tabs are layout, not text (a line is
    one line of text: a tab would be a character no model writes)."""
    for child in element:
        if child.tag == "annotation" and child.get("type") in types:
            return " ".join(_text(child).split())
    return None


def _is_group(element: ET.Element) -> bool:
    """traceGroups, and traceViews that hold other views rather than refer to data."""
    return element.tag == "traceGroup" or (element.tag == "traceView" and element.get("traceDataRef") is None)


# -- formats and contexts ---------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    """A trace format: channel names in value order (regular ones first), and what X and Y mean."""

    channels: tuple[str | None, ...] = ("X", "Y")
    regular: int = 2
    mm_per_value: dict[str, float] = field(default_factory=dict)  # from a channel's length units
    negated: frozenset[str] = frozenset()  # channels with orientation="-ve"


@dataclass(frozen=True)
class _Context:
    format: _Format = field(default_factory=_Format)
    resolution: dict[str, float] = field(default_factory=dict)  # millimetres per value, from an inkSource

    def scale(self) -> np.ndarray:
        """Multipliers for x and y: to millimetres when both axes allow it, else 1; -1 where negated."""
        mm = [self.format.mm_per_value.get(c) or self.resolution.get(c) for c in ("X", "Y")]
        scale = np.array(mm if all(mm) else [1.0, 1.0])
        return scale * [-1.0 if c in self.format.negated else 1.0 for c in ("X", "Y")]


_DEFAULT = _Context()


def _length_scale(value: str | None, units: str | None) -> float | None:
    """Millimetres per value for a resolution (``1000`` per ``1/cm``, or ``0.1`` ``mm``); None if unreadable."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    inverse = (units or "").startswith("1/")
    mm = _MM_PER.get((units or "").removeprefix("1/"))
    if mm is None or not np.isfinite(v) or v <= 0:
        return None
    return mm / v if inverse else mm * v


def _read_format(element: ET.Element) -> _Format:
    regular = [c for c in element if c.tag == "channel"]
    intermittent = [c for group in element if group.tag == "intermittentChannels" for c in group if c.tag == "channel"]
    channels = regular + intermittent
    return _Format(
        channels=tuple(c.get("name") for c in channels),
        regular=len(regular),
        mm_per_value={c.get("name"): _MM_PER[c.get("units")] for c in channels if c.get("units") in _MM_PER},
        negated=frozenset(c.get("name") for c in channels if c.get("orientation") == "-ve"),
    )


def _read_resolution(ink_source: ET.Element) -> dict[str, float]:
    out = {}
    for group in ink_source:
        if group.tag == "channelProperties":
            for p in group:
                if p.tag == "channelProperty" and p.get("name") == "resolution":
                    mm = _length_scale(p.get("value"), p.get("units"))
                    if mm is not None:
                        out[p.get("channel")] = mm
    return out


# -- trace values -----------------------------------------------------------------

_PLAIN = re.compile(r"[\d\s.,eE+-]*")  # what the fast path may hand to float()
_VALUE = re.compile(r"""\s*(?:([!'"]?)\s*([-+]?)\s*(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([TF*?]))""")


class _Channel:
    """One channel's decoding state within a trace: a difference prefix sticks until the next one."""

    __slots__ = ("last", "order", "step")

    def __init__(self) -> None:
        self.order, self.last, self.step = "!", None, None

    def value(self, prefix: str, x: float) -> float:
        self.order = prefix or self.order
        if self.order == "!":
            step, value = (None if self.last is None else x - self.last), x
        elif self.order == "'" and self.last is not None:
            step = x
            value = self.last + step
        elif self.order == '"' and self.step is not None:
            step = self.step + x
            value = self.last + step
        else:
            raise Skip(BAD_DIFFERENCE)
        self.last, self.step = value, step
        return value


def _parse_trace(text: str, fmt: _Format) -> np.ndarray:
    """A ``<trace>``'s text -> its x, y values ``(n, 2)`` float64 as written; raises ``Skip``."""
    try:
        ix, iy = fmt.channels.index("X"), fmt.channels.index("Y")
    except ValueError:
        raise Skip(NO_XY) from None
    if max(ix, iy) >= fmt.regular:
        raise Skip(NO_XY)
    points = text.split(",")
    if not points[-1].strip():  # no points at all, or a trailing comma
        points.pop()
    plain = fmt.regular == len(fmt.channels) and _PLAIN.fullmatch(text)
    xy = _plain_values(points, fmt.regular, (ix, iy)) if plain else None
    if xy is None:
        xy = _coded_values(points, len(fmt.channels), fmt.regular, (ix, iy))
    if not np.isfinite(xy).all():
        raise Skip(NON_NUMERIC)
    return xy


def _plain_values(points: list[str], total: int, xy: tuple[int, int]) -> np.ndarray | None:
    """The common case, whitespace-separated explicit numbers for every channel, in one numpy
    conversion; None sends the trace to ``_coded_values``, which decides what is wrong."""
    rows = [p.split() for p in points]
    if any(len(r) != total for r in rows):
        return None
    try:
        values = np.array(rows, dtype=np.float64).reshape(len(rows), total)
    except ValueError:
        return None
    return values[:, list(xy)]


def _coded_values(points: list[str], total: int, regular: int, xy: tuple[int, int]) -> np.ndarray:
    """The general grammar, a value at a time: run-together values, prefixes, wildcards, intermittent channels."""
    channels = {xy[0]: _Channel(), xy[1]: _Channel()}
    out = np.empty((len(points), 2))
    for i, point in enumerate(points):
        pos = n = 0
        while m := _VALUE.match(point, pos):
            pos = m.end()
            if n in channels:
                if m[4]:
                    raise Skip(NON_NUMERIC)
                x = float(m[3])
                out[i, xy.index(n)] = channels[n].value(m[1], -x if m[2] == "-" else x)
            n += 1
        if point[pos:].strip():
            raise Skip(NON_NUMERIC)
        if not regular <= n <= total:
            raise Skip(CHANNEL_MISMATCH)
    return out


# -- the document -----------------------------------------------------------------


T = TypeVar("T")


def _guard(make: Callable[..., T], *args) -> T | str:
    """``make(*args)``, or the reason it raised: a bad context spoils only the traces read in it."""
    try:
        return make(*args)
    except Skip as skip:
        return skip.reason


@dataclass(eq=False)
class _Group:
    """A group (or the ``<ink>`` root) with the ink it holds itself, in document order."""

    element: ET.Element
    parent: _Group | None
    leaves: list[ET.Element] = field(default_factory=list)  # <trace>s and <traceView traceDataRef>s
    ink_below: bool = False  # whether it or any group inside it holds ink
    transcribed_below: bool = False  # whether any group inside it has a transcription

    @cached_property
    def text(self) -> str | None:
        return _annotation(self.element, _TEXT_TYPES)

    @cached_property
    def type(self) -> str | None:
        return _annotation(self.element, ("type",))


@dataclass(eq=False)
class _Unit:
    """One input of a file: a line to build from ``leaves``, or a group already known to be left out."""

    group: _Group
    leaves: list[ET.Element]
    reason: str | None = None

    def result(self, doc: _Document, line_id: str) -> InkLine | Skipped:
        text = self.group.text
        reason = self.reason or (NO_TRANSCRIPTION if text is None else None)
        if reason is not None:
            return Skipped(line_id, reason)
        try:
            return InkLine(doc.points(self.leaves), text, line_id)
        except Skip as skip:
            return Skipped(line_id, skip.reason)


class _Document:
    """An ``<ink>`` tree read once: every trace parsed in its context, every group with its own ink."""

    def __init__(self, root: ET.Element):
        self.ids: dict[str, ET.Element] = {}
        self.position: dict[ET.Element, int] = {}  # document order
        for i, element in enumerate(root.iter()):
            self.position[element] = i
            key = element.get("xml:id") or element.get("id")
            if key is not None:
                self.ids.setdefault(key, element)
        self.traces: dict[ET.Element, np.ndarray | str] = {}
        self.contexts: dict[ET.Element, _Context | str] = {}
        self.groups = [_Group(root, None)]
        self._walk(root, _DEFAULT, self.groups[0])
        self.referenced = self._referenced()
        for group in reversed(self.groups):  # inner groups come later
            group.ink_below |= bool(group.leaves)
            if group.parent is not None:
                group.parent.ink_below |= group.ink_below
                group.parent.transcribed_below |= group.transcribed_below or group.text is not None

    # -- reading ---------------------------------------------------------------------

    def _walk(self, element: ET.Element, ctx: _Context | str, group: _Group | None) -> None:
        """Parse the traces under ``element`` and record groups; ``group`` is None inside ``<definitions>``."""
        top = element.tag == "ink"
        for child in element:
            tag = child.tag
            if tag == "definitions":
                self._walk(child, ctx, None)
            elif tag == "context" and top:
                ctx = _guard(self._context, child, ctx)
            elif tag in ("traceFormat", "inkSource") and top:
                ctx = _guard(self._extend, ctx, child)
            elif tag == "trace":
                self.traces[child] = _guard(self._trace, child, _guard(self._ref_context, child, ctx))
                if group is not None:
                    group.leaves.append(child)
            elif _is_group(child):
                inner = None if group is None else _Group(child, group)
                if inner is not None:
                    self.groups.append(inner)
                sub = _guard(self._ref_context, child, ctx) if tag == "traceGroup" else ctx
                self._walk(child, sub, inner)
            elif tag == "traceView" and group is not None:
                group.leaves.append(child)

    def _trace(self, element: ET.Element, ctx: _Context | str) -> np.ndarray:
        if isinstance(ctx, str):
            raise Skip(ctx)
        if element.get("type") == "penUp":
            return np.zeros((0, 2))
        return _parse_trace(_text(element), ctx.format) * ctx.scale()

    def _target(self, ref: str, tags: Sequence[str]) -> ET.Element | None:
        """The element ``ref`` (``#id`` or ``id``) names, or None for a reserved default; raises ``Skip``."""
        key = ref.strip().removeprefix("#")
        target = self.ids.get(key)
        if target is None and key in _DEFAULT_IDS:
            return None
        if target is None or target.tag not in tags:
            raise Skip(UNRESOLVED)
        return target

    def _ref_context(self, element: ET.Element, ctx: _Context | str) -> _Context | str:
        ref = element.get("contextRef")
        if ref is None:
            return ctx
        target = self._target(ref, ("context",))
        return _DEFAULT if target is None else self._defined_context(target)

    def _defined_context(self, element: ET.Element) -> _Context:
        """A ``<context>`` met by reference, built once (a reference cycle is unresolved)."""
        known = self.contexts.get(element)
        if isinstance(known, _Context):
            return known
        if known is not None:
            raise Skip(known)
        self.contexts[element] = UNRESOLVED  # in progress: a cycle back here fails
        self.contexts[element] = _guard(self._context, element, _DEFAULT)
        return self._defined_context(element)

    def _context(self, element: ET.Element, base: _Context | str) -> _Context:
        ctx = self._ref_context(element, base)
        if isinstance(ctx, str):
            raise Skip(ctx)
        source = self._part(element, "inkSource", "inkSourceRef")
        if source is not None:
            ctx = self._extend(ctx, source)
        fmt = self._part(element, "traceFormat", "traceFormatRef")
        return ctx if fmt is None else self._extend(ctx, fmt)

    def _part(self, element: ET.Element, tag: str, ref_attr: str) -> ET.Element | None:
        """A context's child ``tag``, else the element its ``ref_attr`` names (None for neither or a default)."""
        child = next((c for c in element if c.tag == tag), None)
        if child is not None or element.get(ref_attr) is None:
            return child
        return self._target(element.get(ref_attr), (tag,))

    @staticmethod
    def _extend(ctx: _Context | str, element: ET.Element) -> _Context:
        """``ctx`` with a ``<traceFormat>`` or an ``<inkSource>`` (its format, if any, and its resolution) applied."""
        if isinstance(ctx, str):
            raise Skip(ctx)
        if element.tag == "traceFormat":
            return _Context(_read_format(element), ctx.resolution)
        fmt = next((c for c in element if c.tag == "traceFormat"), None)
        return _Context(ctx.format if fmt is None else _read_format(fmt), _read_resolution(element))

    # -- references ------------------------------------------------------------------

    def _reached(self, view: ET.Element, seen: frozenset[ET.Element] = frozenset()) -> Iterator[ET.Element]:
        """Everything a ``<traceView traceDataRef>`` leads to, in order: the views it follows, the
        groups it opens and the traces it ends at; raises ``Skip``."""
        if view.get("from") is not None or view.get("to") is not None:
            raise Skip(UNSUPPORTED)
        target = self._target(view.get("traceDataRef"), ("trace", "traceGroup", "traceView"))
        if target is None or target in seen:
            raise Skip(UNRESOLVED)
        yield target
        if target.get("traceDataRef") is not None:
            yield from self._reached(target, seen | {target})
        elif target.tag != "trace":
            for child in target.iter():
                if child.tag == "trace":
                    yield child
                elif child.tag == "traceView" and child.get("traceDataRef") is not None:
                    yield child
                    yield from self._reached(child, seen | {target})

    def _traces_of(self, leaf: ET.Element) -> list[ET.Element]:
        """The ``<trace>`` elements a leaf stands for, in order; raises ``Skip``."""
        if leaf.tag == "trace":
            return [leaf]
        return [element for element in self._reached(leaf) if element.tag == "trace"]

    def _referenced(self) -> set[ET.Element]:
        """What the views of all groups reach: data for them, not ink of its own. A broken
        reference still counts what it reached (its line reports the break)."""
        found = set()
        for view in (leaf for g in self.groups for leaf in g.leaves if leaf.tag == "traceView"):
            try:
                for element in self._reached(view):
                    found.add(element)
            except Skip:
                pass
        return found

    def points(self, leaves: Sequence[ET.Element]) -> np.ndarray:
        """The ink of ``leaves`` as one ``points`` array (each trace once); raises ``Skip``."""
        strokes, used = [], set()
        for leaf in leaves:
            for trace in self._traces_of(leaf):
                if trace in used:
                    continue
                used.add(trace)
                xy = self.traces.get(trace, UNRESOLVED)
                if isinstance(xy, str):
                    raise Skip(xy)
                strokes.append(xy)
        points = strokes_to_points(strokes)
        if not len(points):
            raise Skip(NO_TRACES)
        return points

    # -- inputs ----------------------------------------------------------------------

    def units(self, group_type: str | None) -> list[_Unit]:
        """Every input of the file in document order (see the module docstring for the rules)."""
        own = {g: [leaf for leaf in g.leaves if leaf not in self.referenced] for g in self.groups}

        def qualifies(g: _Group) -> bool:
            if group_type:
                return g.type == group_type
            return g.text is not None and not g.transcribed_below

        def owner(g: _Group | None) -> _Group | None:
            while g is not None and not qualifies(g):
                g = g.parent
            return g

        units: dict[_Group, _Unit] = {}
        for g in self.groups:
            if own[g]:
                o = owner(g)
                unit = units.setdefault(o or g, _Unit(o or g, []))
                unit.leaves += own[g]
                if o is None:
                    unit.reason = OTHER_TYPE if group_type else NO_TRANSCRIPTION
            elif qualifies(g) and not g.ink_below:
                units[g] = _Unit(g, [], NO_TRACES)
        if not units:  # no ink and nothing transcribed: the file itself is the input
            return [_Unit(self.groups[0], [], NO_TRACES)]
        for unit in units.values():  # a group's own ink may come after that of groups inside it
            unit.leaves.sort(key=self.position.__getitem__)
        return sorted(units.values(), key=lambda u: self.position[u.group.element])


# -- writing ----------------------------------------------------------------------

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HEAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<ink xmlns="{INKML_NS}">
  <definitions>
    <context xml:id="hwkit">
      <traceFormat>
        <channel name="X" type="decimal"/>
        <channel name="Y" type="decimal"/>
      </traceFormat>
    </context>
  </definitions>
"""


def write_inkml(lines: Sequence[tuple[np.ndarray, str]]) -> str:
    """Lines of ``(offsets (n, 3), text)`` in pen units -> an InkML document (encode it as UTF-8).

    Raises ValueError for offsets that are not ``(n, 3)`` and finite, or text that XML 1.0
    cannot hold (control characters other than tab, newline and carriage return).
    """
    parts = [_HEAD]
    for k, (offsets, text) in enumerate(lines, 1):
        offsets = np.asarray(offsets, dtype=np.float64)
        if offsets.ndim != 2 or offsets.shape[1] != 3 or not np.isfinite(offsets).all():
            raise ValueError(f"line {k}: offsets must be a finite (n, 3) array, got shape {offsets.shape}")
        if _NOT_XML.search(text):
            raise ValueError(f"line {k}: the text holds a character XML cannot represent")
        parts.append(f'  <traceGroup xml:id="line{k}" contextRef="#hwkit">\n')
        parts.append(f'    <annotation type="truth">{escape(text, {chr(13): "&#13;"})}</annotation>\n')
        for stroke in points_to_strokes(offsets_to_points(offsets)):
            values = ", ".join(f"{_number(x)} {_number(y)}" for x, y in stroke.tolist())
            parts.append(f"    <trace>{values}</trace>\n")
        parts.append("  </traceGroup>\n")
    parts.append("</ink>\n")
    return "".join(parts)


def _number(v: float) -> str:
    """The shortest decimal that reads back as ``v`` exactly; integers without ``.0``."""
    return repr(v).removesuffix(".0")
