#!/usr/bin/env bash
# Usage: utils/make_recipe.sh <recipe dir> <new dir>
# Makes a recipe dir that works anywhere (outside egs/<corpus>/<task>/ too): copies <recipe dir>'s
# own files (run.sh, db.sh, local/, conf/, ...; not data/, exp/, dump/) and points its links to
# the shared template files (pase.sh/cls.sh/hybrid.sh, path.sh, cmd.sh, utils) at this checkout
# with absolute links. For a new corpus, then edit <new dir>'s local/data.sh, db.sh and conf/.
# <new dir> may already be a copy (`cp -a`, whose relative links broke, or `cp -rL`): its
# template links and unchanged copies of the template files are (re)made as absolute links;
# its other files are kept.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "Usage: $0 <recipe dir, e.g. egs/librispeech/pase1> <new dir>" >&2
    exit 1
fi
src=$(cd "$1" 2>/dev/null && pwd) || { echo "$0: no recipe dir '$1'" >&2; exit 1; }
[ -x "${src}/run.sh" ] || { echo "$0: '$1' is not a recipe dir (no run.sh)" >&2; exit 1; }
mkdir -p "$2"
dst=$(cd "$2" && pwd)
[ "${src}" != "${dst}" ] || { echo "$0: <new dir> is the recipe dir itself" >&2; exit 1; }
links=0
for f in "${src}"/* "${src}"/.[!.]*; do
    [ -e "${f}" ] || [ -L "${f}" ] || continue
    name=$(basename "${f}")
    case ${name} in data|exp|dump|decode*) continue ;; esac
    if [ -L "${f}" ]; then
        target=$(readlink -f "${f}")
        [ -e "${target}" ] || { echo "$0: ${f} links to nothing" >&2; exit 1; }
        if [ -L "${dst}/${name}" ] || [ ! -e "${dst}/${name}" ] || diff -rq "${target}" "${dst}/${name}" > /dev/null 2>&1; then
            rm -rf "${dst:?}/${name}"
            ln -s "${target}" "${dst}/${name}"
            links=$((links + 1))
        else
            echo "$0: kept ${dst}/${name} (differs from ${target}; link it by hand to follow the template)" >&2
        fi
    elif [ ! -e "${dst}/${name}" ]; then
        cp -a "${f}" "${dst}/${name}"
    fi
done
echo "$0: ${dst}: a recipe from ${src} (${links} links into $(cd "$(dirname "$0")/.." && pwd))"
