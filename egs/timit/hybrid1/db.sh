# Where TIMIT is (the directory holding TRAIN/ and TEST/, or its parent). Override from the
# environment, e.g. TIMIT=/corpora/LDC93S1/TIMIT. The default is the synthetic TIMIT-layout
# corpus that egs/demo/run.sh makes.
PASE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export TIMIT=${TIMIT:-${PASE_ROOT}/egs/demo/work/corpora/timit/TIMIT}
