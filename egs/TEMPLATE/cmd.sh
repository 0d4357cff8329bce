# How jobs run: cmd_backend=local (default): background processes on this machine; slurm: each
# job is submitted with sbatch and waited for (utils/run_slurm.sh).  PASE_CMD_BACKEND sets it.
#   train_cmd: CPU jobs (statistics, feature extraction); cuda_cmd: the training job (the
#   templates add --gpu N from their --ngpu).
cmd_backend=${PASE_CMD_BACKEND:-local}
# Slurm requests (utils/run_slurm.sh options: --partition, --mem, --time, --gpu), per job: size
# them to the nodes, sbatch refuses a --mem above a node's RealMemory.  PASE_SLURM_CPU_OPTS and
# PASE_SLURM_GPU_OPTS set them.
slurm_cpu_opts=${PASE_SLURM_CPU_OPTS:---mem 4G --time 4:00:00}
slurm_gpu_opts=${PASE_SLURM_GPU_OPTS:---mem 16G --time 72:00:00}
case ${cmd_backend} in
  local) export train_cmd="utils/run_local.sh" cuda_cmd="utils/run_local.sh" ;;
  slurm) export train_cmd="utils/run_slurm.sh ${slurm_cpu_opts}" cuda_cmd="utils/run_slurm.sh ${slurm_gpu_opts}" ;;
  *) echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2; return 1 ;;
esac

# Multi-node training (pase1): one allocation whose tasks, one per node, each run stage 4; inside
# it the template runs torchrun itself (not through cuda_cmd: no job is submitted from the
# allocation) and takes the rendezvous from Slurm (nodes, first node's address, the job id):
#   sbatch -N 2 --ntasks-per-node 1 --gres gpu:4 --mem 64G --time 72:00:00 \
#     --wrap "srun ./run.sh --stage 4 --stop_stage 4 --ngpu 4"
# Without Slurm: ./run.sh --stage 4 --stop_stage 4 --num_nodes N --ngpu G --master_addr <first
# node> on each node (torchrun's c10d rendezvous joins them).
