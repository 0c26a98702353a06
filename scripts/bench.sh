#!/usr/bin/env bash
# Every figure of docs/performance.md with one command (`make bench`); results in bench/results/.
#
#   scripts/bench.sh                                # everything (~20 min on 2 cores once built)
#   BENCH_QUICK=1 scripts/bench.sh                  # shorter runs everywhere (~8 min)
#   BENCH_SKIP=criterion,package scripts/bench.sh   # skip steps (comma-separated names below)
#
# Steps (names for BENCH_SKIP):
#   criterion  criterion benches of the hot pure code: validation, event encode/decode
#              (orders-core), the place-order and query handlers over in-memory ports, the
#              aggregation fold (aggregate)
#   writecost  aggregate's DynamoDB writes per 1,000 orders vs a naive per-order writer, same
#              events (cargo bench -p aggregate --bench write_cost)
#   package    release artefacts (scripts/package.sh) and their sizes; arm64 too when the
#              aarch64-unknown-linux-gnu target is installed
#   then a private local stack: its own moto_server (BENCH_EMULATOR_PORT, 4580), Terraform state
#   (.local/bench/), runner checkpoints, and local-runner on BENCH_LISTEN (127.0.0.1:3080)
#   running the *release* bootstraps — it never touches `make run` or a test session:
#   cold       BENCH_COLD_RUNS (5) fresh runners, each route hit once: process start → first
#              Runtime API `next` per function
#   http       BENCH_REQUESTS (2000) sequential POST /orders, then as many GET /orders/{id}
#   e2e        orders-sim at rising rates (BENCH_RATES, BENCH_RATE_SECONDS each) with
#              --reconcile: the highest rate sent in full, processed with no backlog and
#              reconciled exactly is the sustained rate
#   accept     orders-sim offering BENCH_ACCEPT_RATE (150) orders/s for 20 s, reconciled:
#              how many orders/s the API accepts when offered more than it can take
#   requests   BENCH_REQUEST_ORDERS (300) orders; DynamoDB/Kinesis/SQS requests counted at
#              the emulator (and per function from the functions' own request logs), per order
#   latency    orders-bench pipeline: POST → PROCESSED → counted, one order at a time
#   listings   orders-bench listings: listing pages and the 24 h summary, p50/p99, with the
#              orders table topped up to BENCH_LISTING_LEVELS (1000,10000,100000) orders while
#              orders keep being placed (stream consumers off: the step says why)
#   rss        peak memory: process-order and aggregate on one 1,000-record batch each, and
#              every instance the load runner stopped
#   emulator   one request inside moto, stock vs patched (scripts/moto_patches/bench_ops.py,
#              BENCH_EMULATOR_ORDERS orders, default 10000)
# Writes bench/results/*.json, summary.md and summary.json (not committed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/bench/results"
WORK="$ROOT/.local/bench"
mkdir -p "$RESULTS" "$WORK"

export EMULATOR_PORT="${BENCH_EMULATOR_PORT:-4580}"
LISTEN="${BENCH_LISTEN:-127.0.0.1:3080}"
# Its own development issuer (sign-in is on, as with `make run`); the tools act as staff.
ISSUER_LISTEN="${BENCH_ISSUER_LISTEN:-127.0.0.1:3084}"
export ORDERS_ISSUER="http://$ISSUER_LISTEN" ORDERS_ISSUER_DIR="$ROOT/.local/dev-oidc"
QUICK="${BENCH_QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  REQUESTS="${BENCH_REQUESTS:-200}"; RATES="${BENCH_RATES:-10 30}"; RATE_SECONDS="${BENCH_RATE_SECONDS:-15}"
  REQUEST_ORDERS="${BENCH_REQUEST_ORDERS:-100}"; LATENCY_ORDERS="${BENCH_LATENCY_ORDERS:-30}"
  LISTING_LEVELS="${BENCH_LISTING_LEVELS:-1000,10000}"; LISTING_REQUESTS="${BENCH_LISTING_REQUESTS:-30}"
else
  REQUESTS="${BENCH_REQUESTS:-2000}"; RATES="${BENCH_RATES:-20 40 50 60 70 80 100}"; RATE_SECONDS="${BENCH_RATE_SECONDS:-30}"
  REQUEST_ORDERS="${BENCH_REQUEST_ORDERS:-300}"; LATENCY_ORDERS="${BENCH_LATENCY_ORDERS:-100}"
  LISTING_LEVELS="${BENCH_LISTING_LEVELS:-1000,10000,100000}"; LISTING_REQUESTS="${BENCH_LISTING_REQUESTS:-100}"
