# ------------------------------------------------------------------ Lambda

# Created before the functions (depends_on below), so Lambda never creates one itself without
# retention or encryption.
resource "aws_cloudwatch_log_group" "fn" {
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_lambda_function" "fn" {
  for_each = local.functions

  #checkov:skip=CKV_AWS_116: invoked synchronously (API Gateway) or by Kinesis event source mappings, never asynchronously: an async DLQ would stay empty; failed stream records go to the mapping's on-failure destination (aws_sqs_queue.dlq).
  #checkov:skip=CKV_AWS_117: the functions call only AWS APIs (DynamoDB, Kinesis, SQS) over TLS with IAM; a VPC would add NAT or endpoint costs and cold-start latency and protect nothing.
  #checkov:skip=CKV_AWS_173: the environment holds resource names and settings, no secrets; Lambda encrypts it at rest with its service key. A customer managed key would add a KMS grant and call to every cold start for nothing.
  #checkov:skip=CKV_AWS_272: code signing needs an AWS Signer profile in the release pipeline; the zips come from cargo lambda in the same pipeline that applies this (see README: Deploy to AWS). Add aws_lambda_code_signing_config when artefacts cross a trust boundary.

  function_name    = local.function_names[each.key]
  role             = aws_iam_role.fn[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = "${var.artifacts_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.artifacts_dir}/${each.key}/bootstrap.zip")
  memory_size      = var.memory_size
  timeout          = each.value.timeout

  # -1: unreserved.
  reserved_concurrent_executions = lookup(var.reserved_concurrency, each.key, -1)

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

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
  event_source_arn  = local.stream_sources[each.key]
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

  # The mapping reads the stream with the function's role: its policy must exist first.
  depends_on = [aws_iam_role_policy.fn]
}

# ------------------------------------------- the orders table's change stream (outbox)

resource "aws_lambda_event_source_mapping" "changes" {
  for_each = local.change_consumers

  function_name     = aws_lambda_function.fn[each.key].arn
  event_source_arn  = aws_dynamodb_table.orders.stream_arn
  starting_position = "TRIM_HORIZON"

  # No batching window: the relay is on the path of every event, so it runs as soon as a
  # write commits.
  batch_size                         = 100
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  # Unbounded: skipping a version would lose its event for good. Poison images go to the
  # DLQ from the code; only a stream record older than the stream's 24 h can expire.
  maximum_retry_attempts        = -1
  maximum_record_age_in_seconds = -1
  # Versions of one order must be published in order.
  parallelization_factor = 1

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq[each.value].arn
    }
  }

  depends_on = [aws_iam_role_policy.fn]
}
