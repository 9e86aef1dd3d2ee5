use telemetry_derive::Event;

/// Strings are never recorded without saying how.
#[derive(Event)]
struct Texts {
    /// An owned string.
    name: String,
    /// A borrowed one.
    label: &'static str,
    /// An optional one.
    hint: Option<String>,
    /// Text without a length.
    #[telemetry(text)]
    note: String,
    /// Text with a budget it does not spend.
    #[telemetry(text, max_len = 50, epsilon = 1.0)]
    other: String,
    /// Too long.
    #[telemetry(text, max_len = 500)]
    long: String,
    /// Both.
    #[telemetry(text, version, max_len = 10)]
    both: String,
}

fn main() {}
