"""Issue 11 item 7: bounded downloads. A local http.server on 127.0.0.1 (in a thread) serves whole,
oversized and trickled bodies; downloads must end by the deadline and the size cap with a clear
MediaError, and the same cap applies to bytes and base64 media (measured before decoding)."""

import base64
import http.server
import io
import threading
import time

import pytest
from PIL import Image

from mmreward.data.media import MediaError, load_image, set_media_limits
from mmreward.data.media import fetch as media_fetch


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path == "/ok.png":
            self._head(len(PNG))
            self.wfile.write(PNG)
        elif self.path == "/big-declared":
            self._head(10_000)
            self.wfile.write(b"\0" * 10_000)
        elif self.path == "/big-chunked":  # no Content-Length: the cap must apply while reading
            self.send_response(200)
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"\0" * 1000)
        elif self.path == "/trickle":  # one byte every 50 ms, for up to 5 s: every read succeeds
            self._head(100)
            for _ in range(100):
                try:
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
        elif self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/secret.png")
            self.end_headers()
        elif self.path == "/to-ok":
            self.send_response(302)
            self.send_header("Location", "/ok.png")
            self.end_headers()
        else:
            self.send_error(404)

    def _head(self, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def limits():
    before = media_fetch.limits()
    yield
    set_media_limits(max_bytes=before.max_bytes, url_deadline_s=before.url_deadline_s)


def test_defaults_are_sane():
    assert media_fetch.DEFAULT_MAX_BYTES == 200 << 20 and media_fetch.DEFAULT_URL_DEADLINE_S == 60
    with pytest.raises(ValueError, match="max_bytes must be > 0"):
        set_media_limits(max_bytes=0)


def test_download_ok_and_http_errors(server, limits):
    assert load_image(f"{server}/ok.png").size == (20, 10)
    with pytest.raises(MediaError, match=r"/missing.png: download failed \(HTTP Error 404"):
        load_image(f"{server}/missing.png")
    assert load_image(f"{server}/to-ok").size == (20, 10)  # http redirects are followed
    with pytest.raises(MediaError, match=r"to-ftp: redirect to ftp://127.0.0.1/secret.png refused"):
        load_image(f"{server}/to-ftp")


def test_size_cap_by_header_and_while_reading(server, limits):
    set_media_limits(max_bytes=5000)
    with pytest.raises(MediaError, match="big-declared: download of 10000 bytes exceeds the 5000-byte media limit"):
        load_image(f"{server}/big-declared")
    with pytest.raises(MediaError, match="big-chunked: download exceeds the 5000-byte media limit"):
        load_image(f"{server}/big-chunked")


def test_trickling_server_hits_the_total_deadline(server, limits):
    set_media_limits(url_deadline_s=0.5)
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"trickle: download exceeded the 0.5 s deadline \(\d+ bytes received\)"):
        load_image(f"{server}/trickle")
    # Generous bound: the server would take 5 s; a per-read timeout alone would never fire.
    assert time.monotonic() - started < 4.0


def test_bytes_and_base64_share_the_cap(limits):
    set_media_limits(max_bytes=len(PNG) + 10)
    b64 = base64.b64encode(PNG).decode()
    assert load_image(PNG).size == load_image(b64).size == load_image(f"data:image/png;base64,{b64}").size
    set_media_limits(max_bytes=len(PNG) - 10)
    with pytest.raises(MediaError, match=f"<{len(PNG)} bytes>: media larger than the {len(PNG) - 10}-byte limit"):
        load_image(PNG)
    with pytest.raises(MediaError, match="<base64>: base64 payload of .* exceeds the .*-byte media limit"):
        load_image(b64)
    with pytest.raises(MediaError, match="<data URI>: base64 payload"):
        load_image(f"data:image/png;base64,{b64}")


def test_base64_is_refused_before_decoding(limits, monkeypatch):
    set_media_limits(max_bytes=1000)
    monkeypatch.setattr(media_fetch.base64, "b64decode", lambda *a, **k: pytest.fail("decoded anyway"))
    with pytest.raises(MediaError, match="exceeds the 1000-byte media limit"):
        media_fetch.read_base64("A" * 40_000, "<base64>")
