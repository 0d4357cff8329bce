"""ESPnet2's `asr.sh --feats_type extracted`: every dump data dir carries feats_type/feats_dim/
feats_shape, and `pase-data-dir espnet` makes the copy whose cmvn.scp keys stage 3 can use."""
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from pase.bin.data_dir import main as data_dir_main
from pase.bin.extract import main as extract_main
from pase.io import DataDir, DataDirError, compute_cmvn_stats, read_kaldi_map


@pytest.fixture(scope="module")
def dumped(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("espnet")
    rng = np.random.default_rng(1)
    d = root / "data"
    d.mkdir()
    utts = {"spkA-1": "spkA", "spkA-2": "spkA", "spkB-1": "spkB"}
    for i, u in enumerate(utts):
        sf.write(root / f"{u}.wav", (0.1 * rng.standard_normal(8000 + 3000 * i)).astype(np.float32), 16000)
    (d / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts.items()))
    (d / "spk2utt").write_text("spkA spkA-1 spkA-2\nspkB spkB-1\n")
    (d / "text").write_text("spkA-1 A B\nspkA-2 C\nspkB-1 D E\n")
    extract_main([str(d), str(root / "dump"), "--out_data_dir", str(root / "train"), "--feats_type", "mfcc",
                  "--no_progress"])
    return root / "train"


def stage3_problems(d: Path) -> list[str]:
    """What ESPnet's stage 3 (+ Kaldi's copy_data_dir.sh) needs of data/<set>: the dummy wav.scp
    is made from cmvn.scp's keys and mapped as utterances, cmvn.scp itself mapped as speakers."""
    utts = set(read_kaldi_map(d / "utt2spk"))
    speakers = set(read_kaldi_map(d / "spk2utt"))
    keys = set(read_kaldi_map(d / "cmvn.scp"))
    return ([f"cmvn key {k} is no utterance" for k in sorted(keys - utts)] +
            [f"cmvn key {k} is no speaker" for k in sorted(keys - speakers)] +
            [f"utterance {u} has no cmvn" for u in sorted(utts - keys)])


def test_dump_dirs_carry_espnet_shape_files(dumped):
    feats = {k: np.asarray(v) for k, v in kaldiio.load_scp(str(dumped / "feats.scp")).items()}
    dim = next(iter(feats.values())).shape[1]
    assert (dumped / "feats_type").read_text() == "extracted\n"
    assert (dumped / "feats_dim").read_text() == f"{dim}\n"
    assert read_kaldi_map(dumped / "feats_shape") == {u: f"{m.shape[0]},{dim}" for u, m in feats.items()}
    assert stage3_problems(dumped)  # speaker-keyed cmvn.scp: why the export exists


def test_export_runs_espnet_stage3(dumped, tmp_path):
    out = tmp_path / "espnet_train"
    data_dir_main(["espnet", str(dumped), str(out)])
    assert stage3_problems(out) == []
    assert read_kaldi_map(out / "utt2spk.orig") == read_kaldi_map(dumped / "utt2spk")
    for name in ("feats.scp", "text", "wav.scp", "feats_type", "feats_dim", "feats_shape", "utt2num_frames"):
        assert (out / name).read_text() == (dumped / name).read_text(), name
    feats = kaldiio.load_scp(str(out / "feats.scp"))
    for utt, stats in kaldiio.load_scp(str(out / "cmvn.scp")).items():
        assert np.allclose(stats, compute_cmvn_stats([np.asarray(feats[utt])]))
    DataDir.load(out)  # a valid Kaldi data dir too
    with pytest.raises(DataDirError, match="exists"):
        data_dir_main(["espnet", str(dumped), str(out)])
    with pytest.raises(DataDirError, match="feats.scp not found"):
        data_dir_main(["espnet", str(dumped.parent / "data"), str(tmp_path / "x")])
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x*"))
    short = tmp_path / "short"  # utt2num_frames without its first utterance
    shutil.copytree(dumped, short)
    lines = (short / "utt2num_frames").read_text().splitlines()
    (short / "utt2num_frames").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataDirError, match=f"utt2num_frames: no frame count for 1 utterance.*{lines[0].split()[0]}"):
        data_dir_main(["espnet", str(short), str(tmp_path / "y")])
    assert not (tmp_path / "y").exists()
