#!/usr/bin/env bash
# Soak with faults (`make soak`): simulated traffic on a stack of its own while faults are
# injected, then a reconcile that must find nothing lost and the analytics exact.
#
#   scripts/soak.sh                    # 10 minutes of traffic (plus setup and checks)
#   SOAK_MINUTES=3 scripts/soak.sh     # shorter
#
# Loopback only: its own moto_server (SOAK_EMULATOR_PORT, 4581), Terraform state
# (.local/terraform-4581), runner checkpoints and logs (.local/soak/), and local-runner on
# SOAK_LISTEN (127.0.0.1:3081) running the debug binaries, as `make run` does.
#
# Traffic: orders-sim at SOAK_RATE (4) requests/s with some invalid requests, orders for
# missing products, cancellations and shipments. Every SOAK_FAULT_EVERY (30) seconds, in turn:
#   pause    the emulator is frozen with SIGSTOP for 3 × SOAK_PAUSE_SECONDS (8) and, the next
#            time, SOAK_PAUSE_SECONDS, then SIGCONT (moto keeps its state in memory: it is
#            paused, never killed) — timeouts, retries, exhausted retries;
#   crash    the runner and its function processes are killed with SIGKILL and restarted on
#            the same checkpoint file;
#   poison   three records no consumer can use are put on the stream (orders-bench poison);
#   restart  the runner is stopped cleanly (SIGTERM) and started again;
#   aws      for SOAK_FAULT_EVERY seconds the fault proxy the functions talk through
#            (microburst, scripts/fault-proxy.sh, on SOAK_FAULT_PROXY_PORT 4582) answers a
#            share of their DynamoDB and Kinesis requests with throttling, transaction
#            conflicts, 5xx, latency, resets and lost answers (scripts/fault-rules.json).
# After each fault, Lambda on-failure records (retries exhausted) in the dead-letter queues
# are replayed with `orders-admin dlq replay`, as an operator would.
#
# Pass criteria (exit 1 otherwise):
#   - the reconcile (orders-sim --reconcile-ledger): every accepted order reached the status
#     its plan says (processed, failed for a missing product, cancelled, shipped, delivered),
#     no order the sim was not told about, no request answered against its plan, and every
#     analytics figure equal to what was placed — placed = processed + failed, nothing lost;
#   - the dead-letter queues hold poison only, and every poison record injected is in both
#     consumers' queues; no on-failure record is left unreplayed; the relay's queue is empty
#     (every stored order version reached the stream).
# Report: .local/soak/summary.json and on stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.local/soak"
mkdir -p "$WORK"

MINUTES="${SOAK_MINUTES:-10}"
export EMULATOR_PORT="${SOAK_EMULATOR_PORT:-4581}"
LISTEN="${SOAK_LISTEN:-127.0.0.1:3081}"
LAMBDA_LISTEN="${SOAK_LAMBDA_LISTEN:-127.0.0.1:3082}"
# Its own development issuer: sign-in is on, as with `make run`.
ISSUER_LISTEN="${SOAK_ISSUER_LISTEN:-127.0.0.1:3083}"
export ORDERS_ISSUER="http://$ISSUER_LISTEN" ORDERS_ISSUER_DIR="$ROOT/.local/dev-oidc"
RATE="${SOAK_RATE:-4}"
FAULT_EVERY="${SOAK_FAULT_EVERY:-30}"
PAUSE_SECONDS="${SOAK_PAUSE_SECONDS:-8}"
export AWS_ENDPOINT_URL="http://127.0.0.1:$EMULATOR_PORT"
export FAULT_PROXY_PORT="${SOAK_FAULT_PROXY_PORT:-4582}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
OUTPUTS="$ROOT/.local/outputs-$EMULATOR_PORT.json"
PIDFILE="$ROOT/.local/moto-$EMULATOR_PORT.pid"

say() { echo "==> soak: $*" >&2; }
die() { echo "soak: error: $*" >&2; exit 1; }

[ "$EMULATOR_PORT" != 4566 ] || die "SOAK_EMULATOR_PORT must not be 4566 (make run's emulator)"
for tool in cargo terraform python3 curl setsid; do
  command -v "$tool" >/dev/null || die "$tool is required but not on PATH"
