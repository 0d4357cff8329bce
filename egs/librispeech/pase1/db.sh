# Where the corpora are. Override from the environment, e.g. LIBRISPEECH=/corpora/LibriSpeech.
# The default is the synthetic LibriSpeech-layout corpus that egs/demo/run.sh makes.
PASE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
export LIBRISPEECH=${LIBRISPEECH:-${PASE_ROOT}/egs/demo/work/corpora/librispeech/LibriSpeech}
