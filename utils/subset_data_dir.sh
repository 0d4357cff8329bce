#!/usr/bin/env bash
# Usage: utils/subset_data_dir.sh --utt-list <file> <src-dir> <dest-dir>
#        utils/subset_data_dir.sh --spk-list <file> <src-dir> <dest-dir>
#        utils/subset_data_dir.sh --first|--last|--shortest <N> <src-dir> <dest-dir>
#        utils/subset_data_dir.sh [--first|--last|--shortest] <src-dir> <N> <dest-dir>
# The last form is Kaldi's; without an option it takes N utterances spread evenly over the
# (sorted) data dir, deterministically.  feats.scp, cmvn.scp etc. are subset along.
# Runs pase-data-dir through ${PASE_PYTHON:-python3}, which must be able to import pase: a
# recipe's path.sh exports PASE_PYTHON=<repo>/tools/venv/bin/python and PYTHONPATH=<repo>.
set -euo pipefail
usage() {
  sed -n '2,5s/^# \{0,1\}//p' "$0" >&2
  exit 1
}
mode=--spread
value=
case ${1:-} in
  --utt-list|--spk-list)
    [ $# -eq 4 ] || usage
    mode=$1; value=$2; shift 2 ;;
  --first|--last|--shortest)
    mode=$1; shift
    # "--first N src dest" or Kaldi's "--first src N dest": N is the number that is no directory.
    if [[ $# -eq 3 && ${1:-} =~ ^[0-9]+$ && ! -d $1 ]]; then value=$1; shift; fi ;;
  -*) usage ;;
esac
if [ -z "$value" ]; then
  [ $# -eq 3 ] || usage
  value=$2
  set -- "$1" "$3"
fi
[ $# -eq 2 ] || usage
exec "${PASE_PYTHON:-python3}" -m pase.bin.data_dir subset "$1" "$2" "$mode" "$value"
