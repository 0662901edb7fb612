"""Downloading, checking and unpacking a recipe's files, safely.

- Only http(s) addresses are fetched, and redirects are followed only to http(s) addresses,
  at most MAX_REDIRECTS times and never back to an address already seen.
- Every transfer is bounded in bytes and in progress (`TransferLimits`): a declared size over
  the per-file cap is refused before a byte is written, and the bytes written stop at the cap
  whatever the server claims (the partial file is then deleted); a transfer slower than a
  floor over a window, or longer than the wall-clock limit, is given up on (the part is kept).
- Downloads go to ``NAME.part`` and are renamed when complete; an interrupted download
  resumes with an HTTP Range request (a server that ignores it is read from the start).
- A file whose SHA-256 differs from the recipe's is deleted and refused.
- Archives are checked from their directory first (sizes, ratio, encryption, compression
  methods, names that are both a file and a folder), then unpacked member by member into a
  staging folder; a member whose path would land outside it (absolute, ``..``, links) is
  refused rather than written, and a broken archive leaves nothing behind.

Every problem a server, an address or an archive can cause is a `DataError` of one line
naming the address or the file.
"""

from __future__ import annotations

import collections
import functools
import http.client
import lzma
import os
import re
import shutil
import socket
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, Callable
from urllib.parse import urlsplit

from ...core.provenance import check_file_size, max_file_bytes, sha256_of
from ...core.validation import env_number
from ...errors import DataError

__all__ = ["TransferLimits", "check_url", "download", "sha256_of", "transfer_limits", "unpack"]

CHUNK = 1 << 20
DOWNLOAD_SECONDS = 6 * 3600  # one file's whole transfer, however slowly its bytes come (DQCL_DOWNLOAD_TIMEOUT)
MIN_RATE = 1000  # bytes/s a transfer must keep up over each window (DQCL_DOWNLOAD_MIN_RATE; 0 turns the floor off)
RATE_WINDOW = 30  # seconds the rate is averaged over; also the longest one read may wait (DQCL_DOWNLOAD_RATE_WINDOW)
MAX_REDIRECTS = 10
SCHEMES = ("http", "https")
UNPACKED_BYTES = 64 * 2**30  # an archive's members together (DQCL_MAX_UNPACKED_BYTES)
UNPACK_RATIO = 200  # unpacked bytes per byte of archive (DQCL_MAX_UNPACK_RATIO)


