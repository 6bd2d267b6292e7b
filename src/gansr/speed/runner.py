"""``gansr speed`` for inference: the fast path against the naive one and the machine's peak.

Every case is timed in the same run, interleaved round by round (case A, B, C, A, B, C, ...), so
drift in the load of a shared machine hits all of them alike; each reports the median of its
repeats after ``warmup`` untimed calls. Cases:

* ``peak-<precision>``: :class:`~gansr.speed.peak.PeakConv`, the yardstick for ``peak_ratio``.
* ``naive``: the module's own forward in eager NCHW fp32 under ``torch.no_grad()`` on the whole
  image (:func:`gansr.engine.fast.naive_forward`): what BasicSR and Real-ESRGAN's scripts run.
* ``fast-<precision>-<tiles>``: :func:`gansr.engine.fast.prepare_model` +
  :func:`gansr.engine.tiles.run_tiled` with ``tiles`` ``untiled``, ``auto`` (the engine's plan) or
  an explicit core size. Settings whose plans coincide are timed once (``auto=untiled``).

Work is the model's nominal multiply-adds (counted on the ``meta`` device at the input size)
times two; work wasted on tile overlaps is not counted, so tiling shows up as lower throughput.
Where the fast path runs the Winograd kernel (:mod:`gansr.kernels.winograd`, CPU) it does fewer
multiplies than that nominal count, so its ``gflops`` is *direct-convolution equivalent* and
its ``peak_ratio`` can exceed 1; each fast case names its ``conv_kernels``.
The input is a real photograph (the bundled Set5 ``baby``), mirrored to the requested size.
With several sizes every case runs at each (named ``<case>@<W>x<H>``), in the same rotation.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ConfigError
from gansr.speed.memory import MemoryPeak
from gansr.speed.peak import PeakConv

__all__ = [
    "BenchOptions",
    "Case",
    "bench_input",
    "conv_kernels",
    "cpu_name",
    "model_macs",
    "run_inference_bench",
    "time_cases",
]

MB = 1 << 20


@dataclass
class BenchOptions:
    """What ``gansr speed`` measures (validated on construction; bad values raise ConfigError).

    Attributes:
        model: a registry architecture (random weights, seeded), a gansr checkpoint or a peer .pth.
        sizes: LR input sizes ``(height, width)``, all timed in the same run.
        precisions: default fp32 plus bf16 where supported natively (plus fp16 on CUDA).
        tiles: tile settings of the fast path: ``"auto"``, ``0`` (untiled) or a core size.
        tile_overlap: context per tile side in LR pixels.
        repeat / warmup: timed and untimed calls per case.
        naive: time the naive path; ``None``: when its estimated memory fits in RAM.
        device / threads: where to run; ``threads`` sets torch's intra-op threads.
    """

    model: str = "rrdbnet"
    sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    precisions: tuple[str, ...] | None = None
    tiles: tuple[str | int, ...] = ("auto", 0)
    tile_overlap: int = 32
    repeat: int = 3
    warmup: int = 1
    naive: bool | None = None
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        from gansr.engine.fast import PRECISIONS

        if not self.sizes:
            raise ConfigError("bench: give at least one input size")
        for size in self.sizes:
            if len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in size
            ):
                raise ConfigError(f"bench: sizes must be (height, width) in positive pixels, got {size!r}")
        if self.repeat < 1:
            raise ConfigError(f"bench: repeat must be >= 1, got {self.repeat}")
        if self.warmup < 0:
            raise ConfigError(f"bench: warmup must be >= 0, got {self.warmup}")
        if self.tile_overlap < 0:
            raise ConfigError(f"bench: tile overlap must be >= 0, got {self.tile_overlap}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"bench: threads must be >= 1, got {self.threads}")
        for p in self.precisions or ():
            if p not in PRECISIONS:
                raise ConfigError(f"bench: precision must be one of {', '.join(PRECISIONS)}, got {p!r}")
        if not self.tiles:
            raise ConfigError("bench: give at least one tile setting (auto, 0 or a size)")
        for t in self.tiles:
            if t != "auto" and not (isinstance(t, int) and not isinstance(t, bool) and t >= 0):
                raise ConfigError(f"bench: tile settings are 'auto', 0 or a positive size, got {t!r}")


@dataclass
class Case:
    """One timed thing: ``run()`` returns an output to compare (or None), ``flops`` its work."""

    name: str
    kind: str  # "peak", "naive" or "fast"
    run: Callable[[], Tensor | None]
    flops: float
    info: dict[str, Any] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    peak_rss: int = 0
    rss_increase: int = 0
    device_peak: int | None = None
    first_output: Tensor | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


# --------------------------------------------------------------------------- helpers


def cpu_name() -> str:
    """The CPU model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_input(height: int, width: int, channels: int = 3) -> Tensor:
    """A real photo as a ``(channels, height, width)`` float32 input: the bundled Set5 ``baby``
    (512x512), mirrored at its bottom/right edges as often as needed to cover the size, then
    centre-cropped (the face, not the flat background, for small sizes)."""
    from gansr.data.io import read_image

    source = files("gansr") / "samples" / "Set5" / "baby.png"
    img = read_image(source.read_bytes(), channels="gray" if channels == 1 else "rgb").pixels
    if channels not in (1, 3):
        img = img[:1].expand(channels, -1, -1)
    while img.shape[-2] < height or img.shape[-1] < width:
        pad_h = min(img.shape[-2] - 1, max(0, height - img.shape[-2]))
        pad_w = min(img.shape[-1] - 1, max(0, width - img.shape[-1]))
        img = F.pad(img[None], (0, pad_w, 0, pad_h), mode="reflect")[0]
    top, left = (img.shape[-2] - height) // 2, (img.shape[-1] - width) // 2
    return img[:, top : top + height, left : left + width].contiguous()


