#!/usr/bin/env bash
# TIMIT (LDC93S1 layout: TRAIN|TEST/DR*/<speaker>/<utt>.WAV in NIST SPHERE, .PHN phone labels)
# -> data/train (3696 SI+SX utterances), data/dev (50 speakers), data/test (24 core speakers),
# with 48-phone transcripts. The speaker lists and the 60-48-39 phone map are in conf/.
# --allow_missing_speakers true: a corpus holding only some of the listed dev/test speakers
# (such as the synthetic demo corpus) gets those that are there instead of an error.
# --wav_format pipe: wav.scp entries `sph2pipe -f wav X |`, which Kaldi's own tools need (default
# path: the SPHERE files).
set -euo pipefail
allow_missing_speakers=false
wav_format=path
help_message="Usage: local/data.sh [--allow_missing_speakers false] [--wav_format path|pipe]"
. utils/parse_options.sh
. ./path.sh
. ./db.sh
if [ ! -d "${TIMIT}" ]; then
    echo "local/data.sh: TIMIT not found at '${TIMIT}'; set TIMIT in db.sh or the environment" >&2
    echo "local/data.sh: (stage 0 makes the synthetic one at the default location: ./run.sh --stage 0 --stop_stage 0)" >&2
    exit 1
fi
opts=""; [ "${allow_missing_speakers}" = true ] && opts="--allow-missing-speakers"
# shellcheck disable=SC2086
pase-prep-timit "${TIMIT}" data --dev-spk conf/dev_spk.list --test-spk conf/test_spk.list \
    --phone-map conf/phones.60-48-39.map --wav-format "${wav_format}" ${opts}
