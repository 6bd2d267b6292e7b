"""The SR literature's evaluation protocol, shared by ``gansr eval`` and the benchmark report.

For each HR image: crop to a multiple of the scale, make LR with MATLAB bicubic ``imresize``
(antialiased) and quantize it to 8 bits as a saved file would be, super-resolve, clamp and quantize
the result to 8 bits, then measure PSNR/SSIM on the Y channel of MATLAB ``rgb2ycbcr`` with
``scale`` pixels cropped at each border. With the bicubic baseline this reproduces the published
Set5 x4 numbers (28.42 dB / 0.8104).

With a :class:`Degradation` (``gansr eval --degradation``), the LR is made by a
:class:`gansr.degrade.Pipeline` instead (a preset such as ``jpeg60_x4`` or a YAML file), seeded per
image from ``(seed, image index)`` and quantized to 8 bits; the metrics are the same, plus the
JPEG-grid ratio of each SR output (:func:`gansr.metrics.grid_ratio`, block ``8 * scale``).

A folder holding MNIST IDX files gets the MNIST protocol instead (:func:`evaluate_mnist`): the
held-out last 2,000 ``t10k`` digits, LR by 28 -> 7 area average + N(0, 10^2) noise with a fixed
per-digit seed, full-image gray PSNR/SSIM.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from gansr.degrade.ops import quantize
from gansr.errors import ConfigError, DataError

if TYPE_CHECKING:
    from gansr.degrade import Pipeline


@dataclass
class ImageResult:
    """Metrics of one image."""

    name: str
    psnr: float
    ssim: float
    niqe: float | None = None
    seconds: float = 0.0
    grid: float | None = None  # JPEG-grid ratio of the SR output; measured with a degradation only


@dataclass
class EvalResult:
    """Per-image results, their means, and the images that could not be measured.

    ``degradation`` is :meth:`Degradation.to_json` of the LR degradation, ``None`` for the
    literature's bicubic protocol.
    """

    model: str
    dataset: str
    scale: float
    y_channel: bool = True
    crop_border: int = 0
    images: list[ImageResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    degradation: dict[str, Any] | None = None

    def mean(self) -> dict[str, float]:
        """Mean of every metric over the measured images (empty when none were)."""
        if not self.images:
            return {}
        out = {
            "psnr": _mean(r.psnr for r in self.images),
            "ssim": _mean(r.ssim for r in self.images),
        }
        niqes = [r.niqe for r in self.images if r.niqe is not None and math.isfinite(r.niqe)]
        if niqes:
            out["niqe"] = _mean(niqes)
        grids = [r.grid for r in self.images if r.grid is not None and math.isfinite(r.grid)]
        if grids:
            out["grid"] = _mean(grids)
        return out

    def to_json(self) -> dict:
        """The documented JSON shape of ``gansr eval --json``.

        ``{model, dataset, scale, images: [{name, psnr, ssim[, niqe][, grid]}], mean[, errors]}``;
        with a degradation also ``degradation: {name, seed, steps}`` and a ``grid`` per image
        (``null`` where the image is too small to have a block boundary) and in ``mean``.
        """
        images = []
        for r in self.images:
            d: dict[str, Any] = {"name": r.name, "psnr": r.psnr, "ssim": r.ssim}
            if r.niqe is not None:
                d["niqe"] = r.niqe
            if self.degradation is not None:
                d["grid"] = r.grid
            images.append(d)
        out: dict[str, Any] = {
            "model": self.model,
            "dataset": self.dataset,
            "scale": self.scale,
            "images": images,
            "mean": self.mean(),
        }
        if self.degradation is not None:
            out["degradation"] = self.degradation
        if self.errors:
            out["errors"] = list(self.errors)
        return out


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return math.fsum(vals) / len(vals)


def modcrop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so height and width are multiples of ``scale``."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


@dataclass(frozen=True)
class Degradation:
    """A named LR degradation for evaluation: a pipeline and the seed of its random draws.

    Image ``i`` of a dataset (its index in the sorted file list) is degraded with a generator
    seeded from ``(seed, i)``, so every model, run and machine sees the same LR images.
    """

    name: str
    pipeline: Pipeline
    seed: int = 0

    @classmethod
    def resolve(cls, spec: str, scale: int, *, seed: int = 0) -> Degradation:
        """A preset name (:data:`gansr.degrade.PRESETS`) or a YAML pipeline file, checked against ``scale``.

        Raises:
            ConfigError: unknown preset, unreadable or invalid YAML, a negative seed, or a pipeline
                whose scale is not ``scale``.
        """
        from gansr.degrade import PRESETS, Pipeline

        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        path = Path(spec)
        if spec in PRESETS:
            pipeline = Pipeline.preset(spec)
        elif path.suffix.lower() in (".yaml", ".yml") or path.is_file():
            pipeline = Pipeline.from_yaml(path)
        else:
            raise ConfigError(
                f"unknown degradation {spec!r}: not a preset ({', '.join(PRESETS)}) nor a YAML file"
            )
        if not math.isclose(pipeline.scale, scale):
            raise ConfigError(f"degradation {spec!r} shrinks by x{pipeline.scale:g}, but --scale is {scale}")
        return cls(name=spec, pipeline=pipeline, seed=seed)

    def generator(self, index: int) -> torch.Generator:
        """The random stream of image ``index``."""
        state = np.random.SeedSequence([self.seed, int(index)]).generate_state(1, dtype=np.uint64)[0]
        return torch.Generator().manual_seed(int(state >> 1))

    def __call__(self, hr: torch.Tensor, index: int) -> torch.Tensor:
        """The 8-bit LR of image ``index`` (``hr`` already cropped to a multiple of the scale)."""
        return quantize(self.pipeline(hr, generator=self.generator(index)))

    def to_json(self) -> dict[str, Any]:
        """``{name, seed, steps}``: what the evaluation JSON records, ``steps`` with defaults filled in."""
        return {"name": self.name, "seed": self.seed, "steps": self.pipeline.config}


@torch.inference_mode()
def super_resolve(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on one LR image ``(C, h, w)`` and return the SR image ``(C, H, W)``, clamped."""
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    sr = model(lr.unsqueeze(0).to(device=device, dtype=dtype))
    return sr[0].float().cpu().clamp(0, 1)