fi
ACCEPT_RATE="${BENCH_ACCEPT_RATE:-150}"
# Named in every result: the figures through the stack are the emulator's as much as ours.
EMULATOR_NAME="moto 5.2.5 + scripts/moto_patches, served by granian 2.8.9"
COLD_RUNS="${BENCH_COLD_RUNS:-5}"
RSS_RECORDS="${BENCH_RSS_RECORDS:-1000}"
# A rate counts as sustained when the pipeline drains within this many seconds of the last order.
DRAIN_LIMIT="${BENCH_DRAIN_LIMIT:-10}"
SKIP=",${BENCH_SKIP:-},"
export AWS_ENDPOINT_URL="http://127.0.0.1:$EMULATOR_PORT"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
BINS=(place-order query process-order aggregate relay live notify aggregate-activity)

say() { echo "==> bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
skipped() { [[ "$SKIP" == *",$1,"* ]]; }

for tool in cargo terraform python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is required but not on PATH"
done

started_emulator=0
runner_pid=""
stop_runner() {
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  runner_pid=""
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_runner
  if [ "$started_emulator" = 1 ]; then scripts/emulator.sh stop >/dev/null 2>&1 || true; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- criterion -------------------------------------------------------------------------------
if ! skipped criterion; then
  say "criterion benches (orders-core domain, place-order and query handlers, aggregate fold)"
  criterion_args=()
  if [ "$QUICK" = 1 ]; then criterion_args=(--warm-up-time 1 --measurement-time 2); fi
  set +e
  cargo bench -p orders-core -p place-order -p query -p aggregate \
    --bench domain --bench handler --bench fold -- --noplot "${criterion_args[@]}" \
    2>&1 | tee "$RESULTS/criterion.txt" >&2
  status="${PIPESTATUS[0]}"
  set -e
  [ "$status" = 0 ] || die "cargo bench failed (see bench/results/criterion.txt)"
  # Criterion keeps its estimates per benchmark; collect the ones of this run's ids.
  python3 - "$ROOT/target/criterion" "$RESULTS/criterion.txt" "$RESULTS/criterion.json" <<'PY'
import json, os, re, sys
root, log, out = sys.argv[1:]
ran, previous = set(), ""
for line in open(log, encoding="utf-8", errors="replace"):
    m = re.match(r"^(\S.*?)\s+time:\s+\[", line)
    if m:
        ran.add(m.group(1).strip())
    elif re.match(r"^\s+time:\s+\[", line):
        ran.add(previous.strip())  # a long id is printed on its own line first
    previous = line
rows = []
for dirpath, _, files in os.walk(root):
    if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
        continue
    bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
    if bench["full_id"] not in ran:
        continue
    est = json.load(open(os.path.join(dirpath, "estimates.json")))
    row = {
        "id": bench["full_id"],
        "mean_ns": est["mean"]["point_estimate"],
        "mean_ci_ns": [est["mean"]["confidence_interval"]["lower_bound"],
                       est["mean"]["confidence_interval"]["upper_bound"]],
        "median_ns": est["median"]["point_estimate"],
    }
    throughput = bench.get("throughput") or {}
    for kind in ("Elements", "Bytes"):
        if kind in throughput:
            row["per_second"] = throughput[kind] / (row["mean_ns"] / 1e9)
            row["throughput_unit"] = kind.lower()
    rows.append(row)
rows.sort(key=lambda r: r["id"])
json.dump({"benchmarks": rows}, open(out, "w"), indent=2)
print(f"bench: {len(rows)} criterion estimates -> {out}", file=sys.stderr)
PY
fi

# --- write cost --------------------------------------------------------------------------------
if ! skipped writecost; then
  say "aggregate write cost vs a naive writer (cargo bench -p aggregate --bench write_cost)"
  cargo bench -p aggregate --bench write_cost 2>/dev/null | tee "$RESULTS/write-cost.txt" >&2
  python3 - "$RESULTS/write-cost.txt" "$RESULTS/write-cost.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
rows = []
for m in re.finditer(r"^\| (naive|aggregate)[^|]*\| ([\d.]+) \| ([\d.]+) \|$", text, re.M):
    rows.append({"writer": m.group(1), "write_requests_per_1000_orders": float(m.group(2)),
                 "write_units_per_1000_orders": float(m.group(3))})
head = re.search(r"\((\d+) orders, (\d+) events, batches of (\d+)\)", text)
if len(rows) != 2 or not head:
    sys.exit("bench: write_cost printed no table; see bench/results/write-cost.txt")
naive, ours = (next(r for r in rows if r["writer"] == w) for w in ("naive", "aggregate"))
json.dump({"orders": int(head.group(1)), "events": int(head.group(2)), "batch": int(head.group(3)),
           "writers": rows,
           "requests_ratio": naive["write_requests_per_1000_orders"] / ours["write_requests_per_1000_orders"],
           "units_ratio": naive["write_units_per_1000_orders"] / ours["write_units_per_1000_orders"]},
          open(sys.argv[2], "w"), indent=2)
PY
fi

# --- release artefacts ---------------------------------------------------------------------------
if ! skipped package; then
  say "packaging release artefacts (scripts/package.sh)"
  scripts/package.sh
fi
for b in "${BINS[@]}"; do
  [ -x "target/lambda/$b/bootstrap" ] || die "target/lambda/$b/bootstrap missing: run scripts/package.sh"
done
say "building orders-bench and orders-admin (debug), local-runner and orders-sim (release)"
cargo build --quiet -p orders-bench -p orders-admin
# The runner and the load generator in release, like the functions: the runner stands in for
# API Gateway and Lambda's pollers, whose CPU is AWS's, and the clients' CPU is nobody's; in
# debug they took ~12 ms of CPU per order from the two cores the emulator and the functions
# share.
cargo build --quiet --release -p local-runner -p orders-sim
BENCH_BIN="target/debug/orders-bench"
ORDERS_TOKEN="$(target/debug/orders-admin token --staff --lifetime-minutes 240)"
export ORDERS_TOKEN
SIM_BIN="target/release/orders-sim"
"$BENCH_BIN" sizes --dir target/lambda --out "$RESULTS/sizes.json"
if ! skipped package && rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  # package.sh writes both architectures to target/lambda: measure arm64, then restore x86_64.
  say "arm64 target installed: packaging and measuring arm64 too"
  scripts/package.sh --arm64
  "$BENCH_BIN" sizes --dir target/lambda --out "$RESULTS/sizes-arm64.json"
  scripts/package.sh
else
  rm -f "$RESULTS/sizes-arm64.json"
fi

stack_steps=(cold http e2e accept requests latency listings rss)
need_stack=0
for s in "${stack_steps[@]}"; do skipped "$s" || need_stack=1; done
if [ "$need_stack" = 0 ]; then say "done: $RESULTS"; fi

# --- a private stack on EMULATOR_PORT / BENCH_LISTEN -------------------------------------------
if [ "$need_stack" = 1 ]; then
if curl -s -o /dev/null --max-time 1 "http://$LISTEN/"; then
  die "something already listens on $LISTEN; set BENCH_LISTEN"
fi
if curl -s -o /dev/null --max-time 2 "$AWS_ENDPOINT_URL/"; then
  curl -s --max-time 2 "$AWS_ENDPOINT_URL/moto-api/" | grep -qi moto \
    || die "port $EMULATOR_PORT is in use by something that is not moto; set BENCH_EMULATOR_PORT"
  say "resetting the moto_server already on $AWS_ENDPOINT_URL"
  curl -s -X POST --max-time 10 "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null
else
  started_emulator=1
  # emulator.sh does nothing when AWS_ENDPOINT_URL answers; here it does not, so it starts moto.
  scripts/emulator.sh start
fi
curl -s -o /dev/null --max-time 5 "$AWS_ENDPOINT_URL/_orders/requests" \
  || die "the emulator on $AWS_ENDPOINT_URL does not count requests (not scripts/moto_server.py?)"

say "deploying infra/envs/local to $AWS_ENDPOINT_URL (state in .local/bench/terraform)"
TF_STATE_DIR="$WORK/terraform"
rm -rf "$TF_STATE_DIR/local.tfstate" "$TF_STATE_DIR/local.tfstate.backup"
mkdir -p "$TF_STATE_DIR"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_DATA_DIR="$TF_STATE_DIR/data"
cfg="$(scripts/tf-cli-config.sh)"
if [ -n "$cfg" ]; then export TF_CLI_CONFIG_FILE="$cfg"; fi
tf_log="$WORK/terraform.log"
: >"$tf_log"
tf() { terraform -chdir=infra/envs/local "$@" >>"$tf_log" 2>&1 || { tail -n 30 "$tf_log" >&2; die "terraform $1 failed (see $tf_log)"; }; }
# Same configuration as deploy-local.sh, but its own state file, so `make run` keeps its own.
tf init -input=false -no-color -reconfigure -backend-config="path=$TF_STATE_DIR/local.tfstate"
# The real release zips as the functions' code (the emulator stores but never runs them).
tf apply -auto-approve -input=false -no-color -var "endpoint=$AWS_ENDPOINT_URL" \
  -var "region=$AWS_REGION" -var "artifacts_dir=$ROOT/target/lambda" -var "jwt_issuer=$ORDERS_ISSUER"
terraform -chdir=infra/envs/local output -json >"$WORK/outputs.json"
output() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["value"])' "$WORK/outputs.json" "$1"; }
api_id="$(output api_id)"
# The WebSocket API too, when there is one, on a free port (never `make run`'s 3003).
ws_args=()
live_api_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("live_api_id",{}).get("value",""))' "$WORK/outputs.json")"
if [ -n "$live_api_id" ]; then ws_args=(--ws-api-id "$live_api_id" --ws-listen "${BENCH_WS_LISTEN:-127.0.0.1:0}"); fi

