//! What a wrong declaration is told, as the compiler prints it: `tests/ui/fail_*.rs`, each with
//! its `.stderr`. One test, so trybuild sets up its project once for all the cases.
//!
//! The cases use `telemetry_derive::{Event, Label}` directly (what `telemetry_core::event`
//! re-exports): every derive in them fails, so its output is only the error and never names
//! telemetry-core, which is therefore not built here again. Declarations that compile are tested
//! through core: `crates/telemetry-core/tests/derive.rs` and core's doctests (including the
//! compile-fail one for a field type that is not a `Label`, which is rustc's own error).
//!
//! After changing a message: `TRYBUILD=overwrite cargo test -p telemetry-derive --test ui`, then
//! read every changed `.stderr` before committing it.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/fail_*.rs");
}
