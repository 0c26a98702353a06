//! `orders-admin`: operator commands.
//!
//! * `dlq list` shows what is in a queue without consuming it ([`list`]).
//! * `dlq replay` puts the dead-lettered records back on the stream ([`replay`], which
//!   explains why that is safe).
//! * `rebuild-aggregates` recomputes analytics buckets from the orders table ([`rebuild`]).
//! * `backfill-listing-keys` gives orders stored before an upgrade the key of the
//!   customer-and-status listing index (`byCustomerStatus`).
//! * `token` prints a bearer token of the local stack's development issuer ([`token`]).
//!
//! The AWS endpoint comes from the normal SDK chain, which honours `AWS_ENDPOINT_URL`.
//! Locally (the endpoint is set), credentials default to `test`/`test` and the region to
//! `us-east-1` when the environment has none.

pub mod dlq;
pub mod list;
pub mod queue;
pub mod rebuild;
pub mod replay;
pub mod sequence;
pub mod stream;
pub mod token;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "orders-admin",
    version,
    about = "Operator CLI for the orders system"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dead-letter queues of the stream consumers.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Recompute the analytics of whole UTC days from the orders table and replace them
    /// (exact while orders keep flowing: the events it covers are claimed from the stream).
    RebuildAggregates {
        /// First day (2026-11-21 or an RFC 3339 time; widened to the start of its day).
        #[arg(long)]
        from: String,
        /// End, exclusive (widened to the end of its day).
        #[arg(long)]
        to: String,
        #[arg(long, env = "ORDERS_TABLE", default_value = "orders-orders")]
        orders_table: String,
        #[arg(long, env = "ANALYTICS_TABLE", default_value = "orders-analytics")]
        analytics_table: String,
        #[arg(
            long,
            env = "EVENT_CLAIMS_TABLE",
            default_value = "orders-event-claims"
        )]
        claims_table: String,
        /// The order-events stream (name or ARN): its shards name the items' watermarks.
        #[arg(
            long,
            env = "EVENTS_STREAM_NAME",
            default_value = "orders-order-events"
        )]
        stream: String,
        /// How long the rebuild's event claims live: as long as the aggregate's
        /// (`DEDUP_TTL_HOURS`: stream retention + DLQ retention + a day).
        #[arg(long, env = "DEDUP_TTL_HOURS", default_value_t = 384)]
        claim_ttl_hours: i64,
        /// Report the buckets that differ; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a bearer token from the local stack's development OIDC issuer:
    /// `curl -H "Authorization: Bearer $(orders-admin token --customer c-1)" …`.
    #[command(group = clap::ArgGroup::new("holder").required(true))]
    Token {
        /// A customer's token: it sees, lists, places and cancels only this customer's orders.
        #[arg(long, group = "holder")]
        customer: Option<String>,
        /// A staff token (scope `orders/admin`): the catalog, shipping, every order, analytics.
        #[arg(long, group = "holder", num_args = 0..=1, default_missing_value = "staff")]
        staff: Option<String>,
        /// The issuer (`make run` serves it here).
        #[arg(long, env = "ORDERS_ISSUER", default_value = "http://127.0.0.1:3002")]
        issuer: String,
        #[arg(long, env = "ORDERS_AUDIENCE", default_value = dev_auth::LOCAL_AUDIENCE)]
        audience: String,
        /// Where the issuer's signing key is.
        #[arg(long, env = "ORDERS_ISSUER_DIR", default_value = ".local/dev-oidc")]
        key_dir: std::path::PathBuf,
        #[arg(long, default_value_t = 60)]
        lifetime_minutes: i64,
    },
    /// Give orders stored before the customer-and-status listing index existed its key
    /// (once, after upgrading a deployment that holds orders; later writes set it).
    BackfillListingKeys {
        #[arg(long, env = "ORDERS_TABLE", default_value = "orders-orders")]
        orders_table: String,
        /// Count the orders without the key; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Show the messages of a dead-letter queue without consuming them.
    List {
        /// Queue name (e.g. orders-process-order-dlq) or URL.
        #[arg(long)]
        queue: String,
        /// Print the raw message bodies as JSON lines.
        #[arg(long)]
        json: bool,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Put dead-lettered records back on the stream, deleting each replayed message.
    ///
    /// Exits with status 2 when some messages were skipped or failed (they stay queued).
    Replay {
        /// Queue name (e.g. orders-process-order-dlq) or URL.
        #[arg(long)]
        queue: String,
        /// Where the records go: back to the function that failed them (invoked with
        /// them), or re-put on a stream for every consumer.
        #[arg(long, value_enum, default_value_t = To::Function)]
        to: To,
        /// Stream (name or ARN) to re-put to (implies `--to stream`); default: the stream
        /// the records came from.
        #[arg(long)]
        stream: Option<String>,
        /// Print what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many messages.
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

/// `dlq replay --to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum To {
    /// The function that dead-lettered the records.
    Function,
    /// The stream they came from (or `--stream`): every consumer sees them again.
    Stream,
}

/// The SDK configuration: the default chain, with local defaults when `AWS_ENDPOINT_URL`
/// points at an emulator and the environment has no credentials / region.
pub async fn sdk_config() -> SdkConfig {
    let env = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if env("AWS_ENDPOINT_URL") {
        if !env("AWS_ACCESS_KEY_ID") && !env("AWS_PROFILE") {
            loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "orders-admin-local",
            ));
        }
        if !env("AWS_REGION") && !env("AWS_DEFAULT_REGION") {
            loader = loader.region(Region::new("us-east-1"));
        }
    }
    loader.load().await
}

