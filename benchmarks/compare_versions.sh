#!/usr/bin/env bash
# Before/after benchmarks of several commits, interleaved so that each sees the same machine load:
# each commit is checked out in its own worktree and its own benchmarks/*.py run against its own
# code (PYTHONPATH), with the same trained models (DIGITLENS_HOME).
#
#   bash benchmarks/compare_versions.sh OUT_DIR REV [REV ...]    e.g.  /tmp/cmp adb23e8 6be22a1 HEAD
#
# Writes OUT_DIR/<bench>_<rev>.txt for bench_cnn, bench_train, bench_explain and load_test (the
# sizes below keep the whole comparison to about 10 minutes on 2 cores).
set -euo pipefail
OUT=$1; shift
PY=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export DIGITLENS_HOME=${DIGITLENS_HOME:-$OUT/home}
mkdir -p "$OUT"
for rev in "$@"; do
  rm -rf "$OUT/tree_$rev"; git -C "$ROOT" worktree add -f --detach "$OUT/tree_$rev" "$rev" >/dev/null
done
first=$1
[ -f "$DIGITLENS_HOME/models/mlp.npz" ] || PYTHONPATH=$OUT/tree_$first/src $PY -m digitlens train --model mlp
[ -f "$DIGITLENS_HOME/models/cnn.npz" ] || PYTHONPATH=$OUT/tree_$first/src $PY -m digitlens train --model cnn --epochs 3
run() {  # run BENCH ARGS... for every revision, interleaved
  local bench=$1; shift
  for rev in "${REVS[@]}"; do
    PYTHONPATH=$OUT/tree_$rev/src $PY "$OUT/tree_$rev/benchmarks/$bench.py" "$@" > "$OUT/${bench}_$rev.txt" 2>&1
  done
}
REVS=("$@")
run bench_cnn --repeats 3
run bench_train --repeats 2 --batch-sizes 64
run bench_explain --n 40 --agreement 10
run load_test --requests 100 --full-requests 10 --home "$DIGITLENS_HOME"
for rev in "$@"; do git -C "$ROOT" worktree remove --force "$OUT/tree_$rev"; done
