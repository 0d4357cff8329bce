#!/usr/bin/env bash
# Usage: utils/run_local.sh [--nj-parallel N] [JOB=1:N] <log-file> <command...>
#
# Kaldi's run.pl convention, on this machine: runs the command once per job index, every
# "JOB" in the log path and the command replaced by the index (any VAR=a:b works, VAR is
# then replaced), at most N jobs at a time (default: the number of CPUs).  Each job's
# stdout and stderr go to its log, between a header (the command, start time) and a footer
# "# Ended (code C) at DATE, elapsed time S seconds".  Exits 1 naming the failed jobs' logs.
#
# As with run.pl, arguments without whitespace are pasted into the command unquoted, so
# shell syntax passed as separate (quoted) words works: ... foo.JOB.log a JOB '|' b '>' out.JOB
# Arguments with whitespace are quoted, unless the command is a single argument: that is taken
# as a whole command line ('a JOB | b').  The command runs under bash -o pipefail.
# --partition/--gpu/--gpus/--mem/--time (utils/run_slurm.sh's options) are accepted and ignored,
# so recipes can switch between the two through one $cmd variable.
set -euo pipefail

usage() {
  sed -n '2s/^# //p' "$0" >&2
  exit 1
}

max_parallel=$(nproc)
while [[ $# -gt 0 && $1 == --* ]]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --nj-parallel) max_parallel=$2 ;;
    --partition|--gpu|--gpus|--mem|--time) ;;
    *) echo "run_local.sh: unknown option $1" >&2; exit 1 ;;
  esac
  shift 2
done
if ! [[ $max_parallel =~ ^[1-9][0-9]*$ ]]; then
  echo "run_local.sh: --nj-parallel must be a positive integer, got '$max_parallel'" >&2
  exit 1
fi

prog=run_local.sh
# shellcheck source=utils/lib/job_spec.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/job_spec.sh"

status_dir=$(mktemp -d)
trap 'rm -rf "$status_dir"' EXIT

job_log() {
  if [ -n "$var" ]; then echo "${log_template//"$var"/$1}"; else echo "$log_template"; fi
}

run_job() {
  local log job_cmd=$cmd start rc=0
  log=$(job_log "$1")
  if [ -n "$var" ]; then job_cmd=${cmd//"$var"/$1}; fi
  mkdir -p "$(dirname "$log")"
  start=$(date +%s)
  printf '# %s\n# Started at %s\n#\n' "$job_cmd" "$(date)" > "$log"
  bash -o pipefail -c "$job_cmd" >> "$log" 2>&1 || rc=$?
  printf '# Ended (code %d) at %s, elapsed time %d seconds\n' \
    "$rc" "$(date)" $(($(date +%s) - start)) >> "$log"
  echo "$rc" > "$status_dir/$1"
}

running=0
for ((job = first; job <= last; job++)); do
  if ((running >= max_parallel)); then
    wait -n || true  # a job's status is read from its status file, not from wait
    running=$((running - 1))
  fi
  run_job "$job" &
  running=$((running + 1))
done
wait || true

failed=()
for ((job = first; job <= last; job++)); do
  # A job killed before writing its status counts as failed.
  [ "$(cat "$status_dir/$job" 2>/dev/null)" = 0 ] || failed+=("$(job_log "$job")")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_local.sh: ${#failed[@]} of $((last - first + 1)) job(s) failed; see ${failed[*]}" >&2
  exit 1
fi
