use telemetry_derive::Event;

/// Attributes that are wrong.
#[derive(Event)]
#[telemetry(name = "Command-Run", epsilon = 1.0, range = 0..=1)]
struct Attributes {
    /// Unknown key.
    #[telemetry(randomise)]
    unknown: bool,
    /// Given twice.
    #[telemetry(epsilon = 1.0, epsilon = 2.0)]
    twice: bool,
    /// Skipped, yet configured.
    #[telemetry(skip, epsilon = 1.0)]
    skipped: bool,
    /// A crate path on a field.
    #[telemetry(crate = "x")]
    krate: bool,
    /// Not an identifier for the catalogue.
    _private: bool,
}

fn main() {}
