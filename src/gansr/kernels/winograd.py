"""Winograd F(4x4, 3x3) convolution for CPU inference (fp32, and bf16 on AVX512-BF16): a small
AVX-512 C kernel, compiled on first use.

Why: oneDNN, PyTorch's CPU convolution, computes a 3x3 convolution directly (9 multiply-adds per
output pixel and channel pair) and already runs near this class of CPU's peak, so only *less
arithmetic* makes the dense blocks faster. Winograd's F(4x4, 3x3) algorithm needs 36 products per
4x4 output tile instead of 144 (4x fewer); the input and output transforms are a few adds per
value. PyTorch offers no such path here (its only one, NNPACK, fails to initialise on this CPU;
the oneDNN convolution it calls is direct) and no pip package plugs one into PyTorch models, so
gansr carries its own: ``winograd_f43.c`` (about 300 lines, see its header). Measured on a 2-core
Zen 5, one dense-block convolution at 256x256 runs 2.2-3.2x faster than oneDNN's in fp32.

Building: the C file ships with the package. :func:`available` compiles it once per machine
with the system C compiler (``$CC``, else ``cc`` or ``gcc``) and ``-O3 -march=native -fopenmp``
into ``cache_dir()/kernels``, the file name keyed by a hash of the source, compiler, flags and
CPU; the library is written to a temporary name and renamed, so concurrent first uses are safe.
With no compiler, no AVX-512, a failed build, or ``GANSR_WINOGRAD=0``, it returns False and
callers use oneDNN (:func:`status` says why). Its OpenMP threads are PyTorch's: the library links
``libgomp.so.1``, which resolves to the copy PyTorch has already loaded.

Accuracy: the transforms multiply by up to 8 (inverse) and 5 (forward), so the rounding error is
about 5x a direct convolution's: ~1e-5 relative per layer in fp32 (a whole ``rrdbnet`` stays far
within 1/255 of PyTorch's own convolution); in bf16 the transformed values are rounded to 8 bits,
~1.5% rms per layer against ~0.3% for a direct bf16 convolution. Inference only: no backward.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from gansr.cache import cache_dir

__all__ = ["available", "conv3x3", "status", "supports", "transform_weights"]

_SOURCE = Path(__file__).with_name("winograd_f43.c")
_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp", "-std=c11"]
_ROWS = 12  # tiles per GEMM micro-kernel in the C code; block sizes are multiples of it

# G of F(4x4, 3x3) (Lavin & Gray 2015): U = G g G^T turns a 3x3 kernel into the 6x6 Winograd domain.
_G = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)


def supports(in_channels: int, out_channels: int) -> bool:
    """Whether the kernel handles these channel counts (multiples of 16 in, of 32 out)."""
    return in_channels > 0 and out_channels > 0 and in_channels % 16 == 0 and out_channels % 32 == 0


@functools.cache
def _cpu_id() -> str:
    """The CPU's model name and flags (what ``-march=native`` compiles for); read once."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    keep = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(dict.fromkeys(keep))  # first core's lines (all cores share them)


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc)
    return shutil.which("cc") or shutil.which("gcc")


