# --------------------------------------------------------------------- IAM
# One role per function, allowed exactly what its code calls on exactly which resources.
# tests/infra (crate infra-check) derives the same from the code — the SDK calls of the adapter
# methods each function uses, on the tables, stream and queue its environment names — and
# fails on any permission missing here or granted without a caller.
#
# Notes for readers of the statements:
# - DynamoDB transactions have no IAM action of their own: each Update in TransactWriteItems
#   is authorised as dynamodb:UpdateItem on its table.
# - The tables and the stream are encrypted with a customer managed key: reading or writing a
#   table needs kms:Decrypt (DynamoDB unwraps the table key with the caller's permissions),
#   publishing to the stream kms:GenerateDataKey, and reading it kms:Decrypt.
# - Queries on a global secondary index are authorised on the index ARN (<table>/index/<name>).

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each = local.functions

  name               = "${local.function_names[each.key]}-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json

  tags = var.tags
}

locals {
  # What a Kinesis event source mapping does with the function's role: Lambda, not our code,
  # reads the stream (and sends on-failure records to the mapping's destination).
  stream_read_statements = {
    "process-order"      = local.order_stream_read_statements
    "aggregate"          = local.order_stream_read_statements
    "notify"             = local.order_stream_read_statements
    "aggregate-activity" = local.activity_stream_read_statements
  }
  order_stream_read_statements = [
    {
      Sid    = "EventSourceMappingReadsOrderEvents"
      Effect = "Allow"
      Action = [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
      ]
      Resource = [aws_kinesis_stream.events.arn]
    },
    local.list_streams_statement,
  ]
  activity_stream_read_statements = [
    {
      Sid    = "EventSourceMappingReadsActivity"
      Effect = "Allow"
      Action = [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
      ]
      Resource = [aws_kinesis_stream.activity.arn]
    },
    local.list_streams_statement,
  ]
  list_streams_statement = {
    # ListStreams is account-level: it has no resource type to name.
    Sid      = "EventSourceMappingListsStreams"
    Effect   = "Allow"
    Action   = ["kinesis:ListStreams"]
    Resource = ["*"]
  }

  # What the mapping of the orders table's change stream does with the relay's role.
  change_read_statements = [
    {
      Sid      = "EventSourceMappingReadsOrderChanges"
      Effect   = "Allow"
      Action   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      Resource = [aws_dynamodb_table.orders.stream_arn]
    },
    {
      # ListStreams is account-level: it has no resource type to name.
      Sid      = "EventSourceMappingListsChangeStreams"
      Effect   = "Allow"
      Action   = ["dynamodb:ListStreams"]
      Resource = ["*"]
    },
  ]

  function_statements = {
    "place-order" = [
      {
        # Create (conditional put; read back on conflict), load and change.
        Sid      = "Orders"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.orders.arn]
      },
      {
        # Prices of a new order's lines (BatchGetItem); PUT /products (read the version,
        # create or update conditionally), stock adjustments; cancelling a processed order
        # gives its stock back (in a transaction).
        Sid      = "Products"
        Effect   = "Allow"
        Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.products.arn]
      },
      {
        # Claim a key, read the claim on conflict, store the response.
        Sid      = "IdempotencyKeys"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.idempotency.arn]
      },
      {
        # POST /events: one batch put of a storefront's events.
        Sid      = "PublishActivity"
        Effect   = "Allow"
        Action   = ["kinesis:PutRecords"]
        Resource = [aws_kinesis_stream.activity.arn]
      },
      {
        # The tables' key; the activity stream is encrypted with it too.
        Sid      = "TablesAndStreamKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [local.kms_key_arn]
      },
    ]

    "query" = [
      {
        # One order by key; the health check describes the table.
        Sid      = "Orders"
        Effect   = "Allow"
        Action   = ["dynamodb:DescribeTable", "dynamodb:GetItem"]
        Resource = [aws_dynamodb_table.orders.arn]
      },
      {
        # Listings by customer, customer and status, status and creation time (byCustomer,
        # byCustomerStatus, byStatus, byCreated).
        Sid      = "OrderListings"
        Effect   = "Allow"
        Action   = ["dynamodb:Query"]
        Resource = ["${aws_dynamodb_table.orders.arn}/index/*"]
      },
      {
        # One product by key, the names of a report's top products by keys; the catalog
        # listing pages with Scan (few items, no partition).
        Sid      = "Products"
        Effect   = "Allow"
        Action   = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Scan"]
        Resource = [aws_dynamodb_table.products.arn]
      },
      {
        # Dashboards read known bucket keys, never scan.
        Sid      = "Analytics"
        Effect   = "Allow"
        Action   = ["dynamodb:BatchGetItem"]
        Resource = [aws_dynamodb_table.analytics.arn]
      },
      {
        Sid      = "TablesKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [local.kms_key_arn]
      },
    ]

    "process-order" = concat([
      {
        # Load the placed order, then PROCESSED/FAILED by version.
        Sid      = "Orders"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.orders.arn]
      },
      {
        # Existence and stock of every line, then conditional decrements in the transaction.
        Sid      = "Products"
        Effect   = "Allow"
        Action   = ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.products.arn]
      },
      {
        # Poison records (code) and exhausted retries (the mapping's on-failure destination).
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.dlq["process-order"].arn]
      },
      {
        Sid      = "TablesAndStreamKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [local.kms_key_arn]
      },
    ], local.stream_read_statements["process-order"])

    "relay" = concat([
      {
        # One batch put per round of versions (see functions/relay).
        Sid      = "PublishOrderEvents"
        Effect   = "Allow"
        Action   = ["kinesis:PutRecords"]
        Resource = [aws_kinesis_stream.events.arn]
      },
      {
        # Images that are not orders (code) and exhausted retries (on-failure destination).
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.dlq["relay"].arn]
      },
      {
        # The change stream is encrypted with the table's key; the event stream too.
        Sid      = "TableAndStreamKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [local.kms_key_arn]
      },
    ], local.change_read_statements)

    "aggregate" = concat([
      {
        # Counters with per-shard watermarks (conditional ADD), read back on a refused update.
        Sid      = "Analytics"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.analytics.arn]
      },
      {
        # First claim of each event (SET if_not_exists, one item per order).
        Sid      = "EventClaims"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.event_claims.arn]
      },
      {
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.dlq["aggregate"].arn]
      },
      {
        Sid      = "TablesAndStreamKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [local.kms_key_arn]
      },
    ], local.stream_read_statements["aggregate"])

    "aggregate-activity" = concat([
      {
        # Activity counters with per-shard watermarks (conditional ADD) and set shards,
        # beside the orders' in the analytics table; read back on a refused update.
        Sid      = "Analytics"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.analytics.arn]
      },
      {
        # First claim of each event (SET if_not_exists, one item per session and minute).
        Sid      = "EventClaims"
        Effect   = "Allow"
        Action   = ["dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.event_claims.arn]
      },
      {
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.dlq["aggregate-activity"].arn]
      },
      {
        Sid      = "TablesAndStreamKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [local.kms_key_arn]
      },
    ], local.stream_read_statements["aggregate-activity"])

    "live" = [
      {
        # Tickets (put; redeem = delete returning the old item), sockets (put, read,
        # subscribe, delete).
        Sid      = "Connections"
        Effect   = "Allow"
        Action   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.connections.arn]
      },
      {
        Sid      = "TablesKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [local.kms_key_arn]
      },
    ]

    "notify" = concat([
      {
        # Who listens (byAudience); closed sockets are forgotten.
        Sid      = "Connections"
        Effect   = "Allow"
        Action   = ["dynamodb:DeleteItem"]
        Resource = [aws_dynamodb_table.connections.arn]
      },
      {
        Sid      = "ConnectionListings"
        Effect   = "Allow"
        Action   = ["dynamodb:Query"]
        Resource = ["${aws_dynamodb_table.connections.arn}/index/byAudience"]
      },
      {
        # PostToConnection on the live stage's sockets only.
        Sid      = "PushToSockets"
        Effect   = "Allow"
        Action   = ["execute-api:ManageConnections"]
        Resource = ["${aws_apigatewayv2_api.live.execution_arn}/${local.live_stage}/POST/@connections/*"]
      },
      {
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.dlq["notify"].arn]
      },
      {
        Sid      = "TablesAndStreamKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [local.kms_key_arn]
      },
    ], local.stream_read_statements["notify"])
  }

  # X-Ray has no resource-level permissions: "*" is the only resource these actions take.
  tracing_statement = {
    Sid      = "XRayTraces"
    Effect   = "Allow"
    Action   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    Resource = ["*"]
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.functions

  name = "${local.function_names[each.key]}-policy"
  role = aws_iam_role.fn[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # Lambda writes the function's output to its own log group (created in lambda.tf).
          Sid      = "Logs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = ["${aws_cloudwatch_log_group.fn[each.key].arn}:*"]
        },
      ],
      var.tracing_enabled ? [local.tracing_statement] : [],
      local.function_statements[each.key],
    )
  })
}
