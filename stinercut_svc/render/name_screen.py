"""The passenger (PAX) name screen: template → filled layers → PNGs with keyframe tracks.

A ``pax_template`` asset is either

* the newer release's **animated** SVG: ``[[[WIDTH]]]``/``[[[HEIGHT]]]`` placeholders
  and a ``<script type="application/json" id="stinercut-animation">`` config whose
  layers are SVG groups (``group_id``) or text (``type: "text"``, ``content`` with
  ``{{pax_name}}``/``{{date}}``), first layer at the bottom, each with keyframed
  ``x``/``y``/``opacity``; or
* a **plain** SVG with ``{{pax_name}}``/``{{date}}`` in its text: one static layer.

This module turns a template plus the customer's data into
:class:`PreparedNameScreen`: one cropped PNG per layer (rasterised by resvg at
the output size) and three :class:`~.keyframes.Track` s per layer in output
pixels. The recipe (:mod:`.recipes.name_screen`) turns that into filters; this
module never builds graph text, and the recipe never touches files.

Why things are done the way they are:

* **Positions scale with the output size.** Template coordinates are the SVG's
  user units (its ``viewBox``, typically 1920×1080). They map to the output with
  one uniform scale ``s = min(W/vw, H/vh)``, centred (``xMidYMid meet``, forced
  on every layer), so a 1280×720 or a 1080×1920 render keeps the layout; the
  tracks are scaled before compiling (easing commutes with affine maps).
* **Text is set in the staff's font, checked glyph by glyph.** Text layers load
  only that font into resvg (no system fonts: a silent fallback would print a
  name in some other typeface), after every character of the filled text was
  found in the font's cmap with fontTools; a missing one fails the job naming
  the character and its code point. Text is NFC-normalised first, so a name
  typed with combining accents needs the precomposed glyphs the font has.
* **Long names shrink to fit.** A text layer has a width budget (its
  ``text_style.max_width``, else the room between its resting x position and
  the frame's 5 % safe margins, by anchor); a wider text gets a smaller font
  size. The width is measured from the font's advances, then verified on the
  rendered pixels (kerning and shaping can differ) and corrected once.
* **Layers are cropped to their pixels** and consecutive static layers (no
  animation, full opacity or a constant one) are composited here into one PNG,
  so ffmpeg overlays a few small images per frame instead of many full frames.
* **XML is never pasted.** Filled text goes through ElementTree (escaped on
  serialisation), and templates with a DOCTYPE/ENTITY are refused before parsing
  (the asset upload refuses them too; a file edited on disk is checked again).

All of it is synchronous CPU work; :func:`prepare_name_screen` runs it in a
worker process (resvg holds the GIL) and removes its files if it fails or is
cancelled.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import shutil
import struct
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from datetime import date as Date
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import attrs
import resvg_py
import trio
import trio_parallel
from fontTools.ttLib import TTFont, TTLibError
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..openapi import StrictModel
from .keyframes import Easing, Keyframe, Track

if TYPE_CHECKING:
    from .timeline import TitleCard

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ANIMATION_ID = "stinercut-animation"
#: Design size assumed when a template has neither a viewBox nor numeric width/height.
DEFAULT_VIEWBOX = (0.0, 0.0, 1920.0, 1080.0)
#: Length of a plain (non-animated) template's name screen.
DEFAULT_PLAIN_DURATION_S = 5.0
MIN_DURATION_S = 1.0
MAX_DURATION_S = 30.0
#: Share of the frame kept clear at each side when fitting a name without max_width.
SAFE_MARGIN = 0.05
#: Smallest font size (output px) a long name may shrink to before the job fails.
MIN_FONT_PX = 6.0
#: Date format for ``{{date}}`` when the caller passes a date object.
DATE_FORMAT = "%d.%m.%Y"
MAX_TEMPLATE_BYTES = 5 * 1024 * 1024
#: Elements that draw nothing themselves but that drawn elements may reference.
_RESOURCES = frozenset({
    "defs", "style", "linearGradient", "radialGradient", "filter", "clipPath", "mask",
    "pattern", "symbol", "marker", "font", "font-face",
})
_PLACEHOLDER = re.compile(r"\{\{\s*(pax_name|date)\s*\}\}")
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_SCRIPT = re.compile(
    r"<script\b[^>]*\bid\s*=\s*[\"']" + ANIMATION_ID + r"[\"'][^>]*>(.*?)</script\s*>",
    re.DOTALL | re.IGNORECASE,
)
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px)?\s*$")

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


class NameScreenError(ValueError):
    """The name screen cannot be made; the message is the job's error text."""


