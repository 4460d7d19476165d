"""Name screen templates: parsing, filling, glyph checks, fitting, scaling, rasterising.

Everything here is real: templates are parsed, fonts read with fontTools and
layers rasterised by resvg into PNGs that the assertions measure. Fonts are
DejaVu Sans (installed by scripts/test; no CJK glyphs, so it is also the
"font without CJK" case) and a tiny CJK font built with fontTools in the test.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
import trio
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from PIL import Image

from stinercut_svc.render.name_screen import (
    SVG_NS,
    CustomerData,
    NameScreenError,
    NameScreenOptions,
    RasterRequest,
    check_glyphs,
    filled_svg,
    load_font,
    name_screen_card,
    parse_template,
    prepare_name_screen,
    prepare_sync,
    rasterise,
)
from stinercut_svc.storage import Storage

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
NAMES = ["Jean-Luc O'Brien-Núñez", "Jürgen Müßig", "Zoë Ødegård-Łukasiewicz"]
CJK = "山田太郎"

PLAIN = """<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]" height="[[[HEIGHT]]]"
  viewBox="0 0 1920 1080">
  <rect width="1920" height="1080" fill="#000"/>
  <text id="name" x="960" y="540" font-size="{size}" text-anchor="middle"
        font-family="Nonexistent Sans" fill="#fff">Hello {{{{ pax_name }}}}</text>
  <text id="date" x="100" y="1000" font-size="40" fill="#fff">{{{{date}}}}</text>
</svg>
"""


def animated(layers: str, *, duration: float = 3.0, extra: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]px" height="[[[HEIGHT]]]px"
     viewBox="0 0 1920 1080">
  <defs><linearGradient id="g1"><stop offset="0" stop-color="#00f"/></linearGradient></defs>
  <g id="bg"><rect width="1920" height="1080" fill="#000"/></g>
  <g id="box"><rect x="100" y="200" width="192" height="108" fill="#fff"/></g>
  <g id="wrap" transform="translate(960 0)"><g id="nested">
    <rect x="0" y="0" width="96" height="54" fill="url(#g1)"/></g></g>
  {extra}
  <script type="application/json" id="stinercut-animation">
  {{"version": "1.0", "duration": {duration}, "layers": [{layers}]}}
  </script>
</svg>
"""


TEXT_LAYER = """{"id": "name", "type": "text", "content": "{{pax_name}}",
  "text_style": {"font_size": %s, "fill": "white", "anchor": "%s"},
  "initial": {"x": %s, "y": 500}}"""


def build_font(path: Path, characters: str) -> Path:
    """A real TrueType font whose glyphs are filled squares, one per character."""
    names = [".notdef", "space"] + [f"uni{ord(ch):04X}" for ch in characters]
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({32: "space", **{ord(ch): f"uni{ord(ch):04X}" for ch in characters}})
    glyphs = {}
    for name in names:
        pen = TTGlyphPen(None)
        if name != "space":
            pen.moveTo((100, 0))
            pen.lineTo((100, 700))
            pen.lineTo((900, 700))
            pen.lineTo((900, 0))
            pen.closePath()
        glyphs[name] = pen.glyph()
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics({name: (1000, 100 if name != "space" else 0) for name in names})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable(
        {
            "familyName": "Test Squares",
            "styleName": "Regular",
            "fullName": "Test Squares Regular",
            "psName": "TestSquares-Regular",
            "uniqueFontIdentifier": "TestSquares-Regular",
        }
    )
    builder.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    builder.save(str(path))
    return path


def alpha_box(path: Path) -> tuple[int, int, int, int] | None:
    with Image.open(path) as image:
        return image.getchannel("A").getbbox()


# --- options -------------------------------------------------------------------------


