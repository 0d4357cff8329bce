"""pase-seed-data: the original README's inputs (flat wav folder, train/test lists of file names,
a file -> speaker map) as Kaldi data dirs plus the held-out-speaker split."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pase.bin import data_dir as data_dir_cmd
from pase.bin import seed_data, split_data
from pase.io import PaseInputError, read_kaldi_map, utt2spk_to_spk2utt
from pase.prep.seed import SeedDataError

# File name -> integer speaker class, as the original's libri_dict.npy; speakers 1 and 10 make
# byte order and numeric order differ.
SPEAKERS = {1: ["1-a-0.wav", "1-a-1.wav"], 2: ["x.wav", "y.wav"], 10: ["10-b-0.wav", "z.wav"],
            3: ["c0.wav", "c1.wav"], 4: ["d0.wav", "d1.wav"]}
TEST = ["y.wav", "z.wav"]


@pytest.fixture()
def seed(tmp_path: Path) -> Path:
    """wavs/, tr.scp, te.scp and the speaker map as text, JSON and numpy under tmp_path."""
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    names = {n: s for s, ns in SPEAKERS.items() for n in ns}
    for n in names:
        sf.write(wavs / n, np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "tr.scp").write_text("".join(f"{n}\n" for n in names if n not in TEST))
    (tmp_path / "te.scp").write_text("".join(f"{n}\n" for n in TEST))
    (tmp_path / "map.txt").write_text("".join(f"{n} {s}\n" for n, s in names.items()))
    (tmp_path / "map.json").write_text(json.dumps(names))
    np.save(tmp_path / "map.npy", names)
    return tmp_path


def run(seed: Path, out: str, spk_map: str = "map.txt", *extra: str) -> Path:
    seed_data.main(["--data_root", str(seed / "wavs"), "--train_scp", str(seed / "tr.scp"),
                    "--test_scp", str(seed / "te.scp"), "--spk_map", str(seed / spk_map),
                    "--out_dir", str(seed / out), *extra])
    return seed / out


def test_seed_inputs_become_valid_kaldi_dirs(seed):
    out = run(seed, "data")
    for name in ("train", "test", "pase_train", "pase_valid"):
        data_dir_cmd.main(["validate", "--no-text", "--no-feats", str(out / name)])  # exits 1 on any problem
    utt2spk = read_kaldi_map(out / "train" / "utt2spk")
    # Speaker-prefixed ids; names already carrying their speaker prefix are kept.
    assert list(utt2spk) == ["1-a-0", "1-a-1", "10-b-0", "2-x", "3-c0", "3-c1", "4-d0", "4-d1"]
    assert utt2spk["10-b-0"] == "10" and utt2spk["2-x"] == "2"
    spk2utt = (out / "train" / "spk2utt").read_text().splitlines()
    assert spk2utt == [f"{s} {' '.join(u)}" for s, u in utt2spk_to_spk2utt(utt2spk).items()]
    assert read_kaldi_map(out / "train" / "wav.scp")["3-c0"] == str((seed / "wavs" / "c0.wav").resolve())
    assert read_kaldi_map(out / "test" / "utt2spk") == {"2-y": "2", "10-z": "10"}
    # The held-out-speaker split is the one pase-split-data (the recipe's stage 2) makes.
    split_data.main([str(out / "train"), str(seed / "tr"), str(seed / "va"), "--valid_fraction", "0.1"])
    for mine, ref in (("pase_train", "tr"), ("pase_valid", "va")):
        for f in ("wav.scp", "utt2spk", "spk2utt"):
            assert (out / mine / f).read_text() == (seed / ref / f).read_text()
    train_spk = set(read_kaldi_map(out / "pase_train" / "utt2spk").values())
    valid_spk = set(read_kaldi_map(out / "pase_valid" / "utt2spk").values())
    assert valid_spk and train_spk and not train_spk & valid_spk


def test_json_and_opted_in_numpy_maps_equal_the_text_map(seed):
    ref = run(seed, "text")
    for spk_map, extra in (("map.json", ()), ("map.npy", ("--allow_pickle",))):
        out = run(seed, "out_" + spk_map, spk_map, *extra)
        for name in ("train", "test", "pase_train", "pase_valid"):
            for f in ("wav.scp", "utt2spk", "spk2utt"):
                assert (out / name / f).read_text() == (ref / name / f).read_text(), (spk_map, name, f)


@pytest.mark.parametrize("edit, message", [
    (lambda s: (s / "wavs" / "c1.wav").unlink(), r"tr\.scp:6: .*c1\.wav not found"),
    (lambda s: ((s / "tr.scp").write_text("1-a-0.wav\nx.wav\n"), (s / "map.txt").write_text("1-a-0.wav 1\n")),
     r"tr\.scp:2: 'x\.wav' has no speaker in .*map\.txt"),
    (lambda s: (s / "tr.scp").write_text("1-a-0.wav\n\nx.wav 2\n"), r"tr\.scp:3: expected one file name"),
    (lambda s: (s / "tr.scp").write_text("1-a-0.wav\nwavs/x.wav\n"), r"tr\.scp:2: expected one file name without a directory"),
    (lambda s: (s / "tr.scp").write_text("1-a-0.wav\n1-a-0.wav\n"), r"tr\.scp:2: '1-a-0\.wav' already listed at line 1"),
    (lambda s: (s / "te.scp").write_text("x.wav\n"), r"tr\.scp and .*te\.scp share 1 file"),
    (lambda s: (s / "map.txt").write_text("x.wav 2\nc0.wav\n"), r"map\.txt:2: expected 'file speaker'"),
    (lambda s: (s / "map.txt").write_text("x.wav 2\nx.wav 3\n"), r"map\.txt:2: 'x\.wav' listed twice"),
    (lambda s: (s / "tr.scp").write_text("c0.wav\nc1.wav\n"), r"tr\.scp: 1 speaker\(s\); a held-out-speaker split keeping at least 2 on each side needs 4"),
])
def test_bad_inputs_are_one_line_errors_naming_the_place(seed, edit, message):
    edit(seed)
    with pytest.raises(PaseInputError, match=message):
        run(seed, "data")
    assert not (seed / "data").exists()  # nothing half-written


def test_a_pickle_needs_the_opt_in(seed, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pase-seed-data", "--data_root", str(seed / "wavs"),
                                      "--train_scp", str(seed / "tr.scp"), "--libri_dict", str(seed / "map.npy"),
                                      "--out_dir", str(seed / "data")])
    with pytest.raises(SystemExit) as exc:
        seed_data.cli()
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pase-seed-data: error: ") and "map.npy" in err and "--allow_pickle" in err
    assert "\n" not in err and not (seed / "data").exists()
    (seed / "bad.json").write_text('{"x.wav": 2,\n "y.wav": 2.5}')
    with pytest.raises(SeedDataError, match=r"bad\.json: y\.wav: speaker must be a string or an integer"):
        run(seed, "data", "bad.json")
    (seed / "bad.json").write_text('{"x.wav": 2,\n "y.wav" 2}')
    with pytest.raises(SeedDataError, match=r"bad\.json:2: invalid JSON"):
        run(seed, "data", "bad.json")