# --- options --------------------------------------------------------------------------


class NameScreenOptions(StrictModel):
    """The passenger name screen between the intro and the first clip."""

    enabled: bool = Field(default=False, description="Show the name screen.")
    template_asset: UUID | None = Field(
        default=None, description="uuid of a pax_template asset (animated or plain SVG)."
    )
    duration: float | None = Field(
        default=None,
        ge=MIN_DURATION_S,
        le=MAX_DURATION_S,
        description="Seconds; default: the template's duration (plain SVG: 5). Keyframe "
        "times are stretched to it.",
    )
    font: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"(?i)^[^\x00]+\.(ttf|otf)$",
        description="TTF/OTF file relative to the storage root, e.g. fonts/Brand-Bold.ttf; "
        "default: the template's text_style.font_path when that is relative.",
    )
    background_blur: bool = Field(
        default=True, description="Blurred still of the first clip behind the template."
    )
    sound_asset: UUID | None = Field(
        default=None, description="uuid of an audio asset played under the name screen."
    )
    pax_name: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Passenger name; default: the project's name.",
    )
    date: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="Text for {{date}}; default: the project's creation date (DD.MM.YYYY).",
    )

    @field_validator("font")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError("font must be a path relative to the storage root")
        return value


@attrs.frozen
class CustomerData:
    """What the template's placeholders are filled with."""

    pax_name: str
    date: str

    @classmethod
    def of(cls, pax_name: str, day: Date | str | None) -> CustomerData:
        text = day.strftime(DATE_FORMAT) if isinstance(day, Date) else (day or "")
        return cls(clean_text(pax_name), clean_text(text))

    def fill(self, text: str) -> str:
        return _PLACEHOLDER.sub(
            lambda m: self.pax_name if m.group(1) == "pax_name" else self.date, text
        )


