"""gansr.data.io: reading every common mode, writing atomically, listing folders.

Test images are cut from the real Set5/Set14 files and re-encoded by Pillow (an independent
encoder) in each mode; the 16-bit colour PNG path, which Pillow itself reduces to 8 bits, is
cross-checked against Pillow's 8-bit reading of the same bytes (it keeps the high byte).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps

from gansr.data import io as gio
from gansr.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    atomic_write,
    encode_image,
    from_pil,
    list_images,
    read_image,
    to_pil,
    write_image,
)
from gansr.errors import DataError


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def _insert_chunk(png: bytes, ctype: bytes, payload: bytes) -> bytes:
    """Insert a chunk right after IHDR (signature 8 bytes + IHDR 25 bytes)."""
    return png[:33] + _png_chunk(ctype, payload) + png[33:]


def _adam7_png16(arr: np.ndarray) -> bytes:
    """An interlaced 16-bit PNG written by hand from the spec (filter type 0 on every row)."""
    h, w, c = arr.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b""
    passes = (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    )
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.astype(">u2").tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def crop(set5: Path) -> Image.Image:
    """A 37x29 RGB crop of a real photo (odd sizes catch transposition mistakes)."""
    with Image.open(set5 / "bird.png") as img:
        return img.convert("RGB").crop((100, 80, 137, 109))


def _u8(t: torch.Tensor) -> np.ndarray:
    return (t.numpy() * 255).round().astype(np.uint8)


def _u16(t: torch.Tensor) -> np.ndarray:
    return (t.numpy().astype(np.float64) * 65535).round().astype(np.uint16)


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


# --------------------------------------------------------------------------- real files


def test_reads_real_benchmarks_exactly_as_pillow_and_skimage(set5: Path, set14: Path) -> None:
    from skimage import io as skio

    for path in [*list_images(set5), *list_images(set14)]:
        img = read_image(path)
        ref = skio.imread(path)  # independent reader (imageio)
        ref = ref[None] if ref.ndim == 2 else ref.transpose(2, 0, 1)
        assert img.pixels.dtype == torch.float32
        assert img.pixels.shape == ref.shape, path.name
        assert np.array_equal(_u8(img.pixels), ref), path.name
        assert img.bit_depth == 8 and img.format == "PNG" and img.path == path and img.alpha is None


def test_channel_policy_on_real_gray_and_colour(set5: Path, set14: Path) -> None:
    gray = set14 / "bridge.png"  # the one gray image in Set14
    assert read_image(gray).pixels.shape[0] == 1
    rgb = read_image(gray, channels="rgb").pixels
    assert rgb.shape[0] == 3 and torch.equal(rgb[0], rgb[2])
    colour = set5 / "baby.png"
    luma = read_image(colour, channels="gray")
    with Image.open(colour) as pil:
        expected = np.asarray(pil.convert("L"))
    assert luma.pixels.shape == (1, 512, 512)
    assert np.array_equal(_u8(luma.pixels[0]), expected)  # exactly PIL's "L"
    with pytest.raises(ValueError, match="channels"):
        read_image(colour, channels="ycbcr")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
@pytest.mark.parametrize("mode", ["L", "RGB", "1"])
def test_lossless_modes_in_each_format(crop: Image.Image, fmt: str, mode: str) -> None:
    src = crop.convert(mode)
    options = {"lossless": True} if fmt == "WEBP" else {}
    img = read_image(_encode(src, fmt, **options))
    expected = np.asarray(src.convert("L" if mode in ("L", "1") else "RGB"))
    got = _u8(img.pixels)
    if fmt == "WEBP" and mode != "RGB":  # WebP stores gray as RGB
        assert got.shape[0] == 3
        got = got[0]
    else:
        got = got[0] if got.shape[0] == 1 else got.transpose(1, 2, 0)
    assert np.array_equal(got, expected)
    assert img.format == fmt and img.alpha is None


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_alpha_is_split_off(crop: Image.Image, fmt: str) -> None:
    ramp = Image.fromarray(np.tile(np.arange(37, dtype=np.uint8) * 7, (29, 1)))
    rgba = crop.copy()
    rgba.putalpha(ramp)
    options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    img = read_image(_encode(rgba, fmt, **options))
    assert img.pixels.shape == (3, 29, 37) and img.alpha is not None and img.alpha.shape == (1, 29, 37)
    assert np.array_equal(_u8(img.alpha[0]), np.asarray(ramp))
    assert np.array_equal(_u8(img.pixels).transpose(1, 2, 0), np.asarray(crop))
    if fmt != "WEBP":
        la = crop.convert("L")
        la.putalpha(ramp)
        img = read_image(_encode(la, fmt))
        assert img.pixels.shape == (1, 29, 37) and img.mode == "LA"
        assert np.array_equal(_u8(img.alpha[0]), np.asarray(ramp))


def test_palette_with_and_without_transparency(crop: Image.Image) -> None:
    pal = crop.quantize(16)
    img = read_image(_encode(pal, "PNG"))
    assert img.mode == "P" and img.alpha is None and img.pixels.shape[0] == 3
    assert np.array_equal(_u8(img.pixels).transpose(1, 2, 0), np.asarray(pal.convert("RGB")))
    clear = int(np.asarray(pal)[0, 0])
    img = read_image(_encode(pal, "PNG", transparency=clear))
    assert img.alpha is not None
    assert np.array_equal(img.alpha[0].numpy() == 0, np.asarray(pal) == clear)
    assert read_image(_encode(pal, "GIF", transparency=clear)).alpha is not None


def test_colour_key_transparency_for_gray_and_rgb(crop: Image.Image) -> None:
    gray = crop.convert("L")
    key = int(np.asarray(gray)[3, 5])
    img = read_image(_encode(gray, "PNG", transparency=key))
    assert img.pixels.shape[0] == 1
    assert np.array_equal(img.alpha[0].numpy() == 0, np.asarray(gray) == key)
    rgb_key = tuple(int(v) for v in np.asarray(crop)[3, 5])
    img = read_image(_encode(crop, "PNG", transparency=rgb_key))
    assert np.array_equal(img.alpha[0].numpy() == 0, np.all(np.asarray(crop) == rgb_key, axis=-1))


def test_cmyk_jpeg_adobe_inverted_and_icc(crop: Image.Image) -> None:
    data = _encode(crop.convert("CMYK"), "JPEG", quality=95)
    assert b"Adobe" in data  # libjpeg stores CMYK inverted with an Adobe marker
    img = read_image(data)
    assert img.mode == "CMYK" and img.pixels.shape == (3, 29, 37)
    with Image.open(io.BytesIO(data)) as pil:
        assert np.array_equal(_u8(img.pixels).transpose(1, 2, 0), np.asarray(pil.convert("RGB")))
    err = np.abs(_u8(img.pixels).astype(int).transpose(1, 2, 0) - np.asarray(crop).astype(int))
    assert err.mean() < 4  # upright and not inverted: close to the source after JPEG
    # A profile that cannot describe CMYK falls back to the plain conversion; either way the
    # RGB result carries no (CMYK) profile.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = read_image(_encode(crop.convert("CMYK"), "JPEG", quality=95, icc_profile=srgb))
    assert img.icc_profile is None and np.array_equal(_u8(img.pixels), _u8(read_image(data).pixels))


def test_16bit_gray_png_and_tiff(crop: Image.Image) -> None:
    g16 = ((np.asarray(crop.convert("L")).astype(np.int64) * 257 + np.arange(37)) % 65536).astype(np.uint16)
    img = read_image(_encode(Image.fromarray(g16), "PNG"))
    assert img.mode == "I;16" and img.bit_depth == 16 and np.array_equal(_u16(img.pixels[0]), g16)
    big = Image.fromarray(g16.astype(">u2"))  # mode I;16B, as in big-endian TIFFs
    img = read_image(_encode(big, "TIFF"))
    assert img.mode == "I;16B" and img.bit_depth == 16 and np.array_equal(_u16(img.pixels[0]), g16)
    img = read_image(_encode(Image.fromarray(g16.astype(np.int32)), "TIFF"))
    assert img.mode == "I" and img.bit_depth == 16 and np.array_equal(_u16(img.pixels[0]), g16)
    assert read_image(_encode(Image.fromarray(g16), "PNG"), channels="rgb").pixels.shape[0] == 3


@pytest.mark.parametrize("samples", [2, 3, 4])
def test_16bit_colour_png_keeps_all_bits(crop: Image.Image, samples: int) -> None:
    # Low bytes that differ from the high bytes, so dropping either one is caught.
    rgb = (np.asarray(crop).astype(np.int64) * 257 + np.arange(37)[:, None] * 3) % 65536
    gray = rgb[..., :1]
    ramp = (np.arange(29 * 37).reshape(29, 37, 1) * 61) % 65536
    arr = {2: np.concatenate([gray, ramp], -1), 3: rgb, 4: np.concatenate([rgb, ramp], -1)}[samples]
    arr = arr.astype(np.uint16)
    for data in (gio._encode_png16(arr, None), _adam7_png16(arr)):
        img = read_image(data)
        assert img.bit_depth == 16 and img.mode == {2: "LA", 3: "RGB", 4: "RGBA"}[samples]
        colour = arr[..., : 1 if samples == 2 else 3]
        assert np.array_equal(_u16(img.pixels).transpose(1, 2, 0), colour)
        if samples != 3:
            assert np.array_equal(_u16(img.alpha[0]), arr[..., -1])
        with Image.open(io.BytesIO(data)) as pil:  # Pillow keeps the high byte of each sample
            high = np.asarray(pil)
        assert np.array_equal(high[..., : colour.shape[-1]], (colour >> 8).astype(np.uint8))


def test_16bit_png_every_filter_type_and_colour_key() -> None:
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(0, 900, (23, 19, 3)), axis=1).astype(np.uint16)
    filters = (np.arange(23) % 5).astype(np.uint8)  # rows cycle through None/Sub/Up/Average/Paeth
    data = gio._encode_png16(smooth, None, filters)
    assert np.array_equal(_u16(read_image(data).pixels).transpose(1, 2, 0), smooth)
    key = tuple(int(v) for v in smooth[4, 7])
    img = read_image(_insert_chunk(data, b"tRNS", struct.pack(">HHH", *key)))
    assert np.array_equal(img.alpha[0].numpy() == 0, np.all(smooth == key, axis=-1))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(crop: Image.Image, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(crop, "PNG", exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as pil:
        expected = np.asarray(ImageOps.exif_transpose(pil))
    if orientation == 6:  # EXIF 6: the stored image must be turned 90 degrees clockwise
        assert np.array_equal(expected, np.rot90(np.asarray(crop), -1))
    img = read_image(data)
    assert np.array_equal(_u8(img.pixels).transpose(1, 2, 0), expected)
    jpeg = read_image(_encode(crop, "JPEG", quality=95, exif=exif.tobytes()))
    assert jpeg.pixels.shape[1:] == expected.shape[:2]
    # The 16-bit path applies the eXIf chunk itself; same result at full precision.
    arr16 = np.asarray(crop).astype(np.uint16) * 257
    data = _insert_chunk(gio._encode_png16(arr16, None), b"eXIf", exif.tobytes()[6:])
    got = _u16(read_image(data).pixels).transpose(1, 2, 0)
    assert np.array_equal(got, expected.astype(np.uint16) * 257)


def test_icc_profile_kept_through_read_and_write(crop: Image.Image, tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert read_image(_encode(crop, "PNG", icc_profile=srgb)).icc_profile == srgb
    pixels = torch.from_numpy(np.asarray(crop).transpose(2, 0, 1) / 255.0).float()
    for name, depth in (("a.png", 8), ("b.jpg", 8), ("c.tif", 8), ("d.webp", 8), ("e.png", 16)):
        out = write_image(tmp_path / name, pixels, icc_profile=srgb, bit_depth=depth)
        assert read_image(out).icc_profile == srgb, name


def test_other_sources_bytes_stream_and_pil(crop: Image.Image, tmp_path: Path) -> None:
    data = _encode(crop, "PNG")
    a = read_image(data).pixels
    assert torch.equal(a, read_image(io.BytesIO(data)).pixels)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert torch.equal(a, read_image(f).pixels)
    assert torch.equal(a, read_image(str(path)).pixels)
    assert torch.equal(a, from_pil(crop).pixels)
    with pytest.raises(TypeError):  # a programming error, not a data problem
        read_image(np.zeros((4, 4)))  # type: ignore[arg-type]
    back = to_pil(a)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), np.asarray(crop))


# --------------------------------------------------------------------------- errors


def _message(exc: pytest.ExceptionInfo[DataError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_errors_are_one_line_data_errors(crop: Image.Image, tmp_path: Path) -> None:
    good = _encode(crop, "PNG")
    cases = {
        "missing.png": (None, "no such file"),
        "empty.png": (b"", "empty"),
        "text.png": (b"hello, I am not an image\n", "not an image"),
        "truncated.png": (good[: len(good) // 2], "truncated"),
        "truncated.jpg": (_encode(crop, "JPEG")[:-400], "truncated"),
    }
    corrupt = bytearray(good)
    corrupt[60] ^= 0xFF  # inside IDAT: CRC and/or inflate fail
    cases["corrupt.png"] = (bytes(corrupt), "corrupt")
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(DataError) as exc:
            read_image(path)
        text = _message(exc)
        assert text.startswith(f"{path}: ") and reason in text, text
    with pytest.raises(DataError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(DataError, match="^<bytes>: empty"):
        read_image(b"")


def test_truncated_16bit_png_is_rejected(crop: Image.Image) -> None:
    data = gio._encode_png16(np.asarray(crop).astype(np.uint16) * 257, None)
    with pytest.raises(DataError, match="truncated"):
        read_image(data[: len(data) - 40])


def test_permission_denied(crop: Image.Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.png"
    path.write_bytes(_encode(crop, "PNG"))
    if os.name == "posix" and os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make the open fail as it would for another user
        real_open = Image.open

        def denied(fp: object, *args: object, **kwargs: object) -> Image.Image:
            if Path(str(fp)) == path:
                raise PermissionError(13, "Permission denied", str(fp))
            return real_open(fp, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Image, "open", denied)
    try:
        with pytest.raises(DataError, match=f"^{path}: permission denied$"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_decompression_bomb_checked_before_decoding() -> None:
    # A header claiming 12000 x 12000 pixels over a few bytes of data: the size check must fire
    # before any decoding (which would report a corrupt file, or allocate 144 M pixels).
    ihdr = struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    with pytest.raises(DataError, match="more than the limit"):
        read_image(bomb)
    assert 12000 * 12000 > DEFAULT_MAX_PIXELS
    # Beyond Pillow's own hard limit its DecompressionBombError becomes a DataError too.
    huge = bomb[:8] + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)) + bomb[33:]
    with pytest.raises(DataError, match="image too large"):
        read_image(huge, max_pixels=10**10)
    with pytest.raises(DataError, match="more than the limit of 100"):
        read_image(Image.new("RGB", (20, 20)), max_pixels=100)


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_write_round_trip(crop: Image.Image, tmp_path: Path, suffix: str, channels: int) -> None:
    src = crop.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(src)
    pixels = torch.from_numpy(arr / 255.0).float()
    pixels = pixels[None] if channels == 1 else pixels.permute(2, 0, 1)
    out = write_image(tmp_path / f"img{suffix}", pixels, quality=100)
    back = read_image(out, channels="gray" if channels == 1 else "rgb")
    assert np.array_equal(_u8(back.pixels), _u8(pixels))


def test_jpeg_write_quality_and_alpha(crop: Image.Image, tmp_path: Path) -> None:
    pixels = torch.from_numpy(np.asarray(crop).transpose(2, 0, 1) / 255.0).float()
    small = write_image(tmp_path / "q50.jpg", pixels, quality=50).stat().st_size
    large = write_image(tmp_path / "q98.jpeg", pixels, quality=98).stat().st_size
    assert small < large
    assert (read_image(tmp_path / "q98.jpeg").pixels - pixels).abs().mean() < 0.01
    alpha = torch.ones(1, 29, 37)
    for suffix in (".jpg", ".bmp"):
        with pytest.raises(DataError, match="cannot store alpha"):
            write_image(tmp_path / f"a{suffix}", pixels, alpha=alpha)
    with pytest.raises(DataError, match="16-bit output needs PNG"):
        write_image(tmp_path / "a.tif", pixels, bit_depth=16)
    with pytest.raises(DataError, match="unknown image suffix"):
        write_image(tmp_path / "a.xyz", pixels)


def test_encode_image_matches_write_image(crop: Image.Image, tmp_path: Path) -> None:
    pixels = torch.from_numpy(np.asarray(crop).transpose(2, 0, 1) / 255.0).float()
    alpha = torch.linspace(0, 1, 37).expand(1, 29, 37)
    for fmt, suffix, kwargs in (
        ("png", ".png", {"alpha": alpha}),
        (".JPG", ".jpg", {"quality": 80}),
        ("WEBP", ".webp", {"alpha": alpha}),
        ("png", ".png", {"bit_depth": 16}),
    ):
        data = encode_image(pixels, fmt, **kwargs)
        assert data == write_image(tmp_path / f"x{suffix}", pixels, **kwargs).read_bytes(), fmt
    with pytest.raises(DataError, match="unknown image format"):
        encode_image(pixels, "gif")
    with pytest.raises(DataError, match="cannot store alpha"):
        encode_image(pixels, "jpeg", alpha=alpha)


def test_write_rounding_and_clamping(tmp_path: Path) -> None:
    values = torch.tensor([-0.5, 0.0, 0.49 / 255, 0.5 / 255, 1.5 / 255, 254.5 / 255, 1.0, 7.0, float("nan")])
    out = write_image(tmp_path / "r.png", values.reshape(1, 1, -1))
    with Image.open(out) as img:
        got = np.asarray(img)[0].tolist()
    assert got == [0, 0, 0, 1, 2, 255, 255, 255, 0]  # floor(x * 255 + 0.5), clamped, NaN -> 0


@pytest.mark.parametrize("channels,with_alpha", [(1, False), (1, True), (3, False), (3, True)])
def test_16bit_write_round_trip(tmp_path: Path, channels: int, with_alpha: bool) -> None:
    rng = np.random.default_rng(channels)
    arr = rng.integers(0, 65536, (channels, 17, 13)).astype(np.float64) / 65535
    pixels = torch.from_numpy(arr)
    alpha = torch.from_numpy(rng.random((1, 17, 13))) if with_alpha else None
    out = write_image(tmp_path / "d.png", pixels, alpha=alpha, bit_depth=16)
    back = read_image(out)
    assert back.bit_depth == 16 and back.pixels.shape == (channels, 17, 13)
    assert np.array_equal(_u16(back.pixels), np.floor(arr * 65535 + 0.5).astype(np.uint16))
    if with_alpha:
        assert np.array_equal(_u16(back.alpha), np.floor(alpha.numpy() * 65535 + 0.5).astype(np.uint16))
    else:
        assert back.alpha is None
    if channels == 1 and not with_alpha:  # Pillow reads 16-bit gray fully: an independent check
        with Image.open(out) as img:
            assert img.mode == "I;16"
            assert np.array_equal(np.asarray(img), _u16(back.pixels[0]))


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    samples=st.sampled_from([1, 2, 3, 4]),
    seed=st.integers(0, 2**16),
    interlaced=st.booleans(),
)
def test_png16_decoder_round_trips_any_size(
    h: int, w: int, samples: int, seed: int, interlaced: bool
) -> None:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 65536, (h, w, samples)).astype(np.uint16)
    if interlaced:
        data = _adam7_png16(arr)
    else:
        data = gio._encode_png16(arr, None, rng.integers(0, 5, h).astype(np.uint8))
    img = read_image(data)
    colour = arr[..., : 1 if samples <= 2 else 3]
    assert np.array_equal(_u16(img.pixels).transpose(1, 2, 0), colour)
    if samples in (2, 4):
        assert np.array_equal(_u16(img.alpha[0]), arr[..., -1])


def test_write_is_atomic(crop: Image.Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = torch.from_numpy(np.asarray(crop).transpose(2, 0, 1) / 255.0).float()
    dest = write_image(tmp_path / "sub" / "out.png", pixels)  # creates the folder
    before = dest.read_bytes()
    assert oct(dest.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def interrupted(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"partial")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(dest, torch.zeros(3, 4, 4))
    assert dest.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.png"]  # no temp file left


def test_atomic_write_refuses_a_folder_or_a_file_in_the_path(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError), atomic_write(tmp_path):
        pass
    (tmp_path / "f").write_bytes(b"keep")
    with pytest.raises(NotADirectoryError) as caught, atomic_write(tmp_path / "f" / "x.png"):
        pass
    assert caught.value.filename == str(tmp_path / "f")  # the CLI prints this as "Not a directory: ..."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    assert (tmp_path / "f").read_bytes() == b"keep"


def _umask() -> int:
    # Read without changing it for good: a child process reports its inherited umask.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import os; m = os.umask(0); print(m)"], capture_output=True)
    return int(out.stdout)


def test_to_pil_modes() -> None:
    assert to_pil(torch.zeros(1, 3, 4)).mode == "L"
    assert to_pil(torch.zeros(3, 4), alpha=torch.ones(1, 3, 4)).mode == "LA"
    assert to_pil(torch.zeros(3, 3, 4), alpha=torch.ones(1, 3, 4)).mode == "RGBA"
    assert to_pil(torch.full((1, 3, 4), 0.5), bit_depth=16).getpixel((0, 0)) == 32768
    with pytest.raises(ValueError):
        to_pil(torch.zeros(3, 3, 4), bit_depth=16)
    with pytest.raises(ValueError):
        to_pil(torch.zeros(2, 3, 4))


# --------------------------------------------------------------------------- listing


def test_list_images(tmp_path: Path, crop: Image.Image) -> None:
    data = _encode(crop, "PNG")
    for rel in ("b.png", "a.JPG", "sub/c.webp", "sub/deeper/d.TIFF", "notes.txt", "._a.png", ".hidden/e.png"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)
    found = list_images(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["a.JPG", "b.png", "sub/c.webp", "sub/deeper/d.TIFF"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    assert {p.suffix.lower() for p in found} <= IMAGE_SUFFIXES
    with pytest.raises(DataError, match="no such folder"):
        list_images(tmp_path / "nope")
    with pytest.raises(DataError, match="not an image"):
        list_images(tmp_path / "notes.txt")
