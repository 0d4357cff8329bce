"""Workers: structure against the original's facts, context stacking, config parsing."""
import pytest
import torch

from pase.config import ConfigError, load_config
from pase.models.workers import (DecoderWorker, GIMWorker, LIMWorker, MLPWorker, SPCWorker,
                                 build_workers, stack_context, target_specs)
from pase.targets import TargetBank


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def plus_dims():
    return TargetBank(target_specs(load_config("cfg/workers/workers+.cfg"))).dims


def test_parameter_counts_match_original():
    assert n_params(DecoderWorker("cchunk", 256)) == 8_857_537
    assert n_params(MLPWorker("lps", 256, 3075, r=7)) == 65_792 + 256 + 256 * 21525 + 21525
    assert n_params(LIMWorker("mi", 256)) == 512 * 256 + 256 + 256 + 257


def test_decoder_upsamples_by_160():
    dec = DecoderWorker("cchunk", 16, fmaps=(8, 8, 8))
    assert dec(torch.randn(2, 16, 200)).shape == (2, 1, 32000)


def test_stack_context_layout_matches_loop():
    t = torch.randn(2, 3, 10)
    r = 7
    got = stack_context(t, r)
    padded = torch.nn.functional.pad(t, (3, 3))
    for f in range(3):
        for k in range(r):
            # channel f*r + k is feature f at frame t - 3 + k (zero outside)
            assert torch.equal(got[:, f * r + k], padded[:, f, k:k + 10])


def test_mlp_worker_loss_uses_stacked_target():
    w = MLPWorker("fbank", 8, 4, hidden_size=16, r=3)
    h, target = torch.randn(2, 8, 20), torch.randn(2, 4, 20)
    pred = w(h)
    assert pred.shape == (2, 12, 20)
    assert torch.allclose(w.loss(pred, target), ((pred - stack_context(target, 3)) ** 2).mean())


def test_lim_gim_spc_pairs_and_labels():
    b, c, n = 3, 8, 40
    chunk, ctxt, rand = (torch.randn(b, c, n) for _ in range(3))
    lim = LIMWorker("mi", c, hidden_size=16)
    assert lim(chunk, ctxt, rand).shape == (2 * b, 1, n)
    pairs = lim.pairs(chunk, ctxt, rand)
    assert torch.equal(pairs[:b], torch.cat([chunk, ctxt], 1)) and torch.equal(pairs[b:], torch.cat([chunk, rand], 1))
    gim = GIMWorker("cmi", c, hidden_size=16, augment=True)
    logits = gim(chunk, ctxt, rand)
    assert logits.shape == (4 * b, 1, 1)
    assert torch.equal(gim.pairs(chunk, ctxt, rand)[b:2 * b, :, 0], torch.cat([ctxt, chunk], 1).mean(-1))
    # BCE with ones for the first half, zeros for the second
    manual = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.cat([torch.ones(2 * b, 1, 1), torch.zeros(2 * b, 1, 1)]))
    assert torch.allclose(gim.loss(logits), manual)
    spc = SPCWorker("spc", c, hidden_size=16)
    assert spc(torch.randn(b, c, 60), torch.Generator().manual_seed(0)).shape == (2 * b, 1, 1)
    with pytest.raises(ValueError, match="spc worker needs"):
        spc(torch.randn(b, c, 43))


def test_shipped_worker_configs(plus_dims):
    regr, cls = build_workers("cfg/workers/workers+.cfg", 256, plus_dims)
    assert [w.name for w in regr] == ["cchunk", "lps", "lps_long", "fbank", "fbank_long", "gtn",
                                      "gtn_long", "mfcc", "mfcc_long", "prosody"]
    assert [w.name for w in cls] == ["mi", "cmi"] and cls[1].augment and not cls[0].augment
    assert {w.name: w.W.out_channels for w in regr[1:]} == {
        "lps": 21525, "lps_long": 21525, "fbank": 840, "fbank_long": 840, "gtn": 840,
        "gtn_long": 840, "mfcc": 273, "mfcc_long": 420, "prosody": 84}
    v1_cfg = load_config("cfg/workers/workers.cfg")
    v1_dims = TargetBank(target_specs(v1_cfg)).dims
    assert v1_dims == {"lps": 1025, "mfcc": 20, "prosody": 4}
    regr, cls = build_workers(v1_cfg, 100, v1_dims)
    assert [w.name for w in cls] == ["spc", "mi", "cmi"]


def test_bad_worker_configs(plus_dims):
    with pytest.raises(ConfigError, match=r"regr\[0\]: unknown worker 'lpz'"):
        build_workers({"regr": [{"name": "lpz"}]}, 256, plus_dims)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['hiden_size'\]"):
        build_workers({"regr": [{"name": "lps", "hiden_size": 3}]}, 256, plus_dims)
    with pytest.raises(ConfigError, match="num_outputs=1025 but the target has 3075"):
        build_workers({"regr": [{"name": "lps", "num_outputs": 1025}]}, 256, plus_dims)
    with pytest.raises(ConfigError, match=r"cls\[0\]: unknown worker 'gap'"):
        build_workers({"cls": [{"name": "gap"}]}, 256, plus_dims)
    with pytest.raises(ConfigError, match="unknown section"):
        build_workers({"regression": []}, 256, plus_dims)
    with pytest.raises(ConfigError, match="duplicate"):
        build_workers({"cls": [{"name": "mi"}, {"name": "mi"}]}, 256, plus_dims)


def test_bilinear_head_learns_pair_identity_where_the_concat_mlp_stays_at_chance():
    # Pairs of (B, 32, 10) "embeddings": positives share a per-item code, negatives do not.
    g = torch.Generator().manual_seed(0)

    def batch():
        z = torch.randn(16, 32, 1, generator=g)
        noise = lambda: 0.5 * torch.randn(16, 32, 10, generator=g)  # noqa: E731
        return z + noise(), z + noise(), torch.randn(16, 32, 1, generator=g) + noise()

    losses = {}
    for head in ("mlp", "bilinear"):
        torch.manual_seed(0)
        gim = GIMWorker("cmi", 32, hidden_size=64, augment=True, head=head)
        opt = torch.optim.Adam(gim.parameters(), lr=5e-4)
        for _ in range(60):
            loss = gim.loss(gim(*batch()))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            losses[head] = float(gim.loss(gim(*batch())))
    assert losses["bilinear"] < 0.45 < 0.6 < losses["mlp"], losses
    with pytest.raises(ConfigError, match="unknown head"):
        GIMWorker("cmi", 32, head="cosine")