# The runner looks for each function's binary by name in --bin-dir: point those names at the
# packaged bootstraps, so what runs is exactly what would be uploaded.
BIN_DIR="$WORK/bin"
mkdir -p "$BIN_DIR"
for b in "${BINS[@]}"; do ln -sfn "$ROOT/target/lambda/$b/bootstrap" "$BIN_DIR/$b"; done
# A fresh stream: checkpoints of an earlier run would point past its records.
CHECKPOINTS="$WORK/checkpoints.json"
rm -f "$CHECKPOINTS"

start_runner() {
  target/release/local-runner --api-id "$api_id" --listen "$LISTEN" --bin-dir "$BIN_DIR" \
    --issuer-listen "$ISSUER_LISTEN" --issuer-dir "$ORDERS_ISSUER_DIR" \
    --endpoint "$AWS_ENDPOINT_URL" --metrics-file "$1" --checkpoint-file "$CHECKPOINTS" \
    ${ws_args[@]+"${ws_args[@]}"} "${@:2}" \
    >>"$WORK/runner.log" 2>&1 &
  runner_pid=$!
  # Wait for the listener only (no route: that would start a function before we mean to).
  for _ in $(seq 1 120); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$LISTEN/no-such-route" || true)"
    [ "$code" != "000" ] && return 0
    kill -0 "$runner_pid" 2>/dev/null || { tail -n 30 "$WORK/runner.log" >&2; die "local-runner exited"; }
    sleep 0.25
  done
  die "local-runner did not listen on $LISTEN"
}
: >"$WORK/runner.log"

