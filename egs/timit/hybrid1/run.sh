#!/usr/bin/env bash
# TIMIT phone recognition: GMM-HMM alignments, an MLP on frozen PASE+ features, Kaldi decoding.
#   ./run.sh --fe_ckpt FE_e199.ckpt                # the original experiment (PER 17.2% reported)
#   ./run.sh --feats_type mfcc                     # the MFCC baseline, same MLP
#   ./run.sh --stage 6 --fe_ckpt FE_e199.ckpt      # re-score only
set -euo pipefail
./hybrid.sh --feats_type pase --fe_cfg conf/PASE+.cfg "$@"
