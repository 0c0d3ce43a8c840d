"""lbam.io: coercion of images / masks at the public boundary and the way back."""

import io as _io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import lbam.io as lio
import lbam.io.results
from lbam.errors import InputError, LbamError
from lbam.io import ImageKind, from_rgb_float, load_image, to_hole_mask, to_rgb_float

H, W = 24, 32


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def rgb8(rng):
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture
def hole():
    m = np.zeros((1, H, W), bool)
    m[0, 5:15, 8:20] = True
    return m


def _fill(n=1, value=0.25):
    return np.full((n, H, W, 3), value, np.float32)


# ------------------------------------------------------------------------------------------------
# load_image


def test_load_image_ok_and_exif(tmp_path, rgb8):
    p = tmp_path / "a.png"
    Image.fromarray(rgb8).save(p)
    for arg in (p, str(p)):
        img = load_image(arg)
        assert img.mode == "RGB" and img.size == (W, H)
        np.testing.assert_array_equal(np.asarray(img), rgb8)
    # EXIF orientation 6 (rotate 90 cw to display): the loaded image is upright (W and H swap)
    exif = Image.Exif()
    exif[0x0112] = 6
    q = tmp_path / "rot.jpg"
    Image.fromarray(rgb8).save(q, exif=exif.tobytes())
    assert load_image(q).size == (H, W)


def test_load_image_missing(tmp_path):
    with pytest.raises(InputError, match="not found.*nope.png"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="not a regular file"):
        load_image(tmp_path)
    with pytest.raises(InputError):
        load_image(123)


def test_load_image_not_an_image(tmp_path):
    p = tmp_path / "junk.png"
    p.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InputError, match="junk.png"):
        load_image(p)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_load_image_truncated(tmp_path, rng, fmt):
    arr = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    buf = _io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    data = buf.getvalue()
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut"):
        load_image(p)
    # the same through to_rgb_float / to_hole_mask
    with pytest.raises(InputError):
        to_rgb_float(p)
    with pytest.raises(InputError):
        to_hole_mask(p, (128, 128), 1)


def test_load_image_decompression_bomb(tmp_path, monkeypatch, rgb8):
    p = tmp_path / "big.png"
    Image.fromarray(rgb8).save(p)
    monkeypatch.setattr(lio, "MAX_PIXELS", H * W - 1)
    with pytest.raises(InputError, match="decompression bomb"):
        load_image(p)
    monkeypatch.setattr(lio, "MAX_PIXELS", 2**27)
    # Pillow's own hard limit is reported the same way
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="big.png"):
            load_image(p)


def test_input_error_is_value_error():
    assert issubclass(InputError, ValueError) and issubclass(InputError, LbamError)


# ------------------------------------------------------------------------------------------------
# to_rgb_float + from_rgb_float round trips


def _check_known_exact(out, orig, hole2d):
    """Known pixels identical; returns nothing."""
    known = ~hole2d
    np.testing.assert_array_equal(np.asarray(out)[known], np.asarray(orig)[known])


def test_numpy_uint8_roundtrip(rgb8, hole):
    arr, kind = to_rgb_float(rgb8)
    assert arr.shape == (1, H, W, 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[0], rgb8 / 255.0, atol=1e-7)
    assert kind.kind == "numpy" and kind.size == (H, W) and kind.n == 1 and kind.layout == "HW3"
    arr[0, 0, 0, 0] = 0.5  # the float array is a copy, never a view of the input
    out = from_rgb_float(_fill(), rgb8, kind, hole)
    assert out.dtype == np.uint8 and out.shape == rgb8.shape
    _check_known_exact(out, rgb8, hole[0])
    assert (out[hole[0]] == 64).all()  # round(0.25 * 255) = 64
    # identity round trip: feeding back the float image gives the input byte for byte
    full = np.ones_like(hole)
    np.testing.assert_array_equal(from_rgb_float(to_rgb_float(rgb8)[0], rgb8, kind, full), rgb8)


