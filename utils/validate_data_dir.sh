#!/usr/bin/env bash
# Usage: utils/validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] [--non-print] <data-dir>
# Checks a Kaldi data dir by the rules of Kaldi's own script (sorted unique keys, a final
# newline, utt2spk sorted by speaker too, utt2spk/spk2utt agreement, the same utterances in
# every per-utterance file, segments/wav.scp and cmvn.scp/speaker agreement, text without CR,
# odd whitespace or non-printable characters), prints every problem found with file, line and
# key and exits 1 if there is any. The options are Kaldi's: --no-feats/--no-wav make feats.scp/
# wav.scp optional (checked when present), --no-text skips text, --no-spk-sort drops the
# speaker-order rule, --non-print allows non-printable characters in text.
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir validate "$@"
