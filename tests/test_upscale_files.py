"""`gansr upscale` and the files around it: stale temporaries, SIGTERM, inputs never dropped
without a word, symlink loops, ONNX models, progress in a pipe, install hints (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gansr import models
from gansr.cli import main

fcntl = pytest.importorskip("fcntl", reason="temporaries are told apart by file locks (POSIX)")


pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    args = list(argv)
    if args[:1] == ["upscale"] and "--model" not in args:
        args += ["--model", "bicubic"]  # exact and fast: these tests are about files
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def crop(set5: Path, name: str, box: tuple[int, int, int, int]) -> Image.Image:
    with Image.open(set5 / name) as img:
        return img.convert("RGB").crop(box)


# --------------------------------------------------------------------------- stale temporaries


def test_next_run_removes_stale_temporaries_but_nothing_else(capsys, tmp_path: Path, set5: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    crop(set5, "bird.png", (0, 0, 24, 20)).save(folder / "a.png")
    stale = folder / ".a_x4.png.0badf00d.tmp"  # what a SIGKILLed run leaves (here 16 MB of it)
    stale.write_bytes(b"\x89PNG half")
    live = folder / ".b_x4.png.12345678.tmp"  # another process (a second shard) is writing this
    live.write_bytes(b"in progress")
    keep = [
        folder / ".notes.txt.0badf00d.tmp",  # our pattern, but not an image output of ours
        folder / ".a_x4.png.tmp",  # not our pattern
        folder / "a_x4.png.0badf00d.tmp",  # not hidden: not ours
        folder / ".a_x4.png.0BADF00D.tmp",  # upper-case hex: not ours
    ]
    for path in keep:
        path.write_bytes(b"user data")
    link = folder / ".c_x4.png.aaaaaaaa.tmp"
    link.symlink_to(folder / "a.png")  # a link with our name: never followed, never removed
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        code, _, err = run_cli(capsys, "upscale", str(folder))
    finally:
        os.close(holder)
    assert code == 0, err
    assert not stale.exists()
    assert live.exists() and link.is_symlink() and all(path.exists() for path in keep)
    assert (folder / "a_x4.png").is_file() and (folder / "a.png").is_file()
    assert "removed 1 temporary file(s)" in err


def test_atomic_write_holds_its_temporary_until_renamed(tmp_path: Path) -> None:
    from gansr.data.atomic import atomic_write, remove_stale_temporaries

    with atomic_write(tmp_path / "out.png") as fh:
        fh.write(b"data")
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.png.")]
        assert remove_stale_temporaries(tmp_path) == [] and tmp.exists()  # locked: a live writer
    assert (tmp_path / "out.png").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from PIL import Image
    from gansr.cli import main

    real_save = Image.Image.save
    calls = {"n": 0}

    def save_then_sigterm(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second output: part of it is written when SIGTERM arrives
            fp.write(b"\\x89PNG partial")
            os.kill(os.getpid(), signal.SIGTERM)
        return real_save(self, fp, *args, **kwargs)

    Image.Image.save = save_then_sigterm
    sys.exit(main(["upscale", sys.argv[1], "--model", "bicubic"]))
    """
)


