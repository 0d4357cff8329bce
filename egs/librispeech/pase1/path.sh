# Environment for the recipe: the project's virtualenv and package, whatever the working directory.
PASE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ ! -x "${PASE_ROOT}/tools/venv/bin/python" ]; then
    echo "path.sh: ${PASE_ROOT}/tools/venv is missing; run: bash ${PASE_ROOT}/tools/install.sh" >&2
    exit 1
fi
export PATH="${PASE_ROOT}/tools/venv/bin:${PATH}"
export PYTHONPATH="${PASE_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export PASE_PYTHON="${PASE_ROOT}/tools/venv/bin/python"
export PYTHONUNBUFFERED=1
