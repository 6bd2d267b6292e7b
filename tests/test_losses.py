"""Tests of gansr.losses: hand-computed values, gradients, VGG19 plumbing, mixes and config errors."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from scipy import ndimage
from skimage.metrics import structural_similarity
from torch import Tensor, nn

import gansr.losses.perceptual as perceptual_mod
from gansr import metrics
from gansr.degrade import gaussian_blur
from gansr.errors import ConfigError, DownloadError
from gansr.losses import (
    VGG19_LAYERS,
    VGG19_URL,
    AdaptiveMixLoss,
    CharbonnierLoss,
    FeatureMatchingLoss,
    KLLoss,
    L1Loss,
    LSGANLoss,
    MixLoss,
    MixTerm,
    MSELoss,
    MSSSIMLoss,
    PerceptualLoss,
    RaGANLoss,
    SSIMLoss,
    VanillaGANLoss,
    VGG19Features,
    WGANGPLoss,
    build_adversarial,
    build_loss,
    build_mix,
    find_vgg19_weights,
    gradient_penalty,
    kl_divergence,
)


def assert_finite_grad(t: Tensor) -> None:
    assert t.grad is not None, "no gradient reached the input"
    assert torch.isfinite(t.grad).all()
    assert t.grad.abs().sum() > 0


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce(logit: float, target: float) -> float:
    """Binary cross-entropy of a logit against a (soft) target, by hand."""
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def load_rgb(path: Path, box: tuple[int, int, int, int], blur: float = 0.0) -> Tensor:
    """A crop of a real image as (3, H, W) in [0, 1], optionally Gaussian-blurred by Pillow."""
    img = Image.open(path).convert("RGB").crop(box)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


# ----------------------------------------------------------------------------------------- pixel


X = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
Y = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])


def test_pixel_losses_match_hand_computation() -> None:
    assert L1Loss()(X, Y).item() == pytest.approx((1 + 0 + 2 + 3) / 4)
    assert MSELoss()(X, Y).item() == pytest.approx((1 + 0 + 4 + 9) / 4)
    eps = 1e-3
    expected = sum(math.sqrt(d * d + eps * eps) for d in (1, 0, 2, 3)) / 4
    assert CharbonnierLoss()(X, Y).item() == pytest.approx(expected, rel=1e-6)
    # A perfect prediction costs eps (the smoothing constant enters squared under the root).
    assert CharbonnierLoss(eps=0.01)(Y, Y).item() == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize("loss", [L1Loss(), MSELoss(), CharbonnierLoss()], ids=["l1", "mse", "charbonnier"])
def test_pixel_losses_have_finite_gradients(loss: nn.Module) -> None:
    sr = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss(sr, torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))).backward()
    assert_finite_grad(sr)


def test_charbonnier_is_smooth_at_zero() -> None:
    sr = Y.clone().requires_grad_(True)
    CharbonnierLoss()(sr, Y).backward()
    assert torch.equal(sr.grad, torch.zeros_like(sr))


def test_pixel_loss_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        L1Loss()(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_lowpass_l1_sees_shading_and_ignores_fine_texture(set5: Path) -> None:
    """FSSR's frequency separation on a real photo: a pixel-level checkerboard (texture) costs
    almost nothing, a brightness shift (low frequency) costs what the plain L1 charges, and the
    blur is SciPy's Gaussian filter (same sigma, 3-sigma radius, mirrored edges)."""
    pixels = np.asarray(Image.open(set5 / "butterfly.png").convert("RGB"), dtype=np.float32) / 255
    hr = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    rows, cols = torch.arange(hr.shape[-2])[:, None], torch.arange(hr.shape[-1])
    checker = ((rows + cols) % 2) * 0.1 - 0.05
    low = L1Loss(lowpass=1.5)
    assert L1Loss()(hr + checker, hr).item() == pytest.approx(0.05, rel=1e-4)
    assert low(hr + checker, hr).item() < 0.002
    assert low(hr + 0.04, hr).item() == pytest.approx(0.04, rel=1e-3)
    ours = gaussian_blur(hr, 1.5)[0].numpy()  # what L1Loss(lowpass=1.5) blurs with
    theirs = np.stack(
        [ndimage.gaussian_filter(c, 1.5, mode="mirror", truncate=3.0) for c in pixels.transpose(2, 0, 1)]
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    with pytest.raises(ConfigError, match="lowpass"):
        build_loss({"type": "l1", "lowpass": -1.0})


# ------------------------------------------------------------------------------------ perceptual

# torchvision vgg19().features: (index, out_channels, in_channels) of every Conv2d.
TORCHVISION_CONVS = [
    (0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256),
    (14, 256, 256), (16, 256, 256), (19, 512, 256), (21, 512, 512), (23, 512, 512), (25, 512, 512),
    (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512),
]  # fmt: skip


@pytest.fixture(scope="module")
def random_vgg_loss() -> PerceptualLoss:
    return PerceptualLoss(layers=["conv5_4", "relu5_4"], pretrained=False, seed=0)


def test_vgg19_layout_matches_torchvision() -> None:
    assert len(VGG19_LAYERS) == 37
    assert VGG19_LAYERS[34] == "conv5_4" and VGG19_LAYERS[35] == "relu5_4" and VGG19_LAYERS[36] == "pool5"
    assert VGG19_LAYERS[7] == "conv2_2" and VGG19_LAYERS[4] == "pool1"
    vgg = VGG19Features(["pool5"], None, generator=torch.Generator().manual_seed(0))
    convs = [
        (i, m.out_channels, m.in_channels) for i, m in enumerate(vgg.features) if isinstance(m, nn.Conv2d)
    ]
    assert convs == TORCHVISION_CONVS
    pools = [i for i, m in enumerate(vgg.features) if isinstance(m, nn.MaxPool2d)]
    assert pools == [4, 9, 18, 27, 36]


def test_only_layers_up_to_the_selected_one_are_built(random_vgg_loss: PerceptualLoss) -> None:
    assert len(random_vgg_loss.vgg.features) == 36  # up to relu5_4, no pool5
    small = PerceptualLoss(layers="relu2_2", pretrained=False)
    assert len(small.vgg.features) == 9
    assert sum(b.numel() for b in small.vgg.buffers()) == 3 * 64 * 9 + 64 + 64 * 64 * 9 + 64 + (
        64 * 128 * 9 + 128 + 128 * 128 * 9 + 128
    )


def test_conv5_4_shape_and_pre_versus_post_activation(random_vgg_loss: PerceptualLoss) -> None:
    img = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    feats = random_vgg_loss.features(img)
    pre, post = feats["conv5_4"], feats["relu5_4"]
    assert pre.shape == (2, 512, 48 // 16, 64 // 16)
    assert (pre < 0).any(), "pre-activation features must keep negative values"
    assert (post >= 0).all()
    assert torch.equal(post, torch.relu(pre))


def test_vgg_is_frozen_and_out_of_the_owners_state_dict(random_vgg_loss: PerceptualLoss) -> None:
    owner = nn.Module()
    owner.generator = nn.Conv2d(3, 3, 3)
    owner.loss = random_vgg_loss
    keys = list(owner.state_dict())
    assert keys == ["generator.weight", "generator.bias"]
    assert list(random_vgg_loss.parameters()) == []
    assert all(not b.requires_grad for b in random_vgg_loss.buffers())
    random_vgg_loss.train()
    assert not random_vgg_loss.vgg.training
    # Loading the owner's checkpoint needs no VGG keys (strict load succeeds).
    owner.load_state_dict(owner.state_dict(), strict=True)


def test_perceptual_input_normalization(random_vgg_loss: PerceptualLoss) -> None:
    seen: list[Tensor] = []
    handle = random_vgg_loss.vgg.features[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        mean_colour = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
        random_vgg_loss.features(mean_colour)
        assert torch.allclose(seen[0], torch.zeros(1, 3, 16, 16), atol=1e-6)
        gray = torch.full((1, 1, 16, 16), 0.7)
        random_vgg_loss.features(gray)
        expected = (0.7 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
        assert torch.allclose(seen[1][0, :, 5, 5], expected, atol=1e-6)
    finally:
        handle.remove()


def test_perceptual_loss_value_and_gradient(random_vgg_loss: PerceptualLoss) -> None:
    gen = torch.Generator().manual_seed(4)
    hr = torch.rand(1, 3, 32, 32, generator=gen)
    sr = (hr + 0.1 * torch.rand(1, 3, 32, 32, generator=gen)).requires_grad_(True)
    loss = random_vgg_loss(sr, hr)
    with torch.no_grad():
        f_sr, f_hr = random_vgg_loss.features(sr), random_vgg_loss.features(hr)
    expected = sum(F.l1_loss(f_sr[k], f_hr[k]) for k in ("conv5_4", "relu5_4"))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() > 0
    loss.backward()
    assert_finite_grad(sr)
    assert random_vgg_loss(hr, hr).item() == 0.0


def _torchvision_state(upto: int, seed: int = 0) -> dict[str, Tensor]:
    """A torchvision-format VGG19 state dict with random convs up to features[upto] + classifier keys."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for index, out_c, in_c in TORCHVISION_CONVS:
        if index <= upto:
            state[f"features.{index}.weight"] = torch.randn(out_c, in_c, 3, 3, generator=gen) * 0.1
            state[f"features.{index}.bias"] = torch.randn(out_c, generator=gen) * 0.1
    state["classifier.0.weight"] = torch.zeros(4, 4)  # ignored
    return state


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_loads_a_torchvision_format_file(tmp_path: Path, legacy: bool) -> None:
    state = _torchvision_state(upto=7)
    path = tmp_path / "vgg.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    loss = PerceptualLoss(layers="conv2_2", weights=str(path))
    assert torch.equal(loss.vgg.features[5].weight, state["features.5.weight"])
    # The loaded stack computes conv1_1 relu conv1_2 relu pool conv2_1 relu conv2_2.
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    h = (x - loss.mean) / loss.std
    for i in (0, 2):
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
    h = F.max_pool2d(h, 2)
    h = F.relu(F.conv2d(h, state["features.5.weight"], state["features.5.bias"], padding=1))
    h = F.conv2d(h, state["features.7.weight"], state["features.7.bias"], padding=1)
    assert torch.allclose(loss.features(x)["conv2_2"], h, atol=1e-5)


def test_weight_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="option 'weights': no such file"):
        PerceptualLoss(weights=str(tmp_path / "absent.pth"))
    partial = tmp_path / "partial.pth"
    torch.save(_torchvision_state(upto=2), partial)
    with pytest.raises(ConfigError, match=r"missing features\.5\.weight"):
        PerceptualLoss(layers="conv2_1", weights=str(partial))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        PerceptualLoss(weights=str(garbage))


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANSR_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return cache


def test_missing_weights_raise_one_line_config_error(
    empty_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gansr.data.download

    def offline(url: str, dest: Path, **kwargs: object) -> Path:
        raise DownloadError(f"cannot download {url}: network is unreachable")

    monkeypatch.setattr(gansr.data.download, "download", offline)
    assert find_vgg19_weights() is None
    with pytest.raises(ConfigError) as info:
        build_loss({"type": "perceptual"})
    message = str(info.value)
    assert "\n" not in message
    assert VGG19_URL in message
    assert str(empty_caches / "weights" / "vgg19-dcbb9e9d.pth") in message
    assert "'weights" in message


def test_cached_weights_are_found_without_download(
    empty_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gansr.data.download

    def must_not_download(*args: object, **kwargs: object) -> Path:
        raise AssertionError("downloaded although the weights are cached")

    monkeypatch.setattr(gansr.data.download, "download", must_not_download)
    cached = empty_caches / "weights" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(_torchvision_state(upto=2), cached)
    assert find_vgg19_weights() == cached
    loss = PerceptualLoss(layers="relu1_2")
    assert torch.equal(loss.vgg.features[2].bias, _torchvision_state(upto=2)["features.2.bias"])


def test_download_checks_the_sha256_prefix(
    empty_caches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gansr.data.download

    served = tmp_path / "served.pth"
    torch.save(_torchvision_state(upto=2), served)

    def fake_download(url: str, dest: Path, **kwargs: object) -> Path:
        assert url == VGG19_URL
        dest.write_bytes(served.read_bytes())
        return dest

    monkeypatch.setattr(gansr.data.download, "download", fake_download)
    # The served file's hash does not start with dcbb9e9d: rejected and removed.
    with pytest.raises(ConfigError, match="sha256"):
        PerceptualLoss(layers="relu1_2")
    assert find_vgg19_weights() is None
    # Were its hash prefix the expected one, the same download would be accepted and cached.
    prefix = hashlib.sha256(served.read_bytes()).hexdigest()[:8]
    monkeypatch.setattr(perceptual_mod, "VGG19_SHA256_PREFIX", prefix)
    PerceptualLoss(layers="relu1_2")
    assert find_vgg19_weights() == empty_caches / "weights" / "vgg19-dcbb9e9d.pth"


# ----------------------------------------------------------------------------- feature matching


def test_feature_matching_values_and_detached_real() -> None:
    fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    real = torch.tensor([[0.0, 2.0], [5.0, 4.0]], requires_grad=True)
    assert FeatureMatchingLoss()(fake, real).item() == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert FeatureMatchingLoss(criterion="mse")(fake, real).item() == pytest.approx((1 + 4) / 4)
    # A list of layers is averaged per layer: (1.0 + 0.75) / 2.
    second = torch.ones(3)
    loss = FeatureMatchingLoss()([fake, second * 2], [real, second])
    assert loss.item() == pytest.approx((0.75 + 1.0) / 2)
    loss.backward()
    assert_finite_grad(fake)
    assert real.grad is None


def test_feature_matching_on_a_feature_map_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    fake = torch.rand(4, 64, 7, 7, generator=gen, requires_grad=True)
    real = torch.rand(4, 64, 7, 7, generator=gen)
    loss = FeatureMatchingLoss()(fake, real)
    assert loss.item() == pytest.approx((fake - real).abs().mean().item(), rel=1e-6)
    loss.backward()
    assert_finite_grad(fake)
    with pytest.raises(ValueError, match="same number"):
        FeatureMatchingLoss()([fake], [real, real])


# ---------------------------------------------------------------------------------- adversarial

FAKE = [0.0, 2.0]
REAL = [1.0, -1.0]


def test_vanilla_gan_losses() -> None:
    fake, real = torch.tensor(FAKE), torch.tensor(REAL)
    loss = VanillaGANLoss()
    assert loss.generator_loss(fake).item() == pytest.approx((softplus(-0.0) + softplus(-2.0)) / 2)
    d = (bce(1, 1) + bce(-1, 1)) / 2 + (bce(0, 0) + bce(2, 0)) / 2
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    smooth = VanillaGANLoss(label_smoothing=0.1)
    d_smooth = (bce(1, 0.9) + bce(-1, 0.9)) / 2 + (bce(0, 0) + bce(2, 0)) / 2
    assert smooth.discriminator_loss(real, fake).item() == pytest.approx(d_smooth, rel=1e-6)
    assert smooth.generator_loss(fake).item() == pytest.approx(loss.generator_loss(fake).item())


def test_lsgan_losses() -> None:
    fake, real = torch.tensor(FAKE), torch.tensor(REAL)
    loss = LSGANLoss()
    assert loss.generator_loss(fake).item() == pytest.approx(((0 - 1) ** 2 + (2 - 1) ** 2) / 2)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx((0 + 4) / 2 + (0 + 4) / 2)
    custom = LSGANLoss(real_target=1.0, fake_target=-1.0, generator_target=0.0)
    assert custom.generator_loss(fake).item() == pytest.approx((0 + 4) / 2)
    assert custom.discriminator_loss(real, fake).item() == pytest.approx((0 + 4) / 2 + (1 + 9) / 2)


def test_wgan_gp_losses() -> None:
    fake, real = torch.tensor(FAKE), torch.tensor(REAL)
    assert WGANGPLoss().generator_loss(fake).item() == pytest.approx(-1.0)
    assert WGANGPLoss().discriminator_loss(real, fake).item() == pytest.approx(1.0 - 0.0)
    drift = WGANGPLoss(drift=0.001)
    assert drift.discriminator_loss(real, fake).item() == pytest.approx(1.0 + 0.001 * 1.0)
    assert WGANGPLoss().n_critic == 5 and VanillaGANLoss().n_critic == 1
    assert build_adversarial({"type": "wgan_gp", "n_critic": 3}).n_critic == 3


class LinearCritic(nn.Module):
    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.weight


def test_gradient_penalty_zero_for_unit_gradient_and_positive_otherwise() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(4, 1, 3, 3, generator=gen)
    fake = torch.rand(4, 1, 3, 3, generator=gen)
    direction = torch.randn(9, generator=gen)
    unit = LinearCritic(direction / direction.norm())
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    double = LinearCritic(2 * direction / direction.norm())
    penalty = WGANGPLoss(lambda_gp=10.0).gradient_penalty(double, real, fake)
    assert penalty.item() == pytest.approx(10.0 * (2 - 1) ** 2, rel=1e-5)
    # create_graph: the penalty's gradient reaches the critic:
    # d/dw lambda (|w| - 1)^2 = 2 lambda (|w| - 1) w / |w|.
    penalty.backward()
    expected = 2 * 10.0 * (2 - 1) * double.weight.detach() / 2.0
    assert torch.allclose(double.weight.grad, expected, atol=1e-4)


def test_gradient_penalty_is_reproducible_with_a_generator() -> None:
    critic = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2, 1))
    real, fake = torch.rand(3, 1, 3, 3), torch.rand(3, 1, 3, 3)
    a = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    assert a.item() == b.item() and a.item() > 0


def test_ragan_losses_hand_values_and_symmetry() -> None:
    fake, real = torch.tensor(FAKE), torch.tensor(REAL)
    loss = RaGANLoss()
    mean_fake, mean_real = 1.0, 0.0
    g = 0.5 * (
        (bce(1 - mean_fake, 0) + bce(-1 - mean_fake, 0)) / 2
        + (bce(0 - mean_real, 1) + bce(2 - mean_real, 1)) / 2
    )
    d = 0.5 * (
        (bce(1 - mean_fake, 1) + bce(-1 - mean_fake, 1)) / 2
        + (bce(0 - mean_real, 0) + bce(2 - mean_real, 0)) / 2
    )
    assert loss.generator_loss(fake, real).item() == pytest.approx(g, rel=1e-6)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    # Mirror images: G(fake, real) = D(real=fake, fake=real).
    assert loss.generator_loss(fake, real).item() == pytest.approx(loss.discriminator_loss(fake, real).item())
    # Indistinguishable real and fake: both losses are log 2.
    same = torch.tensor([0.3, 0.3, 0.3])
    assert loss.generator_loss(same, same).item() == pytest.approx(math.log(2))
    assert loss.discriminator_loss(same, same).item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="real_logits"):
        loss.generator_loss(fake)


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "wgan_gp", "ragan"])
def test_adversarial_gradients(kind: str) -> None:
    loss = build_adversarial({"type": kind})
    gen = torch.Generator().manual_seed(1)
    fake = torch.randn(4, 1, generator=gen, requires_grad=True)
    real = torch.randn(4, 1, generator=gen, requires_grad=True)
    loss.generator_loss(fake, real).backward()
    assert_finite_grad(fake)
    assert real.grad is None  # the generator step never updates through D's real outputs
    fake.grad = None
    loss.discriminator_loss(real, fake).backward()
    assert_finite_grad(fake)
    assert_finite_grad(real)
    assert torch.equal(loss(fake, real), loss.generator_loss(fake, real))


# ----------------------------------------------------------------------------------------- SSIM


def test_ssim_losses_zero_for_identical_images() -> None:
    img = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    assert SSIMLoss()(img, img).item() == pytest.approx(0.0, abs=1e-6)
    assert MSSSIMLoss(levels=3)(img, img).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_loss_matches_the_metric_on_real_images(set14: Path) -> None:
    hr = load_rgb(set14 / "baboon.png", (0, 0, 192, 192))
    sr = load_rgb(set14 / "baboon.png", (0, 0, 192, 192), blur=1.5)
    # Y channel: exactly 1 - the evaluation metric.
    loss_y = SSIMLoss(y_channel=True)(sr[None], hr[None]).item()
    assert loss_y == pytest.approx(1 - metrics.ssim(sr, hr), abs=1e-5)
    assert 0.1 < loss_y < 0.9
    # RGB: 1 - scikit-image's SSIM with the same Gaussian window (independent implementation).
    reference = structural_similarity(
        hr.permute(1, 2, 0).double().numpy(),
        sr.permute(1, 2, 0).double().numpy(),
        channel_axis=2,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert SSIMLoss()(sr[None], hr[None]).item() == pytest.approx(1 - reference, abs=1e-5)
    # MS-SSIM: 1 - the evaluation metric.
    assert MSSSIMLoss(y_channel=True)(sr[None], hr[None]).item() == pytest.approx(
        1 - metrics.ms_ssim(sr, hr), abs=1e-5
    )


def test_ms_ssim_levels_and_gradients() -> None:
    gen = torch.Generator().manual_seed(2)
    hr = torch.rand(2, 3, 48, 48, generator=gen)
    sr = (hr + 0.1 * torch.randn(2, 3, 48, 48, generator=gen)).clamp(0, 1).requires_grad_(True)
    # One scale with its weight renormalized to 1 is plain SSIM.
    assert MSSSIMLoss(levels=1)(sr, hr).item() == pytest.approx(SSIMLoss()(sr, hr).item(), rel=1e-6)
    loss = MSSSIMLoss(levels=3)(sr, hr)
    loss.backward()
    assert_finite_grad(sr)
    sr.grad = None
    SSIMLoss(y_channel=True)(sr, hr).backward()
    assert_finite_grad(sr)
    with pytest.raises(ConfigError, match="'levels'"):
        MSSSIMLoss(levels=6)


# ------------------------------------------------------------------------------------------- KL


def test_kl_divergence_hand_value_and_reference() -> None:
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2)], [0.0, 0.0]])
    # Per sample -0.5 * sum(1 + logvar - mu^2 - exp(logvar)): (2 - ln 2) / 2 and 4 / 2; batch mean.
    expected = ((2 - math.log(2)) / 2 + 4 / 2) / 2
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    posterior = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    reference = torch.distributions.kl_divergence(posterior, prior).sum(dim=1).mean()
    assert KLLoss()(mu, logvar).item() == pytest.approx(reference.item(), rel=1e-6)
    assert kl_divergence(torch.zeros(3, 4, 2, 2), torch.zeros(3, 4, 2, 2)).item() == 0.0


def test_kl_gradients() -> None:
    mu = torch.randn(3, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    logvar = torch.randn(3, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    KLLoss()(mu, logvar).backward()
    assert_finite_grad(mu)
    assert_finite_grad(logvar)
    assert torch.allclose(mu.grad, mu.detach() / 3)  # d/dmu of 0.5 * mean_n sum mu^2


# ------------------------------------------------------------------------------------------ mix


def test_mix_weighted_sum_and_unweighted_terms() -> None:
    mix = build_mix([{"type": "l1", "weight": 2.0}, {"type": "mse", "weight": 0.5, "name": "pixel_mse"}])
    sr = X.clone().requires_grad_(True)
    total, terms = mix(sr, Y)
    assert set(terms) == {"l1", "pixel_mse"}
    assert terms["l1"].item() == pytest.approx(1.5) and terms["pixel_mse"].item() == pytest.approx(3.5)
    assert not terms["l1"].requires_grad
    assert total.item() == pytest.approx(2.0 * 1.5 + 0.5 * 3.5)
    total.backward()
    assert_finite_grad(sr)
    assert mix.current_weights() == {"l1": 2.0, "pixel_mse": 0.5}


def test_mix_routes_keyword_inputs() -> None:
    mix = MixLoss(
        [
            {"type": "l1"},
            {"type": "ragan", "weight": 0.005},
            {"type": "feature_matching", "weight": 0.1},
            {"type": "kl", "weight": 0.01},
        ]
    )
    assert mix.required_inputs == {"sr", "hr", "fake_logits", "real_logits", "fake_features", "real_features",
                                   "mu", "logvar"}  # fmt: skip
    assert isinstance(mix.adversarial, RaGANLoss)
    gen = torch.Generator().manual_seed(0)
    inputs = {
        "fake_logits": torch.randn(4, 1, generator=gen),
        "real_logits": torch.randn(4, 1, generator=gen),
        "fake_features": torch.randn(4, 8, generator=gen),
        "real_features": torch.randn(4, 8, generator=gen),
        "mu": torch.randn(4, 3, generator=gen),
        "logvar": torch.randn(4, 3, generator=gen),
    }
    total, terms = mix(X, Y, unused_extra=torch.zeros(1), **inputs)
    expected = {
        "l1": 1.5,
        "ragan": RaGANLoss()(inputs["fake_logits"], inputs["real_logits"]).item(),
        "feature_matching": FeatureMatchingLoss()(inputs["fake_features"], inputs["real_features"]).item(),
        "kl": kl_divergence(inputs["mu"], inputs["logvar"]).item(),
    }
    assert {k: v.item() for k, v in terms.items()} == pytest.approx(expected)
    weights = {"l1": 1.0, "ragan": 0.005, "feature_matching": 0.1, "kl": 0.01}
    assert total.item() == pytest.approx(sum(weights[k] * expected[k] for k in expected), rel=1e-6)
    del inputs["logvar"]
    with pytest.raises(ConfigError, match="'kl' needs logvar"):
        mix(X, Y, **inputs)


def test_mix_accepts_python_terms_and_keeps_vgg_out_of_its_state() -> None:
    mix = MixLoss(
        [
            MixTerm("percep", PerceptualLoss(layers="relu1_2", pretrained=False), 0.5),
            {"type": "charbonnier", "eps": "1e-3"},  # PyYAML reads 1e-3 as a string
        ]
    )
    assert mix.state_dict() == {}
    total, terms = mix(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert total.item() == pytest.approx(0.5 * terms["percep"].item() + terms["charbonnier"].item(), rel=1e-6)


class SettableLoss(nn.Module):
    """A synthetic term whose value is set from outside (consumes nothing but sr, hr)."""

    def __init__(self) -> None:
        super().__init__()
        self.value = 1.0

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return (sr * 0).sum() + self.value


def _adaptive(**options: object) -> tuple[AdaptiveMixLoss, SettableLoss, SettableLoss]:
    a, b = SettableLoss(), SettableLoss()
    return AdaptiveMixLoss([MixTerm("a", a, 1.0), MixTerm("b", b, 1.0)], **options), a, b


def _shares(mix: AdaptiveMixLoss, values: dict[str, float]) -> dict[str, float]:
    weights = mix.current_weights()
    weighted = {k: weights[k] * abs(v) for k, v in values.items()}
    return {k: v / sum(weighted.values()) for k, v in weighted.items()}


def test_adaptive_mix_drives_shares_to_explicit_targets() -> None:
    mix, a, b = _adaptive(targets={"a": 3, "b": 1}, momentum=0.9)
    sr = torch.zeros(1, 1, 2, 2)
    for step in range(300):
        # a falls from 100 to 1 while b grows from 1 to 5: fixed weights would end at a share of 1/6.
        a.value = 100.0 * 0.01 ** min(step / 150, 1.0)
        b.value = 1.0 + 4.0 * min(step / 150, 1.0)
        mix(sr, sr)
    shares = _shares(mix, {"a": a.value, "b": b.value})
    assert shares["a"] == pytest.approx(0.75, abs=1e-3)
    assert mix.ema_shares()["a"] == pytest.approx(0.75, abs=1e-3)
    total, _ = mix(sr, sr)
    # The weights only rebalance: the total (101 at the first step) follows the share-weighted
    # geometric mean of the terms' changes (a: x0.01, b: x5), not the fixed-weight sum (1 + 5).
    assert total.item() == pytest.approx(101.0 * 0.01**0.75 * 5**0.25, rel=0.05)


def test_adaptive_mix_default_targets_keep_the_initial_shares() -> None:
    mix, a, b = _adaptive(momentum=0.5)
    sr = torch.zeros(1, 1, 2, 2)
    a.value, b.value = 3.0, 1.0
    mix(sr, sr)
    assert mix.current_weights() == pytest.approx({"a": 1.0, "b": 1.0})
    for _ in range(60):
        a.value, b.value = 0.3, 2.0  # a shrinks 10x, b doubles
        mix(sr, sr)
    assert _shares(mix, {"a": 0.3, "b": 2.0}) == pytest.approx({"a": 0.75, "b": 0.25}, abs=1e-6)
    # Eval mode uses the weights without updating them.
    mix.eval()
    before = mix.state_dict()
    a.value = 1000.0
    mix(sr, sr)
    assert all(torch.equal(before[k], v) for k, v in mix.state_dict().items())


def test_adaptive_mix_clamps_and_skips_non_finite_steps() -> None:
    mix, a, b = _adaptive(targets={"a": 0.5, "b": 0.5}, w_max=10.0, momentum=0.0)
    sr = torch.zeros(1, 1, 2, 2)
    a.value, b.value = 1.0, 1e-6
    mix(sr, sr)
    assert mix.current_weights()["b"] == 10.0
    state = {k: v.clone() for k, v in mix.state_dict().items()}
    a.value = math.nan
    total, _ = mix(sr, sr)
    assert math.isnan(total.item())
    assert all(torch.equal(state[k], v) for k, v in mix.state_dict().items())


def test_adaptive_mix_state_dict_round_trip() -> None:
    def run(mix: AdaptiveMixLoss, a: SettableLoss, b: SettableLoss, steps: range) -> list[float]:
        totals = []
        for step in steps:
            a.value, b.value = 10.0 / (1 + step), 1.0 + 0.1 * step
            totals.append(mix(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))[0].item())
        return totals

    first, a1, b1 = _adaptive(momentum=0.8)
    run(first, a1, b1, range(10))
    state = first.state_dict()
    assert {"weights", "ema_terms", "ema_total", "target_shares", "initialized", "steps"} <= set(state)
    assert int(state["steps"]) == 10
    resumed, a2, b2 = _adaptive(momentum=0.8)
    resumed.load_state_dict(state)
    assert run(resumed, a2, b2, range(10, 20)) == run(first, a1, b1, range(10, 20))
    assert resumed.current_weights() == first.current_weights()


def test_build_mix_adaptive_from_config() -> None:
    mix = build_mix(
        {
            "terms": [{"type": "l1"}, {"type": "mse"}],
            "adaptive": True,
            "momentum": 0.9,
            "targets": {"l1": 1, "mse": 1},
        }
    )
    assert isinstance(mix, AdaptiveMixLoss) and mix.momentum == 0.9
    assert not isinstance(build_mix({"terms": [{"type": "l1"}]}), AdaptiveMixLoss)


# -------------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("cfg", "pattern"),
    [
        ({"type": "l3"}, "unknown loss type 'l3'"),
        ({"weight": 1.0}, "missing key 'type'"),
        ({"type": "l1", "wieght": 1.0}, "unknown option 'wieght'"),
        ({"type": "charbonnier", "eps": "small"}, "option 'eps' must be a number"),
        ({"type": "charbonnier", "eps": -1.0}, "option 'eps' must be in"),
        ({"type": "l1", "weight": -2}, "option 'weight' must be in"),
        ({"type": "l1", "weight": True}, "option 'weight' must be a number"),
        ({"type": "perceptual", "criterion": "l2", "pretrained": False}, "option 'criterion' must be one of"),
        ({"type": "perceptual", "layers": "conv6_1", "pretrained": False}, "unknown VGG19 layer 'conv6_1'"),
        ({"type": "perceptual", "layers": 5, "pretrained": False}, "option 'layers' must be"),
        ({"type": "vanilla", "label_smoothing": 1.0}, "option 'label_smoothing' must be in"),
        ({"type": "wgan_gp", "n_critic": 0}, "option 'n_critic'"),
        ({"type": "ssim", "window_size": 10}, "option 'window_size'"),
        ({"type": "ragan", "lambda_gp": 10.0}, "unknown option 'lambda_gp'"),
    ],
)
def test_build_loss_config_errors_name_the_key(cfg: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        build_loss(cfg)
    assert "\n" not in str(info.value)


def test_mix_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"losses\[1\]: duplicate loss term name 'l1'"):
        build_mix([{"type": "l1"}, {"type": "l1"}])
    with pytest.raises(ConfigError, match=r"losses\[0\] 'l1': unknown option 'epsilon'"):
        build_mix([{"type": "l1", "epsilon": 1}])
    with pytest.raises(ConfigError, match="non-empty list"):
        build_mix([])
    with pytest.raises(ConfigError, match="unknown option 'momentum'"):
        build_mix({"terms": [{"type": "l1"}], "momentum": 0.9})
    with pytest.raises(ConfigError, match="unknown term 'l2'"):
        build_mix({"terms": [{"type": "l1"}], "adaptive": True, "targets": {"l2": 1.0}})
    with pytest.raises(ConfigError, match="'momentum' must be in"):
        build_mix({"terms": [{"type": "l1"}], "adaptive": True, "momentum": 1.0})
    with pytest.raises(ConfigError, match="'type' must be one of"):
        build_adversarial({"type": "l1"})
