output "api_id" {
  description = "HTTP API id."
  value       = aws_apigatewayv2_api.http.id
}

output "api_endpoint" {
  description = "HTTP API base URL ($default stage)."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "orders_table" {
  description = "Orders table (key orderId; GSIs byCustomer, byCustomerStatus, byStatus, byCreated)."
  value       = aws_dynamodb_table.orders.name
}

output "products_table" {
  description = "Catalog table (key productId)."
  value       = aws_dynamodb_table.products.name
}

output "analytics_table" {
  description = "Time-bucketed analytics (key pk)."
  value       = aws_dynamodb_table.analytics.name
}

output "event_claims_table" {
  description = "First occurrence of each event per order (TTL expiresAt)."
  value       = aws_dynamodb_table.event_claims.name
}

output "idempotency_table" {
  description = "Idempotency-Key records (TTL expiresAt)."
  value       = aws_dynamodb_table.idempotency.name
}

output "events_stream_name" {
  description = "Kinesis stream of order events."
  value       = aws_kinesis_stream.events.name
}

output "events_stream_arn" {
  description = "ARN of the order events stream."
  value       = aws_kinesis_stream.events.arn
}

output "process_order_dlq_url" {
  description = "Dead letters of process-order (poison records, exhausted retries)."
  value       = aws_sqs_queue.dlq["process-order"].url
}

output "aggregate_dlq_url" {
  description = "Dead letters of aggregate."
  value       = aws_sqs_queue.dlq["aggregate"].url
}

output "relay_dlq_url" {
  description = "Dead-letter queue of the outbox relay: change records that are not orders, or whose retries were exhausted."
  value       = aws_sqs_queue.dlq["relay"].url
}

output "function_names" {
  description = "Map of binary name => Lambda function name."
  value       = { for bin, fn in aws_lambda_function.fn : bin => fn.function_name }
}

output "kms_key_arn" {
  description = "The customer managed key encrypting the tables, the stream and the log groups."
  value       = local.kms_key_arn
}

output "route_scopes" {
  description = "Routes behind the JWT authorizer (when jwt_issuer is set) and the scopes each accepts; every other route is public."
  value       = local.route_scopes
}

output "sign_in" {
  description = "The dashboard's sign-in: the issuer, the client id and the endpoints (null without sign-in)."
  value = local.jwt_enabled ? {
    issuer        = local.jwt_issuer
    client_id     = local.jwt_audience[0]
    authorize_url = local.sign_in_authorize_url
    token_url     = local.sign_in_token_url
  } : null
}

output "user_pool_id" {
  description = "The Cognito user pool the module created (var.user_pool), else null. Put staff in its `staff` group."
  value       = var.user_pool ? aws_cognito_user_pool.users[0].id : null
}

output "live_api_id" {
  description = "WebSocket API id (live updates)."
  value       = aws_apigatewayv2_api.live.id
}

output "live_url" {
  description = "Where clients open sockets (with a ticket from POST /live/tickets)."
  value       = local.live_url
}

output "connections_table" {
  description = "Sockets and tickets of the live API (key pk; GSI byAudience; TTL expiresAt)."
  value       = aws_dynamodb_table.connections.name
}

output "notify_dlq_url" {
  description = "Dead letters of notify (records that are not events, pushes given up)."
  value       = aws_sqs_queue.dlq["notify"].url
}

output "activity_stream_name" {
  description = "Stream of storefront activity (POST /events)."
  value       = aws_kinesis_stream.activity.name
}

output "aggregate_activity_dlq_url" {
  description = "Dead letters of aggregate-activity."
  value       = aws_sqs_queue.dlq["aggregate-activity"].url
}
