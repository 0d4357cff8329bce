#!/usr/bin/env bash
# Utterance classification template (speaker id, emotion, language, keywords) on frozen or
# fine-tuned PASE/PASE+ (frozen: its features, or its layers mixed by weights learnt with the
# classifier), or on MFCC / fbank baselines; shared by every egs/<task>/cls1 recipe.
# A recipe provides local/data.sh (corpus -> data/<data_set> with utt2label), conf/ and a run.sh,
# and optionally local/download.sh (gets the corpus: downloads, synthesises or checks it).
#
# Stages (each skips itself when its outputs are complete and redoes itself when they are not;
# every stage logs to exp/<tag>/log/ or data/log/):
#   0  local/download.sh: get the corpus (skips what is there)           the corpus (db.sh)
#   1  local/data.sh: corpus -> a data dir with utt2label ("utt label")   data/<data_set>
#   2  split (pase-split-data --by label): given lists, or per-class     data/<data_set>_{train,dev,test}
#      held-out fractions
#   3  features: pase-extract --feats_type pase|mfcc|fbank              data/<data_set>_<s>_<feats_type>
#   4  classifier training (frame MLP or statistics pooling)             exp/<tag>/model.pt, history.json
#   5  evaluation: sentence decisions of every eval set                  exp/<tag>/decode_<s>/utt2pred
#   6  report: accuracy, per-class scores, confusion matrices            exp/<tag>/RESULTS.md, decode_<s>/confusion.png
#      (and the learnt layer weights with --freeze_encoder true)
set -euo pipefail

. utils/lib/recipe.sh

stage=0
stop_stage=6
tag=""                           # experiment name: exp/<tag> (default: <feats_type>_<cls_config name>[_<pooling>][_ft|_frozen_<layers>])
data_set=all                     # data dir (made by local/data.sh, with utt2label) to split
download_opts=""                 # options passed to local/download.sh (stage 0)
mirror=""                        # corpus mirror URL, passed to local/download.sh as --mirror ("": its default)
local_data_opts=""               # options passed to local/data.sh
train_list=""                    # utterance ids (one per line) for training ("": the rest)
dev_list=""                      # ... for the dev set ("": dev_fraction of each class of the rest)
test_list=""                     # ... for the test set ("": test_fraction of each class)
test_fraction=0.2                # per class, when no test_list is given
dev_fraction=0.1                 # per class of what is left, when no dev_list is given
test_sets="test dev"             # sets scored in stage 5 and reported in stage 6
feats_type=pase                  # pase | mfcc | fbank
feats_config=""                  # pase-extract --feats_config for mfcc|fbank (default: conf/<feats_type>.yaml)
fe_cfg=conf/PASE+.cfg            # encoder config (pase features, fine-tuning)
fe_ckpt=""                       # encoder checkpoint, or a pretraining exp dir (its last FE_e*.ckpt)
extract_args=""                  # extra pase-extract arguments for feats_type=pase (e.g. --peak_norm --bf16)
nj=2                             # feature extraction jobs (pase)
cls_config=conf/cls.yaml         # pase-cls-train options (YAML); the flags below add to / override it
pooling=""                       # frame: the original's frame MLP; stats: mean+std pooling ("": cls_config's)
finetune=false                   # true: train the encoder with the classifier, from waveforms
freeze_encoder=false             # true: a frozen encoder reads the waveforms, its encoder_layers mixed by learnt weights
encoder_layers=all               # with freeze_encoder=true: final, all, or layer indices/names (as pase-extract --layers)
cls_args=""                      # extra pase-cls-train arguments
ngpu=0                           # 0: CPU; 1: train and score on a GPU
help_message="Usage: $0 [--stage N] [--stop_stage M] [--data_set S] [--feats_type pase|mfcc|fbank] [--fe_ckpt C] ..."
help_message+=$'\n\nStages:\n'$(stages_help "${BASH_SOURCE[0]}")

