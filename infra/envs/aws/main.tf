# AWS root. Build the artefacts first:
#   cargo lambda build --release --arm64 --output-format zip   # -> target/lambda/<bin>/bootstrap.zip
#   terraform -chdir=infra/envs/aws init && terraform -chdir=infra/envs/aws apply
#
# State is local by default; add a backend (e.g. s3) in a backend.tf for shared use.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "name_prefix" {
  type    = string
  default = "orders"
}

variable "architecture" {
  type    = string
  default = "arm64"
}

variable "artifacts_dir" {
  type    = string
  default = "../../../target/lambda"
}

variable "currency" {
  type    = string
  default = "USD"
}

variable "log_level" {
  type    = string
  default = "info"
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project   = "orders"
      managedBy = "terraform"
    }
  }
}

module "orders" {
  source = "../../modules/orders"

  name_prefix   = var.name_prefix
  architecture  = var.architecture
  artifacts_dir = var.artifacts_dir
  currency      = var.currency
  log_level     = var.log_level
}
