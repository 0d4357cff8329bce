# Where the corpora are. Override from the environment, e.g. LIBRISPEECH=/corpora/LibriSpeech.
# The default is the synthetic LibriSpeech-layout corpus of egs/demo (stage 0 makes it; at any
# other place stage 0 downloads the subsets).
# The pase checkout: ${PASE_ROOT} from the environment, else where this recipe's path.sh link leads
# (egs/TEMPLATE/path.sh, in the tree or from a recipe made anywhere by utils/make_recipe.sh).
PASE_ROOT=${PASE_ROOT:-$(cd "$(dirname "$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/path.sh")")/../.." 2>/dev/null && pwd)}
if [ ! -f "${PASE_ROOT}/egs/TEMPLATE/path.sh" ]; then
    echo "db.sh: cannot find the pase checkout (tried '${PASE_ROOT}'); set PASE_ROOT=/path/to/pase or remake this recipe with utils/make_recipe.sh" >&2
    return 1 2>/dev/null || exit 1
fi
SYNTHETIC_LIBRISPEECH=${PASE_ROOT}/egs/demo/work/corpora/librispeech
export LIBRISPEECH=${LIBRISPEECH:-${SYNTHETIC_LIBRISPEECH}/LibriSpeech}
# The subsets the recipe uses follow the corpus (run.sh's sets, local/*.sh's defaults): the
# synthetic corpus has train-clean-5/dev-clean-2 (LibriSpeech's mini subsets), a real copy
# the original's train-clean-100/dev-clean. Override from the environment.
if [ "${LIBRISPEECH}" = "${SYNTHETIC_LIBRISPEECH}/LibriSpeech" ]; then
    export TRAIN_SUBSET=${TRAIN_SUBSET:-train-clean-5} DEV_SUBSET=${DEV_SUBSET:-dev-clean-2}
else
    export TRAIN_SUBSET=${TRAIN_SUBSET:-train-clean-100} DEV_SUBSET=${DEV_SUBSET:-dev-clean}
fi
