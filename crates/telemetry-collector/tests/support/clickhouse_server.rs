//! A real ClickHouse server for tests: Debian's `clickhouse-server`, started on free loopback
//! ports with its data in a temporary directory, killed (and the directory removed) on drop.
//!
//! Include it with `#[path = "support/clickhouse_server.rs"] mod clickhouse_server;`. A missing
//! server is a failure, never a skip: CI installs it.
#![allow(dead_code)]

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Where Debian's package puts the server.
pub const SERVER: &str = "/usr/sbin/clickhouse-server";
/// The database [`ClickHouseServer::url`] names.
pub const DATABASE: &str = "telemetry";

/// A running ClickHouse server of its own.
pub struct ClickHouseServer {
    child: Child,
    http_port: u16,
    dir: tempfile::TempDir,
}

/// Two distinct free loopback ports (bound together, then released).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn config(dir: &Path, http_port: u16, tcp_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709120</mark_cache_size>
</yandex>
"#
    )
}

/// Runs `sql` on the server at `http` (`http://127.0.0.1:PORT`); its answer, or why not.
pub fn query_at(http: &str, sql: &str) -> Result<String, String> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut response = agent
        .post(&format!("{http}/"))
        .send(sql)
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(text)
    } else {
        Err(format!("{status}: {text}"))
    }
}

enum Start {
    Ready(Child),
    /// The ports were taken meanwhile: try others.
    PortClash,
}

fn try_start(dir: &Path, http_port: u16, tcp_port: u16) -> Start {
    let config_path = dir.join("config.xml");
    fs::write(&config_path, config(dir, http_port, tcp_port)).expect("write config.xml");
    let log_path = dir.join("server.log");
    let log = File::create(&log_path).expect("create server.log");
    let mut child = Command::new(SERVER)
        .arg(format!("--config-file={}", config_path.display()))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SERVER}: {e}"));
    let http = format!("http://127.0.0.1:{http_port}");
    // Ours, not another server that holds the port: its data lives in `dir`.
    let probe = "SELECT data_path FROM system.databases WHERE name = 'system'";
    let ours = dir.join("data").display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait for clickhouse-server") {
            let log = read_log(&log_path);
            if log.contains("Address already in use") {
                return Start::PortClash;
            }
            panic!("clickhouse-server exited ({status}) while starting; its log:\n{log}");
        }
        match query_at(&http, probe) {
            Ok(path) if path.trim().starts_with(&ours) => return Start::Ready(child),
            Ok(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Start::PortClash;
            }
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "clickhouse-server did not answer on {http} within 30 s; its log:\n{}",
                read_log(&log_path)
            );
        }
        sleep(Duration::from_millis(50));
    }
}

fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

impl ClickHouseServer {
    /// Starts a server and waits until it answers (a few seconds at most). Panics if ClickHouse
    /// is not installed or does not start, with its log.
    pub fn start() -> ClickHouseServer {
        assert!(
            Path::new(SERVER).exists(),
            "{SERVER} is missing: the ClickHouse tests need a real server \
             (`.ci/run` installs it with `apt-get install -y clickhouse-server`)"
        );
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("clickhouse-test-")
                .tempdir()
                .expect("temporary directory");
            let (http_port, tcp_port) = free_ports();
            if let Start::Ready(child) = try_start(dir.path(), http_port, tcp_port) {
                return ClickHouseServer {
                    child,
                    http_port,
                    dir,
                };
            }
        }
        panic!("clickhouse-server found its ports taken five times in a row");
    }

    /// `clickhouse://127.0.0.1:PORT/telemetry`, for `--store` (the database is created on use).
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// `clickhouse://127.0.0.1:PORT/DATABASE`, another database on the same server.
    pub fn url_of(&self, database: &str) -> String {
        format!("clickhouse://127.0.0.1:{}/{database}", self.http_port)
    }

    /// `http://127.0.0.1:PORT`, its HTTP interface.
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Runs `sql`; its answer. Panics if ClickHouse refuses it.
    pub fn query(&self, sql: &str) -> String {
        query_at(&self.http(), sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Its data and log directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `dir` is removed when its field drops, after this.
    }
}
