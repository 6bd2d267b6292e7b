"""Where a model runs and how much memory one forward pass may take there.

:func:`resolve_device` is the one place that turns a device name (``auto``, ``cpu``, ``cuda``,
``cuda:N``, ``mps``) into a :class:`torch.device`, for inference, training and the web app alike.
:func:`memory_budget` is what the tile planner (:mod:`gansr.engine.tiles`) fits a pass into.
"""

from __future__ import annotations

import os

import torch

from gansr.errors import ConfigError

__all__ = ["CPU_BUDGET_CAP", "available_ram", "memory_budget", "resolve_device"]

# 1.5 GiB for a forward pass on the CPU: an x4 model's 8000x8000 float output canvas (768 MB) plus
# this plus the process itself stays under 3 GB (measured 2.74 GB for rrdbnet at 2000x2000 in the
# bench, Winograd weights included; the estimates absorb the heap reuse of gansr.engine.allocator).
CPU_BUDGET_CAP = 3 << 29


def resolve_device(device: str | torch.device = "auto", *, local_rank: int | None = None) -> torch.device:
    """``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    ``local_rank``: the process's rank on its node under ``torchrun``; a bare ``cuda`` (or ``auto``
    choosing CUDA) then means ``cuda:<local_rank>``, so each process trains on its own GPU.

    Raises:
        ConfigError: unknown name, or the device is not available in this torch build/machine.
    """
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif _mps_available():
            return torch.device("mps")
        else:
            return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but CUDA is not available (use --device cpu or auto)")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {str(dev)!r} does not exist ({torch.cuda.device_count()} CUDA devices)"
            )
    elif dev.type == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' requested but MPS is not available (use --device cpu or auto)")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {str(device)!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def memory_budget(device: torch.device | str) -> int:
    """Bytes one forward pass may use on ``device``.

    CPU: a quarter of the available RAM, at most :data:`CPU_BUDGET_CAP`; the heap reuse of
    :mod:`gansr.engine.allocator` can take a large pass up to ~1.5x its estimate, which the quarter
    leaves room for. CUDA: half of the free device memory. MPS: half of what the driver recommends
    minus what is already allocated.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(64 << 20, free // 2)
    if device.type == "mps":
        try:
            free = torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
            return max(64 << 20, free // 2)
        except (AttributeError, RuntimeError):
            return CPU_BUDGET_CAP
    return max(64 << 20, min(CPU_BUDGET_CAP, available_ram() // 4))


def available_ram() -> int:
    """Bytes of RAM available to new allocations (``MemAvailable``), or a generous guess."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * CPU_BUDGET_CAP
