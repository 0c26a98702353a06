#!/usr/bin/env bash
# Every figure of bench/README.md with one command (`make bench`); results in bench/results/.
#
#   scripts/bench.sh              # everything (about 10 minutes on 2 cores once built)
#   BENCH_QUICK=1 scripts/bench.sh            # shorter criterion runs, 200 requests per route
#   BENCH_SKIP=criterion,package scripts/bench.sh   # skip steps (criterion, package, cold, http)
#
# Steps:
#   1. criterion benches (domain, place-order and query handlers over in-memory ports);
#   2. scripts/package.sh: release artefacts target/lambda/<bin>/bootstrap(.zip) and sizes;
#   3. a private local stack: its own moto_server (EMULATOR_PORT, default 4580), its own
#      Terraform state (.local/bench/), and local-runner on BENCH_LISTEN (127.0.0.1:3080) running
#      the *release* bootstraps — so it never collides with `make run` or a test session;
#   4. cold init: BENCH_COLD_RUNS (5) fresh runners, each hit on every API route once, and the
#      stream functions fed by the POST's event; the runner records each instance's start;
#   5. orders-bench http: BENCH_REQUESTS (2000) sequential POST /orders, then as many GETs.
# Writes bench/results/{criterion,sizes,cold-init,http}.json and summary.md (not committed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/bench/results"
WORK="$ROOT/.local/bench"
mkdir -p "$RESULTS" "$WORK"

export EMULATOR_PORT="${BENCH_EMULATOR_PORT:-4580}"
LISTEN="${BENCH_LISTEN:-127.0.0.1:3080}"
QUICK="${BENCH_QUICK:-0}"
if [ "$QUICK" = 1 ]; then REQUESTS="${BENCH_REQUESTS:-200}"; else REQUESTS="${BENCH_REQUESTS:-2000}"; fi
COLD_RUNS="${BENCH_COLD_RUNS:-5}"
SKIP=",${BENCH_SKIP:-},"
export AWS_ENDPOINT_URL="http://127.0.0.1:$EMULATOR_PORT"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
BINS=(place-order query process-order aggregate)

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

# --- 1. criterion --------------------------------------------------------------------------
if ! skipped criterion; then
  say "criterion benches (cargo bench -p orders-core -p place-order -p query)"
  criterion_args=()
  if [ "$QUICK" = 1 ]; then criterion_args=(--warm-up-time 1 --measurement-time 2); fi
  set +e
  cargo bench -p orders-core -p place-order -p query --bench domain --bench handler -- --noplot "${criterion_args[@]}" \
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
    rows.append({
        "id": bench["full_id"],
        "mean_ns": est["mean"]["point_estimate"],
        "mean_ci_ns": [est["mean"]["confidence_interval"]["lower_bound"],
                       est["mean"]["confidence_interval"]["upper_bound"]],
        "median_ns": est["median"]["point_estimate"],
    })
rows.sort(key=lambda r: r["id"])
json.dump({"benchmarks": rows}, open(out, "w"), indent=2)
print(f"bench: {len(rows)} criterion estimates -> {out}", file=sys.stderr)
PY
fi

# --- 2. release artefacts -----------------------------------------------------------------
if ! skipped package; then
  say "packaging release artefacts (scripts/package.sh)"
  scripts/package.sh
fi
for b in "${BINS[@]}"; do
  [ -x "target/lambda/$b/bootstrap" ] || die "target/lambda/$b/bootstrap missing: run scripts/package.sh"
done
say "building orders-bench and local-runner"
cargo build --quiet -p orders-bench -p local-runner
BENCH_BIN="target/debug/orders-bench"
"$BENCH_BIN" sizes --dir target/lambda --out "$RESULTS/sizes.json"

if skipped cold && skipped http; then say "done: $RESULTS"; exit 0; fi

# --- 3. a private stack on EMULATOR_PORT / BENCH_LISTEN -------------------------------------
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
  -var "region=$AWS_REGION" -var "artifacts_dir=$ROOT/target/lambda"
terraform -chdir=infra/envs/local output -json >"$WORK/outputs.json"
api_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_id"]["value"])' "$WORK/outputs.json")"

