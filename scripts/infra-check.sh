#!/usr/bin/env bash
# Checks the Terraform the strongest ways available without an AWS account.
#
#   scripts/infra-check.sh static   # fmt -check, init -backend=false + validate of every root, checkov
#   scripts/infra-check.sh apply    # apply infra/envs/aws to a fresh emulator, then destroy it
#   scripts/infra-check.sh          # both (part of `make lint`, hence `make test` and CI)
#
# `apply` starts its own moto_server on INFRA_CHECK_PORT (default: the first free of 4579…4570)
# with its own state under .local/infra-check/, so it never touches a running local stack. It applies the AWS example root
# (not the local one, which every test run applies anyway) with the non-default branches switched
# on: a Cognito user pool as the JWT issuer, CORS, X-Ray, a provisioned stream, reserved concurrency, an alarm e-mail.
# checkov comes from PyPI into its own venv, .local/checkov-venv (pinned below): it pins boto3
# and botocore versions older than the ones moto needs, so it cannot share .local/venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
WORK="$LOCAL/infra-check"
CHECKOV_VERSION="3.3.30"
CHECKOV_VENV="$LOCAL/checkov-venv"
CHECKOV_MARKER="$CHECKOV_VENV/.installed-checkov-$CHECKOV_VERSION"
PORT="${INFRA_CHECK_PORT:-4579}"
BINS=(place-order process-order aggregate query relay live notify aggregate-activity)

say() { echo "infra-check: $*" >&2; }
die() { say "error: $*"; exit 1; }

command -v terraform >/dev/null || die "terraform is not on PATH"
mkdir -p "$WORK"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
cfg="$("$ROOT/scripts/tf-cli-config.sh")"
if [ -n "$cfg" ]; then export TF_CLI_CONFIG_FILE="$cfg"; fi

# Runs a command with its output in a log file; shows the end of it if it fails.
logged() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    die "failed: $* (full output: ${log#"$ROOT"/})"
  fi
}

ensure_checkov() {
  [ -f "$CHECKOV_MARKER" ] && [ -x "$CHECKOV_VENV/bin/checkov" ] && return 0
  command -v python3 >/dev/null || die "python3 is required for checkov"
  say "installing checkov $CHECKOV_VERSION into .local/checkov-venv (one-time)..."
  if [ ! -x "$CHECKOV_VENV/bin/python" ]; then
    logged "$WORK/checkov-install.log" python3 -m venv "$CHECKOV_VENV"
  fi
  logged "$WORK/checkov-install.log" "$CHECKOV_VENV/bin/python" -m pip install --quiet \
    --disable-pip-version-check --no-input "checkov==$CHECKOV_VERSION"
  touch "$CHECKOV_MARKER"
}

