"""pase-train-gmm's experiment dir: features cache, training, model and alignment files.

The model is saved twice: ``final.npz`` for pase, and ``final.mdl`` + ``tree`` in Kaldi's own
formats for Kaldi's programs (latgen-faster-mapped, gmm-align, ...).

Features (13 MFCC without energy, per-speaker mean normalisation, deltas and double deltas)
are computed once per data dir and cached as ``<out>/feats_<set>.{ark,scp}``; pase-decode reads
that cache for a GMM (:func:`decode_features`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pase.asr.align import align, read_alignments, write_alignments
from pase.asr.features import load_features, mfcc_cmvn_deltas, read_feats, write_feats
from pase.asr.gmm import GmmSystem
from pase.asr.gmm_train import TrainResult, train_mono, train_tri
from pase.asr.kaldi_model import write_model
from pase.asr.lang import Lang
from pase.errors import PaseError
from pase.io import DataDir

log = logging.getLogger(__name__)


def features(data: DataDir, out: Path, cache_dirs: Sequence[Path]) -> dict[str, np.ndarray]:
    """The data dir's 39-dim features, from a cache holding exactly its utterances or computed
    and cached in ``out``."""
    name = f"feats_{data.path.name}"
    utts = {u.utt_id for u in data.utterances}
    for d in [out, *cache_dirs]:
        scp = d / f"{name}.scp"
        if scp.is_file():
            feats = read_feats(scp)
            if set(feats) == utts:
                log.info("features: %s", scp)
                return feats
            log.info("%s: other utterances than %s; recomputing", scp, data.path)
    start = time.perf_counter()
    feats = mfcc_cmvn_deltas(data)
    write_feats(feats, out / f"{name}.ark", out / f"{name}.scp")
    log.info("features: %d utterances, %d frames in %.1fs -> %s", len(feats),
             sum(len(f) for f in feats.values()), time.perf_counter() - start, out / f"{name}.scp")
    return feats


def decode_features(gmm: Path, data: Path) -> dict[str, np.ndarray]:
    """The features a GMM decodes ``data`` with: the cache in ``gmm`` if there is one."""
    cache = gmm / f"feats_{data.name}.scp"
    return load_features(cache) if cache.is_file() else mfcc_cmvn_deltas(DataDir.load(data))


def transcripts(data: DataDir, lang: Lang) -> dict[str, list[int]]:
    if data.text is None:
        raise PaseError(f"{data.path}: no text file (transcripts are needed for alignment)")
    return {utt: lang.word_seq_ids(text.split()) for utt, text in data.text.items()}


def write_outputs(system: GmmSystem, alignments: dict[str, np.ndarray], out: Path,
                  suffix: str, failed: Sequence[str]) -> None:
    write_alignments(out / f"ali{suffix}.ark", alignments)
    write_alignments(out / f"pdf_ali{suffix}.ark",
                     {u: system.pdf_alignment(a) for u, a in alignments.items()})
    failed_path = out / f"ali_failed{suffix}"
    if failed:
        failed_path.write_text("".join(f"{u}\n" for u in sorted(failed)))
    else:
        failed_path.unlink(missing_ok=True)


def write_log(result: TrainResult, path: Path, opts: dict[str, Any], seconds: float) -> None:
    lines = [f"# {k}={v}" for k, v in sorted(opts.items())]
    lines.append("iter realigned frames like_per_frame num_gauss failed seconds")
    lines += [f"{h.iteration} {int(h.realigned)} {h.frames} {h.like_per_frame:.5f} {h.num_gauss} "
              f"{h.failed} {h.seconds:.2f}" for h in result.history]
    lines.append(f"# pdfs={result.system.num_pdfs} gaussians={result.system.num_gauss} "
                 f"aligned={len(result.alignments)} total_seconds={seconds:.1f}")
    path.write_text("\n".join(lines) + "\n")


def train_gmm_dir(stage: str, *, data: Path, lang_dir: Path, out: Path, opts: dict[str, Any],
                  ali_from: Path | None = None, align_data: Sequence[Path] = ()) -> None:
    """Train ``stage`` ("mono", or "tri" from the system and alignments in ``ali_from``) with
    ``opts`` (:func:`pase.asr.gmm_train.train_mono` / ``train_tri`` keywords) into ``out``,
    then align each of ``align_data`` with the final model."""
    if stage == "tri" and ali_from is None:
        raise PaseError("tri needs --ali_from (the monophone system dir)")
    lang = Lang.load(lang_dir)
    train = DataDir.load(data)
    out.mkdir(parents=True, exist_ok=True)
    caches = [ali_from] if ali_from else []
    feats = features(train, out, caches)
    texts = transcripts(train, lang)
    start = time.perf_counter()
    if stage == "mono":
        result = train_mono(feats, texts, lang, **opts)
    else:
        src = GmmSystem.load(ali_from / "final.npz")
        result = train_tri(feats, texts, lang, read_alignments(ali_from / "ali.ark"), src,
                           no_split_phones=lang.silence_phone_ids, **opts)
    seconds = time.perf_counter() - start
    system = result.system
    system.save(out / "final.npz")
    write_model(system, out / "final.mdl")
    system.tree.write(True, str(out / "tree"))
    (out / "num_pdfs").write_text(f"{system.num_pdfs}\n")
    write_outputs(system, result.alignments, out, "", sorted(set(texts) - set(result.alignments)))
    write_log(result, out / "log", opts, seconds)
    log.info("%s: %d pdfs, %d Gaussians, %d/%d utterances aligned, %.1fs", out,
             system.num_pdfs, system.num_gauss, len(result.alignments), len(texts), seconds)
    for other in align_data:
        other_data = DataDir.load(other)
        res = align(system, features(other_data, out, caches), transcripts(other_data, lang),
                    lang, beam=opts["beam"], retry_beam=opts["retry_beam"])
        write_outputs(system, res.alignments, out, f"_{other_data.path.name}", res.failed)
        log.info("%s: %d aligned, %d failed, avg like/frame %.3f", other,
                 len(res.alignments), len(res.failed), res.like_per_frame)
