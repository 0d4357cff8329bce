# Where TIMIT is (the directory holding TRAIN/ and TEST/, or its parent). Override from the
# environment, e.g. TIMIT=/corpora/LDC93S1/TIMIT. The default is the synthetic TIMIT-layout
# corpus of egs/demo (stage 0 makes it; at any other place stage 0 checks the copy).
PASE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
SYNTHETIC_TIMIT=${PASE_ROOT}/egs/demo/work/corpora/timit
export TIMIT=${TIMIT:-${SYNTHETIC_TIMIT}/TIMIT}
