#!/usr/bin/env bash
# Command-line options for recipe scripts, Kaldi style.  Source it (without arguments, so
# that it shares and shifts the caller's "$@") after defining the options with defaults:
#
#   stage=0
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh
#
# Every --name VALUE or --name=VALUE sets the variable name (dashes read as underscores),
# which must already exist: a typo is an error instead of a silently ignored option.  Only
# lowercase, unexported, non-array variables are options, so --path or --home cannot
# clobber the environment.
# Options taking true/false keep to true/false.  --config FILE sources FILE first; every
# option on the command line overrides it.  --help / -h prints $help_message and the options
# with their current values.  Parsing stops at the first argument not starting with "--"
# (or after "--"); that argument and the rest stay in "$@".
#
# It runs in the caller's shell: no set -e here, and its own variables start with _po_.

_po_is_option() {
  local _po_flags
  [[ $1 =~ ^[a-z][a-z0-9_]*$ && $1 != help_message ]] || return 1
  _po_flags=$(declare -p "$1" 2>/dev/null) || return 1
  _po_flags=${_po_flags#declare -}
  [[ ${_po_flags%% *} != *[xaA]* ]]
}

_po_fail() {
  echo "parse_options.sh: $*" >&2
  exit 1
}

# First pass: find --config files among the options, so that they can be sourced first.
_po_configs=()
_po_i=1
while [ "$_po_i" -le $# ]; do
  _po_arg=${!_po_i}
  case $_po_arg in
    --) break ;;
    --config=*) _po_configs+=("${_po_arg#--config=}") ;;
    --config)
      _po_i=$((_po_i + 1))
      [ "$_po_i" -le $# ] || _po_fail "option --config needs a value"
      _po_configs+=("${!_po_i}") ;;
    --*=*) ;;
    --*) _po_i=$((_po_i + 1)) ;;
    -h) ;;
    *) break ;;
  esac
  _po_i=$((_po_i + 1))
done
for _po_config in ${_po_configs[@]+"${_po_configs[@]}"}; do
  [ -r "$_po_config" ] || _po_fail "cannot read config file $_po_config"
  # shellcheck disable=SC1090
  . "$_po_config"
done

while [ $# -gt 0 ]; do
  case $1 in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n\n' "$help_message"; fi
      echo "Options (current values):"
      for _po_name in $(compgen -v); do
        _po_is_option "$_po_name" || continue
        _po_value=${!_po_name}
        printf '  --%s %q\n' "${_po_name//_/-}" "$_po_value"
      done
      exit 0 ;;
    --) shift; break ;;
    --*=*) _po_opt=${1%%=*}; _po_value=${1#*=}; shift ;;
    --*)
      [ $# -ge 2 ] || _po_fail "option $1 needs a value"
      _po_opt=$1; _po_value=$2; shift 2 ;;
    *) break ;;
  esac
  _po_name=${_po_opt#--}
  _po_name=${_po_name//-/_}
  if [ "$_po_name" = config ]; then continue; fi
  if ! _po_is_option "$_po_name"; then
    _po_fail "invalid option $_po_opt"
  fi
  if [[ ${!_po_name} == true || ${!_po_name} == false ]] \
      && [[ $_po_value != true && $_po_value != false ]]; then
    _po_fail "option $_po_opt takes true or false, got '$_po_value'"
  fi
  printf -v "$_po_name" '%s' "$_po_value"
done

unset -v _po_configs _po_config _po_i _po_arg _po_opt _po_name _po_value
unset -f _po_is_option _po_fail