# --- cold init -------------------------------------------------------------------------------------
if ! skipped cold; then
  say "cold init: $COLD_RUNS fresh runners, each route hit once"
  METRICS="$WORK/cold-init.jsonl"
  : >"$METRICS"
  for run in $(seq 1 "$COLD_RUNS"); do
    start_runner "$METRICS"
    curl -s -o /dev/null --max-time 30 "http://$LISTEN/health"
    location="$(curl -s -D - -o /dev/null --max-time 30 -X POST "http://$LISTEN/orders" \
      -H 'content-type: application/json' -H "idempotency-key: cold-$run-$$" -H "Authorization: Bearer $ORDERS_TOKEN" \
      -d '{"customerId":"c-cold","items":[{"productId":"sku-1","quantity":1,"unitPrice":100}]}' \
      | tr -d '\r' | sed -n 's/^location: //Ip')"
    [ -n "$location" ] && curl -s -o /dev/null --max-time 30 -H "Authorization: Bearer $ORDERS_TOKEN" "http://$LISTEN$location"
    # Give the stream consumers time to receive the OrderPlaced event and start.
    sleep "${BENCH_STREAM_WAIT:-4}"
    stop_runner
    echo "  run $run: $(grep -c cold_init_ms "$METRICS") cold starts recorded so far" >&2
  done
  "$BENCH_BIN" cold-init --metrics "$METRICS" --out "$RESULTS/cold-init.json"
  cp "$METRICS" "$RESULTS/cold-init.jsonl"
fi

# One runner for the load steps; stopping it records every instance's peak memory.
LOAD_METRICS="$WORK/load-metrics.jsonl"
: >"$LOAD_METRICS"
load_steps=0
for s in http e2e accept requests latency listings; do skipped "$s" || load_steps=1; done
if [ "$load_steps" = 1 ]; then start_runner "$LOAD_METRICS"; fi

# --- HTTP latency through the stack ------------------------------------------------------------------
if ! skipped http; then
  say "HTTP: $REQUESTS sequential requests per route through http://$LISTEN"
  "$BENCH_BIN" http --base-url "http://$LISTEN" --requests "$REQUESTS" --out "$RESULTS/http.json"
fi

# Each measured run starts on a fresh minute: the analytics answer in whole minutes, so a run
# that shared a minute with the step before it would have to list that step's orders too.
next_minute() { sleep $(( 61 - $(date +%s) % 60 )); }

# --- sustained orders/s ----------------------------------------------------------------------------------
catalog_flag=()
if ! skipped e2e; then
  say "end to end: orders-sim at ${RATES// /, } orders/s, ${RATE_SECONDS}s each, reconciled"
  runs=()
  for rate in $RATES; do
    out="$WORK/sim-rate-$rate.json"
    next_minute
    set +e
    "$SIM_BIN" --base-url "http://$LISTEN" --seed "$rate" --rate "$rate" --duration "${RATE_SECONDS}s" \
      --concurrency 64 --reconcile --reconcile-timeout 300s --json --quiet "${catalog_flag[@]}" >"$out"
    status=$?
    set -e
    [ "$status" -le 1 ] || die "orders-sim failed at $rate orders/s (see $out)"
    catalog_flag=(--no-catalog)
    runs+=("$out")
    verdict="$(python3 - "$out" "$rate" "$DRAIN_LIMIT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rate = float(sys.argv[2]); limit = float(sys.argv[3])
