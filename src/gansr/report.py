"""The quality report of ``gansr report``: shipped models and bicubic on HR folders and MNIST.

Every dataset is measured with the protocol of :mod:`gansr.evaluate`: HR image folders with the SR
literature's (MATLAB bicubic LR, Y-channel PSNR/SSIM with ``scale`` border pixels cropped, plus
NIQE), a folder of MNIST IDX files with the MNIST protocol (held-out last 2,000 digits). A model is
run only where it applies: 1-channel digit models on MNIST, RGB models on photos; bicubic on both.

:func:`build_report` returns the report as a JSON-able dict; :func:`write_report` writes it as

* ``benchmark.json``: the dict below;
* ``README.md``: one table per dataset, the published reference numbers, and the crops;
* ``<dataset>.png``: side-by-side crops, bicubic | each model | HR, of one image (photos) or of a
  few digits (MNIST).

With a degradation (``BenchmarkConfig.degradation``: a preset such as ``jpeg60_x4`` or a YAML
pipeline), photo datasets get their LR images from it (:class:`gansr.evaluate.Degradation`, seeded
per image), each result also holds the mean JPEG-grid ratio of the SR outputs
(:func:`gansr.metrics.grid_ratio`), and the crops start with the degraded input, nearest-upscaled:
input | bicubic | each model | HR. MNIST keeps its own protocol.

JSON fields (``benchmark.json``)::

    gansr_version, torch_version, created (UTC ISO time), cpu, threads, scale
    datasets: [{
        name, path, kind ("images" | "mnist"), protocol, images (count), crop (PNG file name),
        results: [{model, arch, params, psnr, ssim, niqe (null for MNIST), cpu_s_per_mp, images,
                   grid (photos with a degradation only; null if no image has a block boundary)}],
        not_applicable: [{model, reason}],
    }]
    degradation: {name, seed, steps}  # only with a degradation
    models: [{model, arch, params, in_channels, shipped (bool), trained_on (from the weights' metadata)}]
    reference: {source, columns, rows: [{method, Set5, Set14}]}  # published PSNR, dB, x4

``cpu_s_per_mp`` is the model's forward time per output megapixel on this process's CPU threads
(the degradation and the metrics are not counted), the mean over the dataset.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gansr.errors import ConfigError, DataError
from gansr.evaluate import Degradation

__all__ = [
    "REFERENCE_X4",
    "BenchmarkConfig",
    "build_report",
    "default_models",
    "render_markdown",
    "summary_table",
    "write_report",
]

# Published x4 PSNR (dB, Y channel, `scale` border crop) on Set5 / Set14, for the methods gansr does
# not ship weights for yet. Bicubic is measured here too and should match its row.
REFERENCE_X4: dict[str, Any] = {
    "source": (
        "Bicubic, SRCNN, VDSR: Kim et al., VDSR (CVPR 2016), Table 3; SRResNet: Ledig et al., "
        "SRGAN (CVPR 2017), Table 2"
    ),
    "columns": ["Set5", "Set14"],
    "rows": [
        {"method": "bicubic", "Set5": 28.42, "Set14": 26.00},
        {"method": "SRCNN", "Set5": 30.48, "Set14": 27.50},
        {"method": "VDSR", "Set5": 31.35, "Set14": 28.01},
        {"method": "SRResNet", "Set5": 32.05, "Set14": 28.49},
    ],
}

CROP_DIGITS = 8  # digits stacked in each MNIST crop panel
DIGIT_ZOOM = 3  # nearest-neighbour magnification of the 28x28 digits, so the PNG is readable
_GAP = 4  # white pixels between panels
_LABEL_H = 14  # height of the label strip above each panel


@dataclass
class BenchmarkConfig:
    """What ``gansr report`` measures and where it writes.

    Args:
        models: ``"bicubic"``, shipped model names or checkpoint paths; empty means bicubic plus
            every shipped model (:func:`default_models`).
        datasets: HR image folders (Set5, Set14, any folder of images) or MNIST IDX folders.
        out: output folder for ``benchmark.json``, ``README.md`` and the crop PNGs.
        scale: upscaling factor (MNIST is always x4).
        niqe: also compute NIQE on photo datasets (slow-ish: about a second per image).
        mnist_max_images: only the first N held-out digits (fast checks); ``None`` for all 2,000.
        crop_size: edge of the HR crop shown for photo datasets, in HR pixels.
        degradation: a degradation preset name or YAML pipeline file making the LR of photo
            datasets instead of MATLAB bicubic; ``None`` for the literature's protocol.
        seed: seed of the degradation's random draws (per image, with its index).
    """

    models: list[str] = field(default_factory=list)
    datasets: list[Path] = field(default_factory=list)
    out: Path = Path("docs/benchmarks")
    scale: int = 4
    niqe: bool = True
    mnist_max_images: int | None = None
    crop_size: int = 128
    degradation: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ConfigError("benchmark needs at least one dataset folder")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1:
            raise ConfigError(f"scale must be a positive integer, got {self.scale!r}")
        if self.mnist_max_images is not None and self.mnist_max_images < 1:
            raise ConfigError(f"mnist_max_images must be a positive integer, got {self.mnist_max_images}")
        if self.crop_size < 8:
            raise ConfigError(f"crop_size must be at least 8 pixels, got {self.crop_size}")
        self.datasets = [Path(d) for d in self.datasets]
        self.out = Path(self.out)
        if self.degradation is not None:  # fail before any model runs
            Degradation.resolve(self.degradation, self.scale, seed=self.seed)

    def resolve_degradation(self) -> Degradation | None:
        """The :class:`Degradation` of :attr:`degradation`, or ``None``."""
        if self.degradation is None:
            return None
        return Degradation.resolve(self.degradation, self.scale, seed=self.seed)


def default_models() -> list[str]:
    """``bicubic`` followed by every shipped model, sorted by name."""
    from gansr.models.checkpoint import shipped_models

    return ["bicubic", *sorted(shipped_models())]


# --------------------------------------------------------------------------------------- models


@dataclass
class _Model:
    spec: str
    net: nn.Module
    arch: str
    params: int
    in_channels: int
    shipped: bool
    trained_on: str | None

    @property
    def label(self) -> str:
        """Short name for crop labels: the spec, or a checkpoint path's file stem."""
        return (
            Path(self.spec).stem if os.sep in self.spec or self.spec.endswith(".safetensors") else self.spec
        )

    def applies_to(self, kind: str) -> str | None:
        """``None`` when the model can run on a ``kind`` dataset, else the reason it cannot."""
        if self.arch == "bicubic":
            return None
        if kind == "mnist" and self.in_channels != 1:
            return f"{self.in_channels}-channel model; MNIST digits are gray"
        exact = getattr(self.net, "exact_scale", None)
        if kind == "mnist" and exact is not None and exact != round(exact):
            return f"a x{exact:g} model (design 001's 26 -> 28): gansr eval --scale 28/26 measures it"
        if kind == "images" and self.in_channels != 3:
            return "gray digits model (trained on MNIST), not for photos"
        return None