def model_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of one forward pass at ``height x width``: counted on the ``meta`` device for
    registry architectures (exact at any size, instantly), else on a 64x64 probe, scaled."""
    from gansr.models import profile_model

    arch, config = getattr(model, "arch", None), getattr(model, "config", None)
    if isinstance(arch, str) and isinstance(config, dict):
        try:
            return int(profile_model(arch, (height, width), **config)["macs"])
        except Exception:  # a foreign module that only shares the attribute names
            pass
    probe = profile_model(model, (64, 64))
    return int(probe["macs"] * height * width / (64 * 64))


def default_precisions(device: torch.device) -> tuple[str, ...]:
    """fp32, plus bf16 where native, plus fp16 on CUDA."""
    from gansr.engine.fast import resolve_precision

    out = ["fp32"]
    if resolve_precision("bf16", device, warn=False) == "bf16":
        out.append("bf16")
    if device.type == "cuda":
        out.append("fp16")
    return tuple(out)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(
    cases: list[Case],
    *,
    repeat: int,
    warmup: int,
    device: torch.device,
    keep_first: Callable[[Case], bool] = lambda case: False,
    log: Callable[[str], None] | None = None,
) -> None:
    """Warm every case up, then time ``repeat`` interleaved rounds; fills ``times``, the memory
    peaks and, where ``keep_first(case)``, ``first_output`` (from the first call)."""

    def call(case: Case, timed: bool) -> None:
        with MemoryPeak(device) as mem:
            start = time.perf_counter()
            out = case.run()
            _sync(device)
            seconds = time.perf_counter() - start
        case.peak_rss = max(case.peak_rss, mem.peak)
        case.rss_increase = max(case.rss_increase, mem.increase)
        if mem.device_peak is not None:
            case.device_peak = max(case.device_peak or 0, mem.device_peak)
        if out is not None and case.first_output is None and keep_first(case):
            case.first_output = out
        if timed:
            case.times.append(seconds)
        if log is not None:
            log(f"{'timed' if timed else 'warm-up'} {case.name}: {seconds:.3f} s")

    for case in cases:
        for _ in range(warmup):
            call(case, timed=False)
    for _ in range(repeat):
        for case in cases:
            call(case, timed=True)


def compare(out: Tensor, ref: Tensor) -> dict[str, float]:
    """How far ``out`` is from ``ref`` as images (both clamped to [0, 1]): the largest absolute
    difference (also in 8-bit levels), the fraction of 8-bit values that differ, and the PSNR."""
    a, b = out.clamp(0, 1).double(), ref.clamp(0, 1).double()
    diff = (a - b).abs()
    mse = float((diff**2).mean())
    differing = (torch.round(a * 255) != torch.round(b * 255)).double().mean()
    return {
        "max_abs_diff": float(diff.max()),
        "max_abs_diff_255": float(diff.max()) * 255,
        "differing_uint8_fraction": float(differing),
        "psnr_db": math.inf if mse == 0 else 10 * math.log10(1 / mse),
    }


# --------------------------------------------------------------------------- the bench


def run_inference_bench(opts: BenchOptions, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the inference bench (see the module doc); returns the JSON-able report."""
    import copy

    from gansr import models
    from gansr.engine.device import available_ram, resolve_device
    from gansr.engine.fast import estimate_memory, naive_forward, prepare_model
    from gansr.engine.tiles import plan, run_tiled
    from gansr.kernels import winograd
    from gansr.version import __version__

    device = resolve_device(opts.device)
    if opts.threads is not None:
        torch.set_num_threads(opts.threads)
    notes: list[str] = []
    # An architecture name is benchmarked with seeded random weights: the same network every run.
    reference = models.require_generator(models.load(opts.model, random_weights=True)).float().eval()
    if getattr(reference, "arbitrary_scale", False):
        raise ConfigError(f"bench: {opts.model!r} is not a fixed-scale SR generator")
    channels = int(getattr(reference, "in_channels", 3))
    scale = int(reference.scale)
    precisions = tuple(dict.fromkeys(opts.precisions or default_precisions(device)))
    sizes = tuple(dict.fromkeys(opts.sizes))
    multi = len(sizes) > 1

    cases: list[Case] = []
    for p in precisions:
        peak = PeakConv.build(p, device)
        cases.append(Case(f"peak-{p}", "peak", lambda peak=peak: peak.run(), peak.flops, {"precision": p}))

    naive_model = reference.to(device)
    naive_bytes = None
    fasts = {}
    for p in precisions:
        # Each precision gets its own copy: an unfused model is converted in place.
        fast = prepare_model(copy.deepcopy(reference), device=device, precision=p)
        if fast.precision == p:
            fasts[p] = fast
        else:
            notes.append(f"{p} is not supported natively here; skipped")

    inputs = []
    for height, width in sizes:
        at = f"@{width}x{height}" if multi else ""
        image = bench_input(height, width, channels)
        macs = model_macs(reference, height, width)
        size_info = {"input": {"height": height, "width": width}}
        inputs.append({"height": height, "width": width, "macs": macs})
        want_naive = opts.naive
        if want_naive is None:
            if naive_bytes is None:
                naive_bytes = estimate_memory(
                    naive_model, lambda x: naive_forward(naive_model, x.to(device)), channels
                )
            need = naive_bytes * height * width
            want_naive = device.type != "cpu" or need < 0.6 * available_ram()
            if not want_naive:
                notes.append(f"naive{at} skipped: needs ~{need / 1e9:.1f} GB, more than 60% of the free RAM")
        if want_naive:
            batch = image[None].to(device)

            def naive(batch: Tensor = batch) -> Tensor:
                return naive_forward(naive_model, batch)[0].float().cpu()

            info = {"precision": "fp32", "layout": "nchw", "fused": False, "tiles": "untiled", **size_info}
            cases.append(Case(f"naive{at}", "naive", naive, 2.0 * macs, info))

        for p, fast in fasts.items():
            seen: dict[Any, str] = {}
            for setting in opts.tiles:
                tile = None if setting == "auto" else int(setting)
                chosen = plan(fast, height, width, tile=tile, overlap=opts.tile_overlap)
                label = "untiled" if setting == 0 else str(setting)
                key = (chosen.tile, chosen.overlap, chosen.batch_size)
                if key in seen:
                    notes.append(
                        f"fast-{p}-{label}{at} is the same plan as fast-{p}-{seen[key]}{at} (timed once)"
                    )
                    continue
                if chosen.tile == 0 and setting == "auto":
                    label = "auto=untiled"
                seen[key] = label
                info = {
                    "precision": p,
                    "layout": "channels_last" if fast.channels_last else "nchw",
                    "fused": fast.fused,
                    "conv_kernels": conv_kernels(fast),
                    "tiles": _describe_plan(chosen, height, width, fast.size_multiple),
                    "estimated_memory_mb": fast.memory_bytes(height, width) / MB,
                    **size_info,
                }

                def run(fast: Any = fast, chosen: Any = chosen, image: Tensor = image) -> Tensor:
                    return run_tiled(fast, image, tile_plan=chosen)

                cases.append(Case(f"fast-{p}-{label}{at}", "fast", run, 2.0 * macs, info))

    time_cases(
        cases,
        repeat=opts.repeat,
        warmup=opts.warmup,
        device=device,
        keep_first=lambda case: case.kind != "peak",
        log=log,
    )

    peaks = {c.info["precision"]: c for c in cases if c.kind == "peak"}
    naives = {(c.info["input"]["height"], c.info["input"]["width"]): c for c in cases if c.kind == "naive"}
    out_cases = []
    for case in cases:
        gflops = case.flops / case.median / 1e9
        entry: dict[str, Any] = {"name": case.name, "kind": case.kind, **case.info}
        entry.update(
            {
                "times_s": [round(t, 6) for t in case.times],
                "median_s": case.median,
                "gflops": gflops,
                "peak_rss_mb": case.peak_rss / MB,
                "rss_increase_mb": case.rss_increase / MB,
            }
        )
        if case.device_peak is not None:
            entry["device_peak_mb"] = case.device_peak / MB
        if case.kind != "peak":
            height, width = case.info["input"]["height"], case.info["input"]["width"]
            peak = peaks.get(case.info["precision"])
            entry["peak_ratio"] = gflops / (peak.flops / peak.median / 1e9) if peak else None
            entry["input_mpix_per_s"] = height * width / case.median / 1e6
            entry["output_mpix_per_s"] = entry["input_mpix_per_s"] * scale * scale
            naive_case = naives.get((height, width))
            if naive_case is not None:
                entry["speedup_vs_naive"] = naive_case.median / case.median
                if case is not naive_case and case.first_output is not None:
                    assert naive_case.first_output is not None
                    entry["vs_naive"] = compare(case.first_output, naive_case.first_output)
        out_cases.append(entry)
        if case.kind != "naive":
            case.first_output = None

    first = inputs[0]
    return {
        "gansr": __version__,
        "torch": torch.__version__,
        "device": {
            "type": device.type,
            "name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(),
        },
        "model": {
            "spec": opts.model,
            "arch": getattr(reference, "arch", type(reference).__name__),
            "parameters": sum(p.numel() for p in reference.parameters()),
            "scale": scale,
            "macs": first["macs"],
            "macs_per_input_pixel": first["macs"] / (first["height"] * first["width"]),
            "gflop_per_output_mpixel": 2
            * first["macs"]
            / (first["height"] * first["width"] * scale**2)
            / 1e3,
        },
        "input": {"height": first["height"], "width": first["width"]},
        "output": {"height": first["height"] * scale, "width": first["width"] * scale},
        "inputs": inputs,
        "repeat": opts.repeat,
        "warmup": opts.warmup,
        "peak": {
            p: {"gflops": c.flops / c.median / 1e9, "median_s": c.median, "shape": "3x3 conv 64->64 256x256"}
            for p, c in peaks.items()
        },
        "cases": out_cases,
        "winograd_kernel": winograd.status() if device.type == "cpu" else None,
        "notes": notes,
    }


