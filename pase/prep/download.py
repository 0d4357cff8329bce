"""LibriSpeech from a mirror in openSLR's layout: `<mirror>/<subset>.tar.gz` and `<mirror>/md5sum.txt`.

A subset is gigabytes over links that drop, so every step is resumable and nothing half-done
ever looks done: the archive grows in `<subset>.tar.gz.part` (continued with an HTTP Range
request), becomes `<subset>.tar.gz` only once its MD5 matches the mirror's list (a mismatch
deletes it), and is unpacked into a scratch directory that is renamed into the corpus when
complete. A subset directory already in the corpus is never fetched again.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

from pase.errors import PaseError

log = logging.getLogger(__name__)

OPENSLR_LIBRISPEECH = "https://www.openslr.org/resources/12"
MD5_LIST = "md5sum.txt"
TOP = "LibriSpeech"            # every archive's top directory
CHUNK = 1 << 20


class DownloadInterrupted(PaseError):
    """The transfer stopped midway; the .part file is kept so the next attempt resumes it."""


def done_marker(corpus_dir: Path, subset: str) -> Path:
    """Written after a subset is in place: it records where it came from and its checksum."""
    return corpus_dir / f".{subset}.done"


def _open(url: str, timeout: float, start: int = 0) -> http.client.HTTPResponse | None:
    """GET `url` from byte `start`; None when `start` is past the end (HTTP 416: the part is whole).

    Failures are one line: 404 and other HTTP errors, or DownloadInterrupted for network errors.
    """
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and start:
            return None
        if e.code == 404:
            raise PaseError(f"{url}: not found on the mirror (HTTP 404); check --mirror and the subset name") from None
        raise PaseError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadInterrupted(f"{url}: network error ({reason})") from None


def fetch_md5_list(mirror: str, timeout: float = 60.0) -> dict[str, str]:
    """File name -> MD5 from the mirror's md5sum.txt (`<md5>  <name>` lines; others are ignored)."""
    url = f"{mirror}/{MD5_LIST}"
    with _open(url, timeout) as resp:
        try:
            text = resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            raise DownloadInterrupted(f"{url}: network error ({e})") from None
    sums = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\s*([0-9a-fA-F]{32})\s+\*?(\S+)\s*", line)
        if m:
            sums[m.group(2)] = m.group(1).lower()
    return sums


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (all of it when the server ignores Range)."""
    have = part.stat().st_size if part.exists() else 0
    resp = _open(url, timeout, have)
    if resp is None:
        return                                        # whole already: the checksum decides
    with resp:
        if have and resp.status != 206:
            log.info("%s: the server ignores Range requests; starting over", url)
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        try:
            with part.open("ab" if have else "wb") as f, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name,
                         disable=not progress) as bar:
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise DownloadInterrupted(f"{url}: connection lost ({e})") from None
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.update(len(chunk))
        except OSError as e:                          # the network's errors are DownloadInterrupted by now
            full = " (disk full)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            raise PaseError(f"{part}: cannot write the download: {e.strerror}{full}; "
                            "free space (or choose --download_dir) and rerun to resume") from None
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadInterrupted(f"{url}: connection closed after {size} of {total} bytes")


def download(url: str, dest: Path, md5: str, *, timeout: float = 60.0, retries: int = 3,
             progress: bool = True) -> Path:
    """`dest`, downloaded from `url` and checked against `md5`, resuming `dest`.part when there is one.

    A transfer that breaks is resumed up to `retries` times, then left in the .part file for the
    next run; a checksum mismatch removes the download.
    """
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        if md5sum(dest) == md5:
            return dest
        log.warning("%s does not match its checksum; downloading it again", dest)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        if part.exists():
            log.info("resuming %s at byte %d", url, part.stat().st_size)
        else:
            log.info("downloading %s", url)
        try:
            _transfer(url, part, timeout, progress)
            break
        except DownloadInterrupted as e:
            if attempt == retries:
                raise DownloadInterrupted(f"{e}; rerun to resume from {part}") from None
            log.warning("%s; retrying", e)
            time.sleep(min(30, 2 ** attempt))
    got = md5sum(part)
    if got != md5:
        part.unlink()
        raise PaseError(f"{url}: checksum mismatch (md5 {got}, the mirror's {MD5_LIST} says {md5}); "
                        "the download was removed, rerun to fetch it again")
    part.rename(dest)
    return dest


def _strip_top(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter (no absolute paths, no escapes, no devices), with `LibriSpeech/` removed."""
    top, _, rest = member.name.strip("/").partition("/")
    if top != TOP:
        raise PaseError(f"archive member {member.name!r} is outside {TOP}/ (not the openSLR layout)")
    if not rest:
        return None
    return tarfile.data_filter(member.replace(name=rest, deep=False), dest)


