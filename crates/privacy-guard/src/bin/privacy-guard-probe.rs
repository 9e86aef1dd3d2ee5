//! A test program for the guard's own tests: it makes one kind of network call and prints the outcome.
//!
//! Before any call to a non-loopback address it proves the guard is active in this process (the library
//! is mapped and refuses a connect to `0.0.0.0:1`, which never leaves the machine anyway); if not, it
//! exits with status 3 without touching the network. So a broken guard cannot make its own negative test
//! send a packet off the machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::{Command, ExitCode};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

fn outcome<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(err) => match err.raw_os_error() {
            Some(code) => format!("err {code}"),
            None => format!("err {err}"),
        },
    }
}

/// `true` when the guard library is mapped into this process and refuses a harmless non-loopback connect.
fn guard_active() -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    if !maps.contains("libprivacy_guard_preload") {
        return false;
    }
    let probe: SocketAddr = "0.0.0.0:1".parse().expect("address");
    matches!(TcpStream::connect_timeout(&probe, TIMEOUT), Err(e) if e.raw_os_error() == Some(13))
}

fn require_guard() -> Result<(), ExitCode> {
    if guard_active() {
        Ok(())
    } else {
        println!("guard-not-active");
        Err(ExitCode::from(3))
    }
}

fn addr(arg: Option<&String>) -> SocketAddr {
    arg.expect("address argument")
        .parse()
        .expect("socket address")
}

fn run(args: &[String]) -> Result<String, ExitCode> {
    let what = args.first().map(String::as_str).unwrap_or("");
    Ok(match what {
        "guard-active" => guard_active().to_string(),
        "connect-tcp" => {
            require_guard()?;
            outcome(TcpStream::connect_timeout(&addr(args.get(1)), TIMEOUT))
        }
        "send-udp" => {
            require_guard()?;
            let socket = UdpSocket::bind("0.0.0.0:0").expect("bind udp");
            outcome(socket.send_to(b"x", addr(args.get(1))))
        }
        "resolve" => {
            require_guard()?;
            let name = args.get(1).expect("host:port argument");
            outcome(name.to_socket_addrs())
        }
        // Connect to 0.0.0.0:<port>: a non-loopback address for the guard, the local host for the
        // kernel. Lets tests exercise the observe mode without any traffic leaving the machine.
        "connect-any" => {
            let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let target: SocketAddr = format!("0.0.0.0:{port}").parse().expect("address");
            outcome(TcpStream::connect_timeout(&target, TIMEOUT))
        }
        "loopback" => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
            let target = listener.local_addr().expect("addr");
            let mut client = TcpStream::connect_timeout(&target, TIMEOUT).map_err(|e| {
                println!("tcp {}", outcome::<()>(Err(e)));
                ExitCode::FAILURE
            })?;
            client.write_all(b"ping").expect("write");
            let (mut server, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).expect("read");
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
            let sent = udp.send_to(b"pong", udp.local_addr().expect("addr"));
            let resolved = "localhost:80".to_socket_addrs().map(|a| a.count());
            format!(
                "tcp ok {} udp {} resolve {}",
                String::from_utf8_lossy(&buf),
                outcome(sent),
                outcome(resolved)
            )
        }
        // Runs this program again with the remaining arguments: proves grandchildren are guarded.
        "spawn" => {
            let exe = std::env::current_exe().expect("current_exe");
            let out = Command::new(exe).args(&args[1..]).output().expect("spawn");
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success() {
                println!("{stdout}");
                return Err(ExitCode::from(out.status.code().unwrap_or(1) as u8));
            }
            format!("child: {stdout}")
        }
        _ => {
            eprintln!(
                "usage: privacy-guard-probe guard-active | connect-tcp ADDR | send-udp ADDR | resolve HOST:PORT | connect-any | loopback | spawn ARGS.."
            );
            return Err(ExitCode::from(2));
        }
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
