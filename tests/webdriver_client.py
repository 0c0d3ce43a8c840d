"""A minimal W3C WebDriver client for the browser test: the system's chromedriver drives the system's Chromium,
headless, over plain HTTP (standard library only; nothing is downloaded)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any, Optional

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--force-device-scale-factor=1",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]


def find_browser() -> tuple:
    """(chromium, chromedriver) paths, or (None, reason). $LBAM_CHROMIUM / $LBAM_CHROMEDRIVER override."""
    chromium = os.environ.get("LBAM_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("LBAM_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not os.path.isfile(chromium):
        return None, "no Chromium found (apt-get install chromium chromium-driver, or set LBAM_CHROMIUM)"
    if not driver or not os.path.isfile(driver):
        return None, "no chromedriver found (apt-get install chromium-driver, or set LBAM_CHROMEDRIVER)"
    return chromium, driver


class WebDriverError(RuntimeError):
    pass


class Browser:
    """A headless Chromium session: ``with Browser(chromium, driver, profile_dir) as b: b.get(url) ...``."""

    def __init__(self, chromium: str, driver: str, profile_dir: str, window=(1280, 800)) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.log = open(os.path.join(profile_dir, "chromedriver.log"), "w")
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (OSError, WebDriverError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        args = CHROMIUM_FLAGS + [f"--user-data-dir={os.path.join(profile_dir, 'profile')}",
                                 f"--window-size={window[0]},{window[1]}"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": args}}}}
        try:
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except Exception:
            self.close()
            raise

    def _call(self, method: str, path: str, payload: Optional[dict] = None, timeout: float = 120) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")
            raise WebDriverError(f"{method} {path}: {e.code} {body[:1000]}") from None

    def _s(self, method: str, path: str, payload: Optional[dict] = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", payload)

    # ---- the few commands the test needs
    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def find(self, css: str) -> dict:
        return self._s("POST", "/element", {"using": "css selector", "value": css})

    def click(self, css: str) -> None:
        self._s("POST", f"/element/{self.find(css)[ELEMENT]}/click", {})

    def send_keys(self, css: str, text: str) -> None:
        self._s("POST", f"/element/{self.find(css)[ELEMENT]}/value", {"text": text})

    def js(self, script: str, *args) -> Any:
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script: str, *args) -> Any:
        """``script`` ends by calling ``arguments[arguments.length - 1](value)``."""
        return self._s("POST", "/execute/async", {"script": script, "args": list(args)})

    def drag(self, points, origin_css: Optional[str] = None, pause_ms: int = 16) -> None:
        """A mouse stroke through ``points``: CSS pixels from the centre of the element ``origin_css``, or from the
        viewport's top left corner when it is None."""
        origin = self.find(origin_css) if origin_css else "viewport"
        acts = [{"type": "pointerMove", "duration": 0, "origin": origin, "x": int(points[0][0]), "y": int(points[0][1])},
                {"type": "pointerDown", "button": 0}]
        for x, y in points[1:]:
            acts.append({"type": "pointerMove", "duration": pause_ms, "origin": origin, "x": int(x), "y": int(y)})
        acts.append({"type": "pointerUp", "button": 0})
        self._s("POST", "/actions", {"actions": [{"type": "pointer", "id": "mouse",
                                                  "parameters": {"pointerType": "mouse"}, "actions": acts}]})
        self._s("DELETE", "/actions")

    def wheel(self, x: int, y: int, delta_y: int) -> None:
        """A mouse-wheel turn at viewport point (x, y); negative ``delta_y`` scrolls up (zooms in, on the page)."""
        self._s("POST", "/actions", {"actions": [{"type": "wheel", "id": "wheel", "actions": [
            {"type": "scroll", "origin": "viewport", "x": int(x), "y": int(y), "deltaX": 0, "deltaY": int(delta_y)}]}]})
        self._s("DELETE", "/actions")

    def wait(self, script: str, timeout: float = 60, what: str = "") -> Any:
        """Poll the JavaScript expression ``script`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(f"return ({script});")
            if value:
                return value
            if time.monotonic() > deadline:
                raise WebDriverError(f"timed out after {timeout} s waiting for {what or script}")
            time.sleep(0.1)

    def screenshot(self) -> bytes:
        return base64.b64decode(self._s("GET", "/screenshot"))

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}", timeout=30)
        except Exception:
            pass
        finally:
            self.session = None
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.log.close()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
