#!/usr/bin/env bash
# A protocol-aware AWS fault proxy (microburst, pinned) between the functions and the emulator.
#
#   scripts/fault-proxy.sh start    # install (once) and start it in front of AWS_ENDPOINT_URL
#   scripts/fault-proxy.sh stop     # stop the proxy started by this script
#   scripts/fault-proxy.sh url      # print its URL
#
# It forwards everything unchanged until rules are posted to its control API
# (`POST $URL/_microburst/rules`): then it answers matching requests with throttling,
# TransactionCanceledException, 5xx, latency or connection resets in the exact wire format
# the AWS SDK parses, so the functions' own retry and error paths run for real. Port:
# FAULT_PROXY_PORT (default 4598). Logs: .local/fault-proxy-<port>.log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/microburst-venv"
SPEC="microburst==0.10.0"
MARKER="$VENV/.installed-microburst-0.10.0"
PORT="${FAULT_PROXY_PORT:-4598}"
URL="http://127.0.0.1:$PORT"
PIDFILE="$LOCAL/fault-proxy-$PORT.pid"
LOG="$LOCAL/fault-proxy-$PORT.log"
UPSTREAM="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"

log() { echo "fault-proxy: $*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_venv() {
  [ -f "$MARKER" ] && [ -x "$VENV/bin/microburst" ] && return 0
  mkdir -p "$LOCAL"
  log "installing $SPEC into .local/microburst-venv (one-time)..."
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >"$LOCAL/microburst-install.log" 2>&1 \
      || { tail -n 20 "$LOCAL/microburst-install.log" >&2; die "python3 -m venv failed"; }
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$SPEC" \
    >>"$LOCAL/microburst-install.log" 2>&1 \
    || { tail -n 30 "$LOCAL/microburst-install.log" >&2; die "pip install $SPEC failed"; }
  touch "$MARKER"
}

our_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_start() {
  if our_pid >/dev/null; then
    log "already running on $URL"
    return 0
  fi
  if curl -s -o /dev/null --max-time 2 "$URL/"; then
    die "port $PORT is in use; set FAULT_PROXY_PORT to a free port"
  fi
  ensure_venv
  "$VENV/bin/microburst" --host 127.0.0.1 --port "$PORT" --upstream "$UPSTREAM" --no-resign \
    >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if curl -s --max-time 1 "$URL/_microburst/health" | grep -q '"ok"'; then
      log "started (pid $(cat "$PIDFILE")) on $URL -> $UPSTREAM, log: ${LOG#"$ROOT"/}"
      return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOG" >&2; die "microburst exited"; }
    sleep 0.1
  done
  die "microburst did not answer on $URL"
}

cmd_stop() {
  local pid
  if pid="$(our_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
