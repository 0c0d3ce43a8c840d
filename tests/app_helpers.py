"""Helpers of the ``lbam app`` tests: multipart requests with the standard library only."""
from __future__ import annotations

import http.client
import io
import json
import uuid
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np
from PIL import Image


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def multipart(fields: Dict[str, object]) -> Tuple[bytes, str]:
    """fields: name -> bytes (a file part) or str (a text part) -> (body, content type)."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, bytes):
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n".encode())
            out.write(value)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Answer:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def image(self) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.body)))


def request(url: str, method: str = "GET", body: Optional[bytes] = None, headers: Optional[dict] = None) -> Answer:
    """One HTTP request on a fresh connection; 4xx/5xx answers are returned, not raised."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers=headers or {})
        r = conn.getresponse()
        return Answer(r.status, r.headers, r.read())
    finally:
        conn.close()


def post_inpaint(base_url: str, headers: Optional[dict] = None, **fields) -> Answer:
    body, ctype = multipart(fields)
    return request(base_url + "api/inpaint", "POST", body, {"Content-Type": ctype, **(headers or {})})
