"""VAE-GAN + CPPN generator (``vae_cppn``): renders a super-resolved image at any output size.

The LR image goes through a small conv encoder to a latent Gaussian ``(mu, logvar)``; ``z`` is
drawn with the reparameterization trick in training (``z = mu + eps * std``) and is ``mu`` in
eval mode. A CPPN — an MLP evaluated independently at every output pixel — maps, in one of two
forms (``form``),

    "lr_features" (default):  g(z, x, y, r, lr_feat(x, y)) -> pixel
    "latent" (design 001's):  f(z, x, y, r) -> pixel

with ``x, y`` the pixel centre in ``[-1, 1]`` (``-1``/``1`` are the image edges), ``r`` its
distance from the centre, ``tanh`` hidden layers and a ``sigmoid`` output. ``lr_feat`` are LR
features (and the LR pixels themselves) sampled bilinearly at the pixel's position in
continuous coordinates (``grid_sample``, ``align_corners=False``, border clamp: the same mapping
as ``F.interpolate(..., mode="bilinear", align_corners=False)``), which is what makes the CPPN
super-resolve the given image rather than draw a generic digit. The ``latent`` form is the
reference design's: everything the CPPN knows about the image passes through ``z``, so it can
also draw from a latent alone (:meth:`VAECPPN.sample`, ``z`` from the N(0, I) prior). Because
the image is a function of continuous coordinates, one input renders at 28x28, 100x100 or
1800x1800 alike, and the scale need not be an integer (26x26 -> 28x28 in design 001).

:func:`random_cppn` builds an untrained CPPN with large random weights, the reference's (and
hardmaru's cppn-tensorflow) way of drawing abstract gray or colour images from a random latent.

Rendering is chunked over pixels (``chunk_size`` per step, default 2**16), so the MLP's
activations never exist for the whole output at once: an 1800x1800 render stays far below 2 GB.
Coordinates and the bilinear sampling are computed in float32 even for bf16 models, since bf16
cannot tell neighbouring pixel positions apart at high output resolutions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ConfigError
from gansr.models.blocks import Generator, check_choice, check_int

__all__ = ["FORMS", "VAECPPN", "random_cppn"]

FORMS = ("lr_features", "latent")
"""The CPPN's inputs: ``(z, x, y, r, LR features)`` or the reference design's ``(z, x, y, r)``."""


def _check_scale(scale: object) -> int | float:
    if (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or not math.isfinite(scale)
        or scale <= 0
    ):
        raise ConfigError(f"model 'vae_cppn': scale must be a positive number, got {scale!r}")
    return scale


class VAECPPN(Generator):
    """VAE encoder + CPPN decoder conditioned on LR features; any output size.

    Args:
        in_channels: image channels (1 for MNIST); the output has the same count.
        scale: the default upscaling factor when ``forward`` gets no ``size``; any positive number
            (``28 / 26`` for design 001's 26x26 -> 28x28; the default size is then rounded). The
            ``scale`` attribute is the nearest integer (>= 1), the factor the rest of gansr (the
            Upscaler's default output size, the checkpoint header) works with; the number given
            here is ``exact_scale``. Ask for a size (``Upscaler.upscale(lr, size=(28, 28))``,
            ``gansr upscale --size 28x28``) to get exactly 28x28 from 26x26 outside ``forward``.
        num_feat: width of the LR feature convs (the encoder uses ``2 * num_feat``).
        latent_dim: size of the latent ``z``.
        cppn_width: width of the CPPN's hidden layers.
        cppn_depth: number of ``tanh`` hidden layers of the CPPN.
        chunk_size: output pixels rendered per step (bounds the peak memory).
        form: ``"lr_features"`` (the CPPN also reads LR features at every pixel) or ``"latent"``
            (the reference design's f(z, x, y, r); it can also draw from the prior).
        cond_dropout: ``lr_features`` form only: in training, the probability that a sample's LR
            conditioning is zeroed, so the CPPN must draw it from ``z`` alone (classifier-free
            guidance's trick). A model trained with it both super-resolves a given LR image and
            draws from the prior (:meth:`sample`); 0 (default) trains the conditioned form only.
    """

    arch = "vae_cppn"
    arbitrary_scale = True

    def __init__(
        self,
        in_channels: int = 1,
        scale: int | float = 4,
        num_feat: int = 32,
        latent_dim: int = 32,
        cppn_width: int = 64,
        cppn_depth: int = 3,
        chunk_size: int = 65536,
        form: str = "lr_features",
        cond_dropout: float = 0.0,
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        _check_scale(scale)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "latent_dim", latent_dim)
        check_int(self.arch, "cppn_width", cppn_width)
        check_int(self.arch, "cppn_depth", cppn_depth)
        check_int(self.arch, "chunk_size", chunk_size)
        check_choice(self.arch, "form", form, FORMS)
        if (
            isinstance(cond_dropout, bool)
            or not isinstance(cond_dropout, int | float)
            or not 0.0 <= cond_dropout < 1.0
        ):
            raise ConfigError(f"model 'vae_cppn': cond_dropout must be in [0, 1), got {cond_dropout!r}")
        if cond_dropout and form != "lr_features":
            raise ConfigError("model 'vae_cppn': cond_dropout applies to the lr_features form only")
        config = {
            "in_channels": in_channels,
            "scale": scale,
            "num_feat": num_feat,
            "latent_dim": latent_dim,
            "cppn_width": cppn_width,
            "cppn_depth": cppn_depth,
            "chunk_size": chunk_size,
            "form": form,
            "cond_dropout": cond_dropout,
        }
        # ``scale`` stays an integer for the rest of gansr (the Upscaler's default factor, the
        # checkpoint header): the nearest one; ``exact_scale`` is what forward's default size uses.
        super().__init__(
            config, scale=max(1, round(scale)), in_channels=in_channels, out_channels=in_channels
        )
        self.exact_scale: int | float = scale
        self.latent_dim = latent_dim
        self.chunk_size = chunk_size
        self.form = form
        self.cond_dropout = float(cond_dropout)
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
        self.cppn_lr = (
            nn.Linear(num_feat + in_channels, cppn_width, bias=False) if form == "lr_features" else None
        )
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

    def render(self, z: Tensor, cond: Tensor | None, size: tuple[int, int]) -> Tensor:
        """Evaluate the CPPN at every pixel of a ``size`` grid, ``chunk_size`` pixels at a time.

        Args:
            z: latents ``(N, latent_dim)``.
            cond: LR conditioning maps ``(N, num_feat + in_channels, h, w)`` for the
                ``lr_features`` form; ``None`` for the ``latent`` form, and for an ``lr_features``
                model trained with ``cond_dropout`` drawing from ``z`` alone (the zeroed
                conditioning it was trained with: ``cppn_lr`` has no bias, so zero adds nothing).
            size: output ``(H, W)``.

        Returns:
            ``(N, out_channels, H, W)`` in ``(0, 1)``.
        """
        if (cond is None and self.cppn_lr is not None and not self.cond_dropout) or (
            cond is not None and self.cppn_lr is None
        ):
            raise ConfigError(
                f"model 'vae_cppn' ({self.form} form): "
                + ("needs LR conditioning maps" if cond is None else "takes no LR conditioning")
            )
        n = z.shape[0]
        height, width = size
        device = z.device
        wide = z.dtype == torch.float64 or (cond is not None and cond.dtype == torch.float64)
        coord_dtype = torch.float64 if wide else torch.float32
        mlp_dtype = self.cppn_coord.weight.dtype
        # Pixel centres in [-1, 1] with -1/1 at the image edges (grid_sample's align_corners=False).
        ys = (torch.arange(height, device=device, dtype=coord_dtype) + 0.5) * (2.0 / height) - 1.0
        xs = (torch.arange(width, device=device, dtype=coord_dtype) + 0.5) * (2.0 / width) - 1.0
        base = self.cppn_z(z.to(mlp_dtype)).unsqueeze(1)  # (N, 1, width): once per image
        total = height * width
        chunks = []
        for start in range(0, total, self.chunk_size):
            idx = torch.arange(start, min(total, start + self.chunk_size), device=device)
            x, y = xs[idx % width], ys[idx // width]
            coords = torch.stack((x, y, torch.sqrt(x * x + y * y)), -1).to(mlp_dtype)  # (P, 3)
            pre = base + self.cppn_coord(coords)
            if cond is not None and self.cppn_lr is not None:
                grid = torch.stack((x, y), -1).reshape(1, 1, -1, 2).expand(n, -1, -1, -1)
                sampled = F.grid_sample(
                    cond.to(coord_dtype), grid, mode="bilinear", padding_mode="border", align_corners=False
                )
                pre = pre + self.cppn_lr(sampled.flatten(2).transpose(1, 2).to(mlp_dtype))  # (N, P, C)
            h = torch.tanh(pre)
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
            size: output ``(H, W)``; defaults to :meth:`default_size` (``scale`` times the LR).
            return_latent: also return ``mu`` and ``logvar`` (for the KL term).
            generator: RNG for the reparameterization noise in training mode (torch's default
                RNG when None); unused in eval mode, where ``z = mu``.

        Returns:
            ``sr`` ``(N, C, H, W)``, or ``(sr, mu, logvar)`` with ``return_latent``.
        """
        self.check_input(lr)
        out_size = self.default_size(lr.shape[-2], lr.shape[-1]) if size is None else _check_size(size)
        feat, mu, logvar = self.encode(lr)
        z = self.sample_latent(mu, logvar, generator)
        cond = None
        if self.cppn_lr is not None:
            # float32 conditioning keeps the LR pixels exact under autocast / bf16 (see module doc).
            cond_dtype = torch.float64 if lr.dtype == torch.float64 else torch.float32
            cond = torch.cat((feat.to(cond_dtype), lr.to(cond_dtype)), 1)
            if self.training and self.cond_dropout:
                # Drawn after eps so a seeded run's latents do not depend on cond_dropout.
                keep = torch.rand(cond.shape[0], generator=generator, device=cond.device) >= self.cond_dropout
                cond = cond * keep.to(cond.dtype).view(-1, 1, 1, 1)
        sr = self.render(z, cond, out_size)
        return (sr, mu, logvar) if return_latent else sr

    def default_size(self, height: int, width: int) -> tuple[int, int]:
        """The output size for an LR ``height x width`` without ``size``: ``exact_scale`` times it
        (rounded for a non-integer scale, so 26x26 at 28/26 gives 28x28)."""
        if isinstance(self.exact_scale, int):
            return self.exact_scale * height, self.exact_scale * width
        return max(1, round(self.exact_scale * height)), max(1, round(self.exact_scale * width))

    @torch.no_grad()
    def sample(
        self,
        num: int = 1,
        size: Sequence[int] = (28, 28),
        *,
        generator: torch.Generator | None = None,
        z: Tensor | None = None,
    ) -> Tensor:
        """Draw ``num`` images of ``size`` from latents alone: ``z`` ~ N(0, I) (the VAE's prior).

        The ``latent`` form can, and an ``lr_features`` model trained with ``cond_dropout`` (it
        learned to draw without its LR conditioning); a plain ``lr_features`` model cannot. Any
        size renders (1800x1800 in ``chunk_size`` steps).

        Args:
            num: how many images (ignored when ``z`` is given).
            size: output ``(height, width)``.
            generator: RNG of the latents (torch's default RNG when None).
            z: explicit latents ``(N, latent_dim)`` instead of prior draws.

        Returns:
            ``(N, out_channels, H, W)`` in ``(0, 1)``, float32.

        Raises:
            ConfigError: the ``lr_features`` form, a bad ``num``/``size`` or latents of the wrong shape.
        """
        if self.cppn_lr is not None and not self.cond_dropout:
            raise ConfigError(
                "model 'vae_cppn' (lr_features form) reads an LR image at every pixel, so it cannot "
                "draw from a latent alone; train one with form 'latent' or with cond_dropout > 0"
            )
        out_size = _check_size(size)
        param = self.cppn_coord.weight
        if z is None:
            if isinstance(num, bool) or not isinstance(num, int) or num < 1:
                raise ConfigError(f"model 'vae_cppn': num must be a positive integer, got {num!r}")
            device = generator.device if generator is not None else param.device
            z = torch.randn(num, self.latent_dim, generator=generator, device=device)
        elif z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ConfigError(f"model 'vae_cppn': z must be (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.render(z.to(param.device, torch.float32), None, out_size).float()


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


def random_cppn(
    channels: int = 1,
    *,
    latent_dim: int = 8,
    width: int = 32,
    depth: int = 4,
    coord_scale: float = 8.0,
    seed: int = 0,
) -> VAECPPN:
    """An untrained ``latent``-form CPPN with N(0, 1) weights: abstract images from a random latent.

    The reference design draws its gray and colour 1800x1800 pictures this way (after hardmaru's
    cppn-tensorflow): unit-variance weights saturate the ``tanh`` layers into sharp-edged shapes,
    and ``coord_scale`` multiplies the coordinates (more, finer structure as it grows). Draw with
    ``random_cppn(3).sample(1, (1800, 1800))``.

    Args:
        channels: 1 (gray) or 3 (colour).
        latent_dim: size of ``z``.
        width: hidden width of the CPPN.
        depth: number of ``tanh`` layers.
        coord_scale: factor on ``x``, ``y`` and ``r`` (> 0).
        seed: seed of the weights.

    Raises:
        ConfigError: a bad option.
    """
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ConfigError(f"random CPPN: channels must be 1 (gray) or 3 (colour), got {channels!r}")
    if isinstance(coord_scale, bool) or not isinstance(coord_scale, int | float) or not coord_scale > 0:
        raise ConfigError(f"random CPPN: coord_scale must be a positive number, got {coord_scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"random CPPN: seed must be a non-negative integer, got {seed!r}")
    model = VAECPPN(
        in_channels=channels,
        latent_dim=latent_dim,
        cppn_width=width,
        cppn_depth=depth,
        num_feat=4,  # the encoder is unused when drawing from latents
        form="latent",
    ).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layers = [model.cppn_z, model.cppn_coord, *model.cppn_hidden, model.cppn_out]
        for layer in layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
            if layer.bias is not None:
                layer.bias.zero_()
        model.cppn_coord.weight.mul_(coord_scale)
    return model
