# Sourced by every recipe template (and egs/demo/run.sh): the helpers they share.
#   log MESSAGE...            timestamped line on stderr, naming the calling script and line
#   die MESSAGE...            log "ERROR: MESSAGE" and exit 1
#   fresh STAMP [INPUT...]    true when STAMP exists and is newer than every INPUT (a stage is done)
#   checkpoints DIR           DIR's FE_e<N>.ckpt files, one per line, by increasing epoch N
#   latest_checkpoint DIR     the last of them ("" when there is none)
#   get_corpus [OPTION...]    stage 0: local/download.sh OPTION... when the recipe has one (it
#                             downloads, synthesises or checks the corpus), logged to data/log/download.log

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