def _short(text: object, n: int = 120) -> str:
    """``text`` as one printable line of at most ``n`` characters: for what a server or an archive names."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


# ---- limits and addresses --------------------------------------------------------------------


@dataclass(frozen=True)
class TransferLimits:
    """What one download may take: ``max_bytes`` in all (the per-file cap), ``seconds`` of wall clock,
    and at least ``min_rate`` bytes/s averaged over every ``window`` seconds."""

    max_bytes: int
    seconds: float
    min_rate: float
    window: float


def transfer_limits() -> TransferLimits:
    """The limits from the environment (DQCL_MAX_FILE_BYTES, DQCL_DOWNLOAD_TIMEOUT, DQCL_DOWNLOAD_MIN_RATE,
    DQCL_DOWNLOAD_RATE_WINDOW), each a one-line error when it is not a number in range."""
    return TransferLimits(
        max_bytes=max_file_bytes(),
        seconds=env_number("DQCL_DOWNLOAD_TIMEOUT", DOWNLOAD_SECONDS),
        min_rate=env_number("DQCL_DOWNLOAD_MIN_RATE", MIN_RATE),
        window=env_number("DQCL_DOWNLOAD_RATE_WINDOW", RATE_WINDOW, lo=1),  # 0 would make every read non-blocking
    )


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) address dqcl can fetch, or None."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (parsing the port is the check: 'host:abc' raises)
    except ValueError as err:
        return f"malformed ({_short(err, 60)})"
    if not parts.scheme:
        return "no scheme"
    if parts.scheme.lower() not in SCHEMES:
        return f"'{_short(parts.scheme, 20)}:' addresses are not fetched"
    if not parts.hostname:
        return "no host"
    return None


def check_url(url: str, label: str | None = None) -> None:
    """Refuse anything but an http(s) address with a host: a DataError naming ``label`` (or the address)."""
    problem = _url_problem(url)
    if problem:
        raise DataError(f"{label or repr(_short(url))}: not an http(s) address ({problem}); "
                        "give one like https://host/folder/")


# ---- the transfer ----------------------------------------------------------------------------


class _Watch:
    """Watches one download from a second thread. Past the wall-clock limit, or slower than the rate
    floor over the last window, it records why (``reason``) and shuts the connection's socket, so
    whatever read is blocked -- the status line, a header, a chunk-size line, the body -- returns at
    once: socket timeouts alone cannot stop a server that sends one byte just before each runs out."""

    def __init__(self, limits: TransferLimits) -> None:
        self.limits = limits
        self.done = 0  # bytes received in this transfer, set by the reading thread
        self.reason: str | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dqcl-download-watch", daemon=True)
        self._start = time.monotonic()

    def __enter__(self) -> "_Watch":
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def attach(self, sock: socket.socket) -> None:
        """Watch ``sock`` (each connection of the transfer, redirects included)."""
        with self._lock:
            self._sock = sock
            if self.reason:
                self._cut()

    def _run(self) -> None:
        samples = collections.deque([(self._start, 0)])  # (time, bytes), one per tick, spanning the window
        while not self._stop.wait(min(0.5, self.limits.window / 4)):
            reason = self._check(time.monotonic(), samples)
            if reason:
                with self._lock:
                    self.reason = reason
                    self._cut()
                return

    def _check(self, now: float, samples: collections.deque) -> str | None:
        """Why the transfer is to be given up on at ``now``, or None."""
        lim = self.limits
        if now - self._start > lim.seconds:
            return f"the transfer took longer than {lim.seconds:.0f} s (DQCL_DOWNLOAD_TIMEOUT)"
        samples.append((now, self.done))
        while len(samples) > 1 and samples[1][0] <= now - lim.window:
            samples.popleft()  # keep the newest sample at least a window old as the baseline
        t0, d0 = samples[0]
        if now - t0 >= lim.window and self.done - d0 < lim.min_rate * (now - t0):
            return (f"slower than {lim.min_rate:,.0f} bytes/s for {now - t0:.0f} s ({(self.done - d0) / (now - t0):,.1f} "
                    "bytes/s; DQCL_DOWNLOAD_MIN_RATE, DQCL_DOWNLOAD_RATE_WINDOW)")
        return None

    def _cut(self) -> None:
        if self._sock is not None:
            try:  # the plain socket's shutdown, also under TLS: SSLSocket.shutdown would unwrap under the reader's feet
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass


class _Watched:
    """A connection that hands its socket to the download's `_Watch` once connected."""

    def __init__(self, *args, watch: _Watch, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._watch = watch

    def connect(self) -> None:
        super().connect()
        self._watch.attach(self.sock)


class _HTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self._watch = watch

    def http_open(self, req):
        return self.do_open(functools.partial(_HTTPConnection, watch=self._watch), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self._watch = watch

    def https_open(self, req):
        return self.do_open(functools.partial(_HTTPSConnection, watch=self._watch), req, context=self._context)


class _Refused(Exception):
    """A response dqcl will not follow; ``str`` says why (`download` puts the address in front)."""


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) addresses only, at most MAX_REDIRECTS, never back to one already seen."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        seen = getattr(req, "redirect_dict", {})
        problem = None
        if _url_problem(newurl):
            problem = f"redirected (HTTP {code}) to {_short(newurl, 80)!r}, which is not an http(s) address"
        elif newurl == req.full_url or newurl in seen:
            problem = f"redirect loop (HTTP {code} back to {_short(newurl, 80)})"
        elif len(seen) >= MAX_REDIRECTS:
            problem = f"more than {MAX_REDIRECTS} redirects"
        if problem:
            fp.close()
            raise _Refused(problem)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _declared_total(url: str, resp, start: int, cap: int) -> int | None:
    """The file's whole size from the response's Content-Length plus the ``start`` bytes kept, or None
    when the server does not say; refused when malformed or over ``cap``, before a byte is written."""
    text = resp.headers.get("Content-Length")
    if text is None:
        return None
    text = text.strip()
    if not re.fullmatch(r"[0-9]+", text):
        raise DataError(f"{url}: malformed response (Content-Length {_short(text, 40)!r} is not a number of bytes)")
    total = start + (int(text) if len(text) <= 30 else 10**30)  # int() refuses thousands of digits
    if total > cap:
        raise DataError(f"{url}: the server announces {total:,} bytes, over dqcl's limit of {cap:,} per file "
                        "(raise it with DQCL_MAX_FILE_BYTES); nothing was written")
    return total


def _check_resume(url: str, resp, have: int) -> None:
    """Refuse a 206 answer to a resume that does not start where the kept part ends (appending it would corrupt the file)."""
    found = re.match(r"bytes\s+([0-9]{1,30})-", resp.headers.get("Content-Range") or "")
    if not found or int(found[1]) != have:
        raise DataError(f"{url}: malformed response (asked to resume at byte {have:,}, the server sent Content-Range "
                        f"{_short(resp.headers.get('Content-Range'), 60)!r}); delete the .part file to start over")


def _again(part: Path) -> str:
    """What to do after an interrupted transfer, and what of it is kept."""
    size = part.stat().st_size if part.is_file() else 0
    if size:
        return f"run the same command again to resume ({size:,} bytes kept in {part})"
    return "nothing was kept; run the same command again to retry"


def _receive(url: str, resp, part: Path, have: int, limits: TransferLimits, watch: _Watch,
             progress: Callable[[int, int | None], None] | None) -> int | None:
    """Write the response's body to ``part`` (appended when it resumes ``have`` bytes), never past the
    per-file cap; returns the whole size the server declared, or None."""
    resumed = bool(have) and resp.status == 206
    if resumed:
        _check_resume(url, resp, have)
    elif resp.status != 200:  # a part, or no content, taken as the whole file would be silently wrong
        asked = "a resume" if have else "a request for the whole file"
        raise DataError(f"{url}: malformed response (HTTP {resp.status} {_short(resp.reason, 40)} to {asked})")
    done = have if resumed else 0
    total = _declared_total(url, resp, done, limits.max_bytes)
    over = False
    with open(part, "ab" if resumed else "wb") as fh:
        # read1: what has arrived (at most one byte past the cap), not a full chunk
        while block := resp.read1(min(CHUNK, limits.max_bytes - done + 1)):
            if done + len(block) > limits.max_bytes:
                over = True
                break
            fh.write(block)
            done += len(block)
            watch.done += len(block)
            if progress:
                progress(done, total)
    if over:  # whatever the server claimed: nothing over the cap stays on disk
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: more than {limits.max_bytes:,} bytes arrived, more than this file can hold (its recipe's "
                        "size, or dqcl's limit per file, DQCL_MAX_FILE_BYTES); the partial file was deleted")
    if watch.reason and (total is None or done < total):  # the watch cut the connection: not a whole file
        raise DataError(f"{url}: gave up: {watch.reason}; {_again(part)}")
    return total


def _http_error(url: str, err: urllib.error.HTTPError, part: Path, have: int) -> int:
    """The whole size when a 416 to a resume says the part is already whole; otherwise a DataError."""
    size = (err.headers.get("Content-Range") or "").rpartition("/")[2] if err.headers else ""
    if err.code == 416 and have and size.isdigit() and int(size) == have:
        return have
    if err.code == 416 and have:
        part.unlink()
        raise DataError(f"{url}: the server refused to resume ({_short(size, 30) or 'size unknown'} bytes on the server, "
                        f"{have} kept); the part was deleted: run the same command again to start over")
    raise DataError(f"{url}: download failed (HTTP {err.code} {_short(err.reason, 80)})")


def _describe(err: BaseException) -> tuple[bool, str]:
    """(whether the response itself was malformed, what went wrong) for an exception of a transfer."""
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, BaseException):
        err = err.reason  # urllib wraps the socket's error
    if isinstance(err, UnicodeError):
        return False, "the host name cannot be encoded"
    if isinstance(err, TimeoutError):
        return False, "no data before the read timeout"
    if isinstance(err, http.client.RemoteDisconnected):
        return False, "the server closed the connection without a response"
    if isinstance(err, http.client.IncompleteRead):
        return False, "the body ended early or its chunked encoding is malformed"
    if isinstance(err, http.client.BadStatusLine):
        return True, f"bad status line {_short(repr(err.line), 60)}"
    if isinstance(err, http.client.HTTPException):
        return True, _short(str(err), 80) or type(err).__name__
    if isinstance(err, urllib.error.URLError):
        return False, _short(err.reason, 80)
    if isinstance(err, OSError):
        return False, _short(err.strerror or err, 80) or type(err).__name__
    return True, _short(err, 80) or type(err).__name__


