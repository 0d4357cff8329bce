#!/usr/bin/env bash
# PASE+ pretraining on LibriSpeech: the original PASE+ setup (see conf/train_pase+.yaml).
#   ./run.sh                       # all stages
#   ./run.sh --stage 4 --stop_stage 4 --ngpu 4      # training only, on 4 GPUs (torchrun)
#   ./run.sh --tag pase --fe_cfg conf/PASE.cfg --net_cfg conf/workers.cfg --train_config conf/train_pase.yaml
set -euo pipefail
./pase.sh \
    --tag pase+ \
    --train_set train_clean_100 \
    --dump_sets "train_clean_100 dev_clean" \
    --download_opts "--subsets 'train-clean-100 dev-clean'" \
    --local_data_opts "--subsets 'train-clean-100 dev-clean'" \
    --fe_cfg conf/PASE+.cfg \
    --net_cfg conf/workers+.cfg \
    --train_config conf/train_pase+.yaml \
    "$@"
