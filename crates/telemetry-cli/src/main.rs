//! `telemetry --app NAME <command>`: inspect and control an app's telemetry.

use std::process::ExitCode;

use clap::Parser;
use telemetry_cli::TelemetryArgs;
use telemetry_core::Telemetry;

/// Inspect and control the telemetry of an app built with the telemetry toolkit.
#[derive(Parser, Debug)]
#[command(name = "telemetry", version)]
struct Cli {
    /// The app whose telemetry to inspect (its name, e.g. `acme`).
    #[arg(long, env = "TELEMETRY_APP", value_parser = parse_app)]
    app: String,
    #[command(flatten)]
    args: TelemetryArgs,
}

fn parse_app(name: &str) -> Result<String, String> {
    telemetry_core::AppName::new(name)
        .map(|app| app.as_str().to_owned())
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let builder = Telemetry::builder(cli.app);
    let code = telemetry_cli::with_stdio(|io| {
        telemetry_cli::run_as(&builder, &cli.args, telemetry_cli::Form::Standalone, io)
    });
    ExitCode::from(code)
}
