# ----------------------------------------------------------------- naming

variable "name_prefix" {
  description = "Prefix for every resource name (tables, stream, queues, functions, API, key alias)."
  type        = string
  default     = "orders"

  validation {
    # Lambda function names are at most 64 characters: prefix + "-process-order" must fit.
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-40 characters of a-z, 0-9 and -, starting with a letter and not ending with -."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------- Lambda

variable "artifacts_dir" {
  description = "Directory holding <bin>/bootstrap.zip for each function (cargo lambda build --output-format zip writes target/lambda)."
  type        = string
}

variable "architecture" {
  description = "Lambda instruction set architecture: arm64 (Graviton, about 20% cheaper per GB-second) or x86_64. The zips must be built for it."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "memory_size" {
  description = "Memory (MB) of every function; CPU is allocated in proportion."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "api_timeout" {
  description = "Timeout (seconds) of the API-facing functions (place-order, query). API Gateway gives up after 30 s."
  type        = number
  default     = 10

  validation {
    condition     = var.api_timeout >= 1 && var.api_timeout <= 29
    error_message = "api_timeout must be 1-29 seconds (the HTTP API's integration timeout is 30 s)."
  }
}

variable "stream_timeout" {
  description = "Timeout (seconds) of the Kinesis consumers (process-order, aggregate)."
  type        = number
  default     = 60

  validation {
    condition     = var.stream_timeout >= 10 && var.stream_timeout <= 900
    error_message = "stream_timeout must be 10-900 seconds."
  }
}

variable "reserved_concurrency" {
  description = <<-EOT
    Reserved concurrency per function binary (place-order, query, process-order, aggregate):
    a ceiling on its parallel instances (and on what a traffic spike can cost) that also
    guarantees it that many. Functions not listed are unreserved. The account must keep at
    least 100 unreserved, so leave this empty on accounts with a low concurrency quota.
  EOT
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for bin, n in var.reserved_concurrency : contains(["place-order", "query", "process-order", "aggregate"], bin) && n >= 0 && floor(n) == n])
    error_message = "reserved_concurrency keys must be function binaries (place-order, query, process-order, aggregate) and values whole numbers >= 0."
  }
}

variable "tracing_enabled" {
  description = "X-Ray active tracing on every function (adds the X-Ray write permissions). Off: PassThrough, nothing is sent."
  type        = bool
  default     = false
}

variable "log_level" {
  description = "RUST_LOG for every function (a level, or a filter such as \"info,aws_smithy_runtime=warn\")."
  type        = string
  default     = "info"

  validation {
    condition     = can(regex("^[A-Za-z0-9_:=,.-]+$", var.log_level))
    error_message = "log_level must be a RUST_LOG filter: letters, digits and _ : = , . -"
  }
}

variable "lambda_json_logging" {
  description = "Set logging_config { log_format = \"JSON\" } on the functions (off for moto, which does not store it)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group (functions and API access logs)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

# ------------------------------------------------------------ application

variable "currency" {
  description = "Default ISO 4217 currency for orders (DEFAULT_CURRENCY)."
  type        = string
  default     = "USD"

  validation {
    condition     = can(regex("^[A-Z]{3}$", var.currency))
    error_message = "currency must be a three-letter ISO 4217 code such as USD."
  }
}

variable "idempotency_ttl_hours" {
  description = "How long an Idempotency-Key is remembered (IDEMPOTENCY_TTL_HOURS); records then expire by DynamoDB TTL."
  type        = number
  default     = 24

  validation {
    # The same bounds place-order's Config::from_env accepts.
    condition     = var.idempotency_ttl_hours >= 1 && var.idempotency_ttl_hours <= 720 && floor(var.idempotency_ttl_hours) == var.idempotency_ttl_hours
    error_message = "idempotency_ttl_hours must be a whole number from 1 to 720."
  }
}

# ---------------------------------------------------------------- storage

variable "deletion_protection" {
  description = "DynamoDB deletion protection on every table. Set false (and apply) before terraform destroy."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "DynamoDB point-in-time recovery (35 days of continuous backups) on every table."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = <<-EOT
    Customer managed KMS key encrypting the tables, the stream and the log groups. Null: the
    module creates one (rotation on). A key you bring must allow CloudWatch Logs
    (logs.<region>.amazonaws.com) to use it, like the key policy in kms.tf.
  EOT
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the module's KMS key is deleted after destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be 7-30."
  }
}

variable "kinesis_stream_mode" {
  description = "ON_DEMAND (scales by itself, billed per GB and stream hour) or PROVISIONED (kinesis_shard_count shards, billed per shard hour)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.kinesis_stream_mode)
    error_message = "kinesis_stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "kinesis_shard_count" {
  description = "Shards of the stream when kinesis_stream_mode is PROVISIONED (each takes 1 MB/s or 1,000 records/s in)."
  type        = number
  default     = 1

  validation {
    condition     = var.kinesis_shard_count >= 1 && floor(var.kinesis_shard_count) == var.kinesis_shard_count
    error_message = "kinesis_shard_count must be a whole number >= 1."
  }
}

variable "kinesis_retention_hours" {
  description = "Retention of the order events stream: how long a stalled consumer can fall behind, and how far back orders-admin can replay."
  type        = number
  default     = 24

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760
    error_message = "kinesis_retention_hours must be 24-8760."
  }
}

