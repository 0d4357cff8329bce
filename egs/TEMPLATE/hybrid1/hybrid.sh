#!/usr/bin/env bash
# HMM-DNN hybrid phone recognition template (TIMIT-style), all from pip-installable Kaldi.
# A recipe provides local/data.sh (corpus -> data/{train,dev,test} with phone transcripts), conf/
# and a run.sh calling this script, and optionally local/download.sh (gets or checks the corpus).
#
# Stages (each skips itself when its outputs are up to date; logs in exp/*/log* and data/log):
#   0  local/download.sh: get the corpus, or check it is complete     the corpus (db.sh)
#   1  local/data.sh: corpus -> data dirs                            data/{train,dev,test}
#   2  lang: lexicon, L.fst, phone bigram G.fst                       data/lang, data/lang_test_bg
#   3  GMM-HMM: MFCC+CMVN+deltas, monophone then triphone training,
#      alignments of train and dev, GMM decodes of the test sets      exp/mono, exp/tri, */decode_*
#   4  input features of the MLP: PASE+ (frozen encoder), MFCC, fbank  dump/<feats_type>/<set>, data/<set>_<feats_type>
#      (none with --freeze_encoder true: the MLP reads waveforms through the frozen encoder)
#   5  MLP acoustic model on the triphone pdf alignments, priors      exp/mlp_<feats_type>[_frozen_<layers>]
#   6  lattice decoding, LM-weight sweep, 39-phone PER (standard and
#      lenient silence scoring), RESULTS.md                           exp/mlp_<feats_type>/decode_<set>, RESULTS.md
set -euo pipefail

. utils/lib/recipe.sh

stage=0
stop_stage=6
download_opts=""                 # options passed to local/download.sh (stage 0)
local_data_opts=""               # options passed to local/data.sh
feats_type=pase                  # MLP input: pase (frozen PASE+ features), or mfcc / fbank (baselines)
fe_cfg=conf/PASE+.cfg            # encoder config for feats_type=pase
fe_ckpt=""                       # encoder checkpoint for feats_type=pase (e.g. FE_e199.ckpt)
freeze_encoder=false             # true: the frozen encoder runs inside the MLP, its encoder_layers mixed by learnt weights
encoder_layers=all               # with freeze_encoder=true: final, all, or layer indices/names (as pase-extract --layers)
extract_args="--peak_norm"       # pase-extract options for feats_type=pase (the original peak-normalised TIMIT)
feats_config=""                  # pase-extract --feats_config for mfcc / fbank (default: conf/<feats_type>.yaml)
mono_config=conf/mono.yaml       # pase-train-gmm options
tri_config=conf/tri.yaml
mlp_config=conf/mlp.yaml         # pase-train-mlp options (MlpOptions)
test_sets="dev test"             # sets decoded and scored
acwt=0.2                         # acoustic scale of the hybrid lattices (the original's)
lmwt=1:10                        # LM weights of the scoring sweep
gmm_lmwt="6 8 10 12"             # LM weights (1/acoustic scale) of the GMM decodes
nj=4                             # feature extraction jobs
ngpu=0                           # 0: CPU; 1: train the MLP and decode on a GPU
help_message="Usage: $0 [--stage N] [--stop_stage M] [--feats_type pase|mfcc|fbank] [--fe_ckpt FE.ckpt] ..."
help_message+=$'\n\nStages:\n'$(stages_help "${BASH_SOURCE[0]}")

