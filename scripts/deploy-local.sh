#!/usr/bin/env bash
# Deploys the orders stack (infra/envs/local -> infra/modules/orders) to the
# local emulator started by scripts/emulator.sh (or to AWS_ENDPOINT_URL).
#
#   scripts/deploy-local.sh            # init + apply, writes .local/outputs.json
#   scripts/deploy-local.sh --fresh    # forget the old local state first (emulator restarted)
#   scripts/deploy-local.sh destroy    # terraform destroy
#   scripts/deploy-local.sh --artifacts target/lambda [--arch arm64]
#                                      # real zips (scripts/package.sh) instead of stubs: for an
#                                      # emulator that runs Lambda itself (LocalStack, see
#                                      # localstack/README.md)
#
# The state is detected as stale automatically when the emulator does not know
# the orders table recorded in it. Terraform's full output: .local/terraform.log
# (.local/terraform-<port>.log for another emulator port)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
TF_DIR="$ROOT/infra/envs/local"
# One state (and outputs file) per emulator port, so a second stack on another port (a
# benchmark, a CI check) never clobbers the first one's state.
SUFFIX=""
if [ "${EMULATOR_PORT:-4566}" != "4566" ]; then SUFFIX="-$EMULATOR_PORT"; fi
STATE_DIR="$LOCAL/terraform$SUFFIX"
STATE="$STATE_DIR/local.tfstate"   # passed to the "local" backend at init
TF_LOG_FILE="$LOCAL/terraform$SUFFIX.log"
ARTIFACTS="$LOCAL/artifacts"
OUTPUTS="$LOCAL/outputs$SUFFIX.json"
BINS=(place-order process-order aggregate query relay live notify aggregate-activity)

ENDPOINT="${AWS_ENDPOINT_URL:-http://127.0.0.1:${EMULATOR_PORT:-4566}}"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

action="apply"
fresh=0
real_artifacts=""
arch="x86_64"
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1 ;;
    destroy) action="destroy" ;;
    apply) action="apply" ;;
    --artifacts) real_artifacts="${2:?--artifacts needs a directory}"; shift ;;
    --arch) arch="${2:?--arch needs x86_64 or arm64}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "usage: $0 [apply|destroy] [--fresh] [--artifacts DIR [--arch x86_64|arm64]]" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "deploy-local: $*" >&2; }
fail() {
  say "error: $*"
  if [ -s "$TF_LOG_FILE" ]; then
    say "last lines of ${TF_LOG_FILE#"$ROOT"/}:"
    tail -n 40 "$TF_LOG_FILE" >&2
  fi
  exit 1
}

command -v terraform >/dev/null || fail "terraform is not on PATH"
command -v python3 >/dev/null || fail "python3 is required"

mkdir -p "$STATE_DIR" "$ARTIFACTS"
: >"$TF_LOG_FILE"
export TF_IN_AUTOMATION=1
export TF_INPUT=0
export CHECKPOINT_DISABLE=1
# Keep .terraform (providers, modules) out of the repository tree.
export TF_DATA_DIR="$STATE_DIR/data"
cfg="$("$ROOT/scripts/tf-cli-config.sh")"
if [ -n "$cfg" ]; then export TF_CLI_CONFIG_FILE="$cfg"; fi

curl -s -o /dev/null --max-time 3 "$ENDPOINT" \
  || fail "emulator not reachable at $ENDPOINT (run scripts/emulator.sh start)"

if [ -n "$real_artifacts" ]; then
  ARTIFACTS="$(cd "$real_artifacts" && pwd)" || fail "no directory $real_artifacts"
  for b in "${BINS[@]}"; do
    [ -f "$ARTIFACTS/$b/bootstrap.zip" ] || fail "$ARTIFACTS/$b/bootstrap.zip is missing (run scripts/package.sh)"
  done
fi
tf_vars=(-var "endpoint=$ENDPOINT" -var "region=$REGION" -var "artifacts_dir=$ARTIFACTS" -var "architecture=$arch"
         -var "jwt_issuer=${ORDERS_ISSUER:-http://127.0.0.1:3002}")

