# -------------------------------------------------------- HTTP API (v2)

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-http-api"
  protocol_type = "HTTP"

  # A dashboard served from another origin (var.cors_allow_origins). The one served at GET /
  # by the query function is same-origin and needs none of this.
  dynamic "cors_configuration" {
    for_each = length(var.cors_allow_origins) > 0 ? [1] : []
    content {
      allow_origins  = var.cors_allow_origins
      allow_methods  = ["GET", "POST", "PUT", "PATCH", "DELETE"]
      allow_headers  = ["authorization", "content-type", "idempotency-key", "if-match", "if-none-match"]
      expose_headers = ["etag", "location", "idempotent-replayed", "retry-after"]
      max_age        = 3600
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${var.name_prefix}-http-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      latencyMs          = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      authorizerError    = "$context.authorizer.error"
      # No subject: a customer's id is personal data, and the request id leads to it for
      # those allowed to look.
    })
  }

  tags = var.tags
}

# Validates bearer tokens on every route but the public ones when var.jwt_issuer is set (a
# Cognito user pool: issuer https://cognito-idp.<region>.amazonaws.com/<pool id>, audience the
# app client id; locally the development issuer the local runner serves).
resource "aws_apigatewayv2_authorizer" "jwt" {
  count = local.jwt_enabled ? 1 : 0

  api_id           = aws_apigatewayv2_api.http.id
  name             = "${var.name_prefix}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = local.jwt_issuer
    audience = local.jwt_audience
  }

  lifecycle {
    precondition {
      condition     = !(var.user_pool && var.jwt_issuer != null)
      error_message = "Either user_pool (the module's own Cognito issuer) or jwt_issuer, not both."
    }
    precondition {
      condition     = length(local.jwt_audience) > 0
      error_message = "jwt_audience must list at least one audience when jwt_issuer is set."
    }
  }
}

resource "aws_apigatewayv2_integration" "fn" {
  for_each = local.api_functions

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.fn[each.key].invoke_arn
  payload_format_version = "2.0"
}

# Public by design: the health check, the OpenAPI document and the dashboard's static page
# (which signs in before it reads anything).
resource "aws_apigatewayv2_route" "public" {
  for_each = local.public_routes

  #checkov:skip=CKV_AWS_309: the health check, the OpenAPI and AsyncAPI documents and the dashboard page are public on purpose; every other route is aws_apigatewayv2_route.protected.

  api_id    = aws_apigatewayv2_api.http.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.fn[each.value].id}"
}

# Everything else: a token with one of the route's scopes (local.route_scopes), checked by the
# JWT authorizer before the function runs.
resource "aws_apigatewayv2_route" "protected" {
  for_each = local.protected_routes

  #checkov:skip=CKV_AWS_309: JWT whenever var.user_pool or var.jwt_issuer is set, which both roots do (AWS: a user pool by default; local: the development issuer); off only in a deliberate trial deployment.

  api_id               = aws_apigatewayv2_api.http.id
  route_key            = each.key
  target               = "integrations/${aws_apigatewayv2_integration.fn[each.value].id}"
  authorization_type   = local.jwt_enabled ? "JWT" : "NONE"
  authorizer_id        = local.jwt_enabled ? aws_apigatewayv2_authorizer.jwt[0].id : null
  authorization_scopes = local.jwt_enabled ? local.route_scopes[each.key] : null
}

resource "aws_lambda_permission" "api" {
  for_each = local.api_functions

  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  # Any route of this API's stages; the routes themselves decide which function serves what.
  source_arn = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}
