use telemetry_derive::Event;

#[derive(Event)]
struct Undocumented {
    /// Documented.
    #[telemetry(epsilon = 1.0)]
    documented: bool,
    #[telemetry(epsilon = 1.0)]
    undocumented: bool,
}

fn main() {}
