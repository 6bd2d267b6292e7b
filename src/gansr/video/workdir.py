"""The work folder of one video job: finished segments, what they are of, and who merges.

``OUT.mp4`` is built in ``.OUT.mp4.parts/`` beside it (hidden, same file system, so the final
rename is atomic)::

    manifest.json        the job: source fingerprint, model, output size, encoder, time base,
                         frames per segment. Written once; every later run and every shard
                         checks it and refuses to mix segments of a different job.
    seg-000007.mp4       segment 7: frames 7*F .. 8*F-1, video only, encoded on its own
    seg-000007.json      its frame count and first timestamp (written just before the video)
    end.json             frames and segments in the source: written by whoever decodes to the end
    merge.lock           held by the one process that merges

Every file appears atomically (temporary name, then rename), so a process killed at any moment
leaves either a whole segment or none; a segment is finished when its video file exists. Several
processes (shards, possibly on different machines sharing the folder) only ever create distinct
segment files, so they need no locking until the merge.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gansr.data.io import atomic_write
from gansr.errors import ConfigError

__all__ = ["SegmentInfo", "WorkDir"]

_FORMAT = "gansr-video-parts"
_VERSION = 1


@dataclass(frozen=True)
class SegmentInfo:
    """A finished segment: ``frames`` frames, the first shown at ``first_pts`` (work time base)."""

    index: int
    frames: int
    first_pts: int


class WorkDir:
    """The ``.NAME.parts`` folder beside ``dest`` (see the module doc)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path = dest.with_name(f".{dest.name}.parts")

    # ---- paths

    def segment_path(self, index: int, fmt: str) -> Path:
        return self.path / f"seg-{index:06d}{'.mp4' if fmt == 'mp4' else '.mkv'}"

    def _info_path(self, index: int) -> Path:
        return self.path / f"seg-{index:06d}.json"

    @property
    def _manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def _end_path(self) -> Path:
        return self.path / "end.json"

    # ---- the job

    def exists(self) -> bool:
        return self.path.is_dir()

    def manifest(self) -> dict[str, Any] | None:
        """The stored job description, or ``None`` when there is none yet."""
        return _read_json(self._manifest_path)

    def claim(self, job: dict[str, Any], *, segment_frames: int) -> dict[str, Any]:
        """Create the folder and its manifest for ``job``, or check that the one there is the same
        job; returns the stored manifest. ``job["segment_frames"]`` ``None`` takes the stored
        value, or ``segment_frames`` for a new folder.

        Raises:
            ConfigError: the folder holds another job (names the first difference).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        stored = self.manifest()
        if stored is None:
            wanted = {"format": _FORMAT, "version": _VERSION, **job}
            if wanted.get("segment_frames") is None:
                wanted["segment_frames"] = segment_frames
            if _create_exclusive(self._manifest_path, wanted):
                return wanted
            stored = self.manifest()  # another shard created it first
            if stored is None:
                raise ConfigError(f"{self._manifest_path}: unreadable; remove {self.path} to start over")
        difference = _difference(stored, job)
        if difference:
            raise ConfigError(
                f"{self.dest}: the unfinished run in {self.path} used another {difference}; run with "
                "--overwrite to start over (or remove that folder)"
            )
        return stored

    # ---- segments

    def finished(self) -> dict[int, SegmentInfo]:
        """Finished segments by index (video file and its info both present)."""
        if not self.path.is_dir():
            return {}
        done: dict[int, SegmentInfo] = {}
        for entry in os.scandir(self.path):
            name = entry.name
            if not (name.startswith("seg-") and name.endswith((".mp4", ".mkv"))):
                continue
            try:
                index = int(name[4:-4])
            except ValueError:
                continue
            info = _read_json(self._info_path(index))
            if info is not None:
                done[index] = SegmentInfo(index, int(info["frames"]), int(info["first_pts"]))
        return done

    def record_segment(self, info: SegmentInfo) -> None:
        """Write a segment's info (before its video file is renamed into place)."""
        _write_json(self._info_path(info.index), {"frames": info.frames, "first_pts": info.first_pts})

    def segment_file(self, index: int) -> Path:
        """The finished video file of segment ``index``."""
        for suffix in (".mp4", ".mkv"):
            path = self.path / f"seg-{index:06d}{suffix}"
            if path.exists():
                return path
        raise FileNotFoundError(f"segment {index} is missing from {self.path}")

    # ---- the end and the merge

    def record_end(self, frames: int, segments: int) -> None:
        """Record how many frames and segments the source has (the same from every process)."""
        _write_json(self._end_path, {"frames": frames, "segments": segments})

    def end(self) -> tuple[int, int] | None:
        """``(frames, segments)`` once some process decoded the whole source, else ``None``."""
        data = _read_json(self._end_path)
        return None if data is None else (int(data["frames"]), int(data["segments"]))

    def missing(self) -> list[int] | None:
        """Unfinished segment indexes, or ``None`` while the number of segments is unknown."""
        end = self.end()
        if end is None:
            return None
        done = self.finished()
        return [index for index in range(end[1]) if index not in done]

    @contextmanager
    def merge_lock(self, *, force: bool = False) -> Iterator[bool]:
        """Yield True to the one process that may merge (exclusive create of ``merge.lock``), False
        to others; ``force`` first removes a lock left by a merge that crashed."""
        lock = self.path / "merge.lock"
        if force:
            lock.unlink(missing_ok=True)
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            yield False
            return
        os.close(fd)
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the folder and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)


def _difference(stored: dict[str, Any], job: dict[str, Any]) -> str | None:
    """The first job key whose stored value differs (``segment_frames`` only when ``job`` sets
    it), described for the user, or ``None``."""
    labels = {
        "source": "source file",
        "model": "model",
        "size": "output size",
        "encoder": "encoder setting",
        "time_base": "time base",
        "segment_frames": "--segment-frames",
    }
    for key, value in job.items():
        if key == "segment_frames" and value is None:
            continue
        if stored.get(key) != value:
            return labels.get(key, key)
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        return None  # half-visible on a network file system, or damaged: treated as absent
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def _create_exclusive(path: Path, data: dict[str, Any]) -> bool:
    """Write ``path`` only if it does not exist (a hard link of a finished temporary file, so a
    reader never sees it half-written); False when another process was first."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_json(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: a rename, which may replace a twin
        os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)
    return True
