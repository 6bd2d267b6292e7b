"""The gradient loss: it measures steps, not offsets, and weights the block grid as configured."""

import pytest
import torch

from gansr.errors import ConfigError
from gansr.losses import build_loss
from gansr.losses.gradient import GradientLoss


def _photo_like(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 64, 64, generator=g)


def test_a_constant_offset_costs_nothing_and_a_step_costs_its_height():
    hr = _photo_like()
    assert GradientLoss()(hr + 0.2, hr).item() == pytest.approx(0.0, abs=1e-7)
    step = hr.clone()
    step[..., :, 20:] += 0.1  # one vertical edge: 64 rows x 3 channels x 2 images of 0.1
    n = 2 * 3 * (64 * 63) * 2  # horizontal + vertical steps
    assert GradientLoss()(step, hr).item() == pytest.approx(0.1 * 2 * 3 * 64 / n, rel=1e-4)


def test_steps_across_the_grid_lines_weigh_grid_weight_times_more():
    hr = _photo_like(1)
    loss = build_loss({"type": "gradient", "grid": 32, "grid_weight": 16})
    on_grid, off_grid = hr.clone(), hr.clone()
    on_grid[..., :, 32:] += 0.1  # the step into x = 32: a block edge of a JPEG'd x4 LR
    off_grid[..., :, 40:] += 0.1
    assert loss(on_grid, hr).item() / loss(off_grid, hr).item() == pytest.approx(16.0, rel=1e-4)
    on_rows = hr.clone()
    on_rows[..., 64 - 32 :, :] += 0.1  # the same for horizontal lines (step into y = 32)
    assert loss(on_rows, hr).item() == pytest.approx(loss(on_grid, hr).item(), rel=1e-5)


def test_base_weight_zero_ignores_everything_off_the_grid():
    hr = _photo_like(2)
    loss = build_loss({"type": "gradient", "grid": 32, "grid_weight": 16, "base_weight": 0})
    texture = hr + 0.05 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(3))
    texture[..., :, 32] = hr[..., :, 32] + (texture[..., :, 31] - hr[..., :, 31])  # no step change at x=32
    texture[..., 32, :] = hr[..., 32, :] + (texture[..., 31, :] - hr[..., 31, :])
    assert loss(texture, hr).item() == pytest.approx(0.0, abs=1e-6)
    edge = hr.clone()
    edge[..., :, 32:] += 0.1
    assert loss(edge, hr).item() > 0.0


def test_bad_options_and_inputs_are_refused():
    with pytest.raises(ConfigError, match="grid"):
        build_loss({"type": "gradient", "grid": 1})
    with pytest.raises(ConfigError, match="grid_weight"):
        build_loss({"type": "gradient", "grid_weight": -1})
    with pytest.raises(ConfigError, match="weigh 0"):
        build_loss({"type": "gradient", "grid": 32, "grid_weight": 0, "base_weight": 0})
    with pytest.raises(ValueError, match="2x2"):
        GradientLoss()(torch.zeros(1, 3, 1, 8), torch.zeros(1, 3, 1, 8))