def test_numpy_uint16_roundtrip(rng, hole):
    img = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)
    arr, kind = to_rgb_float(img)
    np.testing.assert_allclose(arr[0], img / 65535.0, rtol=1e-6)
    out = from_rgb_float(_fill(), img, kind, hole)
    assert out.dtype == np.uint16
    _check_known_exact(out, img, hole[0])
    assert (out[hole[0]] == round(0.25 * 65535)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_numpy_float_roundtrip(rng, hole, dtype):
    img = rng.random((H, W, 3)).astype(dtype)
    arr, kind = to_rgb_float(img)
    np.testing.assert_allclose(arr[0], img.astype(np.float32), atol=1e-7)
    out = from_rgb_float(_fill(), img, kind, hole)
    assert out.dtype == dtype
    _check_known_exact(out, img, hole[0])
    assert (out[hole[0]] == dtype(0.25)).all()


def test_numpy_float_tolerance_kept_outside_hole(hole):
    img = np.full((H, W, 3), 0.5)
    img[0, 0, 0] = 1.0005  # within tolerance: clipped for the model, kept as is in the output
    img[0, 1, 0] = -0.0004
    arr, kind = to_rgb_float(img)
    assert arr.max() == 1.0 and arr.min() == 0.0
    out = from_rgb_float(_fill(), img, kind, hole)
    assert out[0, 0, 0] == 1.0005 and out[0, 1, 0] == -0.0004


def test_numpy_gray_and_rgba(rng, hole):
    gray = rng.integers(0, 256, (H, W), dtype=np.uint8)
    arr, kind = to_rgb_float(gray)
    assert kind.layout == "HW"
    for c in range(3):
        np.testing.assert_array_equal(arr[0, :, :, c], gray / np.float32(255))
    res = _fill()
    res[..., 0] = 1.0  # red: luminance 0.2125 + 0.25 * (0.7154 + 0.0721)
    out = from_rgb_float(res, gray, kind, hole)
    assert out.shape == (H, W) and out.dtype == np.uint8
    _check_known_exact(out, gray, hole[0])
    assert (out[hole[0]] == round((0.2125 + 0.25 * 0.7875) * 255)).all()

    g1 = gray[:, :, None]
    out1 = from_rgb_float(res, g1, to_rgb_float(g1)[1], hole)
    assert out1.shape == (H, W, 1)
    np.testing.assert_array_equal(out1[:, :, 0], out)

    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    arr, kind = to_rgb_float(rgba)
    np.testing.assert_array_equal(arr[0], rgba[:, :, :3] / np.float32(255))  # alpha dropped
    out = from_rgb_float(_fill(), rgba, kind, hole)
    assert out.shape == (H, W, 4)
    _check_known_exact(out, rgba, hole[0])
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])  # alpha kept everywhere


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA"])
def test_pil_roundtrip_keeps_mode(rng, hole, mode):
    ch = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2}[mode]
    data = rng.integers(0, 256, (H, W, ch), dtype=np.uint8)
    img = Image.fromarray(data[:, :, 0] if ch == 1 else data)
    assert img.mode == mode
    arr, kind = to_rgb_float(img)
    assert kind.kind == "pil" and kind.mode == mode and arr.shape == (1, H, W, 3)
    if mode in ("L", "LA"):
        for c in range(3):
            np.testing.assert_array_equal(arr[0, :, :, c], data[:, :, 0] / np.float32(255))
    else:
        np.testing.assert_array_equal(arr[0], data[:, :, :3] / np.float32(255))
    out = from_rgb_float(_fill(), img, kind, hole)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == img.size
    _check_known_exact(out, img, hole[0])
    if ch in (2, 4):
        np.testing.assert_array_equal(np.asarray(out)[..., -1], data[..., -1])  # alpha kept


def test_pil_16bit(rng, hole):
    data = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    img = Image.fromarray(data)
    assert img.mode == "I;16"
    arr, kind = to_rgb_float(img)
    np.testing.assert_allclose(arr[0, :, :, 1], data / 65535.0, rtol=1e-6)
    out = from_rgb_float(_fill(), img, kind, hole)
    assert out.mode == "I;16"
    _check_known_exact(out, img, hole[0])
    assert (np.asarray(out)[hole[0]] == round(0.25 * 65535)).all()
    # mode I (how 16-bit PNGs used to open): read as 16-bit
    img_i = img.convert("I")
    arr_i, kind_i = to_rgb_float(img_i)
    np.testing.assert_array_equal(arr_i, arr)
    assert from_rgb_float(_fill(), img_i, kind_i, hole).mode == "I"
    with pytest.raises(InputError, match="mode I"):
        to_rgb_float(Image.fromarray(np.full((H, W), 70000, np.int32)))
    # big-endian 16-bit comes back as native I;16 with the same values
    big = Image.frombytes("I;16B", (W, H), data.astype(">u2").tobytes())
    arr_b, kind_b = to_rgb_float(big)
    np.testing.assert_array_equal(arr_b, arr)
    out_b = from_rgb_float(_fill(), big, kind_b, hole)
    assert out_b.mode == "I;16"
    _check_known_exact(out_b, data, hole[0])
    # as a mask: hole where >= 32768
    np.testing.assert_array_equal(to_hole_mask(big, (H, W), 1)[0], data >= 32768)


