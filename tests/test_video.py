"""`gansr upscale clip.mp4`: streamed video with audio/subtitles kept, resume, shards, bad inputs.

Every clip is built here at test time (tiny: 32x24 to 48x36, a few dozen frames, AAC audio), and
the checks decode the results: frame count, size, timestamps, audio packets byte for byte.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

av = pytest.importorskip("av", reason="video support needs PyAV (pip install 'gansr[video]')")

from gansr import models  # noqa: E402
from gansr.cli import main  # noqa: E402
from gansr.errors import ConfigError  # noqa: E402
from gansr.upscale import Upscaler  # noqa: E402
from gansr.upscale.batch import Shard  # noqa: E402
from gansr.video import VideoSupportMissing, merge_video, pipeline, upscale_video  # noqa: E402
from gansr.video.probe import require_av  # noqa: E402
from gansr.video.progress import FrameProgress  # noqa: E402
from gansr.video.workdir import WorkDir  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


# Frame durations (ms) of the variable-rate clips: 20, 33, 50, 100 and 17 ms, repeating.
VFR_STEPS = (20, 33, 50, 100, 17)


def make_clip(
    path: Path,
    *,
    frames: int = 24,
    width: int = 32,
    height: int = 24,
    fps: int = 24,
    vfr: bool = False,
    audio: bool = True,
    subtitles: bool = False,
    faststart: bool = False,
) -> Path:
    """A small H.264 clip with moving content, an AAC tone and optionally SRT subtitles."""
    srt = None
    if subtitles:
        text = path.with_suffix(".srt")
        text.write_text(
            "1\n00:00:00,000 --> 00:00:00,300\nfirst line\n\n2\n00:00:00,400 --> 00:00:00,700\nsecond\n"
        )
        srt = av.open(os.fspath(text))
    options = {"movflags": "+faststart"} if faststart else {}
    out = av.open(os.fspath(path), "w", options=options)
    time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
    video = out.add_stream("libx264", rate=fps, width=width, height=height, time_base=time_base)
    video.codec_context.time_base = time_base
    sound = out.add_stream("aac", rate=48000) if audio else None
    subs = out.add_stream_from_template(srt.streams.subtitles[0]) if srt else None
    t = 0
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = 128 + 100 * np.stack(  # smooth moving colour waves, like real footage
            [np.sin(xx / 6 + i / 3), np.sin(yy / 5 - i / 4), np.sin((xx + yy) / 8 + i / 5)], axis=-1
        )
        img = img.astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = (t, time_base) if vfr else (i, time_base)
        t += VFR_STEPS[i % len(VFR_STEPS)]
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    if sound is not None:
        rate, total = 48000, int(48000 * (t / 1000 if vfr else frames / fps))
        for start in range(0, total, 1024):
            n = min(1024, total - start)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(start, start + n) / rate)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
            for packet in sound.encode(chunk):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    if srt is not None:
        for packet in srt.demux(srt.streams.subtitles[0]):
            if packet.size:
                packet.stream = subs
                out.mux(packet)
        srt.close()
    out.close()
    return path


def decode(path: Path) -> tuple[list[Fraction], list[np.ndarray]]:
    """Every frame's presentation time (seconds) and RGB pixels."""
    with av.open(os.fspath(path)) as c:
        frames = list(c.decode(c.streams.video[0]))
        return [Fraction(f.pts) * f.time_base for f in frames], [f.to_ndarray(format="rgb24") for f in frames]


