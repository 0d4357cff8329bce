#!/usr/bin/env bash
# Bootstrap the project environment: system packages (espeak-ng, jemalloc, flac) and a virtualenv at tools/venv with pase installed in editable mode plus the pinned dependencies.
# Idempotent: a stamp keyed on setup.py's content makes reruns instant.
#   tools/install.sh            # runtime + dev (tests) extras
#   EXTRAS=dev,codec2 tools/install.sh   # plus pycodec2, for the codec2 distortion
set -euo pipefail

# Physical path: a symlinked tools/ (e.g. a test copy of the tree) must still install this checkout.
tools=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$tools")
venv=$tools/venv
extras=${EXTRAS:-dev}
python=${PYTHON:-}
if [ -z "$python" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$cand; break
    fi
  done
fi
[ -n "$python" ] || { echo "tools/install.sh: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

# System packages: espeak-ng (synthetic corpora), jemalloc (a faster allocator for PyTorch on
# CPU, preloaded by the pase-* commands and the recipes' path.sh when present) and flac (0.4 MB:
# the decoder of the Kaldi-style `flac -c -d -s X |` wav.scp entries, --wav_format pipe).
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v flac >/dev/null || missing+=(flac)
compgen -G "/usr/lib/*/libjemalloc.so.2" >/dev/null || compgen -G "/usr/lib64/libjemalloc.so.2" >/dev/null \
  || missing+=(libjemalloc2)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "tools/install.sh: installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "tools/install.sh: please install ${missing[*]} (apt-get install ${missing[*]})" >&2
  fi
fi

stamp=$venv/.installed
want="$(sha256sum "$root/setup.py" | cut -d' ' -f1) $extras"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e "$root[$extras]"
echo "$want" > "$stamp"
echo "tools/install.sh: environment ready in $venv"