def test_options_defaults_and_validation() -> None:
    options = NameScreenOptions()
    assert options.enabled is False and options.background_blur is True
    assert NameScreenOptions(font="fonts/Brand.OTF").font == "fonts/Brand.OTF"
    for bad in (
        {"font": "/etc/fonts/x.ttf"},
        {"font": "../x.ttf"},
        {"font": "fonts/x.woff"},
        {"duration": 0.5},
        {"duration": 31},
        {"colour": "red"},
    ):
        with pytest.raises(ValueError):
            NameScreenOptions.model_validate(bad)


# --- filling and escaping ------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_plain_template_filled_with_real_names(name: str, tmp_path: Path) -> None:
    template = parse_template(PLAIN.format(size=80))
    font = load_font(DEJAVU)
    svg = filled_svg(template, CustomerData.of(name, "02.12.2026"), font, width=320, height=180)
    root = ET.fromstring(svg)
    texts = {el.get("id"): el for el in root.iter(f"{{{SVG_NS}}}text")}
    assert texts["name"].text == f"Hello {name}"
    assert texts["date"].text == "02.12.2026"
    # The staff font replaces the template's family on filled text only.
    assert texts["name"].get("font-family") == "'DejaVu Sans'"
    assert (root.get("width"), root.get("height")) == ("320", "180")
    prepared = prepare_sync(
        request(
            _write(tmp_path / "t.svg", PLAIN.format(size=80)),
            DEJAVU,
            CustomerData.of(name, "02.12.2026"),
            tmp_path / "w",
        )
    )
    assert prepared.duration == 5.0
    (layer,) = prepared.layers
    assert (layer.width, layer.height) == (320, 180)  # the full-frame black rect


def test_markup_in_a_name_is_text_not_svg() -> None:
    name = 'Bob </text><rect width="1920" height="1080" fill="red"/> & "Al" <b>'
    template = parse_template(PLAIN.format(size=40))
    svg = filled_svg(template, CustomerData.of(name, "x"), load_font(DEJAVU), width=320, height=180)
    root = ET.fromstring(svg)
    assert len(root.findall(f".//{{{SVG_NS}}}rect")) == 1  # only the template's own
    name_el = next(el for el in root.iter(f"{{{SVG_NS}}}text") if el.get("id") == "name")
    assert name_el.text == f"Hello {name}"
    assert "&lt;/text&gt;" in svg


def test_whitespace_and_control_characters_are_cleaned() -> None:
    data = CustomerData.of("  Ana\u0000  Lu\u200bcía \n Pérez ", None)
    assert data.pax_name == "Ana Lucía Pérez"
    # Combining accents become the precomposed letters fonts have.
    assert CustomerData.of("Nu\u0301n\u0303ez", None).pax_name == "Núñez"
    assert CustomerData.of("A", date(2026, 12, 2)).date == "02.12.2026"


# --- glyphs --------------------------------------------------------------------------


def test_missing_glyph_names_the_character(tmp_path: Path) -> None:
    font = load_font(DEJAVU)
    with pytest.raises(NameScreenError) as caught:
        check_glyphs(font, f"{CJK[:2]} Smith", "passenger name")
    message = str(caught.value)
    assert "'山' (U+5C71)" in message and "'田' (U+7530)" in message
    assert "DejaVu Sans" in message
    # Through the whole preparation, for an animated text layer.
    svg = animated(TEXT_LAYER % (100, "start", 100))
    with pytest.raises(NameScreenError, match=r"U\+592A"):
        prepare_sync(
            request(
                _write(tmp_path / "a.svg", svg), DEJAVU, CustomerData.of(CJK, None), tmp_path / "w"
            )
        )


