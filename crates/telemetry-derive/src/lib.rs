//! # telemetry-derive: events declared as plain structs
//!
//! `#[derive(Event)]` and `#[derive(Label)]` for `telemetry-core`, which re-exports both (feature
//! `derive`, on by default): `use telemetry_core::event::{Event, Label};` brings each trait and its
//! derive, as `serde::Serialize` does. Use them through `telemetry-core`, never this crate directly.
//!
//! **Invariant: the macros generate only safe code that calls `telemetry-core`'s public API, and do
//! no I/O at compile time** (no file, environment, process, clock or network: the output is a
//! function of the tokens alone). A field's kind is decided once, from its Rust type, and the same
//! decision writes both its `FIELDS` entry and its value, in the same order: a declaration that
//! would record a value under another field's name does not exist.
//!
//! (Compiled and run as a doctest of `telemetry_core::event::Event`, where it has the traits.)
//!
//! ```ignore
//! use std::time::Duration;
//! use telemetry_core::event::{Event, Label};
//!
//! /// How a command ended.
//! #[derive(Clone, Copy, Label)]
//! pub enum Outcome { Success, Failure }
//!
//! /// A command ran to completion.
//! #[derive(Event)]
//! #[telemetry(epsilon = 1.0)] // the budget of every randomised field that names none itself
//! pub struct CommandRun {
//!     /// How it ended.
//!     pub outcome: Outcome,
//!     /// How long it took (bucketed).
//!     pub duration: Duration,
//!     /// Files it touched.
//!     #[telemetry(range = 0..=1000, epsilon = 0.5)]
//!     pub files: u32,
//!     /// The compiler's version, if known.
//!     #[telemetry(version)]
//!     pub rustc: Option<String>,
//! }
//!
//! assert_eq!(CommandRun::NAME, "command_run");
//! assert_eq!(Outcome::LABELS, ["success", "failure"]);
//! let spec = telemetry_core::event::spec_of::<CommandRun>().unwrap();
//! assert_eq!(spec.description, "A command ran to completion.");
//! assert_eq!(CommandRun::FIELDS[2].epsilon(), 0.5);
//! ```
//!
//! ## `#[derive(Event)]`
//!
//! On a struct with named fields (generics and lifetimes allowed). The event's name is the type's
//! name in snake_case (`CommandRun` → `command_run`) unless `#[telemetry(name = "...")]` says
//! otherwise; its description is the struct's doc comment, and each field's description is the
//! field's doc comment. **A missing doc comment is a compile error**: the catalogue is what people
//! read before they consent. Doc lines are trimmed and joined with single spaces.
//!
//! | field type | kind | needs |
//! | --- | --- | --- |
//! | `bool` | boolean (randomised response) | ε |
//! | a type implementing `Label` (e.g. `#[derive(Label)]`) | closed enum (k-ary randomised response) | ε |
//! | `std::time::Duration` | duration (log buckets, discrete Laplace) | ε |
//! | `u8`..`u64`, `i8`..`i64`, `usize`, `isize` | bounded integer (clamped, discrete Laplace) | `range = MIN..=MAX`, ε |
//! | `String`, `&str` (anything `AsRef<str>`) with `text, max_len = N` | redacted text, not randomised | `max_len` (1..=200) |
//! | `String`, `&str` (anything `AsRef<str>`) with `version` | version, not randomised | — |
//! | `Option<T>` of any of these | the same, optional (`None` is recorded as missing) | as `T` |
//!
//! The kind is read from the type as written: a type alias of `u32` is taken for a `Label` type
//! (and refused by the compiler unless it is one). Anything else (floats, collections, paths, a
//! `String` with neither `text` nor `version`, a tuple struct, an enum) is a compile error that
//! points at the field and says what to write instead.
//!
//! **ε is never implicit.** Every randomised field (boolean, enum, duration, integer) takes its
//! privacy budget per report from `#[telemetry(epsilon = E)]` on the field, else from the same
//! attribute on the struct; with neither it does not compile. ε must be a literal in `(0, 20]`.
//! Text and version fields are not randomised and take no ε.
//!
//! Field attributes, all inside `#[telemetry(...)]`: `epsilon = E`, `range = MIN..=MAX` (integer
//! literals, `MIN < MAX`, within the field type and ±10^12), `text`, `max_len = N`, `version`,
//! `name = "..."` (the field's catalogue name; default: the Rust name), `skip` (not part of the
//! event). Struct attributes: `name = "..."`, `epsilon = E`, `crate = "path"` (where
//! `telemetry-core` is, when not `::telemetry_core`).
//!
//! The generated `values` hands one value per declared field to the sink, in `FIELDS` order.
//!
//! ## `#[derive(Label)]`
//!
//! On an enum whose variants carry no data (2 to 4096 of them). `LABELS` are the variants' names in
//! snake_case (`DryRun` → `dry_run`) unless a variant says `#[telemetry(label = "...")]`;
//! `index()` is the variant's position in declaration order (explicit discriminants do not
//! matter). Doc comments on variants are welcome but not required: the field that uses the enum
//! describes it. Enum attribute: `crate = "path"`. The derive implements `Label` only; add
//! `Clone, Copy, Debug, PartialEq` yourself as needed (`telemetry_core::labels!` still declares an
//! enum with those and explicit labels in one go).
//!
//! The names, labels, ranges, ε and lengths are checked against the catalogue's rules at compile
//! time as a courtesy; `telemetry_core::event::spec_of` stays the authority at run time.
#![forbid(unsafe_code)]

mod attrs;
mod event;
mod label;
mod rules;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Implements `telemetry_core::event::Event` for a struct with named fields: the catalogue entry
/// (`NAME`, `DESCRIPTION`, `FIELDS`) from its name, doc comments and field types, and `values` in
/// the same order. See the crate docs for the attributes.
#[proc_macro_derive(Event, attributes(telemetry))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `telemetry_core::event::Label` for a fieldless enum: `LABELS` from the variant names
/// in snake_case (or `#[telemetry(label = "...")]`), `index()` by declaration order.
#[proc_macro_derive(Label, attributes(telemetry))]
pub fn derive_label(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    label::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
