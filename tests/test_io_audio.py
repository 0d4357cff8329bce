"""Audio reading: formats, pipes, segments, resampling and bad-input errors."""

import numpy as np
import pytest
import soundfile as sf

from pase.io import AudioError, audio_info, check_waveform, peak_normalize, read_audio

SR = 16000
PCM16_STEP = 1.0 / 32768


def tone(sr: int = SR, seconds: float = 0.5, freq: float = 200.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    noise = np.random.default_rng(seed).normal(scale=0.01, size=t.size)
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def write(path, data, sr=SR, **kwargs) -> str:
    sf.write(str(path), data, sr, **kwargs)
    return str(path)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("a.wav", {"subtype": "PCM_16"}),
        ("a.flac", {"subtype": "PCM_16"}),
        ("a.sph", {"format": "NIST", "subtype": "PCM_16"}),
    ],
)
def test_formats_round_trip(tmp_path, name, kwargs):
    wav = tone()
    path = write(tmp_path / name, wav, **kwargs)
    out = read_audio(path)
    assert out.dtype == np.float32 and out.shape == wav.shape
    np.testing.assert_allclose(out, wav, atol=PCM16_STEP)
    assert audio_info(path) == (wav.size, SR)


def test_pipe_equals_direct_read(tmp_path):
    path = write(tmp_path / "a.wav", tone())
    np.testing.assert_array_equal(read_audio(f"cat {path} |"), read_audio(path))
    assert audio_info(f"cat {path} |") is None


def test_segments_read_the_right_slice(tmp_path):
    wav = tone()
    path = write(tmp_path / "a.wav", wav, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path, start=0.1, end=0.3), wav[1600:4800])
    np.testing.assert_array_equal(read_audio(path, start=0.25, end=-1), wav[4000:])
    np.testing.assert_array_equal(read_audio(f"cat {path} |", start=0.1, end=0.3), wav[1600:4800])
    # Up to one 10 ms frame past the end is clamped, as Kaldi does.
    np.testing.assert_array_equal(read_audio(path, start=0.4, end=0.505), wav[6400:])


def test_resample_8k_keeps_tone(tmp_path):
    path = write(tmp_path / "a8k.wav", tone(sr=8000, seconds=0.5), sr=8000)
    out = read_audio(path)
    assert out.size == SR // 2
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * SR / out.size
    assert abs(peak_hz - 200.0) <= 2.0


def test_stereo_takes_channel_zero(tmp_path):
    left, right = tone(seed=1), tone(freq=500.0, seed=2)
    path = write(tmp_path / "st.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path), left)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav.*not found"):
        read_audio(str(tmp_path / "missing.wav"), name="utt1")
    with pytest.raises(AudioError, match="missing.wav"):
        audio_info(str(tmp_path / "missing.wav"))


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x01garbage-not-audio" * 10)
    with pytest.raises(AudioError, match="corrupt.wav.*utt7") as info:
        read_audio(str(path), name="utt7")
    assert isinstance(info.value.__cause__, sf.SoundFileError)


def test_zero_frame_file(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="empty.wav.*no samples"):
        read_audio(path)


def test_failing_pipe(tmp_path):
    cmd = f"cat {tmp_path}/nothere.wav |"
    with pytest.raises(AudioError, match="nothere.wav.*status 1.*No such file"):
        read_audio(cmd)


def test_segment_past_end(tmp_path):
    path = write(tmp_path / "short.wav", tone())
    with pytest.raises(AudioError, match=r"short.wav.*0.2-0.6 s extends past the end"):
        read_audio(path, start=0.2, end=0.6)
    with pytest.raises(AudioError, match=r"short.wav.*start 0.7 s"):
        read_audio(path, start=0.7, end=-1)


def test_check_waveform_rejects_bad_audio(tmp_path):
    silent = write(tmp_path / "silent.wav", np.zeros(800, dtype=np.float32))
    with pytest.raises(AudioError, match="silent.wav: all-zero"):
        check_waveform(read_audio(silent), name=silent)

    nan = tone()
    nan[[3, 10]] = np.nan
    nan_path = write(tmp_path / "nan.wav", nan, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: 2 non-finite"):
        check_waveform(read_audio(nan_path), name=nan_path)

    short = write(tmp_path / "short.wav", tone(seconds=0.05))
    with pytest.raises(AudioError, match=r"short.wav: too short: 800 samples \(0.050 s\), "
                                         r"minimum is 1600 samples \(0.100 s\)"):
        check_waveform(read_audio(short), name=short, min_samples=1600)
    check_waveform(read_audio(short), name=short, min_samples=800)

    with pytest.raises(AudioError, match="x.wav: empty"):
        check_waveform(np.zeros(0, dtype=np.float32), name="x.wav")


def test_peak_normalize():
    out = peak_normalize(np.array([0.1, -0.5, 0.25], dtype=np.float32))
    np.testing.assert_allclose(out, [0.2, -1.0, 0.5])
    assert out.dtype == np.float32
    with pytest.raises(AudioError, match="u1.*all-zero"):
        peak_normalize(np.zeros(4, dtype=np.float32), name="u1")
