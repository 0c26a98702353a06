# Local root: the same module as AWS, pointed at a local emulator
# (moto_server started by scripts/emulator.sh, or LocalStack) — what tflocal does.
#
# Normally run through scripts/deploy-local.sh. State lives under .local/ so the
# repository tree stays clean.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # scripts/deploy-local.sh sets the path (-backend-config) under .local/, one per emulator.
  backend "local" {}
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "endpoint" {
  description = "Emulator endpoint (moto_server or LocalStack)."
  type        = string
  default     = "http://127.0.0.1:4566"
}

variable "artifacts_dir" {
  description = "Where <bin>/bootstrap.zip live. Locally these are stubs: a local runner executes the real binaries."
  type        = string
  default     = "../../../.local/artifacts"
}

variable "architecture" {
  description = "x86_64 for the stubs the local runner stands in for; the zips' architecture when an emulator runs them (LocalStack)."
  type        = string
  default     = "x86_64"
}

variable "name_prefix" {
  type    = string
  default = "orders"
}

variable "log_level" {
  type    = string
  default = "info"
}

provider "aws" {
  region     = var.region
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true

  endpoints {
    apigatewayv2 = var.endpoint
    cloudwatch   = var.endpoint
    dynamodb     = var.endpoint
    iam          = var.endpoint
    kinesis      = var.endpoint
    kms          = var.endpoint
    lambda       = var.endpoint
    logs         = var.endpoint
    sns          = var.endpoint
    sqs          = var.endpoint
    sts          = var.endpoint
  }
}

module "orders" {
  source = "../../modules/orders"

  name_prefix   = var.name_prefix
  architecture  = var.architecture
  artifacts_dir = var.artifacts_dir
  log_level     = var.log_level

  # moto accepts but does not return LoggingConfig (perpetual diff): leave it out locally.
  lambda_json_logging = false

  # The emulator forgets everything when it stops; nothing here is worth protecting, and
  # `scripts/deploy-local.sh destroy` must work.
  deletion_protection = false

  # Sign-in is on locally too: the local runner serves this development issuer and checks
  # tokens as API Gateway does (`orders-admin token --customer c-1` / `--staff` mints them).
  jwt_issuer   = var.jwt_issuer
  jwt_audience = ["orders-local"]
}

variable "jwt_issuer" {
  description = "The development OIDC issuer the local runner serves (scripts/local-stack.sh: ISSUER_LISTEN)."
  type        = string
  default     = "http://127.0.0.1:3002"
}