def conv_kernels(fast: Any) -> str:
    """Which convolution code a prepared model runs: how many of its fused convolutions use the
    Winograd kernel (CPU), the rest oneDNN; cuDNN on CUDA."""
    if fast.device.type != "cpu":
        return "cuDNN" if fast.device.type == "cuda" else "PyTorch"
    from gansr.models.fused import FusedConv2d

    convs = [m for m in fast.net.modules() if isinstance(m, FusedConv2d)] if fast.fused else []
    wino = sum(m.winograd_weight is not None for m in convs)
    if not wino:
        return "oneDNN"
    return f"Winograd F(4x4,3x3) for {wino} of {len(convs)} fused convolutions, oneDNN for the rest"


def _describe_plan(chosen: Any, height: int, width: int, multiple: int) -> dict[str, Any] | str:
    from gansr.engine.tiles import axis_spans

    if chosen.tile == 0 or (height <= chosen.tile and width <= chosen.tile):
        return "untiled"
    ys = axis_spans(height, chosen.tile, chosen.overlap, multiple)
    xs = axis_spans(width, chosen.tile, chosen.overlap, multiple)
    computed = sum(s.hi - s.lo for s in ys) * sum(s.hi - s.lo for s in xs)
    return {
        "tile": chosen.tile,
        "overlap": chosen.overlap,
        "batch": chosen.batch_size,
        "count": len(ys) * len(xs),
        "overlap_work": computed / (height * width) - 1,
    }


def log_to_stderr(message: str) -> None:
    """The default progress printer of ``gansr speed``."""
    print(f"gansr speed: {message}", file=sys.stderr, flush=True)
