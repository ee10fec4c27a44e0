#!/usr/bin/env bash
# Runs an animojax job on every host of a Cloud TPU pod slice (same command on all workers).
#
#   NAME=my-v5p ZONE=us-east5-a bash launch/tpu_pod.sh setup                # copy code + install
#   NAME=my-v5p ZONE=us-east5-a bash launch/tpu_pod.sh run \
#       --config=animo --workdir=gs://BUCKET/runs/animo1 \
#       --config.data.data_dir=gs://BUCKET/tfds --config.data.phi=gs://BUCKET/pose_coeffs.npy \
#       --config.loss.vgg19_weights=gs://BUCKET/vgg19.npz
#
# Every worker must run the job: starting one alone hangs in jax.distributed.initialize().
# Build TFDS datasets once (on a CPU VM) and copy them to the bucket first (README).
set -euo pipefail
: "${NAME:?set NAME to the TPU VM name}" "${ZONE:?set ZONE}"
cmd=${1:?usage: tpu_pod.sh setup|run ARGS...}; shift
here=$(cd "$(dirname "$0")/.." && pwd)
ssh_all() { gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=all --command "$1"; }

case "$cmd" in
  setup)
    gcloud compute tpus tpu-vm scp --recurse "$here" "$NAME":animojax --zone="$ZONE" --worker=all
    ssh_all "cd animojax && python3 -m venv ~/venv && ~/venv/bin/pip install -q -U pip && \
      ~/venv/bin/pip install -q -e . 'jax[tpu]'"
    ;;
  run)
    printf -v args '%q ' "$@"
    ssh_all "cd animojax && ~/venv/bin/python -m animojax.launch --multihost $args"
    ;;
  *) echo "unknown command $cmd (setup|run)" >&2; exit 2 ;;
esac
