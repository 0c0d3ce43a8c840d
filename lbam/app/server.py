"""The ``lbam app`` server: a Starlette ASGI application run by uvicorn (see :mod:`lbam.app` for the routes).

:func:`create_app` builds the application around an :class:`~lbam.Inpainter`; :func:`serve` binds a socket,
prints the URL, optionally opens a browser and serves until interrupted; :func:`run_in_thread` serves in a
background thread (tests, notebooks).

One inference runs at a time (a lock around the networks); decoding, the checks and the PNG encoding run in
worker threads, so the page, ``/api/info`` and answers to bad requests keep coming while a large photo is
being filled. Every error is a JSON answer ``{"error": "..."}``: 400 bad input, 403 foreign host or origin,
404 unknown route or expired edge map, 413 upload or image too large, 500 a failure of the server itself.
"""
from __future__ import annotations

import io
import ipaddress
import logging
import secrets
import socket
import struct
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, ImageOps
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import io as lbam_io
from ..detail import DETAILS
from ..tiling import STRATEGIES
from ..errors import InputError, LbamError

log = logging.getLogger("lbam.app")

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_BYTES = 64 * 2**20  # one request: image + mask + edges
DEFAULT_MAX_PIXELS = 50_000_000  # per image (decoded); about 8660 x 5773
MAX_DILATE = 64
EDGE_MAPS_KEPT = 16
#: formats the server decodes (no EPS/PostScript and other plugins that run external programs)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")  # JPEG includes multi-picture (MPO) files
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