def _load_models(specs: list[str], scale: int) -> list[_Model]:
    from gansr import models
    from gansr.models.checkpoint import shipped_models

    shipped = shipped_models()
    out = []
    for spec in specs:
        net = models.require_generator(models.load(spec, scale=scale))
        meta = getattr(net, "metadata", None) or {}
        out.append(
            _Model(
                spec=spec,
                net=net,
                arch=str(getattr(net, "arch", type(net).__name__)),
                params=int(models.count_parameters(net, trainable_only=False)),
                in_channels=int(getattr(net, "in_channels", 3)),
                shipped=spec in shipped,
                trained_on=meta.get("data") if isinstance(meta, dict) else None,
            )
        )
    return out


# ------------------------------------------------------------------------------------- datasets


def _dataset_kind(path: Path) -> tuple[str, Path, str]:
    """``(kind, folder, display name)`` of a dataset folder."""
    from gansr.data import resolve_benchmark
    from gansr.evaluate import is_mnist_folder

    if not path.exists():
        raise DataError(f"{path}: no such folder")
    if is_mnist_folder(path):
        return "mnist", path, "MNIST"
    folder, name = resolve_benchmark(path)
    return "images", folder, name


def _measure(
    model: _Model, kind: str, folder: Path, name: str, cfg: BenchmarkConfig, degradation: Degradation | None
) -> dict[str, Any]:
    from gansr.evaluate import evaluate_folder, evaluate_mnist

    if kind == "mnist":
        result = evaluate_mnist(model.net, folder, model_name=model.spec, max_images=cfg.mnist_max_images)
        pixels = [28 * 28] * len(result.images)
    else:
        result = evaluate_folder(
            model.net,
            folder,
            cfg.scale,
            model_name=model.spec,
            dataset_name=name,
            with_niqe=cfg.niqe,
            degradation=degradation,
        )
        from gansr.data.io import image_size

        pixels = []
        for r in result.images:
            h, w = image_size(folder / r.name)
            pixels.append((h - h % cfg.scale) * (w - w % cfg.scale))
    if not result.images:
        raise DataError(f"{folder}: none of the images could be measured ({'; '.join(result.errors)})")
    mean = result.mean()
    seconds = math.fsum(r.seconds for r in result.images)
    row: dict[str, Any] = {
        "model": model.spec,
        "arch": model.arch,
        "params": model.params,
        "psnr": round(mean["psnr"], 4),
        "ssim": round(mean["ssim"], 4),
        "niqe": round(mean["niqe"], 4) if "niqe" in mean else None,
        "cpu_s_per_mp": round(seconds / (sum(pixels) / 1e6), 4),
        "images": len(result.images),
    }
    if result.degradation is not None:
        row["grid"] = round(mean["grid"], 4) if "grid" in mean else None
    return row


