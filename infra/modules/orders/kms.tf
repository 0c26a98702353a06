# -------------------------------------------------------------------- KMS
# One customer managed key for the tables, the order events stream and the log groups, unless
# var.kms_key_arn brings one. The key policy delegates to IAM (each function's role names the
# key for exactly the operations it needs, see iam.tf) and lets CloudWatch Logs encrypt this
# deployment's log groups, which IAM cannot grant to a service.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
}

data "aws_iam_policy_document" "kms" {
  count = var.kms_key_arn == null ? 1 : 0

  #checkov:skip=CKV_AWS_109: a key policy's Resource "*" is this key only; the account root statement is what lets IAM policies grant use of the key at all.
  #checkov:skip=CKV_AWS_111: same: key policy, Resource "*" means this key.
  #checkov:skip=CKV_AWS_356: same: key policy, Resource "*" means this key.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsThisDeploymentsLogGroups"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${var.name_prefix}-*",
      ]
    }
  }
}

resource "aws_kms_key" "main" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "${var.name_prefix}: DynamoDB tables, order events stream, log groups"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms[0].json

  tags = var.tags
}

resource "aws_kms_alias" "main" {
  count = var.kms_key_arn == null ? 1 : 0

  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.main[0].key_id
}
