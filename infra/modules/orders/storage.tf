# ---------------------------------------------------------------- DynamoDB

resource "aws_dynamodb_table" "orders" {
  name         = "${var.name_prefix}-orders"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "orderId"

  attribute {
    name = "orderId"
    type = "S"
  }
  attribute {
    name = "customerId"
    type = "S"
  }
  attribute {
    name = "statusShard"
    type = "S"
  }
  attribute {
    name = "listShard"
    type = "S"
  }
  attribute {
    name = "customerStatus"
    type = "S"
  }

  # The outbox: every committed write, with the item before and after, in write order per
  # order. The relay function publishes each new version's event from it (lambda.tf).
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  global_secondary_index {
    name               = "byCustomer"
    hash_key           = "customerId"
    range_key          = "orderId"
    projection_type    = "INCLUDE"
    non_key_attributes = local.order_projection
  }
  global_secondary_index {
    name               = "byStatus"
    hash_key           = "statusShard"
    range_key          = "orderId"
    projection_type    = "INCLUDE"
    non_key_attributes = local.order_projection
  }
  global_secondary_index {
    name               = "byCreated"
    hash_key           = "listShard"
    range_key          = "orderId"
    projection_type    = "INCLUDE"
    non_key_attributes = local.order_projection
  }
  # One customer's orders of one status: a page is one Query, however many orders of other
  # statuses the customer has (a filter on byCustomer would read them all).
  global_secondary_index {
    name               = "byCustomerStatus"
    hash_key           = "customerStatus"
    range_key          = "orderId"
    projection_type    = "INCLUDE"
    non_key_attributes = local.order_projection
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

# The catalog. Stock is only changed by conditional updates in order transactions.
resource "aws_dynamodb_table" "products" {
  name         = "${var.name_prefix}-products"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "productId"

  attribute {
    name = "productId"
    type = "S"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

# Time-bucketed analytics: one item per partition, `pk` = `<bucket>/<item>` with buckets
# m#…, h#…, d#… and items totals, products#NN, customers#NN (crates/orders-core/src/analytics.rs).
resource "aws_dynamodb_table" "analytics" {
  name         = "${var.name_prefix}-analytics"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

# First occurrence of each event on the stream (one item per order, an attribute per event),
# so the aggregate skips producer duplicates.
resource "aws_dynamodb_table" "event_claims" {
  name         = "${var.name_prefix}-event-claims"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "orderId"

  attribute {
    name = "orderId"
    type = "S"
  }

  # Claims outlive every way an event can come back: the stream's retention plus a dead
  # letter's (DEDUP_TTL_HOURS = local.event_claim_hours).
  # Records expire IDEMPOTENCY_TTL_HOURS after the claim (epoch seconds written by the code).
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

resource "aws_dynamodb_table" "idempotency" {
  name         = "${var.name_prefix}-idempotency"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "idempotencyKey"

  attribute {
    name = "idempotencyKey"
    type = "S"
  }

  # Records expire IDEMPOTENCY_TTL_HOURS after the claim (epoch seconds written by the code).
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }
  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

# ----------------------------------------------------------------- Kinesis

resource "aws_kinesis_stream" "events" {
  name             = "${var.name_prefix}-order-events"
  retention_period = var.kinesis_retention_hours
  shard_count      = var.kinesis_stream_mode == "PROVISIONED" ? var.kinesis_shard_count : null

  stream_mode_details {
    stream_mode = var.kinesis_stream_mode
  }

  # Producers need kms:GenerateDataKey and consumers kms:Decrypt on this key (iam.tf).
  encryption_type = "KMS"
  kms_key_id      = local.kms_key_arn

  tags = var.tags
}

# Storefront activity (POST /events), partitioned by session: a stream of its own, so a
# storefront's volume never delays or throttles the order events' consumers.
resource "aws_kinesis_stream" "activity" {
  name             = "${var.name_prefix}-activity"
  retention_period = var.kinesis_retention_hours
  shard_count      = var.kinesis_stream_mode == "PROVISIONED" ? var.kinesis_shard_count : null

  stream_mode_details {
    stream_mode = var.kinesis_stream_mode
  }

  encryption_type = "KMS"
  kms_key_id      = local.kms_key_arn

  tags = var.tags
}

# --------------------------------------------------------------------- SQS

resource "aws_sqs_queue" "dlq" {
  for_each = local.dead_letter_owners

  name = "${var.name_prefix}-${each.value}-dlq"
  # The maximum: time to notice a dead letter, fix the cause and replay it (orders-admin).
  message_retention_seconds = local.dlq_retention_seconds
  # SSE-SQS: encrypted at rest without KMS permissions on the senders (the functions and
  # their event source mappings' on-failure destinations).
  sqs_managed_sse_enabled = true

  tags = var.tags
}
