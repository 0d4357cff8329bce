#!/usr/bin/env bash
# Kaldi's scoring of the lattices that <decode-dir>/latgen-faster-mapped.txt's commands write
# (<decode-dir>/lat.<job>.gz, num_jobs), for a user with a Kaldi install; pase-decode scores the
# same way without Kaldi. Stages:
#   0  the best path of each lattice for every LM weight (lattice-best-path --lm-scale=LMWT):
#      <decode-dir>/scoring/<LMWT>.tra, word ids
#   1  words.txt's symbols (phones), folded 48 -> 39 (conf/phones.60-48-39.map), as is the
#      reference <data-dir>/text, both ways pase-decode scores silence: standard (sil a phone,
#      runs of sil merged) and lenient (sil dropped): scoring/{ref,<LMWT>}.{standard,lenient}.txt
#      (plain awk, no Kaldi needed)
#   2  compute-wer --mode=all (an utterance without a hypothesis counts as all deletions):
#      <decode-dir>/wer_<LMWT> (standard), wer_lenient_<LMWT>; the best of each is printed
# Kaldi's binaries come from PATH, or from $KALDI_ROOT/src/{bin,latbin} when KALDI_ROOT is set.
set -euo pipefail

stage=0
stop_stage=2
min_lmwt=1
max_lmwt=10
phone_map=conf/phones.60-48-39.map   # timit61 phone48 phone39 per line; q alone (deleted)
silence=sil
help_message="Usage: local/score.sh [--min-lmwt 1] [--max-lmwt 10] [--stage 0] [--stop-stage 2]"
help_message+=" <data-dir> <lang-dir|graph-dir> <decode-dir>"

. utils/parse_options.sh
if [ $# -ne 3 ]; then
    echo "${help_message}" >&2
    exit 1
fi
data=$1
words=$2/words.txt
dir=$3
scoring=${dir}/scoring
[ -z "${KALDI_ROOT:-}" ] || PATH=${KALDI_ROOT}/src/bin:${KALDI_ROOT}/src/latbin:${PATH}

die() { echo "local/score.sh: $*" >&2; exit 1; }
need_kaldi() {
    command -v "$1" > /dev/null \
        || die "Kaldi's $1 is not on PATH (set KALDI_ROOT or add Kaldi's src/bin and src/latbin)"
}
for f in "${words}" "${data}/text" "${phone_map}"; do
    [ -f "${f}" ] || die "${f} not found"
done
mkdir -p "${scoring}/log"

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    need_kaldi lattice-best-path
    [ -f "${dir}/num_jobs" ] || die "${dir}/num_jobs not found (latgen-faster-mapped.txt writes it)"
    nj=$(cat "${dir}/num_jobs")
    for lmwt in $(seq "${min_lmwt}" "${max_lmwt}"); do
        for job in $(seq 1 "${nj}"); do
            [ -f "${dir}/lat.${job}.gz" ] || die "${dir}/lat.${job}.gz not found"
            lattice-best-path --lm-scale="${lmwt}" --word-symbol-table="${words}" \
                "ark:gunzip -c ${dir}/lat.${job}.gz |" ark,t:- \
                2> "${scoring}/log/best_path.${lmwt}.${job}.log" \
                || die "lattice-best-path failed (see ${scoring}/log/best_path.${lmwt}.${job}.log)"
        done | sort > "${scoring}/${lmwt}.tra"
    done
fi

# fold MODE FILE [WORDS]: FILE's "utt phone48 ..." lines (word ids, given WORDS), folded to
# "utt phone39 ..." (pase.asr.score's rules).
fold() {
    awk -v map="${phone_map}" -v words="${3:-}" -v mode="$1" -v sil="${silence}" '
        function fail(msg) { print "local/score.sh: " msg > "/dev/stderr"; exit 1 }
        BEGIN {
            while ((getline line < map) > 0) {
                n = split(line, f)
                if (n == 3) to39[f[2]] = f[3]
                else if (n != 1) fail(map ": bad line: " line)
            }
            if (words != "") while ((getline line < words) > 0) { split(line, f); sym[f[2]] = f[1] }
        }
        {
            out = $1; last = ""
            for (i = 2; i <= NF; i++) {
                p = $i
                if (words != "") {
                    if (!(p in sym)) fail(FILENAME ":" FNR ": word id " p " not in " words)
                    p = sym[p]
                }
                if (!(p in to39))
                    fail(FILENAME ":" FNR ": phone " p " not in the 48-phone set of " map)
                p = to39[p]
                if (p == sil && (mode == "lenient" || last == sil)) continue
                out = out " " p; last = p
            }
            print out
        }' "$2"
}

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    for mode in standard lenient; do
        fold "${mode}" "${data}/text" > "${scoring}/ref.${mode}.txt"
        for lmwt in $(seq "${min_lmwt}" "${max_lmwt}"); do
            [ -f "${scoring}/${lmwt}.tra" ] || die "${scoring}/${lmwt}.tra not found (stage 0)"
            fold "${mode}" "${scoring}/${lmwt}.tra" "${words}" > "${scoring}/${lmwt}.${mode}.txt"
        done
    done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    need_kaldi compute-wer
    for mode in standard lenient; do
        name=wer_; [ "${mode}" = standard ] || name=wer_${mode}_
        for lmwt in $(seq "${min_lmwt}" "${max_lmwt}"); do
            compute-wer --text --mode=all "ark:${scoring}/ref.${mode}.txt" \
                "ark,p:${scoring}/${lmwt}.${mode}.txt" > "${dir}/${name}${lmwt}" \
                || die "compute-wer failed on ${scoring}/${lmwt}.${mode}.txt"
        done
        best=$(grep -H '%WER' "${dir}/${name}"[0-9]* | sort -t' ' -k2,2g | head -n 1)
        echo "${mode}: ${best}"
    done
fi
