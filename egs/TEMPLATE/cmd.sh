# How jobs run. Local (default): background processes on this machine.
#   train_cmd: CPU jobs (statistics, feature extraction); cuda_cmd: the training job.
export train_cmd="utils/run_local.sh"
export cuda_cmd="utils/run_local.sh"

# Slurm: jobs are submitted with sbatch and waited for; options go to sbatch.
# export train_cmd="utils/run_slurm.sh --partition cpu --mem 8G --time 4:00:00"
# export cuda_cmd="utils/run_slurm.sh --partition gpu --mem 64G --time 72:00:00"
# Multi-node training: set --num_nodes N --ngpu G in run.sh and start pase.sh's stage 4 on each
# node (e.g. an sbatch script running `srun ./run.sh --stage 4 --stop_stage 4 --num_nodes N
# --ngpu G --master_addr <first node>`): torchrun's c10d rendezvous joins them.
