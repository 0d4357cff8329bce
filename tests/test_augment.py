"""PASE+ distortions (pase.augment) and the bank tools (pase-make-distortion-banks, pase-prepare-rirs).

Exactness is checked against the original's formulas re-done in numpy (reverb, FIR filtering),
by recovering the mixing coefficients of a noisy output (SNR), and on signals whose speech and
silence regions are known (chop).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pase.augment import (DISTORTIONS, bandreject_fir, build_distortions, energy_vad, lowpass_fir,
                          mix_at_snr)
from pase.augment.dsp import speech_regions
from pase.bin import make_distortion_banks, prepare_rirs
from pase.config import ConfigError

SR = 16000
torch.set_num_threads(2)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sine(freq: float, n: int, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype="FLOAT")
    return path


def energy(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x * x).sum(-1)


def sine_snr(out: np.ndarray, freq: float) -> np.ndarray:
    """SNR of rows that are (scaled) sine + something else: the sine part is the projection on
    sin/cos at `freq` (an integer number of cycles, so they are orthogonal)."""
    t = np.arange(out.shape[-1]) / SR
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coef = out @ basis.T / (basis * basis).sum(-1)
    clean = coef @ basis
    return 10 * np.log10(energy(clean) / energy(out - clean))


def band_energy(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Energy of each row between lo and hi Hz (one long FFT)."""
    spec = torch.fft.rfft(x.double(), dim=-1).abs().square()
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    return spec[..., (f >= lo) & (f < hi)].sum(-1)


@pytest.fixture(scope="module")
def banks(tmp_path_factory) -> Path:
    """A small simulated bank made by the CLI (the demo uses the same tool with larger sizes)."""
    out = tmp_path_factory.mktemp("banks")
    make_distortion_banks.main([str(out), "--seed", "3", "--rooms_per_type", "1",
                                "--rirs_per_room", "2", "--num_noises", "6", "--noise_seconds", "1.5",
                                "--num_overlap", "3", "--overlap_seconds", "1.5",
                                "--num_bandrop_filters", "4"])
    return out


@pytest.fixture(scope="module")
def irs(tmp_path_factory) -> Path:
    """Impulse responses: a peak delayed by 150 taps, a peak at tap 0, and a plain delta."""
    d = tmp_path_factory.mktemp("irs")
    rng = np.random.default_rng(0)
    tail = 0.4 * np.exp(-np.arange(600) / 80) * rng.standard_normal(600)
    delayed = np.concatenate([0.05 * rng.standard_normal(150), [1.0], tail])
    np.save(d / "delayed.npy", delayed)
    np.save(d / "early.npy", np.concatenate([[1.0], tail]))
    np.save(d / "delta.npy", np.array([1.0, 0.0, 0.0]))
    return d


# ---------------------------------------------------------------------------------------------
# mixing and SNR


def test_mix_at_snr_exact_and_energy_kept():
    g = gen(1)
    x, n = torch.randn(4, 8000, generator=g), torch.randn(4, 8000, generator=g)
    n[3] = 0
    snr = torch.tensor([0.0, 5.0, -3.0, 10.0])
    y = mix_at_snr(x, n, snr).double().numpy()
    for b in range(3):  # y = g*x + g*K*n: recover (g, gK) by least squares
        (a, c), *_ = np.linalg.lstsq(torch.stack([x[b], n[b]], 1).double().numpy(), y[b], rcond=None)
        achieved = 10 * np.log10(energy(a * x[b].numpy()) / energy(c * n[b].numpy()))
        assert abs(achieved - snr[b].item()) < 0.01
    np.testing.assert_allclose(energy(y), energy(x.numpy()), rtol=1e-5)
    np.testing.assert_array_equal(y[3], x[3].numpy())  # silent noise: unchanged