def test_pil_other_modes_come_back_rgb(rgb8, hole):
    img = Image.fromarray(rgb8).convert("CMYK")
    arr, kind = to_rgb_float(img)
    rgb = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(arr[0], rgb / np.float32(255))
    out = from_rgb_float(_fill(), img, kind, hole)
    assert out.mode == "RGB"
    _check_known_exact(out, rgb, hole[0])


def test_pil_palette_float_and_bilevel(rng, hole, rgb8):
    p = Image.fromarray(rgb8).quantize(16)
    assert p.mode == "P"
    arr, kind = to_rgb_float(p)
    rgb = np.asarray(p.convert("RGB"))
    np.testing.assert_array_equal(arr[0], rgb / np.float32(255))
    out = from_rgb_float(_fill(), p, kind, hole)
    assert out.mode == "RGB"
    _check_known_exact(out, rgb, hole[0])

    f = Image.fromarray(rng.random((H, W)).astype(np.float32))
    arr, kind = to_rgb_float(f)
    out = from_rgb_float(_fill(), f, kind, hole)
    assert out.mode == "F"
    _check_known_exact(out, f, hole[0])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        to_rgb_float(Image.fromarray(np.full((H, W), 3.0, np.float32)))

    b = Image.fromarray(rng.random((H, W)) > 0.5)
    assert b.mode == "1"
    arr, kind = to_rgb_float(b)
    assert set(np.unique(arr)) <= {0.0, 1.0}
    out = from_rgb_float(_fill(), b, kind, hole)
    assert out.mode == "L"
    _check_known_exact(out, b.convert("L"), hole[0])


def test_path_roundtrip(tmp_path, rgb8, hole):
    p = tmp_path / "img.png"
    Image.fromarray(rgb8).save(p)
    arr, kind = to_rgb_float(p)
    assert kind.kind == "path" and kind.path == str(p) and kind.mode == "RGB"
    np.testing.assert_array_equal(arr[0], rgb8 / np.float32(255))
    out = from_rgb_float(_fill(), p, kind, hole)
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    _check_known_exact(out, rgb8, hole[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8])
@pytest.mark.parametrize("batched", [False, True])
def test_torch_roundtrip(rng, dtype, batched):
    n = 2 if batched else 1
    if dtype == torch.uint8:
        t = torch.from_numpy(rng.integers(0, 256, (n, 3, H, W), dtype=np.uint8))
    else:
        t = torch.from_numpy(rng.random((n, 3, H, W), dtype=np.float32)).to(dtype)
    src = t if batched else t[0]
    arr, kind = to_rgb_float(src)
    assert arr.shape == (n, H, W, 3) and arr.dtype == np.float32
    assert kind.kind == "torch" and kind.n == n and kind.batched == batched and kind.dtype == dtype
    scale = 255.0 if dtype == torch.uint8 else 1.0
    np.testing.assert_allclose(arr, t.float().numpy().transpose(0, 2, 3, 1) / scale, atol=1e-6)
    hole = np.zeros((n, H, W), bool)
    hole[:, 3:9, 4:30] = True
    hole[-1, 20:, :] = True
    out = from_rgb_float(_fill(n), src, kind, hole)
    assert out.dtype == src.dtype and out.shape == src.shape and out.device == src.device
    o = out if batched else out[None]
    m = torch.from_numpy(hole)[:, None].expand(-1, 3, -1, -1)
    assert torch.equal(o[~m], t[~m])
    expect = 64 if dtype == torch.uint8 else torch.tensor(0.25, dtype=dtype)
    assert (o[m] == expect).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_cuda_roundtrip(rng, hole):  # pragma: no cover - only with a GPU
    t = torch.from_numpy(rng.random((3, H, W), dtype=np.float32)).cuda()
    arr, kind = to_rgb_float(t)
    out = from_rgb_float(_fill(), t, kind, hole)
    assert out.device == t.device
    m = torch.from_numpy(hole[0]).cuda().expand(3, -1, -1)
    assert torch.equal(out[~m], t[~m])


