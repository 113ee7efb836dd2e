#!/usr/bin/env bash
# Usage: tools/slurm_train_incremental.sh PARTITION JOB_NAME CONFIG [args]
#
# Runs every step with srun (mmseg's launcher). SLURM sends SIGUSR1 to the
# tasks 120 s before the time limit (--signal=USR1@120; SIGTERM comes on a
# preemption): each process then saves a checkpoint at its current
# iteration and exits with status 75. Inside an sbatch job (SLURM_JOB_ID set)
# the script then requeues the job (scontrol requeue; submit with
# --requeue), and the requeued run continues with --resume. Run it again by
# hand with --resume outside sbatch.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL=${SIGNAL:-USR1@120}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=${@:4}
PREEMPTED=75
# A requeued job continues its work dir.
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
    case " ${PY_ARGS} " in *" --resume "*) ;; *) PY_ARGS="${PY_ARGS} --resume" ;; esac
fi

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --signal=${SIGNAL} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u $(dirname "$0")/train_incremental.py ${CONFIG} --launcher="slurm" ${PY_ARGS}
STATUS=$?
if [ ${STATUS} -eq ${PREEMPTED} ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    scontrol requeue "${SLURM_JOB_ID}"
fi
exit ${STATUS}
