//! `telemetry --app NAME <command>`: inspect and control an app's telemetry.

use std::io::Write;
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error quotes what it refused (an argument, the value of `TELEMETRY_APP`):
        // like everything the commands print (`run_as`), it is shown escaped for a terminal,
        // as plain text (clap's own styling would be escaped too).
        Err(err) if err.use_stderr() => {
            let text = err.render().to_string();
            let escaped = telemetry_schema::display::escape_for_terminal(&text);
            let _ = std::io::stderr().write_all(escaped.as_bytes());
            return ExitCode::from(
                u8::try_from(err.exit_code()).unwrap_or(telemetry_cli::exit::USAGE),
            );
        }
        // `--help` and `--version`: the toolkit's own text.
        Err(err) => err.exit(),
    };
    let builder = Telemetry::builder(cli.app);
    let code = telemetry_cli::with_stdio(|io| {
        telemetry_cli::run_as(&builder, &cli.args, telemetry_cli::Form::Standalone, io)
    });
    ExitCode::from(code)
}
