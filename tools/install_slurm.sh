#!/usr/bin/env bash
# Opt-in: Debian's Slurm (slurm-wlm: slurmctld, slurmd, the client commands) and munge, for
# tests/test_slurm.py's one-machine cluster or a cluster node.  tools/install.sh does not call it:
# nothing else in the toolkit needs Slurm (utils/run_local.sh runs the recipes without it).
#   tools/install_slurm.sh       # as root; installs what is missing, starts no daemon
set -euo pipefail

missing=()
for cmd in slurmctld:slurm-wlm slurmd:slurm-wlm sbatch:slurm-wlm munged:munge; do
  command -v "${cmd%%:*}" >/dev/null || [ -x "/usr/sbin/${cmd%%:*}" ] || missing+=("${cmd#*:}")
done
[ ${#missing[@]} -gt 0 ] || exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "tools/install_slurm.sh: needs root and apt-get to install ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "tools/install_slurm.sh: installing ${missing[*]}"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
