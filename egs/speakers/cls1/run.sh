#!/usr/bin/env bash
# Speaker identification on frozen PASE+ features: db.sh's TRAIN_SUBSET split per speaker into
# 3 test, 2 dev and the rest train utterances (the synthetic corpus: 8 espeak voices, 12 each); the default classifier (conf/cls.yaml) is a
# logistic regression on mean+std pooled features.
#   ./run.sh                                  # PASE+ features of the egs/demo encoder (run egs/demo/run.sh first)
#   ./run.sh --fe_ckpt /models/FE_e199.ckpt # the released PASE+ encoder
#   ./run.sh --feats_type mfcc                 # baselines: mfcc or fbank (conf/<feats_type>.yaml)
#   ./run.sh --cls_config conf/cls_frame.yaml # the original's frame MLP
#   ./run.sh --cls_config conf/cls_stats.yaml # an MLP on mean+std pooled features
#   ./run.sh --finetune true --cls_config conf/cls_finetune.yaml  # fine-tune the encoder with the classifier
#   ./run.sh --freeze_encoder true --cls_config conf/cls_weighted.yaml  # frozen encoder, layer weights learnt
set -euo pipefail
. ./db.sh    # PASE_ROOT (the default encoder is egs/librispeech/pase1's demo run), TRAIN_SUBSET
set_name=${TRAIN_SUBSET//-/_}
lists=data/local/${set_name}_lists
./cls.sh \
    --data_set "${set_name}" \
    --download_opts "--subsets ${TRAIN_SUBSET}" \
    --local_data_opts "--subset ${TRAIN_SUBSET} --num_test 3 --num_dev 2" \
    --train_list ${lists}/train --dev_list ${lists}/dev --test_list ${lists}/test \
    --feats_type pase \
    --fe_cfg conf/PASE+.cfg \
    --fe_ckpt "${PASE_ROOT}/egs/librispeech/pase1/exp/demo" \
    --cls_config conf/cls.yaml \
    "$@"
