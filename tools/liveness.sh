#!/usr/bin/env bash
# The liveness models and reports/liveness from scratch on a CPU (finished models are reused):
#   bash tools/liveness.sh train   # NUAA's ablation models, the motion models and the cross-source model
#   bash tools/liveness.sh eval    # every table of reports/liveness/liveness.md, in one run
# SETS holds the presentation sets (one folder each, live/ and attack/; reports/liveness/sources.md says where
# each comes from: they are not redistributed).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SETS=${RNNFACE_PAD_SETS:-../pad-sets}
mapfile -t SOURCES < <(find "$SETS" -mindepth 1 -maxdepth 1 \( -type d -o -type l \) | sort)

train() {  # train OUT [train-liveness options]: skipped when OUT exists
    local out=$1
    shift
    [ -f "$out" ] || "$BIN/rnnface" train-liveness --out "$out" "$@"
}

case "${1:-}" in
train)
    for cell in none gru lstm; do
        train "runs/liveness/$cell.pt" --cell "$cell"         # texture, NUAA only (none.pt is the shipped liveness.pt)
        train "runs/liveness/lbp-$cell.pt" --cell "$cell" --frontend texture --frontend lbp      # + local binary patterns
        train "runs/liveness/motion-$cell.pt" --cell "$cell" --frontend texture --frontend geometry
    done
    train runs/liveness/context.pt --cell none --frontend texture --frontend minifasnet \
        $(printf -- '--source %s ' "${SOURCES[@]}")                                           # across sources
    ;;
eval)
    "$BIN/rnnface" eval liveness -m shipped=src/rnnface/weights/liveness.pt -m cross-source=runs/liveness/context.pt \
        -m GRU=runs/liveness/gru.pt -m LSTM=runs/liveness/lstm.pt \
        -m LBP-per-frame=runs/liveness/lbp-none.pt -m LBP-GRU=runs/liveness/lbp-gru.pt -m LBP-LSTM=runs/liveness/lbp-lstm.pt \
        -m motion-per-frame=runs/liveness/motion-none.pt -m motion-GRU=runs/liveness/motion-gru.pt \
        -m motion-LSTM=runs/liveness/motion-lstm.pt \
        --pipeline --active --other $(printf -- '--set %s ' "${SOURCES[@]}") --per-set 50 \
        $(printf -- '--cross-source %s ' "${SOURCES[@]}") --out reports/liveness
    ;;
*)
    echo "usage: bash tools/liveness.sh train|eval" >&2
    exit 2
    ;;
esac