def test_cjk_name_in_a_font_that_has_it(tmp_path: Path) -> None:
    font_path = build_font(tmp_path / "squares.ttf", CJK)
    svg = animated(TEXT_LAYER % (100, "start", 100))
    prepared = prepare_sync(
        request(
            _write(tmp_path / "a.svg", svg),
            font_path,
            CustomerData.of("山田 太郎", None),
            tmp_path / "w",
            width=640,
            height=360,
        )
    )
    (layer,) = prepared.layers
    with Image.open(layer.png) as image:
        alpha = image.getchannel("A")
        # Four filled squares (0.8 em wide, 0.2 em apart) and one space.
        data = alpha.tobytes()
        columns = [max(data[x :: alpha.width]) > 128 for x in range(alpha.width)]
    runs = sum(1 for i, on in enumerate(columns) if on and (i == 0 or not columns[i - 1]))
    assert runs == 4
    # 100 design px at scale 1/3: squares 0.7 em tall ≈ 23 px.
    assert layer.height == pytest.approx(100 / 3 * 0.7, abs=2)
    # The Latin letters of DejaVu's test are absent here: named, not dropped.
    with pytest.raises(NameScreenError, match=r"'a' \(U\+0061\)"):
        check_glyphs(load_font(font_path), "山田 Tanaka", "passenger name")


# --- fitting and scaling -------------------------------------------------------------


def test_long_names_shrink_to_fit_short_names_keep_their_size(tmp_path: Path) -> None:
    svg = _write(tmp_path / "a.svg", animated(TEXT_LAYER % (120, "start", 200)))

    def layer_for(name: str) -> tuple[int, int]:
        prepared = prepare_sync(
            request(
                svg, DEJAVU, CustomerData.of(name, None), tmp_path / name[:8], width=640, height=360
            )
        )
        (layer,) = prepared.layers
        return layer.width, layer.height

    short_w, short_h = layer_for("Jürgen Müßig")
    long_w, long_h = layer_for("Maximilian Alexander Ferdinand von Hohenzollern-Sigmaringen-Núñez")
    budget = 640 * 0.95 - 200 / 3  # right safe margin minus the resting x, in output px
    assert short_w < budget
    assert budget * 0.9 < long_w <= budget + 1
    assert long_h < short_h * 0.6  # it got smaller...
    # ...the short one did not: umlauts to descender, about one em of 40 px.
    assert 120 / 3 * 0.9 <= short_h <= 120 / 3 * 1.2


def test_middle_anchor_centres_the_name_and_max_width_limits_it(tmp_path: Path) -> None:
    layer_json = """{"id": "name", "type": "text", "content": "{{pax_name}}",
      "text_style": {"font_size": 150, "anchor": "middle", "max_width": 600},
      "initial": {"x": 960, "y": 500}}"""
    prepared = prepare_sync(
        request(
            _write(tmp_path / "a.svg", animated(layer_json)),
            DEJAVU,
            CustomerData.of("Jean-Luc O'Brien-Núñez", None),
            tmp_path / "w",
            width=640,
            height=360,
        )
    )
    (layer,) = prepared.layers
    assert layer.width <= 600 / 3 + 1
    centre = layer.x.final + layer.width / 2
    assert centre == pytest.approx(320, abs=2)


@pytest.mark.parametrize("size", [(320, 180), (640, 360), (360, 640)])
def test_positions_scale_with_the_output_size(size: tuple[int, int], tmp_path: Path) -> None:
    # Fading in, so neither is merged into a static sheet.
    fade = (
        '"animations": [{"property": "opacity", "keyframes": [{"time": 0, "value": 0}, '
        '{"time": 1, "value": 1}]}]'
    )
    layers = f"""{{"id": "box", "group_id": "box", "initial": {{"x": 300, "y": 100}}, {fade}}},
                {{"id": "nested", "group_id": "nested", {fade}}}"""
    width, height = size
    prepared = prepare_sync(
        request(
            _write(tmp_path / "a.svg", animated(layers)),
            None,
            CustomerData.of("x", None),
            tmp_path / "w",
            width=width,
            height=height,
        )
    )
    s = min(width / 1920, height / 1080)
    oy = (height - 1080 * s) / 2
    box, nested = prepared.layers
    # The box is drawn at (100, 200) and moved by (300, 100): (400, 300) design units.
    assert box.x.final == pytest.approx(400 * s, abs=1)
    assert box.y.final == pytest.approx(oy + 300 * s, abs=1)
    assert box.width == pytest.approx(192 * s, abs=1)
    # The nested group keeps its ancestor's transform (translate 960).
    assert nested.x.final == pytest.approx(960 * s, abs=1)
    assert nested.y.final == pytest.approx(oy, abs=1)
    with Image.open(nested.png) as image:
        rgb = image.convert("RGB").getpixel((1, 1))
        assert isinstance(rgb, tuple) and rgb[2] > 200  # the gradient from <defs>


