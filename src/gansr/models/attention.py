"""Windowed multi-head self-attention for feature maps: the ``attention`` options of ``srresnet``
and ``srgan_d`` (reference design 003's open item "attention mechanism in GAN").

Self-attention over every pixel of an image costs memory and time quadratic in its pixel count:
a 500x500 LR map alone would need a 6 * 10^10-entry attention matrix. Here each pixel attends only
to the pixels of its ``window x window`` block (local windows, as in Swin / SwinIR), so the cost
is ``O(H * W * window^2)``, linear in the image; consecutive blocks can shift their windows by
half a window so information crosses window borders. A map no larger than the window is attended
over whole (global attention at low resolution, as SAGAN's discriminator uses it). Windows are
evaluated a bounded number at a time, so even the attention scores of one huge image never exist
at once.

A block is pre-norm and residual, ``x + proj(attn(norm(x)))``, with ``proj`` initialized to zero:
a network with attention starts out as the same function as its twin without (SAGAN's gamma = 0)
and learns how much attention to mix in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ConfigError

__all__ = ["WindowAttention", "check_attention"]

# Attention scores held at once (heads * windows * P * P floats): bounds the peak memory of a pass.
_SCORES_PER_CHUNK = 1 << 22


def check_attention(arch: str, channels: int, heads: int, window: int) -> None:
    """Raise :class:`ConfigError` unless ``heads`` divides ``channels`` and ``window`` >= 2."""
    for name, value in (("attention_heads", heads), ("attention_window", window)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model {arch!r}: {name} must be a positive integer, got {value!r}")
    if window < 2:
        raise ConfigError(f"model {arch!r}: attention_window must be >= 2, got {window}")
    if channels % heads:
        raise ConfigError(
            f"model {arch!r}: attention_heads ({heads}) must divide the {channels} feature channels"
        )


class WindowAttention(nn.Module):
    """Multi-head self-attention within ``window x window`` blocks of a ``(N, C, H, W)`` map.

    Args:
        channels: feature channels ``C`` (a multiple of ``heads``).
        heads: attention heads.
        window: window side in pixels; a map side smaller than it is attended over whole.
        shift: offset the windows by half a window (alternate it between consecutive blocks).
    """

    def __init__(self, channels: int, *, heads: int = 4, window: int = 8, shift: bool = False) -> None:
        super().__init__()
        check_attention("attention", channels, heads, window)
        self.channels, self.heads, self.window, self.shift = channels, heads, window, shift
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)  # starts as the identity block (see the module doc)
        nn.init.zeros_(self.proj.bias)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}, window={self.window}, shift={self.shift}"

    def forward(self, x: Tensor) -> Tensor:
        """``x + attention(x)``, same shape and dtype as ``x``."""
        n, c, h, w = x.shape
        if c != self.channels:
            raise ValueError(f"WindowAttention expects {self.channels} channels, got {c}")
        wh, ww = min(self.window, h), min(self.window, w)
        top = wh // 2 if self.shift and h > wh else 0
        left = ww // 2 if self.shift and w > ww else 0
        bottom, right = -(h + top) % wh, -(w + left) % ww
        padded = (top, bottom, left, right) != (0, 0, 0, 0)

        y = self.norm(x.permute(0, 2, 3, 1))  # (N, H, W, C): per-pixel LayerNorm
        if padded:
            y = F.pad(y, (0, 0, left, right, top, bottom))
        hp, wp = h + top + bottom, w + left + right
        nh, nw, pixels = hp // wh, wp // ww, wh * ww
        # (N, H', W', C) -> (N * windows, P, C): each window's pixels in a row.
        y = y.reshape(n, nh, wh, nw, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(n * nh * nw, pixels, c)
        mask = None
        if padded:  # padded pixels are no keys; they still get (discarded) outputs as queries
            valid = torch.zeros(hp, wp, dtype=torch.bool, device=x.device)
            valid[top : top + h, left : left + w] = True
            valid = valid.reshape(nh, wh, nw, ww).permute(0, 2, 1, 3).reshape(nh * nw, 1, 1, pixels)
            mask = valid.repeat(n, 1, 1, 1)

        out = torch.empty_like(y)
        step = max(1, _SCORES_PER_CHUNK // (self.heads * pixels * pixels))
        head_dim = c // self.heads
        for start in range(0, y.shape[0], step):
            part = y[start : start + step]
            qkv = (
                self.qkv(part).reshape(part.shape[0], pixels, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
            )
            attn = F.scaled_dot_product_attention(
                qkv[0], qkv[1], qkv[2], attn_mask=None if mask is None else mask[start : start + step]
            )
            out[start : start + step] = attn.transpose(1, 2).reshape(part.shape[0], pixels, c)
        out = out.reshape(n, nh, nw, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(n, hp, wp, c)
        out = self.proj(out[:, top : top + h, left : left + w])
        return x + out.permute(0, 3, 1, 2).to(x.dtype)
