//! `hello`: the hello-world baseline of `cargo xtask bench-cli`. Built with the same profile
//! as `telemetry`, so the ratio of their wall times shows what the telemetry CLI costs over
//! the bare start-up of a Rust process.

fn main() {
    println!("hello, world");
}
