"""Kaldi data directories: parsing, validation, sorted atomic writes, sharding, copying."""

import pytest

from pase.io import (
    DataDir,
    DataDirError,
    Utterance,
    copy_data_dir,
    read_kaldi_map,
    read_segments,
    utt2spk_to_spk2utt,
    write_kaldi_map,
)


def make_dir(root, files: dict[str, str]):
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (root / name).write_text(content)
    return root


PLAIN = {
    "wav.scp": "spkA-u1 /data/a1.wav\nspkA-u2 sox /data/a2.flac -t wav - |\nspkB-u1 /data/b1.sph\n",
    "utt2spk": "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\n",
    "text": "spkA-u1 HELLO WORLD\nspkA-u2\nspkB-u1 HI\n",
    "utt2dur": "spkA-u1 1.5\nspkA-u2 2\nspkB-u1 0.25\n",
}

SEGMENTED = {
    "wav.scp": "recA /data/recA.wav\nrecB cat /data/recB.wav |\n",
    "segments": "spkA-s2 recA 1.0 2.5\nspkA-s1 recA 0 1.0\nspkB-s1 recB 0.5 -1\n",
    "utt2spk": "spkA-s1 spkA\nspkA-s2 spkA\nspkB-s1 spkB\n",
    "spk2gender": "spkA f\nspkB m\n",
    "reco2file_and_channel": "recA recA A\nrecB recB A\n",
}


def test_load_plain(tmp_path):
    d = DataDir.load(make_dir(tmp_path / "d", PLAIN))
    assert len(d) == 3
    assert d["spkA-u2"] == Utterance("spkA-u2", "sox /data/a2.flac -t wav - |", None, None, "spkA")
    assert d.utt2spk == {"spkA-u1": "spkA", "spkA-u2": "spkA", "spkB-u1": "spkB"}
    assert d.text["spkA-u2"] == "" and d.text["spkA-u1"] == "HELLO WORLD"
    assert d.utt2dur == {"spkA-u1": 1.5, "spkA-u2": 2.0, "spkB-u1": 0.25}
    with pytest.raises(KeyError, match="nope"):
        d["nope"]


def test_load_segments_sorted_and_warns(tmp_path, caplog):
    d = DataDir.load(make_dir(tmp_path / "d", SEGMENTED))
    assert [u.utt_id for u in d.utterances] == ["spkA-s1", "spkA-s2", "spkB-s1"]
    assert d["spkA-s2"] == Utterance("spkA-s2", "/data/recA.wav", 1.0, 2.5, "spkA")
    assert d["spkB-s1"] == Utterance("spkB-s1", "cat /data/recB.wav |", 0.5, None, "spkB")
    assert "segments: keys are not sorted" in caplog.text
    assert read_segments(tmp_path / "d" / "segments")["spkB-s1"] == ("recB", 0.5, -1.0)


def test_missing_utt2spk_means_one_speaker_per_utt(tmp_path, caplog):
    d = DataDir.load(make_dir(tmp_path / "d", {"wav.scp": PLAIN["wav.scp"]}))
    assert d.utt2spk == {u: u for u in ("spkA-u1", "spkA-u2", "spkB-u1")}
    assert "utt2spk: missing" in caplog.text
    assert d.text is None and d.utt2dur is None


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("wav.scp", "a /x.wav\nb /y.wav\nc\n", r"wav.scp:3: key 'c' has no value"),
        ("wav.scp", "a /x.wav\nb /y.wav\na /z.wav\n", r"wav.scp:3: duplicate key 'a' \(.* 1\)"),
        ("wav.scp", "a /x.wav\n\nb /y.wav\n", r"wav.scp:2: blank line"),
        ("segments", "u1 r1 0 1\nu2 r1 1 2\nu3 r1 2.x 3\n", r"segments:3: start/end must be"),
        ("segments", "u1 r1 0 1\nu2 r1 2 1\n", r"segments:2: end 1 must be greater than start 2"),
        ("segments", "u1 r1 0 1 extra\n", r"segments:1: expected 4 fields, got 5"),
        ("segments", "u1 r1 0 1\nu2 r9 0 1\n", r"segments:2: recording 'r9' of utterance 'u2'"),
        ("utt2spk", "u1 s1 x\n", r"utt2spk:1: expected 2 fields"),
        ("utt2dur", "u1 1.0\nu2 abc\n", r"utt2dur:2: duration must be a number"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, name, content, match):
    files = {"wav.scp": "r1 /r1.wav\n", "segments": "u1 r1 0 1\nu2 r1 1 2\n", name: content}
    with pytest.raises(DataDirError, match=match):
        DataDir.load(make_dir(tmp_path / "d", files))


