"""Chunked encoding (`WaveFe.forward_chunked`) equals one pass, also through padded batches,
pase-extract (features written piece by piece) and the probe's pooling; the QRNN continues
exactly from a carried state."""
import kaldiio
import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_FE, make_data_dir
from pase.bin.extract import main
from pase.dump import extract_job
from pase.extraction import ExtractOptions, FeatureExtractor, pad_waveforms
from pase.io import ArkScpWriter, DataDir, PaseInputError, iter_matrix_blocks, read_kaldi_map
from pase.models import wf_builder
from pase.models.qrnn import QRNN, linear_scan
from pase.models.featurizer import layer_names
from pase.probe.features import Condition, EncoderSpec, ItemAudio, encode_items
from pase.probe.split import Item

# "unfused": no fused path for the first two blocks (block 2 has stride 1), so the skips that drift
# for T mod 40 = 31-39 (the first two, via block 3's ceil-length output) run block by block; a
# dilation; two QRNN layers.
UNFUSED = {"kwidths": [251, 11, 10, 11, 5], "strides": [1, 1, 10, 2, 2], "dilations": [1, 2, 1, 1, 1],
           "fmaps": [8, 8, 16, 16, 32], "emb_dim": 16, "rnn_pool": True, "rnn_dim": 16, "rnn_layers": 2,
           "denseskips": True, "norm_out": True}
CONFIGS = {"PASE+": "cfg/frontend/PASE+.cfg", "PASE": "cfg/frontend/PASE.cfg", "tiny": TINY_FE,
           "unfused": UNFUSED}


def nontrivial(cfg, seed=0):
    """Random init with BatchNorm statistics from forward passes and PReLU slopes > 0, in eval mode."""
    torch.manual_seed(seed)
    model = wf_builder(cfg).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 1, 8000) * 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.0, 0.3)
    return model.eval()


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    return nontrivial(CONFIGS[request.param])


def pieces(model, monkeypatch):
    """Record the input length of every conv-stack pass."""
    seen, run = [], model._conv_features

    def spy(x, *args):
        seen.append(x.size(-1))
        return run(x, *args)
    monkeypatch.setattr(model, "_conv_features", spy)
    return seen


# 0.4 s pieces; lengths: several pieces, not multiples of the 160-sample hop (T mod 160 = 155 makes
# PASE+'s first skip pool groups of 159 samples), an exact multiple, one piece, a fraction of one.
@pytest.mark.parametrize("samples", [40_037, 32_155, 48_000, 6_400, 3_000])
def test_chunked_equals_one_pass(model, samples, monkeypatch):
    x = torch.randn(1, 1, samples, generator=torch.Generator().manual_seed(samples))
    with torch.no_grad():
        y, hidden = model.forward_hidden(x)
        seen = pieces(model, monkeypatch)
        yc, hidden_c = model.forward_chunked(x, chunk_seconds=0.4, return_hidden=True)
    if samples > 6_400:
        assert len(seen) >= 5 and max(seen) < 0.6 * 16000  # a piece plus its context
    assert yc.shape == y.shape and len(hidden_c) == len(hidden)
    torch.testing.assert_close(yc, y, atol=1e-5, rtol=0)
    for a, b in zip(hidden_c, hidden):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_padded_batch_with_long_rows(model):
    batch, lengths = pad_waveforms([torch.randn(n).numpy() for n in (20_155, 3_000, 16_001, 9_000)])
    with torch.no_grad():
        y, frames, hidden = model.forward_padded(batch, lengths, return_hidden=True)
        yc, frames_c, hidden_c = model.forward_padded(batch, lengths, return_hidden=True, max_chunk_seconds=0.3)
    assert torch.equal(frames, frames_c) and yc.shape == y.shape
    for i, n in enumerate(frames.tolist()):
        for a, b in zip([yc, *hidden_c], [y, *hidden]):
            torch.testing.assert_close(a[i, :, :n], b[i, :, :n], atol=1e-5, rtol=0)


def test_chunked_needs_eval_mode():
    model = wf_builder(TINY_FE).train()
    with pytest.raises(RuntimeError, match="eval mode"):
        model.forward_chunked(torch.randn(1, 1, 8000))


