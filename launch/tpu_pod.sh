#!/usr/bin/env bash
# Runs an animojax job on every host of a Cloud TPU VM or pod slice (the same command on all).
#
#   export NAME=my-v5e ZONE=us-west4-a
#   bash launch/tpu_pod.sh setup            # copy this checkout to every worker, install
#   bash launch/tpu_pod.sh run --config=animo --workdir=/gcs/BUCKET/runs/animo1 \
#       --config.data.data_dir=/gcs/BUCKET/tfds --config.data.phi=/gcs/BUCKET/pose_coeffs.npy \
#       --config.loss.vgg19_weights=/gcs/BUCKET/vgg19.npz
#   bash launch/tpu_pod.sh logs [WORKER]    # follow worker 0's (or WORKER's, or all) log
#   bash launch/tpu_pod.sh stop             # SIGTERM: checkpoint, every host stops at one step
#
# Every worker must run the job: one alone hangs in jax.distributed.initialize(). The workdir must
# be storage every worker shares, at the same path (the bucket mounted with gcsfuse at /gcs/BUCKET
# on every worker): each worker writes its part of a checkpoint. The trainer writes the workdir,
# Φ and weights with local-file APIs, so gs:// paths work for data_dir only (TFDS reads them).
# `run` starts the job detached (setsid + nohup), so it survives a dropped ssh session; rerunning
# the same `run` after `stop` (or a crash) resumes from the last checkpoint.
set -euo pipefail
: "${NAME:?set NAME to the TPU VM name}" "${ZONE:?set ZONE to its zone}"
cmd=${1:?usage: tpu_pod.sh setup|run ARGS...|logs [WORKER]|stop}; shift
here=$(cd "$(dirname "$0")/.." && pwd)
# Per worker, on its own disk: the code, its virtualenv, the job's pid and logs.
code='~/animojax' venv='~/animojax_venv' logs='~/animojax_logs' pidfile='~/animojax.pid'
ssh_on() {  # ssh_on WORKER COMMAND
  gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker="$1" --command "$2"
}

case "$cmd" in
  setup)
    # A tarball rather than scp --recurse, which would nest a second copy inside the first on
    # a re-run; uncommitted changes travel too. TFDS data and weights stay in the bucket.
    tarball=$(mktemp --suffix=.tar.gz)
    trap 'rm -f "$tarball"' EXIT
    tar -C "$here" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ -czf "$tarball" .
    gcloud compute tpus tpu-vm scp "$tarball" "$NAME":animojax.tar.gz --zone="$ZONE" --worker=all
    # Same jax range as pyproject.toml; libtpu comes with jax[tpu] from PyPI.
    ssh_on all "set -e; rm -rf $code; mkdir -p $code; tar -xzf ~/animojax.tar.gz -C $code
      python3 -m venv $venv; $venv/bin/pip install -q -U pip
      $venv/bin/pip install -q -e $code 'jax[tpu]>=0.7,<0.12'"
    ;;
  run)
    for a in "$@"; do
      if [[ $a == --workdir=gs://* ]]; then
        echo "error: gs:// workdirs are not supported yet: mount the bucket with gcsfuse on every" \
             "worker and pass the mounted path (see the header)" >&2
        exit 2
      fi
    done
    printf -v args '%q ' "$@"
    # Refuses to start a second job next to a running one. The pid is the python process itself
    # (setsid does not fork from a non-interactive shell), so `stop` signals exactly it.
    ssh_on all "set -e; cd $code; mkdir -p $logs
      if [ -f $pidfile ] && kill -0 \$(cat $pidfile) 2>/dev/null; then
        echo \"\$(hostname): a job is running (pid \$(cat $pidfile)); stop it first\" >&2; exit 1
      fi
      log=$logs/\$(date +%Y%m%d-%H%M%S).log
      setsid nohup $venv/bin/python -m animojax.launch --multihost $args >\"\$log\" 2>&1 </dev/null &
      echo \$! > $pidfile; ln -sfn \"\$log\" $logs/latest.log
      echo \"\$(hostname): started pid \$!, log \$log\""
    ;;
  logs)
    # Ctrl-C ends only the tail; the job keeps running.
    ssh_on "${1:-0}" "tail -n 100 -F $logs/latest.log"
    ;;
  stop)
    # Every process gets SIGTERM: they agree on a step, save one checkpoint and exit.
    ssh_on all "if [ -f $pidfile ] && kill -0 \$(cat $pidfile) 2>/dev/null; then
      kill -TERM \$(cat $pidfile); echo \"\$(hostname): SIGTERM sent\"
      else echo \"\$(hostname): no job running\"; fi"
    ;;
  *) echo "unknown command $cmd (setup|run|logs|stop)" >&2; exit 2 ;;
esac
