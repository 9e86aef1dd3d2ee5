use telemetry_derive::Event;

/// Budgets.
#[derive(Event)]
struct Budgets {
    /// None given, and the struct gives no default.
    missing: bool,
    /// Negative.
    #[telemetry(epsilon = -1.0)]
    negative: bool,
    /// Zero.
    #[telemetry(epsilon = 0.0)]
    zero: bool,
    /// Beyond the catalogue's maximum.
    #[telemetry(epsilon = 25)]
    huge: bool,
    /// Not a number.
    #[telemetry(epsilon = "1.0")]
    text: bool,
}

fn main() {}
