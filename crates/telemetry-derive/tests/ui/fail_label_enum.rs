use telemetry_derive::Label;

#[derive(Label)]
enum WithData {
    Plain,
    Tuple(u32),
    Named { path: String },
}

#[derive(Label)]
enum Alone {
    Only,
}

#[derive(Label)]
enum Clash {
    DryRun,
    #[telemetry(label = "dry_run")]
    Other,
    #[telemetry(label = "Has Space")]
    Spaced,
    #[telemetry(name = "x")]
    Unknown,
}

#[derive(Label)]
struct NotAnEnum {
    field: u32,
}

fn main() {}
