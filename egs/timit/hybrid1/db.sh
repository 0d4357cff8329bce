# Where TIMIT is (the directory holding TRAIN/ and TEST/, or its parent). Override from the
# environment, e.g. TIMIT=/corpora/LDC93S1/TIMIT. The default is the synthetic TIMIT-layout
# corpus of egs/demo (stage 0 makes it; at any other place stage 0 checks the copy).
# The pase checkout: ${PASE_ROOT} from the environment, else where this recipe's path.sh link leads
# (egs/TEMPLATE/path.sh, in the tree or from a recipe made anywhere by utils/make_recipe.sh).
PASE_ROOT=${PASE_ROOT:-$(cd "$(dirname "$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/path.sh")")/../.." 2>/dev/null && pwd)}
if [ ! -f "${PASE_ROOT}/egs/TEMPLATE/path.sh" ]; then
    echo "db.sh: cannot find the pase checkout (tried '${PASE_ROOT}'); set PASE_ROOT=/path/to/pase or remake this recipe with utils/make_recipe.sh" >&2
    return 1 2>/dev/null || exit 1
fi
SYNTHETIC_TIMIT=${PASE_ROOT}/egs/demo/work/corpora/timit
export TIMIT=${TIMIT:-${SYNTHETIC_TIMIT}/TIMIT}
