#!/usr/bin/env bash
# LibriSpeech (<subset>/<spk>/<chapter>/*.flac + *.trans.txt, as distributed by openSLR)
# -> data/<subset with _ for ->, e.g. data/train_clean_100. Optionally also data/<subset>_seg:
# speech segments found by the original's energy-based segmentation. --wav_format pipe: wav.scp
# entries `flac -c -d -s X |`, which Kaldi's own tools need (default path: the FLAC files).
set -euo pipefail
. ./db.sh
subsets="${TRAIN_SUBSET} ${DEV_SUBSET}"    # db.sh: the subsets of its corpus
segment=false
wav_format=path
help_message="Usage: local/data.sh [--subsets '${subsets}'] [--segment true|false] [--wav_format path|pipe]"
. utils/parse_options.sh
. ./path.sh
if [ ! -d "${LIBRISPEECH}" ]; then
    echo "local/data.sh: LibriSpeech not found at '${LIBRISPEECH}'; set LIBRISPEECH in db.sh or the environment" >&2
    echo "local/data.sh: (stage 0 gets it: ./run.sh --stage 0 --stop_stage 0)" >&2
    exit 1
fi
seg_opt=""; [ "${segment}" = true ] && seg_opt="--segment"
# shellcheck disable=SC2086
pase-prep-librispeech "${LIBRISPEECH}" data ${subsets} ${seg_opt} --wav_format "${wav_format}"
