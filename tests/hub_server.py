"""A stand-in Hugging Face Hub for tests: just enough of the Hub's HTTP protocol for ``hf_hub_download``.

``FakeHub`` holds model repos (commits of {file name: bytes}, branches/tags pointing at commits) and serves them
from two local threaded HTTP servers on 127.0.0.1 (random ports):

- the Hub: ``HEAD``/``GET {endpoint}/{owner}/{name}/resolve/{revision}/{filename}``.
  Small files (config.json) answer 200 with ``X-Repo-Commit``, a quoted git-blob ``ETag`` and ``Content-Length``.
  LFS files (``*.safetensors``) answer 302 to the "CDN" with ``X-Repo-Commit``, ``X-Linked-Etag`` (the sha256)
  and ``X-Linked-Size``, as the real Hub does for LFS files.
  Errors carry the Hub's ``X-Error-Code``: ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound`` (404).
- the "CDN": ``GET /blobs/{sha256}`` with the bytes. It listens on another port, so it is another origin and
  ``huggingface_hub`` treats the redirect like its real CDN redirects (metadata taken from the 302 itself).

Every request is recorded in ``hub.requests`` as (server, method, path). No Xet headers are sent, so downloads
take the plain HTTP path.
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterable, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.repos: Dict[str, Dict[str, dict]] = {}  # repo_id -> {"commits": {sha: files}, "refs": {name: sha}}
        self.blobs: Dict[str, bytes] = {}  # sha256 -> bytes, served by the CDN
        self.requests: List[Tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._servers: List[ThreadingHTTPServer] = []
        self._threads: List[threading.Thread] = []
        self.endpoint: Optional[str] = None
        self.cdn: Optional[str] = None

    # ---- content ------------------------------------------------------------------------------
    def add_commit(self, repo_id: str, files: Dict[str, bytes], refs: Iterable[str] = ("main",)) -> str:
        """Add a commit holding ``files`` to ``repo_id``; point each of ``refs`` at it; return its 40-hex sha."""
        repo = self.repos.setdefault(repo_id, {"commits": {}, "refs": {}})
        h = hashlib.sha1(repo_id.encode() + b"\0" + str(len(repo["commits"])).encode())
        for name in sorted(files):
            h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        sha = h.hexdigest()
        repo["commits"][sha] = dict(files)
        for ref in refs:
            repo["refs"][ref] = sha
        for data in files.values():
            self.blobs[hashlib.sha256(data).hexdigest()] = data
        return sha

    def _resolve(self, repo_id: str, revision: str) -> Optional[str]:
        repo = self.repos[repo_id]
        if revision in repo["refs"]:
            return repo["refs"][revision]
        return revision if revision in repo["commits"] else None

    # ---- servers ------------------------------------------------------------------------------
    def start(self) -> "FakeHub":
        hub_server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("hub"))
        cdn_server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("cdn"))
        for server in (hub_server, cdn_server):
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        self.endpoint = "http://127.0.0.1:%d" % hub_server.server_address[1]
        self.cdn = "http://127.0.0.1:%d" % cdn_server.server_address[1]
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- HTTP ---------------------------------------------------------------------------------
    def _handler(self, role: str):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _send(self, status: int, headers: Dict[str, str], data: bytes, body: bool) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: Optional[str], message: str, body: bool,
                       extra: Optional[Dict[str, str]] = None) -> None:
                headers = {"Content-Type": "application/json", "X-Error-Message": message}
                if code:
                    headers["X-Error-Code"] = code
                headers.update(extra or {})
                self._send(status, headers, json.dumps({"error": message}).encode(), body)

            def _serve(self, body: bool) -> None:
                path = urlsplit(self.path).path
                with hub._lock:
                    hub.requests.append((role, self.command, path))
                if role == "cdn":
                    return self._serve_blob(path, body)
                parts = path.lstrip("/").split("/")  # owner / name / resolve / revision / file...
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, None, "Not Found", body)
                repo_id = unquote(parts[0]) + "/" + unquote(parts[1])
                revision = unquote(parts[3])
                filename = unquote("/".join(parts[4:]))
                if repo_id not in hub.repos:
                    return self._error(404, "RepoNotFound", "Repository not found", body)
                commit = hub._resolve(repo_id, revision)
                if commit is None:
                    return self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, body)
                files = hub.repos[repo_id]["commits"][commit]
                if filename not in files:
                    return self._error(404, "EntryNotFound", "Entry not found", body, {"X-Repo-Commit": commit})
                data = files[filename]
                if filename.endswith(LFS_SUFFIXES):
                    sha256 = hashlib.sha256(data).hexdigest()
                    pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
                               % (sha256, len(data))).encode()
                    headers = {
                        "X-Repo-Commit": commit,
                        "ETag": '"%s"' % git_blob_sha1(pointer),
                        "X-Linked-Etag": '"%s"' % sha256,
                        "X-Linked-Size": str(len(data)),
                        "Location": "%s/blobs/%s?filename=%s" % (hub.cdn, sha256, parts[-1]),
                    }
                    return self._send(302, headers, b"", body)
                headers = {
                    "X-Repo-Commit": commit,
                    "ETag": '"%s"' % git_blob_sha1(data),
                    "Content-Type": "application/octet-stream",
                }
                return self._send(200, headers, data, body)

            def _serve_blob(self, path: str, body: bool) -> None:
                parts = path.lstrip("/").split("/")
                data = hub.blobs.get(parts[-1]) if len(parts) == 2 and parts[0] == "blobs" else None
                if data is None:
                    return self._error(404, None, "Not Found", body)
                self._send(200, {"Content-Type": "application/octet-stream",
                                 "ETag": '"%s"' % parts[-1]}, data, body)

        return Handler
