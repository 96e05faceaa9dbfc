"""A real HTTP server on 127.0.0.1 for download tests: serves bytes, counts requests, can cut a transfer."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serve ``files`` (path -> bytes) to GET and HEAD, each with its ``headers`` (path -> name -> value) too, as
    the Hugging Face hub sends a file's commit and etag; paths in ``truncated`` announce the full length but send
    half. ``requests`` lists (method, path) of every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.truncated: set[str] = set()
        self.not_found_headers: dict[str, str] = {}  # sent with every 404 (the hub's X-Error-Code)
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
                self._send_headers()

            def do_GET(self) -> None:  # noqa: N802
                body = self._send_headers()
                if body is None:
                    return
                if self.path in server.truncated:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def _send_headers(self) -> bytes | None:
                """Answer with the file's status and headers; its body, or None after a 404."""
                server.requests.append((self.command, self.path))
                body = server.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    for name, value in {"Content-Length": "0", **server.not_found_headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    return None
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                for name, value in server.headers.get(self.path, {}).items():
                    self.send_header(name, value)
                self.end_headers()
                return body

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_url() -> str:
    """A URL on 127.0.0.1 whose port was just freed, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"
