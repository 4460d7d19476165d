"""An ffmpeg filter graph as data: streams, filters and outputs compiled to argv.

Why a graph object and not string pasting: every render feature (transitions,
editions, music, name screens) adds filters that consume and produce streams.
Pasting ``-filter_complex`` text by hand means every feature re-solves the same
three problems, and gets one of them wrong sooner or later:

* **labels** - each intermediate stream needs a unique ``[label]``;
* **escaping** - option values pass through two parsers (the filter-graph
  parser, then the filter's option parser), so a customer called
  ``O'Neil: 4-way`` or a path with a comma breaks a naive string;
* **fan-out** - a stream may feed only one filter pad; feeding two needs a
  ``split``/``asplit``, which is easy to forget when recipes are composed.

Here a :class:`Graph` owns all three. Filters are added in the order they are
built, which is always a valid topological order (a :class:`Stream` exists only
after its producer was added). :meth:`Graph.compile` counts each stream's
consumers, inserts splits where a stream is consumed more than once, attaches a
null sink to every filter output nobody consumed (ffmpeg refuses unconnected
pads), and writes long graphs to a script file instead of the command line.

Recipes are plain functions ``recipe(g, *streams, **params) -> Stream`` in
``stinercut_svc/render/recipes``; this module knows nothing about products.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Literal

import attrs

Kind = Literal["v", "a"]

#: Characters the filter-graph parser treats specially inside a filter's argument
#: string (it reads arguments with ``av_get_token(buf, "[],;")``, which also
#: honours backslash and single quotes).
_GRAPH_SPECIAL = frozenset("\\'[],;")
#: Characters that force quoting at the option level: the separators of
#: ``key=value:key=value`` plus the quoting characters themselves.
_OPTION_SPECIAL = frozenset("\\':=")
#: Graph text longer than this goes into a script file when a directory is given.
INLINE_MAX = 4096
#: Name of the script file written into ``script_dir``.
SCRIPT_NAME = "filter_complex.txt"

OptionValue = str | int | float | Fraction | Decimal | bool | PurePath | None


class GraphError(ValueError):
    """A graph that cannot compile (a stream of another graph, a bad option value)."""


@attrs.frozen
class Stream:
    """One stream in a graph: an input's stream (``0:v``) or a filter output (``v3``).

    Frozen and hashable so recipes can pass streams around freely; the graph, not
    the stream, knows who consumes it.
    """

    label: str
    kind: Kind

    @property
    def is_input(self) -> bool:
        """True for a stream of an input file (mapped as ``0:v``, not ``[v3]``)."""
        return ":" in self.label


@attrs.frozen
class _Input:
    target: str
    options: tuple[str, ...]


@attrs.frozen
class _Filter:
    name: str
    inputs: tuple[Stream, ...]
    options: tuple[tuple[str, str], ...]
    outputs: tuple[Stream, ...]


@attrs.frozen
class _Output:
    target: str
    streams: tuple[Stream, ...]
    options: tuple[str, ...]


def format_number(value: float | int | Fraction | Decimal) -> str:
    """A number as ffmpeg should read it: exact, short, never ``4.2000000001``.

    Floats are rounded to microseconds (ffmpeg's time base for options given in
    seconds is ``AV_TIME_BASE`` = 1e-6), then printed without exponent or
    trailing zeros. Fractions stay fractions (``30000/1001``) so frame rates
    are not rounded at all.
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, float) and not math.isfinite(value):
        raise GraphError(f"not a finite number: {value!r}")
    text = format(round(Decimal(str(value)), 6), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _option_text(value: OptionValue) -> str:
    if isinstance(value, bool | int | float | Fraction | Decimal):
        return format_number(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str):
        return value
    raise GraphError(f"unsupported option value {value!r} ({type(value).__name__})")


def escape_option(text: str) -> str:
    """Quote ``text`` for a filter's option parser (level 1 of ffmpeg's escaping).

    Plain values stay as they are (``1280``, ``PTS-STARTPTS``); anything holding
    a separator, a quote, a backslash, or whitespace at either end (which the
    parser would strip) is wrapped in single quotes, a literal quote written as
    ``'\\''`` (close, escaped quote, reopen), exactly as in a POSIX shell.
    """
    if text and not (_OPTION_SPECIAL & set(text)) and text == text.strip():
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def escape_graph(text: str) -> str:
    """Backslash-escape ``text`` for the filter-graph parser (level 2).

    Applied to a filter's whole argument string after :func:`escape_option`, so
    the graph parser hands the option parser exactly what level 1 produced.
    """
    return "".join("\\" + ch if ch in _GRAPH_SPECIAL else ch for ch in text)


def script_flag(version: tuple[int, ...] | None) -> str:
    """The option that reads the graph from a file for this ffmpeg version.

    ``-filter_complex_script`` exists up to 7.x (deprecated in 7.0); ffmpeg 7.0
    added the generic ``-/filter_complex <file>`` form. Unknown version: the
    old spelling, which every version this service supports accepts.
    """
    if version is not None and tuple(version[:1]) >= (7,):
        return "-/filter_complex"
    return "-filter_complex_script"


@attrs.define
class Graph:
    """A filter graph under construction; see the module docstring."""

    _inputs: list[_Input] = attrs.field(factory=list)
    _filters: list[_Filter] = attrs.field(factory=list)
    _outputs: list[_Output] = attrs.field(factory=list)
    _known: set[Stream] = attrs.field(factory=set)
    _counter: int = 0

    # -- building -----------------------------------------------------------

    def input(
        self,
        target: str | PurePath,
        kind: Kind = "v",
        *,
        options: Sequence[str] = (),
    ) -> Stream:
        """Add ``options -i target``; returns its first stream of ``kind``.

        ``options`` are ffmpeg's per-input options (``-ss``, ``-t``, ``-loop``,
        ``-f lavfi``...), placed before its ``-i``.
        """
        self._inputs.append(_Input(str(target), tuple(str(o) for o in options)))
        return self.input_stream(index=len(self._inputs) - 1, kind=kind)

    def input_stream(self, *, index: int, kind: Kind, position: int | None = None) -> Stream:
        """Another stream of input ``index`` (``position``: the n-th of that kind)."""
        if not 0 <= index < len(self._inputs):
            raise GraphError(f"no input {index} (the graph has {len(self._inputs)})")
        label = f"{index}:{kind}" if position is None else f"{index}:{kind}:{position}"
        stream = Stream(label, kind)
        self._known.add(stream)
        return stream

    def filter(
        self,
        name: str,
        *streams: Stream,
        out_kind: Kind | None = None,
        **options: OptionValue,
    ) -> Stream:
        """Add a one-output filter; its output's kind is the first input's.

        ``out_kind`` is needed for sources (no inputs: ``color``, ``anullsrc``)
        and kind-changing filters (``showwaves``). Options whose value is
        ``None`` are left out, so recipes can pass optional settings through.
        """
        (out,) = self.filter_multi(name, *streams, outputs=[out_kind] if out_kind else 1,
                                   **options)
        return out

    def filter_multi(
        self,
        name: str,
        *streams: Stream,
        outputs: int | Sequence[Kind | None],
        **options: OptionValue,
    ) -> tuple[Stream, ...]:
        """Add a filter with several outputs (``asplit``, ``concat`` with ``v=1:a=1``).

        ``outputs`` is a count (all of the first input's kind) or one kind per
        output pad in ffmpeg's pad order. ``split``/``asplit`` get the count as
        their argument. Outputs the caller never uses are sent to a null sink
        at compile time.
        """
        for stream in streams:
            if stream not in self._known:
                raise GraphError(f"stream {stream.label} does not belong to this graph")
        default: Kind | None = streams[0].kind if streams else None
        kinds = [default] * outputs if isinstance(outputs, int) else [k or default
                                                                      for k in outputs]
        if not kinds:
            raise GraphError(f"filter {name} needs at least one output")
        opts: list[tuple[str, str]] = []
        if name in ("split", "asplit") and not options:
            opts.append(("", str(len(kinds))))
        for key, value in options.items():
            if value is not None:
                opts.append((key, _option_text(value)))
        outs: list[Stream] = []
        for kind in kinds:
            if kind is None:
                raise GraphError(f"filter {name} has no input: give its output kind")
            self._counter += 1
            outs.append(Stream(f"{kind}{self._counter}", kind))
        self._known.update(outs)
        self._filters.append(_Filter(name, tuple(streams), tuple(opts), tuple(outs)))
        return tuple(outs)

    def output(
        self,
        target: str | PurePath,
        *streams: Stream,
        options: Sequence[str] = (),
    ) -> None:
        """Add an output file (or pipe) mapping ``streams`` in order, then ``options``."""
        for stream in streams:
            if stream not in self._known:
                raise GraphError(f"stream {stream.label} does not belong to this graph")
        self._outputs.append(_Output(str(target), tuple(streams),
                                     tuple(str(o) for o in options)))

    @property
    def input_count(self) -> int:
        """How many ``-i`` inputs the graph has (the next input's index)."""
        return len(self._inputs)

    # -- compiling ----------------------------------------------------------

    def _consumers(self) -> dict[Stream, int]:
        count: dict[Stream, int] = {}
        for node in self._filters:
            for stream in node.inputs:
                count[stream] = count.get(stream, 0) + 1
        for out in self._outputs:
            for stream in out.streams:
                if not stream.is_input:  # ``-map 0:a`` reads the file, not the graph
                    count[stream] = count.get(stream, 0) + 1
        return count

    def _resolve(self) -> tuple[list[str], dict[tuple[int, int], str], dict[int, list[str]]]:
        """Chains of the compiled graph plus the label each consumer reads.

        Returns the chain texts, ``(filter index, pad) -> label`` for filter
        inputs, and ``output index -> map arguments``.
        """
        consumers = self._consumers()
        pending: dict[Stream, list[str]] = {}
        chains: list[str] = []

        def split_text(stream: Stream, n: int) -> str:
            name = "split" if stream.kind == "v" else "asplit"
            labels = [f"{stream.label.replace(':', '_')}s{i}" for i in range(n)]
            pending[stream] = labels
            return f"[{stream.label}]{name}={n}" + "".join(f"[{lb}]" for lb in labels)

        def take(stream: Stream) -> str:
            labels = pending.get(stream)
            return labels.pop(0) if labels else stream.label

        input_streams = sorted({s for node in self._filters for s in node.inputs if s.is_input},
                               key=lambda s: s.label)
        for stream in input_streams:
            if consumers[stream] > 1:
                chains.append(split_text(stream, consumers[stream]))

        pads: dict[tuple[int, int], str] = {}
        for index, node in enumerate(self._filters):
            ins = []
            for pad, stream in enumerate(node.inputs):
                pads[(index, pad)] = take(stream)
                ins.append(f"[{pads[(index, pad)]}]")
            args = ":".join(escape_option(v) if not k else f"{k}={escape_option(v)}"
                            for k, v in node.options)
            text = "".join(ins) + node.name + (f"={escape_graph(args)}" if args else "")
            sinks = []
            for stream in node.outputs:
                text += f"[{stream.label}]"
                used = consumers.get(stream, 0)
                if used == 0:
                    sink = "nullsink" if stream.kind == "v" else "anullsink"
                    sinks.append(f"[{stream.label}]{sink}")
            chains.append(text)
            chains.extend(sinks)
            for stream in node.outputs:
                if consumers.get(stream, 0) > 1:
                    chains.append(split_text(stream, consumers[stream]))

        maps: dict[int, list[str]] = {}
        for index, out in enumerate(self._outputs):
            mapped: list[str] = []
            for stream in out.streams:
                mapped += ["-map", stream.label if stream.is_input else f"[{take(stream)}]"]
            maps[index] = mapped
        return chains, pads, maps

    def filter_text(self, *, separator: str = ";") -> str:
        """The ``-filter_complex`` text alone (empty when there are no filters)."""
        chains, _, _ = self._resolve()
        return separator.join(chains)

    def script_text(self) -> str:
        """The graph as a script file holds it: one chain per line."""
        chains, _, _ = self._resolve()
        return ";\n".join(chains) + "\n"

    def compile(
        self,
        script_dir: str | PurePath | None = None,
        *,
        inline_max: int = INLINE_MAX,
        flag: str = "-filter_complex_script",
        write_script: bool = True,
    ) -> list[str]:
        """The argv after ``ffmpeg`` and its global options.

        ``[inputs] [-filter_complex G | flag FILE] [per output: -map ... options target]``.
        The graph goes into ``script_dir/filter_complex.txt`` (one chain per
        line) when a directory is given and the text is longer than
        ``inline_max``: a long graph on the command line hits ``ARG_MAX`` and
        makes ``ps`` and logs unreadable. ``flag`` comes from :func:`script_flag`.
        ``write_script=False`` only names the file (pure callers write
        :meth:`script_text` there themselves).
        """
        if not self._outputs:
            raise GraphError("the graph has no output")
        chains, _, maps = self._resolve()
        argv: list[str] = []
        for inp in self._inputs:
            argv += [*inp.options, "-i", inp.target]
        text = ";".join(chains)
        if chains:
            if script_dir is not None and len(text) > inline_max:
                script = Path(script_dir) / SCRIPT_NAME
                if write_script:
                    script.write_text(";\n".join(chains) + "\n", encoding="utf-8")
                argv += [flag, str(script)]
            else:
                argv += ["-filter_complex", text]
        for index, out in enumerate(self._outputs):
            argv += [*maps[index], *out.options, out.target]
        return argv
