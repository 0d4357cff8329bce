#!/usr/bin/env bash
# TIMIT phone recognition: GMM-HMM alignments, an MLP on frozen PASE+ features, Kaldi decoding.
#   ./run.sh --pase_ckpt FE_e199.ckpt              # the original experiment (PER 17.2% reported)
#   ./run.sh --feats mfcc                          # the MFCC baseline, same MLP
#   ./run.sh --stage 6 --pase_ckpt FE_e199.ckpt    # re-score only
set -euo pipefail
./hybrid.sh --feats pase --pase_cfg conf/PASE+.cfg "$@"
