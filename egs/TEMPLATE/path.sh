# Environment for every recipe (egs/<corpus>/<recipe>/path.sh links here): the project's virtualenv
# and package, whatever the working directory. The root is three levels up from the recipe.
PASE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
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
