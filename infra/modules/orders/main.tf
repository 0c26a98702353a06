locals {
  # HTTP API routes: route_key => function binary. Add a route in one line.
  routes = {
    "POST /orders"                     = "place-order"
    "PATCH /orders/{orderId}"          = "place-order"
    "DELETE /orders/{orderId}"         = "place-order"
    "POST /orders/{orderId}/retry"     = "place-order"
    "PUT /products/{productId}"        = "place-order"
    "POST /products/{productId}/stock" = "place-order"
    "GET /orders"                      = "query"
    "GET /orders/{orderId}"            = "query"
    "GET /customers/{customerId}"      = "query"
    "GET /products"                    = "query"
    "GET /products/{productId}"        = "query"
    "GET /health"                      = "query"
    "GET /analytics/sales"             = "query"
    "GET /analytics/top-products"      = "query"
    "GET /analytics/customers"         = "query"
    "GET /analytics/summary"           = "query"
    "GET /openapi.json"                = "query"
    "GET /asyncapi.json"               = "query"
    "GET /"                            = "query"
    "POST /live/tickets"               = "live"
    "POST /events"                     = "place-order"
    "GET /analytics/activity"          = "query"
    "GET /analytics/funnel"            = "query"
  }

  # Order attributes the listing indexes carry: everything a listing returns.
  order_projection = [
    "customerId", "status", "currency", "items", "total", "version", "createdAt", "updatedAt",
    "processedAt", "failedAt", "failureReason", "cancelledAt", "shippedAt", "deliveredAt",
  ]

  # Kinesis consumers (event source mappings): binary => its DLQ key.
  stream_consumers = {
    "process-order"      = "process-order"
    "aggregate"          = "aggregate"
    "notify"             = "notify"
    "aggregate-activity" = "aggregate-activity"
  }

  # The stream each consumer reads: order events, or storefront activity (its own stream,
  # so storefront volume never delays or throttles the orders' consumers).
  stream_sources = {
    "process-order"      = aws_kinesis_stream.events.arn
    "aggregate"          = aws_kinesis_stream.events.arn
    "notify"             = aws_kinesis_stream.events.arn
    "aggregate-activity" = aws_kinesis_stream.activity.arn
  }

  # Per-consumer mapping settings; each is what the consumer's code relies on.
  stream_mappings = {
    # Bounded retries: a record that keeps failing ends in the DLQ (and orders-admin can
    # replay it) instead of blocking the orders behind it.
    "process-order" = {
      batch_size         = 100
      batching_window    = 1
      retry_attempts     = 5
      record_age_seconds = 3600
    }
    # Unbounded: the aggregate must never skip a batch, or its totals are wrong forever;
    # its per-shard watermarks need one consumer per shard (parallelization factor 1) and
    # make every retry exact. Bigger batches mean fewer writes per order.
    "aggregate" = {
      batch_size         = 500
      batching_window    = 1
      retry_attempts     = -1
      record_age_seconds = -1
    }
    # As the aggregate: exact counters need every batch, one consumer per shard.
    "aggregate-activity" = {
      batch_size         = 500
      batching_window    = 1
      retry_attempts     = -1
      record_age_seconds = -1
    }
    # Pushes are fresh or worthless: no batching window (a change is on screen within a
    # second), few retries, and records older than five minutes are given up (to the DLQ).
    "notify" = {
      batch_size         = 100
      batching_window    = 0
      retry_attempts     = 3
      record_age_seconds = 300
    }
  }

  # How long a dead letter is kept: the maximum, time to notice it, fix the cause and replay.
  dlq_retention_seconds = 1209600

  # An event can come back as long as the stream keeps it, plus as long as a dead letter
  # holding it can still be replayed: the aggregate's claims must outlive both, or a replay
  # after they expired would count the event again.
  event_claim_hours = var.kinesis_retention_hours + ceil(local.dlq_retention_seconds / 3600) + 24

  # Storefront events are accepted up to 24 h after they happened, and a client may resend
  # one that long: their claims outlive that too.
  activity_claim_hours = local.event_claim_hours + 24

  # Consumers of the orders table's change stream (the outbox): binary => its DLQ key.
  change_consumers = {
    "relay" = "relay"
  }

  # Every function that owns a dead-letter queue: stream consumers and change consumers.
  dead_letter_owners = merge(local.stream_consumers, local.change_consumers)

  api_functions = toset(values(local.routes))

  # Who may call each route when the JWT authorizer is on: the token must carry one of the
  # route's scopes (API Gateway checks), and the functions then apply ownership (a customer —
  # the token's subject — sees and changes only its own orders). Routes not listed are
  # public: the health check, the OpenAPI and AsyncAPI documents and the dashboard's static page.
  customer_scopes = ["orders/customer", "orders/admin"]
  staff_scopes    = ["orders/admin"]
  route_scopes = {
    "POST /orders"                     = local.customer_scopes
    "GET /orders"                      = local.customer_scopes
    "GET /orders/{orderId}"            = local.customer_scopes
    "GET /customers/{customerId}"      = local.customer_scopes
    "DELETE /orders/{orderId}"         = local.customer_scopes
    "POST /orders/{orderId}/retry"     = local.customer_scopes
    "GET /products"                    = local.customer_scopes
    "GET /products/{productId}"        = local.customer_scopes
    "POST /live/tickets"               = local.customer_scopes
    "POST /events"                     = local.customer_scopes
    "PATCH /orders/{orderId}"          = local.staff_scopes
    "PUT /products/{productId}"        = local.staff_scopes
    "POST /products/{productId}/stock" = local.staff_scopes
    "GET /analytics/sales"             = local.staff_scopes
    "GET /analytics/top-products"      = local.staff_scopes
    "GET /analytics/customers"         = local.staff_scopes
    "GET /analytics/summary"           = local.staff_scopes
    "GET /analytics/activity"          = local.staff_scopes
    "GET /analytics/funnel"            = local.staff_scopes
  }
  protected_routes = { for route, bin in local.routes : route => bin if contains(keys(local.route_scopes), route) }
  public_routes    = { for route, bin in local.routes : route => bin if !contains(keys(local.route_scopes), route) }
  jwt_enabled      = var.jwt_issuer != null || var.user_pool

  log_env = { RUST_LOG = var.log_level }

  # Every function: binary => settings. Function name is "${name_prefix}-<bin>".
  functions = {
    "place-order" = {
      timeout = var.api_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE          = aws_dynamodb_table.orders.name
        PRODUCTS_TABLE        = aws_dynamodb_table.products.name
        IDEMPOTENCY_TABLE     = aws_dynamodb_table.idempotency.name
        DEFAULT_CURRENCY      = var.currency
        IDEMPOTENCY_TTL_HOURS = tostring(var.idempotency_ttl_hours)
        ACTIVITY_STREAM_NAME  = aws_kinesis_stream.activity.name
      })
    }
    "query" = {
      timeout = var.api_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE    = aws_dynamodb_table.orders.name
        PRODUCTS_TABLE  = aws_dynamodb_table.products.name
        ANALYTICS_TABLE = aws_dynamodb_table.analytics.name
        # The dashboard signs in with the authorizer's issuer (authorization code + PKCE,
        # the first audience as its client id); empty without an authorizer.
        SIGN_IN_CLIENT_ID     = local.jwt_enabled ? local.jwt_audience[0] : ""
        SIGN_IN_AUTHORIZE_URL = local.sign_in_authorize_url
        SIGN_IN_TOKEN_URL     = local.sign_in_token_url
        SIGN_IN_SCOPE         = "openid orders/customer orders/admin"
        # The dashboard's socket (its origin is allowed in the page's connect-src).
        LIVE_URL = local.live_url
      })
    }
    "process-order" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        ORDERS_TABLE   = aws_dynamodb_table.orders.name
        PRODUCTS_TABLE = aws_dynamodb_table.products.name
        DLQ_URL        = aws_sqs_queue.dlq["process-order"].url
      })
    }
    "relay" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        EVENTS_STREAM_NAME = aws_kinesis_stream.events.name
        DLQ_URL            = aws_sqs_queue.dlq["relay"].url
      })
    }
    "live" = {
      timeout = var.api_timeout
      environment = merge(local.log_env, {
        CONNECTIONS_TABLE = aws_dynamodb_table.connections.name
        LIVE_URL          = local.live_url
      })
    }
    "notify" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        CONNECTIONS_TABLE = aws_dynamodb_table.connections.name
        LIVE_CALLBACK_URL = local.live_callback_url
        DLQ_URL           = aws_sqs_queue.dlq["notify"].url
      })
    }
    "aggregate" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        ANALYTICS_TABLE = aws_dynamodb_table.analytics.name
        DEDUP_TABLE     = aws_dynamodb_table.event_claims.name
        DEDUP_TTL_HOURS = tostring(local.event_claim_hours)
        DLQ_URL         = aws_sqs_queue.dlq["aggregate"].url
      })
    }
    "aggregate-activity" = {
      timeout = var.stream_timeout
      environment = merge(local.log_env, {
        ANALYTICS_TABLE = aws_dynamodb_table.analytics.name
        DEDUP_TABLE     = aws_dynamodb_table.event_claims.name
        DEDUP_TTL_HOURS = tostring(local.activity_claim_hours)
        DLQ_URL         = aws_sqs_queue.dlq["aggregate-activity"].url
      })
    }
  }

  function_names = { for bin in keys(local.functions) : bin => "${var.name_prefix}-${bin}" }

  # The customer managed key of the tables, the stream and the log groups (kms.tf).
  kms_key_arn = coalesce(var.kms_key_arn, one(aws_kms_key.main[*].arn))
}
