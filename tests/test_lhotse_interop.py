"""lhotse reads our outputs: a pase-extract output data dir through lhotse.kaldi.load_kaldi_data_dir,
and its PASE+ features through lhotse's Kaldi feature reader, equal to what we wrote."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import make_data_dir
from pase.bin import extract
from pase.io import DataDir, iter_matrix_blocks, read_kaldi_map, validate_data_dir

lhotse = pytest.importorskip("lhotse")
pytest.importorskip("kaldi_native_io")  # lhotse's KaldiReader, without which it drops feats.scp


def test_lhotse_loads_our_data_dir_and_features(tmp_path):
    data = make_data_dir(tmp_path / "corpus", speakers=2, utts=2, seconds=(0.6, 1.2))
    (data / "text").write_text("".join(f"{u} HELLO {i}\n" for i, u in enumerate(read_kaldi_map(data / "utt2spk"))))
    out = tmp_path / "data_pase"
    extract.main([str(data), str(tmp_path / "dump"), "--random_init", "--fe_cfg", "cfg/frontend/PASE+.cfg",
                  "--out_data_dir", str(out), "--no_progress"])
    assert validate_data_dir(out)[0] == []
    recordings, supervisions, features = lhotse.kaldi.load_kaldi_data_dir(out, sampling_rate=16000,
                                                                          frame_shift=0.01)
    ours = DataDir.load(out)
    utts = [u.utt_id for u in ours.utterances]
    assert sorted(r.id for r in recordings) == utts
    assert {s.id: s.speaker for s in supervisions} == ours.utt2spk
    assert {s.id: s.text for s in supervisions} == read_kaldi_map(out / "text")
    for rec in recordings:
        assert rec.num_samples == len(rec.load_audio()[0])  # lhotse reads our wav.scp itself
    frames = read_kaldi_map(out / "utt2num_frames")
    scp = read_kaldi_map(out / "feats.scp")
    assert sorted(f.recording_id for f in features) == utts
    for feat in features:
        utt = feat.recording_id
        mine = np.concatenate(list(iter_matrix_blocks(scp[utt])))
        theirs = feat.load()
        assert feat.num_frames == int(frames[utt]) == len(mine) and feat.num_features == 256
        assert theirs.dtype == np.float32 and np.array_equal(theirs, mine), utt
