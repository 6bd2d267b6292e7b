"""ONNX export: dynamic axes, agreement with PyTorch under onnxruntime, metadata, failure modes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from gansr import models
from gansr.errors import ModelError
from gansr.models.export import export_onnx, verify_onnx


def _image(folder, name: str, h: int, w: int, channels: int = 3) -> torch.Tensor:
    img = Image.open(folder / name).convert("RGB" if channels == 3 else "L")
    arr = np.asarray(img, dtype=np.float32)[:h, :w] / 255.0
    t = torch.from_numpy(arr.copy())
    return (t.permute(2, 0, 1) if t.ndim == 3 else t[None])[None]


def _ort(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


EXPORTED = [
    ("rrdbnet", {"num_block": 2}, 3),
    ("rrdbnet", {"num_block": 1, "scale": 2}, 3),  # pixel-unshuffle + reflect padding to even sizes
    ("msrresnet", {"num_block": 2}, 3),
    ("srresnet", {"num_block": 2}, 3),
    ("mnist_sr", {}, 1),
]


@pytest.mark.parametrize(("arch", "kwargs", "channels"), EXPORTED)
def test_onnx_matches_pytorch_at_other_sizes(tmp_path, set5, arch, kwargs, channels):
    torch.manual_seed(0)
    model = models.create(arch, **kwargs).eval()
    path = export_onnx(model, tmp_path / f"{arch}.onnx", example_hw=(32, 32))
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == [f"{arch}.onnx"]
    # Real image crops at sizes other than the 32x32 example (odd, non-square, batch of 2).
    for h, w in [(23, 37), (40, 28)]:
        x = torch.cat(
            [_image(set5, "butterfly.png", h, w, channels), _image(set5, "baby.png", h, w, channels)]
        )
        with torch.no_grad():
            want = model(x).numpy()
        got = _ort(path, x)
        assert got.shape == want.shape == (2, channels, model.scale * h, model.scale * w)
        assert np.abs(got - want).max() <= 1e-4


def test_graph_has_dynamic_axes_and_gansr_metadata(tmp_path):
    model = models.create("msrresnet", num_block=1, scale=2)
    path = export_onnx(model, tmp_path / "m.onnx", opset=17)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["arch"] == "msrresnet" and json.loads(props["config"]) == model.config
    assert props["scale"] == "2" and props["dynamic_hw"] == "true"


def test_static_export_fixes_height_and_width(tmp_path):
    model = models.create("msrresnet", num_block=1)
    path = export_onnx(model, tmp_path / "s.onnx", dynamic_hw=False, example_hw=(24, 20))
    dims = [
        d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    ]
    assert dims == ["batch", 3, 24, 20]
    assert verify_onnx(model, path, input_hw=(24, 20), batch=3) <= 1e-4
    with pytest.raises(ModelError, match="onnxruntime failed"):
        verify_onnx(model, path, input_hw=(20, 24))


def test_export_leaves_the_model_as_it_was(tmp_path):
    """Spectral norm is baked into plain weights on a copy; the caller's model keeps training."""
    model = models.create("patch_d", num_feat=16)
    assert model.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = export_onnx(model, tmp_path / "d.onnx", example_hw=(32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert verify_onnx(model, path, input_hw=(40, 24)) <= 1e-4
    model(torch.rand(1, 3, 32, 32)).sum().backward()  # still a working, parametrized training model
    assert model.conv1.parametrizations.weight.original.grad is not None


def test_unexportable_model_raises_and_leaves_nothing(tmp_path):
    # srgan_d's adaptive pooling has no ONNX form for dynamic sizes in the TorchScript exporter.
    with pytest.raises(ModelError, match="cannot export 'srgan_d' to ONNX .*fixed height/width") as info:
        export_onnx(models.create("srgan_d", num_feat=8, dense=16), tmp_path / "d.onnx")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_verify_catches_graphs_tied_to_the_export_size(tmp_path):
    # bicubic builds its resize matrices in Python for the traced size: valid only at that size.
    model = models.create("bicubic", scale=2)
    path = export_onnx(model, tmp_path / "b.onnx", example_hw=(16, 16))
    with pytest.raises(ModelError, match="only valid at its export size"):
        verify_onnx(model, path, input_hw=(20, 12))
    static = export_onnx(model, tmp_path / "b_static.onnx", dynamic_hw=False, example_hw=(16, 16))
    assert verify_onnx(model, static, input_hw=(16, 16)) <= 1e-5
