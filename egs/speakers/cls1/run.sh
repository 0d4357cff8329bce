#!/usr/bin/env bash
# Speaker identification of the synthetic corpus's espeak voices (8 speakers, 12 utterances each:
# 3 test, 2 dev, 7 train) on frozen PASE+ features; the default classifier (conf/cls.yaml) is a
# logistic regression on mean+std pooled features.
#   ./run.sh                                  # PASE+ features of the egs/demo encoder (run egs/demo/run.sh first)
#   ./run.sh --fe_ckpt /models/FE_e199.ckpt # the released PASE+ encoder
#   ./run.sh --feats_type mfcc                 # baselines: mfcc or fbank (conf/<feats_type>.yaml)
#   ./run.sh --cls_config conf/cls_frame.yaml # the original's frame MLP
#   ./run.sh --cls_config conf/cls_stats.yaml # an MLP on mean+std pooled features
#   ./run.sh --finetune true --cls_config conf/cls_finetune.yaml  # fine-tune the encoder with the classifier
set -euo pipefail
. ./db.sh    # PASE_ROOT: the default encoder is egs/librispeech/pase1's demo run
lists=data/local/train_clean_5_lists
./cls.sh \
    --data_set train_clean_5 \
    --download_opts "--subsets train-clean-5" \
    --local_data_opts "--subset train-clean-5 --num_test 3 --num_dev 2" \
    --train_list ${lists}/train --dev_list ${lists}/dev --test_list ${lists}/test \
    --feats_type pase \
    --fe_cfg conf/PASE+.cfg \
    --fe_ckpt "${PASE_ROOT}/egs/librispeech/pase1/exp/demo" \
    --cls_config conf/cls.yaml \
    "$@"
