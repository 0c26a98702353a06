#!/usr/bin/env bash
# The local stack: emulator + Terraform + the real function binaries behind 127.0.0.1:3000.
#
#   scripts/local-stack.sh run    # foreground; Ctrl-C stops everything (`make run`)
#   scripts/local-stack.sh test   # bring the stack up, run every test, tear down (`make test`)
#
# Steps: build the binaries (debug) -> start moto_server unless AWS_ENDPOINT_URL is reachable
# -> terraform apply infra/envs/local -> local-runner reads the functions, routes and
# environment Terraform created and serves them. Logs: .local/*.log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"
MODE="${1:-run}"
LISTEN="${LISTEN:-127.0.0.1:3000}"
# Lambda's Invoke API for the functions (what `orders-admin dlq replay` invokes; point it here
# with AWS_ENDPOINT_URL_LAMBDA).
LAMBDA_LISTEN="${LAMBDA_LISTEN:-127.0.0.1:3001}"
export ORDERS_LAMBDA_URL="http://$LAMBDA_LISTEN"
# The development OIDC issuer the API's JWT authorizer trusts (Terraform is told its URL);
# `orders-admin token` signs with its key under .local/dev-oidc.
ISSUER_LISTEN="${ISSUER_LISTEN:-127.0.0.1:3002}"
export ORDERS_ISSUER="http://$ISSUER_LISTEN"
export ORDERS_ISSUER_DIR="$LOCAL/dev-oidc"
# The WebSocket API (live updates), when Terraform created one: clients connect to
# ws://$WS_LISTEN/live, the functions' @connections calls land there too.
WS_LISTEN="${WS_LISTEN:-127.0.0.1:3003}"
export ORDERS_LIVE_URL="ws://$WS_LISTEN/live"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${EMULATOR_PORT:-4566}}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export ORDERS_API_URL="http://$LISTEN"

say() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

for tool in cargo terraform python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is required but not on PATH"
done
if curl -s -o /dev/null --max-time 1 "http://$LISTEN/"; then
  die "something already listens on $LISTEN (another 'make run'?); stop it first"
fi

started_emulator=0
runner_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    wait "$runner_pid" 2>/dev/null || true
  fi
  scripts/fault-proxy.sh stop >/dev/null 2>&1 || true
  if [ "$started_emulator" = 1 ]; then scripts/emulator.sh stop >/dev/null 2>&1 || true; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building the functions and the local runner"
cargo build --quiet --workspace --bins

if ! scripts/emulator.sh status >/dev/null 2>&1; then started_emulator=1; fi
scripts/emulator.sh start
say "applying infra/envs/local to $AWS_ENDPOINT_URL"
scripts/deploy-local.sh

suffix=""; [ "${EMULATOR_PORT:-4566}" = 4566 ] || suffix="-$EMULATOR_PORT"
export ORDERS_OUTPUTS="$LOCAL/outputs$suffix.json"
api_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_id"]["value"])' "$ORDERS_OUTPUTS")"
live_api_id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("live_api_id",{}).get("value",""))' "$ORDERS_OUTPUTS")"
ws_args=()
if [ -n "$live_api_id" ]; then ws_args=(--ws-api-id "$live_api_id" --ws-listen "$WS_LISTEN"); fi
: >"$LOCAL/cold-init$suffix.jsonl"
runner=(target/debug/local-runner --api-id "$api_id" --listen "$LISTEN" --lambda-listen "$LAMBDA_LISTEN" --bin-dir target/debug
        --issuer-listen "$ISSUER_LISTEN" --issuer-dir "$ORDERS_ISSUER_DIR"
        --metrics-file "$LOCAL/cold-init$suffix.jsonl" --checkpoint-file "$LOCAL/checkpoints$suffix.json"
        ${ws_args[@]+"${ws_args[@]}"})

case "$MODE" in
  run)
    say "serving http://$LISTEN (Ctrl-C to stop); try: curl -s http://$LISTEN/health"
    say "sign-in is on: TOKEN=\$(target/debug/orders-admin token --customer c-1)  (or --staff); curl -H \"Authorization: Bearer \$TOKEN\" http://$LISTEN/orders"
    say "Lambda Invoke API on $ORDERS_LAMBDA_URL (orders-admin dlq replay: AWS_ENDPOINT_URL_LAMBDA=$ORDERS_LAMBDA_URL)"
    "${runner[@]}" &
    runner_pid=$!
    wait "$runner_pid"
    ;;
  test)
    # The runner, optionally with its functions' AWS calls sent through the fault proxy.
    start_runner() {
      "${runner[@]}" "$@" >>"$LOCAL/runner.log" 2>&1 &
      runner_pid=$!
      for _ in $(seq 1 120); do
        curl -s -o /dev/null --max-time 2 "http://$LISTEN/health" && return 0
        kill -0 "$runner_pid" 2>/dev/null || { tail -n 40 "$LOCAL/runner.log" >&2; die "local-runner exited"; }
        sleep 0.5
      done
      die "local-runner did not answer on $LISTEN"
    }
    stop_runner() {
      kill -TERM "$runner_pid" 2>/dev/null || true
      wait "$runner_pid" 2>/dev/null || true
      runner_pid=""
    }
    : >"$LOCAL/runner.log"
    start_runner
    say "stack up on http://$LISTEN (runner log: .local/runner.log)"
    # The emulator's own patches, against a model (in process; needs the venv emulator.sh made).
    if [ -x "$LOCAL/venv/bin/python" ]; then
      say "emulator patches (scripts/moto_patches)"
      "$LOCAL/venv/bin/python" -m unittest discover -s scripts/moto_patches -p 'test_*.py'
    fi
    # Fault-injection tests pause the emulator, inject AWS errors or replay shared queues:
    # they are #[ignore]d in the main run and run afterwards, one at a time, with the
    # functions talking to the emulator through the fault proxy (scripts/fault-proxy.sh).
    pidfile="$LOCAL/moto$suffix.pid"
    if [ -f "$pidfile" ]; then export ORDERS_EMULATOR_PID="$(cat "$pidfile")"; fi
    if cargo nextest --version >/dev/null 2>&1; then
      main_tests=(cargo nextest run --workspace --no-fail-fast --failure-output final)
      serial_tests=(cargo nextest run --workspace --no-fail-fast --failure-output final --run-ignored only --test-threads 1)
    else
      main_tests=(cargo test --workspace --no-fail-fast)
      serial_tests=(cargo test --workspace --no-fail-fast -- --ignored --test-threads 1)
    fi
    status=0
    "${main_tests[@]}" || status=$?
    say "fault-injection tests (serial, functions behind the fault proxy)"
    scripts/fault-proxy.sh start
    export ORDERS_FAULT_PROXY="$(scripts/fault-proxy.sh url)"
    stop_runner
    start_runner --functions-endpoint "$ORDERS_FAULT_PROXY"
    "${serial_tests[@]}" || status=$?
    stop_runner
    scripts/fault-proxy.sh stop
    start_runner
    say "browser test (headless Chromium)"; scripts/browser-test.sh || status=$?
    exit "$status"
    ;;
  *) die "usage: $0 run|test" ;;
esac