def evaluate_folder(
    model: nn.Module,
    folder: Path,
    scale: int,
    *,
    model_name: str,
    dataset_name: str | None = None,
    with_niqe: bool = False,
    y_channel: bool = True,
    crop_border: int | None = None,
    on_image: Callable[[str], None] | None = None,
    degradation: Degradation | None = None,
) -> EvalResult:
    """Evaluate ``model`` on every HR image under ``folder`` with the literature's protocol.

    With ``degradation``, the LR images come from it instead of MATLAB bicubic, and each result
    also holds the JPEG-grid ratio of the SR output (block ``8 * scale``).

    Images that cannot be read are recorded in :attr:`EvalResult.errors` (one line each) and
    skipped. Raises :class:`DataError` when the folder is missing or holds no images.
    """
    from gansr.data.io import list_images, read_image
    from gansr.degrade import imresize
    from gansr.metrics import grid_ratio, niqe, psnr, ssim

    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    paths = list_images(folder)
    if not paths:
        raise DataError(f"{folder}: no images found (looked for PNG, JPEG, BMP, TIFF, WebP)")

    model_scale = getattr(model, "scale", scale)
    if model_scale != scale:
        raise DataError(f"model '{model_name}' is x{model_scale}, but --scale is {scale}")
    channels = "gray" if getattr(model, "in_channels", 3) == 1 else "rgb"
    border = scale if crop_border is None else crop_border

    result = EvalResult(
        model=model_name,
        dataset=dataset_name or folder.name,
        scale=scale,
        y_channel=y_channel,
        crop_border=border,
        degradation=degradation.to_json() if degradation is not None else None,
    )
    for index, path in enumerate(paths):
        name = path.relative_to(folder).as_posix()
        if on_image is not None:
            on_image(name)
        try:
            hr = read_image(path, channels=channels).pixels
        except DataError as exc:
            result.errors.append(str(exc))
            continue
        hr = modcrop(hr.double(), scale)
        if min(hr.shape[-2:]) < scale:
            result.errors.append(f"{name}: too small for x{scale} ({hr.shape[-1]}x{hr.shape[-2]})")
            continue
        if degradation is None:
            lr = quantize(imresize(hr, 1 / scale)).float()
        else:
            lr = degradation(hr, index).float()
            h, w = hr.shape[-2] // scale, hr.shape[-1] // scale
            if tuple(lr.shape[-2:]) != (h, w):
                got = f"{lr.shape[-1]}x{lr.shape[-2]}"
                raise DataError(f"{name}: degradation {degradation.name!r} made a {got} LR, not {w}x{h}")
        start = time.perf_counter()
        sr = quantize(super_resolve(model, lr)).double()
        seconds = time.perf_counter() - start
        if sr.shape != hr.shape:
            raise DataError(f"{name}: model output {tuple(sr.shape)} does not match HR {tuple(hr.shape)}")
        niqe_value = None
        if with_niqe:
            try:
                niqe_value = float(niqe(sr, crop_border=border))
            except ValueError as exc:  # NIQE needs at least two 96x96 blocks
                result.errors.append(f"{name}: NIQE not computed: {exc}")
                niqe_value = math.nan
        grid_value = None
        if degradation is not None and max(sr.shape[-2:]) > 8 * scale:  # else: no block boundary
            grid_value = grid_ratio(sr, 8 * scale)
        result.images.append(
            ImageResult(
                name=name,
                psnr=float(psnr(sr, hr, crop_border=border, y_channel=y_channel)),
                ssim=float(ssim(sr, hr, crop_border=border, y_channel=y_channel)),
                niqe=niqe_value,
                seconds=seconds,
                grid=grid_value,
            )
        )
    return result


