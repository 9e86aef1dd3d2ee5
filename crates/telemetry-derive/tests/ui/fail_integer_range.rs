use telemetry_derive::Event;

/// Integers and their ranges.
#[derive(Event)]
#[telemetry(epsilon = 1.0)]
struct Counts {
    /// No range.
    files: u32,
    /// Too wide for its type.
    #[telemetry(range = 0..=1000)]
    small: u8,
    /// Empty.
    #[telemetry(range = 5..=5)]
    empty: i32,
    /// Half open.
    #[telemetry(range = 0..10)]
    half: u16,
    /// Beyond the catalogue's bound.
    #[telemetry(range = 0..=10_000_000_000_000)]
    huge: u64,
    /// A range on a bool.
    #[telemetry(range = 0..=1)]
    flag: bool,
}

fn main() {}