# --- stub artefacts: moto cannot run Lambda code; a local runner executes target/ binaries.
[ -n "$real_artifacts" ] || python3 - "$ARTIFACTS" "${BINS[@]}" <<'PY'
import os, sys, zipfile, io
out, bins = sys.argv[1], sys.argv[2:]
for b in bins:
    d = os.path.join(out, b)
    os.makedirs(d, exist_ok=True)
    script = (
        "#!/bin/sh\n"
        f"# Stub for '{b}': locally the real binary is run by the local runner\n"
        "# (tools/local-runner) from target/, not by the emulator.\n"
        f"echo 'stub {b}: executed by the local runner, not by the emulator' >&2\n"
        "exit 1\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))  # reproducible
        info.external_attr = (0o100755 << 16)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, script)
    data = buf.getvalue()
    path = os.path.join(d, "bootstrap.zip")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                continue  # unchanged: keeps source_code_hash stable
    except FileNotFoundError:
        pass
    with open(path, "wb") as f:
        f.write(data)
PY

tf() { terraform -chdir="$TF_DIR" "$@" >>"$TF_LOG_FILE" 2>&1; }

tf init -input=false -no-color -reconfigure -backend-config="path=$STATE" || fail "terraform init failed"

# --- stale state: moto keeps everything in memory, so after an emulator restart
# the state file describes resources that no longer exist.
if [ "$fresh" -eq 0 ] && [ -s "$STATE" ]; then
  table="$(python3 - "$STATE" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
for r in s.get("resources", []):
    if r.get("type") == "aws_dynamodb_table" and r.get("name") == "orders":
        for i in r.get("instances", []):
            print(i.get("attributes", {}).get("name", "")); sys.exit(0)
PY
)"
  if [ -n "$table" ]; then
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$ENDPOINT/" \
      -H 'Content-Type: application/x-amz-json-1.0' \
      -H 'X-Amz-Target: DynamoDB_20120810.DescribeTable' \
      -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/$REGION/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
      -d "{\"TableName\":\"$table\"}" || true)"
    if [ "$code" = "400" ]; then
      say "state does not match the emulator (table $table missing): starting fresh"
      fresh=1
    fi
  fi
fi
if [ "$fresh" -eq 1 ]; then
  rm -f "$STATE" "$STATE.backup"
fi

if [ "$action" = "destroy" ]; then
  tf destroy -auto-approve -input=false -no-color "${tf_vars[@]}" || fail "terraform destroy failed"
  rm -f "$OUTPUTS"
  say "destroyed (endpoint $ENDPOINT)"
  exit 0
fi

PLAN="$STATE_DIR/plan"
tf plan -input=false -no-color -out="$PLAN" "${tf_vars[@]}" || fail "terraform plan failed"
# moto creates and deletes everything the module uses, but some in-place updates it does not
# implement (UpdateStage; AssociateKmsKey for a log group's key), and the provider retries
# those for many minutes. When the Terraform changed under a running emulator in such a
# way, recreate the stack instead.
changes="$(terraform -chdir="$TF_DIR" show -json "$PLAN" 2>>"$TF_LOG_FILE" | python3 -c '
import json, sys
cannot_update = {"aws_apigatewayv2_stage", "aws_cloudwatch_log_group"}
plan = json.load(sys.stdin)
print(" ".join(sorted(c["address"] for c in plan.get("resource_changes", [])
                      if c["type"] in cannot_update and "update" in c["change"]["actions"])))
')" || fail "could not read the plan"
if [ -n "$changes" ]; then
  say "$(wc -w <<<"$changes") resources would change in a way the emulator cannot update:"
  say "recreating the stack (its data is lost); details in ${TF_LOG_FILE#"$ROOT"/}"
  echo "changed in place: $changes" >>"$TF_LOG_FILE"
  tf destroy -auto-approve -input=false -no-color "${tf_vars[@]}" || fail "terraform destroy failed"
  tf plan -input=false -no-color -out="$PLAN" "${tf_vars[@]}" || fail "terraform plan failed"
fi
tf apply -auto-approve -input=false -no-color "$PLAN" || fail "terraform apply failed"
rm -f "$PLAN"
terraform -chdir="$TF_DIR" output -json >"$OUTPUTS.tmp" 2>>"$TF_LOG_FILE" || fail "terraform output failed"
mv "$OUTPUTS.tmp" "$OUTPUTS"

summary="$(grep -E '^Apply complete!' "$TF_LOG_FILE" | tail -n1 || true)"
say "${summary:-applied} -> .local/outputs.json (endpoint $ENDPOINT)"
