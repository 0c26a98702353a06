# The module validates every value (infra/modules/orders/variables.tf); defaults are its own.

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; one deployment per prefix and region."
  type        = string
  default     = "orders"
}

variable "tags" {
  description = "Extra tags on every resource (merged into the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "artifacts_dir" {
  description = "Where <bin>/bootstrap.zip are: scripts/package.sh writes target/lambda."
  type        = string
  default     = "../../../target/lambda"
}

variable "architecture" {
  description = "arm64 (default, Graviton) or x86_64; must match how the zips were built."
  type        = string
  default     = "arm64"
}

variable "memory_size" {
  description = "Memory (MB) of every function."
  type        = number
  default     = 256
}

variable "currency" {
  description = "The currency orders are taken in (ISO 4217)."
  type        = string
  default     = "USD"
}

variable "log_level" {
  description = "RUST_LOG of every function."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the function and API access log groups."
  type        = number
  default     = 365
}

variable "tracing_enabled" {
  description = "X-Ray active tracing on every function."
  type        = bool
  default     = false
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function binary, e.g. { place-order = 50, query = 50 }. Empty: unreserved."
  type        = map(number)
  default     = {}
}

variable "kinesis_stream_mode" {
  description = "ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"
}

variable "kinesis_shard_count" {
  description = "Shards when kinesis_stream_mode is PROVISIONED."
  type        = number
  default     = 1
}

variable "kinesis_retention_hours" {
  description = "Retention of the order events stream (24-8760)."
  type        = number
  default     = 24
}

variable "deletion_protection" {
  description = "Deletion protection on the tables. Apply with false before terraform destroy."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Point-in-time recovery on the tables."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Bring your own customer managed key; null: the module creates one."
  type        = string
  default     = null
}

variable "user_pool" {
  description = "Sign in with a Cognito user pool the module creates (unless jwt_issuer names another issuer)."
  type        = bool
  default     = true
}

variable "jwt_issuer" {
  description = "An OIDC issuer of your own for the JWT authorizer (then no user pool is created); null: the user pool, or no sign-in with user_pool = false."
  type        = string
  default     = null
}

variable "jwt_audience" {
  description = "Accepted JWT audiences (with jwt_issuer)."
  type        = list(string)
  default     = []
}

variable "cors_allow_origins" {
  description = "Browser origins allowed to call the API (a dashboard hosted elsewhere)."
  type        = list(string)
  default     = []
}

variable "throttling_burst_limit" {
  description = "HTTP API burst limit (requests)."
  type        = number
  default     = 200
}

variable "throttling_rate_limit" {
  description = "HTTP API steady-state limit (requests per second)."
  type        = number
  default     = 100
}

variable "alarms_enabled" {
  description = "CloudWatch alarms (DLQ depth, dead letters, iterator age, errors, throttles, API 5xx) and their SNS topic."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic (confirm the subscription mail)."
  type        = string
  default     = null
}

variable "alarm_sns_topic_arn" {
  description = "An existing SNS topic for the alarms instead of the module's."
  type        = string
  default     = null
}

variable "iterator_age_alarm_seconds" {
  description = "Alarm when a stream consumer falls this far behind."
  type        = number
  default     = 300
}

variable "api_5xx_alarm_percent" {
  description = "Alarm when more than this percentage of API requests answer 5xx."
  type        = number
  default     = 1
}
