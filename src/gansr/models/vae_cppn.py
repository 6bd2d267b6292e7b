"""VAE-GAN + CPPN generator (``vae_cppn``): renders a super-resolved image at any output size.

The LR image goes through a small conv encoder to a latent Gaussian ``(mu, logvar)``; ``z`` is
drawn with the reparameterization trick in training (``z = mu + eps * std``) and is ``mu`` in
eval mode. A CPPN — an MLP evaluated independently at every output pixel — maps

    g(z, x, y, r, lr_feat(x, y)) -> pixel

with ``x, y`` the pixel centre in ``[-1, 1]`` (``-1``/``1`` are the image edges), ``r`` its
distance from the centre, ``tanh`` hidden layers and a ``sigmoid`` output. ``lr_feat`` are LR
features (and the LR pixels themselves) sampled bilinearly at the pixel's position in
continuous coordinates (``grid_sample``, ``align_corners=False``, border clamp: the same mapping
as ``F.interpolate(..., mode="bilinear", align_corners=False)``), which is what makes the CPPN
super-resolve the given image rather than draw a generic digit. Because the image is a function
of continuous coordinates, one input renders at 28x28, 100x100 or 1800x1800 alike.

Rendering is chunked over pixels (``chunk_size`` per step, default 2**16), so the MLP's
activations never exist for the whole output at once: an 1800x1800 render stays far below 2 GB.
Coordinates and the bilinear sampling are computed in float32 even for bf16 models, since bf16
cannot tell neighbouring pixel positions apart at high output resolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ConfigError
from gansr.models.blocks import Generator, check_int

__all__ = ["VAECPPN"]


class VAECPPN(Generator):
    """VAE encoder + CPPN decoder conditioned on LR features; any output size.

    Args:
        in_channels: image channels (1 for MNIST); the output has the same count.
        scale: the default upscaling factor when ``forward`` gets no ``size``.
        num_feat: width of the LR feature convs (the encoder uses ``2 * num_feat``).
        latent_dim: size of the latent ``z``.
        cppn_width: width of the CPPN's hidden layers.
        cppn_depth: number of ``tanh`` hidden layers of the CPPN.
        chunk_size: output pixels rendered per step (bounds the peak memory).
    """

    arch = "vae_cppn"
    arbitrary_scale = True

    def __init__(
        self,
        in_channels: int = 1,
        scale: int = 4,
        num_feat: int = 32,
        latent_dim: int = 32,
        cppn_width: int = 64,
        cppn_depth: int = 3,
        chunk_size: int = 65536,
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "scale", scale)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "latent_dim", latent_dim)
        check_int(self.arch, "cppn_width", cppn_width)
        check_int(self.arch, "cppn_depth", cppn_depth)
        check_int(self.arch, "chunk_size", chunk_size)
        super().__init__(
            {
                "in_channels": in_channels,
                "scale": scale,
                "num_feat": num_feat,
                "latent_dim": latent_dim,
                "cppn_width": cppn_width,
                "cppn_depth": cppn_depth,
                "chunk_size": chunk_size,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        self.latent_dim = latent_dim
        self.chunk_size = chunk_size
        # LR features: sampled by the CPPN at every output pixel and fed to the encoder.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, num_feat, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.LeakyReLU(0.2),
        )
        # Strided convs + global pooling: any LR size (7x7, 26x26, ...) gives one latent vector.
        self.encoder = nn.Sequential(
            nn.Conv2d(num_feat, 2 * num_feat, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * num_feat, 2 * num_feat, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc_mu = nn.Linear(2 * num_feat, latent_dim)
        self.fc_logvar = nn.Linear(2 * num_feat, latent_dim)
        # The CPPN's first layer is a Linear over concat(z, x, y, r, lr_feat), split into three
        # so the z term is computed once per image instead of once per pixel.
        self.cppn_z = nn.Linear(latent_dim, cppn_width)
        self.cppn_coord = nn.Linear(3, cppn_width, bias=False)
        self.cppn_lr = nn.Linear(num_feat + in_channels, cppn_width, bias=False)
        self.cppn_hidden = nn.ModuleList(nn.Linear(cppn_width, cppn_width) for _ in range(cppn_depth - 1))
        self.cppn_out = nn.Linear(cppn_width, in_channels)

    def encode(self, lr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(lr_features, mu, logvar)`` for an LR batch."""
        feat = self.features(lr)
        hidden = self.encoder(feat)
        return feat, self.fc_mu(hidden), self.fc_logvar(hidden)

    def sample_latent(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``mu + eps * exp(logvar / 2)`` in training mode (``eps`` from ``generator``), else ``mu``."""
        if not self.training:
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def render(self, z: Tensor, cond: Tensor, size: tuple[int, int]) -> Tensor:
        """Evaluate the CPPN at every pixel of a ``size`` grid, ``chunk_size`` pixels at a time.

        Args:
            z: latents ``(N, latent_dim)``.
            cond: LR conditioning maps ``(N, num_feat + in_channels, h, w)``.
            size: output ``(H, W)``.

        Returns:
            ``(N, out_channels, H, W)`` in ``(0, 1)``.
        """
        n = z.shape[0]
        height, width = size
        device = cond.device
        coord_dtype = torch.float64 if cond.dtype == torch.float64 else torch.float32
        mlp_dtype = self.cppn_coord.weight.dtype
        # Pixel centres in [-1, 1] with -1/1 at the image edges (grid_sample's align_corners=False).
        ys = (torch.arange(height, device=device, dtype=coord_dtype) + 0.5) * (2.0 / height) - 1.0
        xs = (torch.arange(width, device=device, dtype=coord_dtype) + 0.5) * (2.0 / width) - 1.0
        cond = cond.to(coord_dtype)
        base = self.cppn_z(z).unsqueeze(1)  # (N, 1, width): once per image
        total = height * width
        chunks = []
        for start in range(0, total, self.chunk_size):
            idx = torch.arange(start, min(total, start + self.chunk_size), device=device)
            x, y = xs[idx % width], ys[idx // width]
            grid = torch.stack((x, y), -1).reshape(1, 1, -1, 2).expand(n, -1, -1, -1)
            sampled = F.grid_sample(cond, grid, mode="bilinear", padding_mode="border", align_corners=False)
            sampled = sampled.flatten(2).transpose(1, 2).to(mlp_dtype)  # (N, P, C_cond)
            coords = torch.stack((x, y, torch.sqrt(x * x + y * y)), -1).to(mlp_dtype)  # (P, 3)
            h = torch.tanh(base + self.cppn_coord(coords) + self.cppn_lr(sampled))
            for layer in self.cppn_hidden:
                h = torch.tanh(layer(h))
            chunks.append(torch.sigmoid(self.cppn_out(h)))
        out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 1)
        return out.transpose(1, 2).reshape(n, self.out_channels, height, width)

    def forward(
        self,
        lr: Tensor,
        size: Sequence[int] | None = None,
        return_latent: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        """Super-resolve ``lr`` ``(N, C, h, w)``.

        Args:
            lr: LR batch in ``[0, 1]``.
            size: output ``(H, W)``; defaults to ``(scale * h, scale * w)``.
            return_latent: also return ``mu`` and ``logvar`` (for the KL term).
            generator: RNG for the reparameterization noise in training mode (torch's default
                RNG when None); unused in eval mode, where ``z = mu``.

        Returns:
            ``sr`` ``(N, C, H, W)``, or ``(sr, mu, logvar)`` with ``return_latent``.
        """
        self.check_input(lr)
        if size is None:
            out_size = (self.scale * lr.shape[-2], self.scale * lr.shape[-1])
        else:
            out_size = _check_size(size)
        feat, mu, logvar = self.encode(lr)
        z = self.sample_latent(mu, logvar, generator)
        # float32 conditioning keeps the LR pixels exact under autocast / bf16 (see module doc).
        cond_dtype = torch.float64 if lr.dtype == torch.float64 else torch.float32
        cond = torch.cat((feat.to(cond_dtype), lr.to(cond_dtype)), 1)
        sr = self.render(z, cond, out_size)
        return (sr, mu, logvar) if return_latent else sr


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    """Validate an output ``(H, W)``."""
    if (
        isinstance(size, str | bytes)
        or not isinstance(size, Sequence)
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size)
    ):
        raise ConfigError(
            f"model 'vae_cppn': size must be (height, width) with positive integers, got {size!r}"
        )
    return int(size[0]), int(size[1])