run, rec = r["run"], r["reconcile"]
ok = run["achievedRate"] >= 0.95 * rate and rec["ok"] and rec["settleSeconds"] <= limit
print(f"{'sustained' if ok else 'not sustained'}: {run['achievedRate']:.1f} orders/s accepted, "
      f"p50 {run['latency']['p50_ms']:.0f} ms, p99 {run['latency']['p99_ms']:.0f} ms, "
      f"drained {rec['settleSeconds']:.1f} s after the last order, reconcile {'ok' if rec['ok'] else 'FAILED'}")
PY
)"
    echo "  $rate orders/s: $verdict" >&2
    [[ "$verdict" == sustained* ]] || break
  done
  python3 - "$DRAIN_LIMIT" "$RATE_SECONDS" "$RESULTS/e2e.json" "${runs[@]}" <<'PY'
import json, sys
limit, seconds, out, files = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
rows = []
for f in files:
    r = json.load(open(f)); run, rec = r["run"], r["reconcile"]
    rate = run["targetRate"]
    rows.append({"target_rate": rate, "achieved_rate": run["achievedRate"], "accepted": run["accepted"],
                 "sent": run["sent"], "post_p50_ms": run["latency"]["p50_ms"],
                 "post_p99_ms": run["latency"]["p99_ms"], "drain_seconds": rec["settleSeconds"],
                 "reconcile_ok": rec["ok"],
                 "differences": rec["ownDifferences"] + rec["sharedDifferences"],
                 "sustained": run["achievedRate"] >= 0.95 * rate and rec["ok"] and rec["settleSeconds"] <= limit})
best = max((r["target_rate"] for r in rows if r["sustained"]), default=None)
json.dump({"seconds_per_rate": seconds, "drain_limit_seconds": limit, "runs": rows,
           "sustained_orders_per_second": best}, open(out, "w"), indent=2)
print(f"bench: sustained {best} orders/s with zero loss", file=sys.stderr)
PY
fi

# --- orders/s the API accepts when offered more ------------------------------------------------------------
if ! skipped accept; then
  say "accepted: orders-sim offering $ACCEPT_RATE orders/s for 20 s, reconciled"
  next_minute
  set +e
  "$SIM_BIN" --base-url "http://$LISTEN" --seed 7 --rate "$ACCEPT_RATE" --duration 20s --concurrency 128 \
    --reconcile --reconcile-timeout 300s --json --quiet "${catalog_flag[@]}" >"$RESULTS/accept.json"
  status=$?
  set -e
  [ "$status" -le 1 ] || die "orders-sim failed offering $ACCEPT_RATE orders/s (see $RESULTS/accept.json)"
  catalog_flag=(--no-catalog)
  python3 - "$RESULTS/accept.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); run, rec = r["run"], r["reconcile"]
print(f"  accepted {run['achievedRate']:.1f} orders/s of {run['targetRate']:g} offered, "
      f"reconcile {'exact' if rec['ok'] else 'FAILED'}", file=sys.stderr)
PY
fi

# --- requests per order, counted at the emulator ------------------------------------------------------------
if ! skipped requests; then
  say "requests per order: $REQUEST_ORDERS orders, counted by the emulator"
  if [ "${#catalog_flag[@]}" = 0 ]; then
    "$SIM_BIN" --base-url "http://$LISTEN" --orders 0 --quiet >/dev/null  # loads the catalog only
  fi
  count_requests() { curl -s --max-time 10 "$AWS_ENDPOINT_URL/_orders/requests"; }
  # Nothing else in flight: the runner's pollers keep asking, but no function works.
  sleep 3
  curl -s -X DELETE --max-time 10 "$AWS_ENDPOINT_URL/_orders/requests" >/dev/null
  next_minute
  log_mark="$(wc -l <"$WORK/runner.log")"
  "$SIM_BIN" --base-url "http://$LISTEN" --seed 7 --orders "$REQUEST_ORDERS" --concurrency 8 --no-catalog \
    --ledger "$WORK/requests-ledger.json" --json --quiet >"$WORK/sim-requests.json"
  # Idle when no write, read or publish (polling aside) happened for 4 s.
  python3 - "$AWS_ENDPOINT_URL/_orders/requests" <<'PY'
import json, sys, time, urllib.request
url = sys.argv[1]
polling = {"GetRecords", "GetShardIterator", "ListShards", "DescribeStream", "DescribeStreamSummary",
           "ReceiveMessage", "GetQueueAttributes", "ListStreamConsumers"}
def work():
    counts = json.load(urllib.request.urlopen(url))["requests"]
    return sum(n for ops in counts.values() for op, n in ops.items() if op not in polling)
last, still, deadline = work(), 0, time.time() + 600
while still < 4 and time.time() < deadline:
    time.sleep(1)
    now = work(); still = still + 1 if now == last else 0; last = now
