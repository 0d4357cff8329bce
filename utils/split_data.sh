#!/usr/bin/env bash
# Usage: utils/split_data.sh <data-dir> <num-jobs>
# Writes <data-dir>/split<num-jobs>/{1..num-jobs}, keeping each speaker in one part and
# balancing the parts by utterance count; an existing split newer than the data dir is reused.
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "Usage: $0 <data-dir> <num-jobs>" >&2
  exit 1
fi
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir split "$1" "$2"
