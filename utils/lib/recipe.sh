# Sourced by every recipe template (and egs/demo/run.sh): the helpers they share.
#   log MESSAGE...            timestamped line on stderr, naming the calling script and line
#   die MESSAGE...            log "ERROR: MESSAGE" and exit 1
#   fresh STAMP [INPUT...]    true when STAMP exists and is newer than every INPUT (a stage is done)
#   checkpoints DIR           DIR's FE_e<N>.ckpt files, one per line, by increasing epoch N
#   latest_checkpoint DIR     the last of them ("" when there is none)
#   get_corpus [OPTION...]    stage 0: local/download.sh OPTION... when the recipe has one (it
#                             downloads, synthesises or checks the corpus), logged to data/log/download.log
#   stages_help TEMPLATE      the stage table of TEMPLATE's header comment (its "# Stages" block)
#   check_stages TEMPLATE     die unless $stage and $stop_stage are stages of that table, in order

_recipe_log() {  # FILE LINE MESSAGE...
    local where="$(basename "$1"):$2"; shift 2
    echo "$(date '+%Y-%m-%d %H:%M:%S') (${where}) $*" >&2
}
log() { _recipe_log "${BASH_SOURCE[1]}" "${BASH_LINENO[0]}" "$@"; }
die() { _recipe_log "${BASH_SOURCE[1]}" "${BASH_LINENO[0]}" "ERROR: $*"; exit 1; }

fresh() {
    local stamp=$1 f
    shift
    [ -f "${stamp}" ] || return 1
    for f in "$@"; do [ "${stamp}" -nt "${f}" ] || return 1; done
}

checkpoints() {
    local f
    for f in "$1"/FE_e*.ckpt; do
        [ -f "${f}" ] || continue
        local n=${f##*/FE_e}
        n=${n%.ckpt}
        if [[ ${n} =~ ^[0-9]+$ ]]; then echo "${n} ${f}"; fi
    done | sort -n | cut -d' ' -f2-
}
latest_checkpoint() { checkpoints "$1" | tail -n 1; }

get_corpus() {
    if [ ! -x local/download.sh ]; then
        _recipe_log "${BASH_SOURCE[1]}" "${BASH_LINENO[0]}" "stage 0: no local/download.sh, the corpus is taken as present"
        return 0
    fi
    _recipe_log "${BASH_SOURCE[1]}" "${BASH_LINENO[0]}" "stage 0: the corpus (local/download.sh${*:+ $*})"
    mkdir -p data/log
    local/download.sh "$@" 2>&1 | tee data/log/download.log
}

# The header comment is the one list of a template's stages: --help prints it, check_stages
# takes the stage numbers from it.
stages_help() { sed -n '/^# Stages/,/^[^#]/{/^#  /s/^# //p}' "$1"; }

check_stages() {
    local numbers first last name value
    numbers=$(stages_help "$1" | awk '$1 ~ /^[0-9]+$/ { print $1 }')
    first=$(head -n 1 <<< "${numbers}"); last=$(tail -n 1 <<< "${numbers}")
    for name in stage stop_stage; do
        value=${!name}
        if ! [[ ${value} =~ ^[0-9]+$ ]] || [ "${value}" -lt "${first}" ] || [ "${value}" -gt "${last}" ]; then
            _recipe_log "${BASH_SOURCE[1]}" "${BASH_LINENO[0]}" \
                "ERROR: --${name} ${value}: not a stage of $(basename "$1") (${first}-${last}):"
            stages_help "$1" >&2
            exit 1
        fi
    done
    if [ "${stage}" -gt "${stop_stage}" ]; then
        _recipe_log "${BASH_SOURCE[1]}" "${BASH_LINENO[0]}" \
            "ERROR: --stage ${stage} is after --stop_stage ${stop_stage}: nothing would run"
        exit 1
    fi
}
