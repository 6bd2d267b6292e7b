"""Perceptual (VGG19 feature) loss, with the VGG19 ``features`` stack built here.

torchvision is not a dependency, so :class:`VGG19Features` rebuilds ``torchvision.models.vgg19()
.features`` module for module: index ``i`` here is ``features[i]`` there, which is what lets the
torchvision weight file ``vgg19-dcbb9e9d.pth`` (keys ``features.{i}.weight`` / ``.bias``) load
unchanged. Layers are named after the paper's blocks::

    index  0 conv1_1   1 relu1_1   2 conv1_2   3 relu1_2   4 pool1
           5 conv2_1 ...           9 pool2
          10 conv3_1 ... 16 conv3_4 17 relu3_4 18 pool3
          19 conv4_1 ... 25 conv4_4 26 relu4_4 27 pool4
          28 conv5_1 ... 34 conv5_4 35 relu5_4 36 pool5

``convB_I`` is the I-th convolution of block B *before* its ReLU (pre-activation), ``reluB_I`` the
same feature map after it, ``poolB`` the max-pool closing block B. Choosing ``conv`` or ``relu`` is
how pre- or post-activation features are selected. SRGAN's "VGG54" is the 4th convolution of the
5th block; ESRGAN showed the pre-activation ``conv5_4`` (the default here) keeps more information
than the sparse post-ReLU ``relu5_4``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansr.errors import ConfigError, DownloadError
from gansr.losses._options import check_choice, check_range
from gansr.losses.base import Loss, check_same_shape

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_FILENAME",
    "VGG19_LAYERS",
    "VGG19_SHA256_PREFIX",
    "VGG19_URL",
    "PerceptualLoss",
    "VGG19Features",
    "find_vgg19_weights",
    "vgg19_cache_path",
]

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
# torchvision's convention: the file name carries the first 8 hex digits of the file's sha256.
VGG19_SHA256_PREFIX = "dcbb9e9d"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's "E" configuration: output channels of each 3x3 conv, "M" a 2x2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    block, conv = 1, 0
    for item in _VGG19_CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return tuple(names)


def _vgg19_modules(count: int) -> list[nn.Module]:
    """The first ``count`` modules of torchvision's ``vgg19().features`` (37 in all)."""
    modules: list[nn.Module] = []
    in_channels = 3
    for item in _VGG19_CFG:
        if len(modules) >= count:
            break
        if item == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            modules.append(nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1))
            # Not in-place (torchvision's is): the pre-activation output may be a returned feature.
            modules.append(nn.ReLU(inplace=False))
            in_channels = int(item)
    return modules[:count]


VGG19_LAYERS: tuple[str, ...] = _layer_names()
"""Names of ``torchvision vgg19().features[i]`` for ``i = 0..36`` (``conv1_1`` ... ``pool5``)."""

_LAYER_INDEX = {name: index for index, name in enumerate(VGG19_LAYERS)}


def _layer_index(name: str, owner: str) -> int:
    if name not in _LAYER_INDEX:
        raise ConfigError(
            f"{owner}: unknown VGG19 layer {name!r} (layers are convB_I / reluB_I for blocks 1-5, "
            "e.g. conv5_4, relu2_2, and pool1..pool5)"
        )
    return _LAYER_INDEX[name]


def vgg19_cache_path() -> Path:
    """Where the VGG19 weights are downloaded to: ``<gansr cache>/weights/vgg19-dcbb9e9d.pth``."""
    from gansr.data.download import cache_dir

    return cache_dir() / "weights" / VGG19_FILENAME


def find_vgg19_weights() -> Path | None:
    """Return a local copy of the torchvision VGG19 weights, or None; never downloads.

    Looks in the gansr cache (:func:`vgg19_cache_path`, i.e. ``$GANSR_CACHE`` or ``~/.cache/gansr``)
    and then torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where torchvision
    keeps the same file.
    """
    candidates = [vgg19_cache_path(), Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME]
    for path in candidates:
        if path.is_file():
            return path
    return None


def _sha256_prefix_ok(path: Path) -> bool:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest().startswith(VGG19_SHA256_PREFIX)


