"""Discriminators and critics: ``mnist_feature_d``, ``srgan_d``, ``wgan_critic``, ``patch_d``.

All take ``(N, C, H, W)`` images in ``[0, 1]`` and return raw scores (logits / critic values /
feature maps); sigmoids live in the losses.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gansr.errors import ConfigError, ModelError
from gansr.models.attention import WindowAttention, check_attention
from gansr.models.blocks import Discriminator, check_choice, check_int, crop_to, pad_to_multiple

__all__ = ["MnistFeatureD", "PatchDiscriminator", "SRGANDiscriminator", "WGANCritic"]


class MnistFeatureD(Discriminator):
    """The MNIST GAN's feature discriminator: conv3x3(32) + act, conv3x3(64) + BN + act.

    It outputs the feature map ``(N, 2 * num_feat, H, W)`` (used with MSE / feature losses);
    18,944 trainable parameters at the defaults (the Keras table's 19,072 minus 128 BN stats).

    Args:
        in_channels: image channels (1 for MNIST).
        num_feat: width of the first conv (the second has twice as many).
        activation: ``"relu"`` (the reference) or ``"leaky_relu"`` (slope 0.2), used after both convs.
    """

    arch = "mnist_feature_d"

    def __init__(self, in_channels: int = 1, num_feat: int = 32, activation: str = "relu") -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_choice(self.arch, "activation", activation, ("relu", "leaky_relu"))
        super().__init__(
            {"in_channels": in_channels, "num_feat": num_feat, "activation": activation},
            in_channels=in_channels,
        )

        def act() -> nn.Module:
            return nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.2)

        self.body = nn.Sequential(
            nn.Conv2d(in_channels, num_feat, 3, 1, 1),
            act(),
            nn.Conv2d(num_feat, 2 * num_feat, 3, 1, 1),
            nn.BatchNorm2d(2 * num_feat),
            act(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Feature map ``(N, 2 * num_feat, H, W)`` of ``x``."""
        self.check_input(x)
        return self.body(x)


def _strided_side(side: int, layers: int) -> int:
    """Side length after ``layers`` stride-2 3x3 convs with padding 1 (each gives ceil(side / 2))."""
    for _ in range(layers):
        side = (side + 1) // 2
    return side


class SRGANDiscriminator(Discriminator):
    """SRGAN's VGG-style discriminator; returns one logit per image ``(N, 1)``.

    Eight 3x3 convs (64, 64, 128, 128, 256, 256, 512, 512 for ``num_feat=64``; strides 1, 2, 1, 2,
    ...; BN on all but the first; LeakyReLU 0.2), then dense 1024, LeakyReLU, dense 1.

    The paper flattens the 6x6x512 map of its 96x96 input into the dense layer, which ties the
    network to one input size. By default (``pool_size=6``) an ``AdaptiveAvgPool2d(6)`` sits in
    between instead, so any input size works and a 96x96 input gives exactly the paper's dense
    input (the pooling is then the identity). ``pool_size=None`` flattens as in the paper and
    needs inputs of ``input_size`` x ``input_size``.

    Args:
        in_channels: image channels.
        num_feat: width of the first conv (doubled every two convs).
        pool_size: side of the adaptive pooling grid, or None to flatten.
        input_size: the input side the flatten variant is built for (unused when pooling).
        dense: width of the hidden dense layer.
        attention: add a windowed self-attention block (:mod:`gansr.models.attention`) after the
            fourth conv, on the quarter-resolution ``2 * num_feat`` map (global on a 96x96
            input's 24x24 map when the window is 24 or more; linear in the image otherwise).
        attention_window: its window side in pixels of that map.
        attention_heads: its heads (must divide ``2 * num_feat``).
    """

    arch = "srgan_d"

    def __init__(
        self,
        in_channels: int = 3,
        num_feat: int = 64,
        pool_size: int | None = 6,
        input_size: int = 96,
        dense: int = 1024,
        attention: bool = False,
        attention_window: int = 8,
        attention_heads: int = 4,
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        if pool_size is not None:
            check_int(self.arch, "pool_size", pool_size)
        check_int(self.arch, "input_size", input_size)
        check_int(self.arch, "dense", dense)
        if not isinstance(attention, bool):
            raise ConfigError(f"model {self.arch!r}: attention must be true or false, got {attention!r}")
        config = {
            "in_channels": in_channels,
            "num_feat": num_feat,
            "pool_size": pool_size,
            "input_size": input_size,
            "dense": dense,
            "attention": attention,
            "attention_window": attention_window,
            "attention_heads": attention_heads,
        }
        if attention:
            check_attention(self.arch, 2 * num_feat, attention_heads, attention_window)
        super().__init__(config, in_channels=in_channels)
        self.input_size = input_size
        widths = [num_feat * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers.append(nn.Conv2d(prev, width, 3, 1 if i % 2 == 0 else 2, 1))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            prev = width
            if attention and i == 3:
                layers.append(WindowAttention(width, heads=attention_heads, window=attention_window))
        self.features = nn.Sequential(*layers)
        side = pool_size if pool_size is not None else _strided_side(input_size, 4)
        self.pool = nn.AdaptiveAvgPool2d(pool_size) if pool_size is not None else nn.Identity()
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(prev * side * side, dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, 1)`` (real vs. fake; apply the sigmoid in the loss)."""
        self.check_input(x)
        if self.config["pool_size"] is None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ModelError(
                f"model 'srgan_d' with pool_size=None needs {self.input_size}x{self.input_size} inputs, "
                f"got {x.shape[-2]}x{x.shape[-1]} (use pool_size to accept any size)"
            )
        return self.classifier(self.pool(self.features(x)))


class WGANCritic(Discriminator):
    """A WGAN-GP critic: no BatchNorm (it would break the per-sample gradient penalty).

    conv3x3(num_feat) + LeakyReLU, then ``num_down`` stride-2 4x4 convs doubling the width (at
    most ``8 * num_feat``), each with optional normalization and LeakyReLU 0.2, global average
    pooling and a linear layer: one unbounded score per image ``(N, 1)``.

    Args:
        in_channels: image channels.
        num_feat: width of the first conv.
        num_down: stride-2 stages (3: a 48x48 input ends at 6x6).
        norm: ``"none"`` or ``"layer"`` (``GroupNorm(1, C)``: per-sample, so safe for WGAN-GP).
    """

    arch = "wgan_critic"

    def __init__(
        self, in_channels: int = 3, num_feat: int = 64, num_down: int = 3, norm: str = "none"
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_int(self.arch, "num_down", num_down, minimum=0)
        check_choice(self.arch, "norm", norm, ("none", "layer"))
        super().__init__(
            {"in_channels": in_channels, "num_feat": num_feat, "num_down": num_down, "norm": norm},
            in_channels=in_channels,
        )
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_feat, 3, 1, 1), nn.LeakyReLU(0.2)]
        prev = num_feat
        for _ in range(num_down):
            width = min(2 * prev, 8 * num_feat)
            layers.append(nn.Conv2d(prev, width, 4, 2, 1))
            if norm == "layer":
                layers.append(nn.GroupNorm(1, width))
            layers.append(nn.LeakyReLU(0.2))
            prev = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Critic scores ``(N, 1)`` (linear, no sigmoid)."""
        self.check_input(x)
        return self.body(x)


class PatchDiscriminator(Discriminator):
    """Real-ESRGAN's U-Net discriminator with spectral norm; per-pixel logits ``(N, 1, H, W)``.

    Layer names follow Real-ESRGAN's ``UNetDiscriminatorSN`` (``conv0`` ... ``conv9``). Spectral
    norm uses ``torch.nn.utils.parametrizations.spectral_norm``, so the state-dict keys of the
    normalized convs are ``convK.parametrizations.weight.original`` (plus ``..._u`` / ``..._v``
    power-iteration vectors), not the old API's ``convK.weight_orig`` / ``weight_u`` / ``weight_v``
    that Real-ESRGAN's released ``.pth`` files use (``gansr.models.interop`` maps those).

    The three stride-2 levels need sides divisible by 8; other inputs are reflect-padded to that
    and the logits cropped back, so any size works (``size_multiple = 8``).

    Args:
        in_channels: image channels.
        num_feat: width of the first conv (64).
        skip_connection: add the encoder features to the decoder's (U-Net skips), as Real-ESRGAN.
    """

    arch = "patch_d"
    size_multiple = 8

    def __init__(self, in_channels: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        if not isinstance(skip_connection, bool):
            raise ConfigError(
                f"model {self.arch!r}: skip_connection must be true or false, got {skip_connection!r}"
            )
        super().__init__(
            {"in_channels": in_channels, "num_feat": num_feat, "skip_connection": skip_connection},
            in_channels=in_channels,
        )
        self.skip_connection = skip_connection
        nf = num_feat
        self.conv0 = nn.Conv2d(in_channels, nf, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    @staticmethod
    def _act(x: Tensor) -> Tensor:
        return F.leaky_relu(x, 0.2)

    @staticmethod
    def _up(x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        """Per-pixel logits ``(N, 1, H, W)``."""
        self.check_input(x)
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.size_multiple)
        x0 = self._act(self.conv0(x))
        x1 = self._act(self.conv1(x0))
        x2 = self._act(self.conv2(x1))
        x3 = self._act(self.conv3(x2))
        x4 = self._act(self.conv4(self._up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = self._act(self.conv5(self._up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = self._act(self.conv6(self._up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = self._act(self.conv7(x6))
        out = self._act(self.conv8(out))
        return crop_to(self.conv9(out), h, w)
