"""Does the fast path cost quality? PSNR/SSIM on a benchmark set, naive vs fast per precision.

Runs :func:`gansr.evaluate.evaluate_folder` (the literature's protocol: bicubic LR, 8-bit
quantization, Y-channel PSNR/SSIM with ``scale`` pixels cropped), or the MNIST protocol for a
folder of MNIST IDX files, with the naive path and with :class:`gansr.engine.fast.FastModel` in each
precision, and reports the change of the means.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch

__all__ = ["precision_quality"]


def precision_quality(
    model: torch.nn.Module,
    *,
    folder: str | Path | None = None,
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    device: torch.device | str = "cpu",
    model_name: str = "model",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Mean PSNR/SSIM of ``model`` on ``folder`` (default: the bundled Set5): the naive path, then
    the fast path in each precision, with each one's change from the naive path."""
    from gansr.engine.fast import prepare_model
    from gansr.evaluate import evaluate_folder, evaluate_mnist, is_mnist_folder

    path = Path(folder) if folder is not None else Path(str(files("gansr") / "samples" / "Set5"))
    scale = int(model.scale)
    reference = copy.deepcopy(model).float().eval()
    runs: dict[str, torch.nn.Module] = {"naive": reference}
    for p in precisions:
        fast = prepare_model(copy.deepcopy(reference), device=device, precision=p)
        if fast.precision == p:
            runs[f"fast-{p}"] = fast
    out: dict[str, Any] = {"dataset": path.name, "scale": scale, "model": model_name, "runs": {}}
    protocol = (
        "MNIST (whole digit, gray)" if is_mnist_folder(path) else f"Y channel, {scale} px border cropped"
    )
    out["protocol"] = protocol
    for name, net in runs.items():
        if is_mnist_folder(path):
            result = evaluate_mnist(net, path, model_name=model_name)
        else:
            result = evaluate_folder(net, path, scale, model_name=model_name)
        mean = result.mean()
        out["runs"][name] = {"psnr": mean.get("psnr"), "ssim": mean.get("ssim"), "images": len(result.images)}
        if log is not None:
            log(f"quality {name}: PSNR {mean.get('psnr', float('nan')):.4f} dB")
    base = out["runs"]["naive"]
    for entry in out["runs"].values():
        entry["psnr_change_db"] = entry["psnr"] - base["psnr"]
        entry["ssim_change"] = entry["ssim"] - base["ssim"]
    return out
