#!/usr/bin/env bash
# Rebuild the shipped checkpoints with the project's own CLI, score them, and write the model cards.
#
#   bash checkpoints/make_all.sh                                          # every model
#   bash checkpoints/make_all.sh mnist_conditional fashion_conditional    # only these
#   PYTHON=/path/to/python bash checkpoints/make_all.sh
#   RETRAIN_JUDGES=1 bash checkpoints/make_all.sh     # also retrain the judges (changes the metric!)
#
# Needs MNIST and Fashion-MNIST in Keras's cache (KERAS_HOME) or a network connection.
# Each model is one `python -m vae_core train --preset NAME` line; that line is recorded in its card.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# numpy (the style-mixture EM) on one BLAS thread: multi-threaded OpenBLAS spins badly on a busy
# machine, and the fit is small. TensorFlow keeps its own thread pool.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
ALL=(mnist_conditional mnist_2d_kl_on mnist_2d_kl_off fashion_conditional fashion_2d_kl_on)
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=("${ALL[@]}")
start=$(date +%s)
run() { echo "+ $*" >&2; "$@"; }

# 1. Judges: independent CNN classifiers trained on the real training sets (score samples only).
#    They define the quality metrics, so existing judges are kept unless RETRAIN_JUDGES=1.
judge() {  # dataset epochs
    local out=checkpoints/judges/$1.keras
    if [ -f "$out" ] && [ "${RETRAIN_JUDGES:-0}" != 1 ]; then
        echo "judge $out present: kept (RETRAIN_JUDGES=1 retrains it)" >&2
    else
        run "$PY" -m vae_core judge --dataset "$1" --epochs "$2" --seed 0 --out "$out"
    fi
}
judge mnist 6
judge fashion_mnist 8

# 2. Each model is one preset of vae_core.config.PRESETS (docs/tuning.md says how the
#    conditional recipes were chosen).
preset() {
    case "$1" in
    mnist_conditional) echo sharp_conditional_mnist ;;
    fashion_conditional) echo sharp_conditional_fashion ;;
    mnist_2d_kl_on|mnist_2d_kl_off|fashion_2d_kl_on) echo "$1" ;;
    *) echo "unknown checkpoint $1 (choose from ${ALL[*]})" >&2; exit 2 ;;
    esac
}
build() {
    local name=$1 recipe
    recipe=$(preset "$name")
    run "$PY" -m vae_core train --preset "$recipe" --out "checkpoints/$name"
}
for name in "${MODELS[@]}"; do build "$name"; done

# 3. The conditional models' Dense weights go to int8 with per-channel scales (a quarter of the
#    file size, inference only; the ELBO is measured again on them).
for name in "${MODELS[@]}"; do
    case "$name" in *_conditional) run "$PY" -m vae_core int8 "checkpoints/$name" ;; esac
done

# 4. Score each rebuilt checkpoint with its dataset's judge (adds "quality" to card.json:
#    agreement, per-class agreement, Frechet distances and their ratio to the real-data floor).
for name in "${MODELS[@]}"; do
    run "$PY" -m vae_core quality "checkpoints/$name" > /dev/null
done

end=$(date +%s)
printf '{"total_seconds": %d, "finished": "%s", "models": "%s"}\n' "$((end - start))" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${MODELS[*]}" > checkpoints/build_info.json
run "$PY" checkpoints/write_readmes.py
echo "Rebuilt ${MODELS[*]} in $((end - start)) s."
