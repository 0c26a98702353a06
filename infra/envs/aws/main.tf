# Example AWS root: the orders module with the settings a deployment chooses (variables.tf).
# Step by step, including building the arm64 zips and the smoke test: README, "Deploy to AWS".
#
#   scripts/package.sh --arm64                     # -> target/lambda/<bin>/bootstrap.zip
#   terraform -chdir=infra/envs/aws init
#   terraform -chdir=infra/envs/aws apply          # -var-file=prod.tfvars (see example.tfvars)
#
# State is local by default; add a backend (e.g. s3 with a DynamoDB or S3 lock) in a
# backend.tf for shared use.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ project = "orders", managedBy = "terraform" }, var.tags)
  }
}

module "orders" {
  source = "../../modules/orders"

  name_prefix   = var.name_prefix
  artifacts_dir = var.artifacts_dir
  architecture  = var.architecture
  memory_size   = var.memory_size
  currency      = var.currency
  log_level     = var.log_level

  log_retention_days   = var.log_retention_days
  tracing_enabled      = var.tracing_enabled
  reserved_concurrency = var.reserved_concurrency

  kinesis_stream_mode     = var.kinesis_stream_mode
  kinesis_shard_count     = var.kinesis_shard_count
  kinesis_retention_hours = var.kinesis_retention_hours

  deletion_protection    = var.deletion_protection
  point_in_time_recovery = var.point_in_time_recovery
  kms_key_arn            = var.kms_key_arn

  user_pool              = var.user_pool && var.jwt_issuer == null
  jwt_issuer             = var.jwt_issuer
  jwt_audience           = var.jwt_audience
  cors_allow_origins     = var.cors_allow_origins
  throttling_burst_limit = var.throttling_burst_limit
  throttling_rate_limit  = var.throttling_rate_limit

  alarms_enabled             = var.alarms_enabled
  alarm_email                = var.alarm_email
  alarm_sns_topic_arn        = var.alarm_sns_topic_arn
  iterator_age_alarm_seconds = var.iterator_age_alarm_seconds
  api_5xx_alarm_percent      = var.api_5xx_alarm_percent
}
