"""pase.prep.download and the recipes' stage 0 against a real HTTP server on 127.0.0.1 serving the openSLR layout."""
from __future__ import annotations

import hashlib
import io
import re
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import recipe_tree
from pase.errors import PaseError
from pase.prep.download import DownloadInterrupted, done_marker, get_librispeech
from pase.prep.librispeech import prepare_subset

SUBSET = "dev-clean"
UTTS = 3


class RangeHandler(BaseHTTPRequestHandler):
    """GET with `Range: bytes=N-[M]` (206/416); a path in server.drop_after is cut off once, mid-body.

    server.sent counts the body bytes written per path.
    """

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m is None:
            body = data
            self.send_response(200)
        else:
            start = int(m.group(1))
            end = min(int(m.group(2) or len(data) - 1), len(data) - 1)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.drop_after.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.close_connection = True
        srv.sent[self.path] = srv.sent.get(self.path, 0) + (len(body) if cut is None else cut)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.files, srv.drop_after, srv.requests, srv.sent = {}, {}, [], {}
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/resources/12"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def librispeech_tarball(subset: str = SUBSET, extra: dict[str, bytes] | None = None) -> bytes:
    """LibriSpeech/<subset>/<spk>/<chapter>/*.flac + *.trans.txt and SPEAKERS.TXT, as openSLR packs it."""
    rng = np.random.default_rng(0)
    members = {"LibriSpeech/SPEAKERS.TXT": b";ID |SEX| SUBSET |MINUTES| NAME\n84 | F | dev-clean | 8.0 | A\n"}
    spk, chapter = "84", "121123"
    lines = []
    for u in range(UTTS):
        utt = f"{spk}-{chapter}-{u:04d}"
        buf = io.BytesIO()
        sf.write(buf, (0.1 * rng.standard_normal(4000)).astype(np.float32), 16000, format="FLAC")
        members[f"LibriSpeech/{subset}/{spk}/{chapter}/{utt}.flac"] = buf.getvalue()
        lines.append(f"{utt} HELLO WORLD {u}")
    members[f"LibriSpeech/{subset}/{spk}/{chapter}/{spk}-{chapter}.trans.txt"] = ("\n".join(lines) + "\n").encode()
    members.update(extra or {})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def publish(srv, tarball: bytes, listed: bytes | None = None, subset: str = SUBSET) -> str:
    """Serve `tarball` as <subset>.tar.gz, with md5sum.txt listing the MD5 of `listed` (default: itself)."""
    path = f"/resources/12/{subset}.tar.gz"
    srv.files[path] = tarball
    md5 = hashlib.md5(tarball if listed is None else listed).hexdigest()
    srv.files["/resources/12/md5sum.txt"] = f"0123456789abcdef0123456789abcdef  other.tar.gz\n{md5}  {subset}.tar.gz\n".encode()
    return path


def fetch(corpus: Path, srv, **kw):
    return get_librispeech(corpus, [SUBSET], mirror=srv.url, retries=0, progress=False, **kw)


def test_download_verifies_unpacks_and_then_skips_without_a_request(mirror, tmp_path):
    publish(mirror, librispeech_tarball())
    corpus = tmp_path / "LibriSpeech"
    assert fetch(corpus, mirror) == [SUBSET]
    assert sorted(p.name for p in corpus.iterdir()) == [f".{SUBSET}.done", "SPEAKERS.TXT", SUBSET]
    assert prepare_subset(corpus / SUBSET, tmp_path / "data") == UTTS
    assert SUBSET in done_marker(corpus, SUBSET).read_text()
    n = len(mirror.requests)
    assert fetch(corpus, mirror) == [] and len(mirror.requests) == n


def test_a_subset_already_there_costs_no_request(mirror, tmp_path):
    (tmp_path / "LibriSpeech" / SUBSET).mkdir(parents=True)   # e.g. unpacked by hand
    assert fetch(tmp_path / "LibriSpeech", mirror) == [] and mirror.requests == []


def test_corrupted_archive_is_a_checksum_error_and_nothing_is_kept(mirror, tmp_path):
    good = librispeech_tarball()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    publish(mirror, bytes(bad), listed=good)
    corpus = tmp_path / "LibriSpeech"
    with pytest.raises(PaseError, match="checksum mismatch.*removed"):
        fetch(corpus, mirror)
    assert list(corpus.iterdir()) == []


