//! `edgetune bench`: strategies x models x boards x seeds on the twin (or replay tables),
//! judged against the ground truth; writes bench.json and bench.md.

use super::load_catalog;
use super::output::{create_dir, fresh_dir, new_out_dir, write_file, write_json};
use crate::bench::{self, BenchOptions};
use crate::error::UsageError;
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs `bench` and writes bench.json and bench.md to `out_dir` (default
/// `reports/bench/<timestamp>/`).
pub fn run(
    catalog_dir: Option<&Path>,
    o: &BenchOptions,
    out_dir: Option<PathBuf>,
    json: bool,
    out: &mut dyn Write,
) -> Result<PathBuf> {
    super::check_protocol(&o.protocol)?;
    super::check_goal(&o.goal)?;
    if o.goal.rate_hz.is_some() {
        // Its ground truth would need the twin's idle power in every regret: not built yet.
        return Err(UsageError(
            "bench does not judge --rate: run `edgetune tune --rate` on the twin to see a rate's recommendation".into(),
        )
        .into());
    }
    super::check_budget(o.budget)?;
    if o.seeds == 0 || o.strategies.is_empty() {
        return Err(UsageError("--seeds and --strategies must not be empty".into()).into());
    }
    if o.budget.is_none() && !(o.budget_fraction > 0.0 && o.budget_fraction <= 1.0) {
        return Err(UsageError("--budget-fraction must lie in (0, 1]".into()).into());
    }
    if let Some(d) = &o.prior_dir {
        return Err(UsageError(format!(
            "bench gives its strategies the catalogue twin as prior (--prior twin, the default) or none (--prior none); {} is a folder, which only tune takes",
            d.display()
        ))
        .into());
    }
    if let Some(n) = o.table_noise {
        if !(0.0..=1.0).contains(&n) || !(0.0..0.5).contains(&o.table_holes) {
            return Err(UsageError(format!(
                "--table-noise must lie in [0, 1] and --table-holes in [0, 0.5), got {n} and {}",
                o.table_holes
            ))
            .into());
        }
        if o.mismatch || !o.tables.is_empty() || !o.goal.is_plain() {
            return Err(UsageError(
                "--table-noise generates tables from the twin (rough with --rough): leave out --mismatch, --table and objectives or limits".into(),
            )
            .into());
        }
    }
    if o.rough && !o.tables.is_empty() {
        return Err(UsageError(
            "--rough makes the twin's boards rough; a --table is a board of its own: leave one of them out"
                .into(),
        )
        .into());
    }
    if o.mismatch && !o.tables.is_empty() {
        return Err(UsageError(
            "--mismatch perturbs the twin; a --table has no twin to perturb: leave one of them out"
                .into(),
        )
        .into());
    }
    let cat = load_catalog(catalog_dir)?;
    let dir = new_out_dir(out_dir.as_deref(), || {
        fresh_dir(Path::new("reports/bench"), "")
    })?;
    let rep = bench::run(&cat, o)?;
    create_dir(&dir)?;
    write_json(&dir, "bench.json", &rep)?;
    let md = crate::report::bench::markdown(&rep);
    write_file(&dir, "bench.md", &md)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{md}")?;
    }
    eprintln!("bench written to {}", dir.display());
    Ok(dir)
}
