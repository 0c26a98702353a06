# terraform -chdir=infra/envs/aws apply -var-file=example.tfvars
# Every variable is optional; these are the ones most deployments set.
region      = "eu-west-1"
name_prefix = "orders-prod"

# Commands (POST/PATCH/DELETE /orders…, PUT /products/…) need a bearer token from this issuer.
jwt_issuer   = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE"
jwt_audience = ["example-app-client-id"]

# A dashboard hosted on another origin.
cors_allow_origins = ["https://dashboard.example.com"]

reserved_concurrency = {
  place-order = 100
  query       = 100
}
tracing_enabled    = true
alarm_email        = "oncall@example.com"
log_retention_days = 365

tags = { team = "orders", costCenter = "1234" }
