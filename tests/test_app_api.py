"""lbam app: the HTTP API (fill, edge map, limits, every kind of bad input as a 4xx JSON answer) and the CLI."""
from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason='the app tests need the extra: pip install "lbam[app]"')
pytest.importorskip("uvicorn", reason='the app tests need the extra: pip install "lbam[app]"')
pytest.importorskip("python_multipart", reason='the app tests need the extra: pip install "lbam[app]"')

from lbam import Inpainter  # noqa: E402
from lbam.app.server import STATIC, create_app, run_in_thread  # noqa: E402
from lbam.cli import main  # noqa: E402

from app_helpers import png_bytes, post_inpaint, request  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
H, W = 120, 160


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    img = Image.open(ROOT / "examples" / "ladybird.jpg").convert("RGB")
    return np.asarray(img.resize((W, H), Image.LANCZOS))


@pytest.fixture(scope="module")
def hole() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[40:80, 60:110] = 255
    return m


@pytest.fixture(scope="module")
def server():
    app = create_app(Inpainter.from_config("tiny", device="cpu"), max_upload_bytes=300_000, max_pixels=400_000)
    with run_in_thread(app) as url:
        yield url


def test_fill_returns_png_same_size_known_pixels_untouched_and_edge_map(server, photo, hole):
    r = post_inpaint(server, image=png_bytes(photo), mask=png_bytes(hole))
    assert r.status == 200, r.body[:300]
    assert r.headers["Content-Type"] == "image/png"
    out = r.image()
    assert out.shape == photo.shape and out.dtype == np.uint8
    known = hole < 128
    assert np.array_equal(out[known], photo[known])
    assert np.abs(out[~known].astype(int) - photo[~known]).mean() > 1  # the hole was filled with something new
    edges_url = r.headers["X-Lbam-Edges"]
    assert re.fullmatch(r"/api/edges/[0-9a-f]{16}", edges_url)
    assert float(r.headers["X-Lbam-Seconds"]) >= 0
    e = request(server + edges_url.lstrip("/"))
    assert e.status == 200 and e.headers["Content-Type"] == "image/png"
    edges = e.image()
    assert edges.shape == (H, W) and edges.dtype == np.uint8


def test_large_jpeg_keeps_the_decoded_known_pixels():
    # 1920x1200 with a small hole: the server's "auto" strategy crops around the hole
    photo = Image.open(ROOT / "examples" / "ladybird.jpg").resize((1920, 1200), Image.BICUBIC)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    mask = np.asarray(Image.open(ROOT / "examples" / "ladybird_mask.png").convert("L").resize((1920, 1200)))
    big = create_app(Inpainter.from_config("tiny", device="cpu"))  # the default limits
    with run_in_thread(big) as url:
        r = post_inpaint(url, image=data, mask=png_bytes(mask))
    assert r.status == 200, r.body[:300]
    out = r.image()
    known = mask < 128
    assert out.shape == img.shape and np.array_equal(out[known], img[known])
    assert not np.array_equal(out[~known], img[~known])


def test_16_bit_gray_png_is_scaled_not_clipped(server, hole):
    gray16 = (np.linspace(0, 65535, W)[None].repeat(H, 0)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, "PNG")
    r = post_inpaint(server, image=buf.getvalue(), mask=png_bytes(hole))
    assert r.status == 200, r.body[:300]
    out = r.image()
    assert out.shape == (H, W, 3)
    known = hole < 128
    expect = np.round(gray16 / 257).astype(np.uint8)
    assert np.array_equal(out[..., 0][known], expect[known]) and np.array_equal(out[..., 2][known], expect[known])


def test_texture_from_the_photo_is_asked_per_request(server, photo, hole):
    img, mask = png_bytes(photo), png_bytes(hole)
    plain = post_inpaint(server, image=img, mask=mask, strategy="full")
    textured = post_inpaint(server, image=img, mask=mask, strategy="full", detail="context")
    again = post_inpaint(server, image=img, mask=mask, strategy="full")  # the option does not stick
    assert plain.status == textured.status == again.status == 200
    a, b = plain.image(), textured.image()
    inside = hole >= 128
    assert np.array_equal(a[~inside], b[~inside]) and not np.array_equal(a[inside], b[inside])
    assert np.array_equal(again.image(), a)
    assert request(server + "api/info").json()["details"] == ["none", "context"]


def test_user_edges_replace_the_predicted_edges_inside_the_hole(server, photo, hole):
    sketch = np.zeros((H, W), np.uint8)
    sketch[59:61, 40:130] = 255  # a horizontal line through the hole (and beyond it)
    r = post_inpaint(server, image=png_bytes(photo), mask=png_bytes(hole), edges=png_bytes(sketch),
                     strategy="full")
    assert r.status == 200, r.body[:300]
    edges = request(server + r.headers["X-Lbam-Edges"].lstrip("/")).image()
    inside = hole >= 128
    on = (edges >= 128) & inside
    assert np.array_equal(on, (sketch >= 128) & inside)


def test_dilate_grows_the_hole(server, photo, hole):
    r = post_inpaint(server, image=png_bytes(photo), mask=png_bytes(hole), dilate="3")
    assert r.status == 200, r.body[:300]
    out = r.image()
    ring = np.zeros_like(hole, bool)
    ring[37:83, 57:113] = True
    ring &= hole < 128  # the 3-pixel ring around the painted box
    far = np.ones_like(ring)
    far[30:90, 50:120] = False
    assert not np.array_equal(out[ring], photo[ring])
    assert np.array_equal(out[far], photo[far])


