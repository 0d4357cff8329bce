"""--wav_format of pase-prep-librispeech / pase-prep-timit: the direct paths pase reads fast,
and the Kaldi-style decoder pipes Kaldi's own wave reader needs, giving the same samples."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pase.bin import prep_librispeech, prep_timit
from pase.errors import PaseError
from pase.io import DataDir, read_audio, read_kaldi_map
from pase.synth import make_librispeech
from pase.synth.timit import make_timit

needs_flac = pytest.mark.skipif(shutil.which("flac") is None, reason="flac not installed")
needs_sph2pipe = pytest.mark.skipif(shutil.which("sph2pipe") is None, reason="sph2pipe not installed")


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory) -> Path:
    return make_librispeech(tmp_path_factory.mktemp("ls"), subsets={"dev-clean-2": (2, 1)}, seed=4)


@pytest.fixture(scope="module")
def timit(tmp_path_factory) -> Path:
    return make_timit(tmp_path_factory.mktemp("timit"), n_train_speakers=2, n_dev_speakers=1,
                      n_test_speakers=1, utts_per_speaker=2, seed=4)


def prep_both(librispeech: Path, tmp_path: Path) -> tuple[Path, Path]:
    for fmt in ("path", "pipe"):
        prep_librispeech.main([str(librispeech), str(tmp_path / fmt), "dev-clean-2", "--wav_format", fmt])
    return tmp_path / "path" / "dev_clean_2", tmp_path / "pipe" / "dev_clean_2"


def assert_same_samples(path_dir: Path, pipe_dir: Path) -> None:
    paths, pipes = DataDir.load(path_dir), DataDir.load(pipe_dir)
    assert [u.utt_id for u in paths.utterances] == [u.utt_id for u in pipes.utterances]
    for direct, piped in zip(paths.utterances, pipes.utterances):
        a, b = read_audio(direct.source), read_audio(piped.source)
        assert a.size > 8000 and np.array_equal(a, b), direct.utt_id
    for name in ("text", "utt2spk", "spk2utt"):
        assert (path_dir / name).read_text() == (pipe_dir / name).read_text()


@needs_flac
def test_librispeech_pipe_entries_read_as_the_flac_files(librispeech, tmp_path):
    path_dir, pipe_dir = prep_both(librispeech, tmp_path)
    flac = read_kaldi_map(path_dir / "wav.scp")
    assert all(Path(p).is_file() for p in flac.values())  # the default: files, read directly
    assert read_kaldi_map(pipe_dir / "wav.scp") == {u: f"flac -c -d -s {p} |" for u, p in flac.items()}
    assert_same_samples(path_dir, pipe_dir)


@needs_flac
def test_kaldi_wave_reader_takes_the_pipes_not_the_flac_paths(librispeech, tmp_path):
    """kaldi-native-io runs Kaldi's own table and wave reader code."""
    knio = pytest.importorskip("kaldi_native_io")
    path_dir, pipe_dir = prep_both(librispeech, tmp_path)
    with pytest.raises(RuntimeError):  # Kaldi: "expected RIFF or RIFX, got fLaC"
        next(iter(knio.SequentialWaveReader(f"scp:{path_dir}/wav.scp")))
    ours = DataDir.load(path_dir)
    # The reader reuses its object: copy each wave out before the next.
    kaldi = {k: (w.sample_freq, w.data.numpy()[0].copy())
             for k, w in knio.SequentialWaveReader(f"scp:{pipe_dir}/wav.scp")}
    assert sorted(kaldi) == sorted(u.utt_id for u in ours.utterances)
    for utt in ours.utterances:
        rate, samples = kaldi[utt.utt_id]
        # Kaldi keeps 16-bit sample values; libsndfile scales them by 1/32768.
        assert rate == 16000 and np.array_equal(samples, read_audio(utt.source) * 32768)


@needs_sph2pipe
def test_timit_pipe_entries_read_as_the_sphere_files(timit, tmp_path):
    for fmt in ("path", "pipe"):
        prep_timit.main([str(timit), str(tmp_path / fmt), "--allow_missing_speakers", "--wav_format", fmt])
    sph = read_kaldi_map(tmp_path / "path" / "train" / "wav.scp")
    assert read_kaldi_map(tmp_path / "pipe" / "train" / "wav.scp") == {
        u: f"sph2pipe -f wav {p} |" for u, p in sph.items()}
    assert_same_samples(tmp_path / "path" / "train", tmp_path / "pipe" / "train")


@pytest.mark.parametrize("tool, command", [("flac", "librispeech"), ("sph2pipe", "timit")])
def test_missing_decoder_is_one_line_and_writes_nothing(librispeech, timit, tmp_path, monkeypatch,
                                                        tool, command):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "data"
    with pytest.raises(PaseError, match=f"^--wav_format pipe writes '{tool} ...' entries but {tool} "
                                        r"is not on PATH \(.*; or use --wav_format path\)$"):
        if command == "librispeech":
            prep_librispeech.main([str(librispeech), str(out), "dev-clean-2", "--wav_format", "pipe"])
        else:
            prep_timit.main([str(timit), str(out), "--allow_missing_speakers", "--wav_format", "pipe"])
    assert not out.exists()