. utils/parse_options.sh
check_stages "${BASH_SOURCE[0]}"
. ./path.sh
. ./cmd.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
case ${feats_type} in pase|mfcc|fbank) ;; *) die "--feats_type must be pase, mfcc or fbank, got '${feats_type}'" ;; esac
given_pooling=${pooling}
[ -n "${pooling}" ] || pooling=$(sed -n 's/^pooling: *\([a-z]*\).*/\1/p' "${cls_config}")
pooling=${pooling:-frame}
case ${pooling} in frame|stats) ;; *) die "--pooling must be frame or stats, got '${pooling}'" ;; esac
[ -n "${feats_config}" ] || feats_config=conf/${feats_type}.yaml
if [ -z "${tag}" ]; then
    tag=${feats_type}_$(basename "${cls_config}" .yaml)${given_pooling:+_${given_pooling}}; if ${finetune}; then tag+=_ft; fi
    if ${freeze_encoder}; then tag+=_frozen_${encoder_layers//,/_}; fi
fi
if ${finetune} && [ "${feats_type}" != pase ]; then die "--finetune true fine-tunes a PASE encoder: needs --feats_type pase"; fi
if ${freeze_encoder} && [ "${feats_type}" != pase ]; then die "--freeze_encoder true reads a PASE encoder: needs --feats_type pase"; fi
if ${finetune} && ${freeze_encoder}; then die "--finetune true trains the encoder, --freeze_encoder true keeps it fixed: give one"; fi
waveforms=false                  # the classifier reads waveforms through the encoder (no stage 3 features)
if ${finetune} || ${freeze_encoder}; then waveforms=true; fi
exp=exp/${tag}
lists=data/${data_set}_lists
mkdir -p "${exp}/log" data/log
device=cpu; [ "${ngpu}" -gt 0 ] && device=cuda

# The encoder checkpoint: --fe_ckpt itself, or the last FE_e<N>.ckpt of a pretraining exp dir.
encoder_ckpt() {
    [ -n "${fe_ckpt}" ] || die "--feats_type pase needs --fe_ckpt (an FE_e*.ckpt, or a pase1 exp dir)"
    if [ -d "${fe_ckpt}" ]; then
        local c
        c=$(latest_checkpoint "${fe_ckpt}")
        [ -n "${c}" ] || die "no FE_e*.ckpt in ${fe_ckpt} (pretrain first, e.g. egs/demo/run.sh)"
        echo "${c}"
    else
        [ -f "${fe_ckpt}" ] || die "encoder checkpoint ${fe_ckpt} not found"
        echo "${fe_ckpt}"
    fi
}

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    eval get_corpus "${download_opts}" '${mirror:+--mirror "${mirror}"}'
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    src=data/${data_set}
    if [ -f "${src}/utt2label" ] && fresh data/.cls_stage1.done local/data.sh db.sh \
            && [ "$(cat data/.cls_stage1.done)" = "${data_set} ${local_data_opts}" ]; then
        log "stage 1: data/${data_set} is up to date, skipping"
    else
        log "stage 1: data preparation (local/data.sh ${local_data_opts})"
        eval local/data.sh "${local_data_opts}" 2>&1 | tee data/log/data.log
        utils/validate_data_dir.sh --no-feats --no-text "${src}" >> data/log/data.log 2>&1 \
            || die "${src} fails validation (see data/log/data.log)"
        [ -f "${src}/utt2label" ] || die "local/data.sh wrote no ${src}/utt2label ('utt label' per utterance)"
        missing=$(awk 'NR == FNR { l[$1]; next } !($1 in l) { print $1 }' "${src}/utt2label" "${src}/utt2spk" \
            | head -n 5 | tr '\n' ' ')
        [ -z "${missing}" ] || die "${src}/utt2label: utterances without a label, e.g. ${missing}"
        echo "${data_set} ${local_data_opts}" > data/.cls_stage1.done
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    src=data/${data_set}
    [ -f "${src}/utt2label" ] || die "${src}/utt2label not found: run stage 1 (local/data.sh) first"
    setting="${train_list}|${dev_list}|${test_list}|${test_fraction}|${dev_fraction}"
    # shellcheck disable=SC2086
    if fresh "${lists}/.done" "${src}/utt2label" "${src}/wav.scp" ${train_list} ${dev_list} ${test_list} \
            && [ "$(cat "${lists}/.done")" = "${setting}" ]; then
        log "stage 2: split is up to date, skipping"
    else
        log "stage 2: splitting ${src} into ${data_set}_{train,dev,test}"
        mkdir -p "${lists}"
        list_opts=""
        for s in train dev test; do l=${s}_list; [ -z "${!l}" ] || list_opts+=" --${s}_list ${!l}"; done
        # shellcheck disable=SC2086
        pase-split-data "${src}" "data/${data_set}_train" "data/${data_set}_dev" "data/${data_set}_test" \
            --by label --test_fraction "${test_fraction}" --dev_fraction "${dev_fraction}" ${list_opts} \
            > data/log/split.log 2>&1 || die "split failed: $(tail -n 1 data/log/split.log)"
        for s in train dev test; do
            log "stage 2: data/${data_set}_${s}: $(wc -l < "data/${data_set}_${s}/utt2label") utterances"
        done
        # Every label of the corpus is a class; pase-split-data refused a split leaving one untrained.
        cut -d' ' -f2 "${src}/utt2label" | sort -u > "${lists}/classes"
        echo "${setting}" > "${lists}/.done"
    fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    if ${waveforms}; then
        log "stage 3: the classifier reads waveforms through the encoder, no features to make, skipping"
    else
        if [ "${feats_type}" = pase ]; then
            ckpt=$(encoder_ckpt); inputs="${ckpt} ${fe_cfg}"; feats_opts="--fe_cfg ${fe_cfg} --fe_ckpt ${ckpt} ${extract_args}"
        else
            inputs=${feats_config}; feats_opts="--feats_config ${feats_config}"
        fi
        for s in train dev test; do
            src=data/${data_set}_${s}
            dst=data/${data_set}_${s}_${feats_type}
            dump=dump/${feats_type}/${data_set}_${s}
            [ -f "${src}/utt2label" ] || die "${src} not found: run stage 2 first"
            # shellcheck disable=SC2086
            if fresh "${dst}/.done" "${src}/utt2label" ${inputs} && [ "$(cat "${dst}/.done")" = "${inputs}" ]; then
                log "stage 3: ${feats_type} features of ${s} are up to date, skipping"
                continue
            fi
            log "stage 3: ${feats_type} features of ${src} -> ${dump}, ${dst}"
            # shellcheck disable=SC2086
            ${train_cmd} JOB=1:"${nj}" "${exp}/log/features_${s}.JOB.log" pase-extract "${src}" "${dump}" \
                --feats_type "${feats_type}" --nj "${nj}" --job JOB --no_progress ${feats_opts}
            ${train_cmd} "${exp}/log/merge_features_${s}.log" pase-extract "${src}" "${dump}" --out_data_dir "${dst}" \
                --nj "${nj}" --merge
            utils/validate_data_dir.sh --no-text "${dst}" >> "${exp}/log/merge_features_${s}.log" 2>&1 \
                || die "${dst} fails validation (see ${exp}/log/merge_features_${s}.log)"
            echo "${inputs}" > "${dst}/.done"
        done
    fi
fi

# What the classifier reads: feature data dirs, or the waveform data dirs through the encoder.
set_dir() { if ${waveforms}; then echo "data/${data_set}_$1"; else echo "data/${data_set}_$1_${feats_type}"; fi; }
set_input() { if ${waveforms}; then echo "$(set_dir "$1")/wav.scp"; else echo "$(set_dir "$1")/feats.scp"; fi; }

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    for s in train dev; do [ -f "$(set_input ${s})" ] || die "$(set_input ${s}) not found: run stages 2-3 first"; done
    ft_opts=""; mode=""
    if ${finetune}; then ft_opts="--finetune --fe_cfg ${fe_cfg} --fe_ckpt $(encoder_ckpt)"; mode=", fine-tuning"; fi
    if ${freeze_encoder}; then
        ft_opts="--freeze_encoder --encoder_layers ${encoder_layers} --fe_cfg ${fe_cfg} --fe_ckpt $(encoder_ckpt)"
        mode=", frozen encoder, layers ${encoder_layers}"
    fi
    setting="${cls_config} ${pooling} ${ft_opts} ${cls_args}"
    if fresh "${exp}/.train.done" "$(set_input train)" "$(set_input dev)" "${cls_config}" "${lists}/classes" \
            && [ "$(cat "${exp}/.train.done")" = "${setting}" ]; then
        log "stage 4: training is complete, skipping"
    else
        log "stage 4: training ${exp} on $(set_dir train) (${pooling} classifier${mode}) on ${device}"
        # shellcheck disable=SC2086
        ${cuda_cmd} --gpu "${ngpu}" "${exp}/log/train.log" pase-cls-train --config "${cls_config}" \
            --train "$(set_dir train)" --dev "$(set_dir dev)" --classes "${lists}/classes" --out "${exp}" \
            --pooling "${pooling}" --device "${device}" ${ft_opts} ${cls_args}
        echo "${setting}" > "${exp}/.train.done"
    fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    [ -f "${exp}/model.pt" ] || die "${exp}/model.pt not found: run stage 4 first"
    for s in ${test_sets}; do
        [ -f "$(set_input "${s}")" ] || die "$(set_input "${s}") not found: run stages 2-3 first"
        if fresh "${exp}/decode_${s}/utt2pred" "${exp}/model.pt" "$(set_input "${s}")"; then
            log "stage 5: decisions on ${s} are up to date, skipping"
            continue
        fi
        log "stage 5: scoring $(set_dir "${s}") -> ${exp}/decode_${s}"
        ${cuda_cmd} --gpu "${ngpu}" "${exp}/log/score_${s}.log" pase-cls-eval score "${exp}/model.pt" \
            "$(set_dir "${s}")" "${exp}/decode_${s}" --device "${device}"
    done
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    decodes=""
    for s in ${test_sets}; do
        [ -f "${exp}/decode_${s}/utt2pred" ] || die "${exp}/decode_${s}/utt2pred not found: run stage 5 first"
        decodes+=" ${exp}/decode_${s}"
    done
    report_opts=""
    if [ -f "${exp}/layer_weights" ]; then report_opts="--layer_weights ${exp}/layer_weights"; fi
    log "stage 6: report"
    # shellcheck disable=SC2086
    pase-cls-eval report ${decodes} --results "${exp}/RESULTS.md" ${report_opts} \
        --title "${tag} on ${data_set}" > "${exp}/log/report.log" 2>&1 || die "report failed (see ${exp}/log/report.log)"
    grep -i "warning" "${exp}/log/report.log" >&2 || true
    log "results: ${exp}/RESULTS.md"
    sed -n '/^| set/,/^$/p' "${exp}/RESULTS.md" >&2
fi
log "done"