def test_sigterm_stops_cleanly_without_leaving_a_temporary(tmp_path: Path, set5: Path) -> None:
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        crop(set5, "bird.png", (i * 10, 0, i * 10 + 16, 16)).save(tmp_path / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 130, proc.stderr
    assert "1 upscaled" in proc.stderr and "(interrupted)" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_x4.png", "b.png", "c.png"]


# --------------------------------------------------------------------------- no input dropped silently


def test_same_stem_inputs_with_an_empty_suffix_are_both_upscaled(capsys, tmp_path: Path, set5: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    crop(set5, "bird.png", (0, 0, 12, 10)).save(folder / "b.png")
    crop(set5, "head.png", (0, 0, 12, 10)).save(folder / "b.jpg")
    code, _, err = run_cli(capsys, "upscale", str(folder), "--suffix", "")
    assert code == 0 and "2 upscaled, 0 skipped (output exists), 0 failed" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["b.jpg", "b.png", "b_jpg.jpg", "b_png.png"]
    # A re-run skips both outputs and says why the two new files are not inputs.
    code, _, err = run_cli(capsys, "upscale", str(folder), "--suffix", "")
    assert code == 0 and "0 upscaled, 2 skipped" in err, err
    (note,) = [line for line in err.splitlines() if line.startswith("gansr: note:")]
    assert "b_png.png (the output of b.png)" in note and "b_jpg.jpg (the output of b.jpg)" in note
    # With -o, the names stay plain.
    code, _, err = run_cli(capsys, "upscale", str(folder / "b.png"), str(folder / "b.jpg"), "-o",
                           str(tmp_path / "out"), "--suffix", "")  # fmt: skip
    assert code == 0 and "2 upscaled" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.jpg", "b.png"]


def test_gifs_in_folders_are_upscaled_and_animation_is_named(capsys, tmp_path: Path, set5: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [crop(set5, "bird.png", (i * 8, 0, i * 8 + 16, 12)) for i in range(4)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[1].save(folder / "still.gif")
    frames[2].save(folder / "photo.png")
    code, _, err = run_cli(capsys, "upscale", str(folder))
    assert code == 0 and "3 upscaled, 0 skipped (output exists), 0 failed" in err, err
    assert {"anim_x4.png", "still_x4.png", "photo_x4.png"} <= {p.name for p in folder.iterdir()}
    (warning,) = [line for line in err.splitlines() if line.startswith("gansr: warning:")]
    assert "anim.gif" in warning and "4 frames" in warning and "first frame" in warning


def test_earlier_outputs_found_in_a_folder_are_named(capsys, tmp_path: Path, set5: Path) -> None:
    crop(set5, "bird.png", (0, 0, 12, 10)).save(tmp_path / "a.png")
    assert run_cli(capsys, "upscale", str(tmp_path))[0] == 0
    code, _, err = run_cli(capsys, "upscale", str(tmp_path))
    assert code == 0 and "0 upscaled, 1 skipped" in err
    assert f"gansr: note: 1 file(s) in the input folders are not inputs: {tmp_path / 'a_x4.png'}" in err
    code, _, err = run_cli(capsys, "upscale", str(tmp_path), "--quiet")
    assert code == 0 and err == ""


# --------------------------------------------------------------------------- symbolic links


def test_symlink_loop_and_broken_link_say_what_they_are(capsys, tmp_path: Path, set5: Path) -> None:
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop2.png")
    (tmp_path / "loop2.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / "broken.png").symlink_to(tmp_path / "gone.png")
    crop(set5, "bird.png", (0, 0, 12, 10)).save(tmp_path / "ok.png")
    code, _, err = run_cli(capsys, "upscale", str(tmp_path))
    assert code == 1 and "1 upscaled, 0 skipped (output exists), 3 failed" in err, err
    errors = sorted(line for line in err.splitlines() if line.startswith("gansr: error:"))
    assert errors == [
        f"gansr: error: {tmp_path / 'broken.png'}: broken symbolic link (its target "
        f"{str(tmp_path / 'gone.png')!r} does not exist)",
        f"gansr: error: {tmp_path / 'loop.png'}: symbolic link loop (the link points back to itself)",
        f"gansr: error: {tmp_path / 'loop2.png'}: symbolic link loop (the link points back to itself)",
    ]
    assert "corrupt" not in err


# --------------------------------------------------------------------------- ONNX models


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> tuple[Path, Path]:
    """A small x4 msrresnet as a gansr checkpoint and as its `gansr export` ONNX file."""
    pytest.importorskip("onnx", reason="exporting needs the onnx extra")
    from gansr.models.export import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    model = models.create("msrresnet", num_feat=8, num_block=2, scale=4)
    return models.save(model, folder / "tiny.safetensors"), export_onnx(model, folder / "tiny.onnx")


def test_onnx_model_runs_through_onnxruntime(capsys, tmp_path: Path, set5: Path, tiny_onnx) -> None:
    pytest.importorskip("onnxruntime", reason="running .onnx needs onnxruntime")
    checkpoint, onnx_file = tiny_onnx
    crop(set5, "butterfly.png", (60, 60, 124, 108)).save(tmp_path / "in.png")
    for model, name in ((onnx_file, "onnx.png"), (checkpoint, "torch.png")):
        code, _, err = run_cli(capsys, "upscale", str(tmp_path / "in.png"), "--model", str(model),
                               "-o", str(tmp_path / name), "--tile", "24")  # fmt: skip
        assert code == 0, err
    with Image.open(tmp_path / "onnx.png") as a, Image.open(tmp_path / "torch.png") as b:
        assert a.size == (256, 192)
        diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
    assert diff.max() <= 1
    code, out, err = run_cli(capsys, "eval", "--model", str(onnx_file), "--data", str(set5), "--json")
    assert code == 0 and len(json.loads(out)["images"]) == 5, err


def test_onnx_without_onnxruntime_says_it_is_an_export_format(
    capsys, tmp_path: Path, set5: Path, tiny_onnx, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    crop(set5, "bird.png", (0, 0, 12, 10)).save(tmp_path / "in.png")
    code, _, err = run_cli(capsys, "upscale", str(tmp_path / "in.png"), "--model", str(tiny_onnx[1]))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("gansr: error: running .onnx models needs onnxruntime")
    assert "export format" in line and "pip install" in line and "[onnx]" in line
    assert "safetensors header" not in line.lower()


# --------------------------------------------------------------------------- progress in a pipe


def test_progress_is_plain_lines_in_a_pipe_and_advances_by_tiles(
    capsys, tmp_path: Path, set5: Path, monkeypatch
) -> None:
    monkeypatch.setattr("gansr.upscale.progress.PLAIN_LINE_INTERVAL", 0.0)
    crop(set5, "baby.png", (0, 0, 128, 128)).save(tmp_path / "big.png")
    torch.manual_seed(0)
    model = models.save(models.create("msrresnet", num_feat=4, num_block=1), tmp_path / "m.safetensors")
    code, _, err = run_cli(
        capsys, "upscale", str(tmp_path / "big.png"), "--model", str(model), "--tile", "32"
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("upscale: ")]
    assert "\r" not in err  # no bar
    percents = [int(line.split()[1].rstrip("%")) for line in lines]
    # 16 tiles of one image: the count moves within it, not only at its end.
    assert len([p for p in percents if 0 < p < 100]) >= 10 and percents == sorted(percents)
    assert lines[0].endswith(": big.png") and "(0 of 1 images done)" in lines[0]


def test_eval_shows_progress_lines_in_a_pipe(capsys, set5: Path, monkeypatch) -> None:
    monkeypatch.setattr("gansr.upscale.progress.PLAIN_LINE_INTERVAL", 0.0)
    code, _, err = run_cli(capsys, "eval", "--model", "bicubic", "--data", str(set5))
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("eval: ")]
    assert [line.split(" (")[0] for line in lines] == ["eval: 20%", "eval: 40%", "eval: 60%", "eval: 80%",
                                                      "eval: 100%"]  # fmt: skip


def test_plain_progress_lines_are_rate_limited() -> None:
    import io

    from gansr.upscale.progress import Progress

    now = [0.0]
    stream = io.StringIO()
    bar = Progress("upscale", 4, unit="images", stream=stream, interval=2.0, clock=lambda: now[0])
    bar.set_item("a.png")
    bar.update(0.5)  # t = 0: too soon for a line
    now[0] = 3.0
    bar.update(0.5)
    now[0] = 4.0
    bar.update(1.0)  # 1 s after the last line: none
    bar.close()
    assert stream.getvalue() == "upscale: 25% (1 of 4 images done), 3.0 s per image, ETA 9s: a.png\n"
