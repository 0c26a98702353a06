# ---------------------------------------------------------- Observability
# Alarms on what needs a human (dead letters, a stream consumer falling behind, functions
# failing or throttled, the API answering 5xx), the SNS topic they notify, and one
# dashboard. The functions' own metrics (namespace "Orders", dimension "function") are
# CloudWatch Embedded Metric Format lines in their logs: see docs/observability.md.

variable "alarms_enabled" {
  description = "Create the CloudWatch alarms (and, unless alarm_sns_topic_arn is given, the SNS topic they notify)."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "E-mail address subscribed to the module's alarm topic (the recipient must confirm the subscription). Null: no subscription; subscribe anything to the alarm_topic_arn output."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address."
  }
}

variable "alarm_sns_topic_arn" {
  description = "An existing SNS topic for the alarms (a shared on-call topic, Chatbot, PagerDuty). Null: the module creates a KMS-encrypted topic. With a topic of yours, alarm_email is ignored: subscriptions are yours to manage, and if the topic is encrypted its key must let cloudwatch.amazonaws.com use it."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN."
  }
}

variable "iterator_age_alarm_seconds" {
  description = "Alarm when a stream consumer's oldest unprocessed record is older than this (Lambda IteratorAge) for 3 of 5 minutes. process-order gives up on a record after an hour (to its DLQ); the aggregate never does, so a stuck shard shows here first."
  type        = number
  default     = 300

  validation {
    condition     = var.iterator_age_alarm_seconds >= 60
    error_message = "iterator_age_alarm_seconds must be at least 60."
  }
}

variable "api_5xx_alarm_percent" {
  description = "Alarm when more than this percentage of HTTP API requests answer 5xx, in 2 of 3 five-minute periods."
  type        = number
  default     = 1

  validation {
    condition     = var.api_5xx_alarm_percent > 0 && var.api_5xx_alarm_percent <= 100
    error_message = "api_5xx_alarm_percent must be in (0, 100]."
  }
}

locals {
  # Keep in step with orders_aws::telemetry (crates/orders-aws/src/telemetry.rs).
  metrics_namespace  = "Orders"
  metrics_dimension  = "function"
  create_alarm_topic = var.alarms_enabled && var.alarm_sns_topic_arn == null
  alarm_topic_arn    = var.alarms_enabled ? coalesce(var.alarm_sns_topic_arn, one(aws_sns_topic.alarms[*].arn)) : null
  alarm_actions      = var.alarms_enabled ? [local.alarm_topic_arn] : []
  dashboard_name     = var.name_prefix
  fn_name            = { for bin, fn in aws_lambda_function.fn : bin => fn.function_name }
}

# ------------------------------------------------------------ alarm topic

# CloudWatch cannot publish to a topic encrypted with the AWS managed aws/sns key (its policy
# cannot be changed to admit CloudWatch), so the topic gets a key of its own whose policy
# does. Only created with the topic.
data "aws_iam_policy_document" "alarm_topic_key" {
  count = local.create_alarm_topic ? 1 : 0

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
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "alarm_topic" {
  count = local.create_alarm_topic ? 1 : 0

  description             = "${var.name_prefix}: alarm notifications topic"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.alarm_topic_key[0].json

  tags = var.tags
}

resource "aws_kms_alias" "alarm_topic" {
  count = local.create_alarm_topic ? 1 : 0

  name          = "alias/${var.name_prefix}-alarms"
  target_key_id = aws_kms_key.alarm_topic[0].key_id
}

resource "aws_sns_topic" "alarms" {
  count = local.create_alarm_topic ? 1 : 0

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarm_topic[0].arn

  tags = var.tags
}

# Only this deployment's alarms may publish; the account's own principals keep the access
# their IAM policies give them.
data "aws_iam_policy_document" "alarm_topic" {
  count = local.create_alarm_topic ? 1 : 0

  statement {
    sid       = "ThisAccountsAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = local.create_alarm_topic ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarm_topic[0].json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = local.create_alarm_topic && var.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ----------------------------------------------------------------- alarms

# A dead letter is an order (or an analytics event) that will not be handled until someone
# looks: one message is enough. Replay with `orders-admin dlq replay`.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  for_each = var.alarms_enabled ? local.dead_letter_owners : {}

  alarm_name          = "${var.name_prefix}-${each.key}-dlq-not-empty"
  alarm_description   = "Messages are waiting in ${aws_sqs_queue.dlq[each.value].name}. Inspect with `orders-admin dlq list --queue ${aws_sqs_queue.dlq[each.value].name}`, fix the cause, then `orders-admin dlq replay`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.value].name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# The same event seen from the function: fires even when someone drained the queue, and
# says which consumer is dead-lettering.
resource "aws_cloudwatch_metric_alarm" "dead_lettered" {
  for_each = var.alarms_enabled ? local.dead_letter_owners : {}

  alarm_name          = "${var.name_prefix}-${each.key}-dead-lettered"
  alarm_description   = "${local.fn_name[each.key]} sent records to its dead-letter queue (EMF metric ${local.metrics_namespace}/DeadLettered): poison records, or retries exhausted."
  namespace           = local.metrics_namespace
  metric_name         = "DeadLettered"
  dimensions          = { (local.metrics_dimension) = local.fn_name[each.key] }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each = var.alarms_enabled ? local.dead_letter_owners : {}

  alarm_name          = "${var.name_prefix}-${each.key}-iterator-age"
  alarm_description   = "${local.fn_name[each.key]} is more than ${var.iterator_age_alarm_seconds} s behind the stream it reads: a failing batch retried over and over, throttling, or too little concurrency."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = local.fn_name[each.key] }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.iterator_age_alarm_seconds * 1000
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# The functions turn every expected failure into a response (HTTP) or a batch item failure
# (streams), so Lambda's Errors counts only crashes and timeouts: each one is worth a look.
resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.alarms_enabled ? local.functions : {}

  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "${local.fn_name[each.key]} crashed or timed out (Lambda Errors)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = local.fn_name[each.key] }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = var.alarms_enabled ? local.functions : {}

  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "${local.fn_name[each.key]} was throttled: its reserved concurrency or the account's concurrency limit is too low for the load."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = local.fn_name[each.key] }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# A rate, not a count: a handful of 5xx is noise at 100 requests/s and an outage at 1/min.
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  count = var.alarms_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-api-5xx-rate"
  alarm_description   = "More than ${var.api_5xx_alarm_percent}% of HTTP API requests answered 5xx (503 throttled/unavailable from DynamoDB or Kinesis, 500 internal errors, integration failures)."
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_alarm_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx (% of requests)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id }
      stat        = "Sum"
      period      = 300
    }
  }

  tags = var.tags
}

