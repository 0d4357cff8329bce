"""Worker targets (pase.targets) against independent reference computations on real speech.

References: numpy FFTs of explicitly framed signals (lps, fbank), librosa (mfcc, rms, zcr,
deltas), the `gammatone` package's filterbank (gtn), python_speech_features (fbank, looser:
its triangles are snapped to FFT bins) and Praat via parselmouth (F0).
"""
from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from pase.targets import (TARGET_NAMES, TargetBank, build_target, interpolate_log_f0,
                          yin_f0)

SR = 16000
HOP = 160

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> torch.Tensor:
    """At most 2 s of espeak-ng speech at 16 kHz, length a multiple of the hop."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    path = tmp_path_factory.mktemp("speech") / "utt.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Seven gray whales swam along the shore."],
                   check=True, capture_output=True)
    wav, sr = sf.read(path, dtype="float32")
    wav = AF.resample(torch.from_numpy(wav), sr, SR)[: 2 * SR]
    return wav[: len(wav) // HOP * HOP].contiguous()


def frames_np(x: np.ndarray, n_fft: int, n_frames: int) -> np.ndarray:
    """(n_frames, n_fft) frames centred on HOP * t of the reflect-padded float64 signal."""
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    return np.stack([padded[t * HOP: t * HOP + n_fft] for t in range(n_frames)])


def centred_window(n_fft: int, win: int) -> np.ndarray:
    window = np.zeros(n_fft)
    start = (n_fft - win) // 2
    window[start:start + win] = 1.0
    return window


def np_delta(feat: np.ndarray) -> np.ndarray:
    """9-frame regression delta along the last axis with edge replication."""
    padded = np.pad(feat, [(0, 0)] * (feat.ndim - 1) + [(4, 4)], mode="edge")
    n_t = feat.shape[-1]
    num = sum(n * (padded[..., 4 + n: 4 + n + n_t] - padded[..., 4 - n: 4 - n + n_t])
              for n in range(1, 5))
    return num / (2 * sum(n * n for n in range(1, 5)))


def corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


# --------------------------------------------------------------------------- shapes and API
DIMS_PASE_PLUS = {"lps": 3075, "lps_long": 3075, "fbank": 120, "fbank_long": 120, "gtn": 120,
                  "gtn_long": 120, "mfcc": 39, "mfcc_long": 60, "prosody": 12}
DIMS_STATIC = {"lps": 1025, "lps_long": 1025, "fbank": 40, "fbank_long": 40, "gtn": 40,
               "gtn_long": 40, "mfcc": 13, "mfcc_long": 20, "prosody": 4}


@pytest.mark.parametrize("der_order, dims", [(2, DIMS_PASE_PLUS), (0, DIMS_STATIC)])
def test_dims_and_shapes(der_order, dims):
    bank = TargetBank({name: {"der_order": der_order} for name in TARGET_NAMES})
    assert bank.dims == dims
    out = bank(0.1 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(0)))
    assert list(out) == list(TARGET_NAMES)
    for name, feat in out.items():
        assert feat.shape == (2, dims[name], 200) and feat.dtype == torch.float32, name
        assert torch.isfinite(feat).all(), name


def test_default_dims_and_original_cfgs():
    assert {name: build_target(name).dim for name in TARGET_NAMES} == DIMS_PASE_PLUS
    # PASE v1 worker transforms (cfg/workers/workers.cfg).
    assert build_target("lps", {"n_fft": 2048, "win": 400, "der_order": 0}).dim == 1025
    assert build_target("mfcc", {"win": 400, "order": 20, "der_order": 0}).dim == 20
    assert build_target("prosody", {"win": 320, "der_order": 0}).dim == 4
    assert build_target("fbank", {"nfilt": 24, "der_order": 1, "hop": 160}).dim == 48


def test_short_input_and_odd_length():
    bank = TargetBank({name: None for name in TARGET_NAMES})
    out = bank(0.1 * torch.randn(1, 2048 + 77))
    assert all(feat.shape[-1] == 13 for feat in out.values())
    with pytest.raises(ValueError, match=r"'lps'.*1025"):
        build_target("lps")(torch.randn(1, 1000))


@pytest.mark.parametrize("name, cfg, match", [
    ("lps", {"bogus": 1}, r"bogus.*allowed.*n_fft"),
    ("mfcc", {"n_fft": 512}, r"n_fft.*allowed.*order"),
    ("nope", None, r"nope.*lps_long"),
    ("lps", {"hop": 80}, r"hop"),
    ("gtn", {"der_order": 3}, r"der_order"),
    ("fbank", {"win": 600, "n_fft": 512}, r"exceeds"),
    ("fbank", {"n_filters": 40, "nfilt": 24}, r"disagree"),
])
def test_bad_cfg(name, cfg, match):
    with pytest.raises(ValueError, match=match):
        build_target(name, cfg)


def test_bad_input():
    target = build_target("prosody")
    wav = torch.zeros(2, 4000)
    wav[1, 100] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        target(wav)
    with pytest.raises(ValueError, match="non-finite"):
        TargetBank({"lps": None})(wav)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        target(torch.zeros(4000))


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize("name, win", [("lps", 400), ("lps_long", 512)])
def test_lps_matches_numpy(speech, name, win):
    n = len(speech) // HOP
    ours = build_target(name, {"der_order": 0})(speech[None])[0].numpy()
    spec = np.fft.rfft(frames_np(speech.numpy(), 2048, n) * centred_window(2048, win), axis=-1)
    ref = 10 * np.log10(np.abs(spec.T) ** 2 + 1e-19)
    strong = ref > ref.max() - 80  # float32 FFT rounding dominates far below the peak
    assert np.abs(ours - ref)[strong].max() < 0.02
    assert np.median(np.abs(ours - ref)) < 0.01


def htk_triangles(n_fft: int, n_filters: int) -> np.ndarray:
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0), mel(SR / 2), n_filters + 2) / 2595) - 1)
    freqs = np.arange(n_fft // 2 + 1) * SR / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


@pytest.mark.parametrize("name, win, n_fft", [("fbank", 400, 512), ("fbank_long", 1024, 1024)])
def test_fbank_matches_numpy_and_psf(speech, name, win, n_fft):
    psf = pytest.importorskip("python_speech_features")
    x = speech.numpy().astype(np.float64)
    n = len(x) // HOP
    ours = build_target(name, {"der_order": 0})(speech[None])[0].numpy()

    emph = np.append(x[0], x[1:] - 0.97 * x[:-1])
    power = np.abs(np.fft.rfft(frames_np(emph, n_fft, n) * centred_window(n_fft, win))) ** 2
    ref = np.log(np.maximum(power / n_fft @ htk_triangles(n_fft, 40).T, np.finfo(float).eps)).T
    assert np.abs(ours - ref).max() < 2e-3

    # python_speech_features frames start at HOP * k; feed it a signal shifted so that its
    # frame k is centred on our frame k + lag.
    offset = -(win // 2) % HOP
    lag = (offset + win // 2) // HOP
    theirs = psf.logfbank(x[offset:], SR, winlen=win / SR, winstep=HOP / SR, nfilt=40,
                          nfft=n_fft).T[:, 1:]  # frame 0 saw no pre-emphasis history
    ours_m = ours[:, lag + 1: lag + 1 + theirs.shape[1]]
    theirs = theirs[:, : ours_m.shape[1]]
    # Their triangles are snapped to FFT bins: close, not equal (narrow low bands differ most).
    corr = corr_rows(ours_m, theirs)
    assert np.median(corr) > 0.995 and corr.min() > 0.95
    assert np.median(np.abs(ours_m - theirs)) < 0.15


@pytest.mark.filterwarnings("ignore:Empty filters")  # 128 mel bands on a 400-point FFT
@pytest.mark.parametrize("name, n_fft, order", [("mfcc", 400, 13), ("mfcc_long", 2048, 20)])
def test_mfcc_matches_librosa(speech, name, n_fft, order):
    librosa = pytest.importorskip("librosa")
    ours = build_target(name, {"der_order": 0})(speech[None])[0].numpy()
    ref = librosa.feature.mfcc(y=speech.numpy().astype(np.float64), sr=SR, n_mfcc=order,
                               n_fft=n_fft, hop_length=HOP, pad_mode="reflect")
    ref = ref[:, : ours.shape[1]]
    assert corr_rows(ours, ref).min() > 0.999
    assert np.abs(ours - ref).max() < 0.01  # coefficients span hundreds


@pytest.mark.parametrize("name, win", [("gtn", 400), ("gtn_long", 2048)])
def test_gtn_matches_gammatone_package(speech, name, win):
    gtgram = pytest.importorskip("gammatone.gtgram")
    x = speech.numpy().astype(np.float64)
    n = len(x) // HOP
    ours = build_target(name, {"der_order": 0})(speech[None])[0].numpy()
    energy = gtgram.gtgram_xe(x, SR, 40, 500, None)  # (40, T) squared IIR filter outputs
    padded = np.pad(energy, [(0, 0), (win // 2, win // 2)], mode="reflect")
    rms = np.sqrt(np.stack([padded[:, t * HOP: t * HOP + win].mean(1) for t in range(n)], 1))
    ref = np.log(rms + 1e-10)
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_gtn_digital_silence_reaches_log_floor():
    """Zeros after a loud tone stay at log(0 + 1e-10), not at an FFT rounding floor."""
    t = torch.arange(8000) / SR
    wav = torch.cat([0.9 * torch.sin(2 * math.pi * 1000 * t), torch.zeros(8000)])[None]
    out = build_target("gtn", {"der_order": 0})(wav)[0]
    torch.testing.assert_close(out[:, 70:], torch.full_like(out[:, 70:], math.log(1e-10)))


def test_deltas_match_regression_formula(speech):
    librosa = pytest.importorskip("librosa")
    out = build_target("fbank")(speech[None])[0].numpy().astype(np.float64)
    static, delta, delta2 = out[:40], out[40:80], out[80:]
    np.testing.assert_allclose(delta, np_delta(static), atol=1e-4)
    np.testing.assert_allclose(delta2, np_delta(np_delta(static)), atol=1e-4)
    # Away from the edges the first delta equals librosa's Savitzky-Golay delta.
    sg = librosa.feature.delta(static, width=9, order=1, axis=-1)
    np.testing.assert_allclose(delta[:, 4:-4], sg[:, 4:-4], atol=1e-4)


def test_energy_and_zcr_match_librosa(speech):
    librosa = pytest.importorskip("librosa")
    x = speech.numpy()
    ours = build_target("prosody", {"der_order": 0})(speech[None])[0].numpy()
    n = ours.shape[1]
    rms = librosa.feature.rms(y=x, frame_length=320, hop_length=HOP, center=True,
                              pad_mode="constant")[0, :n]
    zcr = librosa.feature.zero_crossing_rate(x, frame_length=320, hop_length=HOP,
                                             center=True)[0, :n]
    np.testing.assert_allclose(ours[2], rms, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours[3], zcr, atol=1e-6)


# --------------------------------------------------------------------------- F0 / prosody
def harmonic(f0_track: np.ndarray) -> np.ndarray:
    """Harmonics below 4 kHz with 1/k amplitudes, following an instantaneous F0 track."""
    phase = 2 * np.pi * np.cumsum(f0_track) / SR
    k = np.arange(1, 51)[:, None]
    amp = np.where(k * f0_track[None] < 4000, 1.0 / k, 0.0)
    return 0.3 * (amp * np.sin(k * phase[None])).sum(0) / np.log(50)


def test_f0_on_synthetic_harmonics():
    rng = np.random.default_rng(0)
    lead, tone = int(0.3 * SR), SR
    tracks = [np.full(tone, f) for f in (80.0, 120.0, 200.0, 280.0)]
    tracks.append(np.linspace(100.0, 250.0, tone))  # glide
    batch = np.zeros((len(tracks), 2 * lead + tone))
    for row, track in zip(batch, tracks):
        row[lead:lead + tone] = harmonic(track)
        row += 1e-4 * rng.standard_normal(row.shape)  # quiet background, not digital zero
    f0, voiced = yin_f0(torch.from_numpy(batch).float(), HOP, SR)
    t = np.arange(f0.shape[1]) * HOP
    inner = (t >= lead + 800) & (t < lead + tone - 800)
    silent = (t < lead - 800) | (t >= lead + tone + 800)
    for i, track in enumerate(tracks):
        truth = track[np.clip(t - lead, 0, tone - 1)]
        v = voiced[i].numpy()
        assert v[inner].mean() > 0.95, i
        assert not v[silent].any(), i
        rel = np.abs(f0[i].numpy() - truth) / truth
        assert np.median(rel[inner & v]) < 0.02 and rel[inner & v].max() < 0.05, i
    assert not yin_f0(torch.zeros(1, 8000), HOP, SR)[1].any()


def test_f0_against_praat(speech):
    parselmouth = pytest.importorskip("parselmouth")
    f0, voiced = (a[0].numpy() for a in yin_f0(speech[None], HOP, SR))
    pitch = parselmouth.Sound(speech.numpy().astype(np.float64), SR).to_pitch(
        time_step=HOP / SR, pitch_floor=60.0, pitch_ceiling=300.0)
    times = np.arange(len(f0)) * HOP / SR
    ref = np.array([pitch.get_value_at_time(t) for t in times])  # NaN where unvoiced
    ref_voiced = np.isfinite(ref)
    assert ref_voiced.mean() > 0.4  # the utterance really is mostly voiced
    assert (voiced == ref_voiced).mean() > 0.85
    both = voiced & ref_voiced
    assert np.median(np.abs(f0[both] - ref[both]) / ref[both]) < 0.05


def test_log_f0_interpolation_matches_np_interp():
    rng = np.random.default_rng(1)
    lf0 = rng.uniform(4.0, 5.7, size=(6, 40))
    voiced = rng.random((6, 40)) < 0.4
    voiced[0] = False                    # all unvoiced -> log 60
    voiced[1] = True                     # nothing to fill
    voiced[2, :7] = voiced[2, -5:] = False  # leading and trailing gaps
    voiced[2, 10] = voiced[2, 30] = True
    voiced[3] = False
    voiced[3, 17] = True                 # a single voiced frame fills everything
    ours = interpolate_log_f0(torch.from_numpy(lf0), torch.from_numpy(voiced)).numpy()
    for i in range(6):
        idx = np.flatnonzero(voiced[i])
        ref = (np.full(40, math.log(60.0)) if idx.size == 0
               else np.interp(np.arange(40), idx, lf0[i, idx]))
        np.testing.assert_allclose(ours[i], ref, rtol=1e-12, err_msg=str(i))


def test_prosody_rows(speech):
    out = build_target("prosody", {"der_order": 0})(speech[None])[0]
    f0, voiced = yin_f0(speech[None], HOP, SR)
    assert torch.equal(out[1], voiced[0].float())
    torch.testing.assert_close(out[0][voiced[0]], f0[0][voiced[0]].log())
    assert ((out[0] >= math.log(60) - 1e-5) & (out[0] <= math.log(300) + 1e-5)).all()


# --------------------------------------------------------------------------- batching
def test_batched_equals_per_sample_and_deterministic(speech):
    bank = TargetBank({name: None for name in TARGET_NAMES})
    n = 24000
    other = torch.from_numpy(harmonic(np.full(n, 150.0))).float()
    noise = 0.01 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    batch = torch.stack([speech[:n], other + noise])
    out = bank(batch)
    again = bank(batch)
    singles = [bank(batch[i:i + 1]) for i in range(2)]
    for name in TARGET_NAMES:
        assert torch.equal(out[name], again[name]), name
        for i in range(2):
            torch.testing.assert_close(out[name][i], singles[i][name][0], atol=1e-4, rtol=1e-5,
                                       msg=f"{name}[{i}]")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(speech):
    bank = TargetBank({name: None for name in TARGET_NAMES})
    cpu = bank(speech[None])
    gpu = bank.to("cuda")(speech[None].cuda())
    for name in TARGET_NAMES:
        assert gpu[name].device.type == "cuda"
        static = bank.targets[name].n_static
        diff = (gpu[name][:, :static].cpu() - cpu[name][:, :static]).abs()
        # Different FFT / reduction kernels: tiny differences, and a rare voicing flip.
        assert (diff > 0.05 + 1e-3 * cpu[name][:, :static].abs()).float().mean() < 0.01, name
