"""The MNIST 4x GAN generator (``mnist_sr``), layer for layer as in its Keras table.

Reference (7x7x1 -> 28x28x1, 56,997 Keras parameters of which 56,547 trainable)::

    a = relu(bn(conv3x3(x)))                 # 32 features at the LR size
    b = relu(bn(conv3x3(a))); c = a + b      # residual unit 1
    d = relu(bn(conv3x3(c))); e = c + d      # residual unit 2
    relu(e) -> nearest 2x
    f = relu(bn(conv3x3(.)))  + two residual units as above, relu -> nearest 2x
    relu(bn(conv3x3(.))) -> bn(conv3x3 -> 1 channel) -> final activation

Keras convolutions have biases even before BatchNorm, so these do too: that is what makes the
trainable count exactly 56,547 (the 450 Keras "non-trainable" parameters are BN running stats,
which are buffers here). Each further factor of two (``scale=8``, ...) repeats the
"conv + two residual units + relu + 2x" stage.
"""

from __future__ import annotations

from torch import Tensor, nn

from gansr.models.blocks import Generator, check_choice, check_int, check_power_of_two, num_doublings

__all__ = ["MnistSR"]

FINAL_ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "none": nn.Identity}


class ConvBNReLU(nn.Sequential):
    """conv3x3 (with bias, as Keras) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.ReLU()
        )


class ResidualUnit(nn.Module):
    """``x + relu(bn(conv3x3(x)))`` (the reference's Add of a unit's input and its activation)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.body = ConvBNReLU(num_feat, num_feat)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class MnistSR(Generator):
    """MNIST 4x generator: residual conv/BN/ReLU stages with nearest-neighbour 2x upsampling.

    Args:
        in_channels: image channels (1 for MNIST); the output has the same count.
        num_feat: feature width (32 in the reference).
        scale: upscaling factor, a power of two; each factor of two is one stage.
        final_activation: ``"sigmoid"`` (default: gansr targets lie in ``[0, 1]``), or
            ``"relu"`` / ``"none"`` as the Keras reference may be configured (it trains on raw
            0..255 targets with an unbounded output).
    """

    arch = "mnist_sr"

    def __init__(
        self, in_channels: int = 1, num_feat: int = 32, scale: int = 4, final_activation: str = "sigmoid"
    ) -> None:
        check_int(self.arch, "in_channels", in_channels)
        check_int(self.arch, "num_feat", num_feat)
        check_power_of_two(self.arch, "scale", scale)
        check_choice(self.arch, "final_activation", final_activation, tuple(FINAL_ACTIVATIONS))
        super().__init__(
            {
                "in_channels": in_channels,
                "num_feat": num_feat,
                "scale": scale,
                "final_activation": final_activation,
            },
            scale=scale,
            in_channels=in_channels,
            out_channels=in_channels,
        )
        stages: list[nn.Module] = []
        for i in range(num_doublings(scale)):
            stages.append(
                nn.Sequential(
                    ConvBNReLU(in_channels if i == 0 else num_feat, num_feat),
                    ResidualUnit(num_feat),
                    ResidualUnit(num_feat),
                    nn.ReLU(),
                    nn.Upsample(scale_factor=2, mode="nearest"),
                )
            )
        self.stages = nn.Sequential(*stages)
        self.conv_hr = ConvBNReLU(num_feat, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_channels, 3, 1, 1)
        self.bn_last = nn.BatchNorm2d(in_channels)
        self.final_activation = FINAL_ACTIVATIONS[final_activation]()

    def forward(self, x: Tensor) -> Tensor:
        """Upscale ``x`` ``(N, C, h, w)`` to ``(N, C, scale*h, scale*w)``."""
        self.check_input(x)
        return self.final_activation(self.bn_last(self.conv_last(self.conv_hr(self.stages(x)))))