def clean_text(text: str) -> str:
    """NFC, control characters dropped, runs of whitespace as one space."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    return " ".join(text.split())


# --- the animated template config -----------------------------------------------------


class _Config(BaseModel):
    # Unknown keys of the newer release's format (``style``...) are ignored.
    model_config = ConfigDict(extra="ignore")


class KeyframeIn(_Config):
    time: float = Field(ge=0, le=3600)
    value: float = Field(ge=-100_000, le=100_000)
    #: Extension: easing of the move from this keyframe to the next one.
    easing: Easing | None = None


class AnimationIn(_Config):
    property: Literal["x", "y", "opacity"]
    keyframes: list[KeyframeIn] = Field(min_length=1, max_length=1000)
    easing: Easing = "linear"


class InitialIn(_Config):
    x: float = 0.0
    y: float = 0.0
    opacity: float = Field(default=1.0, ge=0, le=1)


class TextStyleIn(_Config):
    font_path: str | None = None
    font_size: float = Field(default=100, gt=0, le=2000)
    fill: str = Field(default="white", max_length=64)
    stroke: str | None = Field(default=None, max_length=64)
    stroke_width: float = Field(default=0, ge=0, le=200)
    #: Extensions: which point of the text (x, y) is, and the width it must fit.
    anchor: Literal["start", "middle", "end"] = "start"
    max_width: float | None = Field(default=None, gt=0)


class LayerIn(_Config):
    id: str = Field(min_length=1, max_length=200)
    group_id: str | None = Field(default=None, max_length=200)
    type: str | None = None
    content: str | None = Field(default=None, max_length=1000)
    text_style: TextStyleIn = Field(default_factory=TextStyleIn)
    initial: InitialIn = Field(default_factory=InitialIn)
    animations: list[AnimationIn] = Field(default_factory=list, max_length=3)


class AnimationConfig(_Config):
    version: str = "1.0"
    name: str | None = None
    duration: float = Field(gt=0, le=MAX_DURATION_S)
    layers: list[LayerIn] = Field(min_length=1, max_length=64)


# --- parsing --------------------------------------------------------------------------


@attrs.frozen
class Template:
    """A parsed template: the SVG without its config, its design box, and the config."""

    root: ET.Element
    viewbox: tuple[float, float, float, float]
    config: AnimationConfig | None

    @property
    def duration(self) -> float:
        return self.config.duration if self.config else DEFAULT_PLAIN_DURATION_S


def parse_template(svg_text: str) -> Template:
    """Parse either template format; :class:`NameScreenError` says what is wrong."""
    if len(svg_text.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        raise NameScreenError("the name screen template is larger than 5 MB")
    if _DTD.search(svg_text):
        raise NameScreenError("the name screen template must not contain a DOCTYPE or entities")
    config: AnimationConfig | None = None
    match = _SCRIPT.search(svg_text)
    if match is not None:
        try:
            config = AnimationConfig.model_validate(json.loads(match.group(1)))
        except json.JSONDecodeError as exc:
            raise NameScreenError(f"the template's animation config is not JSON: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise NameScreenError(
                f"the template's animation config is invalid at {where}: {first['msg']}"
            ) from None
        svg_text = svg_text[: match.start()] + svg_text[match.end():]
    # The size placeholders are replaced per layer; the design box comes from the viewBox.
    svg_text = svg_text.replace("[[[WIDTH]]]", "1920").replace("[[[HEIGHT]]]", "1080")
    try:
        root = ET.fromstring(svg_text)
    except ET.ParseError as exc:
        raise NameScreenError(f"the name screen template is not valid SVG/XML: {exc}") from None
    if _local(root.tag) != "svg":
        raise NameScreenError("the name screen template's root element is not <svg>")
    template = Template(root, _viewbox(root), config)
    if config is not None:
        for layer in config.layers:
            if layer.type == "text":
                continue
            if not layer.group_id:
                raise NameScreenError(
                    f"template layer {layer.id!r} needs a group_id or type \"text\""
                )
            if _find_by_id(root, layer.group_id) is None:
                raise NameScreenError(
                    f"template layer {layer.id!r}: no element with id {layer.group_id!r}"
                )
    return template


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_by_id(root: ET.Element, ident: str) -> ET.Element | None:
    for element in root.iter():
        if element.get("id") == ident:
            return element
    return None


def _viewbox(root: ET.Element) -> tuple[float, float, float, float]:
    box = root.get("viewBox")
    if box:
        try:
            x, y, w, h = (float(part) for part in re.split(r"[\s,]+", box.strip()))
        except ValueError:
            raise NameScreenError(f"the template's viewBox {box!r} is not four numbers") from None
        if w <= 0 or h <= 0:
            raise NameScreenError(f"the template's viewBox {box!r} has no area")
        return x, y, w, h
    width, height = _LENGTH.match(root.get("width", "")), _LENGTH.match(root.get("height", ""))
    if width and height and float(width.group(1)) > 0 and float(height.group(1)) > 0:
        return 0.0, 0.0, float(width.group(1)), float(height.group(1))
    return DEFAULT_VIEWBOX


# --- fonts ----------------------------------------------------------------------------


@attrs.frozen
class FontInfo:
    """What layout needs from a font file (read once with fontTools)."""

    path: Path
    family: str
    units_per_em: int
    ascender: float
    descender: float
    cmap: dict[int, str] = attrs.field(eq=False, repr=False)
    advances: dict[str, int] = attrs.field(eq=False, repr=False)

    def missing(self, text: str) -> list[str]:
        """Characters of ``text`` the font has no glyph for (each once, in order)."""
        seen: list[str] = []
        for ch in text:
            if ord(ch) not in self.cmap and ch not in seen:
                seen.append(ch)
        return seen

    def width(self, text: str, size: float) -> float:
        """Advance width of ``text`` at ``size`` px (no kerning: verified on pixels later)."""
        units = sum(self.advances.get(self.cmap.get(ord(ch), ".notdef"), 0) for ch in text)
        return units * size / self.units_per_em


def load_font(path: Path) -> FontInfo:
    """Read family, metrics, cmap and advances; :class:`NameScreenError` if unusable."""
    try:
        with TTFont(str(path), lazy=True, fontNumber=0) as font:
            cmap = dict(font.getBestCmap() or {})
            if not cmap:
                raise NameScreenError(f"the font {path.name!r} maps no characters")
            name = font["name"]
            family = str(
                name.getDebugName(16) or name.getDebugName(1) or path.stem
            )
            hhea = font["hhea"]
            advances = {glyph: metric[0] for glyph, metric in font["hmtx"].metrics.items()}
            return FontInfo(
                path=path,
                family=family,
                units_per_em=int(font["head"].unitsPerEm),
                ascender=float(hhea.ascent),
                descender=float(hhea.descent),
                cmap=cmap,
                advances=advances,
            )
    except NameScreenError:
        raise
    except FileNotFoundError:
        raise NameScreenError(f"the name screen font {path.name!r} does not exist") from None
    except (TTLibError, KeyError, AttributeError, AssertionError, struct.error) as exc:
        raise NameScreenError(f"the name screen font {path.name!r} cannot be read: {exc}") from None


def check_glyphs(font: FontInfo, text: str, what: str) -> None:
    """Fail naming every character of ``text`` that ``font`` cannot draw."""
    missing = font.missing(text)
    if missing:
        names = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing)
        raise NameScreenError(
            f"the font {font.family!r} has no glyph for {names} in the {what} {text!r}"
        )


# --- layers ---------------------------------------------------------------------------


@attrs.frozen
class RasterLayer:
    """One PNG and where its top-left corner is (output px) and how opaque, over time."""

    png: Path
    width: int
    height: int
    x: Track
    y: Track
    opacity: Track

    @property
    def is_static(self) -> bool:
        return self.x.is_constant and self.y.is_constant and self.opacity.is_constant


@attrs.frozen
class PreparedNameScreen:
    """Everything the recipe needs: output size, duration and the layers, bottom first."""

    width: int
    height: int
    duration: float
    layers: tuple[RasterLayer, ...]


@attrs.frozen
class _Frame:
    """Design units → output pixels: ``px = offset + scale * unit``."""

    width: int
    height: int
    viewbox: tuple[float, float, float, float]

    @property
    def scale(self) -> float:
        _, _, vw, vh = self.viewbox
        return min(self.width / vw, self.height / vh)

    @property
    def offset(self) -> tuple[float, float]:
        vx, vy, vw, vh = self.viewbox
        s = self.scale
        return (self.width - vw * s) / 2 - vx * s, (self.height - vh * s) / 2 - vy * s


def rasterise(
    template: Template,
    data: CustomerData,
    font: FontInfo | None,
    *,
    width: int,
    height: int,
    duration: float | None,
    work_dir: Path,
) -> PreparedNameScreen:
    """The synchronous core of :func:`prepare_name_screen` (CPU: call it in a thread)."""
    if width < 16 or height < 16:
        raise NameScreenError(f"output size {width}x{height} is too small for a name screen")
    total = float(duration if duration is not None else template.duration)
    stretch = total / template.duration
    frame = _Frame(width, height, template.viewbox)
    work_dir.mkdir(parents=True, exist_ok=True)
    if template.config is None:
        layers = [_plain_layer(template, data, font, frame)]
    else:
        layers = [
            _animated_layer(template, layer, data, font, frame, stretch)
            for layer in template.config.layers
        ]
    kept = [layer for layer in layers if layer is not None]
    written = []
    for index, (image, x, y, opacity) in enumerate(_merge_static(kept, frame)):
        path = work_dir / f"layer{index:02d}.png"
        image.save(path, format="PNG", compress_level=1)
        written.append(RasterLayer(path, image.width, image.height, x, y, opacity))
    return PreparedNameScreen(width, height, total, tuple(written))


_Drawn = tuple[Image.Image, Track, Track, Track]


def _render(svg: str, width: int, height: int, font: FontInfo | None, *,
            only_font: bool) -> Image.Image:
    """resvg at exactly ``width``×``height``; RGBA image."""
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=svg,
            width=width,
            height=height,
            skip_system_fonts=only_font,
            font_files=[str(font.path)] if font else None,
            font_family=font.family if font else None,
        )
    except ValueError as exc:
        raise NameScreenError(f"the name screen template cannot be rendered: {exc}") from None
    image = Image.open(io.BytesIO(bytes(png)))
    image.load()
    return image.convert("RGBA")


def _crop(image: Image.Image) -> tuple[Image.Image, int, int] | None:
    box = image.getchannel("A").getbbox()
    if box is None:
        return None
    return image.crop(box), box[0], box[1]


def _tracks(layer: LayerIn, stretch: float) -> dict[str, Track]:
    """x, y, opacity tracks in design units, times stretched to the screen's duration."""
    tracks = {
        "x": Track.constant(layer.initial.x),
        "y": Track.constant(layer.initial.y),
        "opacity": Track.constant(layer.initial.opacity),
    }
    seen: set[str] = set()
    for animation in layer.animations:
        if animation.property in seen:
            raise NameScreenError(
                f"template layer {layer.id!r} animates {animation.property} twice; "
                "put all its keyframes in one animation"
            )
        seen.add(animation.property)
        frames = sorted(animation.keyframes, key=lambda k: k.time)
        easings = [k.easing or animation.easing for k in frames[:-1]]
        values = [k.value for k in frames]
        if animation.property == "opacity" and any(not 0 <= v <= 1 for v in values):
            raise NameScreenError(f"template layer {layer.id!r}: opacity keyframes must be 0..1")
        tracks[animation.property] = Track(
            tuple(Keyframe(k.time * stretch, k.value) for k in frames), tuple(easings)
        )
    return tracks


