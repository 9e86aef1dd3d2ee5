use telemetry_derive::Event;

/// Types an event field cannot have.
#[derive(Event)]
#[telemetry(epsilon = 1.0)]
struct Unsupported {
    /// A float.
    ratio: f64,
    /// A collection.
    items: Vec<u32>,
    /// A path.
    cwd: std::path::PathBuf,
    /// A wide integer.
    #[telemetry(range = 0..=10)]
    big: u128,
    /// A tuple.
    pair: (bool, bool),
    /// A reference to something other than `str`.
    count: &'static u32,
    /// Twice optional.
    maybe: Option<Option<bool>>,
}

fn main() {}