PY
  count_requests >"$WORK/requests-counts.json"
  sed -n "$((log_mark + 1)),\$p" "$WORK/runner.log" >"$WORK/requests-runner.log"
  "$SIM_BIN" --base-url "http://$LISTEN" --reconcile-ledger "$WORK/requests-ledger.json" --json \
    >"$WORK/sim-requests-reconcile.json" || die "the requests run did not reconcile (see $WORK/sim-requests-reconcile.json)"
  python3 - "$WORK/requests-counts.json" "$WORK/sim-requests.json" "$WORK/requests-runner.log" "$RESULTS/requests.json" <<'PY'
import json, re, sys, collections
counts = json.load(open(sys.argv[1]))["requests"]
orders = json.load(open(sys.argv[2]))["run"]["accepted"]
polling = {"GetRecords", "GetShardIterator", "ListShards", "DescribeStream", "DescribeStreamSummary",
           "ReceiveMessage", "GetQueueAttributes", "ListStreamConsumers"}
names = {"dynamodb": "DynamoDB", "kinesis": "Kinesis", "sqs": "SQS"}
per_order, background = [], []
for service, ops in sorted(counts.items()):
    for op, n in sorted(ops.items()):
        row = {"service": names.get(service, service), "operation": op, "requests": n}
        if op in polling:
            background.append(row)
        else:
            row["per_order"] = n / orders
            per_order.append(row)
# The functions log the requests of each invocation: aws_requests=DynamoDB.PutItem=2 Kinesis.PutRecord=1
by_function = collections.defaultdict(collections.Counter)
ansi = re.compile(r"\x1b\[[0-9;]*m")
for line in open(sys.argv[3], errors="replace"):
    line = ansi.sub("", line)
    m = re.match(r"^\[([\w-]+)\].*aws_requests=(\S.*?)(?:$| \w+=(?!\d))", line)
    if not m:
        continue
    for item in m.group(2).split():
        op, _, n = item.rpartition("=")
        if n.isdigit():
            by_function[m.group(1)][op] += int(n)
functions = {f: {op: n / orders for op, n in sorted(c.items())} for f, c in sorted(by_function.items())}
json.dump({"orders": orders, "per_order": per_order, "polling": background,
           "per_function_per_order": functions,
           "totals_per_order": {names.get(s, s): sum(r["per_order"] for r in per_order if r["service"] == names.get(s, s))
                                for s in counts}},
          open(sys.argv[4], "w"), indent=2)
print(f"bench: requests per order over {orders} orders -> {sys.argv[4]}", file=sys.stderr)
PY
fi

# --- place → processed → counted latency ------------------------------------------------------------------
if ! skipped latency; then
  say "pipeline latency: $LATENCY_ORDERS orders one at a time"
  "$BENCH_BIN" pipeline --base-url "http://$LISTEN" --orders "$LATENCY_ORDERS" --burst 0 \
    --analytics-table "$(output analytics_table)" --out "$RESULTS/latency.json"
fi
# --- listings as the table grows --------------------------------------------------------------------------
if ! skipped listings; then
  # Bulk-loaded orders are new versions on the orders table's change stream: with the stream
  # consumers on, the relay would publish every one of them and the pipeline would work through
  # a 100k-order backlog while the listings are measured (and time the loader out). They are off
  # for this step; orders placed through the API meanwhile still write the table being read.
  if [ "$load_steps" = 1 ]; then stop_runner; fi
  start_runner "$LOAD_METRICS" --no-event-sources
  say "listings: $LISTING_REQUESTS requests per route at $LISTING_LEVELS orders, orders placed meanwhile"
  "$BENCH_BIN" listings --base-url "http://$LISTEN" --orders-table "$(output orders_table)" \
    --levels "$LISTING_LEVELS" --requests "$LISTING_REQUESTS" --emulator "$EMULATOR_NAME" \
    --out "$RESULTS/listings.json"
fi
if [ "$load_steps" = 1 ]; then stop_runner; fi

# --- peak memory --------------------------------------------------------------------------------------
if ! skipped rss; then
  say "peak memory: process-order and aggregate on one $RSS_RECORDS-record batch (no runner polling)"
  "$BENCH_BIN" rss --bin-dir "$BIN_DIR" --records "$RSS_RECORDS" --metrics "$LOAD_METRICS" \
    --out "$RESULTS/rss.json" >"$WORK/rss.log" 2>&1 || { tail -n 20 "$WORK/rss.log" >&2; die "orders-bench rss failed (see $WORK/rss.log)"; }
  grep -E "records  peak RSS|instances stopped" "$WORK/rss.log" >&2 || true
fi
fi