# ------------------------------------------------------------------------------------------------
# to_rgb_float errors


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.full((H, W, 3), np.nan, np.float32), "NaN"),
        (np.full((H, W, 3), np.inf), "inf"),
        (np.full((H, W, 3), 1.01), r"\[0, 1\]"),
        (np.full((H, W, 3), -0.5), r"\[0, 1\]"),
        (np.full((H, W, 3), 255.0), r"\[0, 1\]"),
        (np.zeros((H, W, 3), complex), "dtype"),
        (np.zeros((H, W, 3), bool), "dtype"),
        (np.zeros((H, W, 3), np.int64), "dtype"),
        (np.zeros((H, W, 2), np.uint8), "2 channels"),
        (np.zeros((H, W, 5), np.uint8), "5 channels"),
        (np.zeros((2, H, W, 3), np.uint8), "4 dimensions"),
        (np.zeros((W,), np.uint8), "1 dimensions"),
        (np.zeros((0, W, 3), np.uint8), "empty"),
        (torch.zeros(2, 4, H, W), "4 channels"),
        (torch.zeros(1, H, W), "1 channels"),
        (torch.zeros(H, W), "2 dimensions"),
        (torch.zeros(0, 3, H, W), "empty"),
        (torch.full((3, H, W), float("nan")), "NaN"),
        (torch.full((3, H, W), 2.0), r"\[0, 1\]"),
        (torch.zeros(3, H, W, dtype=torch.int32), "dtype"),
        (torch.zeros(3, H, W, dtype=torch.bool), "dtype"),
        (Image.new("RGB", (0, 0)), "empty"),
        ([[0, 1], [1, 0]], "unsupported image type"),
    ],
)
def test_to_rgb_float_errors(bad, pattern):
    with pytest.raises(InputError, match=pattern):
        to_rgb_float(bad)


# ------------------------------------------------------------------------------------------------
# to_hole_mask


def test_mask_numpy_rules():
    u8 = np.zeros((H, W), np.uint8)
    u8[0, 0], u8[0, 1], u8[0, 2] = 127, 128, 255
    m = to_hole_mask(u8, (H, W), 1)
    assert m.shape == (1, H, W) and m.dtype == bool
    assert m.sum() == 2 and m[0, 0, 1] and m[0, 0, 2]

    f = np.zeros((H, W))
    f[1, 1], f[1, 2] = 0.5, 0.51
    assert to_hole_mask(f, (H, W), 1).sum() == 1 and to_hole_mask(f, (H, W), 1)[0, 1, 2]

    b = np.zeros((H, W), bool)
    b[2, 3] = True
    np.testing.assert_array_equal(to_hole_mask(b, (H, W), 1)[0], b)

    u16 = np.zeros((H, W), np.uint16)
    u16[0, 0], u16[0, 1] = 32767, 32768
    assert to_hole_mask(u16, (H, W), 1)[0].sum() == 1

    i64 = np.zeros((H, W), np.int64)
    i64[0, 0] = 255
    assert to_hole_mask(i64, (H, W), 1)[0, 0, 0]
    with pytest.raises(InputError, match=r"\[0, 255\]"):
        to_hole_mask(np.full((H, W), 1000, np.int64), (H, W), 1)

    # 3 / 4 channels: any color channel says hole; alpha is ignored
    c = np.zeros((H, W, 4), np.uint8)
    c[0, 0, 0] = 255
    c[0, 1, 2] = 200
    c[0, 2, 3] = 255
    m = to_hole_mask(c, (H, W), 1)[0]
    assert m[0, 0] and m[0, 1] and not m[0, 2] and m.sum() == 2
    assert to_hole_mask(c[:, :, :3], (H, W), 1)[0].sum() == 2
    # broadcast to a batch
    m3 = to_hole_mask(b, (H, W), 3)
    assert m3.shape == (3, H, W) and (m3 == b).all()