def test_static_layers_are_merged_and_animated_ones_keep_their_tracks(tmp_path: Path) -> None:
    layers = """{"id": "bg", "group_id": "bg"},
      {"id": "box", "group_id": "box", "initial": {"opacity": 0.5}},
      {"id": "nested", "group_id": "nested", "animations": [{"property": "y",
        "keyframes": [{"time": 0, "value": 0}, {"time": 2, "value": 540}],
        "easing": "ease-out"}]}"""
    prepared = prepare_sync(
        request(
            _write(tmp_path / "a.svg", animated(layers, duration=4)),
            None,
            CustomerData.of("x", None),
            tmp_path / "w",
            duration=8,
        )
    )
    merged, moving = prepared.layers
    assert (merged.width, merged.height) == (320, 180)
    with Image.open(merged.png) as image:
        # White box at half opacity over black: grey.
        pixel = image.getpixel((round(200 / 6), round(250 / 6)))
        assert isinstance(pixel, tuple)
        assert pixel[3] == 255 and 120 <= pixel[0] <= 135
    # Keyframe times stretch with the duration (4 s template shown for 8 s).
    assert prepared.duration == 8
    assert moving.y.value_at(4.0) == pytest.approx(90)
    assert moving.y.value_at(2.0) == pytest.approx(90 * 0.75)


