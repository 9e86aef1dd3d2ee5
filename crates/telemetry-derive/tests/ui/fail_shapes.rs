use telemetry_derive::Event;

/// A tuple struct.
#[derive(Event)]
struct Tuple(bool, u32);

/// A unit struct.
#[derive(Event)]
struct Unit;

/// An enum.
#[derive(Event)]
enum NotAStruct {
    A,
    B,
}

fn main() {}