done
if curl -s -o /dev/null --max-time 1 "http://$LISTEN/"; then
  die "something already listens on $LISTEN; set SOAK_LISTEN"
fi
# The emulator is paused with signals, so it must be ours, not one that happens to answer.
if curl -s -o /dev/null --max-time 2 "$AWS_ENDPOINT_URL/"; then
  die "port $EMULATOR_PORT is in use; set SOAK_EMULATOR_PORT to a free port"
fi

moto_pid=""
runner_pid=""
sim_pid=""
stop_runner() {
  local signal="${1:-TERM}"
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then
    # The runner leads its own process group: the signal reaches its function processes too.
    kill "-$signal" -- "-$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  runner_pid=""
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$moto_pid" ]; then kill -CONT "$moto_pid" 2>/dev/null || true; fi
  if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then kill -TERM "$sim_pid" 2>/dev/null || true; fi
  stop_runner TERM
  scripts/fault-proxy.sh stop >/dev/null 2>&1 || true
  scripts/emulator.sh stop >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building (debug, as make run)"
cargo build --quiet --workspace --bins
scripts/emulator.sh start
moto_pid="$(cat "$PIDFILE")"
say "deploying infra/envs/local to $AWS_ENDPOINT_URL"
scripts/deploy-local.sh >/dev/null
output() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["value"])' "$OUTPUTS" "$1"; }
api_id="$(output api_id)"
stream="$(output events_stream_name)"
queues=("$(output process_order_dlq_url)" "$(output aggregate_dlq_url)")
# The relay retries forever and no poison is written to the table: its queue stays empty.
relay_dlq="$(output relay_dlq_url)"

scripts/fault-proxy.sh start
fault_proxy="$(scripts/fault-proxy.sh url)"

CHECKPOINTS="$WORK/checkpoints.json"
rm -f "$CHECKPOINTS" "$WORK"/poison-*.json
: >"$WORK/runner.log"
: >"$WORK/faults.log"
start_runner() {
  setsid target/debug/local-runner --api-id "$api_id" --listen "$LISTEN" --lambda-listen "$LAMBDA_LISTEN" --bin-dir target/debug \
    --issuer-listen "$ISSUER_LISTEN" --issuer-dir "$ORDERS_ISSUER_DIR" \
    --endpoint "$AWS_ENDPOINT_URL" --functions-endpoint "$fault_proxy" --checkpoint-file "$CHECKPOINTS" \
    --metrics-file "$WORK/metrics.jsonl" --ws-api-id "$(output live_api_id)" --ws-listen 127.0.0.1:0 \
    >>"$WORK/runner.log" 2>&1 &
  runner_pid=$!
  for _ in $(seq 1 240); do
    curl -s -o /dev/null --max-time 2 "http://$LISTEN/health" && return 0
    kill -0 "$runner_pid" 2>/dev/null || { tail -n 30 "$WORK/runner.log" >&2; die "local-runner exited"; }
    sleep 0.5
  done
  die "local-runner did not answer on $LISTEN"
}
start_runner
say "stack up on http://$LISTEN (logs: .local/soak/)"
# orders-sim acts as staff (it places orders for its customers and runs the catalog).
export ORDERS_TOKEN="$(target/debug/orders-admin token --staff --lifetime-minutes $((MINUTES + 60)))"

fault() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$WORK/faults.log" >&2; }

# Replays the on-failure records (retries exhausted) of both queues; poison stays put.
replay_failures() {
  local q n
  for q in "${queues[@]}"; do
    n="$(target/debug/orders-admin dlq list --queue "$q" --json --max 1000 2>/dev/null \
      | python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if l.strip() and "record" not in json.loads(l)))' || echo 0)"
    if [ "$n" != 0 ]; then
      fault "replay: $n on-failure record(s) in ${q##*/}"
      # Replay hands each letter back to the function that failed it (poison included: it is
      # dead-lettered again, by that consumer only).
      AWS_ENDPOINT_URL_LAMBDA="http://$LAMBDA_LISTEN" \
        target/debug/orders-admin dlq replay --queue "$q" --max 1000 >>"$WORK/replay.log" 2>&1 || true
      echo "$n" >>"$WORK/replayed.count"
    fi
  done
}
: >"$WORK/replayed.count"
: >"$WORK/replay.log"