# ---------------------------------------------------------------------------------------- crops


def _label(panel: torch.Tensor, text: str) -> torch.Tensor:
    """``panel`` (3, H, W) with a white strip above it holding ``text``."""
    import numpy as np
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (panel.shape[-1], _LABEL_H), "white")
    ImageDraw.Draw(strip).text((2, 1), text, fill="black")
    arr = torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255
    return torch.cat([arr, panel], dim=1)


def _side_by_side(panels: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    """Labelled panels ``(C, H, W)`` of equal size, left to right with white gaps, as RGB."""
    out = []
    for i, (text, img) in enumerate(panels):
        rgb = img.expand(3, -1, -1) if img.shape[0] == 1 else img
        out.append(_label(rgb.float().clamp(0, 1), text))
        if i + 1 < len(panels):
            out.append(torch.ones(3, out[-1].shape[1], _GAP))
    return torch.cat(out, dim=2)


def _photo_crops(
    models: list[_Model], folder: Path, cfg: BenchmarkConfig, degradation: Degradation | None
) -> torch.Tensor:
    """Centre crops of the dataset's first image: [input |] bicubic | each model | HR.

    With a degradation, the first panel is the degraded LR (the same one the metrics saw),
    nearest-upscaled to the output size so its blocks and noise stay visible.
    """
    from gansr.data.io import list_images, read_image
    from gansr.degrade import imresize, quantize
    from gansr.evaluate import modcrop, super_resolve

    hr = modcrop(read_image(list_images(folder)[0], channels="rgb").pixels.double(), cfg.scale)
    if degradation is None:
        lr = quantize(imresize(hr, 1 / cfg.scale)).float()
    else:
        lr = degradation(hr, 0).float()  # image 0 of the sorted list, as evaluate_folder numbers it
    size = min(cfg.crop_size, *hr.shape[-2:])
    top, left = (hr.shape[-2] - size) // 2, (hr.shape[-1] - size) // 2

    def crop(img: torch.Tensor) -> torch.Tensor:
        return img[..., top : top + size, left : left + size].float()

    panels = [(m.label, crop(quantize(super_resolve(m.net, lr)))) for m in _ordered(models)]
    if degradation is not None:
        nearest = lr.repeat_interleave(cfg.scale, -2).repeat_interleave(cfg.scale, -1)
        panels.insert(0, ("input", crop(nearest)))
    return _side_by_side([*panels, ("HR", crop(hr))])


def _mnist_crops(models: list[_Model], folder: Path) -> torch.Tensor:
    """The first held-out digits, stacked: bicubic | each model | HR, magnified DIGIT_ZOOM times."""
    from gansr.data import MNISTDataset
    from gansr.degrade import quantize
    from gansr.evaluate import MNIST_SEED

    data = MNISTDataset(folder, split="test", seed=MNIST_SEED)
    items = [data[i] for i in range(CROP_DIGITS)]
    lr = quantize(torch.stack([it["lr"] for it in items]))
    hr = torch.stack([it["hr"] for it in items])

    def column(batch: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat(list(quantize(batch.float())), dim=1)  # (1, 28 * n, 28)
        return stacked.repeat_interleave(DIGIT_ZOOM, 1).repeat_interleave(DIGIT_ZOOM, 2)

    panels = []
    with torch.inference_mode():
        for m in _ordered(models):
            sr = m.net(lr, size=(28, 28)) if getattr(m.net, "arbitrary_scale", False) else m.net(lr)
            panels.append((m.label, column(sr)))
    return _side_by_side([*panels, ("HR", column(hr))])


def _ordered(models: list[_Model]) -> list[_Model]:
    """Bicubic first, then the others in the given order."""
    return sorted(models, key=lambda m: m.arch != "bicubic")


# --------------------------------------------------------------------------------------- report


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "dataset"


def build_report(
    cfg: BenchmarkConfig, *, on_step: Any = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Measure every applicable model on every dataset.

    Returns:
        ``(report, crops)``: the JSON-able report (fields in the module docs) and the crop image of
        each dataset (``(3, H, W)`` in ``[0, 1]``) by its PNG file name.

    Raises:
        DataError: a dataset folder is missing or unreadable. ModelError: a model cannot be loaded.
    """
    from gansr.version import __version__

    specs = list(dict.fromkeys(cfg.models or default_models()))
    degradation = cfg.resolve_degradation()
    models = _load_models(specs, cfg.scale)
    report: dict[str, Any] = {
        "gansr_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "scale": cfg.scale,
        "datasets": [],
        "models": [
            {
                "model": m.spec,
                "arch": m.arch,
                "params": m.params,
                "in_channels": m.in_channels,
                "shipped": m.shipped,
                "trained_on": m.trained_on,
            }
            for m in models
        ],
        "reference": REFERENCE_X4,
    }
    if degradation is not None:
        report["degradation"] = degradation.to_json()
    crops: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for path in cfg.datasets:
        kind, folder, name = _dataset_kind(path)
        slug = _slug(name)
        while slug in used:  # two folders with the same name
            slug += "_"
        used.add(slug)
        applicable = [m for m in models if m.applies_to(kind) is None]
        entry: dict[str, Any] = {
            "name": name,
            "path": str(path),
            "kind": kind,
            "protocol": _protocol(kind, cfg.scale, degradation),
            "results": [],
            "not_applicable": [
                {"model": m.spec, "reason": m.applies_to(kind)} for m in models if m.applies_to(kind)
            ],
            "crop": f"{slug}.png",
        }
        if kind == "mnist" and cfg.scale != 4:
            entry["results"] = []
            entry["not_applicable"] = [{"model": m.spec, "reason": "MNIST is x4 only"} for m in models]
            entry["images"] = 0
            report["datasets"].append(entry)
            continue
        photo_degradation = degradation if kind == "images" else None  # MNIST keeps its protocol
        for m in _ordered(applicable):
            if on_step is not None:
                on_step(f"{m.spec} on {name}")
            entry["results"].append(_measure(m, kind, folder, name, cfg, photo_degradation))
        entry["images"] = entry["results"][0]["images"] if entry["results"] else 0
        crops[entry["crop"]] = (
            _mnist_crops(applicable, folder)
            if kind == "mnist"
            else _photo_crops(applicable, folder, cfg, photo_degradation)
        )
        report["datasets"].append(entry)
    return report, crops


def _protocol(kind: str, scale: int, degradation: Degradation | None) -> str:
    """One line naming how a dataset is measured."""
    if kind == "mnist":
        return (
            "MNIST: held-out last 2,000 t10k digits, LR 28->7 area + N(0,10^2) noise (fixed seed), "
            "full-image gray PSNR/SSIM"
        )
    if degradation is None:
        return f"x{scale}: MATLAB bicubic LR, Y-channel PSNR/SSIM, {scale}-pixel border crop"
    return (
        f"x{scale}: LR by the degradation `{degradation.name}` (seed {degradation.seed}, per image), "
        f"8-bit; Y-channel PSNR/SSIM, {scale}-pixel border crop; grid: JPEG-grid ratio of the SR output "
        f"({8 * scale}-pixel blocks, ~1.0 = no visible grid)"
    )


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _params(n: int) -> str:
    return "0" if n == 0 else f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def summary_table(report: dict[str, Any]) -> str:
    """A compact Markdown table, one row per model and a PSNR / SSIM (/ grid, under a degradation)
    column per dataset."""

    def grid(d: dict[str, Any]) -> bool:  # photos measured under a degradation
        return any("grid" in r for r in d["results"])

    heads = [f"{d['name']} PSNR / SSIM" + (" / grid" if grid(d) else "") for d in report["datasets"]]
    head = "| model | params | " + " | ".join(heads) + " |"
    lines = [head, "|" + " --- |" * (2 + len(heads))]
    for m in report["models"]:
        cells = []
        for d in report["datasets"]:
            row = next((r for r in d["results"] if r["model"] == m["model"]), None)
            cell = f"{row['psnr']:.2f} / {row['ssim']:.4f}" if row else "n/a"
            if row and grid(d):
                cell += f" / {_fmt(row['grid'], 3)}"
            cells.append(cell)
        lines.append(f"| {m['model']} | {_params(m['params'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    """The ``README.md`` of the report folder."""
    lines = [
        "# gansr report",
        "",
        f"Generated by `gansr report` (gansr {report['gansr_version']}, torch {report['torch_version']}) "
        f"on {report['created']}; CPU: {report['cpu']}, {report['threads']} thread(s). "
        "CPU time is the model's forward pass per output megapixel.",
        "",
    ]
    deg = report.get("degradation")
    if deg is not None:
        steps = ", ".join(json.dumps(step, separators=(", ", ": ")) for step in deg["steps"])
        lines += [
            f"Photo LR images come from the degradation `{deg['name']}` (seed {deg['seed']}, drawn per "
            f"image): `[{steps}]`. Grid is the JPEG-grid ratio of the SR outputs: the mean step across "
            f"the {8 * report['scale']}-pixel block boundaries that the LR's 8x8 JPEG blocks become, over "
            "the mean step everywhere else (~1.0: no visible grid). The "
            "published reference numbers are for clean bicubic LR, so they are not listed.",
            "",
        ]
    lines += [
        "## Summary",
        "",
        summary_table(report),
        "",
    ]
    for d in report["datasets"]:
        lines += [f"## {d['name']}", "", f"{d['images']} images; {d['protocol']}.", ""]
        grid = any("grid" in r for r in d["results"])
        if d["results"]:
            lines += [
                f"| model | arch | params | PSNR (dB) | SSIM | NIQE |{' grid |' if grid else ''} CPU s/MP |",
                f"| --- | --- | ---: | ---: | ---: | ---: |{' ---: |' if grid else ''} ---: |",
            ]
            for r in d["results"]:
                lines.append(
                    f"| {r['model']} | {r['arch']} | {_params(r['params'])} | {r['psnr']:.2f} | "
                    f"{r['ssim']:.4f} | {_fmt(r['niqe'], 3)} |"
                    + (f" {_fmt(r['grid'], 3)} |" if grid else "")
                    + f" {_fmt(r['cpu_s_per_mp'], 3)} |"
                )
            lines.append("")
        for na in d["not_applicable"]:
            lines.append(f"- `{na['model']}` not run: {na['reason']}.")
        if d["not_applicable"]:
            lines.append("")
        if d["results"]:
            panels = "input | bicubic | models | HR" if grid else "bicubic | models | HR"
            lines += [f"![{d['name']}: {panels}]({d['crop']})", ""]
    if deg is not None:
        return "\n".join(lines)
    photo = [d for d in report["datasets"] if d["kind"] == "images"]
    ref = report["reference"]
    photo_models = {r["model"] for d in photo for r in d["results"] if r["arch"] != "bicubic"}
    context = (
        "No photo model was measured here (gansr ships none trained yet), so for photos only bicubic "
        "is measured above; for context, these"
        if not photo_models
        else "For comparison with the models measured above, these"
    )
    lines += [
        "## Published x4 reference numbers",
        "",
        f"{context} are the published PSNR (dB, Y channel, 4-pixel border) of the standard methods. "
        f"Sources: {ref['source']}.",
        "",
        "| method | " + " | ".join(ref["columns"]) + " |",
        "| --- |" + " ---: |" * len(ref["columns"]),
    ]
    for row in ref["rows"]:
        lines.append(f"| {row['method']} | " + " | ".join(f"{row[c]:.2f}" for c in ref["columns"]) + " |")
    measured = {d["name"]: r["psnr"] for d in photo for r in d["results"] if r["model"] == "bicubic"}
    if any(c in measured for c in ref["columns"]):
        lines.append(
            "| bicubic (measured here) | "
            + " | ".join(f"{measured[c]:.2f}" if c in measured else "-" for c in ref["columns"])
            + " |"
        )
    lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], crops: dict[str, torch.Tensor], out: str | os.PathLike[str]) -> Path:
    """Write ``benchmark.json``, ``README.md`` and the crop PNGs into ``out``; return the folder.

    Every file is written to a temporary file in ``out`` and renamed into place.
    """
    from gansr.data.io import atomic_write, write_image

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in crops.items():
        write_image(folder / name, img)
    with atomic_write(folder / "benchmark.json") as fh:
        fh.write((json.dumps(report, indent=2) + "\n").encode())
    with atomic_write(folder / "README.md") as fh:
        fh.write(render_markdown(report).encode())
    return folder


def run_benchmark(cfg: BenchmarkConfig, *, on_step: Any = None) -> dict[str, Any]:
    """:func:`build_report` then :func:`write_report` into ``cfg.out``; returns the report."""
    start = time.perf_counter()
    report, crops = build_report(cfg, on_step=on_step)
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_report(report, crops, cfg.out)
    return report
