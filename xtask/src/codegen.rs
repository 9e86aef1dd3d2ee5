//! `cargo xtask codegen [--check]`: writes the JSON Schemas generated from telemetry-schema's types.

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("codegen is not implemented yet")
}
