# ------------------------------------------------------------------ Lambda

resource "aws_cloudwatch_log_group" "fn" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_lambda_function" "fn" {
  for_each = local.functions

  function_name    = local.function_names[each.key]
  role             = aws_iam_role.fn[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = "${var.artifacts_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.artifacts_dir}/${each.key}/bootstrap.zip")
  memory_size      = var.memory_size
  timeout          = each.value.timeout

  environment {
    variables = each.value.environment
  }

  # Structured (JSON) Lambda logs. moto accepts but does not store LoggingConfig,
  # which would show a perpetual diff, so the local root turns this off.
  dynamic "logging_config" {
    for_each = var.lambda_json_logging ? [1] : []
    content {
      log_format = "JSON"
      log_group  = aws_cloudwatch_log_group.fn[each.key].name
    }
  }

  # A local runner reads this tag to find which binary implements the function.
  tags = merge(var.tags, { "orders:binary" = each.key })

  depends_on = [
    aws_cloudwatch_log_group.fn,
    aws_iam_role_policy.fn,
  ]
}

# ------------------------------------------------- Kinesis event sources

resource "aws_lambda_event_source_mapping" "stream" {
  for_each = local.stream_consumers

  function_name     = aws_lambda_function.fn[each.key].arn
  event_source_arn  = aws_kinesis_stream.events.arn
  starting_position = "TRIM_HORIZON"

  batch_size                         = local.stream_mappings[each.key].batch_size
  maximum_batching_window_in_seconds = local.stream_mappings[each.key].batching_window
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = local.stream_mappings[each.key].retry_attempts
  maximum_record_age_in_seconds      = local.stream_mappings[each.key].record_age_seconds
  parallelization_factor             = 1

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq[each.value].arn
    }
  }
}

# --------------------------------------------------------------------- IAM

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
  stream_read_statements = [
    {
      Sid    = "ReadOrderEvents"
      Effect = "Allow"
      Action = [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:SubscribeToShard",
      ]
      Resource = [aws_kinesis_stream.events.arn, "${aws_kinesis_stream.events.arn}/consumer/*"]
    },
    {
      # ListStreams is an account-level action: it has no resource type.
      Sid      = "ListStreams"
      Effect   = "Allow"
      Action   = ["kinesis:ListStreams"]
      Resource = ["*"]
    },
  ]

  stream_write_statement = {
    Sid      = "PublishOrderEvents"
    Effect   = "Allow"
    Action   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    Resource = [aws_kinesis_stream.events.arn]
  }

  dlq_statement = {
    for bin, q in local.stream_consumers : bin => {
      Sid      = "SendToDlq"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = [aws_sqs_queue.dlq[q].arn]
    }
  }

  # Least-privilege statements per function (logging is added to each below).
  function_statements = {
    "place-order" = [
      {
        Sid      = "OrdersAndIdempotency"
        Effect   = "Allow"
        Action   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.orders.arn, aws_dynamodb_table.idempotency.arn]
      },
      {
        # Cancelling a processed order gives its stock back in the same transaction.
        Sid      = "CatalogAndStock"
        Effect   = "Allow"
        Action   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:TransactWriteItems"]
        Resource = [aws_dynamodb_table.products.arn, aws_dynamodb_table.orders.arn]
      },
      local.stream_write_statement,
    ]
    "query" = [
      {
        Sid      = "ReadOrders"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"]
        Resource = [aws_dynamodb_table.orders.arn, "${aws_dynamodb_table.orders.arn}/index/*"]
      },
      {
        Sid      = "ReadCatalog"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:BatchGetItem"]
        Resource = [aws_dynamodb_table.products.arn]
      },
      {
        # Dashboards and the analytics routes read known bucket keys, never scan.
        Sid      = "ReadAnalytics"
        Effect   = "Allow"
        Action   = ["dynamodb:BatchGetItem"]
        Resource = [aws_dynamodb_table.analytics.arn]
      },
    ]
    "process-order" = concat([
      {
        Sid    = "WriteOrders"
        Effect = "Allow"
        Action = [
          "dynamodb:GetItem",
          "dynamodb:UpdateItem",
          "dynamodb:TransactWriteItems",
        ]
        Resource = [aws_dynamodb_table.orders.arn]
      },
      {
        # Existence and stock checks, then conditional decrements inside the transaction.
        Sid      = "ReserveStock"
        Effect   = "Allow"
        Action   = ["dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:TransactWriteItems"]
        Resource = [aws_dynamodb_table.products.arn]
      },
      local.stream_write_statement,
      local.dlq_statement["process-order"],
    ], local.stream_read_statements)
    "aggregate" = concat([
      {
        Sid      = "WriteAnalytics"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [aws_dynamodb_table.analytics.arn]
      },
      {
        Sid      = "ClaimEvents"
        Effect   = "Allow"
        Action   = ["dynamodb:PutItem"]
        Resource = [aws_dynamodb_table.event_claims.arn]
      },
      local.dlq_statement["aggregate"],
    ], local.stream_read_statements)
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.functions

  name = "${local.function_names[each.key]}-policy"
  role = aws_iam_role.fn[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "Logging"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.fn[each.key].arn}:*"]
      },
    ], local.function_statements[each.key])
  })
}