# --- the emulator itself: stock vs patched moto --------------------------------------------------------
if ! skipped emulator; then
  if [ -x .local/venv/bin/python ]; then
    say "emulator: one request inside moto, stock vs patched (${BENCH_EMULATOR_ORDERS:-10000} orders)"
    for mode in stock patched; do
      .local/venv/bin/python scripts/moto_patches/bench_ops.py "$mode" "${BENCH_EMULATOR_ORDERS:-10000}"
    done | python3 -c 'import json,sys; json.dump([json.loads(l) for l in sys.stdin], open(sys.argv[1], "w"), indent=2)' \
      "$RESULTS/emulator.json"
  else
    say "emulator: skipped (no .local/venv: run scripts/emulator.sh start once)"
  fi
fi

# --- summary -------------------------------------------------------------------------------------------
python3 - "$RESULTS" "$REQUESTS" "$EMULATOR_NAME" <<'PY'
import json, os, platform, subprocess, sys, datetime
res, requests, emulator = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else None
def rev():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except Exception:
        return "?"
def fmt_ns(ns):
    if ns >= 1e6: return f"{ns/1e6:.2f} ms"
    if ns >= 1e3: return f"{ns/1e3:.2f} µs"
    return f"{ns:.0f} ns"
now = datetime.datetime.now(datetime.timezone.utc)
load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
out = ["# Bench results", "",
       f"commit {rev()}, {now:%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} CPUs"
       + (f", load {load_avg:.1f} at the end" if load_avg is not None else "")
       + f". Emulator: {emulator}."
       + " Produced by `make bench` (scripts/bench.sh); what each figure means: docs/performance.md.", ""]
c = load("criterion.json")
if c:
    out += ["## Criterion (in-process, in-memory ports)", "",
            "| benchmark | mean | 95% CI | throughput |", "|---|---:|---|---:|"]
    for r in c["benchmarks"]:
        lo, hi = r["mean_ci_ns"]
        tp = f"{r['per_second']:,.0f} {r['throughput_unit']}/s" if "per_second" in r else ""
        out.append(f"| {r['id']} | {fmt_ns(r['mean_ns'])} | {fmt_ns(lo)} – {fmt_ns(hi)} | {tp} |")
    out.append("")
w = load("write-cost.json")
if w:
    out += [f"## Aggregate writes per 1,000 orders ({w['orders']:,} orders, {w['events']:,} events, batches of {w['batch']})", "",
            "| writer | write requests | write units |", "|---|---:|---:|"]
    for r in w["writers"]:
        out.append(f"| {r['writer']} | {r['write_requests_per_1000_orders']:,.0f} | {r['write_units_per_1000_orders']:,.0f} |")
    out += ["", f"Ours: {w['requests_ratio']:.1f}× fewer write requests, {w['units_ratio']:.1f}× fewer write units.", ""]
s = load("sizes.json")
if s:
    mib = lambda b: "-" if b is None else f"{b/1048576:.2f} MiB"
    for name, label in (("sizes.json", "x86_64"), ("sizes-arm64.json", "arm64")):
        data = load(name)
        if not data: continue
        out += [f"## Artefact sizes, {label} (target/lambda)", "",
                "| function | bootstrap | bootstrap.zip |", "|---|---:|---:|"]
        for r in data["artefacts"]:
            out.append(f"| {r['function']} | {mib(r['bootstrap_bytes'])} | {mib(r['zip_bytes'])} |")
        out.append("")
ci = load("cold-init.json")
if ci:
    out += ["## Cold init, release bootstraps (process start → first Runtime API `next`)", "",
            "| function | samples | min ms | median ms | max ms |", "|---|---:|---:|---:|---:|"]
    for r in ci["functions"]:
        out.append(f"| {r['function']} | {r['samples']} | {r['min_ms']:.1f} | {r['median_ms']:.1f} | {r['max_ms']:.1f} |")
    out.append("")
