"""The base class of gansr losses: what a loss consumes, so a mix can feed it."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class Loss(nn.Module):
    """An ``nn.Module`` whose ``forward`` returns a scalar tensor.

    ``inputs`` names the tensors ``forward`` takes positionally, in order, and ``optional_inputs``
    those it takes as keywords when available; :class:`gansr.losses.MixLoss` uses them to route
    its keyword tensors (``sr``, ``hr``, ``fake_logits``, ``real_logits``, ``fake_features``,
    ``real_features``, ``mu``, ``logvar``) to each term. Image losses consume ``("sr", "hr")``.
    """

    inputs: ClassVar[tuple[str, ...]] = ("sr", "hr")
    optional_inputs: ClassVar[tuple[str, ...]] = ()


def check_same_shape(owner: str, a: Tensor, b: Tensor, names: tuple[str, str] = ("sr", "hr")) -> None:
    """Raise ValueError if ``a`` and ``b`` differ in shape (silent broadcasting is a classic bug)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{owner}: {names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