def _build(cc: str) -> Path:
    """Compile the kernel into the cache (once per source/compiler/CPU) and return its path."""
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(
        "\0".join([_SOURCE.read_text(), cc, version, " ".join(_FLAGS), _cpu_id()]).encode()
    ).hexdigest()[:16]
    folder = cache_dir() / "kernels"
    lib = folder / f"winograd_f43-{key}.so"
    if lib.exists():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".winograd-", suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *_FLAGS, str(_SOURCE), "-o", tmp], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise OSError(f"{Path(cc).name} failed: {first}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


@functools.cache
def _load() -> tuple[ctypes._CFuncPtr | None, str]:
    """The kernel's C function (or None) and a one-line status."""
    if os.environ.get("GANSR_WINOGRAD", "1") == "0":
        return None, "disabled by GANSR_WINOGRAD=0"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None, f"needs Linux on x86-64 (this is {platform.system()} {platform.machine()})"
    if " avx512f" not in _cpu_id():
        return None, "this CPU has no AVX-512"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler found (set CC, or install gcc)"
    try:
        path = _build(cc)
        fn = ctypes.CDLL(str(path)).gansr_winograd_f43  # CDLL releases the GIL during calls
    except (OSError, subprocess.SubprocessError, AttributeError) as e:
        return None, f"kernel build failed: {' '.join(str(e).split())}"
    i64, ptr, i32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    fn.argtypes = [ptr, i64, i64, i64] * 3 + [ptr, ptr] + [i32] * 6 + [ctypes.c_float, ptr] + [i32] * 3
    fn.restype = i32
    return fn, f"Winograd F(4x4,3x3) AVX-512 kernel ({path.name})"


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether the compiled kernel can be used in this process for ``dtype`` (float32; bfloat16
    needs AVX512-BF16). Builds the kernel on the first call."""
    if dtype == torch.bfloat16:
        return _load()[0] is not None and " avx512_bf16" in _cpu_id()
    return dtype == torch.float32 and _load()[0] is not None


def status() -> str:
    """One line: which kernel is used, or why not."""
    return _load()[1]


def transform_weights(weight: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(cout, cin, 3, 3)`` weights -> the kernel's layout in ``dtype``: ``(36, cin, cout)`` for
    float32, ``(36, cin / 2, cout, 2)`` for bfloat16 (input-channel pairs side by side, as the
    AVX512-BF16 dot product takes them). ``G g G^T`` is computed in float64 so each value is
    correctly rounded once."""
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"expected 3x3 convolution weights, got shape {tuple(weight.shape)}")
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"the Winograd kernel computes in float32 or bfloat16, not {dtype}")
    cout, cin = weight.shape[:2]
    g = torch.tensor(_G, dtype=torch.float64)
    u = g @ weight.detach().to("cpu", torch.float64) @ g.T  # (cout, cin, 6, 6)
    u = u.permute(2, 3, 1, 0).reshape(36, cin, cout).to(dtype)
    if dtype == torch.bfloat16:
        u = u.reshape(36, cin // 2, 2, cout).transpose(2, 3)
    return u.contiguous()


def _block_tiles(cin: int, cout: int) -> int:
    """Tiles per block: a multiple of 12 whose scratch (36 transformed tiles of cin + cout
    values each) stays in a 1 MiB L2 alongside the weights; 24 only paid off for 64 -> 64."""
    return 2 * _ROWS if cin <= 64 and cout >= 64 else _ROWS


def _pixel_strides(t: Tensor, name: str) -> tuple[int, int, int]:
    if t.stride(1) != 1 and t.shape[1] > 1:
        raise ValueError(f"{name} must have channel stride 1 (channels-last memory)")
    return t.stride(0), t.stride(2), t.stride(3)


def conv3x3(
    x: Tensor,
    u: Tensor,
    bias: Tensor | None = None,
    *,
    residual: Tensor | None = None,
    negative_slope: float | Tensor | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """``act(conv3x3(x, padding=1) + bias + residual)`` with the kernel (call :func:`available`
    first).

    Args:
        x: ``(N, cin, H, W)`` float32 or bfloat16 CPU tensor with channel stride 1 (channels-last,
            or a channel slice of a channels-last tensor; any other layout is copied).
        u: :func:`transform_weights` of the weights, in ``x``'s dtype.
        bias: ``(cout,)`` or None.
        residual: added before the activation, ``(N, cout, H, W)``, channel stride 1.
        negative_slope: LeakyReLU / one-parameter PReLU slope, a ``(cout,)`` float32 tensor of
            per-channel slopes (per-channel PReLU), or None for no activation.
        out: where to write (``(N, cout, H, W)`` in ``x``'s dtype, channel stride 1, not
            overlapping ``x``); a new channels-last tensor when None.
    """
    fn = _load()[0]
    if fn is None:
        raise RuntimeError(f"the Winograd kernel is not available: {status()}")
    n, cin, h, w = x.shape
    dtype = x.dtype
    cout = u.shape[2]
    layout = (36, cin, cout) if dtype == torch.float32 else (36, cin // 2, cout, 2)
    if dtype not in (torch.float32, torch.bfloat16) or x.device.type != "cpu":
        raise ValueError(f"the Winograd kernel takes float32 or bfloat16 CPU tensors, not {dtype}")
    if u.shape != layout or not supports(cin, cout) or u.dtype != dtype or not u.is_contiguous():
        raise ValueError(f"weights {u.dtype} {tuple(u.shape)} do not fit a {dtype} input with {cin} channels")
    if x.stride(1) != 1:
        x = x.contiguous(memory_format=torch.channels_last)
    if out is None:
        out = torch.empty((n, cout, h, w), dtype=dtype, memory_format=torch.channels_last)
    elif out.shape != (n, cout, h, w) or out.dtype != dtype:
        raise ValueError(f"out must be {dtype} {(n, cout, h, w)}, got {out.dtype} {tuple(out.shape)}")
    res_ptr, res_strides = None, (0, 0, 0)
    if residual is not None:
        if residual.shape != out.shape or residual.dtype != dtype:
            raise ValueError("residual must match the output's shape and dtype")
        res_ptr, res_strides = residual.data_ptr(), _pixel_strides(residual, "residual")
    b = None  # always float32: it is added to the float32 accumulators
    if bias is not None:
        b = bias if bias.dtype == torch.float32 and bias.is_contiguous() else bias.float().contiguous()
    slopes = None  # per-channel: kept alive in this frame while the kernel reads it
    if isinstance(negative_slope, Tensor):
        slopes = negative_slope.detach().float().contiguous()
        if slopes.shape != (cout,):
            raise ValueError(f"per-channel slopes must have shape ({cout},), got {tuple(slopes.shape)}")
        slope = 0.0
    else:
        slope = 0.0 if negative_slope is None else float(negative_slope)
    rc = fn(
        x.data_ptr(), *_pixel_strides(x, "x"),
        res_ptr, *res_strides,
        out.data_ptr(), *_pixel_strides(out, "out"),
        u.data_ptr(), None if b is None else b.data_ptr(),
        n, h, w, cin, cout, int(negative_slope is not None), slope,
        None if slopes is None else slopes.data_ptr(),
        _block_tiles(cin, cout), int(dtype == torch.bfloat16), torch.get_num_threads(),
    )  # fmt: skip
    if rc == 1:
        raise MemoryError("the Winograd kernel could not allocate its scratch memory")
    if rc != 0:
        raise RuntimeError(f"the Winograd kernel rejected its arguments (code {rc})")
    return out