MNIST_SCALE = 4
MNIST_SEED = 0  # noise seed of the held-out LR digits: fixed, so every model sees the same inputs
DESIGN001_SCALE = 28 / 26
"""Reference design 001's MNIST protocol: 28x28 digits shrunk to 26x26 (MATLAB bicubic, 8-bit)."""
DESIGN001_LR = ({"type": "resize", "scale": 13 / 14}, {"type": "quantize"})
_MNIST_BATCH = 250


def is_mnist_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding the MNIST ``t10k`` images IDX file (``.gz`` or not)."""
    from gansr.data.datasets import _find_idx

    folder = Path(path)
    return folder.is_dir() and _find_idx(folder, "t10k", "images", 3) is not None


def evaluate_mnist(
    model: nn.Module,
    root: str | Path,
    *,
    model_name: str,
    scale: float = MNIST_SCALE,
    max_images: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    """Evaluate ``model`` on the held-out MNIST digits with the MNIST protocol.

    ``scale`` 28/26 (:data:`DESIGN001_SCALE`) selects reference design 001's protocol instead: the
    LR is the HR shrunk to 26x26 by MATLAB bicubic and quantized (no noise), the model renders
    28x28 (it must take arbitrary scales; ``bicubic`` resizes to 28x28), metrics as below.

    The test split is the last 2,000 digits of ``t10k`` (the first 8,000 are for training). Each LR
    digit is the 28x28 HR averaged over 4x4 blocks to 7x7 plus N(0, 10^2) noise (0..255 units),
    clipped, with a fixed per-digit seed, then quantized to 8 bits as a saved image would be. The
    SR output is clamped and quantized, and PSNR/SSIM are measured on the whole 28x28 gray digit
    (``crop_border=0``, no Y conversion): MNIST digits sit in the central 20x20 box, so the outer
    ``scale`` pixels are background that the literature's border crop would only drop, and the
    whole digit is what the MNIST reference design measures. Bicubic gets exactly the same
    treatment. Arbitrary-scale models (``vae_cppn``) render the 28x28 size.

    Args:
        model: a 1-channel x4 generator (or the bicubic baseline).
        root: folder with ``t10k-images-idx3-ubyte[.gz]``.
        model_name: name reported in the result.
        scale: 4 (the MNIST protocol) or 28/26 (design 001's).
        max_images: only the first N held-out digits (fast checks); ``None`` for all 2,000.
        on_batch: called with the number of digits done after each batch (progress bars).

    Raises:
        DataError: wrong scale, a model that is not 1-channel x4, or unreadable MNIST files.
    """
    from gansr.data import MNISTDataset
    from gansr.degrade import imresize
    from gansr.metrics import psnr, ssim

    design001 = math.isclose(scale, DESIGN001_SCALE)
    if scale != MNIST_SCALE and not design001:
        raise DataError(
            f"the MNIST protocols are x{MNIST_SCALE} (28 -> 7) and 28/26 (design 001's 26 -> 28), "
            f"but --scale is {scale:g}"
        )
    is_bicubic = getattr(model, "arch", None) == "bicubic"
    channels = getattr(model, "in_channels", 1)
    if channels != 1 and not is_bicubic:
        raise DataError(f"model '{model_name}' takes {channels}-channel images; MNIST digits are gray")
    arbitrary = bool(getattr(model, "arbitrary_scale", False))
    if design001 and not (arbitrary or is_bicubic):
        raise DataError(f"model '{model_name}' is x{model.scale}; 26 -> 28 needs an arbitrary-scale model")
    if not design001 and not arbitrary and getattr(model, "scale", scale) != scale:
        raise DataError(f"model '{model_name}' is x{model.scale}, but the MNIST protocol is x{scale}")
    if max_images is not None and max_images < 1:
        raise DataError(f"max_images must be at least 1, got {max_images}")

    if design001:
        data = MNISTDataset(root, split="test", scale=DESIGN001_SCALE, degradation=list(DESIGN001_LR))
    else:
        data = MNISTDataset(root, split="test", seed=MNIST_SEED)
    count = len(data) if max_images is None else min(max_images, len(data))
    dataset = "MNIST held-out (last 2,000 t10k)" + (", 26 -> 28" if design001 else "")
    result = EvalResult(model=model_name, dataset=dataset, scale=scale, y_channel=False)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    for start in range(0, count, _MNIST_BATCH):
        items = [data[i] for i in range(start, min(start + _MNIST_BATCH, count))]
        lr = quantize(torch.stack([it["lr"] for it in items])).to(device=device, dtype=dtype)
        hr = torch.stack([it["hr"] for it in items]).double()
        begin = time.perf_counter()
        with torch.inference_mode():
            if arbitrary:
                sr = model(lr, size=tuple(hr.shape[-2:]))
            elif design001:  # bicubic to the HR size: a non-integer factor
                sr = imresize(lr, size=tuple(hr.shape[-2:]))
            else:
                sr = model(lr)
        seconds = (time.perf_counter() - begin) / len(items)
        sr = quantize(sr.float().cpu()).double()
        if sr.shape != hr.shape:
            raise DataError(f"model output {tuple(sr.shape[1:])} does not match HR {tuple(hr.shape[1:])}")
        for item, s, h in zip(items, sr, hr, strict=True):
            result.images.append(
                ImageResult(
                    name=item["name"],
                    psnr=float(psnr(s, h, crop_border=0, y_channel=False)),
                    ssim=float(ssim(s, h, crop_border=0, y_channel=False)),
                    seconds=seconds,
                )
            )
        if on_batch is not None:
            on_batch(len(items))
    return result


MAX_TABLE_ROWS = 100  # longer sets (MNIST's 2,000 digits) print only the mean


def format_table(result: EvalResult) -> str:
    """A plain-text table of the per-image and mean metrics."""
    has_niqe = bool(result.images) and result.images[0].niqe is not None
    has_grid = result.degradation is not None
    width = max([len(r.name) for r in result.images] + [len("mean")])
    head = f"{'image':<{width}}  {'PSNR':>8}  {'SSIM':>7}" + ("  " + f"{'NIQE':>7}" if has_niqe else "")
    if has_grid:
        head += "  " + f"{'grid':>6}"
    channel = "Y channel" if result.y_channel else "RGB/gray"
    title = f"{result.model} on {result.dataset}, x{result.scale:g} ({channel}, border {result.crop_border})"
    if result.degradation is not None:
        title += f", LR: {result.degradation['name']} (seed {result.degradation['seed']})"
    lines = [title, head, "-" * len(head)]

    def row(name: str, d: dict) -> str:
        s = f"{name:<{width}}  {d['psnr']:8.2f}  {d['ssim']:7.4f}"
        if has_niqe:
            s += f"  {d['niqe']:7.3f}"
        if has_grid:
            grid = d.get("grid")
            s += f"  {grid:6.3f}" if grid is not None else f"  {'-':>6}"
        return s

    shown = result.images if len(result.images) <= MAX_TABLE_ROWS else []
    for r in shown:
        lines.append(row(r.name, asdict(r)))
    if len(shown) < len(result.images):
        lines.append(f"({len(result.images)} images; per-image rows in --json)")
    if result.images:
        lines.append("-" * len(head))
        lines.append(row("mean", result.mean()))
    return "\n".join(lines)