/// Runs a command, writing its report to `out`.
pub async fn run(cli: Cli, sdk: &SdkConfig, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    match cli.command {
        Command::Token {
            customer,
            staff,
            issuer,
            audience,
            key_dir,
            lifetime_minutes,
        } => {
            let holder = match (&customer, &staff) {
                (Some(id), _) => token::Holder::Customer(id),
                (None, Some(name)) => token::Holder::Staff(name),
                (None, None) => anyhow::bail!("say --customer <id> or --staff"),
            };
            let options = token::TokenOptions {
                issuer: &issuer,
                audience: &audience,
                key_dir: &key_dir,
                lifetime_minutes,
            };
            let now = orders_core::Timestamp::now().unix_seconds();
            writeln!(out, "{}", token::mint(&holder, &options, now)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::RebuildAggregates {
            from,
            to,
            orders_table,
            analytics_table,
            claims_table,
            stream,
            claim_ttl_hours,
            dry_run,
        } => {
            let parse = |name: &str, text: &str| {
                rebuild::parse_time(text).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--{name} {text:?} is not a date (2026-11-21) or an RFC 3339 time"
                    )
                })
            };
            let options = rebuild::RebuildOptions {
                from: parse("from", &from)?,
                to: parse("to", &to)?,
                dry_run,
            };
            anyhow::ensure!(options.from < options.to, "--from must be before --to");
            let orders = orders_aws::DynamoOrderStore::from_sdk(sdk, orders_table);
            let analytics = orders_aws::DynamoAnalytics::from_sdk(
                sdk,
                analytics_table,
                claims_table,
                claim_ttl_hours * 3_600,
            );
            let kinesis = aws_sdk_kinesis::Client::new(sdk);
            let shards = stream::shard_ids(&kinesis, &stream::StreamRef::parse(&stream)).await?;
            rebuild::rebuild(&orders, &analytics, &shards, &options, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BackfillListingKeys {
            orders_table,
            dry_run,
        } => {
            let orders = orders_aws::DynamoOrderStore::from_sdk(sdk, orders_table);
            let done = orders.backfill_listing_keys(dry_run).await?;
            writeln!(
                out,
                "{} order(s) without the customer-and-status listing key; {} updated, {} changed meanwhile (keyed by that write){}",
                done.missing,
                done.updated,
                done.changed_meanwhile,
                if dry_run {
                    " — dry run, nothing written"
                } else {
                    ""
                }
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq(DlqCommand::List { queue, json, max }) => {
            let queue = queue::Queue::resolve(sqs, &queue).await?;
            let listed = list::list(&queue, max).await?;
            if json {
                list::write_json(out, &listed)?;
            } else {
                list::write_table(out, &queue.url, &listed)?;
                if listed.is_empty()
                    && let Some(n) = queue.in_flight().await.filter(|n| *n > 0)
                {
                    writeln!(
                        out,
                        "({n} message(s) in flight: received by someone else, visible again later)"
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq(DlqCommand::Replay {
            queue,
            to,
            stream,
            dry_run,
            max,
        }) => {
            let queue = queue::Queue::resolve(sqs, &queue).await?;
            let kinesis = aws_sdk_kinesis::Client::new(sdk);
            let lambda = aws_sdk_lambda::Client::new(sdk);
            let to = match (to, stream) {
                (_, Some(stream)) => {
                    replay::Destination::Stream(Some(stream::StreamRef::parse(&stream)))
                }
                (To::Stream, None) => replay::Destination::Stream(None),
                (To::Function, None) => replay::Destination::Function,
            };
            let options = replay::ReplayOptions { to, dry_run, max };
            let report = replay::replay(&queue, &kinesis, &lambda, &options, out).await?;
            report.write_summary(out)?;
            Ok(if report.skipped() + report.failed() > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