def extract_subset(archive: Path, corpus_dir: Path, subset: str) -> None:
    """Unpack `archive` (LibriSpeech/<subset>/... plus the corpus-wide *.TXT) into `corpus_dir`.

    The subset appears in the corpus only complete, by a rename of the scratch directory.
    """
    scratch = corpus_dir / f".{subset}.unpack"
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    log.info("extracting %s", archive)
    try:
        with tarfile.open(archive, "r|gz") as tar:
            tar.extractall(scratch, filter=_strip_top)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise PaseError(f"{corpus_dir}: disk full while extracting {archive}") from None
        if e.errno is not None:
            raise                                     # a file error: reported in one line by run_main
        raise PaseError(f"{archive}: cannot unpack ({e})") from None  # gzip.BadGzipFile
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise PaseError(f"{archive}: cannot unpack ({e})") from None
    if not (scratch / subset).is_dir():
        raise PaseError(f"{archive} holds no {TOP}/{subset}/")
    for item in scratch.iterdir():
        if item.name != subset and item.is_file():
            os.replace(item, corpus_dir / item.name)  # README.TXT, SPEAKERS.TXT, ...: the same in every archive
    (scratch / subset).rename(corpus_dir / subset)
    shutil.rmtree(scratch)


def get_librispeech(corpus_dir: Path, subsets: list[str], *, mirror: str = OPENSLR_LIBRISPEECH,
                    download_dir: Path | None = None, keep_archive: bool = False, timeout: float = 60.0,
                    retries: int = 3, progress: bool = True) -> list[str]:
    """Make `corpus_dir`/<subset> for every subset (the LibriSpeech directory: the layout
    pase-prep-librispeech reads); returns the subsets fetched. Subsets already there cost no request.
    """
    mirror = mirror.rstrip("/")
    for subset in subsets:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", subset):
            raise PaseError(f"not a subset name: {subset!r}")
    missing = [s for s in subsets if not (corpus_dir / s).is_dir()]
    for subset in sorted(set(subsets) - set(missing)):
        how = "" if done_marker(corpus_dir, subset).exists() else " (not fetched by this command)"
        log.info("%s: already there%s, skipped", corpus_dir / subset, how)
    if not missing:
        return []
    sums = fetch_md5_list(mirror, timeout)
    download_dir = download_dir or corpus_dir
    for subset in missing:
        name = f"{subset}.tar.gz"
        if name not in sums:
            raise PaseError(f"{subset}: no {name} in {mirror}/{MD5_LIST}, so it cannot be verified "
                            "(a typo in the subset name, or not a LibriSpeech mirror?)")
        url = f"{mirror}/{name}"
        archive = download(url, download_dir / name, sums[name], timeout=timeout, retries=retries,
                           progress=progress)
        extract_subset(archive, corpus_dir, subset)
        done_marker(corpus_dir, subset).write_text(json.dumps({"url": url, "md5": sums[name]}) + "\n")
        if not keep_archive:
            archive.unlink()
        log.info("%s: done", corpus_dir / subset)
    return missing
