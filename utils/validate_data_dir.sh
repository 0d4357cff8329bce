#!/usr/bin/env bash
# Usage: utils/validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] <data-dir>
# Checks a Kaldi data dir (sorted unique keys, utt2spk/spk2utt agreement, the same utterances
# in every per-utterance file, segments/wav.scp and cmvn.scp/speaker agreement), prints every
# problem found with file and line and exits 1 if there is any.
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir validate "$@"