check_static() {
  say "terraform fmt -check"
  terraform fmt -check -recursive "$ROOT/infra" >/dev/null \
    || { terraform fmt -check -recursive -diff "$ROOT/infra" >&2 || true; die "run: terraform fmt -recursive infra"; }

  for dir in "$ROOT"/infra/envs/*/; do
    local name; name="$(basename "$dir")"
    say "terraform validate infra/envs/$name"
    # .terraform stays out of the tree; the lock file in the root pins the provider.
    export TF_DATA_DIR="$WORK/validate-$name"
    logged "$WORK/validate-$name.log" terraform -chdir="$dir" init -backend=false -input=false -no-color
    logged "$WORK/validate-$name.log" terraform -chdir="$dir" validate -no-color
    unset TF_DATA_DIR
  done

  # A skip must say why: checkov accepts a bare `#checkov:skip=CKV_X`, we do not.
  local bare
  bare="$(grep -rnE '#[[:space:]]*checkov:skip=[A-Z0-9_]+[[:space:]]*(:[[:space:]]*)?$' "$ROOT/infra" --include='*.tf' || true)"
  [ -z "$bare" ] || { echo "$bare" >&2; die "checkov skips without a reason (write #checkov:skip=CKV_ID: why it does not apply)"; }

  ensure_checkov
  say "checkov $CHECKOV_VERSION"
  # Run from infra/ so reported paths are short; exit status 1 on any failed check.
  if ! (cd "$ROOT/infra" && "$CHECKOV_VENV/bin/checkov" -d . --framework terraform --skip-download \
          --compact --quiet >"$WORK/checkov.log" 2>&1); then
    cat "$WORK/checkov.log" >&2
    die "checkov found failed checks (fix them, or skip inline with the reason the check does not apply)"
  fi
  grep -E 'Passed checks|Failed checks' "$WORK/checkov.log" >&2 || true
}

check_apply() {
  command -v python3 >/dev/null || die "python3 is required"
  command -v curl >/dev/null || die "curl is required"
  if [ -z "${INFRA_CHECK_PORT:-}" ]; then
    # Another check (a parallel CI job) may hold the default port: take the next free one.
    while curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; do
      PORT=$((PORT - 1))
      [ "$PORT" -ge 4570 ] || die "ports 4570-4579 are all in use; set INFRA_CHECK_PORT"
    done
  fi
  local endpoint="http://127.0.0.1:$PORT"
  if curl -s -o /dev/null --max-time 2 "$endpoint/"; then
    die "port $PORT is already in use; set INFRA_CHECK_PORT to a free port"
  fi

  local state="$WORK/apply-$PORT.tfstate" artifacts="$WORK/artifacts-$PORT"
  rm -f "$state" "$state.backup"
  # Stub zips: the emulator stores functions but never runs them.
  python3 - "$artifacts" "${BINS[@]}" <<'PY'
import io, os, sys, zipfile
out, bins = sys.argv[1], sys.argv[2:]
for b in bins:
    os.makedirs(os.path.join(out, b), exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        z.writestr(info, "#!/bin/sh\nexit 1\n")
    with open(os.path.join(out, b, "bootstrap.zip"), "wb") as f:
        f.write(buf.getvalue())
PY

  EMULATOR_PORT="$PORT" AWS_ENDPOINT_URL= "$ROOT/scripts/emulator.sh" start
  trap 'EMULATOR_PORT="$PORT" AWS_ENDPOINT_URL= "$ROOT/scripts/emulator.sh" stop >/dev/null 2>&1 || true' EXIT

  # The AWS root has no endpoint overrides: the provider honours AWS_ENDPOINT_URL for every
  # service, and test credentials make it skip the instance metadata service.
  export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
         AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export TF_DATA_DIR="$WORK/apply-data-$PORT"
  local dir="$ROOT/infra/envs/aws"
  local vars=(
    -var "artifacts_dir=$artifacts" -var "name_prefix=orders-check"
    -var deletion_protection=false
    -var user_pool=true
    -var 'cors_allow_origins=["https://dashboard.example.com"]'
    -var tracing_enabled=true
    -var kinesis_stream_mode=PROVISIONED -var kinesis_shard_count=2
    -var 'reserved_concurrency={"place-order"=5,"aggregate"=2}'
    -var alarm_email=oncall@example.com
  )
  local log="$WORK/apply-$PORT.log"
  logged "$log" terraform -chdir="$dir" init -backend=false -input=false -no-color
  say "terraform apply infra/envs/aws -> fresh emulator on :$PORT"
  # -state: the AWS root's local backend would otherwise write terraform.tfstate into the tree.
  if ! terraform -chdir="$dir" apply -auto-approve -input=false -no-color \
      -state="$state" "${vars[@]}" >>"$log" 2>&1; then
    # Once in CI, on a starved machine, the emulator answered one CreateFunction after the
    # provider had given up; its retry then met "Function already exist". That says nothing
    # about the configuration: once more, from nothing, and a second failure is real.
    mv "$log" "$log.first"
    tail -n 5 "$log.first" >&2
    say "apply failed (log: $log.first); once more on a fresh emulator"
    EMULATOR_PORT="$PORT" AWS_ENDPOINT_URL= "$ROOT/scripts/emulator.sh" stop >/dev/null 2>&1 || true
    rm -f "$state" "$state.backup"
    EMULATOR_PORT="$PORT" AWS_ENDPOINT_URL= "$ROOT/scripts/emulator.sh" start
    logged "$log" terraform -chdir="$dir" apply -auto-approve -input=false -no-color \
      -state="$state" "${vars[@]}"
  fi
  grep -E '^Apply complete!' "$log" >&2
  say "terraform destroy"
  logged "$log" terraform -chdir="$dir" destroy -auto-approve -input=false -no-color \
    -state="$state" "${vars[@]}"
  grep -E '^Destroy complete!' "$log" >&2
  local left
  left="$(terraform -chdir="$dir" state list -state="$state" 2>/dev/null || true)"
  [ -z "$left" ] || { echo "$left" >&2; die "resources left in state after destroy"; }
}

case "${1:-all}" in
  static) check_static ;;
  apply) check_apply ;;
  all) check_static; check_apply ;;
  *) echo "usage: $0 [static|apply|all]" >&2; exit 2 ;;
esac
