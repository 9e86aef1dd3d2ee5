//! `telemetry-collector`: receive what apps upload (`serve`), estimate usage (`report`), keep
//! the store to a retention period (`prune`).
//!
//! Exit statuses: 0 success; 1 an error (the chain is printed); 2 a usage error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use telemetry_collector::ingest::Registry;
use telemetry_collector::server::{Limits, Server, signals, today};
use telemetry_collector::store::{self, OpenOptions, Query, Store};
use telemetry_collector::{html, report};
use telemetry_schema::Day;

/// The store used when `--store` is not given: an SQLite file in the current directory.
const DEFAULT_STORE: &str = "telemetry-collector.db";

#[derive(Parser)]
#[command(
    name = "telemetry-collector",
    version,
    about = "The operator's side of the telemetry toolkit: receive, store, estimate and show what apps send."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct StoreArg {
    /// Where payloads are kept: a path (SQLite, created on first use) or
    /// clickhouse://HOST:PORT/DATABASE (tables created on first use).
    #[arg(long, value_name = "URL", default_value = DEFAULT_STORE)]
    store: String,
}

#[derive(Subcommand)]
enum Command {
    /// Receive payloads: POST BASE/submit/APP/RUN_ID (what `telemetry upload` sends to the
    /// endpoint BASE); GET /report, /report.json, /health.
    Serve {
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4318")]
        listen: SocketAddr,
        #[command(flatten)]
        store: StoreArg,
        /// An app's catalogue (the output of `<app> telemetry catalog --json`); repeat for
        /// more apps or versions. Catalogues registered by earlier runs are kept in the store.
        #[arg(long, value_name = "FILE")]
        catalog: Vec<PathBuf>,
        /// Connections served at once; more are answered 503 with Retry-After.
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
        /// Accepted payloads waiting for the store; when full, 503 with Retry-After.
        #[arg(long, default_value_t = Limits::default().queue)]
        queue: usize,
        /// Milliseconds for a request head (and for an idle connection) before it is closed.
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        header_timeout_ms: u64,
        /// Milliseconds for a body once its head has arrived (408 after).
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        body_timeout_ms: u64,
        /// SQLite only: let the store grow to about this many MiB; then payloads are answered
        /// 507 (kept by the uploader for later) and nothing stored is lost.
        #[arg(long, value_name = "MIB")]
        max_store_mib: Option<u64>,
    },
    /// Estimates with standard errors and 95% intervals for every field, from the store.
    Report {
        #[command(flatten)]
        store: StoreArg,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
        /// From this day on (YYYY-MM-DD, inclusive).
        #[arg(long, value_name = "DAY")]
        since: Option<Day>,
        /// Up to this day (YYYY-MM-DD, inclusive).
        #[arg(long, value_name = "DAY")]
        until: Option<Day>,
        /// JSON for scripts (raw and clipped estimates, intervals, per-day trends).
        #[arg(long, conflicts_with = "html")]
        json: bool,
        /// Write a self-contained HTML page with a chart per field to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Write a consistent copy of an SQLite store to a new file while it keeps serving.
    Backup {
        #[command(flatten)]
        store: StoreArg,
        /// The new file.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Remove payloads (and their statistics) of days more than DAYS days ago.
    Prune {
        #[command(flatten)]
        store: StoreArg,
        /// Keep the last DAYS days (today counts as one).
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
    },
}

/// Opens an existing store (`report`, `prune`, `backup`): a missing SQLite file is an error,
/// never a new empty store that a typo would report on.
fn open_existing(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if !url.contains("://") {
        let path = url.strip_prefix("sqlite:").unwrap_or(url);
        if !std::path::Path::new(path).is_file() {
            bail!(
                "there is no store at {path:?} (`telemetry-collector serve --store {path}` creates it)"
            );
        }
    }
    open(url, OpenOptions::default())
}

fn open(url: &str, options: OpenOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store =
        store::open_with(url, options).with_context(|| format!("cannot open the store {url:?}"))?;
    Ok(Arc::from(store))
}

/// Reads a catalogue file with a size bound (4 MiB, far above any real catalogue).
fn read_catalog(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        bail!("not a regular file");
    }
    let mut bytes = Vec::new();
    file.take(4 * 1024 * 1024 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > 4 * 1024 * 1024 {
        bail!("larger than 4 MiB");
    }
    Ok(bytes)
}

fn serve(
    listen: SocketAddr,
    store_url: &str,
    catalogs: &[PathBuf],
    limits: Limits,
    options: OpenOptions,
) -> anyhow::Result<()> {
    let store = open(store_url, options)?;
    let mut registry = Registry::default();
    for json in store
        .catalogs()
        .context("cannot read the stored catalogues")?
    {
        registry
            .add_json(json.as_bytes())
            .map_err(|e| anyhow::anyhow!("a stored catalogue is not valid: {e}"))?;
    }
    for path in catalogs {
        let bytes = read_catalog(path)
            .with_context(|| format!("cannot read the catalogue {}", path.display()))?;
        let (app, version) = registry
            .add_json(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let json = String::from_utf8(bytes).context("the catalogue is not UTF-8")?;
        store
            .register_catalog(&app, &version, &json)
            .context("cannot remember the catalogue in the store")?;
    }
    let apps: Vec<&str> = registry.apps().collect();
    if apps.is_empty() {
        eprintln!(
            "telemetry-collector: warning: no catalogue registered: every payload is refused \
             (404 unknown app) until one is given with --catalog FILE"
        );
    }
    let apps = apps.join(", ");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let description = store.describe();
        let server = Server::bind(listen, registry, store, limits)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = server.local_addr()?;
        // The first line of stdout, for scripts and tests that pass port 0.
        println!("listening on http://{addr}/");
        eprintln!("telemetry-collector: store {description}; apps: {apps}");
        let counters = server.counters();
        server.run(signals()).await;
        eprintln!(
            "telemetry-collector: stopped; {} payloads stored, {} repeated run ids, {} requests refused",
            counters.stored.load(Ordering::Relaxed),
            counters.duplicates.load(Ordering::Relaxed),
            counters.refused.load(Ordering::Relaxed),
        );
        Ok(())
    })
}

fn days_before(day: Day, days: u32) -> Day {
    let (y, m, d) = day.ymd();
    // Midday of `day`, minus whole days: the UTC day `days` days earlier.
    let secs = unix_of(y, m, d) + 43_200 - i64::from(days) * 86_400;
    Day::from_unix_seconds(secs).unwrap_or_else(|_| Day::new(1970, 1, 1).expect("valid day"))
}

/// Seconds since the epoch at the start of a civil day (Howard Hinnant's days_from_civil).
fn unix_of(y: u16, m: u8, d: u8) -> i64 {
    let (y, m, d) = (i64::from(y) - i64::from(m <= 2), i64::from(m), i64::from(d));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            store,
            catalog,
            max_connections,
            queue,
            header_timeout_ms,
            body_timeout_ms,
            max_store_mib,
        } => {
            if max_connections == 0 || queue == 0 {
                bail!("--max-connections and --queue must be at least 1");
            }
            let limits = Limits {
                max_connections,
                queue,
                header_timeout: Duration::from_millis(header_timeout_ms.max(1)),
                body_timeout: Duration::from_millis(body_timeout_ms.max(1)),
                ..Limits::default()
            };
            let options = OpenOptions {
                max_bytes: max_store_mib.map(|m| m.saturating_mul(1024 * 1024)),
            };
            serve(listen, &store.store, &catalog, limits, options)
        }
        Command::Report {
            store,
            app,
            since,
            until,
            json,
            html: html_file,
        } => {
            if let (Some(s), Some(u)) = (since, until)
                && s > u
            {
                bail!("--since {s} is after --until {u}");
            }
            let store = open_existing(&store.store)?;
            let query = Query { app, since, until };
            let reports = report::build(&*store, &query).context("cannot read the store")?;
            if let Some(path) = html_file {
                std::fs::write(&path, html::to_html(&reports))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            } else if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                print!("{}", report::to_text(&reports));
            }
            Ok(())
        }
        Command::Backup { store, to } => {
            if store.store.contains("://") {
                bail!(
                    "backup copies an SQLite store; back up ClickHouse with its own tools \
                     (ALTER TABLE ... FREEZE, or clickhouse-backup)"
                );
            }
            open_existing(&store.store)?;
            let path = store.store.strip_prefix("sqlite:").unwrap_or(&store.store);
            let sqlite =
                telemetry_collector::store::sqlite::Sqlite::open(std::path::Path::new(path))
                    .with_context(|| format!("cannot open the store {path:?}"))?;
            sqlite
                .backup(&to)
                .with_context(|| format!("cannot back up to {}", to.display()))?;
            println!("wrote {}", to.display());
            Ok(())
        }
        Command::Prune { store, older_than } => {
            if older_than == 0 {
                bail!("--older-than must be at least 1 (today's payloads are always kept)");
            }
            let store = open_existing(&store.store)?;
            let before = days_before(today(), older_than - 1);
            let removed = store.prune(before).context("cannot prune the store")?;
            println!("removed {removed} payloads of days before {before}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telemetry-collector: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_before_crosses_months_and_years() {
        let d = |y, m, d| Day::new(y, m, d).unwrap();
        assert_eq!(days_before(d(2026, 12, 2), 0), d(2026, 12, 2));
        assert_eq!(days_before(d(2026, 12, 2), 2), d(2026, 11, 30));
        assert_eq!(days_before(d(2026, 1, 1), 1), d(2025, 12, 31));
        assert_eq!(days_before(d(2024, 3, 1), 1), d(2024, 2, 29));
        assert_eq!(unix_of(1970, 1, 1), 0);
    }
}