say "traffic: ${MINUTES} min at $RATE requests/s; a fault every ${FAULT_EVERY}s"
target/debug/orders-sim --base-url "http://$LISTEN" --seed 2026 --duration "${MINUTES}m" --rate "$RATE" \
  --concurrency 64 --products 100 --customers 300 --invalid-ratio 0.03 --unknown-product-ratio 0.03 \
  --cancel-ratio 0.1 --ship-ratio 0.15 --follow-up-timeout 900s --timeout 20s \
  --ledger "$WORK/ledger.json" --json --quiet >"$WORK/sim.json" 2>"$WORK/sim.log" &
sim_pid=$!

faults=(pause crash poison restart aws)
n=0
while kill -0 "$sim_pid" 2>/dev/null; do
  for _ in $(seq 1 "$FAULT_EVERY"); do
    kill -0 "$sim_pid" 2>/dev/null || break 2
    sleep 1
  done
  kind="${faults[$((n % ${#faults[@]}))]}"
  n=$((n + 1))
  case "$kind" in
    pause)
      # Long and short pauses in turn: a long one outlasts clients' timeouts and the
      # consumers' retries (on-failure records, replayed below), a short one does not.
      seconds="$PAUSE_SECONDS"
      if [ $(( (n / ${#faults[@]}) % 2 )) = 0 ]; then seconds=$((PAUSE_SECONDS * 3)); fi
      fault "pause: emulator (pid $moto_pid) stopped for ${seconds}s"
      kill -STOP "$moto_pid"
      sleep "$seconds"
      kill -CONT "$moto_pid"
      ;;
    crash)
      fault "crash: runner (pid $runner_pid) and its functions killed (SIGKILL), restarting"
      stop_runner KILL
      start_runner
      ;;
    poison)
      fault "poison: 3 records on $stream"
      target/debug/orders-bench poison --stream "$stream" --count 3 --tag "soak$n" \
        --out "$WORK/poison-$n.json" >/dev/null 2>>"$WORK/faults.log.stderr"
      ;;
    restart)
      fault "restart: runner stopped (SIGTERM) and started again"
      stop_runner TERM
      start_runner
      ;;
    aws)
      fault "aws: DynamoDB and Kinesis faults through the proxy for ${FAULT_EVERY}s"
      curl -sf -X POST "$fault_proxy/_microburst/rules" --data-binary @scripts/fault-rules.json >/dev/null \
        || die "the fault proxy refused the rules"
      sleep "$FAULT_EVERY"
      fired="$(curl -s "$fault_proxy/_microburst/rules" | python3 -c 'import json,sys; print(sum(r.get("fired_count", 0) for r in json.load(sys.stdin)))')"
      curl -sf -X DELETE -H 'Content-Type: application/json' -d '[]' "$fault_proxy/_microburst/rules" >/dev/null
      fault "aws: $fired faults fired"
      ;;
  esac
  # Let the stack recover, then do what an operator would about exhausted retries.
  sleep 10
  replay_failures
done
set +e
wait "$sim_pid"
sim_status=$?
set -e
sim_pid=""
[ "$sim_status" = 0 ] || { tail -n 20 "$WORK/sim.log" >&2; die "orders-sim failed (status $sim_status)"; }
say "traffic done: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["run"]; print(r["sent"], "requests,", r["accepted"], "orders accepted,", r["retries"], "retries")' "$WORK/sim.json")"

# Drain: replay what exhausted its retries until nothing is left to replay.
for _ in 1 2 3 4 5; do
  sleep 10
  before="$(wc -l <"$WORK/replayed.count")"
  replay_failures
  [ "$(wc -l <"$WORK/replayed.count")" = "$before" ] && break
done

say "reconciling"
set +e
target/debug/orders-sim --base-url "http://$LISTEN" --reconcile-ledger "$WORK/ledger.json" \
  --reconcile-timeout 600s --json >"$WORK/reconcile.json" 2>>"$WORK/sim.log"
reconcile_status=$?
set -e
[ "$reconcile_status" -le 1 ] || die "orders-sim --reconcile-ledger failed (status $reconcile_status)"

for i in 0 1; do
  target/debug/orders-admin dlq list --queue "${queues[$i]}" --json --max 1000 >"$WORK/dlq-$i.jsonl"
done
target/debug/orders-admin dlq list --queue "$relay_dlq" --json --max 1000 >"$WORK/dlq-relay.jsonl"
python3 - "$WORK" "$MINUTES" <<'PY'
import collections, glob, json, os, sys
work, minutes = sys.argv[1], float(sys.argv[2])
injected = collections.Counter()
for line in open(os.path.join(work, "faults.log")):
    kind = line.split()[1].rstrip(":")
    if kind != "replay":
        injected[kind] += 1
run = json.load(open(os.path.join(work, "sim.json")))["run"]
rec = json.load(open(os.path.join(work, "reconcile.json")))["reconcile"]
poison = set()
for path in glob.glob(os.path.join(work, "poison-*.json")):
    poison |= {r["partition_key"] for r in json.load(open(path))["records"]}
problems = []
queues = {}
for i, name in ((0, "process-order"), (1, "aggregate")):
    keys, failures = set(), 0
    for line in open(os.path.join(work, f"dlq-{i}.jsonl")):
        if not line.strip():
            continue
        letter = json.loads(line)
        if "record" in letter:
            keys.add(letter["record"]["kinesis"]["partitionKey"])
        else:
            failures += 1
    queues[name] = {"poison_keys": len(keys), "on_failure_records": failures}
    if failures:
        problems.append(f"{name} DLQ: {failures} on-failure record(s) left unreplayed")
    if keys - poison:
        problems.append(f"{name} DLQ: dead letters that are not injected poison: {sorted(keys - poison)[:5]}")
    if poison - keys:
        problems.append(f"{name} DLQ: injected poison missing: {sorted(poison - keys)[:5]}")
relay_letters = sum(1 for l in open(os.path.join(work, "dlq-relay.jsonl")) if l.strip())
queues["relay"] = {"messages": relay_letters}
if relay_letters:
    problems.append(f"relay DLQ: {relay_letters} message(s); an order version may be missing from the stream")
replayed = sum(int(l) for l in open(os.path.join(work, "replayed.count")) if l.strip())
if not rec["ok"]:
    problems.append(f"reconcile: {len(rec['ownDifferences']) + len(rec['sharedDifferences'])} difference(s)")
summary = {"minutes": minutes, "sent": run["sent"], "accepted": run["accepted"], "by_status": run["byStatus"],
           "retries": run["retries"], "follow_ups": run["followUps"], "faults": dict(injected),
           "poison_records": len(poison), "on_failure_records_replayed": replayed, "dead_letter_queues": queues,
           "reconcile": {k: rec[k] for k in ("ok", "window", "ownOrders", "settleSeconds", "matchSeconds",
                                             "ownDifferences", "sharedDifferences")},
           "ok": not problems, "problems": problems}
json.dump(summary, open(os.path.join(work, "summary.json"), "w"), indent=2)
f = run["followUps"]
print(f"soak: {minutes:g} min, {run['sent']} requests, {run['accepted']} orders accepted "
      f"({run['retries']} retries), answers {run['byStatus']}")
print(f"  follow-ups: {f['cancelled']} cancelled, {f['shipped']} shipped, {f['delivered']} delivered")
print(f"  faults: {', '.join(f'{k} ×{v}' for k, v in sorted(injected.items())) or 'none'}; "
      f"{len(poison)} poison records; {replayed} on-failure records replayed")
print(f"  reconcile: {'OK' if rec['ok'] else 'FAILED'} over {rec['window']}, {rec['ownOrders']} orders, "
      f"all settled within {rec['settleSeconds']:.1f} s of reconciling")
for p in problems:
    print(f"  problem: {p}")
for d in (rec["ownDifferences"] + rec["sharedDifferences"])[:30]:
    print(f"  difference: {d}")
print("soak " + ("passed" if not problems else "FAILED") + " (details: .local/soak/summary.json)")
sys.exit(0 if not problems else 1)
PY