def packets(path: Path, kind: str) -> list[bytes]:
    with av.open(os.fspath(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(*streams) if p.size] if streams else []


def via_420(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` after the 4:2:0 YUV round trip every H.264 output takes (its unavoidable loss)."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG").to_ndarray(
        format="rgb24"
    )


def leftovers(folder: Path) -> list[str]:
    """Hidden or temporary files anywhere under ``folder`` (work folders, unfinished writes)."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small random `compact` x4 model saved as a gansr checkpoint (any model works)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "compact.safetensors"
    models.save(models.create("compact", num_feat=8, num_conv=2, scale=4), path)
    return path


# --------------------------------------------------------------------------- the main path


def test_cli_keeps_every_frame_its_time_and_the_audio(capsys, tmp_path: Path, tiny_model: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=30, vfr=True)
    out = tmp_path / "out.mp4"
    code = main(["upscale", str(clip), "-o", str(out), "--model", str(tiny_model), "--segment-frames", "7"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 upscaled" in err and "frames 30/30" in err  # plain progress lines: stderr is not a TTY

    src_times, src_frames = decode(clip)
    out_times, out_frames = decode(out)
    assert len(out_frames) == len(src_frames) == 30
    assert out_frames[0].shape == (96, 128, 3)
    assert out_times == src_times  # variable frame rate: every frame at its own time, exactly
    assert packets(out, "audio") == packets(clip, "audio")  # copied untouched
    with av.open(os.fspath(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].format.name == "yuv420p"
        assert c.streams.audio[0].codec_context.name == "aac"
    # The pictures are the model's, in order: each is nearest to its own frame's upscale (the
    # random model's noisy texture costs H.264 some dB, so no absolute threshold here).
    up = Upscaler(tiny_model)
    for index in (0, 13, 29):
        expected = up.upscale(src_frames[index])
        own = psnr(expected, out_frames[index])
        assert own > 20 and all(
            own > psnr(expected, other) + 1 for other in out_frames[::7] if other is not out_frames[index]
        )
    assert leftovers(tmp_path) == []


def test_mkv_keeps_subtitles_and_default_name(capsys, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "talk.mkv", frames=18, subtitles=True)
    code = main(["upscale", str(clip), "--model", "bicubic", "--outscale", "1.5", "-q"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "talk_x1.5.mkv"
    src_times, src_frames = decode(clip)
    out_times, out_frames = decode(out)
    assert len(out_frames) == 18 and out_frames[0].shape == (36, 48, 3)
    assert out_times == src_times
    # The pixels: within 3 dB of what 4:2:0 alone allows (colours, matrix and range right).
    up = Upscaler("bicubic")
    for a, b in zip(src_frames, out_frames, strict=True):
        expected = up.upscale(a, outscale=1.5)
        assert psnr(expected, b) > psnr(expected, via_420(expected)) - 3
    assert packets(out, "subtitle") == packets(clip, "subtitle") != []
    assert packets(out, "audio") == packets(clip, "audio")
    with av.open(os.fspath(out)) as c:
        assert c.streams.subtitles[0].metadata.get("language") in (None, "und", "eng")


def test_odd_sizes_become_even_for_420(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=3, audio=False)
    up = Upscaler("bicubic")
    result = upscale_video(up, clip, tmp_path / "o.mp4", size=(0, 51))
    assert result.status == "written"
    _, frames = decode(tmp_path / "o.mp4")
    assert frames[0].shape == (38, 52, 3)  # 51 x 38.25 -> 52 x 38 (4:2:0 needs even sides)


# --------------------------------------------------------------------------- memory


def test_frames_run_within_the_video_memory_budget(monkeypatch, tiny_model: Path) -> None:
    up = Upscaler(tiny_model)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    # Untiled, a frame is exactly an image's upscale (the same rounding, one 8-bit copy).
    whole = pipeline.upscale_frame(up, rgb, (160, 224))
    assert whole.dtype == np.uint8 and whole.flags.c_contiguous
    assert np.array_equal(whole, up.upscale(rgb))
    # The budget reaches the tile plan: a small one tiles the frame, to the same picture.
    plans: list[int | None] = []
    real_plan = up.plan

    def plan(height: int, width: int, **kwargs: int | None):
        plans.append(kwargs["memory_budget"])
        return real_plan(height, width, **kwargs)

    monkeypatch.setattr(up, "plan", plan)
    monkeypatch.setattr(pipeline, "FRAME_MEMORY_BUDGET", 1 << 20)
    assert real_plan(40, 56).tile == 0 and real_plan(40, 56, memory_budget=1 << 20).tile > 0
    tiled = pipeline.upscale_frame(up, rgb, (160, 224))
    assert plans == [1 << 20]
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_x264_queue_is_bounded_for_large_frames() -> None:
    from gansr.video.encode import encoder_settings

    def options(height: int, width: int, **extra: str) -> dict[str, str]:
        return dict(encoder_settings("mp4", size=(height, width), options=extra).options)

    assert options(1920, 3416) == options(2160, 3840) == {"crf": "18"}  # x264's own defaults up to 4K
    assert options(4320, 7680) == {"crf": "18", "rc-lookahead": "3", "bf": "0", "refs": "1"}  # 8K
    assert options(4320, 7680, bf="3")["bf"] == "3"  # what the caller asks for wins


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("damage", ["truncated", "truncated_faststart", "truncated_mkv", "garbage", "empty"])
def test_bad_video_one_error_line_no_output(capsys, tmp_path: Path, damage: str) -> None:
    suffix = ".mkv" if damage.endswith("mkv") else ".mp4"
    clip = tmp_path / f"bad{suffix}"
    if damage.startswith("truncated"):
        # Index at the end (FFmpeg's default), at the front (faststart), and Matroska: the last
        # two are read without any error by FFmpeg up to the cut.
        whole = make_clip(tmp_path / f"whole{suffix}", frames=30, faststart=damage.endswith("faststart"))
        data = whole.read_bytes()
        whole.unlink()
        clip.write_bytes(data[: len(data) * 2 // 3])
    else:
        clip.write_bytes(os.urandom(4000) if damage == "garbage" else b"")
    out = tmp_path / f"out{suffix}"
    code = main(["upscale", str(clip), "-o", str(out), "--model", "bicubic", "--segment-frames", "4", "-q"])
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gansr: error:") and clip.name in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == [clip.name]  # no output, no work folder


def test_existing_output_and_leftover_segments(capsys, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=6, audio=False)
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    assert main(["upscale", str(clip), "-o", str(out), "--model", "bicubic"]) == 0
    assert "1 skipped" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    out.unlink()
    # Segments of an interrupted run are neither reused nor thrown away silently.
    up = Upscaler("bicubic")
    upscale_video(up, clip, out, segment_frames=2, shard=Shard(1, 2))
    assert not out.exists() and WorkDir(out).finished()
    with pytest.raises(ConfigError, match="--resume"):
        upscale_video(up, clip, out, segment_frames=2)
    with pytest.raises(ConfigError, match="--segment-frames"):
        upscale_video(up, clip, out, segment_frames=3, resume=True)
    assert upscale_video(up, clip, out, overwrite=True).status == "written"
    assert len(decode(out)[1]) == 6 and leftovers(tmp_path) == []


def test_usage_errors_are_one_line(capsys, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mkv", frames=4, subtitles=True)
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    cases = [
        (["upscale", str(clip), "-o", str(tmp_path / "o.png")], "name a video file"),
        (["upscale", str(image), "-o", str(tmp_path / "o.mp4")], "name an image file"),
        (["upscale", str(image), "--merge"], "no video input"),
        (["upscale", str(clip), "--shard", "3/2"], "1 <= K <= N"),
        (["upscale", str(clip), "--codec", "no-such-codec"], "unknown video encoder"),
        (["upscale", str(clip), "-o", str(tmp_path / "o.mp4")], "name the output .mkv"),  # SRT in MP4
        (["upscale", str(clip), "-o", str(tmp_path / "o.mkv"), "--merge"], "nothing to merge"),
    ]
    for argv, message in cases:
        code = main([*argv, "--model", "bicubic", "-q"])
        err = capsys.readouterr().err
        assert code in (1, 2) and err.count("gansr: error:") == 1 and message in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.mkv", "c.srt"]


def test_missing_pyav_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(VideoSupportMissing, match=r"pip install 'gansr\[video\]'"):
        require_av()


# --------------------------------------------------------------------------- long jobs


def _slow_cli(clip: Path, out: Path, *extra: str) -> subprocess.Popen:
    """`gansr upscale` in a child process, each frame held back 50 ms so it can be stopped mid-run."""
    code = (
        "import time, gansr.video.pipeline as p\n"
        "real = p.upscale_frame\n"
        "p.upscale_frame = lambda *a: (time.sleep(0.05), real(*a))[1]\n"
        "from gansr.cli import main\n"
        f"raise SystemExit(main({['upscale', str(clip), '-o', str(out), '--model', 'bicubic', *extra]!r}))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_segment(work: WorkDir, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not work.finished():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no segment was finished in time"
        time.sleep(0.01)


def test_sigterm_stops_cleanly_and_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=40)
    out = tmp_path / "out.mp4"
    proc = _slow_cli(clip, out, "--segment-frames", "4")
    _wait_for_segment(WorkDir(out), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert not out.exists()
    kept = WorkDir(out).finished()
    assert 0 < len(kept) < 10

    up = Upscaler("bicubic")
    resumed = upscale_video(up, clip, out, resume=True)
    assert resumed.status == "written" and resumed.segments == 10 - len(kept)
    reference = upscale_video(up, clip, tmp_path / "reference.mp4", segment_frames=4)
    assert reference.segments == 10
    out_times, out_frames = decode(out)
    ref_times, ref_frames = decode(tmp_path / "reference.mp4")
    assert out_times == ref_times and len(out_frames) == 40
    assert all(np.array_equal(a, b) for a, b in zip(out_frames, ref_frames, strict=True))
    assert packets(out, "audio") == packets(clip, "audio")
    assert leftovers(tmp_path) == []


def test_sigkill_never_leaves_a_broken_output(capsys, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=32, audio=False)
    out = tmp_path / "out.mp4"
    proc = _slow_cli(clip, out, "--segment-frames", "4")
    _wait_for_segment(WorkDir(out), proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists()
    assert main(["upscale", str(clip), "-o", str(out), "--model", "bicubic", "--resume", "-q"]) == 0
    times, frames = decode(out)
    assert len(frames) == 32 and times == decode(clip)[0]
    assert leftovers(tmp_path) == []  # the killed run's work folder went with the merge


# --------------------------------------------------------------------------- several machines


def test_shards_split_segments_and_the_last_one_merges(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=20)
    up = Upscaler("bicubic")
    out = tmp_path / "out.mp4"
    first = upscale_video(up, clip, out, segment_frames=3, shard=Shard(2, 3))
    assert first.status == "partial" and first.segments == 2 and "--merge" in first.note  # segments 1, 4
    second = upscale_video(up, clip, out, segment_frames=3, shard=Shard(1, 3))
    assert second.status == "partial" and second.segments == 3  # 0, 3, 6
    # A merge that crashed left its lock: the last shard cannot merge, `--merge` can.
    (WorkDir(out).path / "merge.lock").touch()
    third = upscale_video(up, clip, out, segment_frames=3, shard=Shard(3, 3))
    assert third.status == "partial" and third.segments == 2 and "merging" in third.note
    assert merge_video(clip, out).status == "written"
    reference = tmp_path / "reference.mp4"
    upscale_video(up, clip, reference, segment_frames=3)
    (out_times, out_frames), (ref_times, ref_frames) = decode(out), decode(reference)
    assert out_times == ref_times and all(
        np.array_equal(a, b) for a, b in zip(out_frames, ref_frames, strict=True)
    )
    assert packets(out, "audio") == packets(clip, "audio")
    assert leftovers(tmp_path) == []


def test_shard_parsing_and_image_folder_split(capsys, tmp_path: Path, monkeypatch) -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert Shard.parse("auto", {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(4, 4)
    slurm = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert Shard.parse("auto", slurm) == Shard(2, 3)
    assert Shard.parse("auto", {}) == Shard(1, 1)
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(ConfigError):
            Shard.parse(bad)
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(folder / f"{name}.png")
    for part in ("1/2", "2/2"):
        assert (
            main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--model", "bicubic", "--shard", part])
            == 0
        )
        capsys.readouterr()
        if part == "1/2":
            assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.png", "c_x4.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.png", "b_x4.png", "c_x4.png"]


# --------------------------------------------------------------------------- progress


def test_progress_plain_lines_when_piped() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = FrameProgress("clip.mp4", 900, stream=stream, clock=lambda: now[0])
    for _ in range(120):
        now[0] += 1 / 3.1
        progress.update()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) > 5  # one every ~2 s of the 39 s, plus the last
    assert lines[-1] == "clip.mp4: frames 120/900 (13%) 3.10 fps ETA 4m12s"
