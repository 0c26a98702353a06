locals {
  # HTTP API routes: route_key => function binary. Add a route in one line.
  routes = {
    "POST /orders"              = "place-order"
    "PATCH /orders/{orderId}"   = "place-order"
    "DELETE /orders/{orderId}"  = "place-order"
    "PUT /products/{productId}" = "place-order"
    "GET /orders"               = "query"
    "GET /orders/{orderId}"     = "query"
    "GET /products"             = "query"
    "GET /products/{productId}" = "query"
    "GET /health"               = "query"
  }

  # Order attributes the listing indexes carry: everything a listing returns. The outbox
  # marker (publishedVersion) is left out on purpose, so marking an event as published
  # writes the table only, not every index.
  order_projection = [
    "customerId", "status", "currency", "items", "total", "version", "createdAt", "updatedAt",
    "processedAt", "failedAt", "failureReason", "cancelledAt", "shippedAt", "deliveredAt",
  ]

  # Kinesis consumers (event source mappings): binary => its DLQ key.
  stream_consumers = {
    "process-order" = "process-order"
    "aggregate"     = "aggregate"
  }

  api_functions = toset(values(local.routes))

  log_env = { RUST_LOG = var.log_level }

  # Every function: binary => settings. Function name is "${name_prefix}-<bin>".
  functions = {
    "place-order" = {
      timeout = var.api_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE          = aws_dynamodb_table.orders.name
        PRODUCTS_TABLE        = aws_dynamodb_table.products.name
        IDEMPOTENCY_TABLE     = aws_dynamodb_table.idempotency.name
        EVENTS_STREAM_NAME    = aws_kinesis_stream.events.name
        DEFAULT_CURRENCY      = var.currency
        IDEMPOTENCY_TTL_HOURS = tostring(var.idempotency_ttl_hours)
      })
    }
    "query" = {
      timeout = var.api_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE   = aws_dynamodb_table.orders.name
        PRODUCTS_TABLE = aws_dynamodb_table.products.name
      })
    }
    "process-order" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE       = aws_dynamodb_table.orders.name
        PRODUCTS_TABLE     = aws_dynamodb_table.products.name
        EVENTS_STREAM_NAME = aws_kinesis_stream.events.name
        DLQ_URL            = aws_sqs_queue.dlq["process-order"].url
      })
    }
    "aggregate" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE = aws_dynamodb_table.orders.name
        DLQ_URL      = aws_sqs_queue.dlq["aggregate"].url
      })
    }
  }

  function_names = { for bin in keys(local.functions) : bin => "${var.name_prefix}-${bin}" }
}
