variable "name_prefix" {
  description = "Prefix for every resource name (tables, stream, queues, functions, API)."
  type        = string
  default     = "orders"
}

variable "architecture" {
  description = "Lambda instruction set architecture: arm64 (Graviton, AWS default) or x86_64 (local emulator)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "artifacts_dir" {
  description = "Directory holding <bin>/bootstrap.zip for each function (cargo lambda build --output-format zip writes target/lambda)."
  type        = string
}

variable "currency" {
  description = "Default ISO 4217 currency for orders (DEFAULT_CURRENCY)."
  type        = string
  default     = "USD"
}

variable "memory_size" {
  description = "Memory (MB) for every function."
  type        = number
  default     = 256
}

variable "api_timeout" {
  description = "Timeout (seconds) of the API-facing functions (place-order, query)."
  type        = number
  default     = 10
}

variable "stream_timeout" {
  description = "Timeout (seconds) of the Kinesis consumers (process-order, aggregate)."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups."
  type        = number
  default     = 14
}

variable "lambda_json_logging" {
  description = "Set logging_config { log_format = \"JSON\" } on the functions (off for moto, which does not store it)."
  type        = bool
  default     = true
}

variable "log_level" {
  description = "RUST_LOG for every function."
  type        = string
  default     = "info"
}

variable "kinesis_retention_hours" {
  description = "Retention period of the order events stream."
  type        = number
  default     = 24
}

variable "kinesis_encryption" {
  description = "Encrypt the order events stream with the AWS managed key alias/aws/kinesis."
  type        = bool
  default     = true
}

variable "idempotency_ttl_hours" {
  description = "How long idempotency records live (IDEMPOTENCY_TTL_HOURS)."
  type        = number
  default     = 24
}

variable "throttling_burst_limit" {
  description = "HTTP API default route burst limit."
  type        = number
  default     = 200
}

variable "throttling_rate_limit" {
  description = "HTTP API default route steady-state rate limit (requests per second)."
  type        = number
  default     = 100
}

variable "tags" {
  description = "Tags added to every taggable resource."
  type        = map(string)
  default     = {}
}
