"""Fused inference forms are built from the eager models' *named* parts and check them.

A changed eager structure (an activation swapped, layers reordered, a BatchNorm missing, a layer
added) must make ``fuse_for_inference`` raise a one-line :class:`ModelError`, never build a twin
that silently computes something else. The named parts must not change the state-dict keys that
checkpoints hold, and the memory estimates come from one derivation in ``FusedGenerator``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr import models
from gansr.errors import ModelError
from gansr.models.fused import ActivationWidths, FusedGenerator, tail_tile_bytes
from gansr.models.rrdbnet import RRDB

pytestmark = pytest.mark.usefixtures("one_thread")


def small(arch: str, **config: object) -> nn.Module:
    torch.manual_seed(0)
    return models.create(arch, num_feat=16, **config).eval()


def swap(seq: nn.Sequential, i: int, j: int) -> None:
    seq[i], seq[j] = seq[j], seq[i]


def swap_named(module: nn.Module, a: str, b: str) -> None:
    first, second = getattr(module, a), getattr(module, b)
    setattr(module, a, second)
    setattr(module, b, first)


def fuse_fails(model: nn.Module, match: str) -> None:
    with pytest.raises(ModelError, match=match) as info:
        model.fuse_for_inference()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"cannot fuse model {model.arch!r} for inference: ")


MUTATIONS: dict[str, tuple[Callable[[], nn.Module], Callable[[nn.Module], None], str]] = {
    "srresnet: block activation swapped": (
        lambda: small("srresnet", num_block=2),
        lambda m: m.body[1].body.__setitem__(2, nn.ReLU()),
        r"_BNResidualBlock\.body\.2 is ReLU, expected PReLU",
    ),
    "srresnet: conv and BatchNorm reordered": (
        lambda: small("srresnet", num_block=2),
        lambda m: swap(m.body[0].body, 0, 1),
        r"_BNResidualBlock\.body\.0 is BatchNorm2d, expected Conv2d",
    ),
    "srresnet: BatchNorm missing": (
        lambda: small("srresnet", num_block=2),
        lambda m: m.body[0].body.__setitem__(4, nn.Identity()),
        r"_BNResidualBlock\.body\.4 is Identity, expected BatchNorm2d",
    ),
    "srresnet: BatchNorm where norm='none'": (
        lambda: small("srresnet", num_block=2, norm="none"),
        lambda m: m.conv_body.__setitem__(1, nn.BatchNorm2d(16)),
        r"_ConvNorm\.1 is BatchNorm2d, expected Identity",
    ),
    "srresnet: layer added to the head": (
        lambda: small("srresnet", num_block=1),
        lambda m: m.conv_first.append(nn.ReLU()),
        r"_ConvPReLU has 3 layers, expected 2",
    ),
    "srresnet: PixelShuffle and PReLU reordered": (
        lambda: small("srresnet", num_block=1),
        lambda m: swap(m.upsample[0], 1, 2),
        r"_UpsampleStage\.2 is PixelShuffle, expected PReLU",
    ),
    "msrresnet: block ReLU swapped": (
        lambda: small("msrresnet", num_block=2),
        lambda m: setattr(m.body[1], "relu", nn.LeakyReLU(0.1)),
        r"ResidualBlockNoBN\.relu is LeakyReLU, expected ReLU",
    ),
    "msrresnet: LeakyReLU swapped": (
        lambda: small("msrresnet", num_block=1),
        lambda m: setattr(m, "lrelu", nn.ReLU()),
        r"MSRResNet\.lrelu is ReLU, expected LeakyReLU",
    ),
    "msrresnet: PixelShuffle changed": (
        lambda: small("msrresnet", num_block=1),
        lambda m: setattr(m, "pixel_shuffle", nn.PixelShuffle(4)),
        r"2 PixelShuffle\(4\) stage\(s\) do not make x4",
    ),
    "rrdbnet: dense-block activation swapped": (
        lambda: small("rrdbnet", num_grow_ch=8, num_block=1),
        lambda m: setattr(m.body[0].rdb2, "lrelu", nn.ReLU()),
        r"ResidualDenseBlock\.lrelu is ReLU, expected LeakyReLU",
    ),
    "rrdbnet: dense-block convolutions reordered": (
        lambda: small("rrdbnet", num_grow_ch=8, num_block=1),
        lambda m: swap_named(m.body[0].rdb1, "conv2", "conv3"),
        r"ResidualDenseBlock\.conv2 maps 32 -> 8 channels, expected 24 -> 8",
    ),
    "rrdbnet: a block replaced": (
        lambda: small("rrdbnet", num_grow_ch=8, num_block=2),
        lambda m: m.body.__setitem__(1, nn.Identity()),
        r"RRDBNet\.body\.1 is Identity, expected RRDB",
    ),
    "rrdbnet: a block of another width": (
        lambda: small("rrdbnet", num_grow_ch=8, num_block=2),
        lambda m: m.body.__setitem__(1, RRDB(16, 4)),
        r"dense blocks of \(num_feat, num_grow_ch\) \[\(16, 4\), \(16, 8\)\], expected 16 features",
    ),
    "compact: PReLU swapped": (
        lambda: small("compact", num_conv=2),
        lambda m: m.body.__setitem__(3, nn.LeakyReLU(0.2)),
        r"Compact\.body\.3 is LeakyReLU, expected PReLU",
    ),
    "compact: conv and PReLU reordered": (
        lambda: small("compact", num_conv=2),
        lambda m: swap(m.body, 2, 3),
        r"Compact\.body\.2 is PReLU, expected Conv2d",
    ),
    "compact: layer added": (
        lambda: small("compact", num_conv=2),
        lambda m: m.body.append(nn.PReLU()),
        r"Compact\.body has 8 layers, expected 7",
    ),
}


@pytest.mark.parametrize("case", list(MUTATIONS))
def test_fusing_a_changed_structure_fails_loudly(case: str) -> None:
    build, mutate, match = MUTATIONS[case]
    model = build()
    assert isinstance(model.fuse_for_inference(), FusedGenerator)  # as built, it fuses
    mutate(model)
    fuse_fails(model, match)


def test_compact_eager_forward_refuses_a_changed_structure_too() -> None:
    # Both forms read Compact.convs(): before, a swapped PReLU was silently skipped by both.
    model = small("compact", num_conv=1)
    model.body[1] = nn.ReLU()
    with pytest.raises(ModelError, match=r"Compact\.body\.1 is ReLU, expected PReLU"):
        model(torch.rand(1, 3, 8, 8))


def test_named_parts_are_the_indexed_layers_and_keep_the_checkpoint_keys() -> None:
    srresnet = small("srresnet", num_block=1)
    block, stage = srresnet.body[0], srresnet.upsample[0]
    assert (block.conv1, block.bn1, block.act, block.conv2, block.bn2) == tuple(block.body)
    assert (stage.conv, stage.shuffle, stage.act) == tuple(stage)
    assert (srresnet.conv_first.conv, srresnet.conv_first.act) == tuple(srresnet.conv_first)
    assert (srresnet.conv_body.conv, srresnet.conv_body.bn) == tuple(srresnet.conv_body)
    assert small("srresnet", num_block=1, norm="none").body[0].bn1 is None
    keys = set(srresnet.state_dict())
    head = ["conv_first.0.weight", "conv_first.1.weight", "body.0.body.1.running_var"]
    for key in [*head, "body.0.body.2.weight", "conv_body.1.weight", "upsample.1.2.weight"]:
        assert key in keys, key
    assert not any(name in key for key in keys for name in ("conv1", "act", "shuffle"))
    rrdb = small("rrdbnet", num_grow_ch=8, num_block=1).body[0]
    assert rrdb.rdbs() == [rrdb.rdb1, rrdb.rdb2, rrdb.rdb3]
    assert rrdb.rdb1.convs() == [getattr(rrdb.rdb1, f"conv{k}") for k in range(1, 6)]


def test_fused_rrdbnet_without_blocks_runs() -> None:
    model = small("rrdbnet", num_grow_ch=8, num_block=0)
    x = torch.rand(1, 3, 9, 11)
    with torch.inference_mode():
        assert (model.fuse_for_inference()(x) - model(x)).abs().max().item() < 1e-5


class _NearestX2(FusedGenerator):
    """A fused form with no formula of its own: only the widths it reports."""

    def _build(self, model: nn.Module) -> ActivationWidths:
        if self.tail_tile < 1:
            raise ValueError("tail_tile must be positive")
        self.tail_halo = 1
        return ActivationWidths(body=10, kept=5, tail=7)

    def _tail(self, feat: Tensor) -> Tensor:
        return F.interpolate(feat.float(), scale_factor=self.scale, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        return self._run_tail(x)


def test_memory_estimates_derive_from_the_reported_widths() -> None:
    source = small("compact", num_conv=0, scale=2)
    net = _NearestX2(source, dtype=torch.bfloat16, tail_tile=8)
    # max(10 maps, 5 kept + the float32 3-channel x2 result) in bf16, plus the input in fp32 + bf16.
    assert net.bytes_per_pixel() == max(10 * 2, 5 * 2 + 3 * 4 * 4) + 3 * (4 + 2)
    assert net.fixed_bytes() == tail_tile_bytes(8, 1, 2, 7, 2)
    x = torch.rand(1, 3, 5, 6)
    assert torch.equal(net(x), F.interpolate(x, scale_factor=2, mode="nearest"))
    with pytest.raises(ModelError, match="^cannot fuse model 'compact' for inference: tail_tile must be"):
        _NearestX2(source, tail_tile=0)