def test_mask_pil_and_path(tmp_path):
    arr = np.zeros((H, W), np.uint8)
    arr[4:10, 5:12] = 255
    expect = arr > 0
    for img in (Image.fromarray(arr), Image.fromarray(arr).convert("RGB"), Image.fromarray(arr).convert("1"),
                Image.fromarray(arr).convert("RGBA"), Image.fromarray(arr).convert("P"),
                Image.fromarray(arr).convert("LA"), Image.fromarray(arr.astype(np.float32) / 255)):
        np.testing.assert_array_equal(to_hole_mask(img, (H, W), 1)[0], expect, err_msg=img.mode)
    p = tmp_path / "mask.png"
    Image.fromarray(arr).save(p)
    np.testing.assert_array_equal(to_hole_mask(p, (H, W), 2), np.stack([expect, expect]))
    np.testing.assert_array_equal(to_hole_mask(str(p), (H, W), 1)[0], expect)
    # JPEG noise around 0 / 255 does not matter with the >= 128 rule
    q = tmp_path / "mask.jpg"
    Image.fromarray(arr).save(q, quality=70)
    np.testing.assert_array_equal(to_hole_mask(q, (H, W), 1)[0], expect)


def test_mask_torch_shapes():
    base = torch.zeros(H, W)
    base[3:7, 2:9] = 1.0
    expect = base.numpy() > 0.5
    for t in (base, base[None], base[None, None], base.bool(), (base * 255).to(torch.uint8), base.half()):
        m = to_hole_mask(t, (H, W), 1)
        assert m.shape == (1, H, W)
        np.testing.assert_array_equal(m[0], expect)
    batch = torch.stack([base, 1 - base])
    m = to_hole_mask(batch, (H, W), 2)
    np.testing.assert_array_equal(m[1], ~expect)
    m = to_hole_mask(batch[:, None], (H, W), 2)
    np.testing.assert_array_equal(m[0], expect)
    np.testing.assert_array_equal(to_hole_mask(base[None, None], (H, W), 2)[1], expect)  # broadcast


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.zeros((H + 1, W), bool), f"mask size {W}x{H + 1} does not match image size {W}x{H}"),
        (np.zeros((W, H), np.uint8), f"mask size {H}x{W} does not match image size {W}x{H}"),
        (Image.new("L", (W + 2, H)), f"mask size {W + 2}x{H} does not match image size {W}x{H}"),
        (torch.zeros(1, 1, H, W - 1), f"mask size {W - 1}x{H}"),
        (np.full((H, W), np.nan), "NaN"),
        (torch.full((H, W), float("nan")), "NaN"),
        (np.zeros((H, W, 2)), "2 channels"),
        (np.zeros((1, 1, H, W)), "4 dimensions"),
        (torch.zeros(1, 3, H, W), "3 channels"),
        (torch.zeros(1, 1, 1, H, W), "5 dimensions"),
        (torch.zeros(3, H, W), "batch size 3"),
        (np.zeros((H, W), complex), "dtype"),
        (np.full((H, W), -1, np.int16), r"\[0, 255\]"),
        (None, "unsupported mask type"),
    ],
)
def test_mask_errors(bad, pattern):
    with pytest.raises(InputError, match=pattern):
        to_hole_mask(bad, (H, W), 2)


def test_mask_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        to_hole_mask(tmp_path / "mask.png", (H, W), 1)


# ------------------------------------------------------------------------------------------------
# from_rgb_float checks


def test_from_rgb_float_shape_checks(rgb8, hole):
    _, kind = to_rgb_float(rgb8)
    assert isinstance(kind, ImageKind)
    with pytest.raises(InputError, match="result has shape"):
        from_rgb_float(np.zeros((1, H, W + 1, 3), np.float32), rgb8, kind, hole)
    with pytest.raises(InputError, match="hole mask has shape"):
        from_rgb_float(_fill(), rgb8, kind, hole[:, :-1])


# ------------------------------------------------------------------------------------------------
# hole-only post-processing in from_rgb_float, fewer copies in to_rgb_float


def _reference_from_rgb_float_torch(result, original, batched, hole):
    """The former torch path: sanitise the whole image, then torch.where."""
    res = np.clip(np.nan_to_num(result.astype(np.float32), nan=0.0), 0.0, 1.0)
    orig = original if batched else original.unsqueeze(0)
    r = torch.from_numpy(np.ascontiguousarray(res.transpose(0, 3, 1, 2)))
    if orig.dtype == torch.uint8:
        r = torch.round(r * 255.0).clamp_(0, 255)
    out = torch.where(torch.from_numpy(hole)[:, None], r.to(orig.dtype), orig)
    return out if batched else out[0]


