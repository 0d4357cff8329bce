# Where the corpora are. Override from the environment, e.g. LIBRISPEECH=/corpora/LibriSpeech.
# The default is the synthetic LibriSpeech-layout corpus of egs/demo (stage 0 makes it; at any
# other place stage 0 downloads the subset).
PASE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
SYNTHETIC_LIBRISPEECH=${PASE_ROOT}/egs/demo/work/corpora/librispeech
export LIBRISPEECH=${LIBRISPEECH:-${SYNTHETIC_LIBRISPEECH}/LibriSpeech}
# The one subset this closed-set recipe splits (stage 0 gets it; local/download.sh reads these).
export TRAIN_SUBSET=${TRAIN_SUBSET:-train-clean-5} DEV_SUBSET=${DEV_SUBSET:-}