def _to_pixels(tracks: dict[str, Track], frame: _Frame, dx: float, dy: float) -> tuple[
        Track, Track, Track]:
    """Design-unit translations → top-left of the cropped PNG in output pixels."""
    s = frame.scale
    return (
        tracks["x"].map_values(lambda v: dx + s * v),
        tracks["y"].map_values(lambda v: dy + s * v),
        tracks["opacity"],
    )


def _layer_root(template: Template, group_id: str) -> ET.Element:
    """A copy of the template with only the element ``group_id`` (and resources) drawn.

    Ancestors of the element stay (their transforms and styles apply); every
    other drawn element is removed, resources (defs, gradients, styles...) kept.
    """
    root = copy.deepcopy(template.root)
    path = _path_to(root, group_id)
    if path is None:  # checked in parse_template
        raise NameScreenError(f"template element {group_id!r} disappeared")
    for parent, child in zip(path, path[1:], strict=False):
        for sibling in list(parent):
            if sibling is not child and _local(sibling.tag) not in _RESOURCES:
                parent.remove(sibling)
    return root


def _path_to(root: ET.Element, ident: str) -> list[ET.Element] | None:
    def walk(node: ET.Element, trail: list[ET.Element]) -> list[ET.Element] | None:
        if node.get("id") == ident:
            return [*trail, node]
        for child in node:
            found = walk(child, [*trail, node])
            if found:
                return found
        return None

    return walk(root, [])


