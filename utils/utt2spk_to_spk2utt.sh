#!/usr/bin/env bash
# Usage: utils/utt2spk_to_spk2utt.sh [utt2spk] > spk2utt      (reads stdin without a file)
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir utt2spk-to-spk2utt "$@"
