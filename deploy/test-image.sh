#!/usr/bin/env bash
# `make test-image` (and CI after `make test`): builds the image, then checks what an operator
# would notice, through the real image and engine:
#   1. `alphavol demo --json` in the image: exit 0, every demo user at its target (or skipped,
#      already there), nothing left open, the supervisor exited 0;
#   2. the image runs as a non-root user, with `alphavol` as its entry point;
#   3. two containers as nodes of one pool against a throw-away PostgreSQL (deploy/test_pool.py),
#      once the image's `alphavol run` has --node (issue 22's store:).
# Fails (non-zero) on any of them. BASE, IMAGE, ENGINE: see deploy/engine.sh.
set -euo pipefail
. "$(dirname "$0")/engine.sh"

started=$SECONDS
"$ROOT/deploy/build-image.sh"
say "image built in $((SECONDS - started)) s"

fail() { say "FAILED: $*"; exit 1; }
run() { "$ENGINE" run --rm --network=host "$@"; }

# --- 1. the demo in the image
started=$SECONDS
summary=$(run "$IMAGE" demo --json) || fail "alphavol demo exited $? in $IMAGE"
python3 - "$summary" <<'EOF' || fail "alphavol demo's summary in $IMAGE"
import json, sys

summary = json.loads(sys.argv[1])
rows = summary["rows"]
problems = [
    f"user {r['user_id']} {r['strategy_id']}: {r['state']}, reached={r['reached']},"
    f" open orders {r['open_orders']}"
    for r in rows
    if r["state"] not in ("DONE", "SKIPPED") or not r["reached"] or r["open_orders"]
]
if not rows:
    problems.append("no rows")
if summary["supervisor_exit"] != 0 or not summary["nothing_left_open"]:
    problems.append(f"supervisor exit {summary['supervisor_exit']},"
                    f" nothing_left_open={summary['nothing_left_open']}")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
say "demo in the image: every user at target, nothing open ($((SECONDS - started)) s)"

# --- 2. non-root, alphavol as the entry point
uid=$(run --entrypoint id "$IMAGE" -u) || fail "id in $IMAGE"
[ "$uid" != 0 ] || fail "$IMAGE runs as root"
usage=$(run "$IMAGE" --help) || fail "alphavol --help in $IMAGE"
[[ $usage == *"Usage: alphavol"* ]] || fail "the entry point of $IMAGE is not alphavol"
say "runs as uid $uid, entry point alphavol"

# --- 3. two containers as nodes against one PostgreSQL (issue 22)
run_usage=$(run "$IMAGE" run --help) || fail "alphavol run --help in $IMAGE"
if [[ $run_usage == *--node* ]]; then
    started=$SECONDS
    "${PYTHON:-$ROOT/.venv/bin/python}" "$ROOT/deploy/test_pool.py" --engine "$ENGINE" --image "$IMAGE"
    say "two-node pool: passed ($((SECONDS - started)) s)"
else
    say "two-node pool: skipped (this alphavol's run has no --node yet)"
fi
say "passed"
