#!/usr/bin/env bash
# Stage 0: get the LibriSpeech subsets into ${LIBRISPEECH} (db.sh). At db.sh's default, the
# synthetic corpus of egs/demo, they are synthesised with egs/demo's parameters (so either
# reuses the other's corpus); anywhere else they are downloaded from an openSLR-layout mirror by
# pase-download-librispeech (resumable, MD5-checked; a subset already there costs no request).
set -euo pipefail
. ./db.sh
subsets="${TRAIN_SUBSET} ${DEV_SUBSET}"    # db.sh: the subsets of its corpus
mirror=""                        # base URL of <subset>.tar.gz and md5sum.txt ("": openSLR resource 12)
help_message="Usage: local/download.sh [--subsets '${subsets}'] [--mirror URL]"
. utils/parse_options.sh
. ./path.sh
if [ "${LIBRISPEECH}" != "${SYNTHETIC_LIBRISPEECH}/LibriSpeech" ]; then
    # shellcheck disable=SC2086
    exec pase-download-librispeech "${LIBRISPEECH}" ${subsets} ${mirror:+--mirror "${mirror}"}
fi
pase-make-synthetic-corpus librispeech "${SYNTHETIC_LIBRISPEECH}" --jobs "$(nproc)"
missing=""
for s in ${subsets}; do [ -d "${LIBRISPEECH}/${s}" ] || missing+=" ${s}"; done
if [ -n "${missing}" ]; then
    have=$(find "${LIBRISPEECH}" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tr '\n' ' ')
    echo "local/download.sh:${missing}: not in the synthetic corpus ${LIBRISPEECH} (it has ${have% });" \
        "set LIBRISPEECH (db.sh or the environment) to where LibriSpeech goes to download them," \
        "or ask for the synthetic subsets (--subsets '${have% }')" >&2
    exit 1
fi
