output "api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = module.orders.api_endpoint
}
output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = module.orders.dashboard_url
}
output "alarm_topic_arn" { value = module.orders.alarm_topic_arn }
output "api_id" { value = module.orders.api_id }
output "orders_table" { value = module.orders.orders_table }
output "products_table" { value = module.orders.products_table }
output "analytics_table" { value = module.orders.analytics_table }
output "event_claims_table" { value = module.orders.event_claims_table }
output "idempotency_table" { value = module.orders.idempotency_table }
output "events_stream_name" { value = module.orders.events_stream_name }
output "events_stream_arn" { value = module.orders.events_stream_arn }
output "process_order_dlq_url" { value = module.orders.process_order_dlq_url }
output "aggregate_dlq_url" { value = module.orders.aggregate_dlq_url }
output "relay_dlq_url" { value = module.orders.relay_dlq_url }
output "live_url" { value = module.orders.live_url }
output "notify_dlq_url" { value = module.orders.notify_dlq_url }
output "function_names" { value = module.orders.function_names }
output "kms_key_arn" { value = module.orders.kms_key_arn }
output "route_scopes" { value = module.orders.route_scopes }
output "region" { value = var.region }
output "sign_in" { value = module.orders.sign_in }
output "user_pool_id" { value = module.orders.user_pool_id }