. utils/parse_options.sh
check_stages "${BASH_SOURCE[0]}"
. ./path.sh
. ./cmd.sh
[ $# -eq 0 ] || die "unexpected arguments: $*"
mkdir -p data/log exp
mlp=exp/mlp_${feats_type}
sfx=_${feats_type}               # the MLP reads data/<set><sfx>/<input>
input=feats.scp
if ${freeze_encoder}; then
    [ "${feats_type}" = pase ] || die "--freeze_encoder true runs the PASE encoder inside the MLP: needs --feats_type pase"
    mlp=exp/mlp_pase_frozen_${encoder_layers//,/_}; sfx=""; input=wav.scp
fi

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    eval get_corpus "${download_opts}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    if [ -f data/test/text ] && fresh data/.stage1.done local/data.sh db.sh \
            && [ "$(cat data/.stage1.done)" = "${local_data_opts}" ]; then
        log "stage 1: data dirs are up to date, skipping"
    else
        log "stage 1: data preparation"
        eval local/data.sh "${local_data_opts}" 2>&1 | tee data/log/data.log
        for s in train dev test; do
            utils/validate_data_dir.sh --no-feats "data/${s}" >> data/log/data.log 2>&1 \
                || die "data/${s} fails validation (see data/log/data.log)"
        done
        echo "${local_data_opts}" > data/.stage1.done
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    [ -f data/train/text ] || die "data/train/text not found: run stage 1 first"
    if fresh data/lang_test_bg/G.fst data/train/text; then
        log "stage 2: lang dirs are up to date, skipping"
    else
        log "stage 2: lang (phone lexicon, L.fst) and phone bigram G.fst"
        pase-make-lang data/train data/lang data/lang_test_bg > data/log/lang.log 2>&1 \
            || die "lang preparation failed (see data/log/lang.log)"
    fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    [ -f data/lang_test_bg/G.fst ] || die "data/lang_test_bg not found: run stage 2 first"
    if fresh exp/mono/final.npz data/train/text data/lang/L.fst "${mono_config}"; then
        log "stage 3: monophone system is up to date, skipping"
    else
        log "stage 3: monophone GMM-HMM -> exp/mono"
        ${train_cmd} exp/mono/log.train pase-train-gmm mono --data data/train --lang data/lang \
            --out exp/mono --config "${mono_config}" --align_data data/dev
    fi
    if fresh exp/tri/final.npz exp/mono/final.npz "${tri_config}"; then
        log "stage 3: triphone system is up to date, skipping"
    else
        log "stage 3: triphone GMM-HMM (numpy decision tree) -> exp/tri"
        ${train_cmd} exp/tri/log.train pase-train-gmm tri --data data/train --lang data/lang \
            --out exp/tri --ali_from exp/mono --config "${tri_config}" --align_data data/dev
    fi
    for sys in mono tri; do
        for s in ${test_sets}; do
            if fresh "exp/${sys}/decode_${s}/best_per" "exp/${sys}/final.npz"; then continue; fi
            log "stage 3: decoding data/${s} with exp/${sys}"
            ${train_cmd} "exp/${sys}/log.decode_${s}" pase-decode gmm --gmm "exp/${sys}" \
                --lang_test data/lang_test_bg --data "data/${s}" --out "exp/${sys}/decode_${s}" \
                --lmwt "${gmm_lmwt}"
        done
    done
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && ${freeze_encoder}; then
    log "stage 4: the frozen encoder runs inside the MLP, no features to make, skipping"
fi
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ] && ! ${freeze_encoder}; then
    case "${feats_type}" in
        pase) [ -n "${fe_ckpt}" ] && [ -f "${fe_ckpt}" ] || die "feats_type=pase needs --fe_ckpt (an encoder checkpoint, e.g. FE_e199.ckpt)"
              inputs=${fe_ckpt}; feats_opts="--fe_cfg ${fe_cfg} --fe_ckpt ${fe_ckpt} ${extract_args}" ;;
        mfcc|fbank) inputs=${feats_config:-conf/${feats_type}.yaml}; feats_opts="--feats_config ${inputs}" ;;
        *) die "unknown --feats_type ${feats_type} (pase, mfcc or fbank)" ;;
    esac
    for s in train ${test_sets}; do
        out=data/${s}_${feats_type}
        if fresh "${out}/feats.scp" "data/${s}/wav.scp" "${inputs}"; then
            log "stage 4: ${feats_type} features of ${s} are up to date, skipping"
            continue
        fi
        log "stage 4: ${feats_type} features of data/${s} -> ${out}"
        mkdir -p "exp/log"
        # shellcheck disable=SC2086
        ${train_cmd} JOB=1:"${nj}" "exp/log/extract_${feats_type}_${s}.JOB.log" pase-extract "data/${s}" \
            "dump/${feats_type}/${s}" --feats_type "${feats_type}" --nj "${nj}" --job JOB --no_progress ${feats_opts}
        ${train_cmd} "exp/log/merge_${feats_type}_${s}.log" pase-extract "data/${s}" "dump/${feats_type}/${s}" \
            --out_data_dir "${out}" --nj "${nj}" --merge
    done
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    [ -f "data/train${sfx}/${input}" ] || die "data/train${sfx}/${input} not found: run stages 1-4 first"
    [ -f exp/tri/pdf_ali_dev.ark ] || die "exp/tri/pdf_ali_dev.ark not found: run stage 3 first"
    mlp_opts=""
    mlp_inputs=("data/train${sfx}/${input}" exp/tri/pdf_ali.ark "${mlp_config}")
    if ${freeze_encoder}; then
        [ -n "${fe_ckpt}" ] && [ -f "${fe_ckpt}" ] || die "--freeze_encoder true needs --fe_ckpt (an encoder checkpoint, e.g. FE_e199.ckpt)"
        mlp_inputs+=("${fe_ckpt}")  # a newer encoder checkpoint retrains the MLP
        mlp_opts="--freeze_encoder --encoder_layers ${encoder_layers} --fe_cfg ${fe_cfg} --fe_ckpt ${fe_ckpt}"
    fi
    if fresh "${mlp}/final.pt" "${mlp_inputs[@]}"; then
        log "stage 5: ${mlp} is up to date, skipping"
    else
        log "stage 5: MLP acoustic model on ${feats_type}${mlp_opts:+ (frozen encoder, layers ${encoder_layers})} -> ${mlp}"
        # shellcheck disable=SC2086
        ${cuda_cmd} --gpu "${ngpu}" "${mlp}/log.train" pase-train-mlp --train "data/train${sfx}" --dev "data/dev${sfx}" \
            --gmm exp/tri --out "${mlp}" --config "${mlp_config}" --ngpu "${ngpu}" ${mlp_opts}
    fi
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    [ -f "${mlp}/final.pt" ] || die "${mlp}/final.pt not found: run stage 5 first"
    for s in ${test_sets}; do
        if fresh "${mlp}/decode_${s}/best_per" "${mlp}/final.pt"; then
            log "stage 6: ${mlp}/decode_${s} is up to date, skipping"
            continue
        fi
        log "stage 6: decoding data/${s}${sfx} with ${mlp}"
        ${cuda_cmd} --gpu "${ngpu}" "${mlp}/log.decode_${s}" pase-decode hybrid --model "${mlp}" --gmm exp/tri \
            --lang_test data/lang_test_bg --data "data/${s}${sfx}" --out "${mlp}/decode_${s}" \
            --acwt "${acwt}" --lmwt "${lmwt}" --ngpu "${ngpu}"
    done
    {
        echo "# Results"
        echo
        echo "39-phone PER, best LM weight per system and set. Standard: silence scored as a phone;"
        echo "lenient: silence removed from reference and hypothesis (the original PASE+ scoring)."
        echo
        echo '```'
        for f in exp/*/decode_*/best_per; do [ -f "${f}" ] && cat "${f}"; done
        echo '```'
        for f in exp/*/layer_weights; do  # pase-train-mlp --freeze_encoder's learnt layer weights
            [ -f "${f}" ] || continue
            printf '\n## Encoder layer weights of %s\n\nSoftmax weights of the layers, learnt with the MLP.\n\n' "$(dirname "${f}")"
            printf '| layer | weight |\n|---|---|\n'
            awk '{ printf "| %s | %s |\n", $1, $2 }' "${f}"
        done
    } > RESULTS.md
    cat RESULTS.md
fi
log "done"
