"""lbam app in a real headless Chromium: open a photo, paint the hole, sketch an edge, Run, compare, keep working.

Needs the system's Chromium and chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run installs
them where it can); skipped with the reason when they are missing. LBAM_APP_SCREENSHOTS=docs writes the README's
screenshots (docs/app_edit.png, docs/app_result.png).
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason='the app tests need the extra: pip install "lbam[app]"')
pytest.importorskip("uvicorn", reason='the app tests need the extra: pip install "lbam[app]"')
pytest.importorskip("python_multipart", reason='the app tests need the extra: pip install "lbam[app]"')

from lbam import Inpainter  # noqa: E402
from lbam.app.server import create_app, run_in_thread  # noqa: E402

from webdriver_client import Browser, find_browser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "ladybird.jpg"  # 640 x 400; the ladybird lies in x 405-493, y 162-254


def _distance_to_polyline(h: int, w: int, points) -> np.ndarray:
    """(h, w) distance of every pixel centre to the polyline ``points`` (image pixels, x, y)."""
    yy, xx = np.mgrid[0:h, 0:w]
    px, py = xx + 0.5, yy + 0.5
    best = np.full((h, w), np.inf)
    pts = [points[0]] + list(points)
    for (ax, ay), (bx, by) in zip(pts[:-1], pts[1:]):
        dx, dy = bx - ax, by - ay
        n = dx * dx + dy * dy
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / n, 0, 1) if n else 0
        best = np.minimum(best, np.hypot(px - (ax + t * dx), py - (ay + t * dy)))
    return best


def _blob(b: Browser, expr: str) -> bytes:
    data_url = b.js_async(
        "const done = arguments[arguments.length - 1]; const r = new FileReader();"
        f"r.onload = () => done(r.result); r.readAsDataURL({expr});")
    return base64.b64decode(data_url.split(",", 1)[1])


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver = find_browser()
    if chromium is None:
        pytest.skip(f"browser test skipped: {driver}")
    with Browser(chromium, driver, str(tmp_path_factory.mktemp("chromium")), window=(1200, 700)) as b:
        yield b


@pytest.fixture(scope="module")
def server():
    app = create_app(Inpainter.from_pretrained(device="cpu"))  # the bundled default weights: a real fill
    with run_in_thread(app) as url:
        yield url


class Stage:
    """Image <-> viewport geometry of the page's canvases as shown now (fitted, or zoomed and panned)."""

    def __init__(self, b: Browser) -> None:
        r = b.js("const r = document.getElementById('base').getBoundingClientRect();"
                 "const c = document.getElementById('base'); return [r.left, r.top, r.width, c.width, c.height];")
        self.left, self.top, self.css_w, self.w, self.h = r
        self.scale = self.w / self.css_w  # image pixels per CSS pixel

    def viewport(self, image_points):
        """Integer viewport points (what WebDriver moves the mouse to) for image points."""
        return [(round(self.left + x / self.scale), round(self.top + y / self.scale)) for x, y in image_points]

    def image_points(self, viewport_points):
        return [((vx - self.left) * self.scale, (vy - self.top) * self.scale) for vx, vy in viewport_points]


def _screenshot(b: Browser, name: str) -> None:
    shot = Image.open(io.BytesIO(b.screenshot()))
    assert shot.width == 1200 and shot.height > 400
    folder = os.environ.get("LBAM_APP_SCREENSHOTS")
    if folder:  # 256 colours, dithered: a small PNG for the README
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(Path(folder) / name, optimize=True)


def _set_size(b: Browser, n: int) -> None:
    b.js("const s = document.getElementById('size'); s.value = arguments[0];"
         "s.dispatchEvent(new Event('input'));", n)


def _run(b: Browser) -> None:
    b.click("#run")
    b.wait("document.body.dataset.state === 'result' || document.body.dataset.error === '1'", 180, "the fill")
    err = b.js("return document.getElementById('error').textContent;")
    assert b.js("return document.body.dataset.state;") == "result", f"the page shows an error: {err}"
    assert not b.js("return document.body.dataset.busy;")


