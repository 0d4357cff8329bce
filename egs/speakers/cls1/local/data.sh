#!/usr/bin/env bash
# Speaker identification on a LibriSpeech-layout corpus (by default the synthetic espeak-ng one:
# every speaker is one espeak voice) -> data/<subset with _ for ->, e.g. data/train_clean_5, with
# utt2label = the speaker. A closed-set task, so every speaker is in every set: per speaker, the
# first num_test utterances (in id order) are listed for test, the next num_dev for dev, the rest
# for training, in data/local/<name>_lists/{train,dev,test}.
set -euo pipefail
subset=train-clean-5
num_test=3
num_dev=2
help_message="Usage: local/data.sh [--subset train-clean-5] [--num_test 3] [--num_dev 2]"
. utils/parse_options.sh
. ./path.sh
. ./db.sh
if [ ! -d "${LIBRISPEECH}/${subset}" ]; then
    echo "local/data.sh: ${subset} not found in '${LIBRISPEECH}': run stage 0 (./run.sh --stage 0 --stop_stage 0)," \
        "or set LIBRISPEECH in db.sh or the environment" >&2
    exit 1
fi
name=${subset//-/_}
pase-prep-librispeech "${LIBRISPEECH}" data "${subset}"
cp "data/${name}/utt2spk" "data/${name}/utt2label"
lists=data/local/${name}_lists
mkdir -p "${lists}"
awk -v t="${num_test}" -v d="${num_dev}" -v dir="${lists}" '
    { i = n[$2]++; print $1 > (dir "/" (i < t ? "test" : i < t + d ? "dev" : "train")) }' "data/${name}/utt2spk"
for s in train dev test; do
    [ -s "${lists}/${s}" ] || { echo "local/data.sh: no ${s} utterances (too few per speaker?)" >&2; exit 1; }
done
echo "local/data.sh: data/${name}: $(wc -l < "data/${name}/utt2label") utterances of" \
    "$(cut -d' ' -f2 "data/${name}/utt2label" | sort -u | wc -l) speakers; lists in ${lists}" >&2