def _finish_svg(root: ET.Element, frame: _Frame) -> str:
    vx, vy, vw, vh = frame.viewbox
    root.set("width", str(frame.width))
    root.set("height", str(frame.height))
    root.set("viewBox", f"{vx:g} {vy:g} {vw:g} {vh:g}")
    root.set("preserveAspectRatio", "xMidYMid meet")
    return ET.tostring(root, encoding="unicode")


def _animated_layer(
    template: Template,
    layer: LayerIn,
    data: CustomerData,
    font: FontInfo | None,
    frame: _Frame,
    stretch: float,
) -> _Drawn | None:
    tracks = _tracks(layer, stretch)
    if layer.type == "text":
        return _text_layer(layer, tracks, data, font, frame)
    assert layer.group_id is not None
    root = _layer_root(template, layer.group_id)
    _fill_texts(root, data, font, frame)
    cropped = _crop(_render(_finish_svg(root, frame), frame.width, frame.height, font,
                            only_font=False))
    if cropped is None:
        return None
    image, left, top = cropped
    return (image, *_to_pixels(tracks, frame, left, top))


def _text_layer(
    layer: LayerIn,
    tracks: dict[str, Track],
    data: CustomerData,
    font: FontInfo | None,
    frame: _Frame,
) -> _Drawn | None:
    content = clean_text(data.fill(layer.content or ""))
    if not content:
        return None
    if font is None:
        raise NameScreenError(
            f"template text layer {layer.id!r} needs a font: set name_screen.font "
            "or text_style.font_path"
        )
    what = "passenger name" if "pax_name" in (layer.content or "") else f"text of layer {layer.id!r}"
    check_glyphs(font, content, what)
    style = layer.text_style
    s = frame.scale
    budget = _width_budget(style, tracks["x"].final, frame) * s
    size = style.font_size * s
    measured = font.width(content, size)
    if measured > budget:
        size *= budget / measured
    for _attempt in range(3):
        if size < MIN_FONT_PX:
            raise NameScreenError(
                f"the {what} {content!r} does not fit the name screen even at a tiny font size"
            )
        drawn = _draw_text(content, style, font, size, s)
        if drawn is None:
            return None
        image, anchor_x, anchor_y = drawn
        if image.width <= budget + 1:
            break
        size *= budget / image.width * 0.995
    else:  # pragma: no cover - three corrections always converge for real fonts
        raise NameScreenError(f"the {what} {content!r} cannot be fitted")
    ox, oy = frame.offset
    return (image, *_to_pixels(tracks, frame, ox - anchor_x, oy - anchor_y))


