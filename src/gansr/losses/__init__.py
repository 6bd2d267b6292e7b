"""Losses of the reference designs: pixel, perceptual (VGG19), adversarial, SSIM, feature matching, KL.

Every loss is an ``nn.Module`` whose ``forward`` returns a scalar tensor. :func:`build_loss` builds
one from a config entry (``{"type": "l1", "weight": 1.0, ...}``; the types are the keys of
:data:`LOSS_TYPES`, the options the classes' keyword arguments), :func:`build_adversarial` an
adversarial loss, :func:`build_mix` a :class:`MixLoss` (weighted sum) or :class:`AdaptiveMixLoss`.
Bad configs raise :class:`gansr.errors.ConfigError` with a one-line message naming the key.

=================== ======================== ============================================
type                class                    consumes
=================== ======================== ============================================
l1, mse             L1Loss, MSELoss          sr, hr
charbonnier         CharbonnierLoss          sr, hr
perceptual          PerceptualLoss           sr, hr
ssim, ms_ssim       SSIMLoss, MSSSIMLoss     sr, hr
gradient            GradientLoss             sr, hr (neighbour steps, block-grid weight)
ldl                 LDLLoss                  sr, hr (+ sr_ema, the EMA generator's output)
feature_matching    FeatureMatchingLoss      fake_features, real_features
kl                  KLLoss                   mu, logvar
vanilla, lsgan,     VanillaGANLoss, ...      fake_logits (+ real_logits, required by ragan)
wgan_gp, ragan
=================== ======================== ============================================
"""

from gansr.losses.adversarial import (
    ADVERSARIAL_TYPES,
    AdversarialLoss,
    LSGANLoss,
    RaGANLoss,
    VanillaGANLoss,
    WGANGPLoss,
    gradient_penalty,
)
from gansr.losses.artifacts import LDLLoss, artifact_map
from gansr.losses.base import Loss
from gansr.losses.feature_matching import FeatureMatchingLoss
from gansr.losses.gradient import GradientLoss
from gansr.losses.kl import KLLoss, kl_divergence
from gansr.losses.mix import AdaptiveMixLoss, MixLoss, MixTerm, build_mix
from gansr.losses.perceptual import (
    VGG19_LAYERS,
    VGG19_URL,
    PerceptualLoss,
    VGG19Features,
    find_vgg19_weights,
    vgg19_cache_path,
)
from gansr.losses.pixel import CharbonnierLoss, L1Loss, MSELoss
from gansr.losses.registry import LOSS_TYPES, build_adversarial, build_loss
from gansr.losses.structural import MSSSIMLoss, SSIMLoss

__all__ = [
    "GradientLoss",
    "LDLLoss",
    "artifact_map",
    "ADVERSARIAL_TYPES",
    "LOSS_TYPES",
    "VGG19_LAYERS",
    "VGG19_URL",
    "AdaptiveMixLoss",
    "AdversarialLoss",
    "CharbonnierLoss",
    "FeatureMatchingLoss",
    "KLLoss",
    "L1Loss",
    "LSGANLoss",
    "Loss",
    "MSELoss",
    "MSSSIMLoss",
    "MixLoss",
    "MixTerm",
    "PerceptualLoss",
    "RaGANLoss",
    "SSIMLoss",
    "VGG19Features",
    "VanillaGANLoss",
    "WGANGPLoss",
    "build_adversarial",
    "build_loss",
    "build_mix",
    "find_vgg19_weights",
    "gradient_penalty",
    "kl_divergence",
    "vgg19_cache_path",
]