locals {
  alarm_arns = concat(
    [for a in aws_cloudwatch_metric_alarm.dlq_not_empty : a.arn],
    [for a in aws_cloudwatch_metric_alarm.dead_lettered : a.arn],
    [for a in aws_cloudwatch_metric_alarm.iterator_age : a.arn],
    [for a in aws_cloudwatch_metric_alarm.function_errors : a.arn],
    [for a in aws_cloudwatch_metric_alarm.function_throttles : a.arn],
    aws_cloudwatch_metric_alarm.api_5xx_rate[*].arn,
  )
}

# -------------------------------------------------------------- dashboard

locals {
  # One EMF metric of one function: [namespace, name, dimension, value, (more dimensions), options].
  emf = {
    placed         = [local.metrics_namespace, "OrdersPlaced", local.metrics_dimension, local.fn_name["place-order"], { stat = "Sum", label = "placed" }]
    replayed       = [local.metrics_namespace, "IdempotentReplays", local.metrics_dimension, local.fn_name["place-order"], { stat = "Sum", label = "idempotent replays" }]
    processed      = [local.metrics_namespace, "OrdersProcessed", local.metrics_dimension, local.fn_name["process-order"], { stat = "Sum", label = "processed" }]
    out_of_stock   = [local.metrics_namespace, "OrdersFailed", local.metrics_dimension, local.fn_name["process-order"], "reason", "out_of_stock", { stat = "Sum", label = "failed: out of stock" }]
    unknown        = [local.metrics_namespace, "OrdersFailed", local.metrics_dimension, local.fn_name["process-order"], "reason", "unknown_product", { stat = "Sum", label = "failed: unknown product" }]
    counter_items  = [local.metrics_namespace, "AggregateWrites", local.metrics_dimension, local.fn_name["aggregate"], "kind", "counter", { stat = "Sum", label = "counter items" }]
    customer_sets  = [local.metrics_namespace, "AggregateWrites", local.metrics_dimension, local.fn_name["aggregate"], "kind", "customers", { stat = "Sum", label = "customer sets" }]
    activity_items = [local.metrics_namespace, "AggregateWrites", local.metrics_dimension, local.fn_name["aggregate-activity"], "kind", "activity", { stat = "Sum", label = "activity counter items" }]
    activity_sets  = [local.metrics_namespace, "AggregateWrites", local.metrics_dimension, local.fn_name["aggregate-activity"], "kind", "activity-sets", { stat = "Sum", label = "activity set shards" }]
    pushes         = [local.metrics_namespace, "Pushes", local.metrics_dimension, local.fn_name["notify"], { stat = "Sum", label = "frames pushed" }]
    gone           = [local.metrics_namespace, "ConnectionsGone", local.metrics_dimension, local.fn_name["notify"], { stat = "Sum", label = "sockets found closed" }]
  }

  api_metric = { for name in ["Count", "4xx", "5xx", "Latency", "IntegrationLatency"] : name => ["AWS/ApiGateway", name, "ApiId", aws_apigatewayv2_api.http.id] }

  widgets = [
    {
      title = "Orders"
      metrics = [
        local.emf.placed, local.emf.processed, local.emf.out_of_stock, local.emf.unknown, local.emf.replayed,
      ]
    },
    {
      title = "POST /orders errors by code"
      metrics = [[{
        expression = "SEARCH('{${local.metrics_namespace},${local.metrics_dimension},reason} MetricName=\"OrdersRejected\" ${local.metrics_dimension}=\"${local.fn_name["place-order"]}\"', 'Sum', 300)"
        id         = "rejected"
        label      = "$${PROP('Dim.reason')}"
      }]]
    },
    {
      title = "Dead letters"
      metrics = concat(
        [for bin, q in local.dead_letter_owners : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq[q].name, { stat = "Maximum", label = "${q} DLQ depth" }]],
        [for bin, q in local.dead_letter_owners : [local.metrics_namespace, "DeadLettered", local.metrics_dimension, local.fn_name[bin], { stat = "Sum", label = "${bin} dead-lettered" }]],
      )
    },
    {
      title = "Stream consumers: iterator age (ms)"
      metrics = [
        for bin, q in local.dead_letter_owners : ["AWS/Lambda", "IteratorAge", "FunctionName", local.fn_name[bin], { stat = "Maximum", label = bin }]
      ]
      annotations = { horizontal = [{ label = "alarm", value = var.iterator_age_alarm_seconds * 1000 }] }
    },
    {
      title = "Stream consumers: batches"
      metrics = flatten([
        for bin, q in local.stream_consumers : [
          [local.metrics_namespace, "BatchSize", local.metrics_dimension, local.fn_name[bin], { stat = "Average", label = "${bin} batch size (avg)" }],
          [local.metrics_namespace, "BatchSize", local.metrics_dimension, local.fn_name[bin], { stat = "Maximum", label = "${bin} batch size (max)" }],
          [local.metrics_namespace, "BatchItemFailures", local.metrics_dimension, local.fn_name[bin], { stat = "Sum", label = "${bin} records retried" }],
          [local.metrics_namespace, "DuplicateRecords", local.metrics_dimension, local.fn_name[bin], { stat = "Sum", label = "${bin} duplicates" }],
        ]
      ])
    },
    {
      title   = "Aggregate writes"
      metrics = [local.emf.counter_items, local.emf.customer_sets, local.emf.activity_items, local.emf.activity_sets]
    },
    {
      # What API Gateway bills for sockets: messages (the pushes) and connections.
      title = "Live updates"
      metrics = [
        local.emf.pushes, local.emf.gone,
        ["AWS/ApiGateway", "ConnectCount", "ApiId", aws_apigatewayv2_api.live.id, { stat = "Sum", label = "sockets opened" }],
        ["AWS/ApiGateway", "MessageCount", "ApiId", aws_apigatewayv2_api.live.id, { stat = "Sum", label = "messages" }],
      ]
    },
    {
      title = "Lambda errors and throttles"
      metrics = flatten([
        for bin in keys(local.functions) : [
          ["AWS/Lambda", "Errors", "FunctionName", local.fn_name[bin], { stat = "Sum", label = "${bin} errors" }],
          ["AWS/Lambda", "Throttles", "FunctionName", local.fn_name[bin], { stat = "Sum", label = "${bin} throttles" }],
        ]
      ])
    },
    {
      title = "Cold starts"
      metrics = [
        for bin in keys(local.functions) : [local.metrics_namespace, "ColdStart", local.metrics_dimension, local.fn_name[bin], { stat = "Sum", label = bin }]
      ]
    },
    {
      title = "Lambda duration p99 (ms)"
      metrics = [
        for bin in keys(local.functions) : ["AWS/Lambda", "Duration", "FunctionName", local.fn_name[bin], { stat = "p99", label = bin }]
      ]
    },
    {
      title = "HTTP API requests and errors"
      metrics = [
        concat(local.api_metric["Count"], [{ stat = "Sum", label = "requests" }]),
        concat(local.api_metric["4xx"], [{ stat = "Sum", label = "4xx" }]),
        concat(local.api_metric["5xx"], [{ stat = "Sum", label = "5xx" }]),
      ]
    },
    {
      title = "HTTP API latency (ms)"
      metrics = [
        concat(local.api_metric["Latency"], [{ stat = "p50", label = "p50" }]),
        concat(local.api_metric["Latency"], [{ stat = "p99", label = "p99" }]),
        concat(local.api_metric["IntegrationLatency"], [{ stat = "p99", label = "integration p99" }]),
      ]
    },
  ]

  # Two graphs per row (the grid is 24 wide), then the alarms' states across the bottom.
  metric_widgets = [
    for i, w in local.widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = merge({
        title   = w.title
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = 300
        metrics = w.metrics
      }, try({ annotations = w.annotations }, {}))
    }
  ]

  alarm_widgets = var.alarms_enabled ? [{
    type   = "alarm"
    x      = 0
    y      = ceil(length(local.widgets) / 2) * 6
    width  = 24
    height = 4
    properties = {
      title  = "Alarms"
      alarms = local.alarm_arns
    }
  }] : []
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = concat(local.metric_widgets, local.alarm_widgets) })
}

# ---------------------------------------------------------------- outputs

output "dashboard_url" {
  description = "The CloudWatch dashboard in the AWS console."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.main.dashboard_name}"
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify (the module's, or alarm_sns_topic_arn); null with alarms_enabled = false."
  value       = local.alarm_topic_arn
}
