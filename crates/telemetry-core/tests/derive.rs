//! `#[derive(Event)]` and `#[derive(Label)]` produce exactly what a careful hand-written impl does:
//! the same catalogue entry, and the same values in the same order. The events are acme's
//! (`crates/telemetry-cli/examples/acme.rs`), declared both ways.

use std::time::Duration;

use telemetry_core::event::{Event, FieldDecl, Label, Value, spec_of};

/// Every value `E::values` hands out, in order, owned.
fn values_of<E: Event>(event: &E) -> Vec<String> {
    let mut out = Vec::new();
    event.values(&mut |v| out.push(format!("{v:?}")));
    out
}

mod derived {
    use super::*;

    /// Which acme command ran.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Label)]
    pub enum CommandName {
        /// `acme work`.
        Work,
        /// `acme telemetry ...`.
        Telemetry,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Label)]
    pub enum Outcome {
        Success,
        Failure,
    }

    /// An acme command ran.
    #[derive(Event)]
    #[telemetry(epsilon = 1.0)]
    pub struct CommandRun {
        /// Which command.
        pub command: CommandName,
        /// How it ended.
        pub outcome: Outcome,
        /// How long it took (bucketed).
        pub duration: Duration,
        /// The --note text, redacted.
        #[telemetry(text, max_len = 120)]
        pub note: Option<String>,
    }

    /// Whether the optional feature (--flag) was used.
    #[derive(Event)]
    pub struct FeatureUsed {
        /// --flag given.
        #[telemetry(epsilon = 1.0)]
        pub flag: bool,
    }
}

mod hand_written {
    use super::*;

    telemetry_core::labels! {
        /// Which acme command ran.
        pub enum CommandName { Work = "work", Telemetry = "telemetry" }
    }

    telemetry_core::labels! {
        /// How it ended.
        pub enum Outcome { Success = "success", Failure = "failure" }
    }

    pub struct CommandRun {
        pub command: CommandName,
        pub outcome: Outcome,
        pub duration: Duration,
        pub note: Option<String>,
    }

    impl Event for CommandRun {
        const NAME: &'static str = "command_run";
        const DESCRIPTION: &'static str = "An acme command ran.";
        const FIELDS: &'static [FieldDecl] = &[
            FieldDecl::enumeration("command", "Which command.", CommandName::LABELS, 1.0),
            FieldDecl::enumeration("outcome", "How it ended.", Outcome::LABELS, 1.0),
            FieldDecl::duration("duration", "How long it took (bucketed).", 1.0),
            FieldDecl::text("note", "The --note text, redacted.", 120),
        ];
        fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
            out(Value::Enum(self.command.index()));
            out(Value::Enum(self.outcome.index()));
            out(Value::Duration(self.duration));
            out(self.note.as_deref().map_or(Value::Missing, Value::Text));
        }
    }

    pub struct FeatureUsed {
        pub flag: bool,
    }

    impl Event for FeatureUsed {
        const NAME: &'static str = "feature_used";
        const DESCRIPTION: &'static str = "Whether the optional feature (--flag) was used.";
        const FIELDS: &'static [FieldDecl] = &[FieldDecl::boolean("flag", "--flag given.", 1.0)];
        fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
            out(Value::Bool(self.flag));
        }
    }
}

#[test]
fn derived_catalogue_entries_equal_the_hand_written_ones() {
    assert_eq!(
        derived::CommandName::LABELS,
        hand_written::CommandName::LABELS
    );
    assert_eq!(derived::Outcome::LABELS, hand_written::Outcome::LABELS);
    assert_eq!(
        derived::CommandRun::FIELDS,
        hand_written::CommandRun::FIELDS
    );
    assert_eq!(
        spec_of::<derived::CommandRun>().unwrap(),
        spec_of::<hand_written::CommandRun>().unwrap()
    );
    assert_eq!(
        spec_of::<derived::FeatureUsed>().unwrap(),
        spec_of::<hand_written::FeatureUsed>().unwrap()
    );
    // The published JSON too, byte for byte.
    assert_eq!(
        serde_json::to_string(&spec_of::<derived::CommandRun>().unwrap()).unwrap(),
        serde_json::to_string(&spec_of::<hand_written::CommandRun>().unwrap()).unwrap()
    );
}