def test_paint_sketch_run_compare_and_keep_working(browser, server, tmp_path):
    b = browser
    b.get(server)
    b.wait("document.getElementById('status').textContent.startsWith('Ready')", 30, "the page to load")
    original = np.asarray(Image.open(PHOTO).convert("RGB"))  # what the server decodes from the same bytes
    h, w = original.shape[:2]

    # a file that is not an image: the page says so and stays usable
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    b.send_keys("#file", str(junk))
    b.wait("document.body.dataset.error === '1'", 10, "the error message")
    assert "Cannot open notes.txt" in b.js("return document.getElementById('error').textContent;")

    b.send_keys("#file", str(PHOTO))
    b.wait("document.body.dataset.state === 'edit'", 20, "the image")
    assert not b.js("return document.body.dataset.error;")
    assert b.js("return document.getElementById('run').disabled;")  # nothing painted yet
    stage = Stage(b)
    assert (stage.w, stage.h) == (w, h)

    # paint the hole: a zigzag over the ladybird with a 40 CSS-pixel brush
    _set_size(b, 40)
    zig = [(410, 170), (490, 170), (410, 190), (490, 190), (410, 210), (490, 210), (410, 230), (490, 230),
           (410, 250), (490, 250)]
    offs = stage.viewport(zig)
    b.drag(offs)
    hole_pts, hole_width = stage.image_points(offs), 40 * stage.scale
    assert not b.js("return document.getElementById('run').disabled;")

    # sketch the stem's two edges through the hole with the edge pen (they enter at x 400, y 201 and 214)
    b.click("#toolEdges")
    assert b.js("return document.getElementById('size').value;") == "3"
    lines = [stage.viewport([(396, y0), (504, y0 + 0.41 * 108)]) for y0 in (199.4, 212.4)]
    for line in lines:
        b.drag(line)
    _screenshot(b, "app_edit.png")

    _run(b)
    result = np.asarray(Image.open(io.BytesIO(_blob(b, "window.lbamApp.state.result.blob"))))
    assert result.shape == original.shape
    changed = np.any(result != original, axis=2)
    d = _distance_to_polyline(h, w, hole_pts)
    inside, outside = d < hole_width / 2 - 2, d > hole_width / 2 + 3
    assert changed[inside].mean() > 0.9, changed[inside].mean()  # the stroke was filled
    assert not changed[outside].any()  # and nothing else moved, to the byte
    assert np.abs(result[inside].astype(int) - original[inside]).mean() > 5

    # the completed edge map follows the sketched line inside the hole
    edges = np.asarray(Image.open(io.BytesIO(_blob(b, "window.lbamApp.state.result.edgesBlob")))) / 255.0
    assert edges.shape == (h, w)
    dl = np.minimum(*(_distance_to_polyline(h, w, stage.image_points(line)) for line in lines))
    deep = d < hole_width / 2 - 4
    on_line, off_line = deep & (dl < 1.5), deep & (dl > 6)
    assert edges[on_line].mean() > 0.5 and edges[off_line].mean() < edges[on_line].mean() / 3

    # result view: before/after slider, edge overlay, download link
    b.click("#showEdges")
    assert b.js("return !document.getElementById('edgemap').hidden;")
    b.click("#showEdges")
    b.js("const c = document.getElementById('compare'); c.value = 70; c.dispatchEvent(new Event('input'));")
    assert "70%" in b.js("return document.getElementById('result').style.clipPath;")  # the divider crosses the hole
    assert b.js("return document.getElementById('download').download;") == "ladybird_lbam.png"
    assert b.js("return document.getElementById('download').href;").startswith("blob:")
    _screenshot(b, "app_result.png")

    # "Edit these edges": the completed edges inside the hole become the sketch (undoable), and Run again
    b.click("#useEdges")
    b.wait("document.body.dataset.state === 'edit'", 10)
    counts = b.js("""
        const a = document.getElementById('sketch'), m = document.getElementById('mask');
        const s = a.getContext('2d').getImageData(0, 0, a.width, a.height).data;
        const h = m.getContext('2d').getImageData(0, 0, m.width, m.height).data;
        let inHole = 0, outside = 0;
        for (let i = 3; i < s.length; i += 4) if (s[i]) { if (h[i]) inHole++; else outside++; }
        return [inHole, outside];""")
    assert counts[0] > 50 and counts[1] == 0, counts
    assert b.js("return document.getElementById('toolEdges').classList.contains('active');")
    _run(b)
    again = np.asarray(Image.open(io.BytesIO(_blob(b, "window.lbamApp.state.result.blob"))))
    assert not np.any(again != original, axis=2)[outside].any()
    result = again  # what "Keep & continue" keeps

    # keep working on the result: a second hole elsewhere; the first fill stays as it was
    b.click("#keep")
    b.wait("document.body.dataset.state === 'edit'", 10)
    assert b.js("return document.getElementById('run').disabled;")
    b.click("#toolHole")
    _set_size(b, 24)
    b.wheel(*stage.viewport([(160, 85)])[0], -500)  # zoom in about the next object: a finer brush there
    zoomed = Stage(b)
    assert zoomed.scale < stage.scale / 1.5
    second = zoomed.viewport([(120, 80), (200, 90)])
    b.drag(second)
    b.click("#undo")
    assert b.js("return document.getElementById('run').disabled;")  # the stroke is undone ...
    b.click("#redo")
    assert not b.js("return document.getElementById('run').disabled;")  # ... and redone
    _run(b)
    result2 = np.asarray(Image.open(io.BytesIO(_blob(b, "window.lbamApp.state.result.blob"))))
    d2 = _distance_to_polyline(h, w, zoomed.image_points(second))
    changed2 = np.any(result2 != result, axis=2)
    assert changed2[d2 < 24 * zoomed.scale / 2 - 2].mean() > 0.9
    assert not changed2[d2 > 24 * zoomed.scale / 2 + 3].any()

    # an error of the server (here: an image it cannot decode) is shown on the page, which keeps working
    b.click("#back")
    b.js("window.lbamApp.state.image.blob = new Blob(['not an image'], {type: 'image/png'});")
    b.click("#run")
    b.wait("document.body.dataset.error === '1'", 60, "the server's error")
    assert "not an image file" in b.js("return document.getElementById('error').textContent;")
    assert b.js("return document.body.dataset.state;") == "edit" and not b.js("return document.body.dataset.busy;")
