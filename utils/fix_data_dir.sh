#!/usr/bin/env bash
# Usage: utils/fix_data_dir.sh <data-dir>
# Keeps only utterances present in every per-utterance file (and whose speaker and recording
# are known), drops unused speakers and recordings, sorts every file and regenerates spk2utt.
# The original files are copied to <data-dir>/.backup/ first.
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "Usage: $0 <data-dir>" >&2
  exit 1
fi
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir fix "$1"