# The runner looks for each function's binary by name in --bin-dir: point those names at the
# packaged bootstraps, so what runs is exactly what would be uploaded.
BIN_DIR="$WORK/bin"
mkdir -p "$BIN_DIR"
for b in "${BINS[@]}"; do ln -sfn "$ROOT/target/lambda/$b/bootstrap" "$BIN_DIR/$b"; done

METRICS="$WORK/cold-init.jsonl"
start_runner() {
  target/debug/local-runner --api-id "$api_id" --listen "$LISTEN" --bin-dir "$BIN_DIR" \
    --endpoint "$AWS_ENDPOINT_URL" --metrics-file "$METRICS" >>"$WORK/runner.log" 2>&1 &
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

# --- 4. cold init ---------------------------------------------------------------------------
if ! skipped cold; then
  say "cold init: $COLD_RUNS fresh runners, each route hit once"
  : >"$METRICS"
  for run in $(seq 1 "$COLD_RUNS"); do
    start_runner
    curl -s -o /dev/null --max-time 30 "http://$LISTEN/health"
    location="$(curl -s -D - -o /dev/null --max-time 30 -X POST "http://$LISTEN/orders" \
      -H 'content-type: application/json' -H "idempotency-key: cold-$run-$$" \
      -d '{"customerId":"c-cold","items":[{"productId":"sku-1","quantity":1,"unitPrice":100}]}' \
      | tr -d '\r' | sed -n 's/^location: //Ip')"
    [ -n "$location" ] && curl -s -o /dev/null --max-time 30 "http://$LISTEN$location"
    # Give the stream consumers time to receive the OrderPlaced event and start.
    sleep "${BENCH_STREAM_WAIT:-4}"
    stop_runner
    echo "  run $run: $(wc -l <"$METRICS") cold starts recorded so far" >&2
  done
  "$BENCH_BIN" cold-init --metrics "$METRICS" --out "$RESULTS/cold-init.json"
  cp "$METRICS" "$RESULTS/cold-init.jsonl"
fi

# --- 5. HTTP latency through the stack ---------------------------------------------------------
if ! skipped http; then
  say "HTTP: $REQUESTS sequential requests per route through http://$LISTEN"
  start_runner
  "$BENCH_BIN" http --base-url "http://$LISTEN" --requests "$REQUESTS" --out "$RESULTS/http.json"
  stop_runner
fi

# --- summary -------------------------------------------------------------------------------
python3 - "$RESULTS" "$REQUESTS" <<'PY'
import json, os, platform, subprocess, sys, datetime
res, requests = sys.argv[1], sys.argv[2]
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
out = [f"# Bench results", "",
       f"commit {rev()}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
       f"{platform.machine()}, {os.cpu_count()} CPUs. Produced by `make bench` (scripts/bench.sh).", ""]
c = load("criterion.json")
if c:
    out += ["## Criterion (in-process, in-memory ports)", "",
            "| benchmark | mean | 95% CI |", "|---|---:|---|"]
    for r in c["benchmarks"]:
        lo, hi = r["mean_ci_ns"]
        out.append(f"| {r['id']} | {fmt_ns(r['mean_ns'])} | {fmt_ns(lo)} – {fmt_ns(hi)} |")
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
ci = load("cold-init.json")
if ci:
    out += ["## Cold init, release bootstraps (process start → first Runtime API `next`)", "",
            "| function | samples | min ms | median ms | max ms |", "|---|---:|---:|---:|---:|"]
    for r in ci["functions"]:
        out.append(f"| {r['function']} | {r['samples']} | {r['min_ms']:.1f} | {r['median_ms']:.1f} | {r['max_ms']:.1f} |")
    out.append("")
s = load("sizes.json")
if s:
    out += ["## Artefact sizes (target/lambda)", "",
            "| function | bootstrap | bootstrap.zip |", "|---|---:|---:|"]
    mib = lambda b: "-" if b is None else f"{b/1048576:.2f} MiB ({b} B)"
    for r in s["artefacts"]:
        out.append(f"| {r['function']} | {mib(r['bootstrap_bytes'])} | {mib(r['zip_bytes'])} |")
    out.append("")
text = "\n".join(out)
open(os.path.join(res, "summary.md"), "w").write(text)
print(text)
PY
say "done: bench/results/summary.md"