def test_utt2spk_mismatch(tmp_path):
    files = dict(PLAIN, **{"utt2spk": "spkA-u1 spkA\nspkB-u1 spkB\n"})
    with pytest.raises(DataDirError, match=r"utt2spk: 1 utt.* from .*wav.scp missing: 'spkA-u2'"):
        DataDir.load(make_dir(tmp_path / "d1", files))
    files = dict(PLAIN, **{"utt2spk": PLAIN["utt2spk"] + "ghost spkC\n"})
    with pytest.raises(DataDirError, match=r"utt2spk: 1 utterance\(s\) not in .*wav.scp: 'ghost'"):
        DataDir.load(make_dir(tmp_path / "d2", files))


def test_read_kaldi_map_missing_and_spaces(tmp_path):
    with pytest.raises(DataDirError, match="nothere: file not found"):
        read_kaldi_map(tmp_path / "nothere")
    path = tmp_path / "m"
    path.write_text("k1 \t a  b |  \n")
    assert read_kaldi_map(path) == {"k1": "a  b |"}


def test_write_kaldi_map_sorts_c_order(tmp_path):
    path = tmp_path / "m"
    write_kaldi_map(path, {"_x": "3", "a": ["p", "q"], "B": "1"})
    assert path.read_text() == "B 1\n_x 3\na p q\n"
    with pytest.raises(DataDirError, match="invalid key 'a b'"):
        write_kaldi_map(path, {"a b": "1"})


def test_write_kaldi_map_is_atomic(tmp_path):
    path = tmp_path / "m"
    write_kaldi_map(path, {"a": "1"})

    def failing_values():
        yield "ok"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_kaldi_map(path, {"a": "2", "b": failing_values()})
    assert path.read_text() == "a 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_spk2utt_consistency(tmp_path):
    d = DataDir.load(make_dir(tmp_path / "d", SEGMENTED))
    spk2utt = utt2spk_to_spk2utt({"u3": "s2", "u2": "s1", "u1": "s2", "B": "s1"})
    assert list(spk2utt.items()) == [("s1", ["B", "u2"]), ("s2", ["u1", "u3"])]
    spk2utt = utt2spk_to_spk2utt(d.utt2spk)
    assert sorted(u for utts in spk2utt.values() for u in utts) == sorted(d.utt2spk)
    assert all(d.utt2spk[u] == s for s, utts in spk2utt.items() for u in utts)


@pytest.mark.parametrize("n, nj", [(10, 3), (3, 3), (7, 1), (5, 4)])
def test_shard_covers_all_once(tmp_path, n, nj):
    wav = "".join(f"u{i:02d} /w{i}.wav\n" for i in range(n))
    d = DataDir.load(make_dir(tmp_path / "d", {"wav.scp": wav}))
    shards = [d.shard(nj, job) for job in range(1, nj + 1)]
    assert [u for s in shards for u in s] == d.utterances
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_errors(tmp_path):
    d = DataDir.load(make_dir(tmp_path / "d", PLAIN))
    with pytest.raises(ValueError, match="job must be in 1..nj"):
        d.shard(2, 0)
    with pytest.raises(ValueError, match="job must be in 1..nj"):
        d.shard(2, 3)
    with pytest.raises(DataDirError, match="cannot split 3 utterance"):
        d.shard(4, 1)


def test_subset(tmp_path):
    d = DataDir.load(make_dir(tmp_path / "d", PLAIN)).subset(["spkB-u1", "spkA-u1"])
    assert [u.utt_id for u in d.utterances] == ["spkA-u1", "spkB-u1"]
    assert d.text == {"spkA-u1": "HELLO WORLD", "spkB-u1": "HI"}
    with pytest.raises(DataDirError, match="unknown utterance id.*'zz'"):
        d.subset(["zz"])


def test_copy_data_dir_subset(tmp_path):
    src = make_dir(tmp_path / "src", dict(SEGMENTED, **{"feats.scp": "spkA-s1 x.ark:5\n"}))
    dst = make_dir(tmp_path / "dst", {"text": "stale text\n"})
    copy_data_dir(src, dst, utt_ids=["spkB-s1"])
    assert sorted(p.name for p in dst.iterdir()) == [
        "reco2file_and_channel", "segments", "spk2gender", "spk2utt", "utt2spk", "wav.scp",
    ]
    assert (dst / "wav.scp").read_text() == "recB cat /data/recB.wav |\n"
    assert (dst / "segments").read_text() == "spkB-s1 recB 0.5 -1\n"
    assert (dst / "spk2utt").read_text() == "spkB spkB-s1\n"
    assert (dst / "spk2gender").read_text() == "spkB m\n"
    assert (dst / "reco2file_and_channel").read_text() == "recB recB A\n"
    assert len(DataDir.load(dst)) == 1

    copy_data_dir(src, tmp_path / "full")
    full = DataDir.load(tmp_path / "full")
    assert full.utterances == DataDir.load(src).utterances
    assert (tmp_path / "full" / "segments").read_text().splitlines()[0].startswith("spkA-s1 ")
    with pytest.raises(DataDirError, match="unknown utterance id.*'nope'"):
        copy_data_dir(src, tmp_path / "bad", utt_ids=["nope"])