# --- template errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("svg", "message"),
    [
        (animated('{"id": "x", "group_id": "nope"}'), "no element with id 'nope'"),
        (animated('{"id": "x"}'), "needs a group_id"),
        (
            animated(
                '{"id": "x", "group_id": "box", "animations": [{"property": "z", '
                '"keyframes": [{"time": 0, "value": 1}]}]}'
            ),
            "layers.0.animations.0.property",
        ),
        (animated('{"id": "x", "group_id": "box"'), "not JSON"),
        (
            animated(
                '{"id": "x", "group_id": "box", "animations": ['
                '{"property": "x", "keyframes": [{"time": 0, "value": 1}]},'
                '{"property": "x", "keyframes": [{"time": 1, "value": 2}]}]}'
            ),
            "animates x twice",
        ),
        ('<!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg"/>', "DOCTYPE"),
        ("<svg", "not valid SVG"),
        ("<html/>", "not <svg>"),
    ],
)
def test_bad_templates_fail_with_a_message(svg: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(NameScreenError, match=message.replace("(", r"\(")):
        prepare_sync(
            request(
                _write(tmp_path / "t.svg", svg), None, CustomerData.of("x", None), tmp_path / "w"
            )
        )


def test_text_without_a_font_and_unreadable_fonts_fail(tmp_path: Path) -> None:
    svg = _write(tmp_path / "a.svg", animated(TEXT_LAYER % (100, "start", 100)))
    with pytest.raises(NameScreenError, match="needs a font"):
        prepare_sync(request(svg, None, CustomerData.of("Ann", None), tmp_path / "w"))
    broken = _write(tmp_path / "broken.ttf", "not a font")
    with pytest.raises(NameScreenError, match="cannot be read"):
        load_font(broken)
    with pytest.raises(NameScreenError, match="does not exist"):
        load_font(tmp_path / "missing.ttf")


async def test_prepare_runs_in_a_worker_process_and_cleans_up_on_failure(tmp_path: Path) -> None:
    svg = _write(
        tmp_path / "a.svg",
        animated('{"id": "bg", "group_id": "bg"},' + TEXT_LAYER % (100, "start", 100)),
    )
    work = tmp_path / "work"
    prepared = await prepare_name_screen(request(svg, DEJAVU, CustomerData.of("Ann", None), work))
    (sheet,) = prepared.layers  # background and name: static, one sheet
    assert sheet.png.parent == work and sheet.png.exists()
    failing = tmp_path / "work2"
    with pytest.raises(NameScreenError):
        await prepare_name_screen(request(svg, DEJAVU, CustomerData.of(CJK, None), failing))
    assert not failing.exists()
    # Cancelled: its directory goes (shielded clean-up), whatever was in it.
    cancelled = tmp_path / "work3"
    cancelled.mkdir()
    (cancelled / "layer00.png").write_bytes(b"partial")
    with trio.CancelScope() as scope:
        scope.cancel()
        await prepare_name_screen(request(svg, DEJAVU, CustomerData.of("Ann", None), cancelled))
    assert not cancelled.exists()


def test_rasterise_refuses_tiny_outputs(tmp_path: Path) -> None:
    template = parse_template(PLAIN.format(size=40))
    with pytest.raises(NameScreenError, match="too small"):
        rasterise(
            template,
            CustomerData.of("x", None),
            None,
            width=8,
            height=8,
            duration=None,
            work_dir=tmp_path,
        )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_name_screen_card_resolves_fonts_and_customer_data(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "root")
    (storage.root / "fonts").mkdir(parents=True)
    shutil.copy(DEJAVU, storage.root / "fonts" / "Brand.ttf")
    layers = TEXT_LAYER.replace('"font_size"', '"font_path": "fonts/Brand.ttf", "font_size"')
    layers = (
        layers % (100, "start", 100)
        + """, {"id": "day", "type": "text",
        "content": "{{date}}", "initial": {"x": 100, "y": 800}}"""
    )
    template = _write(tmp_path / "a.svg", animated(layers))
    options = NameScreenOptions(enabled=True, background_blur=False, duration=2)
    card = await name_screen_card(
        options,
        template=template,
        resolve=storage.resolve,
        sound=None,
        project_name="Jürgen Müßig",
        project_day=date(2026, 12, 2),
        width=320,
        height=180,
        background_clip=(tmp_path / "clip.mp4", 1.0),
        work_dir=tmp_path / "work",
    )
    assert card.duration == 2 and card.build_audio is None
    # Both texts were set in the template's font (from the storage root) and drawn.
    assert len(list((tmp_path / "work").glob("layer*.png"))) == 1  # static: one sheet
    # The option's name and date win over the project's; the option's font too.
    with pytest.raises(NameScreenError, match="U\\+5C71"):
        await name_screen_card(
            NameScreenOptions(pax_name="山 Lee", font="fonts/Brand.ttf"),
            template=template,
            resolve=storage.resolve,
            sound=None,
            project_name="x",
            project_day=None,
            width=320,
            height=180,
            background_clip=None,
            work_dir=tmp_path / "work2",
        )
    escaping = animated(layers.replace("fonts/Brand.ttf", "../../etc/x.ttf"))
    with pytest.raises(NameScreenError, match="leaves the storage root|must not contain"):
        await name_screen_card(
            options,
            template=_write(tmp_path / "b.svg", escaping),
            resolve=storage.resolve,
            sound=None,
            project_name="x",
            project_day=None,
            width=320,
            height=180,
            background_clip=None,
            work_dir=tmp_path / "work3",
        )


def request(
    template: Path,
    font: Path | None,
    data: CustomerData,
    work_dir: Path,
    *,
    width: int = 320,
    height: int = 180,
    duration: float | None = None,
) -> RasterRequest:
    return RasterRequest(
        template_path=template, font_path=font, data=data, width=width, height=height,
        duration=duration, work_dir=work_dir,
    )  # fmt: skip