#[test]
fn derived_values_equal_the_hand_written_ones() {
    use derived as d;
    use hand_written as h;
    for (dc, hc) in [
        (d::CommandName::Work, h::CommandName::Work),
        (d::CommandName::Telemetry, h::CommandName::Telemetry),
    ] {
        for (doc, hoc) in [
            (d::Outcome::Success, h::Outcome::Success),
            (d::Outcome::Failure, h::Outcome::Failure),
        ] {
            for note in [None, Some("see /home/alice".to_owned())] {
                let duration = Duration::from_millis(1234);
                let derived = d::CommandRun {
                    command: dc,
                    outcome: doc,
                    duration,
                    note: note.clone(),
                };
                let hand = h::CommandRun {
                    command: hc,
                    outcome: hoc,
                    duration,
                    note,
                };
                assert_eq!(values_of(&derived), values_of(&hand));
            }
        }
    }
    for flag in [false, true] {
        assert_eq!(
            values_of(&d::FeatureUsed { flag }),
            values_of(&h::FeatureUsed { flag })
        );
    }
    assert_eq!(
        values_of(&d::CommandRun {
            command: d::CommandName::Telemetry,
            outcome: d::Outcome::Failure,
            duration: Duration::from_secs(2),
            note: None,
        }),
        ["Enum(1)", "Enum(1)", "Duration(2s)", "Missing"]
    );
}

// Generics and lifetimes, `&str` versions, every integer type, optional fields of every kind,
// skipped fields, renames, a struct-level ε overridden per field; the doc comment (the
// description) comes after the attributes and spans two lines.
#[derive(Event)]
#[telemetry(name = "everything_once", epsilon = 2.0)]
/// Every kind
/// of field, once.
struct Everything<'a, T> {
    /// The SDK's version.
    #[telemetry(version)]
    sdk_version: &'a str,
    /// The app's version, if known.
    #[telemetry(version)]
    app_version: Option<String>,
    /// Whether it was cached.
    cached: Option<bool>,
    /// A u8.
    #[telemetry(range = 0..=200)]
    a: u8,
    /// An i8.
    #[telemetry(range = -100..=100, epsilon = 0.5)]
    b: i8,
    /// A u64 beyond i64 saturates (and is clamped by the recorder).
    #[telemetry(range = 0..=1_000_000_000_000)]
    c: u64,
    /// A usize.
    #[telemetry(range = 0..=10)]
    d: usize,
    /// An isize.
    #[telemetry(range = -10..=10)]
    e: isize,
    /// An optional i64.
    #[telemetry(range = -1_000_000_000_000..=1_000_000_000_000)]
    f: Option<i64>,
    /// An optional label.
    outcome: Option<derived::Outcome>,
    /// How long, maybe.
    wait: Option<std::time::Duration>,
    /// A borrowed, redacted note.
    #[telemetry(text, max_len = 200)]
    note: &'a str,
    #[telemetry(skip)]
    _private: T,
    /// Renamed in the catalogue.
    #[telemetry(name = "r_type")]
    r#type: bool,
}

