"""The timeline's one schedule (pure) and the compiler's exact arguments."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from stinercut_svc.jobs.options import RenderOptions, resolve
from stinercut_svc.media.filtergraph import Graph, Stream
from stinercut_svc.media.probe import AudioStream, MediaInfo, VideoStream
from stinercut_svc.render.compile import compile_timeline
from stinercut_svc.render.recipes.video import focus_expression, reframe
from stinercut_svc.render.timeline import (
    OutputSpec,
    Segment,
    Timeline,
    TitleCard,
    Transition,
    item_frames,
    schedule,
)


def _info(w: int = 320, h: int = 240, rotation: int = 0, audio: bool = True) -> MediaInfo:
    return MediaInfo("mov,mp4", 9.0, VideoStream("h264", w, h, 25.0, "25/1", "yuv420p", rotation,
                     "High", None), AudioStream("aac", 2, 48000) if audio else None, 0)  # fmt: skip


def _seg(seconds: float, kind: str = "clip", name: str = "a.mp4", **kw: object) -> Segment:
    return Segment(Path(f"/m/{name}"), kind, 0.0, seconds, kw.pop("info", _info()),  # type: ignore[arg-type]
                   name, **kw)  # type: ignore[arg-type]


def _out(path: str = "/o/main.mp4", w: int = 320, h: int = 240, name: str = "main") -> OutputSpec:
    return OutputSpec(name, Path(path), w, h, ("-c:v", "libx264"), ("-c:a", "aac"), ("-f", "mp4"))


def _line(items: list, transitions: list[Transition], fps: Fraction = Fraction(25),
          outputs: tuple[OutputSpec, ...] | None = None) -> Timeline:  # type: ignore[type-arg]  # fmt: skip
    return Timeline(tuple(items), tuple(transitions), 320, 240, fps, outputs or (_out(),))


def test_cuts_add_up_and_transitions_overlap() -> None:
    line = _line([_seg(2.0, "intro"), _seg(3.0), _seg(1.0), _seg(2.0, "outro")],
                 [Transition(), Transition("crossfade", 1.0), Transition()])  # fmt: skip
    plan = schedule(line)
    assert plan.frames == (50, 75, 25, 50)
    assert plan.overlaps == (0, 12, 0)  # 1 s wanted, clamped to half of the 1 s clip
    assert plan.starts == (0, 50, 113, 138)
    assert plan.total_frames == 188 and plan.total_s == pytest.approx(7.52)
    assert plan.clip_span_s == (2.0, 5.52)
    assert plan.samples(25) == 48000


def test_ntsc_rates_never_accumulate_rounding() -> None:
    fps = Fraction(30000, 1001)
    line = _line([_seg(1.0) for _ in range(100)], [Transition()] * 99, fps=fps)
    plan = schedule(line)
    assert plan.frames[0] == 30 and plan.total_frames == 3000
    assert plan.total_s == pytest.approx(3000 * 1001 / 30000)
    # Samples are computed from the frame count, never summed per item.
    assert plan.samples(plan.total_frames) == round(Fraction(3000) / fps * 48000)
    assert item_frames(0.001, fps) == 1


def test_transition_names_and_frontend_values() -> None:
    assert Transition("fade", 1).xfade == "fadeblack"
    assert Transition("crossfade", 1).xfade == "fade"
    assert Transition("slide", 1, "up").xfade == "slideup"
    assert Transition("wipe", 1, "right").xfade == "wiperight"
    assert Transition("none", 1).xfade is None
    resolved = resolve(RenderOptions.model_validate({"transition": "clue"}), {})
    assert (resolved.transition, resolved.transition_duration) == ("crossfade", 1.0)
    with pytest.raises(ValueError):
        RenderOptions.model_validate({"transition_duration": 2.5})
    with pytest.raises(ValueError):
        RenderOptions.model_validate({"transition": "spin"})
    with pytest.raises(ValueError):
        Timeline((_seg(1.0), _seg(1.0)), (), 320, 240, Fraction(25), (_out(),))


def test_focus_expression_is_steady_jumps_at_cuts_and_pans_over_transitions() -> None:
    assert focus_expression([(0, 0.5), (2, 0.5)]) == "(iw-ow)*0.5"
    expr = focus_expression([(0, 0.2), (2, 0.2), (2, 0.8), (3, 0.8), (4, 0.4), (5, 0.4)])
    assert expr == (
        "(iw-ow)*if(lt(t,0),0.2,if(lt(t,2),0.2,if(lt(t,2),0.8,if(lt(t,3),0.8,"
        "if(lt(t,4),0.8+(-0.4)*(t-3)/1,if(lt(t,5),0.4,0.4))))))"
    )


def test_reframe_crops_never_pads() -> None:
    g = Graph()
    v = g.input("m.mp4")
    vertical = reframe(g, v, source=(1920, 1080), width=1080, height=1920, focus_x="(iw-ow)/2")
    preview = reframe(g, v, source=(1920, 1080), width=640, height=360)
    g.output("v.mp4", vertical)
    g.output("p.mp4", preview)
    text = g.filter_text()
    assert "crop=w=608:h=1080:x=(iw-ow)/2:y=0" in text
    assert "scale=w=1080:h=1920" in text and "scale=w=640:h=360" in text
    assert "pad" not in text


def _card(g: Graph, w: int, h: int, fps: Fraction) -> Stream:
    return g.filter("color", out_kind="v", c="navy", s=f"{w}x{h}", r=fps, d=2)


def test_compiled_graph_for_intro_card_and_crossfaded_clips() -> None:
    card = TitleCard(2.0, _card)
    line = _line([_seg(2.0, "intro", "i.mp4"), card, _seg(3.0, name="a.mp4"),
                  _seg(3.0, name="b.mp4", info=_info(1080, 1920))],
                 [Transition(), Transition(), Transition("crossfade", 0.5)])  # fmt: skip
    compiled = compile_timeline(line)
    assert compiled.schedule.starts == (0, 50, 100, 163)
    argv = list(compiled.argv)
    assert argv[:6] == ["-t", "2", "-i", "/m/i.mp4", "-t", "3"]
    text = compiled.filter_text
    # intro, card and first clip: one concat; the second clip crossfades in at 163/25 s.
    assert "concat=n=3:v=1:a=1" in text
    assert "xfade=transition=fade:duration=0.48:offset=6.52" in text
    assert "acrossfade=ns=23040" in text
    # The portrait clip fills the frame over a blurred copy of itself.
    assert "boxblur=luma_radius=12:luma_power=2" in text
    assert "force_original_aspect_ratio=decrease" in text
    assert "[2:v]setpts=expr=PTS-STARTPTS" in text
    assert "trim=end_frame=75" in text and "atrim=end_sample=144000" in text
    assert argv[-5:] == ["-c:a", "aac", "-f", "mp4", "/o/main.mp4"]


def test_editions_split_the_master_once(tmp_path: Path) -> None:
    outputs = (_out(), _out("/o/vertical.mp4", 180, 320, "vertical"),
               _out("/o/preview.mp4", 160, 120, "preview"))  # fmt: skip
    line = _line([_seg(2.0, focus_x=0.25), _seg(2.0, name="b.mp4", focus_x=0.75)],
                 [Transition("crossfade", 1.0)], outputs=outputs)  # fmt: skip
    compiled = compile_timeline(line, script_dir=tmp_path)
    text = compiled.filter_text
    assert text.count("]split=3") == 1 and text.count("]asplit=3") == 1
    # The vertical window pans from clip 1's focus to clip 2's over the crossfade
    # (1 s at t=1..2; commas escaped for the graph parser).
    assert "crop=w=136:h=240:x=(iw-ow)*if(lt(t\\,0)\\,0.25\\,if(lt(t\\,1)\\,0.25" in text
    assert "0.25+(0.5)*(t-1)/1" in text
    assert compiled.script is None  # short enough to stay on the command line
    targets = [a for a in compiled.argv if a.startswith("/o/")]
    assert targets == ["/o/main.mp4", "/o/vertical.mp4", "/o/preview.mp4"]
    long_line = _line([_seg(1.0, name=f"{n}.mp4") for n in range(30)], [Transition()] * 29)
    long = compile_timeline(long_line, script_dir=tmp_path)
    assert long.script is not None and long.script[0] == tmp_path / "filter_complex.txt"
    assert "-filter_complex_script" in long.argv and not long.script[0].exists()


def test_requested_codecs_are_checked_against_this_ffmpeg() -> None:
    from stinercut_svc.jobs.plan import CodecUnavailable, check_requested_codecs

    have = frozenset({"libx264", "libvpx-vp9"})
    options = RenderOptions.model_validate(
        {"output": {"codec": "h264"}, "editions": [{"name": "web", "codec": "vp9"}]}
    )
    check_requested_codecs(options, have)  # both there: no error
    check_requested_codecs(RenderOptions(), frozenset())  # nothing asked for: nothing checked
    wants_av1 = RenderOptions.model_validate({"editions": [{"name": "small", "codec": "av1"}]})
    with pytest.raises(CodecUnavailable) as err:
        check_requested_codecs(wants_av1, have)
    assert err.value.codec == "av1" and err.value.available == ["h264", "vp9"]
    assert "edition 'small' codec" in str(err.value) and "libsvtav1 or libaom-av1" in str(err.value)


def test_watermark_window_is_the_clips_unless_on_intro() -> None:
    from stinercut_svc.render.timeline import Watermark

    items = [_seg(2.0, "intro", "i.mp4"), _seg(3.0), _seg(2.0, "outro", "o.mp4")]
    joins = [Transition(), Transition()]
    clips_only = Timeline(tuple(items), tuple(joins), 320, 240, Fraction(25), (_out(),),
                          watermark=Watermark(Path("/m/w.png")))  # fmt: skip
    text = compile_timeline(clips_only).filter_text
    assert "enable=between(t\\,2\\,5)" in text and "[3:v]scale=w=48:h=-2" in text
    everywhere = Timeline(tuple(items), tuple(joins), 320, 240, Fraction(25), (_out(),),
                          watermark=Watermark(Path("/m/w.png"), on_intro=True))  # fmt: skip
    text = compile_timeline(everywhere).filter_text
    assert "overlay=" in text and "enable=" not in text


def test_fast_path_decision_reads_the_schedule() -> None:
    from stinercut_svc.jobs.options import ResolvedOptions
    from stinercut_svc.jobs.plan import RenderInputs, Source, build_plan, clip_segment
    from stinercut_svc.models.job import RenderPath

    def plan(count: int, transition: str):  # type: ignore[no-untyped-def]
        sources = [Source(Path(f"/m/{n}.mp4"), _info(), f"clip {n}") for n in range(count)]
        options = ResolvedOptions(transition=transition, transition_duration=1.0)
        inputs = RenderInputs(tuple(clip_segment(s) for s in sources), options)
        return build_plan(inputs, Path("/t/out.mp4"), Path("/t/list.ffconcat"))

    crossfaded = plan(2, "crossfade")
    assert crossfaded.render_path is RenderPath.REENCODE
    assert crossfaded.reencode_reason == "crossfade transitions"
    assert crossfaded.schedule is not None and crossfaded.schedule.overlaps == (25,)
    assert crossfaded.duration == pytest.approx(17.0)  # 9 s + 9 s - 1 s
    # One clip has no join, so nothing overlaps: stream copy is still enough.
    assert plan(1, "crossfade").render_path is RenderPath.FASTPATH
    assert plan(2, "none").render_path is RenderPath.FASTPATH
