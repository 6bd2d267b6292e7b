"""Make the README's real-photo figure: input | bicubic | srresnet-x4 | realsrnet-x4 | realsr-x4 | HR.

    python docs/benchmarks/real_photo_figure.py ../shared/data/Set14 docs/benchmarks/real_photos.png

Rows: Set14 crops, LR made by the two benchmark degradations (`jpeg60_x4`, `blurnoise_jpeg70_x4`)
exactly as `gansr report --degradation NAME --seed 0` makes them (same per-image seeds), each
crop 160x160 output pixels shown at 1:1, the input nearest-upscaled.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import gansr
from gansr.data.io import list_images, read_image
from gansr.evaluate import Degradation, modcrop

MODELS = ("bicubic", "srresnet-x4", "realsrnet-x4", "realsr-x4")
# (image, degradation, (row, column) of the HR crop's top-left): a face, line art and fine texture.
CROPS = (
    ("lenna.png", "jpeg60_x4", (220, 220)),
    ("comic.png", "jpeg60_x4", (150, 40)),
    ("zebra.png", "blurnoise_jpeg70_x4", (200, 120)),
    ("face.png", "blurnoise_jpeg70_x4", (100, 60)),
)
SIZE = 160


def main(folder: Path, out: Path) -> None:
    files = list_images(folder)
    index = {p.name: i for i, p in enumerate(files)}  # the benchmark seeds image i by its index
    ups = {name: gansr.Upscaler(model=name) for name in MODELS}
    rows = []
    for name, deg_name, (y, x) in CROPS:
        deg = Degradation.resolve(deg_name, 4, seed=0)
        hr = modcrop(read_image(folder / name, channels="rgb").pixels.double(), 4)
        lr = deg(hr, index[name]).float()  # the whole image, as the benchmark degrades it
        full = {m: up.upscale(lr[None])[0] for m, up in ups.items()}
        crop = (slice(None), slice(y, y + SIZE), slice(x, x + SIZE))
        lr_crop = lr[:, y // 4 : (y + SIZE) // 4, x // 4 : (x + SIZE) // 4]
        tiles = [lr_crop.repeat_interleave(4, 1).repeat_interleave(4, 2)]
        tiles += [full[m][crop] for m in MODELS] + [hr[crop].float()]
        rows.append(torch.cat(tiles, dim=2))
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    img = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for i, label in enumerate(("input", *MODELS, "HR")):
        draw.text((i * SIZE + 4, 3), label, fill=(255, 255, 0))
    for r, (name, deg_name, _) in enumerate(CROPS):
        draw.text((4, r * SIZE + SIZE - 14), f"{name[:-4]}, {deg_name}", fill=(255, 255, 0))
    img.save(out)
    print(f"wrote {out} ({img.width}x{img.height})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