def test_interrupted_transfer_resumes_from_the_part_file(mirror, tmp_path):
    tarball = librispeech_tarball()
    path = publish(mirror, tarball)
    half = len(tarball) // 2
    mirror.drop_after[path] = half
    corpus = tmp_path / "LibriSpeech"
    with pytest.raises(DownloadInterrupted, match="rerun to resume"):
        fetch(corpus, mirror)
    part = corpus / f"{SUBSET}.tar.gz.part"
    assert part.stat().st_size == half and not (corpus / SUBSET).exists()
    assert fetch(corpus, mirror) == [SUBSET]
    assert mirror.requests[-1] == (path, f"bytes={half}-")
    assert mirror.sent[path] == len(tarball)     # only the rest went over the wire
    assert prepare_subset(corpus / SUBSET, tmp_path / "data") == UTTS and not part.exists()


def test_a_broken_transfer_is_retried_within_the_run(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr("pase.prep.download.time.sleep", lambda s: None)
    tarball = librispeech_tarball()
    path = publish(mirror, tarball)
    mirror.drop_after[path] = 100
    corpus = tmp_path / "LibriSpeech"
    assert get_librispeech(corpus, [SUBSET], mirror=mirror.url, retries=1, progress=False,
                           keep_archive=True) == [SUBSET]
    assert (corpus / f"{SUBSET}.tar.gz").read_bytes() == tarball
    assert [r for _, r in mirror.requests if r] == ["bytes=100-"]


def test_one_line_errors(mirror, tmp_path):
    corpus = tmp_path / "LibriSpeech"
    publish(mirror, librispeech_tarball())
    with pytest.raises(PaseError, match="no test-other.tar.gz in .*md5sum.txt"):
        get_librispeech(corpus, ["test-other"], mirror=mirror.url, progress=False)
    del mirror.files[f"/resources/12/{SUBSET}.tar.gz"]
    with pytest.raises(PaseError, match="HTTP 404"):
        fetch(corpus, mirror)
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadInterrupted, match="network error"):
        get_librispeech(corpus, [SUBSET], mirror=f"http://127.0.0.1:{port}", retries=0, progress=False)
    proc = subprocess.run([sys.executable, "-m", "pase.bin.download_librispeech", str(corpus), SUBSET,
                           "--mirror", mirror.url, "--retries", "0", "--no-progress"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if " INFO: " not in line]
    assert errors == [f"pase-download-librispeech: error: {mirror.url}/{SUBSET}.tar.gz: not found on the mirror "
                      "(HTTP 404); check --mirror and the subset name"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_is_one_line(mirror, tmp_path):
    publish(mirror, librispeech_tarball())
    corpus = tmp_path / "LibriSpeech"
    corpus.mkdir()
    (corpus / f"{SUBSET}.tar.gz.part").symlink_to("/dev/full")   # every write: ENOSPC
    with pytest.raises(PaseError, match="disk full"):
        fetch(corpus, mirror)


def test_archive_escaping_the_corpus_is_refused(mirror, tmp_path):
    publish(mirror, librispeech_tarball(extra={"LibriSpeech/../../evil.txt": b"x"}))
    corpus = tmp_path / "LibriSpeech"
    with pytest.raises(PaseError, match="cannot unpack"):
        fetch(corpus, mirror)
    assert not (tmp_path / "evil.txt").exists() and not (corpus / SUBSET).exists()


def test_recipe_stage0_downloads_from_the_mirror_option(mirror, tmp_path):
    """egs/librispeech/pase1 stage 0 (local/download.sh) in a copy of the tree, --mirror on 127.0.0.1."""
    path = publish(mirror, librispeech_tarball())
    mirror.drop_after[path] = 1000
    env = recipe_tree(tmp_path)
    env["LIBRISPEECH"] = str(tmp_path / "LibriSpeech")
    cmd = ["./run.sh", "--stage", "0", "--stop_stage", "0", "--mirror", mirror.url, "--download_opts", f"--subsets {SUBSET}"]
    for _ in range(2):   # the second run finds the subset there and asks nothing
        proc = subprocess.run(cmd, cwd=tmp_path / "egs/librispeech/pase1", env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "LibriSpeech" / SUBSET / "84").is_dir()
    assert [r for _, r in mirror.requests] == [None, None, "bytes=1000-"]


def test_timit_stage0_names_what_is_missing(tmp_path):
    env = recipe_tree(tmp_path)
    env["TIMIT"] = str(tmp_path / "nowhere")
    proc = subprocess.run(["./run.sh", "--stage", "0", "--stop_stage", "0"], cwd=tmp_path / "egs/timit/hybrid1",
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{tmp_path / 'nowhere'}: TIMIT directory not found" in proc.stdout
    assert "licensed from the LDC" in proc.stdout