@pytest.mark.parametrize("snr", [0.0, 5.0, 7.5])
def test_additive_noise_achieves_snr(tmp_path, snr):
    write_wav(tmp_path / "n" / "noise.wav",
              0.2 * np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32))
    d = build_distortions({"noises_p": 1.0, "noises_dir": str(tmp_path / "n"), "noises_snrs": [snr]})
    x = torch.from_numpy(np.tile(sine(440, SR), (4, 1, 1)))
    y, applied = d(x, gen(), return_applied=True)
    assert applied["noises"].all()
    out = y[:, 0].double().numpy()
    assert np.abs(sine_snr(out, 440) - snr).max() < 0.1
    np.testing.assert_allclose(energy(out), energy(x[:, 0]), rtol=1e-4)


@pytest.mark.parametrize("reverb", [False, True])
def test_overlap_achieves_snr(tmp_path, irs, reverb):
    write_wav(tmp_path / "ovl" / "talker.wav", sine(3000, 3 * SR, 0.5))
    (tmp_path / "ovl.lst").write_text("talker.wav\n")
    cfg = {"overlap_p": 1.0, "overlap_dir": str(tmp_path / "ovl"),
           "overlap_list": str(tmp_path / "ovl.lst"), "overlap_snrs": [5.0], "overlap_reverb": reverb,
           "reverb_data_root": str(irs), "reverb_fmt": "npy", "reverb_irfiles": ["delayed.npy"]}
    d = build_distortions(cfg)
    assert "reverb" not in d.ops and (d.ops["overlap"].reverb is not None) == reverb
    x = torch.from_numpy(np.tile(sine(440, SR), (6, 1, 1)))
    out = d(x, gen(2))[:, 0].double().numpy()
    assert np.abs(sine_snr(out, 440) - 5.0).max() < 0.1
    np.testing.assert_allclose(energy(out), energy(x[:, 0]), rtol=1e-4)
    # the interferer occupies the tail of the chunk: the last quarter always has it
    residual = out - x[:, 0].numpy() * np.sqrt(energy(out) / energy(x[:, 0]))[:, None]
    assert (np.abs(residual[:, -SR // 4:]).max(-1) > 0.01).all()


# ---------------------------------------------------------------------------------------------
# reverb


def reference_reverb(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The original's computation, in numpy (fact sheet section 7.3)."""
    h = h[:24000]
    if h.max() > 0:
        h = h / abs(h.max())
    p = int(np.argmax(np.abs(h)))
    full = np.convolve(x, h)
    out = np.concatenate([full[p:], np.zeros(p)])[: len(x)]
    er = energy(full)
    return out * (np.sqrt(energy(x) / er) if er > 0 else 1.0)


@pytest.mark.parametrize("ir", ["delayed", "early"])
def test_reverb_matches_original_computation(irs, ir):
    d = build_distortions({"reverb_p": 1.0, "reverb_data_root": str(irs), "reverb_fmt": "npy",
                           "reverb_irfiles": [f"{ir}.npy"]})
    x = torch.randn(3, 1, 4000, generator=gen(4))
    y = d(x, gen())[:, 0].double().numpy()
    h = np.load(irs / f"{ir}.npy")
    for b in range(3):
        np.testing.assert_allclose(y[b], reference_reverb(x[b, 0].double().numpy(), h), atol=2e-5)


def test_reverb_peak_aligned(irs):
    """No delay: the clean/reverberated cross-correlation peaks at lag 0, also for a peak at 0."""
    x = torch.randn(2, 1, 4000, generator=gen(5))
    for ir in ("delayed", "early"):
        d = build_distortions({"reverb_p": 1.0, "reverb_data_root": str(irs), "reverb_fmt": "npy",
                               "reverb_irfiles": [f"{ir}.npy"]})
        y = d(x, gen())[:, 0].double().numpy()
        for b in range(2):
            xc = np.correlate(y[b], x[b, 0].double().numpy(), mode="full")
            assert np.argmax(np.abs(xc)) - (x.shape[-1] - 1) == 0
    d = build_distortions({"reverb_p": 1.0, "reverb_data_root": str(irs), "reverb_fmt": "npy",
                           "reverb_irfiles": ["delta.npy"]})
    torch.testing.assert_close(d(x, gen()), x)


@pytest.mark.parametrize("fmt", ["txt", "imp", "mat"])
def test_reverb_bank_formats(irs, tmp_path, fmt):
    h = np.load(irs / "delayed.npy")
    if fmt == "mat":
        scipy_io = pytest.importorskip("scipy.io")
        scipy_io.savemat(tmp_path / "ir.mat", {"risp_imp": h})
    else:
        np.savetxt(tmp_path / f"ir.{fmt}", h)
    d = build_distortions({"reverb_p": 1.0, "reverb_data_root": str(tmp_path), "reverb_fmt": fmt})
    ref = build_distortions({"reverb_p": 1.0, "reverb_data_root": str(irs), "reverb_fmt": "npy",
                             "reverb_irfiles": ["delayed.npy"]})
    torch.testing.assert_close(d.ops["reverb"].irs.bank, ref.ops["reverb"].irs.bank)


def test_reverb_bank_from_wav_at_another_rate_is_resampled(tmp_path, caplog):
    ir = np.zeros(2000, dtype=np.float32)
    ir[100], ir[101:] = 1.0, 0.01
    write_wav(tmp_path / "ir8k.wav", ir, sr=8000)
    with caplog.at_level("INFO"):
        d = build_distortions({"reverb_p": 1.0, "reverb_data_root": str(tmp_path),
                               "reverb_fmt": "wav", "reverb_irfiles": []})
    assert "resampling 8000 Hz -> 16000 Hz" in caplog.text
    assert d.ops["reverb"].irs.bank.shape[1] == 4000
    assert d.ops["reverb"].irs.shift.tolist() == [200]


# ---------------------------------------------------------------------------------------------
# clipping, chop, filters


def test_clipping_signed_min_max_rule():
    d = build_distortions({"clip_p": 1.0, "clip_factors": [0.3]})
    x = torch.from_numpy(np.stack([sine(200, 4000) * 3 + 0.3, -np.abs(sine(300, 4000))]))[:, None]
    y = d(x, gen())
    lo, hi = 0.3 * x.amin(-1, keepdim=True), 0.3 * x.amax(-1, keepdim=True)
    torch.testing.assert_close(y, torch.maximum(torch.minimum(x, hi), lo))
    assert y[0].max() == pytest.approx(0.3 * x[0].max().item()) and y[0].min() == pytest.approx(
        0.3 * x[0].min().item())
    assert y[1].max() == pytest.approx(0.3 * x[1].max().item())  # signed: max < 0 here


def known_regions_signal() -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """0.3 s silence, 0.5 s voiced, 0.4 s silence, 0.5 s voiced, 0.3 s silence (low noise floor)."""
    rng = np.random.default_rng(0)
    parts, regions, t = [], [], 0
    for seconds, speech in [(0.3, False), (0.5, True), (0.4, False), (0.5, True), (0.3, False)]:
        n = int(seconds * SR)
        if speech:
            parts.append(sine(150, n) * (1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / SR)))
            regions.append((t, t + n))
        else:
            parts.append(1e-4 * rng.standard_normal(n).astype(np.float32))
        t += n
    return torch.from_numpy(np.concatenate(parts).astype(np.float32)), regions


def test_energy_vad_finds_known_regions():
    x, regions = known_regions_signal()
    speech = energy_vad(x[None], 160)[0]
    frames = torch.arange(len(speech)) * 160
    in_speech = torch.zeros(len(speech), dtype=torch.bool)
    near = torch.zeros(len(speech), dtype=torch.bool)
    for a, b in regions:
        in_speech |= (frames >= a) & (frames + 160 <= b)
        near |= (frames + 160 > a) & (frames < b + 3 * 160)  # + hangover
    assert speech[in_speech].all() and not speech[~near].any()
    begin, end, valid = speech_regions(speech[None])
    assert int(valid.sum()) == 2


def test_chop_zeroes_only_detected_speech_and_picks_regions_at_random():
    x, regions = known_regions_signal()
    d = build_distortions({"chop_p": 1.0, "chop_factors": [[0.1, 0.0]], "max_chops": 1})
    y = d(x.expand(32, 1, -1).contiguous(), gen(6))[:, 0]
    zeroed = (y == 0) & (x != 0)
    allowed = torch.zeros_like(x, dtype=torch.bool)
    for a, b in regions:
        allowed[a: b + 3 * 160] = True  # the region plus the VAD hangover
    assert not (zeroed & ~allowed).any()
    counts = zeroed.sum(-1)
    assert (counts == 1600).all()  # one chop of 0.1 s each
    first = zeroed[:, : regions[0][1] + 480].any(-1)
    assert first.any() and (~first).any()  # both regions get chopped (the original: first only)
    assert torch.equal(y[~zeroed], x.expand(32, -1)[~zeroed])


def test_chop_factor_durations_and_max_chops():
    x, _ = known_regions_signal()
    d = build_distortions({"chop_p": 1.0, "chop_factors": [[0.05, 0.0]], "max_chops": 5})
    y = d(x.expand(64, 1, -1).contiguous(), gen(7))[:, 0]
    counts = ((y == 0) & (x != 0)).sum(-1)
    # 1..5 chops drawn, at most 2 regions: 800 or 1600 zeroed samples
    assert set(((counts + 50) // 800).tolist()) == {1, 2}


def reference_fir(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The original's band-drop/downsample computation, in numpy."""
    full = np.convolve(x, h / abs(h.max()))
    s = round(len(h) / 2)
    out = np.concatenate([full[s:], np.zeros(s)])[: len(x)]
    return out * np.sqrt(energy(x) / energy(out))


def test_bandrop_from_filter_files(tmp_path):
    h = bandreject_fir(torch.tensor([1000.0]), torch.tensor([2000.0]), SR)[0].numpy()
    np.save(tmp_path / "filter_0_1000_2000.npy", h)
    d = build_distortions({"bandrop_p": 1.0, "bandrop_data_root": str(tmp_path),
                           "bandrop_irfiles": []})
    x = torch.randn(2, 1, 2 * SR, generator=gen(8))
    y = d(x, gen())[:, 0]
    np.testing.assert_allclose(y[0].double().numpy(), reference_fir(x[0, 0].double().numpy(), h),
                               atol=2e-5)
    drop = band_energy(y, 1100, 1900) / band_energy(x[:, 0], 1100, 1900)
    keep = band_energy(y, 2500, 8000) / band_energy(x[:, 0], 2500, 8000)
    assert (10 * torch.log10(drop / keep) < -20).all()
    np.testing.assert_allclose(energy(y), energy(x[:, 0]), rtol=1e-4)


def test_bandrop_designed_removes_a_random_band():
    d = build_distortions({"bandrop_p": 1.0, "bandrop_width_hz": [600, 900]})
    x = torch.randn(6, 1, 2 * SR, generator=gen(9))
    y = d(x, gen(1))[:, 0]
    edges = torch.arange(0, 8000, 50.0)
    ratio = torch.stack([band_energy(y, f, f + 50) / band_energy(x[:, 0], f, f + 50)
                         for f in edges], -1)
    removed = 10 * torch.log10(ratio) < -20
    widths = removed.sum(-1) * 50
    assert ((widths >= 600 - 250) & (widths <= 900)).all()
    lows = [edges[r].min().item() for r in removed]
    assert len(set(lows)) > 1  # random bands
    np.testing.assert_allclose(energy(y), energy(x[:, 0]), rtol=1e-4)


@pytest.mark.parametrize("from_file", [False, True])
def test_downsample_removes_above_4k5(tmp_path, from_file):
    cfg = {"downsample_p": 1.0}
    if from_file:
        np.save(tmp_path / "filter_16_to_8.npy", lowpass_fir(torch.tensor([4000.0]), SR)[0].numpy())
        cfg.update(downsample_data_root=str(tmp_path), downsample_irfiles=["filter_16_to_8.npy"])
    d = build_distortions(cfg)
    x = torch.randn(2, 1, 2 * SR, generator=gen(10))
    y = d(x, gen())[:, 0]
    high = band_energy(y, 4500, 8000) / band_energy(x[:, 0], 4500, 8000)
    low = band_energy(y, 0, 3800) / band_energy(x[:, 0], 0, 3800)
    assert (10 * torch.log10(high / low) < -40).all()
    np.testing.assert_allclose(energy(y), energy(x[:, 0]), rtol=1e-4)


def test_codec2_when_asked():
    pytest.importorskip("pycodec2")
    d = build_distortions({"codec2_p": 1.0, "codec2_kbps": 1600})
    x, _ = known_regions_signal()
    x = x[None, None, :SR].repeat(2, 1, 1)
    y = d(x, gen())
    assert y.shape == x.shape and not torch.allclose(y, x, atol=1e-2)
    np.testing.assert_allclose(energy(y[:, 0]), energy(x[:, 0]), rtol=1e-4)
    # narrow band: nothing above 4 kHz survives the 8 kHz codec
    assert (band_energy(y[:, 0], 4200, 8000) / band_energy(y[:, 0], 0, 4000) < 1e-3).all()


# ---------------------------------------------------------------------------------------------
# the full PASE+ configuration


def test_rates_match_probabilities(banks):
    d = build_distortions(banks / "distortions.cfg")
    cfg = json.loads((banks / "distortions.cfg").read_text())
    g, n, batches = gen(11), 120, 12
    counts = dict.fromkeys(DISTORTIONS, 0)
    x = torch.randn(n, 1, 1600, generator=gen(12)) * 0.1
    for _ in range(batches):
        y, applied = d(x, g, return_applied=True)
        assert y.shape == x.shape and torch.isfinite(y).all()
        for name, mask in applied.items():
            counts[name] += int(mask.sum())
    total = n * batches
    for name in DISTORTIONS:
        p = cfg.get(f"{name}_p", 0.0)
        tol = 4.5 * math.sqrt(p * (1 - p) / total) + 1e-9
        assert abs(counts[name] / total - p) <= tol, (name, counts[name] / total, p)


def test_deterministic_under_a_seed(banks):
    d = build_distortions(banks / "distortions.cfg")
    x = torch.randn(8, 1, 8000, generator=gen(13)) * 0.1
    y1, a1 = d(x, gen(5), return_applied=True)
    y2, a2 = d(x, gen(5), return_applied=True)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert all(torch.equal(a1[k], a2[k]) for k in DISTORTIONS)
    y3 = build_distortions(banks / "distortions.cfg")(x, gen(5))
    torch.testing.assert_close(y1, y3, rtol=0, atol=0)
    assert not torch.equal(y1, d(x, gen(6)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_same_result_on_cuda(banks):
    d = build_distortions(banks / "distortions.cfg")
    x = torch.randn(8, 1, 8000, generator=gen(14)) * 0.1
    y_cpu, a_cpu = d(x, gen(5), return_applied=True)
    y_gpu, a_gpu = d(x.cuda(), gen(5), return_applied=True)
    assert y_gpu.is_cuda and all(torch.equal(a_cpu[k], a_gpu[k]) for k in DISTORTIONS)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-3, atol=1e-4)


def test_demo_cfg_runs_on_the_simulated_banks(banks):
    d = build_distortions("cfg/distortions/demo.cfg", data_root=banks)
    assert set(d.probs) == set(DISTORTIONS) - {"codec2"}
    assert len(d.ops["reverb"].irs) == 6 and len(d.ops["bandrop"].bank) == 4
    x = torch.randn(4, 1, 3200, generator=gen(15))
    assert d(x.half(), gen()).dtype == torch.float16


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.fixture()
def noise_dir(tmp_path) -> Path:
    write_wav(tmp_path / "noises" / "n.wav", 0.1 * np.ones(SR, dtype=np.float32))
    return tmp_path / "noises"


@pytest.mark.parametrize("cfg, match", [
    ({"reverb_p": 0.5, "bogus_key": 1}, "bogus_key"),
    ({"speed_range": [0.9, 1.1]}, "speed_range.*SpeedChange"),
    ({"clip_p": 1.5, "clip_factors": [0.5]}, "clip_p"),
    ({"clip_p": 0.5}, "clip_factors"),
    ({"clip_p": 0.5, "clip_factors": []}, "clip_factors"),
    ({"noises_p": 0.4}, "noises_dir"),
    ({"noises_p": 0.4, "noises_dir": "/nonexistent/noises"}, "noises_dir.*not found"),
    ({"reverb_p": 0.5}, "reverb_data_root"),
    ({"overlap_p": 0.1, "overlap_dir": "/nonexistent"}, "overlap_dir"),
    ({"chop_p": 0.2, "chop_factors": [[0.05]]}, "chop_factors"),
    ({"chop_p": 0.2, "chop_factors": [[0.05, 0.01]], "max_chops": 0}, "max_chops"),
    ({"bandrop_p": 0.3, "bandrop_width_hz": [900, 400]}, "bandrop_width_hz"),
    ({"bandrop_p": 0.3, "bandrop_irfiles": ["f.npy"]}, "bandrop_irfiles"),
    ({"reverb_p": 0.5, "reverb_data_root": ".", "reverb_fmt": "flac"}, "reverb_fmt"),
])
def test_bad_config(cfg, match):
    with pytest.raises(ConfigError, match=match):
        build_distortions(cfg)


@pytest.mark.parametrize("snrs", [["5"], [], "10", [True], [float("nan")]])
def test_snr_lists_must_be_numbers(noise_dir, snrs):
    with pytest.raises(ConfigError, match="noises_snrs"):
        build_distortions({"noises_p": 0.4, "noises_dir": str(noise_dir), "noises_snrs": snrs})


def test_bad_bank_files(tmp_path, noise_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"noises_dir: no \*.wav files"):
        build_distortions({"noises_p": 0.4, "noises_dir": str(empty)})
    write_wav(tmp_path / "silent" / "quiet.wav", np.zeros(SR, dtype=np.float32))
    with pytest.raises(ConfigError, match="quiet.wav.*silent"):
        build_distortions({"noises_p": 0.4, "noises_dir": [str(noise_dir), str(tmp_path / "silent")]})
    with pytest.raises(ConfigError, match="reverb_irfiles.*missing.npy"):
        build_distortions({"reverb_p": 0.5, "reverb_data_root": str(tmp_path), "reverb_fmt": "npy",
                           "reverb_irfiles": ["missing.npy"]})
    with pytest.raises(ConfigError, match=r"reverb_irfiles: no \*.npy"):
        build_distortions({"reverb_p": 0.5, "reverb_data_root": str(empty), "reverb_fmt": "npy"})
    np.save(tmp_path / "zero.npy", np.zeros(10))
    with pytest.raises(ConfigError, match="zero.npy.*all taps are zero"):
        build_distortions({"reverb_p": 0.5, "reverb_data_root": str(tmp_path), "reverb_fmt": "npy",
                           "reverb_irfiles": ["zero.npy"]})
    (tmp_path / "empty.lst").write_text("\n")
    with pytest.raises(ConfigError, match="overlap_list.*lists no files"):
        build_distortions({"overlap_p": 0.1, "overlap_dir": str(noise_dir),
                           "overlap_list": str(tmp_path / "empty.lst")})
    # overlap_reverb needs an impulse-response bank even with reverb_p = 0
    with pytest.raises(ConfigError, match="reverb_data_root"):
        build_distortions({"overlap_p": 0.1, "overlap_dir": str(noise_dir), "overlap_reverb": True})


def test_noise_at_another_rate_is_resampled(tmp_path, caplog):
    write_wav(tmp_path / "n8k" / "n.wav", sine(1000, 8000), sr=8000)
    with caplog.at_level("INFO"):
        d = build_distortions({"noises_p": 1.0, "noises_dir": str(tmp_path / "n8k")})
    assert "resampling 8000 Hz -> 16000 Hz" in caplog.text
    assert d.ops["noises"].bank.lengths.tolist() == [SR]


def test_codec2_needs_pycodec2(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycodec2", None)
    with pytest.raises(ConfigError, match="codec2_p.*pycodec2"):
        build_distortions({"codec2_p": 0.3})
    build_distortions({"codec2_kbps": 1600})  # off unless asked: no pycodec2 needed


def test_forward_rejects_bad_input():
    d = build_distortions({"clip_p": 1.0, "clip_factors": [0.5]})
    with pytest.raises(ValueError, match=r"\(B, 1, L\)"):
        d(torch.zeros(2, 100), gen())
    with pytest.raises(ValueError, match=r"\(B, 1, L\)"):
        d(torch.zeros(2, 2, 100), gen())


def test_shipped_pase_plus_cfg_keys_and_probabilities():
    from pase.config import load_config
    cfg = load_config("cfg/distortions/pase+.cfg")
    probs = {k: v for k, v in cfg.items() if k.endswith("_p")}
    assert probs == {"reverb_p": 0.5, "overlap_p": 0.1, "noises_p": 0.4, "clip_p": 0.2,
                     "chop_p": 0.2, "bandrop_p": 0.35, "downsample_p": 0.25, "codec2_p": 0.0}
    with pytest.raises(ConfigError, match="directory not found"):  # keys valid, data absent
        build_distortions(cfg, data_root="/nonexistent")


# ---------------------------------------------------------------------------------------------
# tools


def test_make_distortion_banks_layout_and_determinism(banks, tmp_path):
    cfg = json.loads((banks / "distortions.cfg").read_text())
    assert cfg["codec2_p"] == 0 and Path(cfg["data_root"]) == banks.resolve()
    assert len(cfg["reverb_irfiles"]) == 6
    for room in ("smallroom", "mediumroom", "largeroom"):
        lines = (banks / "simulated_rirs_16k" / room / "rir_list").read_text().splitlines()
        assert len(lines) == 2 and all((banks / ln.split()[4]).is_file() for ln in lines)
    assert len(list((banks / "noises").glob("*.wav"))) == 6
    again = tmp_path / "again"
    make_distortion_banks.main([str(again), "--seed", "3", "--rooms_per_type", "1",
                                "--rirs_per_room", "2", "--num_noises", "6", "--noise_seconds",
                                "1.5", "--num_overlap", "3", "--overlap_seconds", "1.5",
                                "--num_bandrop_filters", "4"])
    files = sorted(p.relative_to(banks) for p in banks.rglob("*") if p.is_file()
                   and p.name != "distortions.cfg")
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file()
                           and p.name != "distortions.cfg")
    for rel in files:
        assert (banks / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_make_distortion_banks_from_speech_without_filters(tmp_path):
    rng = np.random.default_rng(1)
    scp = []
    for i in range(2):
        path = write_wav(tmp_path / "wav" / f"u{i}.wav", sine(200 + 100 * i, 3 * SR) *
                         (rng.random(3 * SR) > 0.5).astype(np.float32), sr=8000)
        scp.append(f"utt{i} {path}")
    (tmp_path / "wav.scp").write_text("\n".join(scp) + "\n")
    out = tmp_path / "banks"
    make_distortion_banks.main([str(out), "--rooms_per_type", "1", "--rirs_per_room", "1",
                                "--num_noises", "4", "--noise_seconds", "1", "--num_overlap", "2",
                                "--overlap_seconds", "1", "--speech_scp", str(tmp_path / "wav.scp"),
                                "--no_filters"])
    cfg = json.loads((out / "distortions.cfg").read_text())
    assert "bandrop_data_root" not in cfg and not (out / "filters").exists()
    d = build_distortions(out / "distortions.cfg")
    assert d.ops["bandrop"].bank is None and len(d.ops["overlap"].bank) == 2
    speech, _ = sf.read(out / "overlap" / "speech_000.wav")
    assert len(speech) == SR and np.abs(speech).max() > 0.1


def make_openslr_tree(root: Path, per_room: int = 4) -> Path:
    """An openSLR 28 style RIRS_NOISES/simulated_rirs tree (paths relative to root's parent)."""
    rng = np.random.default_rng(0)
    for room in ("smallroom", "mediumroom", "largeroom"):
        lines = []
        for i in range(1, per_room + 1):
            rel = f"RIRS_NOISES/simulated_rirs/{room}/Room001/Room001-{i:05d}.wav"
            h = np.zeros(800, dtype=np.float32)
            h[40 + i], h[41 + i:] = 1.0, 0.05 * rng.standard_normal(759 - i)
            write_wav(root / rel, h)
            lines.append(f"--rir-id {room}-Room001-{i:05d} --room-id {room}-Room001 {rel}")
        (root / "RIRS_NOISES/simulated_rirs" / room / "rir_list").write_text("\n".join(lines) + "\n")
    return root / "RIRS_NOISES"


def test_prepare_rirs_openslr_tree(tmp_path):
    tree = make_openslr_tree(tmp_path / "db")
    existing = tmp_path / "in.cfg"
    existing.write_text(json.dumps({"clip_p": 0.2, "clip_factors": [0.5], "reverb_fmt": "npy"}))
    out = tmp_path / "out.cfg"
    prepare_rirs.main(["--data_root", str(tree), "--existing_cfg", str(existing), "--out_cfg",
                       str(out), "--small_room_ratio", "0.5", "--large_room_ratio", "0",
                       "--seed", "2"])
    cfg = json.loads(out.read_text())
    assert cfg["clip_factors"] == [0.5] and cfg["reverb_fmt"] == "wav" and cfg["reverb_p"] == 0.5
    assert Path(cfg["reverb_data_root"]) == (tmp_path / "db").resolve()
    rooms = [f.split("/")[2] for f in cfg["reverb_irfiles"]]
    assert rooms.count("smallroom") == 2 and rooms.count("mediumroom") == 4 and "largeroom" not in rooms
    assert cfg["reverb_irfiles"] == sorted(cfg["reverb_irfiles"])
    d = build_distortions(out)
    assert len(d.ops["reverb"].irs) == 6
    # The seed's data/prep spelling of the output option.
    prepare_rirs.main(["--data_root", str(tree), "--out_file", str(tmp_path / "again.cfg"),
                       "--small_room_ratio", "0.5", "--large_room_ratio", "0", "--seed", "2"])
    assert json.loads((tmp_path / "again.cfg").read_text())["reverb_irfiles"] == cfg["reverb_irfiles"]


def test_prepare_rirs_on_simulated_banks(banks, tmp_path):
    out = tmp_path / "out.cfg"
    prepare_rirs.main(["--data_root", str(banks / "simulated_rirs_16k"), "--existing_cfg",
                       str(banks / "distortions.cfg"), "--out_cfg", str(out)])
    cfg = json.loads(out.read_text())
    ref = json.loads((banks / "distortions.cfg").read_text())
    assert cfg["reverb_irfiles"] == ref["reverb_irfiles"] and cfg["reverb_data_root"] == "."


def test_prepare_rirs_errors(tmp_path):
    tree = make_openslr_tree(tmp_path / "db", per_room=1)
    (tree / "simulated_rirs/largeroom/rir_list").unlink()
    with pytest.raises(ConfigError, match="largeroom/rir_list.*ratio to 0"):
        prepare_rirs.main(["--data_root", str(tree), "--out_cfg", str(tmp_path / "o.cfg")])
    with pytest.raises(ConfigError, match="ratio must be in"):
        prepare_rirs.main(["--data_root", str(tree), "--out_cfg", str(tmp_path / "o.cfg"),
                           "--small_room_ratio", "1.5", "--large_room_ratio", "0"])
    bad = tmp_path / "bad.cfg"
    bad.write_text(json.dumps({"reverb_pp": 0.5}))
    proc = subprocess.run([sys.executable, "-m", "pase.bin.prepare_rirs", "--data_root", str(tree),
                           "--existing_cfg", str(bad), "--out_cfg", str(tmp_path / "o.cfg"),
                           "--large_room_ratio", "0"], capture_output=True, text=True)
    assert proc.returncode == 1 and "reverb_pp" in proc.stderr and "Traceback" not in proc.stderr
