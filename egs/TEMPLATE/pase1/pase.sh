#!/usr/bin/env bash
# PASE / PASE+ self-supervised pretraining template, shared by every egs/<corpus>/pase1 recipe.
# A recipe provides local/data.sh (corpus -> data/<sets>), conf/ and a run.sh calling this script,
# and optionally local/download.sh (gets the corpus: downloads, synthesises or checks it).
#
# Stages (each skips itself when its outputs are complete and redoes itself when they are not;
# every stage logs to exp/<tag>/log/ or data/log/):
#   0  local/download.sh: get the corpus (skips what is there)   the corpus (db.sh)
#   1  local/data.sh: corpus -> Kaldi data dirs                  data/<sets>
#   2  split the training set, holding out whole speakers        data/pase_train, data/pase_valid
#   3  worker target statistics                                  exp/<tag>/stats.json
#   4  self-supervised training (CPU, 1 GPU, or torchrun)         exp/<tag>/FE_e<N>.ckpt, state.pt, tensorboard/
#   5  features of every dump set with the last checkpoint       dump/<tag>/<set>/feats.{ark,scp}, data/<set>_<tag>/
#   6  linear probe of the frozen features (pase-probe): the     exp/<tag>/probe/*.json
#      last checkpoint vs the same encoder at random init vs MFCC, on probe_set's speakers
#   7  report: learning curves, probe table, RESULTS.md          exp/<tag>/learning_curves.png, RESULTS.md
set -euo pipefail

. utils/lib/recipe.sh

stage=0
stop_stage=7
tag=pase+                        # experiment name: exp/<tag>, dump/<tag>
train_set=train                  # data dir (made by local/data.sh) to pretrain on
dump_sets=""                     # data dirs to extract features for in stage 5 (default: train_set)
download_opts=""                 # options passed to local/download.sh (stage 0)
mirror=""                        # corpus mirror URL, passed to local/download.sh as --mirror ("": its default)
local_data_opts=""               # options passed to local/data.sh
valid_fraction=0.1               # fraction of training speakers held out for validation
fe_cfg=conf/PASE+.cfg            # encoder config
net_cfg=conf/workers+.cfg        # workers config
train_config=conf/train_pase+.yaml  # pase-train options (YAML); the flags below add to / override it
dtrans_cfg=""                    # PASE+ distortion config (pase-prepare-rirs / pase-make-distortion-banks)
train_args=""                    # extra pase-train arguments
stats_batches=20                 # batches for the statistics
stats_args=""                    # extra pase-compute-stats arguments
ngpu=0                           # GPUs per node for training (0: CPU; >1: torchrun DDP)
nproc=1                          # CPU training processes per node when ngpu=0 (>1: torchrun DDP over gloo)
num_nodes=1                      # nodes for training (>1: torchrun rendezvous, see cmd.sh)
master_addr=localhost            # rendezvous host for multi-node training
nj=4                             # feature extraction jobs; also the fewest speakers (at least 2) each side of the stage-2 split keeps, so utils/split_data.sh NJ works on both
extract_args=""                  # extra pase-extract arguments (e.g. --peak_norm --bf16)
probe_set=pase_valid             # data dir (utt2spk) of the speaker probe in stage 6 (default: held-out speakers; "": skip)
probe_args="--few 5 --test_per_class 5 --test_snr clean 5"  # pase-probe options
help_message="Usage: $0 [--stage N] [--stop_stage M] [--tag T] [--train_set S] [--dump_sets 'A B'] ..."
help_message+=$'\n\nStages:\n'$(stages_help "${BASH_SOURCE[0]}")

. utils/parse_options.sh
check_stages "${BASH_SOURCE[0]}"
. ./path.sh
. ./cmd.sh

