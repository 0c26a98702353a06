output "api_id" {
  description = "HTTP API id."
  value       = aws_apigatewayv2_api.http.id
}

output "api_endpoint" {
  description = "HTTP API base URL ($default stage)."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "orders_table" {
  value = aws_dynamodb_table.orders.name
}

output "products_table" {
  value = aws_dynamodb_table.products.name
}

output "analytics_table" {
  value = aws_dynamodb_table.analytics.name
}

output "event_claims_table" {
  value = aws_dynamodb_table.event_claims.name
}

output "idempotency_table" {
  value = aws_dynamodb_table.idempotency.name
}

output "events_stream_name" {
  value = aws_kinesis_stream.events.name
}

output "events_stream_arn" {
  value = aws_kinesis_stream.events.arn
}

output "process_order_dlq_url" {
  value = aws_sqs_queue.dlq["process-order"].url
}

output "aggregate_dlq_url" {
  value = aws_sqs_queue.dlq["aggregate"].url
}

output "function_names" {
  description = "Map of binary name => Lambda function name."
  value       = { for bin, fn in aws_lambda_function.fn : bin => fn.function_name }
}