def _failure(url: str, part: Path, err: BaseException, watch: _Watch) -> str:
    """The one-line message for a transfer that raised ``err``."""
    if watch.reason:  # the watch shut the socket: the read's own error says only "closed"
        return f"{url}: gave up: {watch.reason}; {_again(part)}"
    malformed, what = _describe(err)
    if malformed:
        return f"{url}: malformed response from the server ({what})"
    return f"{url}: download interrupted ({what}); {_again(part)}"


def _transfer(url: str, part: Path, have: int, limits: TransferLimits, timeout: float,
              progress: Callable[[int, int | None], None] | None) -> int | None:
    """Fetch ``url`` into ``part`` (resuming after ``have`` bytes) under ``limits``; returns the whole
    size the server declared, or None."""
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with _Watch(limits) as watch:
        opener = urllib.request.build_opener(_Redirects, _HTTPHandler(watch), _HTTPSHandler(watch))
        try:
            with opener.open(req, timeout=timeout) as resp:
                return _receive(url, resp, part, have, limits, watch, progress)
        except _Refused as err:
            raise DataError(f"{url}: {err}") from None
        except urllib.error.HTTPError as err:
            return _http_error(url, err, part, have)
        except (urllib.error.URLError, http.client.HTTPException, OSError, UnicodeError) as err:
            raise DataError(_failure(url, part, err, watch)) from None


