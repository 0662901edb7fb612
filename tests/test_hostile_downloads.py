"""Hostile servers, addresses, archives and registries for `dqcl data fetch/list/register`.

Every case ends with one line `dqcl: error: ...` naming the address or the file and the problem,
exit code 2, no traceback, nothing over the per-file cap on disk and no half-extracted folder.
The servers listen on 127.0.0.1 only, serve a bounded number of connections, and stop by
themselves after a few seconds; the limits are made small through the environment so that
every test finishes in seconds.
"""

from __future__ import annotations

import io
import json
import re
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from dqcl.cli import main
from dqcl.data.sources.recipes import Download

from fixture_server import FileServer
from test_data import fixture_recipe  # noqa: F401  (a pytest fixture)

CAP = 200_000  # DQCL_MAX_FILE_BYTES in these tests


@pytest.fixture(autouse=True)
def small_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("DQCL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DQCL_MAX_FILE_BYTES", str(CAP))
    monkeypatch.setenv("DQCL_DOWNLOAD_TIMEOUT", "20")
    monkeypatch.setenv("DQCL_DOWNLOAD_MIN_RATE", "100")
    monkeypatch.setenv("DQCL_DOWNLOAD_RATE_WINDOW", "2")


# ---- a raw-socket server for responses no HTTP library would send ------------------------------


class RawServer:
    """A one-thread TCP server on 127.0.0.1: each connection's request is read, then ``respond(conn,
    server, path)`` writes whatever bytes it likes. At most ``max_conns`` connections, and it stops by
    itself ``seconds`` after it starts (or when the test leaves the ``with``)."""

    def __init__(self, respond: Callable[[socket.socket, "RawServer", str], None], max_conns: int = 4,
                 seconds: float = 15.0) -> None:
        self.respond = respond
        self.max_conns = max_conns
        self.deadline = time.monotonic() + seconds
        self.stopped = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.url = f"{self.base}/file.zip"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def alive(self) -> bool:
        return not self.stopped.is_set() and time.monotonic() < self.deadline

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless told to stop; whether still alive."""
        self.stopped.wait(seconds)
        return self.alive()

    def _serve(self) -> None:
        served = 0
        while served < self.max_conns and self.alive():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # the accept timeout: look at the clock again
                continue
            served += 1
            with conn:
                conn.settimeout(5)
                try:
                    self.respond(conn, self, _request_path(conn))
                except OSError:  # the client gave up, as it should
                    pass
        self.sock.close()

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def _request_path(conn: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        got = conn.recv(4096)
        if not got:
            break
        data += got
    parts = data.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) > 2 else "/"


def _send(text: str | bytes) -> Callable[[socket.socket, RawServer, str], None]:
    """A responder that sends ``text`` and closes."""
    def respond(conn, srv, path):
        conn.sendall(text.encode("latin-1") if isinstance(text, str) else text)
    return respond


def _header_flood(conn, srv, path):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for i in range(200):  # 200 lines of 60 kB: 12 MB of headers, each line under http.client's 64 kB
        if not srv.alive():
            return
        conn.sendall(f"X-Pad-{i}: ".encode() + b"a" * 60_000 + b"\r\n")
    conn.sendall(b"\r\n")


def _redirect_to(target: Callable[[RawServer, str], str]):
    def respond(conn, srv, path):
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target(srv, path)}\r\nContent-Length: 0\r\n\r\n".encode())
    return respond


def _zeros(head: str, chunked: bool = False, limit: int = 64 * 2**20):
    """Zeros after ``head`` until the client hangs up, the server's time is up or ``limit`` bytes went."""
    def respond(conn, srv, path):
        conn.sendall(head.encode())
        block = b"\0" * 65536
        if chunked:
            block = b"10000\r\n" + block + b"\r\n"
        sent = 0
        while srv.alive() and sent < limit:
            conn.sendall(block)
            sent += len(block)
    return respond


def _trickle(head: str, body: bytes, every: float):
    """``head`` at once, then ``body`` one byte every ``every`` seconds."""
    def respond(conn, srv, path):
        conn.sendall(head.encode())
        for i in range(len(body)):
            conn.sendall(body[i : i + 1])
            if not srv.pause(every):
                return
    return respond


