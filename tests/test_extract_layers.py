"""pase-extract --layers: forward_hidden layers dumped each on its own (dump dir, data dir, CMVN),
the default (final) unchanged."""
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_FE, make_data_dir
from pase.bin.extract import main
from pase.config import ConfigError
from pase.errors import PaseError
from pase.io import DataDir, compute_cmvn_stats, read_audio, read_kaldi_map
from pase.models import wf_builder
from pase.models.featurizer import layer_names

NAMES = ["skip1", "skip2", "skip3", "skip4", "skip5", "skip6", "skip7", "rnn", "final"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    data = make_data_dir(root, speakers=2, utts=2, seconds=(0.5, 1.2))
    torch.manual_seed(0)
    cfg = dict(TINY_FE, rnn_dim=24)  # the rnn layer's width differs from the others'
    model = wf_builder(cfg).train()
    with torch.no_grad():
        model(torch.randn(2, 1, 8000) * 0.1)
    cfg_path, ckpt = root / "fe.yaml", root / "FE_e0.ckpt"
    cfg_path.write_text(yaml.safe_dump(cfg))
    torch.save(model.state_dict(), ckpt)
    return data, ["--fe_cfg", str(cfg_path), "--fe_ckpt", str(ckpt), "--no_progress"], model.eval()


def extract(data, root: Path, opts, *extra):
    main([str(data), str(root / "dump"), "--out_data_dir", str(root / "test_pase"), *opts, *extra])


def load(scp):
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(scp)).items()}


def test_all_layers_equal_forward_hidden_with_their_own_cmvn(setup, tmp_path):
    data, opts, model = setup
    assert layer_names(model) == NAMES
    extract(data, tmp_path, opts, "--layers", "all", "--nj", "2", "--job", "1")
    extract(data, tmp_path, opts, "--layers", "all", "--nj", "2", "--job", "2")
    extract(data, tmp_path, opts, "--nj", "2", "--merge")  # the layers come from the jobs
    assert sorted(p.name for p in (tmp_path / "dump").iterdir() if p.is_dir()) == sorted(NAMES)
    assert not (tmp_path / "test_pase").exists() and not (tmp_path / "dump/feats.scp").exists()
    utts = DataDir.load(data).utterances
    hidden = {}
    for utt in utts:
        with torch.no_grad():
            _, layers = model.forward_hidden(torch.from_numpy(read_audio(utt.source)).view(1, 1, -1))
        hidden[utt.utt_id] = [h[0].T.numpy() for h in layers]
    spk2utt = {s: u.split() for s, u in read_kaldi_map(data / "spk2utt").items()}
    for i, name in enumerate(NAMES):
        out = tmp_path / f"test_pase_{name}"
        feats = load(out / "feats.scp")
        assert feats.keys() == load(tmp_path / "dump" / name / "feats.scp").keys() == hidden.keys()
        for utt, mats in hidden.items():
            np.testing.assert_allclose(feats[utt], mats[i], atol=1e-5, rtol=1e-5)
        assert feats[utts[0].utt_id].shape[1] == (24 if name == "rnn" else 32)
        assert read_kaldi_map(out / "utt2num_frames") == {u: str(len(m)) for u, m in feats.items()}
        cmvn = load(out / "cmvn.scp")
        for spk, members in spk2utt.items():
            np.testing.assert_allclose(cmvn[spk], compute_cmvn_stats(feats[u] for u in members), rtol=1e-12)
        assert read_kaldi_map(out / "utt2spk") == read_kaldi_map(data / "utt2spk")


def test_chosen_layers_and_the_default(setup, tmp_path):
    data, opts, model = setup
    extract(data, tmp_path / "some", opts, "--layers", "1,3")
    assert sorted(p.name for p in (tmp_path / "some").iterdir()) == ["dump", "test_pase_skip2", "test_pase_skip4"]
    assert sorted(p.name for p in (tmp_path / "some/dump").iterdir() if p.is_dir()) == ["skip2", "skip4"]
    extract(data, tmp_path / "named", opts, "--layers", "skip4,-1")
    skip4 = load(tmp_path / "named/test_pase_skip4/feats.scp")
    for utt, mat in load(tmp_path / "some/test_pase_skip4/feats.scp").items():
        np.testing.assert_array_equal(skip4[utt], mat)
    # The default: the final output alone, in the dump dir itself and <out_data_dir> (as before --layers).
    extract(data, tmp_path / "default", opts)
    assert sorted(p.name for p in (tmp_path / "default/dump").iterdir() if p.is_dir()) == []
    default = load(tmp_path / "default/test_pase/feats.scp")
    for utt in DataDir.load(data).utterances:
        with torch.no_grad():
            ref = model(torch.from_numpy(read_audio(utt.source)).view(1, 1, -1))[0].T.numpy()
        np.testing.assert_allclose(default[utt.utt_id], ref, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(default[utt.utt_id], load(tmp_path / "named/test_pase_final/feats.scp")[utt.utt_id],
                                   atol=1e-5, rtol=1e-5)
    extract(data, tmp_path / "by_index", opts, "--layers", "8")  # the final layer by index: the same dump
    for name in ("feats.scp", "cmvn.scp"):
        a = (tmp_path / "default/dump" / name).read_text()
        assert (tmp_path / "by_index/dump" / name).read_text() == a.replace("/default/", "/by_index/")
    assert (tmp_path / "by_index/dump/feats.ark").read_bytes() == (tmp_path / "default/dump/feats.ark").read_bytes()


def test_a_bad_layer_is_one_clear_error(setup, tmp_path):
    data, opts, _ = setup
    with pytest.raises(ConfigError, match=r"^--layers: '9' is not a layer of this encoder: indices 0\.\.8 or names "
                                          r"skip1, .*, rnn, final \(or 'final', 'all'\)$"):
        extract(data, tmp_path, opts, "--layers", "1,9")
    for tok in ("--5", "²", "1.5"):  # no ValueError from int() on what isdigit() lets through
        with pytest.raises(ConfigError, match=f"^--layers: '{tok}' is not a layer"):
            extract(data, tmp_path, opts, f"--layers={tok}")
    with pytest.raises(PaseError, match="mfcc/fbank have one output; --layers is for --feats_type pase"):
        extract(data, tmp_path, ["--no_progress"], "--feats_type", "mfcc", "--layers", "all")
    assert not list((tmp_path / "dump").glob("**/feats*"))