[ $# -eq 0 ] || die "unexpected arguments: $*"
[ -n "${dump_sets}" ] || dump_sets=${train_set}
exp=exp/${tag}
dump=dump/${tag}
mkdir -p "${exp}/log" data/log

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    eval get_corpus "${download_opts}" '${mirror:+--mirror "${mirror}"}'
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    # Up to date: same local/data.sh options as last time, nothing newer in local/ or db.sh,
    # and every data dir this run uses present.
    complete=true
    for s in ${train_set} ${dump_sets}; do [ -f "data/${s}/wav.scp" ] || complete=false; done
    if ${complete} && fresh data/.stage1.done local/data.sh db.sh \
            && [ "$(cat data/.stage1.done)" = "${local_data_opts}" ]; then
        log "stage 1: data dirs are up to date, skipping"
    else
        log "stage 1: data preparation (local/data.sh ${local_data_opts})"
        eval local/data.sh "${local_data_opts}" 2>&1 | tee data/log/data.log
        for s in ${train_set} ${dump_sets}; do
            # Self-supervised corpora may have no transcripts: text is checked only when present.
            notext=""; [ -f "data/${s}/text" ] || notext=--no-text
            utils/validate_data_dir.sh --no-feats ${notext} "data/${s}" >> data/log/data.log 2>&1 \
                || die "data/${s} fails validation (see data/log/data.log)"
        done
        echo "${local_data_opts}" > data/.stage1.done
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    [ -d "data/${train_set}" ] || die "data/${train_set} not found: run stage 1 (local/data.sh) first"
    if fresh data/pase_train/.done "data/${train_set}/wav.scp"; then
        log "stage 2: held-out-speaker split is up to date, skipping"
    else
        log "stage 2: splitting data/${train_set} into data/pase_train and data/pase_valid (${valid_fraction} of the speakers)"
        pase-split-data "data/${train_set}" data/pase_train data/pase_valid \
            --valid_fraction "${valid_fraction}" --min_speakers "$(( nj > 2 ? nj : 2 ))" \
            > data/log/split.log 2>&1 || die "split failed: $(tail -n 1 data/log/split.log) (the recipe asks for max(--nj, 2) = $(( nj > 2 ? nj : 2 )) per side: run with a lower --nj; log: data/log/split.log)"
        touch data/pase_train/.done
    fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    [ -f data/pase_train/.done ] || die "data/pase_train not found: run stage 2 first"
    if fresh "${exp}/stats.json" data/pase_train/.done "${net_cfg}"; then
        log "stage 3: statistics are up to date, skipping"
    else
        log "stage 3: worker target statistics -> ${exp}/stats.json"
        # shellcheck disable=SC2086
        ${train_cmd} "${exp}/log/stats.log" pase-compute-stats --train_config "${train_config}" \
            --train_data data/pase_train --net_cfg "${net_cfg}" --out_file "${exp}/stats.json" \
            --max_batches "${stats_batches}" ${stats_args}
    fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    [ -f "${exp}/stats.json" ] || die "${exp}/stats.json not found: run stage 3 first"
    dtrans_opt=""; [ -n "${dtrans_cfg}" ] && dtrans_opt="--dtrans_cfg ${dtrans_cfg}"
    if fresh "${exp}/.train.done" "${exp}/stats.json" "${train_config}" "${fe_cfg}" "${net_cfg}" ${dtrans_cfg}; then
        log "stage 4: training is complete, skipping"
    else
        # (pase-train checks, where it runs, that each rank has its GPU)
        if [ "${ngpu}" -gt 0 ]; then
            procs=${ngpu}; what="${ngpu} GPU(s)"
        else
            procs=${nproc}; what="${nproc} CPU process(es)"
        fi
        run_cmd=${cuda_cmd}; train_log=${exp}/log/train.log; where=""
        rdzv="--rdzv_endpoint ${master_addr}:29400"
        if [ -n "${SLURM_JOB_ID:-}" ] && [ "${SLURM_NNODES:-1}" -gt 1 ]; then
            # A task of a multi-node allocation (srun ./run.sh, see cmd.sh): torchrun runs here, as
            # a job submitted from inside the allocation would wait for the nodes it holds, and the
            # rendezvous comes from Slurm: its nodes, the first one's address, the job id.
            [ "${SLURM_NTASKS:-1}" = "${SLURM_NNODES}" ] \
                || die "multi-node training needs one task per node (srun --ntasks-per-node 1), got ${SLURM_NTASKS} tasks on ${SLURM_NNODES} nodes"
            num_nodes=${SLURM_NNODES}
            first=$(scontrol show hostnames "${SLURM_JOB_NODELIST}" | head -n 1)
            master_addr=$(scontrol show node "${first}" | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p')
            master_addr=${master_addr:-${first}}
            port=$((29400 + SLURM_JOB_ID % 1000))  # two jobs starting on one node get two ports
            is_host=0; [ "${SLURM_NODEID}" = 0 ] && is_host=1
            rdzv="--rdzv_endpoint ${master_addr}:${port} --rdzv_id ${SLURM_JOB_ID} --rdzv_conf is_host=${is_host}"
            run_cmd=utils/run_local.sh; train_log=${exp}/log/train.node${SLURM_NODEID}.log
            where=", Slurm job ${SLURM_JOB_ID} node ${SLURM_NODEID} (${SLURMD_NODENAME:-$(hostname)}), rendezvous ${master_addr}:${port}"
        fi
        if [ "${procs}" -gt 1 ] || [ "${num_nodes}" -gt 1 ]; then
            launcher="python -m torch.distributed.run --nnodes ${num_nodes} --nproc_per_node ${procs}"
            launcher+=" --rdzv_backend c10d ${rdzv} -m pase.bin.train"
        else
            launcher="pase-train"
        fi
        log "stage 4: training ${exp} (${what} x ${num_nodes} node(s)${where}); resumes when interrupted"
        # shellcheck disable=SC2086
        ${run_cmd} --gpu "${ngpu}" "${train_log}" ${launcher} --config "${train_config}" \
            --train_data data/pase_train --valid_data data/pase_valid --do_eval \
            --fe_cfg "${fe_cfg}" --net_cfg "${net_cfg}" --stats "${exp}/stats.json" \
            --save_path "${exp}" --ngpu "$(( ngpu > 0 ? 1 : 0 ))" --no_progress ${dtrans_opt} ${train_args}
        touch "${exp}/.train.done"
    fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    ckpt=$(latest_checkpoint "${exp}")
    [ -n "${ckpt}" ] || die "no ${exp}/FE_e*.ckpt: run stage 4 first"
    for s in ${dump_sets}; do
        [ -d "data/${s}" ] || die "data/${s} not found: run stage 1 first"
        if fresh "data/${s}_${tag}/feats.scp" "${ckpt}" "data/${s}/wav.scp"; then
            log "stage 5: features of ${s} are up to date, skipping"
            continue
        fi
        log "stage 5: ${ckpt} features of data/${s} -> ${dump}/${s}, data/${s}_${tag}"
        # shellcheck disable=SC2086
        ${train_cmd} JOB=1:"${nj}" "${exp}/log/extract_${s}.JOB.log" pase-extract "data/${s}" "${dump}/${s}" \
            --fe_cfg "${fe_cfg}" --fe_ckpt "${ckpt}" --nj "${nj}" --job JOB --no_progress ${extract_args}
        ${train_cmd} "${exp}/log/merge_${s}.log" pase-extract "data/${s}" "${dump}/${s}" \
            --out_data_dir "data/${s}_${tag}" --nj "${nj}" --merge
        utils/validate_data_dir.sh --no-text "data/${s}_${tag}" >> "${exp}/log/merge_${s}.log" 2>&1 \
            || die "data/${s}_${tag} fails validation (see ${exp}/log/merge_${s}.log)"
    done
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ] && [ -n "${probe_set}" ]; then
    ckpt=$(latest_checkpoint "${exp}")
    [ -n "${ckpt}" ] || die "no ${exp}/FE_e*.ckpt: run stage 4 first"
    [ -f "data/${probe_set}/utt2spk" ] || die "data/${probe_set}/utt2spk not found: run stage 2 (or set --probe_set)"
    # The random-init control uses the training seed: the pretrained encoder's own step 0.
    seed=$(python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['run']['seed'])" "${exp}/train.yaml")
    mkdir -p "${exp}/probe"
    name=$(basename "${ckpt}" .ckpt)
    for enc in "${name}:--fe_ckpt ${ckpt} --fe_cfg ${fe_cfg}" "random_init:--seed ${seed} --fe_cfg ${fe_cfg}" "mfcc:--feats mfcc"; do
        out=${exp}/probe/${enc%%:*}.json
        if fresh "${out}" "data/${probe_set}/wav.scp" "${ckpt}"; then
            log "stage 6: probe ${out} is up to date, skipping"
            continue
        fi
        log "stage 6: speaker probe of ${enc%%:*} on data/${probe_set} -> ${out}"
        # shellcheck disable=SC2086
        ${train_cmd} "${exp}/log/probe_${enc%%:*}.log" pase-probe "data/${probe_set}" ${enc#*:} \
            --cache_dir "${exp}/probe/cache" --out_json "${out}" --no_progress ${probe_args}
    done
    # Probes of earlier checkpoints (not run again) would mix into the table: keep the current ones.
    for f in "${exp}"/probe/FE_e*.json; do [ "${f}" = "${exp}/probe/${name}.json" ] || rm -f "${f}"; done
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    [ -f "${exp}/history.json" ] || die "${exp}/history.json not found: run stage 4 first"
    log "stage 7: report"
    pase-report "${exp}" --title "${tag} on ${train_set}" > "${exp}/log/report.log" 2>&1 \
        || die "report failed (see ${exp}/log/report.log)"
    log "results: ${exp}/RESULTS.md, curves: ${exp}/learning_curves.png"
fi
log "done"