def _silence(conn, srv, path):
    while srv.alive() and conn.recv(1):  # until the client hangs up
        pass


# ---- checks ------------------------------------------------------------------------------------


def _error(capsys) -> str:
    """The one error line: stderr holds nothing else but the fetch's own notes ('NAME: downloading URL', ...)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    notes = [line for line in lines[:-1]
             if re.fullmatch(r"fx-[\w-]+: (downloading \S+|\S+ has no published checksum; .* goes into the manifest)", line)]
    assert lines and lines[-1].startswith("dqcl: error: ") and len(notes) == len(lines) - 1, err
    assert len(lines[-1]) < 400, lines[-1]  # short: no flood of a server's bytes
    return lines[-1]


def _nothing_over_the_cap(out: Path) -> None:
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert all(size <= CAP for size in sizes.values()), sizes


def _nothing_extracted(out: Path) -> None:
    raw = out / "raw"
    assert not raw.exists() or not any(raw.iterdir()), list(raw.rglob("*"))  # no staging folder, no member
    assert not (out / "train").exists() and not (out / "test").exists()


def _fetch(fixture_recipe, name: str, url: str, out: Path) -> tuple[int, float]:
    fixture_recipe(name, [Download(url)])
    t = time.perf_counter()
    code = main(["data", "fetch", name, "--to", str(out)])
    return code, time.perf_counter() - t


# ---- bytes -------------------------------------------------------------------------------------


def test_a_declared_terabyte_is_refused_before_a_byte_is_written(tmp_path, capsys, fixture_recipe):
    head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n"
    with RawServer(_zeros(head, limit=2**20)) as srv:
        code, took = _fetch(fixture_recipe, "fx-tera", srv.url, tmp_path / "x")
    err = _error(capsys)
    assert code == 2 and srv.url in err and "1,000,000,000,000 bytes" in err and "DQCL_MAX_FILE_BYTES" in err
    assert not any((tmp_path / "x" / "downloads").iterdir())  # not even an empty .part
    assert took < 5


@pytest.mark.parametrize("chunked", [False, True], ids=["no-length", "chunked"])
def test_zeros_forever_stop_at_the_cap_and_leave_nothing(tmp_path, capsys, fixture_recipe, chunked):
    head = "HTTP/1.1 200 OK\r\n" + ("Transfer-Encoding: chunked\r\n" if chunked else "Connection: close\r\n") + "\r\n"
    with RawServer(_zeros(head, chunked=chunked)) as srv:
        code, took = _fetch(fixture_recipe, "fx-zeros", srv.url, tmp_path / "x")
    err = _error(capsys)
    assert code == 2 and srv.url in err and f"more than {CAP:,} bytes arrived" in err and "deleted" in err
    assert not any((tmp_path / "x" / "downloads").iterdir())
    _nothing_over_the_cap(tmp_path / "x")
    assert took < 5


def test_a_fast_mirror_of_zeros_stops_at_the_files_own_size_under_the_default_limits(tmp_path, capsys, fixture_recipe, monkeypatch):
    """Faster than any rate floor: with no limit set, the recipe's known size (plus margin) is the cap,
    so the transfer ends within seconds, not at 8 GiB; a Content-Length over it is refused at once."""
    for name in ("DQCL_MAX_FILE_BYTES", "DQCL_DOWNLOAD_TIMEOUT", "DQCL_DOWNLOAD_MIN_RATE", "DQCL_DOWNLOAD_RATE_WINDOW"):
        monkeypatch.delenv(name, raising=False)
    own = 2**20
    head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    with RawServer(_zeros(head, limit=64 * own)) as srv:
        fixture_recipe("fx-fast", [Download(srv.url, max_bytes=own)])
        t = time.perf_counter()
        code = main(["data", "fetch", "fx-fast", "--to", str(tmp_path / "x")])
        took = time.perf_counter() - t
    err = _error(capsys)
    assert code == 2 and f"more than {own:,} bytes arrived" in err and "deleted" in err
    sizes = [p.stat().st_size for p in (tmp_path / "x").rglob("*") if p.is_file()]
    assert all(size <= own for size in sizes), sizes
    assert took < 60
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {2 * own}\r\n\r\n"
    with RawServer(_zeros(head, limit=own)) as srv:
        fixture_recipe("fx-fast", [Download(srv.url, max_bytes=own)])
        assert main(["data", "fetch", "fx-fast", "--to", str(tmp_path / "y")]) == 2
    assert f"{2 * own:,} bytes" in _error(capsys)
    assert not any((tmp_path / "y" / "downloads").iterdir())


def test_a_lying_content_length_is_read_no_further(tmp_path, capsys, fixture_recipe):
    head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"  # then zeros without end
    with RawServer(_zeros(head, limit=4 * CAP)) as srv:
        code, _ = _fetch(fixture_recipe, "fx-liar", srv.url, tmp_path / "x")
    err = _error(capsys)
    # 1,000 bytes were taken, as announced; they are no zip, and that is the one line
    assert code == 2 and (tmp_path / "x" / "downloads" / "file.zip").stat().st_size == 1000
    assert "file.zip: damaged archive (not a readable zip file)" in err
    _nothing_over_the_cap(tmp_path / "x")
    _nothing_extracted(tmp_path / "x")


# ---- progress ----------------------------------------------------------------------------------


@pytest.mark.parametrize("server, expect", [
    (_trickle("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"z" * 10, every=2.0), "slower than 100 bytes/s"),
    (_trickle("", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz", every=0.5), "slower than 100 bytes/s"),
    (_silence, "slower than 100 bytes/s|read timeout"),
], ids=["body-byte-every-2s", "status-line-trickle", "silence"])
def test_a_server_below_the_rate_floor_is_given_up_on_within_the_window(tmp_path, capsys, fixture_recipe, server, expect):
    with RawServer(server) as srv:
        code, took = _fetch(fixture_recipe, "fx-slow", srv.url, tmp_path / "x")
    err = _error(capsys)
    assert code == 2 and srv.url in err and re.search(expect, err), err
    assert took < 6  # a window of 2 s, checked twice a second
    _nothing_over_the_cap(tmp_path / "x")


def test_with_the_rate_floor_off_one_read_still_waits_no_longer_than_the_window(tmp_path, capsys, fixture_recipe, monkeypatch):
    monkeypatch.setenv("DQCL_DOWNLOAD_MIN_RATE", "0")
    with RawServer(_silence) as srv:
        code, took = _fetch(fixture_recipe, "fx-mute", srv.url, tmp_path / "x")
    err = _error(capsys)
    assert code == 2 and srv.url in err and "no data before the read timeout" in err and took < 5


def test_the_default_limits_give_up_on_a_trickle_within_a_minute(monkeypatch):
    from dqcl.data.sources.download import _Watch, transfer_limits

    for name in ("DQCL_MAX_FILE_BYTES", "DQCL_DOWNLOAD_TIMEOUT", "DQCL_DOWNLOAD_MIN_RATE", "DQCL_DOWNLOAD_RATE_WINDOW"):
        monkeypatch.delenv(name, raising=False)
    lim = transfer_limits()
    assert lim.max_bytes == 8 * 2**30 and lim.seconds == 6 * 3600 and lim.min_rate == 1000 and lim.window == 30
    # replay the watch's clock for a byte every 2 s, ticking as its thread does: when does it give up?
    watch = _Watch(lim)
    samples = __import__("collections").deque([(watch._start, 0)])
    tick = min(0.5, lim.window / 4)
    gave_up = None
    for k in range(1, 400):
        now = watch._start + k * tick
        watch.done = int(k * tick // 2)
        if watch._check(now, samples):
            gave_up = k * tick
            break
    assert gave_up is not None and gave_up <= 31  # the window, to the tick: well within a minute


@pytest.mark.parametrize("name, value, expect", [
    ("DQCL_DOWNLOAD_MIN_RATE", "fast", "DQCL_DOWNLOAD_MIN_RATE='fast': expected a number"),
    ("DQCL_DOWNLOAD_RATE_WINDOW", "0", "DQCL_DOWNLOAD_RATE_WINDOW must be at least 1"),
    ("DQCL_DOWNLOAD_MIN_RATE", "nan", "DQCL_DOWNLOAD_MIN_RATE must be"),
])
def test_a_bad_limit_in_the_environment_is_one_line(tmp_path, capsys, fixture_recipe, monkeypatch, name, value, expect):
    monkeypatch.setenv(name, value)
    code, _ = _fetch(fixture_recipe, "fx-env", "http://127.0.0.1:9/file.zip", tmp_path / "x")
    assert code == 2 and expect in _error(capsys)


# ---- malformed responses -----------------------------------------------------------------------


def _self(srv: RawServer, path: str) -> str:
    return srv.base + path


@pytest.mark.parametrize("server, expect", [
    (_send("HELLO WORLD\r\n\r\n"), r"malformed response from the server \(bad status line 'HELLO WORLD"),
    (_send("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nbody"), r"malformed response \(Content-Length 'abc' is not a number"),
    (_send("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nbody"), r"Content-Length '-5' is not a number"),
    (_send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n"), r"chunked encoding is malformed"),
    (_header_flood, r"malformed response from the server \(got more than 100 headers\)"),
    (_send("HTTP/1.1 200 OK\r\nX-Long: " + "a" * 70_000 + "\r\n\r\n"), r"malformed response from the server \(got more than 65536 bytes"),
    (_send("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\nabcde"),
     r"malformed response \(HTTP 206 Partial Content to a request for the whole file\)"),
    (_send("HTTP/1.1 204 No Content\r\n\r\n"), r"malformed response \(HTTP 204 No Content to a request for the whole file\)"),
    (_redirect_to(_self), r"redirect loop \(HTTP 302 back to http://127\.0\.0\.1:\d+/file\.zip\)"),
    (_redirect_to(lambda srv, p: srv.base + ("/b" if p == "/file.zip" else "/file.zip")), r"redirect loop"),
    (_redirect_to(lambda srv, p: "ftp://127.0.0.1/file.zip"), r"redirected \(HTTP 302\) to 'ftp://127\.0\.0\.1/file\.zip', which is not an http\(s\) address"),
    (_redirect_to(lambda srv, p: "file:///etc/passwd"), r"(?i)download failed \(HTTP 302 .*redirection to url 'file:///etc/passwd' is not allowed\)"),
    (_send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xff" * 64), r"malformed response from the server"),
], ids=["status-line", "length-abc", "length-negative", "bad-chunk", "header-flood", "header-line-70kB",
        "unasked-206", "204", "redirect-to-itself", "redirect-ping-pong", "redirect-ftp", "redirect-file", "tls-bytes"])
def test_a_malformed_response_is_one_line_naming_the_address(tmp_path, capsys, fixture_recipe, server, expect):
    with RawServer(server, max_conns=6) as srv:
        code, took = _fetch(fixture_recipe, "fx-bad", srv.url, tmp_path / "x")
    err = _error(capsys)
    assert code == 2 and err.startswith(f"dqcl: error: {srv.url}: ") and re.search(expect, err), err
    assert took < 8
    _nothing_over_the_cap(tmp_path / "x")
    _nothing_extracted(tmp_path / "x")


def test_a_resume_answered_from_the_wrong_offset_is_refused(tmp_path, capsys, fixture_recipe):
    out = tmp_path / "x"
    (out / "downloads").mkdir(parents=True)
    (out / "downloads" / "file.zip.part").write_bytes(b"12345")
    reply = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nContent-Length: 10\r\n\r\n0123456789"
    with RawServer(_send(reply)) as srv:
        code, _ = _fetch(fixture_recipe, "fx-offset", srv.url, out)
    err = _error(capsys)
    assert code == 2 and "asked to resume at byte 5" in err and "'bytes 0-9/10'" in err
    assert (out / "downloads" / "file.zip.part").read_bytes() == b"12345"  # nothing appended


@pytest.mark.parametrize("mirror, expect", [
    ("127.0.0.1:8000", "no scheme"),
    ("example.org/data", "no scheme"),
    ("ftp://127.0.0.1/pub", "'ftp:' addresses are not fetched"),
    ("file:///etc", "'file:' addresses are not fetched"),
    ("http://", "no host"),
    ("http://127.0.0.1:notaport/", "malformed"),
    ("http://[::1/", "malformed"),
    ("::garbage::", "no scheme"),
    ("http://127.0.0.1/a b", "spaces or control characters"),
    ("http://127.0.0.1/\x1b[31mred", "spaces or control characters"),
])
def test_a_bad_mirror_is_one_line_and_makes_nothing(tmp_path, capsys, mirror, expect):
    out = tmp_path / "x"
    assert main(["data", "fetch", "bbbc038", "--to", str(out), "--mirror", mirror]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "\x1b" not in err, err
    assert err.startswith("dqcl: error: --mirror ") and "not an http(s) address" in err and expect in err, err
    assert not out.exists()


# ---- unusual archives --------------------------------------------------------------------------


def _zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _patched(data: bytes, local_offset: int, central_offset: int, change: Callable[[int], int]) -> bytes:
    """``data`` with a 2-byte field of every local and central zip header changed (the flags, the method)."""
    out = bytearray(data)
    for sig, off in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
        for m in re.finditer(re.escape(sig), data):
            at = m.start() + off
            out[at : at + 2] = change(int.from_bytes(out[at : at + 2], "little")).to_bytes(2, "little")
    return bytes(out)


def _encrypted() -> bytes:
    return _patched(_zip_bytes({"a/images/a.png": b"x" * 100}), 6, 8, lambda flags: flags | 0x1)  # bit 0: encrypted


def _unknown_method() -> bytes:
    return _patched(_zip_bytes({"a/images/a.png": b"x" * 100}), 8, 10, lambda method: 99)  # 99: WinZip AES


def _corrupt_deflate() -> bytes:
    text = b"".join(b"%d nuclei, %d cells\n" % (i, i * 7 % 13) for i in range(20_000))
    data = bytearray(_zip_bytes({"a/images/big.txt": text}, zipfile.ZIP_DEFLATED))
    mid = len(data) // 2
    data[mid : mid + 64] = b"\xff" * 64
    return bytes(data)


def _corrupt_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(3):
            payload = b"".join(b"%d row of pixels %d\n" % (i, k) for k in range(5000))
            info = tarfile.TarInfo(f"a{i}/images/a{i}.txt")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    data = bytearray(buf.getvalue())
    mid = len(data) // 2
    data[mid : mid + 64] = b"\x00" * 64
    return bytes(data)


@pytest.mark.parametrize("fname, build, expect", [
    ("enc.zip", _encrypted, r"member 'a/images/a\.png' is encrypted"),
    ("method.zip", _unknown_method, r"member 'a/images/a\.png' uses compression method 99"),
    ("long.zip", lambda: _zip_bytes({"a/images/" + "n" * 300 + ".png": b"x"}), r"member 'a/images/n+…' cannot be written \(File name too long\)"),
    ("clash.zip", lambda: _zip_bytes({"a": b"file", "a/b": b"in a folder"}), r"'a' is both a file and a folder in the archive \(member 'a/b'\)"),
    ("clash2.zip", lambda: _zip_bytes({"a/b": b"in a folder", "a": b"file"}), r"'a' is both a file and a folder"),
    ("deflate.zip", _corrupt_deflate, r"member 'a/images/big\.txt' is damaged|damaged archive"),
    ("bad.tar.gz", _corrupt_tar, r"damaged"),
    ("truncated.zip", lambda: _zip_bytes({"a/images/a.png": b"x" * 5000})[:3000], r"damaged archive \(not a readable zip file\)"),
    ("text.tar", lambda: b"this is not a tar file\n" * 100, r"damaged archive \(not a readable tar file\)"),
    ("zeros.tar", lambda: b"\0" * 10240, r"empty archive \(no members\)"),
], ids=["encrypted", "unknown-method", "name-too-long", "file-then-folder", "folder-then-file", "corrupt-deflate",
        "corrupt-tar", "truncated-zip", "text-named-tar", "empty-tar"])
def test_an_unusual_archive_is_one_line_and_leaves_nothing_half_extracted(tmp_path, capsys, fixture_recipe, fname, build, expect):
    served = tmp_path / "served"
    served.mkdir()
    (served / fname).write_bytes(build())
    with FileServer(served) as srv:
        code, _ = _fetch(fixture_recipe, "fx-archive", f"{srv.url}/{fname}", tmp_path / "x")
    err = _error(capsys)
    assert code == 2 and err.startswith(f"dqcl: error: {tmp_path / 'x' / 'downloads' / fname}: "), err
    assert re.search(expect, err) and "nothing was extracted" in err, err
    _nothing_extracted(tmp_path / "x")


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_a_whole_tar_still_unpacks_after_the_checks(tmp_path, mode):
    from dqcl.data.sources.download import unpack

    archive = tmp_path / ("ok.tar" + ("." + mode[2:] if ":" in mode else ""))
    with tarfile.open(archive, mode) as tf:
        for i in range(3):
            payload = b"pixels %d\n" % i * 1000
            info = tarfile.TarInfo(f"a{i}/images/a{i}.txt")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    unpack(archive, tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").rglob("*.txt")) == ["a0.txt", "a1.txt", "a2.txt"]
    assert not list((tmp_path / "raw").glob(".unpacking-*"))


def test_a_tar_bomb_is_refused_from_the_headers_before_its_data_is_read(tmp_path, monkeypatch):
    from dqcl.data.sources import download as dl
    from dqcl.errors import DataError

    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for i in range(2):
            info = tarfile.TarInfo(f"zeros{i}.bin")
            info.size = 40 * 2**20  # 40 MiB of zeros each: about 40 kB packed
            tf.addfile(info, io.BytesIO(b"\0" * info.size))
    seen = []
    real = dl._check_sizes
    monkeypatch.setattr(dl, "_check_sizes", lambda archive, total: seen.append(total) or real(archive, total))
    with pytest.raises(DataError, match=r"bomb\.tar\.gz: would unpack .* times as many.*nothing was extracted"):
        dl.unpack(archive, tmp_path / "raw")
    assert seen == [40 * 2**20]  # refused at the first member's header, before decompressing past its data
    assert not any((tmp_path / "raw").iterdir())


# ---- the registry of datasets ------------------------------------------------------------------

_ENTRY = {"path": "/data/x", "manifest_hash": "abc", "registered": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize("text, expect", [
    ("[]", "got a list"),
    ('"datasets"', "got a string"),
    ("null", "got null"),
    ("3", "got a number"),
    ('{"x": 1}', "entry 'x' is a number, not an object"),
    ('{"x": ["/data/x"]}', "entry 'x' is a list"),
    (json.dumps({"x": {"manifest_hash": "abc", "registered": "t"}}), "entry 'x' has no text 'path'"),
    (json.dumps({"x": {"path": 3, "manifest_hash": "abc", "registered": "t"}}), "entry 'x' has no text 'path'"),
    (json.dumps({"x": {"path": "/data/x"}}), "entry 'x' has no text 'manifest_hash'"),
    (json.dumps({"bad\nname": _ENTRY}), "dataset name 'bad\\nname' is not one dqcl registers"),
    ("{", "unreadable dataset list"),
    ("[" * 100_000, "unreadable dataset list"),
    ("\udcff", "unreadable dataset list"),
])
@pytest.mark.parametrize("command", [["data", "list"], ["data", "register", "mine", "/no/such/folder"]], ids=["list", "register"])
def test_a_registry_of_the_wrong_shape_is_one_line_naming_it(tmp_path, capsys, text, expect, command):
    book = tmp_path / "home" / "datasets.json"
    book.parent.mkdir()
    book.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert main(command) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"dqcl: error: {book}: ") and expect in err, err
    assert book.read_bytes() == text.encode("utf-8", "surrogateescape")  # left as it was


def test_an_empty_dqcl_home_means_the_default_home_not_the_working_directory(tmp_path, capsys, monkeypatch):
    from conftest import small_domain_arrays, write_pair

    imgs, masks = small_domain_arrays(n=2, size=64)
    folder = tmp_path / "mine"
    for split, i in (("train", 0), ("test", 1)):
        write_pair(folder / split, f"p{i}", imgs[i], masks[i], ext=".tif")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("DQCL_HOME", "")
    assert main(["data", "register", "mine", str(folder)]) == 0
    assert not (work / "datasets.json").exists() and not any(work.iterdir())
    book = json.loads((tmp_path / "user" / ".dqcl" / "datasets.json").read_text())
    assert book["mine"]["path"] == str(folder.resolve())
    assert main(["data", "list"]) == 0
    assert f"mine: {folder.resolve()}" in capsys.readouterr().out
