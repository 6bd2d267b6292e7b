"""The machine's measured convolution peak: the yardstick for "achieved GFLOP/s".

A 3x3 convolution with 64 input and 64 output channels on a 256x256 channels-last image is what
oneDNN (and cuDNN) run closest to the hardware's limit among the layers of SR generators, and it
is the dominant layer shape of ``rrdbnet``, ``srresnet`` and ``msrresnet``. Its rate in the same
precision, timed in the same run as the model (so both see the same machine load), is the peak
that model throughput is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["PeakConv"]


@dataclass(frozen=True)
class PeakConv:
    """One large 3x3 convolution, ready to time: ``run()`` does ``repeats`` of it (16 by default:
    about half a second on a 2-core CPU, long enough that a moment of load does not decide it).

    Attributes:
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        flops: floating-point operations of one ``run()`` (2 per multiply-add, bias excluded).
    """

    precision: str
    device: torch.device
    channels: int
    size: int
    repeats: int
    x: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def build(
        cls,
        precision: str,
        device: torch.device | str = "cpu",
        *,
        channels: int = 64,
        size: int = 256,
        repeats: int = 16,
    ) -> PeakConv:
        """Random channels-last operands in ``precision``'s dtype on ``device`` (seeded)."""
        from gansr.engine.fast import precision_dtype

        dtype = precision_dtype(precision)
        device = torch.device(device)
        gen = torch.Generator().manual_seed(0)
        fmt = torch.channels_last
        x = torch.rand(1, channels, size, size, generator=gen).to(device, dtype).contiguous(memory_format=fmt)
        w = (torch.randn(channels, channels, 3, 3, generator=gen) * 0.05).to(device, dtype)
        return cls(
            precision=precision,
            device=device,
            channels=channels,
            size=size,
            repeats=repeats,
            x=x,
            weight=w.contiguous(memory_format=fmt),
            bias=torch.zeros(channels, dtype=dtype, device=device),
        )

    @property
    def flops(self) -> int:
        return 2 * self.channels * self.channels * 9 * self.size * self.size * self.repeats

    def run(self) -> None:
        """``repeats`` convolutions (synchronized on CUDA, so a timer around it is honest)."""
        with torch.inference_mode():
            for _ in range(self.repeats):
                F.conv2d(self.x, self.weight, self.bias, padding=1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
