#!/usr/bin/env bash
# Learning curve of a pretraining run as the probe sees it: pase-probe on every FE_e<N>.ckpt of
# exp/<tag> (and the same encoder at random init, the run's step 0), one row per checkpoint with
# the training steps and seconds of audio seen.
#   local/probe_curve.sh exp/pase+ data/test_other [pase-probe options, e.g. --test_snr clean 5]
set -euo pipefail
[ $# -ge 2 ] || { echo "Usage: $0 <exp dir> <probe data dir> [pase-probe options]" >&2; exit 1; }
exp=$1; data=$2; shift 2
. ./path.sh
. utils/lib/recipe.sh
out=${exp}/probe_curve
mkdir -p "${out}"
read -r seed bpe batch chunk world < <(python -c "import sys, yaml; r = yaml.safe_load(open(sys.argv[1]))['run']; \
print(r['seed'], r['batches_per_epoch'], r['batch_size'], r['chunk_size'], r['world_size'])" "${exp}/train.yaml")
pase-probe "${data}" --seed "${seed}" --cache_dir "${out}/cache" --out_json "${out}/e-1.json" --no_progress "$@" >/dev/null
for ckpt in $(checkpoints "${exp}"); do
    n=$(basename "${ckpt}" .ckpt); n=${n#FE_e}
    pase-probe "${data}" --fe_ckpt "${ckpt}" --cache_dir "${out}/cache" --out_json "${out}/e${n}.json" --no_progress "$@" >/dev/null
done
python - "${out}" "${bpe}" "${batch}" "${chunk}" "${world}" <<'PY'
import json, sys
from pathlib import Path
out, bpe, batch, chunk, world = Path(sys.argv[1]), *map(int, sys.argv[2:])
recs = sorted(((int(p.stem[1:]), json.loads(p.read_text())) for p in out.glob("e*.json")), key=lambda r: r[0])
conds = [(r["layer"], r["condition"]) for r in recs[0][1]["results"]]
print("epoch  steps  audio_s  " + "  ".join(f"{l}/{c}".rjust(14) for l, c in conds))
for e, rec in recs:
    steps = (e + 1) * bpe
    by = {(r["layer"], r["condition"]): r for r in rec["results"]}
    print(f"{e:5d}  {steps:5d}  {steps * batch * world * chunk / 16000:7.0f}  "
          + "  ".join(f"{by[k]['accuracy']:.3f}±{by[k]['std']:.3f}".rjust(14) for k in conds))
PY
