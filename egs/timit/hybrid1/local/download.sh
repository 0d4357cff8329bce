#!/usr/bin/env bash
# Stage 0: TIMIT in ${TIMIT} (db.sh). At db.sh's default, the synthetic TIMIT-layout corpus of
# egs/demo, it is synthesised with egs/demo's parameters. TIMIT itself (LDC93S1) is licensed,
# so it cannot be downloaded: a real copy is checked (TRAIN/, TEST/, every speaker of
# conf/{dev,test}_spk.list) and what it lacks is named.
set -euo pipefail
allow_missing_speakers=false     # true: a copy holding only some listed dev/test speakers passes
help_message="Usage: local/download.sh [--allow_missing_speakers false]"
. utils/parse_options.sh
. ./path.sh
. ./db.sh
if [ "${TIMIT}" = "${SYNTHETIC_TIMIT}/TIMIT" ]; then
    exec pase-make-synthetic-corpus timit "${SYNTHETIC_TIMIT}" --jobs "$(nproc)"
fi
opts=""; [ "${allow_missing_speakers}" = true ] && opts="--allow_missing_speakers"
# shellcheck disable=SC2086
if ! pase-prep-timit "${TIMIT}" --check --dev_spk conf/dev_spk.list --test_spk conf/test_spk.list ${opts}; then
    echo "local/download.sh: TIMIT is licensed from the LDC (https://catalog.ldc.upenn.edu/LDC93S1) and" \
        "cannot be downloaded; point TIMIT (db.sh or the environment) at a complete copy" >&2
    exit 1
fi
echo "local/download.sh: ${TIMIT} has what the recipe needs" >&2
