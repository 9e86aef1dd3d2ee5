//! Typed events: what an app may record, declared once as Rust types.
//!
//! An event is a struct implementing [`Event`]; its fields are declared in [`Event::FIELDS`]
//! with their kind, domain and privacy budget. The same declarations produce the app's
//! [`Catalog`](telemetry_schema::Catalog) (what `telemetry catalog` publishes) and drive randomisation at
//! [`crate::Telemetry::record`], so what can be recorded and what is published cannot
//! disagree.
//!
//! Usually both traits are derived, `#[derive(Event)]` and `#[derive(Label)]` (feature `derive`,
//! on by default; see the [crate docs](crate#declaring-events)): the kind of each field then
//! comes from its Rust type, and `FIELDS` and `values` cannot disagree. Writing them by hand
//! stays supported, for values computed rather than stored or without the proc-macro
//! (`default-features = false`); it is what the derive generates, and it is then up to you that
//! `values` follows `FIELDS` exactly:
//!
//! ```
//! use std::time::Duration;
//! use telemetry_core::event::{Event, FieldDecl, Label, Value};
//!
//! telemetry_core::labels! {
//!     /// How a command ended.
//!     pub enum Outcome { Success = "success", Failure = "failure" }
//! }
//!
//! /// A command ran.
//! pub struct CommandRun { pub outcome: Outcome, pub duration: Duration }
//!
//! impl Event for CommandRun {
//!     const NAME: &'static str = "command_run";
//!     const DESCRIPTION: &'static str = "A command ran to completion.";
//!     const FIELDS: &'static [FieldDecl] = &[
//!         FieldDecl::enumeration("outcome", "How it ended.", Outcome::LABELS, 1.0),
//!         FieldDecl::duration("duration", "How long it took (bucketed).", 1.0),
//!     ];
//!     fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
//!         out(Value::Enum(self.outcome.index()));
//!         out(Value::Duration(self.duration));
//!     }
//! }
//! assert_eq!(telemetry_core::event::spec_of::<CommandRun>().unwrap().fields.len(), 2);
//! ```

use std::time::Duration;

use telemetry_schema::{CatalogError, EventSpec, FieldSpec};

use crate::dp::mechanism::DurationBuckets;

/// One field of an event: name, meaning, kind with its domain, and ε.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldDecl {
    /// A boolean, sent with randomised response.
    Bool {
        /// Field name (`[a-z][a-z0-9_]*`).
        name: &'static str,
        /// Meaning.
        description: &'static str,
        /// Privacy budget per report.
        epsilon: f64,
    },
    /// A closed enum, sent with k-ary randomised response.
    Enum {
        /// Field name.
        name: &'static str,
        /// Meaning.
        description: &'static str,
        /// The closed domain, in index order.
        labels: &'static [&'static str],
        /// Privacy budget per report.
        epsilon: f64,
    },
    /// An integer clamped to `[min, max]`, sent with discrete Laplace noise.
    Integer {
        /// Field name.
        name: &'static str,
        /// Meaning.
        description: &'static str,
        /// Lower clamp.
        min: i64,
        /// Upper clamp.
        max: i64,
        /// Privacy budget per report.
        epsilon: f64,
    },
    /// A duration, bucketed (log scale), then sent like a bounded integer (the bucket index).
    Duration {
        /// Field name.
        name: &'static str,
        /// Meaning.
        description: &'static str,
        /// Privacy budget per report.
        epsilon: f64,
    },
    /// A version string (not randomised: versions of the app or runtime, never of the user).
    Version {
        /// Field name.
        name: &'static str,
        /// Meaning.
        description: &'static str,
    },
    /// Free text the app explicitly marks as such: redacted, never randomised.
    Text {
        /// Field name.
        name: &'static str,
        /// Meaning.
        description: &'static str,
        /// Longest text kept after redaction.
        max_len: u32,
    },
}