def test_qrnn_continues_from_state():
    torch.manual_seed(0)
    rnn = QRNN(6, 5, num_layers=2).double()
    x = torch.randn(30, 2, 6, dtype=torch.double)
    whole = rnn(x)
    first, state = rnn.forward_with_state(x[:11])
    second, _ = rnn.forward_with_state(x[11:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, atol=1e-12, rtol=0)


def test_linear_scan_gradient_with_initial_state():
    a, b, c0 = (torch.rand(7, 3, dtype=torch.double, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(linear_scan, (a, b, c0[0]))


@pytest.mark.parametrize("layers", ["final", "all"])
def test_extraction_in_pieces_equals_one_pass(tmp_path, layers):
    data = DataDir.load(make_data_dir(tmp_path, speakers=1, utts=3, seconds=(1.0, 2.5)))
    encoder = nontrivial(TINY_FE)
    feats = {}
    for name, limit in (("whole", 1e9), ("pieces", 0.25)):
        opts = ExtractOptions(max_chunk_seconds=limit, batch_size=2, progress=False)
        writer = extract_job(FeatureExtractor(encoder, opts, layers=layers), data, tmp_path / name, nj=1, job=1)
        feats[name] = [dict(kaldiio.load_scp(str(d / "feats.scp"))) for d in writer.layout.layer_dirs()]
        assert all(writer.frames == {u: len(m) for u, m in layer.items()} for layer in feats[name])
    assert len(feats["whole"]) == (1 if layers == "final" else len(layer_names(encoder)))
    for whole, pieces in zip(feats["whole"], feats["pieces"]):
        for utt, ref in whole.items():
            np.testing.assert_allclose(pieces[utt], ref, atol=1e-5, rtol=0)


def test_cli_option(tmp_path):
    data = make_data_dir(tmp_path, speakers=1, utts=2, seconds=(1.0, 1.5))
    cfg, ckpt = tmp_path / "fe.yaml", tmp_path / "FE_e0.ckpt"
    cfg.write_text(yaml.safe_dump(TINY_FE))
    torch.save(nontrivial(TINY_FE).state_dict(), ckpt)
    feats = []
    for limit in ("1e9", "0.2"):
        dump = tmp_path / f"dump{limit}"
        main([str(data), str(dump), "--fe_cfg", str(cfg), "--fe_ckpt", str(ckpt), "--no_progress",
              "--max_chunk_seconds", limit, "--out_data_dir", str(tmp_path / f"out{limit}")])
        feats.append(dict(kaldiio.load_scp(str(dump / "feats.scp"))))
    assert sorted(feats[0]) == sorted(feats[1])
    for utt, ref in feats[0].items():
        np.testing.assert_allclose(feats[1][utt], ref, atol=1e-5, rtol=0)


def test_ark_written_in_pieces_equals_whole(tmp_path):
    mat = np.random.default_rng(0).standard_normal((37, 5)).astype(np.float32)
    with ArkScpWriter(tmp_path / "whole.ark", tmp_path / "whole.scp") as w:
        w.write("a", mat[:3])
        w.write("b", mat)
    with ArkScpWriter(tmp_path / "pieces.ark", tmp_path / "pieces.scp") as w:
        w.write("a", mat[:3])
        with pytest.raises(PaseInputError, match="20 rows written, 37 announced"):
            w.write_pieces("b", 37, 5, [mat[:20]])
        w.write_pieces("b", 37, 5, [mat[:20], mat[20:].T.copy().T])  # any memory layout
    assert (tmp_path / "pieces.ark").read_bytes() == (tmp_path / "whole.ark").read_bytes()
    offsets = [[line.rsplit(":", 1)[1] for line in (tmp_path / f"{n}.scp").read_text().splitlines()]
               for n in ("pieces", "whole")]
    assert offsets[0] == offsets[1]
    spec = read_kaldi_map(tmp_path / "pieces.scp")["b"]
    blocks = list(iter_matrix_blocks(spec, rows=10))
    assert [len(b) for b in blocks] == [10, 10, 10, 7]
    np.testing.assert_array_equal(np.concatenate(blocks), mat)


def test_probe_pools_long_items_in_pieces(tmp_path):
    data = DataDir.load(make_data_dir(tmp_path, speakers=2, utts=2, seconds=(0.8, 2.0)))
    encoder = nontrivial(TINY_FE)
    audio = ItemAudio(data, min_samples=encoder.min_samples)
    items = [Item(item_id=u.utt_id, utt=u.utt_id, label="x") for u in data.utterances]
    whole = encode_items(EncoderSpec(), encoder, audio, items, Condition(), max_chunk_seconds=1e9)
    pieces = encode_items(EncoderSpec(), encoder, audio, items, Condition(), max_chunk_seconds=0.3)
    assert len(pieces) == len(layer_names(encoder))
    for a, b in zip(pieces, whole):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
