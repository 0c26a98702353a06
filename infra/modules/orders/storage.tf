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

  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }

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
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }

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
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }

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

  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }
  server_side_encryption {
    enabled = true
  }

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

  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}

# ----------------------------------------------------------------- Kinesis

resource "aws_kinesis_stream" "events" {
  name             = "${var.name_prefix}-order-events"
  retention_period = var.kinesis_retention_hours

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }

  encryption_type = var.kinesis_encryption ? "KMS" : "NONE"
  kms_key_id      = var.kinesis_encryption ? "alias/aws/kinesis" : null

  tags = var.tags
}

# --------------------------------------------------------------------- SQS

resource "aws_sqs_queue" "dlq" {
  for_each = local.stream_consumers

  name                      = "${var.name_prefix}-${each.value}-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true

  tags = var.tags
}