def _width_budget(style: TextStyleIn, rest_x: float, frame: _Frame) -> float:
    """Design units the text may be wide at its resting position (see module docstring)."""
    if style.max_width is not None:
        return style.max_width
    vx, _, vw, _ = frame.viewbox
    left, right = vx + vw * SAFE_MARGIN, vx + vw * (1 - SAFE_MARGIN)
    room = {
        "start": right - rest_x,
        "middle": 2 * min(rest_x - left, right - rest_x),
        "end": rest_x - left,
    }[style.anchor]
    return room if room > vw * 0.1 else vw * (1 - 2 * SAFE_MARGIN)


def _draw_text(
    content: str, style: TextStyleIn, font: FontInfo, size: float, scale: float
) -> tuple[Image.Image, float, float] | None:
    """Text on a canvas of its own; returns the crop and where the anchor point is in it.

    The anchor point is (x, top of the line box): x at the start, middle or end of
    the text by ``anchor``, y at the font's ascender line.
    """
    stroke = style.stroke_width * scale
    ascent = font.ascender * size / font.units_per_em
    descent = -font.descender * size / font.units_per_em
    advance = font.width(content, size)
    margin = math.ceil(stroke * 2 + size * 0.25 + 4)
    canvas_w = math.ceil(advance + 2 * margin)
    canvas_h = math.ceil(ascent + descent + 2 * margin)
    shift = {"start": 0.0, "middle": advance / 2, "end": advance}[style.anchor]
    svg = ET.Element(f"{{{SVG_NS}}}svg", {
        "width": str(canvas_w), "height": str(canvas_h),
        "viewBox": f"0 0 {canvas_w} {canvas_h}",
    })
    attributes = {
        "x": f"{margin + shift:.3f}",
        "y": f"{margin + ascent:.3f}",
        "font-size": f"{size:.3f}",
        "fill": style.fill,
        "text-anchor": style.anchor,
    }
    if style.stroke and stroke > 0:
        attributes.update({"stroke": style.stroke, "stroke-width": f"{stroke:.3f}",
                           "paint-order": "stroke"})
    text = ET.SubElement(svg, f"{{{SVG_NS}}}text", attributes)
    text.text = content
    rendered = _render(ET.tostring(svg, encoding="unicode"), canvas_w, canvas_h, font,
                       only_font=True)
    cropped = _crop(rendered)
    if cropped is None:
        return None
    image, left, top = cropped
    return image, margin + shift - left, margin - top


def _plain_layer(
    template: Template, data: CustomerData, font: FontInfo | None, frame: _Frame
) -> _Drawn | None:
    """A plain SVG: placeholders filled (escaped), name elements in the staff font, fitted."""
    svg = filled_svg(template, data, font, width=frame.width, height=frame.height)
    cropped = _crop(_render(svg, frame.width, frame.height, font, only_font=False))
    if cropped is None:
        return None
    image, left, top = cropped
    return image, Track.constant(left), Track.constant(top), Track.constant(1.0)


def filled_svg(
    template: Template, data: CustomerData, font: FontInfo | None, *, width: int, height: int
) -> str:
    """The whole template, filled and fitted, as resvg gets it at ``width``x``height``."""
    frame = _Frame(width, height, template.viewbox)
    root = copy.deepcopy(template.root)
    _fill_texts(root, data, font, frame)
    return _finish_svg(root, frame)


