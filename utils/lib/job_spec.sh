# Sourced by run_local.sh and run_slurm.sh after their own options: parses the shared part of
# the job-runner interface, `[VAR=FIRST:LAST] LOGFILE COMMAND...`, from the caller's "$@".
# Sets var, first, last, log_template and cmd (the command as one shell string); needs $prog
# and a usage function.
var=
first=1
last=1
if [[ ${1:-} =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}
  first=$((10#${BASH_REMATCH[2]}))
  last=$((10#${BASH_REMATCH[3]}))
  shift
  ((first <= last)) || { echo "$prog: empty job range $var=$first:$last" >&2; exit 1; }
fi
[ $# -ge 2 ] || usage
log_template=$1
shift
if ((last > first)) && [[ $log_template != *"$var"* ]]; then
  echo "$prog: the log file $log_template must contain $var: the jobs would share it" >&2
  exit 1
fi
# As Kaldi's runners: words without spaces go in as they are (so '|' and '>' work), others quoted.
cmd=
for arg in "$@"; do
  if [[ $# -gt 1 && ( -z $arg || $arg =~ [[:space:]] ) ]]; then
    cmd+=" $(printf '%q' "$arg")"
  else
    cmd+=" $arg"
  fi
done
cmd=${cmd# }
