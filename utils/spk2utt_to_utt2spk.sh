#!/usr/bin/env bash
# Usage: utils/spk2utt_to_utt2spk.sh [spk2utt] > utt2spk      (reads stdin without a file)
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir spk2utt-to-utt2spk "$@"