h = load("http.json")
if h:
    out += [f"## HTTP through the local stack ({h['requests_per_route']} sequential requests per route, "
            f"{h['warmup_per_route']} warm-up not counted)", "",
            "| route | count | errors | p50 ms | p90 ms | p99 ms | max ms | mean ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in h["routes"]:
        out.append(f"| {r['route']} | {r['count']} | {r['errors']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                   f"{r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['mean_ms']:.2f} |")
    out.append("")
e = load("e2e.json")
if e:
    out += [f"## Sustained orders/s through the local stack (orders-sim, {e['seconds_per_rate']:.0f} s per rate, reconciled)", "",
            (f"**{e['sustained_orders_per_second']:g} orders/s** sustained with zero loss "
             if e['sustained_orders_per_second'] else "**No rate** was sustained with zero loss ")
            + f"(all sent, pipeline drained within {e['drain_limit_seconds']:.0f} s, analytics exact).", "",
            "| target /s | accepted /s | accepted | POST p50 ms | POST p99 ms | drained in s | reconcile | sustained |",
            "|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in e["runs"]:
        out.append(f"| {r['target_rate']:g} | {r['achieved_rate']:.1f} | {r['accepted']} | {r['post_p50_ms']:.0f} | "
                   f"{r['post_p99_ms']:.0f} | {r['drain_seconds']:.1f} | {'ok' if r['reconcile_ok'] else 'FAILED'} | "
                   f"{'yes' if r['sustained'] else 'no'} |")
    out.append("")
a = load("accept.json")
if a:
    run, rec = a["run"], a["reconcile"]
    out += ["## Orders/s accepted by the API when offered more", "",
            f"Offered {run['targetRate']:g} orders/s for 20 s (up to 128 in flight): **{run['achievedRate']:.1f} orders/s "
            f"accepted** ({run['accepted']} of {run['sent']}), POST p50 {run['latency']['p50_ms']:.0f} ms / "
            f"p99 {run['latency']['p99_ms']:.0f} ms; reconcile {'exact' if rec['ok'] else 'FAILED'}, "
            f"drained {rec['settleSeconds']:.1f} s after the last order.", ""]
rq = load("requests.json")
if rq:
    out += [f"## AWS requests per order, counted at the emulator ({rq['orders']} orders)", "",
            "| service | operation | per order |", "|---|---|---:|"]
    for r in rq["per_order"]:
        out.append(f"| {r['service']} | {r['operation']} | {r['per_order']:.2f} |")
    out += ["", "Totals per order: " + ", ".join(f"{s} {n:.2f}" for s, n in rq["totals_per_order"].items()
                                                if n) + ".", ""]
    if rq["per_function_per_order"]:
        out += ["Per function (from the functions' request logs):", ""]
        for f, ops in rq["per_function_per_order"].items():
            out.append(f"- {f}: " + ", ".join(f"{op} {n:.2f}" for op, n in ops.items()))
        out.append("")
    if rq["polling"]:
        out += ["Event-source polling during the run (time-driven, not per order): "
                + ", ".join(f"{r['service']}.{r['operation']} {r['requests']}" for r in rq["polling"]) + ".", ""]
lt = load("latency.json")
if lt:
    out += ["## Pipeline latency, one order at a time", "",
            "| measure | count | p50 ms | p90 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for r in lt["latency"]:
        out.append(f"| {r['route']} | {r['count']} | {r['p50_ms']:.0f} | {r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    out.append("")
em = load("emulator.json")
if em:
    cols = [("gsi_query_ms", "GSI Query, newest 21"), ("get_item_ms", "GetItem"),
            ("update_item_ms", "UpdateItem, 20 ADDs"), ("put_record_ms", "Kinesis PutRecord"),
            ("get_records_ms", "Kinesis GetRecords, 100")]
    out += [f"## One request inside moto, stock vs patched ({em[0]['orders']:,} orders, median ms, in process)", "",
            "| moto | " + " | ".join(c[1] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for r in em:
        out.append(f"| {r['moto']} | " + " | ".join(f"{r[c[0]]:.2f}" for c in cols) + " |")
    out.append("")
li = load("listings.json")
if li:
    out += [f"## Listings as the orders table grows ({li['emulator']}; {li['background_orders']} orders placed "
            f"at {li['background_rate']:g}/s meanwhile)", "",
            "| orders in table | route | count | errors | p50 ms | p99 ms | max ms |", "|---:|---|---:|---:|---:|---:|---:|"]
    for level in li["levels"]:
        for r in level["routes"]:
            out.append(f"| {level['orders_loaded']:,} | {r['route']} | {r['count']} | {r['errors']} | "
                       f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    out.append("")
rs = load("rss.json")
if rs:
    out += ["## Peak memory (VmHWM), release bootstraps", "",
            "| function | what | peak RSS |", "|---|---|---:|"]
    for r in rs["batches"]:
        out.append(f"| {r['function']} | one batch of {r['records']:,} records ({r['invoke_seconds']:.1f} s) | {r['peak_rss_kb']/1024:.1f} MiB |")
    for r in rs["stopped_instances"]:
        out.append(f"| {r['function']} | highest of {r['instances']} instance(s) after the load steps | {r['max_peak_rss_kb']/1024:.1f} MiB |")
    out.append("")
text = "\n".join(out)
open(os.path.join(res, "summary.md"), "w").write(text)
names = ["criterion", "write-cost", "sizes", "sizes-arm64", "cold-init", "http", "e2e", "accept", "requests",
         "latency", "listings", "rss", "emulator"]
json.dump({"commit": rev(), "at": now.isoformat(), "machine": platform.machine(), "cpus": os.cpu_count(),
           "emulator": emulator,
           "load_at_end": load_avg, **{n: load(n + ".json") for n in names if load(n + ".json")}},
          open(os.path.join(res, "summary.json"), "w"), indent=2)
print(text)
PY
say "done: bench/results/summary.md"