class ApiError(Exception):
    """An answer ``{"error": message}`` with an HTTP status (4xx: the request's fault)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def _megapixels(n: float) -> str:
    return f"{n / 1e6:.1f}".rstrip("0").rstrip(".") + " megapixels"


def decode_image(data: bytes, what: str, max_pixels: int) -> Image.Image:
    """Uploaded bytes -> a fully decoded PIL image, upright (EXIF orientation applied, as browsers show it).

    Raises ApiError 400 for an empty, unknown, truncated or corrupt file, 413 above ``max_pixels``."""
    if not data:
        raise ApiError(400, f"{what} is empty")
    Image.init()
    formats = [f for f in FORMATS if f in Image.OPEN]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            img = Image.open(io.BytesIO(data), formats=formats)
            w, h = img.size
            if w * h > max_pixels:
                raise ApiError(413, f"{what} is {w}x{h} = {_megapixels(w * h)}, more than this server's limit of "
                                    f"{_megapixels(max_pixels)}")
            img.load()
            try:
                upright = ImageOps.exif_transpose(img)
            except Exception:  # broken EXIF must not make a decodable image unusable
                upright = None
            return img if upright is None else upright
    except ApiError:
        raise
    except Image.DecompressionBombError as e:
        raise ApiError(413, f"{what} is too large: {e}") from None
    except Image.UnidentifiedImageError:
        raise ApiError(400, f"{what}: not an image file this server can read (formats: {', '.join(formats)})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as e:
        raise ApiError(400, f"{what} cannot be decoded (truncated or corrupt file?): {e}") from None


def _rgb_or_rgba(img: Image.Image) -> Image.Image:
    """What the page shows and the result keeps: 8-bit RGB, or RGBA where the image has transparency."""
    if img.mode.startswith("I"):  # 16-bit gray (PIL's convert would clip it, not scale it)
        img = Image.fromarray((np.clip(np.asarray(img, np.float64), 0, 65535) / 257).round().astype(np.uint8), "L")
    elif img.mode == "F":  # float gray: [0, 1] as in lbam.io
        img = Image.fromarray((np.clip(np.asarray(img), 0, 1) * 255).round().astype(np.uint8), "L")
    alpha = "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info)
    mode = "RGBA" if alpha else "RGB"
    return img if img.mode == mode else img.convert(mode)


def encode_png(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=3, **params)
    return buf.getvalue()


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes. A refused body is read on (and dropped) up to a
    bound, so the client sees the answer instead of a reset connection."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_n = int(declared)
        except ValueError:
            raise ApiError(400, f"invalid Content-Length {declared!r}") from None
    else:
        declared_n = 0
    too_large = ApiError(413, f"upload too large: the limit is {limit / 2**20:g} MiB per request")
    drain_cap = 4 * limit + 2**20
    if declared_n > limit:
        if declared_n <= drain_cap:
            async for _ in request.stream():
                pass
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.clear()
            if size > drain_cap:
                break
            continue
        chunks.append(chunk)
    if size > limit:
        raise too_large
    return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class _LocalGuard:
    """ASGI middleware: refuse Host headers that do not name this machine when serving on loopback (DNS
    rebinding) and state-changing requests whose Origin is another site (a web page POSTing to localhost)."""

    def __init__(self, app, allowed_hosts: Optional[set]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get(b"host", "")
            name = urlsplit("//" + host).hostname or ""
            message = None
            if self.allowed_hosts is not None and name not in self.allowed_hosts:
                message = f"host {host!r} refused: this server answers requests to {', '.join(sorted(self.allowed_hosts))}"
            origin = headers.get(b"origin")
            if message is None and origin is not None and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
                if urlsplit(origin).netloc.lower() != host.lower():
                    message = f"cross-origin request from {origin!r} refused"
            if message is not None:
                await _error(403, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _State:
    def __init__(self, inpainter, max_upload_bytes: int, max_pixels: int) -> None:
        self.inpainter = inpainter
        self.max_upload_bytes = int(max_upload_bytes)
        self.max_pixels = int(max_pixels)
        self.lock = threading.Lock()  # one inference at a time
        self.edges: "OrderedDict[str, bytes]" = OrderedDict()
        self.edges_lock = threading.Lock()
        self.runs = 0

    def keep_edges(self, png: bytes) -> str:
        key = secrets.token_hex(8)
        with self.edges_lock:
            self.edges[key] = png
            while len(self.edges) > EDGE_MAPS_KEPT:
                self.edges.popitem(last=False)
        return key

    def info(self) -> dict:
        inp = self.inpainter
        return {"weights": inp.name, "config": inp.config.name, "device": str(inp.device),
                "max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                "max_dilate": MAX_DILATE, "strategies": list(STRATEGIES), "details": list(DETAILS), "runs": self.runs}

    def inpaint(self, image_bytes: bytes, mask_bytes: bytes, edges_bytes: Optional[bytes], dilate: int,
                strategy: str, detail: str = "none") -> Tuple[bytes, bytes, float]:
        """Decode, check and fill (in a worker thread) -> (result PNG, edge map PNG, seconds of inference).
        detail: ``Inpainter.detail`` for this request (set under the lock, so requests do not mix)."""
        image = decode_image(image_bytes, "image", self.max_pixels)
        mask = decode_image(mask_bytes, "mask", self.max_pixels)
        edges = decode_image(edges_bytes, "edges", self.max_pixels) if edges_bytes is not None else None
        # an RGB colour profile travels to the result (a CMYK or gray one would not fit the RGB result)
        icc = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
        image = _rgb_or_rgba(image)
        size = (image.height, image.width)
        for what, m in (("mask", mask), ("edges", edges)):
            if m is not None and m.size != image.size:
                raise ApiError(400, f"{what} is {m.width}x{m.height} but the image is {image.width}x{image.height}; "
                                    f"the {what} must have the image's size")
        try:
            hole = lbam_io.to_hole_mask(mask, size)[0]
            guide = lbam_io.to_hole_mask(edges, size)[0] if edges is not None else None
        except InputError as e:
            raise ApiError(400, str(e)) from None
        if not hole.any():
            raise ApiError(400, "the mask has no hole: paint over what to remove (white = hole)")
        if guide is not None and not guide.any():
            guide = None  # an empty sketch would erase the predicted edges inside the hole
        with self.lock:
            t0 = time.perf_counter()
            self.inpainter.detail = detail
            try:
                result, edge_map = self.inpainter.inpaint(image, hole, edges=guide, return_edges=True,
                                                          dilate=dilate, strategy=strategy)
            except InputError as e:
                raise ApiError(400, str(e)) from None
            seconds = time.perf_counter() - t0
            self.runs += 1
        png = encode_png(result, **({"icc_profile": icc} if icc else {}))
        edge_png = encode_png(Image.fromarray(np.round(np.clip(edge_map, 0, 1) * 255).astype(np.uint8), "L"))
        return png, edge_png, seconds


def _file_field(form, name: str, required: bool) -> Optional[bytes]:
    value = form.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"missing field {name!r}: POST multipart/form-data with the fields image and mask "
                                "(white = hole), optionally edges")
        return None
    if not isinstance(value, UploadFile):
        raise ApiError(400, f"field {name!r} must be a file (multipart part with a filename), not text")
    return value.file.read()


def _int_field(form, name: str, default: int, lo: int, hi: int) -> int:
    value = form.get(name)
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"field {name!r} must be an integer, got {str(value)[:40]!r}") from None
    if not lo <= n <= hi:
        raise ApiError(400, f"field {name!r} must be in [{lo}, {hi}], got {n}")
    return n


def create_app(inpainter, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               allowed_hosts: Optional[set] = frozenset(LOOPBACK_NAMES)) -> Starlette:
    """The ASGI application around ``inpainter`` (an :class:`lbam.Inpainter`).

    allowed_hosts: host names the Host header may carry (None: any, for serving on a network interface)."""
    state = _State(inpainter, max_upload_bytes, max_pixels)

    async def index(request: Request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def info(request: Request):
        return JSONResponse(state.info())

    async def inpaint(request: Request):
        body = await _read_limited(request, state.max_upload_bytes)
        replayed = Request(request.scope, receive=_replay(body))
        form = await replayed.form(max_files=3, max_fields=10, max_part_size=state.max_upload_bytes)
        try:
            image = _file_field(form, "image", True)
            mask = _file_field(form, "mask", True)
            edges = _file_field(form, "edges", False)
            dilate = _int_field(form, "dilate", 0, 0, MAX_DILATE)
            strategy = str(form.get("strategy") or "auto")
            if strategy not in STRATEGIES:
                raise ApiError(400, f"field 'strategy' must be one of {', '.join(STRATEGIES)}, got {strategy[:40]!r}")
            detail = str(form.get("detail") or "none")
            if detail not in DETAILS:
                raise ApiError(400, f"field 'detail' must be one of {', '.join(DETAILS)}, got {detail[:40]!r}")
        finally:
            await form.close()
        png, edge_png, seconds = await run_in_threadpool(state.inpaint, image, mask, edges, dilate, strategy, detail)
        key = state.keep_edges(edge_png)
        return Response(png, media_type="image/png",
                        headers={"X-Lbam-Edges": f"/api/edges/{key}", "X-Lbam-Seconds": f"{seconds:.3f}",
                                 "Cache-Control": "no-store"})

    async def edges(request: Request):
        with state.edges_lock:
            png = state.edges.get(request.path_params["key"])
        if png is None:
            raise ApiError(404, f"no edge map {request.path_params['key']!r} (only the last {EDGE_MAPS_KEPT} are kept)")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.message)

    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception):
        log.exception("lbam app: %s %s failed", request.method, request.url.path)
        if isinstance(exc, MemoryError):
            return _error(500, "out of memory while filling this image: try a smaller image")
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/api/info", info, methods=["GET"]),
        Route("/api/inpaint", inpaint, methods=["POST"]),
        Route("/api/edges/{key}", edges, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error,
                                                        Exception: server_error})
    app.state.lbam = state
    app.add_middleware(_LocalGuard, allowed_hosts=None if allowed_hosts is None else set(allowed_hosts))
    return app


def bind(host: str, port: Optional[int]) -> socket.socket:
    """A listening TCP socket on (host, port); port None: DEFAULT_PORT, or any free port when it is taken;
    port 0: any free port. Raises LbamError naming the address when it cannot be bound."""
    tries = [DEFAULT_PORT, 0] if port is None else [port]
    err: Optional[OSError] = None
    for p in tries:
        try:
            infos = socket.getaddrinfo(host, p, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise LbamError(f"cannot resolve --host {host!r}: {e}") from None
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
            sock.listen(128)  # connections wait in the backlog from now on, so the printed URL works at once
            return sock
        except OSError as e:
            sock.close()
            err = e
    raise LbamError(f"cannot listen on {host}:{tries[-1]}: {err.strerror if err else err}; choose another --port")


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _uvicorn_server(app, log_level: str):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("info", "debug", "trace"),
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve(inpainter, *, host: str = "127.0.0.1", port: Optional[int] = None, open_browser: bool = True,
          max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
          log_level: str = "warning", announce: Callable[[str], None] = print,
          sock: Optional[socket.socket] = None) -> None:
    """Serve the app until interrupted (Ctrl+C). Prints the URL through ``announce``.

    sock: a socket from :func:`bind` (host, port) already bound (to fail early, before loading weights)."""
    loopback = is_loopback(host)
    sock = bind(host, port) if sock is None else sock
    url = url_of(sock, host)
    app = create_app(inpainter, max_upload_bytes=max_upload_bytes, max_pixels=max_pixels,
                     allowed_hosts=(LOOPBACK_NAMES | {host}) if loopback else None)
    server = _uvicorn_server(app, log_level)
    announce(f"lbam app: {inpainter.name} on {inpainter.device}, serving on {url}  (Ctrl+C to stop)")
    if not loopback:
        announce(f"lbam app: listening on {host}: anyone who can reach this machine on port "
                 f"{sock.getsockname()[1]} can use it")
    if open_browser:
        def _open():
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                import webbrowser

                try:
                    webbrowser.open(url)
                except Exception as e:  # no browser is not an error: the URL is printed
                    log.warning("could not open a browser: %s", e)

        threading.Thread(target=_open, daemon=True).start()
    try:
        server.run(sockets=[sock])  # uvicorn shuts down gracefully on Ctrl+C, then re-raises the signal
    except KeyboardInterrupt:
        pass
    announce("lbam app: stopped")


class run_in_thread:
    """Serve ``app`` on ``host``:``port`` (0 = a free port) in a daemon thread: ``with run_in_thread(app) as url``.

    Meant for tests and notebooks; the server stops when the block ends."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.sock = bind(host, port)
        self.url = url_of(self.sock, host)
        self.server = _uvicorn_server(app, log_level)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