def download(url: str, dest: Path, sha256: str | None = None, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0, max_bytes: int | None = None) -> str:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``); returns the file's SHA-256.

    Bounded by `transfer_limits`: bytes (DQCL_MAX_FILE_BYTES), wall clock (DQCL_DOWNLOAD_TIMEOUT) and a
    rate floor over a window (DQCL_DOWNLOAD_MIN_RATE, DQCL_DOWNLOAD_RATE_WINDOW); no single read waits
    longer than ``timeout`` or the window; ``max_bytes`` (a recipe's known size) tightens the byte cap.
    Every failure is a one-line DataError naming ``url``."""
    check_url(url)
    limits = transfer_limits()
    if max_bytes is not None and max_bytes < limits.max_bytes:  # the file's own size bounds it tighter than the cap
        limits = replace(limits, max_bytes=int(max_bytes))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        check_file_size(dest)
        digest = sha256_of(dest)
        if sha256 is None or digest == sha256:
            return digest
        dest.unlink()  # a stale or foreign file under the same name
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > limits.max_bytes:  # kept under a larger cap: start over rather than resume past this one
        part.unlink()
        have = 0
    total = _transfer(url, part, have, limits, min(timeout, limits.window), progress)
    size = part.stat().st_size if part.is_file() else 0
    if total is not None and size < total:
        raise DataError(f"{url}: download interrupted at {size:,} of {total:,} bytes; "
                        f"run the same command again to resume")
    digest = sha256_of(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DataError(f"{dest.name}: checksum mismatch (expected sha256 {sha256}, got {digest}); the file was deleted")
    os.replace(part, dest)
    return digest


# ---- archives --------------------------------------------------------------------------------

_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)  # what a broken archive raises
_TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_HAND = "unpack it yourself and give the folder with --from; nothing was extracted"


def _member(archive: Path, name: str, problem: str) -> DataError:
    return DataError(f"{archive}: member '{_short(name, 80)}' {problem}")


def _unwritable(archive: Path, name: str, err: OSError) -> DataError:
    return _member(archive, name, f"cannot be written ({_short(err.strerror or err, 60)}); nothing was extracted")


def _inside(root: Path, name: str) -> Path:
    target = (root / name).resolve()
    if name.startswith(("/", "\\")) or ".." in Path(name).parts or not target.is_relative_to(root.resolve()):
        raise DataError(f"archive member '{_short(name, 80)}' would be written outside {root}; refusing the archive")
    return target


def _check_zip_member(archive: Path, info: zipfile.ZipInfo) -> None:
    """Refuse, from the directory, a member zipfile could open but not read: encrypted, or compressed by a
    method it lacks."""
    if info.flag_bits & 0x1:
        raise _member(archive, info.filename, f"is encrypted; dqcl cannot unpack it ({_HAND})")
    if info.compress_type not in _ZIP_METHODS:
        raise _member(archive, info.filename, f"uses compression method {info.compress_type}, which dqcl cannot read ({_HAND})")


def _kind(archive: Path) -> str:
    """"zip", "tar" or "file", from the content; a file named as an archive (.zip, .tar.gz, ...) that is
    not one of that kind is refused, rather than copied as a plain file or taken as an empty tar."""
    lower = archive.name.lower()
    named = "zip" if lower.endswith(".zip") else "tar" if lower.endswith(_TAR_SUFFIXES) else None
    found = "zip" if zipfile.is_zipfile(archive) else "tar" if tarfile.is_tarfile(archive) else "file"
    if named and found != named:
        raise DataError(f"{archive}: damaged archive (not a readable {named} file); nothing was extracted")
    return found


TAR_PADDING = 16 * CHUNK  # zeros allowed after a tar's last member (end-of-archive blocks, record padding)


def _check_tar_end(archive: Path, tf: tarfile.TarFile, last: str | None) -> None:
    """Refuse a tar whose listing stopped before its end: tarfile takes a damaged header after the first
    as the end of the archive, silently, so what follows the last member must be zeros only. Reading
    it to the end also checks a compressed stream's length and CRC."""
    tf.fileobj.seek(tf.offset)
    seen = 0
    while block := tf.fileobj.read(CHUNK):
        if block.strip(b"\0") or seen + len(block) > TAR_PADDING:
            after = f"after member '{_short(last, 80)}'" if last else "at its start"
            raise DataError(f"{archive}: damaged archive (unreadable data {after}); nothing was extracted")
        seen += len(block)


def _members(archive: Path) -> tuple[str, list[tuple[str, int, bool]]]:
    """("zip", "tar" or "file", [(name, unpacked size, is a folder)]) from the archive's own directory,
    before extracting anything."""
    kind = _kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
        for info in infos:
            _check_zip_member(archive, info)
        members = [(i.filename, i.file_size, i.is_dir()) for i in infos]
        _check_sizes(archive, sum(size for _, size, _ in members))
    elif kind == "tar":
        members = _tar_members(archive)
    else:
        return kind, []
    if not members:
        raise DataError(f"{archive}: empty archive (no members); nothing was extracted")
    return kind, members


def _tar_members(archive: Path) -> list[tuple[str, int, bool]]:
    """A tar's members, listed one by one with the size limits checked as they come: listing a compressed
    tar decompresses each member's data to reach the next header, so a bomb is refused before that."""
    members, total = [], 0
    with tarfile.open(archive) as tf:
        for m in tf:
            members.append((m.name, m.size, m.isdir()))
            total += m.size
            _check_sizes(archive, total)
        _check_tar_end(archive, tf, members[-1][0] if members else None)
    return members


def _read_directory(archive: Path) -> tuple[str, list[tuple[str, int, bool]]]:
    try:
        return _members(archive)
    except (*_DAMAGED, OSError) as err:
        raise DataError(f"{archive}: damaged archive ({_short(err, 80)}); nothing was extracted") from None


def _check_sizes(archive: Path, total: int) -> None:
    """Refuse an archive whose members unpack to ``total`` bytes: over the limit, or too many per byte packed."""
    packed = max(1, archive.stat().st_size)
    cap, ratio = env_number("DQCL_MAX_UNPACKED_BYTES", UNPACKED_BYTES), env_number("DQCL_MAX_UNPACK_RATIO", UNPACK_RATIO)
    if total > cap:
        raise DataError(f"{archive}: would unpack to {total:,} bytes, over the limit of {cap:,.0f} "
                        "(raise it with DQCL_MAX_UNPACKED_BYTES); nothing was extracted")
    if total > ratio * packed:
        raise DataError(f"{archive}: would unpack {packed:,} bytes into {total:,} ({total / packed:,.0f} times as many), "
                        f"over the limit of {ratio:,.0f} (a zip bomb? raise it with DQCL_MAX_UNPACK_RATIO); nothing was extracted")


def _check_clashes(archive: Path, members: list[tuple[str, int, bool]]) -> None:
    """Refuse an archive holding one name as a file and as a folder ('a' and 'a/b'): the second could not be written."""
    files = {PurePosixPath(name).as_posix() for name, _, is_dir in members if not is_dir}
    for name, _, is_dir in members:
        parts = PurePosixPath(name).parts
        inner = ["/".join(parts[:i]) for i in range(1, len(parts))] + ([PurePosixPath(name).as_posix()] if is_dir else [])
        clash = next((p for p in inner if p in files), None)
        if clash is not None:
            raise DataError(f"{archive}: '{_short(clash, 80)}' is both a file and a folder in the archive "
                            f"(member '{_short(name, 80)}'); nothing was extracted")


def unpack(archive: Path, into: Path) -> Path:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) into ``into``; any other file is copied there.

    The archive's directory is checked first (sizes, ratio, encryption, compression methods,
    file/folder clashes), members go to a staging folder (names, links checked on the way), and
    only a complete extraction is moved into ``into``: a refused or broken archive leaves nothing
    half-extracted behind, and every failure is a one-line DataError naming the archive."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    kind, members = _read_directory(archive)
    if kind == "file":
        shutil.copy2(archive, into / archive.name)
        return into
    _check_clashes(archive, members)
    staging = into / f".unpacking-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _extract(archive, kind, staging)
        _move_in(archive, staging, into)
    except _DAMAGED as err:
        raise DataError(f"{archive}: damaged archive ({_short(err, 80)}); nothing was extracted") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return into