def _dirty_result(rng, n=1):
    res = rng.random((n, H, W, 3)).astype(np.float32) * 1.4 - 0.2  # outside [0, 1] on purpose
    res[:, 0, 0] = np.nan
    res[:, 1, 1] = np.inf
    res[:, 2, 2] = -np.inf
    return res


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("batched", [False, True])
def test_from_rgb_float_torch_matches_whole_image_reference(rng, dtype, batched):
    n = 2 if batched else 1
    base = torch.from_numpy(rng.random((n, 3, H, W)).astype(np.float32))
    orig = (base * 255).round().to(torch.uint8) if dtype == torch.uint8 else base.to(dtype)
    if not batched:
        orig = orig[0]
    res = _dirty_result(rng, n)
    hole = rng.random((n, H, W)) < 0.5
    hole[:, :3, :3] = True  # the NaN / inf pixels are holes
    kind = to_rgb_float(orig)[1]
    before = orig.clone()
    out = from_rgb_float(res, orig, kind, hole)
    ref = _reference_from_rgb_float_torch(res, orig, batched, hole)
    assert out.dtype == orig.dtype and out.shape == orig.shape
    assert torch.equal(out, ref)
    assert torch.equal(orig, before)  # the input tensor is not written to


def _reference_paste(base, res, hole):
    """What pasting must give, written out independently of lbam.io.results: boolean indexing, scikit-image's
    luminance weights for gray bases (float32 arithmetic), integers scaled by 255 / 65535 and rounded."""
    vals = np.clip(np.nan_to_num(np.asarray(res, np.float32)[hole], nan=0.0), 0.0, 1.0)  # (P, 3) float32
    gray = 0.2125 * vals[:, 0] + 0.7154 * vals[:, 1] + 0.0721 * vals[:, 2]
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(base.dtype)

    def quantize(x):
        return x.astype(base.dtype) if top is None else np.rint(x * top).astype(base.dtype)

    ref = base.copy()
    if base.ndim == 2:
        ref[hole] = quantize(gray)
    elif base.shape[2] in (1, 2):  # gray, gray + alpha: alpha kept
        ref[hole, 0] = quantize(gray)
    else:  # RGB, RGBA: alpha kept
        ref[hole, :3] = quantize(vals)
    return ref


def test_reference_paste_uses_the_skimage_luminance():
    from skimage.color import rgb2gray

    rgb = np.random.default_rng(3).random((5, 7, 3)).astype(np.float32)
    base = np.zeros((5, 7), np.float32)
    np.testing.assert_allclose(_reference_paste(base, rgb, np.ones((5, 7), bool)), rgb2gray(rgb), atol=1e-6)


@pytest.mark.parametrize("layout", ["HW", "HW1", "HW3", "HW4"])
def test_from_rgb_float_only_hole_values_are_sanitised(rng, layout):
    shape = {"HW": (H, W), "HW1": (H, W, 1), "HW3": (H, W, 3), "HW4": (H, W, 4)}[layout]
    orig = rng.integers(0, 256, shape, dtype=np.uint8)
    res = _dirty_result(rng)
    hole = rng.random((1, H, W)) < 0.5
    hole[0, 0, 0] = hole[0, 1, 1] = hole[0, 2, 2] = True
    hole[0, 5, 5] = False
    res[0, 5, 5] = np.nan  # NaN in a known pixel: must simply be ignored
    out = from_rgb_float(res, orig, to_rgb_float(orig)[1], hole)
    ref = _reference_paste(orig, res[0], hole[0])
    np.testing.assert_array_equal(out, ref)
    if layout == "HW3":
        assert out[0, 0].tolist() == [0, 0, 0] and out[1, 1].tolist() == [255, 255, 255]
        assert out[2, 2].tolist() == [0, 0, 0]
    known = ~hole[0]
    np.testing.assert_array_equal(out[known], orig[known])