def _fill_texts(root: ET.Element, data: CustomerData, font: FontInfo | None,
                frame: _Frame) -> None:
    """Every ``<text>`` holding a placeholder: filled, checked, in the staff font, fitted.

    The text is assigned to the element (ElementTree escapes it when serialising),
    never pasted into markup.
    """
    for element, original in list(_placeholder_texts(root)):
        if font is None:
            raise NameScreenError("the name screen template has text to fill: set name_screen.font")
        filled = clean_text(data.fill(original))
        what = "passenger name" if "pax_name" in original else "date"
        check_glyphs(font, filled, what)
        _set_text(element, filled)
        element.set("font-family", _family_value(font.family))
        _drop_style(element, "font-family")
        _fit_plain(element, filled, font, frame)


def _placeholder_texts(root: ET.Element) -> Iterator[tuple[ET.Element, str]]:
    """``<text>`` elements whose text (with tspans) holds a placeholder."""
    for element in root.iter():
        if _local(element.tag) == "text":
            whole = "".join(element.itertext())
            if _PLACEHOLDER.search(whole):
                yield element, whole


def _set_text(element: ET.Element, text: str) -> None:
    """One text run: tspans are dropped (their positions belonged to the placeholder)."""
    for child in list(element):
        element.remove(child)
    element.text = text


def _family_value(family: str) -> str:
    return "'" + family.replace("\\", "").replace("'", "") + "'"


def _fit_plain(element: ET.Element, text: str, font: FontInfo, frame: _Frame) -> None:
    """Shrink a plain template's name element to the room its anchor leaves (user units)."""
    size = _font_size(element)
    x = _LENGTH.match(element.get("x", "0") or "0")
    anchor = (element.get("text-anchor") or _style_value(element, "text-anchor") or "start")
    if anchor not in ("start", "middle", "end"):
        anchor = "start"
    style = TextStyleIn(font_size=size, anchor=anchor)  # type: ignore[arg-type]
    budget = _width_budget(style, float(x.group(1)) if x else 0.0, frame)
    width = font.width(text, size)
    if width > budget:
        element.set("font-size", f"{size * budget / width * 0.98:.3f}")
        _drop_style(element, "font-size")


def _style_value(element: ET.Element, name: str) -> str | None:
    for part in (element.get("style") or "").split(";"):
        key, _, value = part.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _drop_style(element: ET.Element, name: str) -> None:
    style = element.get("style")
    if style:
        parts = [p for p in style.split(";") if p.partition(":")[0].strip() != name]
        element.set("style", ";".join(parts))


def _font_size(element: ET.Element) -> float:
    raw = element.get("font-size") or _style_value(element, "font-size") or "16"
    match = _LENGTH.match(raw)
    return float(match.group(1)) if match else 16.0


def _merge_static(layers: Sequence[_Drawn], frame: _Frame) -> list[_Drawn]:
    """Consecutive static layers composited into one image (fewer overlays per frame)."""
    merged: list[_Drawn] = []
    run: list[_Drawn] = []

    def flush() -> None:
        if not run:
            return
        if len(run) == 1 and run[0][3].final == 1.0:
            merged.append(run[0])
        else:
            canvas = Image.new("RGBA", (frame.width, frame.height))
            for image, x, y, opacity in run:
                layer = image
                level = opacity.final
                if level < 1.0:
                    alpha = layer.getchannel("A").point(lambda a, k=level: round(a * k))
                    layer = layer.copy()
                    layer.putalpha(alpha)
                sheet = Image.new("RGBA", (frame.width, frame.height))
                sheet.paste(layer, (round(x.final), round(y.final)))
                canvas = Image.alpha_composite(canvas, sheet)
            cropped = _crop(canvas)
            if cropped is not None:
                image, left, top = cropped
                merged.append((image, Track.constant(left), Track.constant(top),
                               Track.constant(1.0)))
        run.clear()

    for drawn in layers:
        _, x, y, opacity = drawn
        if x.is_constant and y.is_constant and opacity.is_constant:
            if opacity.final > 0:
                run.append(drawn)
        else:
            flush()
            merged.append(drawn)
    flush()
    return merged


# --- entry point ----------------------------------------------------------------------


