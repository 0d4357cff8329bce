# Environment for every recipe (egs/<corpus>/<recipe>/path.sh links here): the project's virtualenv
# and package, whatever the working directory. The checkout: ${PASE_ROOT} from the environment,
# else two levels up from this file's physical path (egs/TEMPLATE/path.sh), so a recipe dir made
# anywhere by utils/make_recipe.sh (absolute links) finds it too.
PASE_ROOT=${PASE_ROOT:-$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)}
if [ ! -f "${PASE_ROOT}/egs/TEMPLATE/path.sh" ]; then
    echo "path.sh: cannot find the pase checkout (tried '${PASE_ROOT}'); set PASE_ROOT=/path/to/pase or remake this recipe with utils/make_recipe.sh" >&2
    exit 1
fi
if [ ! -x "${PASE_ROOT}/tools/venv/bin/python" ]; then
    echo "path.sh: ${PASE_ROOT}/tools/venv is missing; run: bash ${PASE_ROOT}/tools/install.sh" >&2
    exit 1
fi
export PATH="${PASE_ROOT}/tools/venv/bin:${PATH}"
export PYTHONPATH="${PASE_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export PASE_PYTHON="${PASE_ROOT}/tools/venv/bin/python"
export PYTHONUNBUFFERED=1
# jemalloc, when installed, makes PyTorch on CPU much faster; torchrun-launched training does not
# pass through the pase-* launcher, so preload it here for every process (pase/launch.py decides).
eval "$("${PASE_PYTHON}" -m pase.launch)"