impl FieldDecl {
    /// A boolean field.
    pub const fn boolean(name: &'static str, description: &'static str, epsilon: f64) -> Self {
        Self::Bool {
            name,
            description,
            epsilon,
        }
    }
    /// A closed-enum field.
    pub const fn enumeration(
        name: &'static str,
        description: &'static str,
        labels: &'static [&'static str],
        epsilon: f64,
    ) -> Self {
        Self::Enum {
            name,
            description,
            labels,
            epsilon,
        }
    }
    /// A bounded integer field.
    pub const fn integer(
        name: &'static str,
        description: &'static str,
        min: i64,
        max: i64,
        epsilon: f64,
    ) -> Self {
        Self::Integer {
            name,
            description,
            min,
            max,
            epsilon,
        }
    }
    /// A duration field.
    pub const fn duration(name: &'static str, description: &'static str, epsilon: f64) -> Self {
        Self::Duration {
            name,
            description,
            epsilon,
        }
    }
    /// A version field.
    pub const fn version(name: &'static str, description: &'static str) -> Self {
        Self::Version { name, description }
    }
    /// A redacted text field.
    pub const fn text(name: &'static str, description: &'static str, max_len: u32) -> Self {
        Self::Text {
            name,
            description,
            max_len,
        }
    }

    /// The field's name.
    pub fn name(&self) -> &'static str {
        match *self {
            Self::Bool { name, .. }
            | Self::Enum { name, .. }
            | Self::Integer { name, .. }
            | Self::Duration { name, .. }
            | Self::Version { name, .. }
            | Self::Text { name, .. } => name,
        }
    }

    /// ε charged per report of this field (0 for fields that are not randomised).
    pub fn epsilon(&self) -> f64 {
        match *self {
            Self::Bool { epsilon, .. }
            | Self::Enum { epsilon, .. }
            | Self::Integer { epsilon, .. }
            | Self::Duration { epsilon, .. } => epsilon,
            Self::Version { .. } | Self::Text { .. } => 0.0,
        }
    }

    /// The published description of this field (kind, domain, mechanism parameters).
    pub fn spec(&self) -> Result<FieldSpec, CatalogError> {
        match *self {
            Self::Bool {
                name,
                description,
                epsilon,
            } => FieldSpec::bool(name, description, epsilon),
            Self::Enum {
                name,
                description,
                labels,
                epsilon,
            } => FieldSpec::enumeration(name, description, labels, epsilon),
            Self::Integer {
                name,
                description,
                min,
                max,
                epsilon,
            } => FieldSpec::integer(name, description, min, max, epsilon),
            Self::Duration {
                name,
                description,
                epsilon,
            } => FieldSpec::duration(
                name,
                description,
                DurationBuckets::default_log_scale().upper_bounds_ms(),
                epsilon,
            ),
            Self::Version { name, description } => FieldSpec::version(name, description),
            Self::Text {
                name,
                description,
                max_len,
            } => FieldSpec::text(name, description, max_len),
        }
    }
}

