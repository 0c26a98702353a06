#!/usr/bin/env bash
# Writes a Terraform CLI config that installs hashicorp/* providers from a
# local filesystem mirror, if one exists on this machine, and prints its path.
# If no mirror is found, prints nothing (the normal registry is then used).
#
# Usage:  cfg="$(scripts/tf-cli-config.sh)"; [ -n "$cfg" ] && export TF_CLI_CONFIG_FILE="$cfg"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$ROOT/.local"
OUT="$OUT_DIR/terraformrc"

has_aws() { [ -d "$1/registry.terraform.io/hashicorp/aws" ]; }

mirror=""
for d in "${TF_PLUGIN_MIRROR:-}" /opt/tf-plugins "$HOME/.terraform.d/plugins" \
         /usr/share/terraform/plugins /usr/local/share/terraform/plugins; do
  [ -n "$d" ] || continue
  if has_aws "$d"; then mirror="$d"; break; fi
done

if [ -z "$mirror" ]; then
  # Last resort: a bounded search of the filesystem.
  hit="$(timeout 20 find / -maxdepth 6 -type d -path '*registry.terraform.io/hashicorp/aws' \
          -not -path '*/.terraform/*' -not -path '/proc/*' 2>/dev/null | head -n1 || true)"
  if [ -n "$hit" ]; then mirror="${hit%/registry.terraform.io/hashicorp/aws}"; fi
fi

[ -n "$mirror" ] || exit 0

mkdir -p "$OUT_DIR"
cat >"$OUT" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
CFG
echo "$OUT"