def _bad(r, status, *words):
    assert r.status == status, (r.status, r.body[:300])
    assert r.headers["Content-Type"] == "application/json"
    msg = r.json()["error"]
    assert isinstance(msg, str) and msg
    for w in words:
        assert w in msg, msg
    return msg


def test_bad_input_gets_4xx_json_and_the_server_keeps_answering(server, photo, hole):
    img, mask = png_bytes(photo), png_bytes(hole)
    _bad(post_inpaint(server, image=b"this is not an image", mask=mask), 400, "image", "not an image")
    _bad(post_inpaint(server, image=img, mask=b"GIF89a broken"), 400, "mask")
    _bad(post_inpaint(server, image=img[: len(img) // 2], mask=mask), 400, "image", "truncated")
    _bad(post_inpaint(server, image=img, mask=png_bytes(hole[:, :100])), 400, "100x120", "160x120")
    _bad(post_inpaint(server, image=img, mask=mask, edges=png_bytes(hole[:50])), 400, "edges")
    _bad(post_inpaint(server, image=img), 400, "mask")
    _bad(post_inpaint(server, mask=mask), 400, "image")
    _bad(post_inpaint(server, image=img, mask=png_bytes(np.zeros_like(hole))), 400, "no hole")
    _bad(post_inpaint(server, image=img, mask=png_bytes(np.full_like(hole, 255))), 400, "whole image")
    _bad(post_inpaint(server, image=img, mask=mask, dilate="lots"), 400, "dilate")
    _bad(post_inpaint(server, image=img, mask=mask, dilate="1000"), 400, "dilate")
    _bad(post_inpaint(server, image=img, mask=mask, strategy="magic"), 400, "strategy")
    _bad(post_inpaint(server, image=img, mask=mask, detail="sharp"), 400, "detail")
    _bad(post_inpaint(server, image="text, not a file", mask=mask), 400, "file")
    _bad(request(server + "api/inpaint", "POST", b"x=1", {"Content-Type": "application/x-www-form-urlencoded"}),
         400, "image")
    _bad(request(server + "api/inpaint", "POST", b"--nonsense", {"Content-Type": "multipart/form-data"}), 400)
    _bad(request(server + "api/inpaint"), 405)
    _bad(request(server + "api/nothing-here"), 404)
    _bad(request(server + "api/edges/0123456789abcdef"), 404, "edge map")
    # still serving, and still filling
    assert request(server + "api/info").status == 200
    r = post_inpaint(server, image=img, mask=mask)
    assert r.status == 200 and r.image().shape == photo.shape


def test_upload_and_pixel_limits_answer_413(server, photo, hole):
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)  # PNG of noise: > 300 kB
    big = png_bytes(noise)
    assert len(big) > 300_000
    msg = _bad(post_inpaint(server, image=big, mask=png_bytes(np.zeros((300, 400), np.uint8))), 413, "upload")
    assert "MiB" in msg
    # a small file that decodes to more pixels than the server accepts (a decompression bomb in miniature)
    wide = png_bytes(np.zeros((700, 700), np.uint8))
    assert len(wide) < 300_000
    _bad(post_inpaint(server, image=wide, mask=wide), 413, "700x700", "megapixels")
    # chunked upload without a Content-Length is counted too
    from app_helpers import multipart
    body, ctype = multipart({"image": big, "mask": png_bytes(hole)})
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    _bad(request(server + "api/inpaint", "POST", chunks, {"Content-Type": ctype}), 413)  # http.client: chunked
    assert post_inpaint(server, image=png_bytes(photo), mask=png_bytes(hole)).status == 200


def test_foreign_host_and_cross_origin_posts_are_refused(server, photo, hole):
    port = server.rsplit(":", 1)[1].rstrip("/")
    img, mask = png_bytes(photo), png_bytes(hole)
    _bad(request(server + "api/info", headers={"Host": f"evil.example:{port}"}), 403, "evil.example")
    _bad(post_inpaint(server, {"Origin": "http://evil.example"}, image=img, mask=mask), 403, "cross-origin")
    ok = post_inpaint(server, {"Origin": f"http://127.0.0.1:{port}"}, image=img, mask=mask)
    assert ok.status == 200
    assert request(server + "api/info", headers={"Host": f"localhost:{port}"}).status == 200


def test_info_and_the_page_is_self_contained(server):
    info = request(server + "api/info").json()
    assert info["weights"] == "random-tiny" and info["device"] == "cpu"
    assert info["max_upload_bytes"] == 300_000 and info["max_pixels"] == 400_000
    page = request(server)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", asset), asset  # nothing from the network
        if not asset.startswith(("data:", "#")):
            assert request(server + asset).status == 200, asset
    for f in STATIC.iterdir():
        text = f.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f  # no CDN or other remote URL
        assert "@import" not in text, f


def test_cli_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    assert main(["app", "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lbam: error:") and 'pip install "lbam[app]"' in err and "uvicorn" in err
    assert len(err.splitlines()) == 1


def test_cli_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["app", "--no-browser", "--port", str(port), "--weights", "nonexistent-weights"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lbam: error:") and str(port) in err and "--port" in err  # before loading any weights


def test_cli_serves_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    Inpainter.from_config("tiny").save_pretrained(tmp_path / "tiny")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lbam", "app", "--no-browser", "--port", "0", "--device", "cpu",
                             "--weights", str(tmp_path / "tiny")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"serving on (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
                break
        assert url, proc.stderr.read() if proc.poll() is not None else "no URL printed"
        assert request(url + "api/info").json()["config"] == "tiny"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