def _download_vgg19(progress: bool) -> Path:
    """Download the weights into the cache and check torchvision's sha256 prefix."""
    from gansr.data.download import download

    dest = vgg19_cache_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    path = download(VGG19_URL, dest, progress=progress)
    if not _sha256_prefix_ok(path):
        path.unlink(missing_ok=True)
        raise DownloadError(f"{VGG19_URL}: sha256 does not start with {VGG19_SHA256_PREFIX} (file removed)")
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    """``torch.load`` with ``weights_only=True``; memory-mapped where the file format allows."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            # The 2017 torchvision files use the legacy (non-zip) format, which cannot be mmapped.
            if "mmap" not in str(exc):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip and I/O errors all mean "not a usable weight file"
        raise ConfigError(f"VGG19 weights {path}: cannot be loaded ({_first_line(exc)})") from exc
    if not isinstance(state, Mapping):
        raise ConfigError(f"VGG19 weights {path}: expected a state dict, got {type(state).__name__}")
    return state


class VGG19Features(nn.Module):
    """``torchvision.models.vgg19().features`` up to the deepest requested layer, frozen.

    Only ``features[0..k]`` for the deepest requested layer ``k`` is built (``conv5_4`` needs 35 of
    the 37 modules and none of the 120M classifier parameters). The convolution weights are
    turned into *non-persistent buffers*: they are not parameters (no optimizer sees them, nothing
    computes their gradients), not part of ``state_dict()`` of this module or any module that owns
    it (training checkpoints stay free of 80 MB of VGG), yet move with ``.to()`` / ``.half()``.

    Input is expected already ImageNet-normalized (see :class:`PerceptualLoss`).

    Args:
        layers: names from :data:`VGG19_LAYERS` whose outputs ``forward`` returns.
        state_dict: torchvision-format weights (``features.{i}.weight`` / ``.bias``; other keys,
            e.g. the classifier's, are ignored), or None for torchvision's random initialization
            (Kaiming normal, fan-out, zero biases) drawn from ``generator``, for tests.
        generator: random source for the random initialization.
        source: where ``state_dict`` came from, for error messages.
    """

    def __init__(
        self,
        layers: Sequence[str],
        state_dict: Mapping[str, Tensor] | None = None,
        *,
        generator: torch.Generator | None = None,
        source: str = "state dict",
    ) -> None:
        super().__init__()
        if not layers:
            raise ConfigError("VGG19 features: at least one layer is needed")
        self.layers = tuple(layers)
        self._wanted = {_layer_index(name, "VGG19 features"): name for name in self.layers}
        last = max(self._wanted)
        self.features = nn.Sequential(*_vgg19_modules(last + 1))
        if state_dict is None:
            self._init_random(generator)
        else:
            self._load(state_dict, source)
        self._freeze()
        self.eval()

    def _init_random(self, generator: torch.Generator | None) -> None:
        with torch.no_grad():
            for module in self.features:
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(
                        module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                    )
                    nn.init.zeros_(module.bias)

    def _load(self, state_dict: Mapping[str, Tensor], source: str) -> None:
        with torch.no_grad():
            for index, module in enumerate(self.features):
                if not isinstance(module, nn.Conv2d):
                    continue
                for attr in ("weight", "bias"):
                    key = f"features.{index}.{attr}"
                    target = getattr(module, attr)
                    value = state_dict.get(key)
                    if not isinstance(value, Tensor):
                        raise ConfigError(
                            f"VGG19 weights {source}: missing {key} (not a torchvision vgg19 file)"
                        )
                    if value.shape != target.shape:
                        raise ConfigError(
                            f"VGG19 weights {source}: {key} has shape {tuple(value.shape)}, "
                            f"expected {tuple(target.shape)} (not a torchvision vgg19 file)"
                        )
                    target.copy_(value)

    def _freeze(self) -> None:
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                weight, bias = module.weight.detach(), module.bias.detach()
                del module.weight, module.bias
                module.register_buffer("weight", weight, persistent=False)
                module.register_buffer("bias", bias, persistent=False)

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode: the feature extractor is fixed whatever its owner does."""
        return super().train(False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Return ``{layer name: feature map}`` for the requested layers of ``x`` ``(N, 3, H, W)``."""
        out: dict[str, Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self._wanted:
                out[self._wanted[index]] = x
        return out


class PerceptualLoss(Loss):
    """Distance between VGG19 feature maps of ``sr`` and ``hr`` (Johnson et al.; SRGAN; ESRGAN).

    ``loss = sum_l w_l * criterion(vgg_l(norm(sr)), vgg_l(norm(hr)))`` with ``criterion`` the mean
    absolute or squared difference over all feature elements. Inputs are ``(N, C, H, W)`` in
    ``[0, 1]``; ``norm`` applies ImageNet normalization (mean 0.485, 0.456, 0.406, std 0.229,
    0.224, 0.225); 1-channel inputs are replicated to 3. ``hr`` features are computed without
    gradient. SRGAN's MSE on features scaled by 1/12.75 is ``criterion: mse`` with the mix weight
    ``1 / 12.75**2 = 0.00615``.

    Weights are the torchvision ImageNet VGG19 (``vgg19-dcbb9e9d.pth``), looked up in this order:
    ``weights`` (a local file), :func:`find_vgg19_weights` (the gansr cache, torch hub's cache),
    then a download from :data:`VGG19_URL` into :func:`vgg19_cache_path` (first 8 hex digits of the
    sha256 checked). If none works the constructor raises :class:`~gansr.errors.ConfigError` saying
    how to provide the file. The VGG is frozen and stays out of ``state_dict()`` (see
    :class:`VGG19Features`).

    Args:
        layers: one layer name (see :data:`VGG19_LAYERS`; ``convB_I`` pre-activation, ``reluB_I``
            post-activation), a list of names (weight 1 each), or a mapping name -> weight.
            Default ``"conv5_4"``: SRGAN's VGG54, pre-activation as in ESRGAN.
        criterion: ``"l1"`` (ESRGAN, default) or ``"mse"`` (SRGAN).
        weights: path of a torchvision-format VGG19 weight file.
        pretrained: False builds randomly initialized VGG19 layers (for tests only: random
            features are not a perceptual loss).
        seed: seed of that random initialization.
        progress: show a progress bar when downloading.
    """

    def __init__(
        self,
        *,
        layers: str | Sequence[str] | Mapping[str, float] = "conv5_4",
        criterion: Literal["l1", "mse"] = "l1",
        weights: str | Path | None = None,
        pretrained: bool = True,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__()
        owner = "perceptual loss"
        self.layer_weights = self._layer_weights(layers, owner)
        self.criterion = check_choice(owner, "criterion", criterion, ("l1", "mse"))
        if pretrained:
            path = self._resolve_weights(weights, progress)
            state = _read_state_dict(path)
            self.vgg = VGG19Features(tuple(self.layer_weights), state, source=str(path))
            del state
        else:
            generator = torch.Generator().manual_seed(seed)
            self.vgg = VGG19Features(tuple(self.layer_weights), None, generator=generator)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _layer_weights(layers: str | Sequence[str] | Mapping[str, float], owner: str) -> dict[str, float]:
        if isinstance(layers, str):
            layers = {layers: 1.0}
        elif not isinstance(layers, Mapping):
            layers = dict.fromkeys(layers, 1.0)
        if not layers:
            raise ConfigError(f"{owner}: option 'layers' needs at least one VGG19 layer")
        for name, weight in layers.items():
            _layer_index(name, owner)
            check_range(owner, f"layers.{name}", weight, low=0.0)
        return {name: float(weight) for name, weight in layers.items()}

    @staticmethod
    def _resolve_weights(weights: str | Path | None, progress: bool) -> Path:
        if weights is not None:
            path = Path(os.path.expanduser(str(weights)))
            if not path.is_file():
                raise ConfigError(f"perceptual loss option 'weights': no such file: {path}")
            return path
        found = find_vgg19_weights()
        if found is not None:
            return found
        try:
            return _download_vgg19(progress)
        except (DownloadError, OSError) as exc:  # offline, HTTP error, bad hash, unwritable cache
            # The download error's first clause says why; the rest (its how-to) is restated here.
            reason = _first_line(exc).split("; ")[0]
            raise ConfigError(
                f"VGG19 weights for the perceptual loss not found and not downloadable ({reason}): "
                f"put {VGG19_URL} at {vgg19_cache_path()} or set the perceptual loss option "
                "'weights: /path/to/vgg19-dcbb9e9d.pth'"
            ) from exc

    def normalize(self, img: Tensor) -> Tensor:
        """ImageNet-normalize a ``[0, 1]`` batch, replicating 1-channel images to 3 channels."""
        if img.ndim != 4 or img.shape[1] not in (1, 3):
            raise ValueError(f"perceptual loss expects (N, 1 or 3, H, W) images, got {tuple(img.shape)}")
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        return (img - self.mean.to(img.dtype)) / self.std.to(img.dtype)

    def features(self, img: Tensor) -> dict[str, Tensor]:
        """The selected VGG19 feature maps of a ``[0, 1]`` batch."""
        return self.vgg(self.normalize(img))

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_same_shape("perceptual loss", sr, hr)
        sr_feats = self.features(sr)
        with torch.no_grad():
            hr_feats = self.features(hr.detach())
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        total = sr.new_zeros(())
        for name, weight in self.layer_weights.items():
            total = total + weight * distance(sr_feats[name], hr_feats[name])
        return total

    def extra_repr(self) -> str:
        return f"layers={self.layer_weights}, criterion={self.criterion!r}"
