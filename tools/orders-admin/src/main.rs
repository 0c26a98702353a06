use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = orders_admin::Cli::parse();
    let sdk = orders_admin::sdk_config().await;
    match orders_admin::run(cli, &sdk, &mut std::io::stdout().lock()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
