#!/usr/bin/env bash
# Usage: utils/make_absolute.sh <path>
# Prints <path> as an absolute path without resolving symlinks (so a recipe's "data" link stays
# "data" in the paths written to scp files): relative paths are taken from $PWD, and "." and
# ".." are removed textually.  The path does not have to exist.
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "Usage: $0 <path>" >&2
  exit 1
fi
path=$1
[[ $path == /* ]] || path=$PWD/$path
parts=()
IFS=/ read -r -a components <<< "$path"
for c in "${components[@]}"; do
  case $c in
    ''|.) ;;
    ..) if [ ${#parts[@]} -gt 0 ]; then unset 'parts[${#parts[@]}-1]'; fi ;;
    *) parts+=("$c") ;;
  esac
done
(IFS=/; echo "/${parts[*]}")
