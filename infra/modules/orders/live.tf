# ------------------------------------------------------- live updates (WebSocket API)
#
# A signed-in client gets a single-use ticket from POST /live/tickets (HTTP API, JWT like
# every route), opens wss://…/live?ticket=… ($connect redeems it: the live function), and
# subscribes ({"action":"subscribe","topics":["orders","analytics"]}). The notify function
# reads the order events stream and pushes each change through the stage's @connections API
# to the sockets allowed to see it. See crates/orders-core/src/live.rs and api/asyncapi.json.

locals {
  live_stage = "live"
  # API Gateway reports a WebSocket API's endpoint as wss://<host> (moto: https://<host>).
  live_host         = replace(replace(aws_apigatewayv2_api.live.api_endpoint, "wss://", ""), "https://", "")
  live_url          = "wss://${local.live_host}/${local.live_stage}"
  live_callback_url = "https://${local.live_host}/${local.live_stage}"
  # Routes of the WebSocket API; all served by the live function. Only subscribe and
  # $default answer the client (route responses).
  live_routes  = toset(["$connect", "$disconnect", "$default", "subscribe"])
  live_two_way = toset(["$default", "subscribe"])
}

resource "aws_dynamodb_table" "connections" {
  name         = "${var.name_prefix}-connections"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "audience"
    type = "S"
  }

  # Connections only (tickets have no `audience`): staff's sockets under "all", a
  # customer's under "customer#<id>".
  global_secondary_index {
    name            = "byAudience"
    hash_key        = "audience"
    projection_type = "ALL"
  }

  # Tickets after a minute, sockets after API Gateway's two hours (epoch seconds).
  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }
  # Nothing here outlives a socket: no point-in-time recovery to pay for.
  #checkov:skip=CKV_AWS_28: sockets and one-minute tickets; a restore would bring back closed connections.
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = var.tags
}

resource "aws_apigatewayv2_api" "live" {
  name                       = "${var.name_prefix}-live"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "live_access" {
  name              = "/aws/apigateway/${var.name_prefix}-live"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_apigatewayv2_stage" "live" {
  #checkov:skip=CKV2_AWS_51: browsers open these sockets, and they carry no client certificate; a socket is authenticated by its single-use ticket from the JWT-guarded HTTP API.

  api_id      = aws_apigatewayv2_api.live.id
  name        = local.live_stage
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.live_access.arn
    format = jsonencode({
      requestId    = "$context.requestId"
      ip           = "$context.identity.sourceIp"
      requestTime  = "$context.requestTime"
      eventType    = "$context.eventType"
      routeKey     = "$context.routeKey"
      status       = "$context.status"
      connectionId = "$context.connectionId"
      latencyMs    = "$context.integrationLatency"
      error        = "$context.integrationErrorMessage"
    })
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "live" {
  api_id             = aws_apigatewayv2_api.live.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = aws_lambda_function.fn["live"].invoke_arn
}

# The ticket is the authorization: $connect refuses a socket without a valid one (401).
resource "aws_apigatewayv2_route" "live" {
  for_each = local.live_routes

  #checkov:skip=CKV_AWS_309: $connect checks a single-use ticket issued by POST /live/tickets behind the HTTP API's JWT authorizer (API Gateway has no JWT authorizer for WebSocket APIs); other routes only exist on an accepted socket.

  api_id                              = aws_apigatewayv2_api.live.id
  route_key                           = each.key
  target                              = "integrations/${aws_apigatewayv2_integration.live.id}"
  route_response_selection_expression = contains(local.live_two_way, each.key) ? "$default" : null
}

resource "aws_apigatewayv2_route_response" "live" {
  for_each = local.live_two_way

  api_id             = aws_apigatewayv2_api.live.id
  route_id           = aws_apigatewayv2_route.live[each.key].id
  route_response_key = "$default"
}

resource "aws_lambda_permission" "live" {
  statement_id  = "AllowWebSocketApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["live"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.live.execution_arn}/*/*"
}
