#!/usr/bin/env bash
# Local AWS emulator (moto_server, no Docker) for the orders stack.
#
#   scripts/emulator.sh start    # install (once) and start moto_server in the background
#   scripts/emulator.sh stop     # stop the moto_server started by this script
#   scripts/emulator.sh status   # print the emulator state
#
# If AWS_ENDPOINT_URL is set and reachable (e.g. a real LocalStack), `start`
# does nothing. Port: EMULATOR_PORT (default 4566). Logs: .local/moto.log
# (.local/moto-<port>.log / .pid for a non-default port).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
# moto's models, served by granian (scripts/moto_server.py says why).
EMULATOR_SPECS=("moto[server]==5.2.5" "granian==2.8.9")
MARKER="$VENV/.installed-moto-5.2.5-granian-2.8.9"
PORT="${EMULATOR_PORT:-4566}"
HOST="127.0.0.1"
URL="http://$HOST:$PORT"
if [ "$PORT" = "4566" ]; then
  PIDFILE="$LOCAL/moto.pid"; LOG="$LOCAL/moto.log"
else
  PIDFILE="$LOCAL/moto-$PORT.pid"; LOG="$LOCAL/moto-$PORT.log"
fi
START_TIMEOUT="${EMULATOR_START_TIMEOUT:-60}"

log() { echo "emulator: $*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_venv() {
  [ -f "$MARKER" ] && [ -x "$VENV/bin/granian" ] && return 0
  mkdir -p "$LOCAL"
  command -v python3 >/dev/null || die "python3 is required"
  log "installing ${EMULATOR_SPECS[*]} into .local/venv (one-time)..."
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >"$LOCAL/venv-install.log" 2>&1 \
      || { tail -n 20 "$LOCAL/venv-install.log" >&2; die "python3 -m venv failed (on Debian: apt-get install python3-venv)"; }
  fi
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        "${EMULATOR_SPECS[@]}" >>"$LOCAL/venv-install.log" 2>&1; then
    tail -n 30 "$LOCAL/venv-install.log" >&2
    die "pip install ${EMULATOR_SPECS[*]} failed (see .local/venv-install.log)"
  fi
  touch "$MARKER"
}

# PID from the pid file if that process is alive and is a moto_server.
our_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    local cmd; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    case "$cmd" in *moto*) ;; *) return 1 ;; esac
  fi
  echo "$pid"
}

# Any HTTP answer on the port?
port_answers() { curl -s -o /dev/null --max-time 2 "$URL/" ; }

# Does the thing on the port look like moto? (moto serves /moto-api/)
is_moto() {
  local body; body="$(curl -s --max-time 2 "$URL/moto-api/" 2>/dev/null || true)"
  case "$body" in *[Mm]oto*) return 0 ;; *) return 1 ;; esac
}

external_endpoint_reachable() {
  [ -n "${AWS_ENDPOINT_URL:-}" ] || return 1
  curl -s -o /dev/null --max-time 3 "$AWS_ENDPOINT_URL"
}

cmd_start() {
  if external_endpoint_reachable; then
    # Our own moto on the same URL counts as "reachable" too; that is fine.
    log "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL is reachable; not starting moto"
    return 0
  fi
  if pid="$(our_pid)"; then
    if port_answers; then log "moto already running (pid $pid) on $URL"; return 0; fi
  fi
  if port_answers; then
    if is_moto; then log "reusing moto already listening on $URL"; return 0; fi
    die "port $PORT is in use by something that is not moto (set EMULATOR_PORT)"
  fi

  ensure_venv
  mkdir -p "$LOCAL"
  : >"$LOG"
  # Detach fully: no stdin, all output (moto logs noisy Docker/Lambda errors) to the log.
  # scripts/moto_server.py is moto with fixes for concurrency and speed (scripts/moto_patches).
  # The process that serves writes the pid file (the launcher is not the one to pause or stop).
  rm -f "$PIDFILE"
  nohup "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H "$HOST" -p "$PORT" --pid-file "$PIDFILE" \
    </dev/null >>"$LOG" 2>&1 &
  local launcher=$!

  local waited=0
  while ! { port_answers && [ -s "$PIDFILE" ]; }; do
    if ! kill -0 "$launcher" 2>/dev/null; then
      rm -f "$PIDFILE"
      log "moto_server exited during startup; last log lines:"
      tail -n 30 "$LOG" >&2 || true
      exit 1
    fi
    if [ "$waited" -ge $((START_TIMEOUT * 4)) ]; then
      log "moto_server did not answer on $URL within ${START_TIMEOUT}s; last log lines:"
      tail -n 30 "$LOG" >&2 || true
      kill "$launcher" 2>/dev/null || true
      rm -f "$PIDFILE"
      exit 1
    fi
    sleep 0.25; waited=$((waited + 1))
  done
  log "moto started (pid $(cat "$PIDFILE")) on $URL, log: ${LOG#"$ROOT"/}"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PIDFILE"
    log "no moto started by this script is running"
    return 0
  fi
  # Its launcher holds the listening socket: wait for both, so the port is free afterwards.
  local launcher; launcher="$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
  case "$(tr '\0' ' ' <"/proc/$launcher/cmdline" 2>/dev/null || true)" in
    *moto_server*) ;;
    *) launcher="" ;;
  esac
  kill -CONT "$pid" 2>/dev/null || true  # a paused server cannot exit
  kill "$pid" $launcher 2>/dev/null || true
  local p
  for p in "$pid" $launcher; do
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -f "$PIDFILE"
  log "moto stopped (pid $pid)"
}

cmd_status() {
  local pid
  if [ -n "${AWS_ENDPOINT_URL:-}" ] && external_endpoint_reachable && ! pid="$(our_pid)"; then
    echo "external endpoint: $AWS_ENDPOINT_URL (reachable)"
    return 0
  fi
  if pid="$(our_pid)"; then
    if port_answers; then echo "running: moto pid $pid on $URL"; return 0; fi
    echo "starting or unhealthy: moto pid $pid not answering on $URL"; return 1
  fi
  if port_answers; then
    if is_moto; then echo "running: moto on $URL (not started by this script)"; return 0; fi
    echo "port $PORT in use by something else"; return 1
  fi
  echo "stopped"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