def _move_in(archive: Path, staging: Path, into: Path) -> None:
    try:
        for entry in staging.iterdir():
            target = into / entry.name
            if target.is_dir() and entry.is_dir():
                shutil.copytree(entry, target, dirs_exist_ok=True)
            else:
                os.replace(entry, target)
    except OSError as err:
        raise DataError(f"{archive}: cannot move what it unpacked into {into} ({_short(err.strerror or err, 80)})") from None


def _make_folder(archive: Path, name: str, target: Path) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(archive, name, err) from None


def _write_member(archive: Path, name: str, src: IO[bytes], target: Path) -> None:
    """Copy one member to ``target``: a read that fails is a damaged member, a write that fails (a name too
    long, a file where a folder should be) an unwritable one; both one-line DataErrors naming the member."""
    _make_folder(archive, name, target.parent)
    try:
        dst = open(target, "wb")
    except OSError as err:
        raise _unwritable(archive, name, err) from None
    with dst:
        while True:
            try:
                block = src.read(CHUNK)
            except (*_DAMAGED, OSError) as err:
                raise _member(archive, name, f"is damaged ({_short(err, 80)}); nothing was extracted") from None
            if not block:
                return
            try:
                dst.write(block)
            except OSError as err:
                raise _unwritable(archive, name, err) from None


def _open_zip_member(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    try:
        return zf.open(info)
    except (*_DAMAGED, NotImplementedError, RuntimeError) as err:  # the last two: encryption, methods (checked already)
        raise _member(archive, info.filename, f"cannot be read ({_short(err, 80)}); nothing was extracted") from None


def _extract(archive: Path, kind: str, into: Path) -> None:
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = _inside(into, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise _member(archive, info.filename, "is a symbolic link; refusing the archive")
                if info.is_dir():
                    _make_folder(archive, info.filename, target)
                    continue
                with _open_zip_member(archive, zf, info) as src:
                    _write_member(archive, info.filename, src, target)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                target = _inside(into, member.name)
                if not (member.isfile() or member.isdir()):
                    raise _member(archive, member.name, "is a link or device; refusing the archive")
                if member.isdir():
                    _make_folder(archive, member.name, target)
                    continue
                with tf.extractfile(member) as src:
                    _write_member(archive, member.name, src, target)