def template_font(template: Template) -> str | None:
    """The first text layer's ``font_path`` (relative to the storage root), if any."""
    if template.config is None:
        return None
    for layer in template.config.layers:
        path = layer.text_style.font_path if layer.type == "text" else None
        if path:
            if path.startswith("/"):
                raise NameScreenError(
                    f"the template's font_path {path!r} is absolute; set name_screen.font "
                    "to a font under the storage root"
                )
            return path
    return None


@attrs.frozen(kw_only=True)
class RasterRequest:
    """One name screen to prepare: picklable, so it can go to a worker process.

    Without ``font_path`` the template's own ``font_path`` is used, turned into a
    file by ``resolve`` (the storage root's :meth:`~stinercut_svc.storage.Storage.resolve`,
    which refuses paths leaving the root; a bound method of the frozen
    ``Storage`` pickles).
    """

    template_path: Path
    font_path: Path | None
    data: CustomerData
    width: int
    height: int
    duration: float | None
    work_dir: Path
    resolve: Callable[[str], Path] | None = None


def prepare_sync(request: RasterRequest) -> PreparedNameScreen:
    """Read, parse, check and rasterise; files go to ``request.work_dir`` (created)."""
    template_path, font_path = request.template_path, request.font_path
    resolve = request.resolve
    try:
        svg_text = template_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NameScreenError("the name screen template's file is missing") from None
    except UnicodeDecodeError:
        raise NameScreenError("the name screen template is not UTF-8 text") from None
    template = parse_template(svg_text)
    if font_path is None and resolve is not None:
        relative = template_font(template)
        if relative is not None:
            try:
                font_path = resolve(relative)
            except ValueError as exc:
                raise NameScreenError(f"the template's font_path {relative!r}: {exc}") from None
    font = load_font(font_path) if font_path is not None else None
    return rasterise(template, request.data, font, width=request.width, height=request.height,
                     duration=request.duration, work_dir=request.work_dir)


async def prepare_name_screen(request: RasterRequest) -> PreparedNameScreen:
    """:func:`prepare_sync` in a worker **process**; ``work_dir`` is removed if it fails.

    Not a thread: resvg-py holds the GIL while it renders (measured: a thread
    rendering five 1080p layers left the main thread no turn for over a second
    at a time), and fontTools is pure Python, so in a thread either would stall
    every request and WebSocket of the trio thread. A cancelled job kills the
    worker (``kill_on_cancel``), and a cancel or failure leaves no PNGs behind:
    the removal is shielded so it runs even while the job's scope is cancelled.
    """
    try:
        prepared = await trio_parallel.run_sync(prepare_sync, request, kill_on_cancel=True)
        # A cancel that arrived while the worker ran is delivered here, inside
        # the try, so the files it wrote are removed too.
        await trio.lowlevel.checkpoint()
        return prepared
    except BaseException:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(
                lambda: shutil.rmtree(request.work_dir, ignore_errors=True)
            )
        raise


async def name_screen_card(
    options: NameScreenOptions,
    *,
    template: Path,
    resolve: Callable[[str], Path],
    sound: Path | None,
    project_name: str,
    project_day: Date | None,
    width: int,
    height: int,
    background_clip: tuple[Path, float] | None,
    work_dir: Path,
) -> TitleCard:
    """Everything a render needs for its name screen, as a timeline item.

    ``template``/``sound`` are resolved files (asset rows are the caller's
    business); the font is ``options.font``, else the template's ``font_path``,
    both turned into files by ``resolve`` (``Storage.resolve``); ``background_clip`` is the first
    clip and the time of the still (used only with ``options.background_blur``).
    Rasterises at ``width``x``height`` — the timeline's master size — in a
    worker process; raises :class:`NameScreenError` for the job's error message.
    """
    from .recipes.name_screen import title_card  # the recipe imports this module

    data = CustomerData.of(options.pax_name or project_name, options.date or project_day)
    if not data.pax_name:
        raise NameScreenError("the name screen has no passenger name (project name is empty)")
    font: Path | None = None
    if options.font:
        try:
            font = resolve(options.font)
        except ValueError as exc:
            raise NameScreenError(f"name_screen.font {options.font!r}: {exc}") from None
    prepared = await prepare_name_screen(RasterRequest(
        template_path=template, font_path=font, data=data, width=width, height=height,
        duration=options.duration, work_dir=work_dir, resolve=resolve,
    ))
    return title_card(
        prepared,
        background_clip=background_clip if options.background_blur else None,
        sound=sound,
    )
