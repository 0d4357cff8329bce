# Where the corpora are. Override from the environment, e.g. LIBRISPEECH=/corpora/LibriSpeech.
# The default is the synthetic LibriSpeech-layout corpus of egs/demo (stage 0 makes it; at any
# other place stage 0 downloads the subset).
# The pase checkout: ${PASE_ROOT} from the environment, else where this recipe's path.sh link leads
# (egs/TEMPLATE/path.sh, in the tree or from a recipe made anywhere by utils/make_recipe.sh).
PASE_ROOT=${PASE_ROOT:-$(cd "$(dirname "$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/path.sh")")/../.." 2>/dev/null && pwd)}
if [ ! -f "${PASE_ROOT}/egs/TEMPLATE/path.sh" ]; then
    echo "db.sh: cannot find the pase checkout (tried '${PASE_ROOT}'); set PASE_ROOT=/path/to/pase or remake this recipe with utils/make_recipe.sh" >&2
    return 1 2>/dev/null || exit 1
fi
SYNTHETIC_LIBRISPEECH=${PASE_ROOT}/egs/demo/work/corpora/librispeech
export LIBRISPEECH=${LIBRISPEECH:-${SYNTHETIC_LIBRISPEECH}/LibriSpeech}
# The one subset this closed-set recipe splits (stage 0 gets it; run.sh and local/download.sh
# read these). It follows the corpus: the synthetic one has train-clean-5 (LibriSpeech's mini
# subset), a real copy train-clean-100 (openSLR resource 12, which stage 0 downloads; the mini
# subsets are resource 31, not 12). Override from the environment.
if [ "${LIBRISPEECH}" = "${SYNTHETIC_LIBRISPEECH}/LibriSpeech" ]; then
    export TRAIN_SUBSET=${TRAIN_SUBSET:-train-clean-5}
else
    export TRAIN_SUBSET=${TRAIN_SUBSET:-train-clean-100}
fi
export DEV_SUBSET=${DEV_SUBSET:-}