/// A true value, handed to [`crate::Telemetry::record`] and randomised before it is kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// For [`FieldDecl::Bool`].
    Bool(bool),
    /// For [`FieldDecl::Enum`]: the index into its labels.
    Enum(u32),
    /// For [`FieldDecl::Integer`].
    Integer(i64),
    /// For [`FieldDecl::Duration`].
    Duration(Duration),
    /// For [`FieldDecl::Version`].
    Version(&'a str),
    /// For [`FieldDecl::Text`].
    Text(&'a str),
    /// The app did not record this optional field.
    Missing,
}

/// `#[derive(Event)]`: implements [`Event`] from a struct's fields, types and doc comments (feature
/// `derive`, on by default). [`telemetry_derive`] lists every kind and attribute.
///
/// ```
/// use std::time::Duration;
/// use telemetry_core::event::{Event, Label};
///
/// /// How a command ended.
/// #[derive(Clone, Copy, Label)]
/// pub enum Outcome { Success, Failure }
///
/// /// A command ran to completion.
/// #[derive(Event)]
/// #[telemetry(epsilon = 1.0)] // the budget of every randomised field that names none itself
/// pub struct CommandRun {
///     /// How it ended.
///     pub outcome: Outcome,
///     /// How long it took (bucketed).
///     pub duration: Duration,
///     /// Files it touched.
///     #[telemetry(range = 0..=1000, epsilon = 0.5)]
///     pub files: u32,
///     /// The compiler's version, if known.
///     #[telemetry(version)]
///     pub rustc: Option<String>,
/// }
///
/// assert_eq!(CommandRun::NAME, "command_run");
/// assert_eq!(Outcome::LABELS, ["success", "failure"]);
/// let spec = telemetry_core::event::spec_of::<CommandRun>().unwrap();
/// assert_eq!(spec.description, "A command ran to completion.");
/// assert_eq!(CommandRun::FIELDS[2].epsilon(), 0.5);
/// ```
#[cfg(feature = "derive")]
pub use telemetry_derive::Event;
/// `#[derive(Label)]`: implements [`Label`] for a fieldless enum, labels from the variant names in
/// snake_case (feature `derive`, on by default).
#[cfg(feature = "derive")]
pub use telemetry_derive::Label;

/// An event an app may record.
///
/// Derive it (`#[derive(Event)]`, the usual way) or implement it by hand as in the
/// [module docs](self); either way [`Event::values`] must produce one value per entry of
/// [`Event::FIELDS`], in that order.
pub trait Event {
    /// Its name in the catalogue (`[a-z][a-z0-9_]*`).
    const NAME: &'static str;
    /// What it means, for people reading the catalogue before consenting.
    const DESCRIPTION: &'static str;
    /// Its fields, in the order [`Event::values`] produces them.
    const FIELDS: &'static [FieldDecl];
    /// Hands each field's true value to `out`, in [`Event::FIELDS`] order.
    fn values(&self, out: &mut dyn FnMut(Value<'_>));
}

/// A type-erased [`Event::values`]: hands each true value to the sink it is given.
pub type Visit<'a> = &'a dyn Fn(&mut dyn FnMut(Value<'_>));

/// A closed enum usable as an event field: `#[derive(Label)]`, or [`crate::labels!`], or by hand.
///
/// A derived event's field whose type is not a known kind is taken for a `Label`, and the
/// compiler refuses it at that type if it is not one:
///
/// ```compile_fail,E0277
/// struct Config { path: String }
///
/// /// Loaded.
/// #[derive(telemetry_core::Event)]
/// struct Loaded {
///     /// What was loaded.
///     #[telemetry(epsilon = 1.0)]
///     config: Config, // error[E0277]: the trait bound `Config: Label` is not satisfied
/// }
/// ```
pub trait Label {
    /// Every label, in index order.
    const LABELS: &'static [&'static str];
    /// This value's index into [`Label::LABELS`].
    fn index(&self) -> u32;
}

/// Declares a closed enum with wire labels and implements [`event::Label`](Label) for it.
#[macro_export]
macro_rules! labels {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }
        impl $crate::event::Label for $name {
            const LABELS: &'static [&'static str] = &[$($label),+];
            fn index(&self) -> u32 { *self as u32 }
        }
    };
}

/// The catalogue entry of event type `E`.
pub fn spec_of<E: Event>() -> Result<EventSpec, CatalogError> {
    EventInfo::of::<E>().spec()
}

/// A registered event type, type-erased: what the recorder and the catalogue need.
#[derive(Clone, Copy, Debug)]
pub struct EventInfo {
    /// [`Event::NAME`].
    pub name: &'static str,
    /// [`Event::DESCRIPTION`].
    pub description: &'static str,
    /// [`Event::FIELDS`].
    pub fields: &'static [FieldDecl],
}

impl EventInfo {
    /// The info of `E`.
    pub fn of<E: Event>() -> Self {
        Self {
            name: E::NAME,
            description: E::DESCRIPTION,
            fields: E::FIELDS,
        }
    }

    /// Whether `other` declares the same event (name, description and fields).
    pub fn same_declaration(&self, other: &EventInfo) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.fields == other.fields
    }

    /// Its catalogue entry.
    pub fn spec(&self) -> Result<EventSpec, CatalogError> {
        let fields = self
            .fields
            .iter()
            .map(FieldDecl::spec)
            .collect::<Result<Vec<_>, _>>()?;
        EventSpec::new(self.name, self.description, fields)
    }
}

/// The built-in `component_initialized` event, recorded when a handle is built.
#[derive(Clone, Copy, Debug)]
pub struct ComponentInitialized<'a> {
    /// Index of the component (the app's own component list; index 0 is the app itself).
    pub component: u32,
    /// The telemetry SDK's version.
    pub sdk_version: &'a str,
    /// The version of the Rust compiler that built the app, when known.
    pub runtime_version: Option<&'a str>,
}

/// The components of the built-in event.
pub const COMPONENTS: &[&str] = &["app", "cli"];

impl Event for ComponentInitialized<'_> {
    const NAME: &'static str = "component_initialized";
    const DESCRIPTION: &'static str = "A component of the app started.";
    const FIELDS: &'static [FieldDecl] = &[
        FieldDecl::enumeration("component", "Which component started.", COMPONENTS, 1.0),
        FieldDecl::version("sdk_version", "Version of the telemetry SDK."),
        FieldDecl::version(
            "runtime_version",
            "Version of the Rust compiler that built the app (absent when unknown).",
        ),
    ];
    fn values(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Enum(self.component));
        out(Value::Version(self.sdk_version));
        out(self.runtime_version.map_or(Value::Missing, Value::Version));
    }
}
