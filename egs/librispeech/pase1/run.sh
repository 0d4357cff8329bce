#!/usr/bin/env bash
# PASE+ pretraining on LibriSpeech: the original PASE+ setup (see conf/train_pase+.yaml).
#   ./run.sh                       # all stages
#   ./run.sh --stage 4 --stop_stage 4 --ngpu 4      # training only, on 4 GPUs (torchrun)
#   ./run.sh --tag pase --fe_cfg conf/PASE.cfg --net_cfg conf/workers.cfg --train_config conf/train_pase.yaml
# The subsets (db.sh): train-clean-100 and dev-clean, or train-clean-5 and dev-clean-2 of the
# synthetic corpus at db.sh's default; local/*.sh prepare the same by default.
set -euo pipefail
. ./db.sh
train_set=${TRAIN_SUBSET//-/_}
./pase.sh \
    --tag pase+ \
    --train_set "${train_set}" \
    --dump_sets "${train_set} ${DEV_SUBSET//-/_}" \
    --fe_cfg conf/PASE+.cfg \
    --net_cfg conf/workers+.cfg \
    --train_config conf/train_pase+.yaml \
    "$@"
