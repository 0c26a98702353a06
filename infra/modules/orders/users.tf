# ------------------------------------------------------------------- Sign-in (Cognito)
#
# With var.user_pool, the module brings its own issuer: a Cognito user pool with a hosted
# sign-in domain, a resource server `orders` with the scopes the routes demand, the dashboard
# as a public client (authorization code + PKCE, no secret), and a `staff` group. Cognito lets
# any user of a client ask for any of the client's scopes, so staff are told apart by the
# group (the functions require `cognito:groups` to hold `staff` along with `orders/admin`).

resource "aws_cognito_user_pool" "users" {
  count = var.user_pool ? 1 : 0

  name                     = "${var.name_prefix}-users"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"

  password_policy {
    minimum_length    = 12
    require_lowercase = true
    require_numbers   = true
    require_symbols   = false
    require_uppercase = true
  }

  admin_create_user_config {
    allow_admin_create_user_only = var.user_pool_admin_create_only
  }

  tags = var.tags
}

resource "aws_cognito_resource_server" "orders" {
  count = var.user_pool ? 1 : 0

  user_pool_id = aws_cognito_user_pool.users[0].id
  identifier   = "orders"
  name         = "${var.name_prefix} orders API"

  scope {
    scope_name        = "customer"
    scope_description = "A customer: its own orders."
  }
  scope {
    scope_name        = "admin"
    scope_description = "Staff: the catalog, shipping, every order, analytics (with the staff group)."
  }
}

resource "aws_cognito_user_pool_client" "dashboard" {
  count = var.user_pool ? 1 : 0

  name                                 = "${var.name_prefix}-dashboard"
  user_pool_id                         = aws_cognito_user_pool.users[0].id
  generate_secret                      = false
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = concat(["openid", "email"], [for s in aws_cognito_resource_server.orders[0].scope_identifiers : s])
  callback_urls                        = ["${aws_apigatewayv2_api.http.api_endpoint}/"]
  logout_urls                          = ["${aws_apigatewayv2_api.http.api_endpoint}/"]
  supported_identity_providers         = ["COGNITO"]
  prevent_user_existence_errors        = "ENABLED"
  access_token_validity                = 60
  id_token_validity                    = 60
  refresh_token_validity               = 1

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}

resource "aws_cognito_user_pool_domain" "sign_in" {
  count = var.user_pool ? 1 : 0

  # Globally unique per region: the prefix and the account.
  domain       = coalesce(var.user_pool_domain, "${var.name_prefix}-${data.aws_caller_identity.current.account_id}")
  user_pool_id = aws_cognito_user_pool.users[0].id
}

resource "aws_cognito_user_group" "staff" {
  count = var.user_pool ? 1 : 0

  name         = "staff"
  user_pool_id = aws_cognito_user_pool.users[0].id
  description  = "Staff: with the orders/admin scope, the catalog, shipping, every order and the analytics."
}

locals {
  # The authorizer's issuer and audience, and the dashboard's sign-in endpoints: the user
  # pool's when the module creates one, else what the caller gives.
  jwt_issuer   = var.user_pool ? "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.users[0].id}" : var.jwt_issuer
  jwt_audience = var.user_pool ? [aws_cognito_user_pool_client.dashboard[0].id] : var.jwt_audience
  sign_in_base = var.user_pool ? "https://${aws_cognito_user_pool_domain.sign_in[0].domain}.auth.${data.aws_region.current.name}.amazoncognito.com/oauth2" : null
  sign_in_authorize_url = local.jwt_enabled ? coalesce(
    var.sign_in_authorize_url,
    var.user_pool ? "${local.sign_in_base}/authorize" : "${coalesce(var.jwt_issuer, "-")}/authorize",
  ) : ""
  sign_in_token_url = local.jwt_enabled ? coalesce(
    var.sign_in_token_url,
    var.user_pool ? "${local.sign_in_base}/token" : "${coalesce(var.jwt_issuer, "-")}/token",
  ) : ""
}