@pytest.mark.parametrize("shape", [(H, W), (H, W, 1), (H, W, 2), (H, W, 3), (H, W, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("contiguous", [True, False])
def test_paste_by_flat_index_matches_boolean_indexing(rng, shape, dtype, contiguous):
    # pasting gathers and writes the hole pixels by flat index; the plain boolean-mask form is the reference
    top = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1)
    base = (rng.random(shape) * top).astype(dtype)
    res = rng.random((3, H, W)).astype(np.float32).transpose(1, 2, 0)  # (H, W, 3) view, not C-contiguous
    if contiguous:
        res = np.ascontiguousarray(res)
    hole = rng.random((H, W)) < 0.3
    out = lbam.io.results._paste(base, res, hole)
    ref = _reference_paste(base, res, hole)
    assert out.dtype == base.dtype and out.shape == base.shape
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(out[~hole], base[~hole])


def test_from_rgb_float_accepts_non_contiguous_float64_result(rng, rgb8, hole):
    kind = to_rgb_float(rgb8)[1]
    res_chw = rng.random((1, 3, H, W))  # float64, handed over as a (N, H, W, 3) view like api.py does
    res = res_chw.transpose(0, 2, 3, 1)
    out = from_rgb_float(res, rgb8, kind, hole)
    ref = from_rgb_float(np.ascontiguousarray(res, dtype=np.float32), rgb8, kind, hole)
    np.testing.assert_array_equal(out, ref)


def test_to_rgb_float_values_unchanged_by_fewer_copies(rng):
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    arr, _ = to_rgb_float(rgba)
    np.testing.assert_array_equal(arr[0], rgba[:, :, :3].astype(np.float32) / np.float32(255.0))
    assert arr.flags.c_contiguous and arr.dtype == np.float32
    rgba16 = rng.integers(0, 65536, (H, W, 4), dtype=np.uint16)
    np.testing.assert_array_equal(to_rgb_float(rgba16)[0][0], rgba16[:, :, :3].astype(np.float32) / np.float32(65535.0))
    t8 = torch.from_numpy(rng.integers(0, 256, (2, 3, H, W), dtype=np.uint8))
    arr, _ = to_rgb_float(t8)
    np.testing.assert_array_equal(arr, t8.numpy().transpose(0, 2, 3, 1).astype(np.float32) / np.float32(255.0))
    assert arr.flags.c_contiguous
    tf = torch.from_numpy(rng.random((3, H, W)))  # float64
    arr, _ = to_rgb_float(tf)
    np.testing.assert_array_equal(arr[0], tf.numpy().transpose(1, 2, 0).astype(np.float32))
    assert arr.flags.c_contiguous and not np.shares_memory(arr, tf.numpy())
    tf32 = torch.rand(3, H, W)
    arr, _ = to_rgb_float(tf32)
    assert not np.shares_memory(arr, tf32.numpy())  # always a new array
    noisy = torch.full((3, H, W), 1.0005)
    assert float(to_rgb_float(noisy)[0].max()) == 1.0  # tolerated noise still clipped


def test_grow_hole_dilates_by_a_disk_and_keeps_the_hole():
    from lbam.io import grow_hole

    hole = np.zeros((2, 21, 25), bool)
    hole[0, 10, 12] = True
    hole[1, 0, 0] = True
    grown = grow_hole(hole, 3)
    assert grown.shape == hole.shape and grown.dtype == bool
    assert grown[hole].all()
    yy, xx = np.mgrid[:21, :25]
    # a single pixel grows into a disk of radius 3: (10, 15) is in it, the diagonal (13, 15) is not
    assert grown[0, 10, 15] and grown[0, 13, 12] and not grown[0, 13, 15]
    assert grown[0].sum() == ((yy - 10) ** 2 + (xx - 12) ** 2 <= 9).sum()
    assert not grown[0][(yy - 10) ** 2 + (xx - 12) ** 2 > 9].any()
    assert grown[1, 3, 0] and not grown[1, 4, 0]  # at the border: no wrap-around, nothing beyond the radius
    assert np.array_equal(grow_hole(hole, 0), hole) and grow_hole(hole, 0) is not hole
    assert np.array_equal(grow_hole(hole[0], 3), grown[0])  # (H, W) works too


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_grow_hole_refuses_bad_pixel_counts(bad):
    from lbam.io import grow_hole

    with pytest.raises(InputError, match="dilate"):
        grow_hole(np.zeros((4, 4), bool), bad)
