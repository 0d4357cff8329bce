#!/usr/bin/env bash
# End-to-end demo on the embedded default data: a synthetic espeak-ng corpus in the real
# LibriSpeech layout, run through the real egs/librispeech/pase1 recipe with a small config
# (full PASE+ encoder, workers and distortions on simulated room impulse responses and noises, a
# few short epochs): data dirs, held-out-speaker split, statistics, pretraining, ark/scp
# features, learning curves. Then a synthetic corpus in the TIMIT layout through the real
# egs/timit/hybrid1 recipe: GMM-HMM alignments, an MLP on the demo encoder's PASE+ features,
# Kaldi decoding, 39-phone PER. About 10 minutes on 2 CPU cores.
#   egs/demo/run.sh [--stage N] [--stop_stage M] [--jobs J]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "${here}/../.." && pwd)
work=${here}/work
stage=1
stop_stage=3
jobs=2
help_message="Usage: egs/demo/run.sh [--stage 1] [--stop_stage 3] [--jobs 2]"
cd "${here}"
. "${root}/utils/parse_options.sh"
bash "${root}/tools/install.sh"
. "${root}/egs/librispeech/pase1/path.sh"
. "${root}/utils/lib/recipe.sh"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "stage 1: synthetic LibriSpeech-layout corpus -> ${work}/corpora/librispeech"
    pase-make-synthetic-corpus librispeech "${work}/corpora/librispeech" --jobs "${jobs}"
    log "stage 1: synthetic TIMIT-layout corpus -> ${work}/corpora/timit"
    pase-make-synthetic-corpus timit "${work}/corpora/timit" --jobs "${jobs}"
    if [ ! -f "${work}/distortion_banks/distortions.cfg" ]; then
        log "stage 1: simulated room impulse responses, noises and filters -> ${work}/distortion_banks"
        # distortions.cfg is written last: its presence means the banks are complete.
        pase-make-distortion-banks "${work}/distortion_banks" --seed 0
    fi
fi

recipe=${root}/egs/librispeech/pase1
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "stage 2: egs/librispeech/pase1 (PASE+, demo config)"
    (cd "${recipe}" && LIBRISPEECH="${work}/corpora/librispeech/LibriSpeech" ./run.sh \
        --tag demo --train_set train_clean_5 --dump_sets "train_clean_5 dev_clean_2" \
        --download_opts "--subsets 'train-clean-5 dev-clean-2'" \
        --local_data_opts "--subsets 'train-clean-5 dev-clean-2'" \
        --train_config conf/train_demo.yaml --stats_batches 4 --nj 2 \
        --probe_set dev_clean_2 --probe_args "--chop 2 --few 5 --test_per_class 5 --test_snr clean 5" \
        --dtrans_cfg "${work}/distortion_banks/distortions.cfg")
fi

timit=${root}/egs/timit/hybrid1
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    ckpt=$(latest_checkpoint "${recipe}/exp/demo")
    [ -n "${ckpt}" ] || die "no ${recipe}/exp/demo/FE_e*.ckpt: run stage 2 first"
    log "stage 3: egs/timit/hybrid1 (GMM alignments, MLP on the demo's PASE+ features ${ckpt})"
    (cd "${timit}" && TIMIT="${work}/corpora/timit/TIMIT" ./run.sh --fe_ckpt "${ckpt}" \
        --local_data_opts "--allow_missing_speakers true" \
        --mono_config conf/mono_demo.yaml --tri_config conf/tri_demo.yaml --mlp_config conf/mlp_demo.yaml \
        --nj 2)
fi

cat <<EOT

Demo finished. Pretraining outputs (under ${recipe}):
  data dirs:    data/train_clean_5, data/dev_clean_2, data/pase_train, data/pase_valid
  checkpoints:  exp/demo/FE_e*.ckpt (encoder, the original's format), exp/demo/state.pt (resume)
  features:     dump/demo/<set>/feats.{ark,scp}, data/<set>_demo/{feats.scp,cmvn.scp,utt2num_frames}
  curves:       exp/demo/learning_curves.png, exp/demo/RESULTS.md, exp/demo/tensorboard/
  probe:        exp/demo/probe/*.json (speaker probe: pretrained vs random init vs MFCC, in RESULTS.md)
  logs:         exp/demo/log/
TIMIT hybrid outputs (under ${timit}):
  GMM systems:  exp/mono, exp/tri (final.npz, ali.ark, graph/HCLG.fst, decode_*)
  hybrid MLP:   exp/mlp_pase (final.pt, log_priors.npy), exp/mlp_pase/decode_*/loglikes.ark
  PER:          RESULTS.md
EOT