#[test]
fn every_kind_derives_and_the_schema_accepts_it() {
    let spec = spec_of::<Everything<'static, ()>>().unwrap();
    assert_eq!(spec.name.as_str(), "everything_once");
    assert_eq!(spec.description, "Every kind of field, once.");
    let names: Vec<&str> = spec.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sdk_version",
            "app_version",
            "cached",
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "outcome",
            "wait",
            "note",
            "r_type"
        ]
    );
    let eps: Vec<f64> = Everything::<'static, ()>::FIELDS
        .iter()
        .map(FieldDecl::epsilon)
        .collect();
    assert_eq!(
        eps,
        [
            0.0, 0.0, 2.0, 2.0, 0.5, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 0.0, 2.0
        ]
    );
    assert_eq!(
        Everything::<'static, ()>::FIELDS[4],
        FieldDecl::integer("b", "An i8.", -100, 100, 0.5)
    );

    let event = Everything {
        sdk_version: "0.5.0",
        app_version: None,
        cached: Some(true),
        a: 7,
        b: -3,
        c: u64::MAX,
        d: 4,
        e: -2,
        f: None,
        outcome: Some(derived::Outcome::Failure),
        wait: None,
        note: "hi",
        _private: "not recorded",
        r#type: false,
    };
    let mut seen = Vec::new();
    event.values(&mut |v| seen.push(format!("{v:?}")));
    assert_eq!(
        seen,
        [
            r#"Version("0.5.0")"#,
            "Missing",
            "Bool(true)",
            "Integer(7)",
            "Integer(-3)",
            &format!("Integer({})", i64::MAX),
            "Integer(4)",
            "Integer(-2)",
            "Missing",
            "Enum(1)",
            "Missing",
            r#"Text("hi")"#,
            "Bool(false)",
        ]
    );
}

// The limits the derive checks at compile time are the schema's: their extremes pass `spec_of`.
#[derive(Event)]
#[telemetry(name = "abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcdefghi")]
/// Extremes.
struct Extremes {
    /// Largest ε.
    #[telemetry(epsilon = 20)]
    most: bool,
    /// A small ε, and the widest range.
    #[telemetry(epsilon = 0.01, range = -1_000_000_000_000..=1_000_000_000_000)]
    wide: i64,
    /// Longest text.
    #[telemetry(text, max_len = 200)]
    text: String,
    /// Labels with every character a label may have.
    #[telemetry(epsilon = 1.0)]
    odd: OddLabels,
}

#[derive(Label)]
enum OddLabels {
    #[telemetry(label = "gpt-4.1")]
    Gpt41,
    #[telemetry(label = "0")]
    Zero,
    HTTPServer,
}

#[test]
fn the_compile_time_limits_are_the_schemas() {
    assert_eq!(telemetry_schema::dp::MAX_EPSILON, 20.0);
    assert_eq!(telemetry_schema::dp::ClampRange::BOUND, 1_000_000_000_000);
    let spec = spec_of::<Extremes>().unwrap();
    assert_eq!(spec.name.as_str().len(), 64);
    assert_eq!(OddLabels::LABELS, ["gpt-4.1", "0", "http_server"]);
    assert_eq!(OddLabels::Gpt41.index(), 0);
    assert_eq!(OddLabels::HTTPServer.index(), 2);
    let _ = Extremes {
        most: true,
        wide: 0,
        text: String::new(),
        odd: OddLabels::Zero,
    };
}

/// The root re-exports work as paths, and `crate = "..."` points the generated code elsewhere.
mod paths {
    mod sdk {
        pub use telemetry_core as core_again;
    }

    /// A flag.
    #[derive(telemetry_core::Event)]
    #[telemetry(crate = "sdk::core_again")]
    pub struct Flagged {
        /// Set?
        #[telemetry(epsilon = 1.0)]
        pub on: bool,
        /// Which.
        #[telemetry(epsilon = 1.0)]
        pub which: Which,
    }

    #[derive(telemetry_core::Label)]
    #[telemetry(crate = "sdk::core_again")]
    pub enum Which {
        One,
        Two,
    }

    #[test]
    fn derives_by_path_and_with_another_crate_path() {
        use telemetry_core::Event as _;
        assert_eq!(Flagged::NAME, "flagged");
        let _ = Flagged {
            on: true,
            which: Which::Two,
        };
        assert!(matches!(Which::One, Which::One));
    }
}