# ------------------------------------------------------------------- API

variable "jwt_issuer" {
  description = <<-EOT
    Issuer URL of the JWT authorizer on every route but /health, /openapi.json,
    /asyncapi.json and the dashboard page, e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>; locally the
    development issuer (http://127.0.0.1:3002). Null: no authorizer, every route is public —
    for a throwaway trial only.
  EOT
  type        = string
  default     = null

  validation {
    condition     = var.jwt_issuer == null || can(regex("^(https://[^\\s]+|http://127\\.0\\.0\\.1(:[0-9]+)?)$", var.jwt_issuer))
    error_message = "jwt_issuer must be an https:// URL (or the local development issuer on http://127.0.0.1)."
  }
}

variable "user_pool" {
  description = "Create a Cognito user pool as the issuer (users.tf): hosted sign-in, the dashboard as a PKCE client, scopes orders/customer and orders/admin, a staff group. Leave jwt_issuer null then."
  type        = bool
  default     = false
}

variable "user_pool_domain" {
  description = "Prefix of the user pool's hosted sign-in domain (<prefix>.auth.<region>.amazoncognito.com); null: <name_prefix>-<account id>."
  type        = string
  default     = null
}

variable "user_pool_admin_create_only" {
  description = "Only administrators create users (no self sign-up)."
  type        = bool
  default     = false
}

variable "jwt_audience" {
  description = "Accepted JWT audiences (aud claim; the app client id for Cognito). Required with jwt_issuer."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.jwt_audience : length(trimspace(a)) > 0])
    error_message = "jwt_audience entries must not be empty."
  }
}

variable "sign_in_authorize_url" {
  description = "The dashboard's sign-in page (OIDC authorization endpoint), when it is not <jwt_issuer>/authorize — e.g. a Cognito domain's https://<domain>.auth.<region>.amazoncognito.com/oauth2/authorize."
  type        = string
  default     = null
}

variable "sign_in_token_url" {
  description = "The OIDC token endpoint the dashboard trades its code at, when it is not <jwt_issuer>/token (Cognito: https://<domain>.auth.<region>.amazoncognito.com/oauth2/token)."
  type        = string
  default     = null
}

variable "cors_allow_origins" {
  description = "Origins allowed to call the API from a browser (a dashboard hosted elsewhere), e.g. [\"https://dashboard.example.com\"]. Empty: no CORS headers (the dashboard served at GET / is same-origin)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_allow_origins : can(regex("^https?://[A-Za-z0-9.-]+(:[0-9]+)?$", o))])
    error_message = "cors_allow_origins entries must be origins like https://dashboard.example.com (scheme, host, optional port; no path, no *)."
  }
}

variable "throttling_burst_limit" {
  description = "HTTP API default route burst limit (requests)."
  type        = number
  default     = 200

  validation {
    condition     = var.throttling_burst_limit >= 1 && var.throttling_burst_limit <= 5000
    error_message = "throttling_burst_limit must be 1-5000."
  }
}

variable "throttling_rate_limit" {
  description = "HTTP API default route steady-state rate limit (requests per second)."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_rate_limit >= 1 && var.throttling_rate_limit <= 10000
    error_message = "throttling_rate_limit must be 1-10000 requests per second."
  }
}
