//! `edgetune bench-fleet`: wall time and regret of one study measured by 1, 2, 4... workers on
//! the twin; writes bench-fleet.json and bench-fleet.md.

use super::load_catalog;
use super::output::{create_dir, fresh_dir, new_out_dir, write_file, write_json};
use crate::error::UsageError;
use crate::fleet_bench::{self, FleetBenchOptions, FleetBenchReport};
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs the bench and writes its files to `out_dir` (default reports/bench-fleet/<timestamp>/).
pub fn run(
    catalog_dir: Option<&Path>,
    o: &FleetBenchOptions,
    out_dir: Option<PathBuf>,
    json: bool,
    out: &mut dyn Write,
) -> Result<FleetBenchReport> {
    super::check_protocol(&o.protocol)?;
    if o.workers.is_empty() || o.workers.contains(&0) || o.seeds == 0 || o.budget == 0 {
        return Err(UsageError(
            "--workers (each 1 or more), --seeds and --budget must not be empty or 0".into(),
        )
        .into());
    }
    if !(o.twin_sleep.is_finite() && o.twin_sleep >= 0.0 && o.static_power_pct.is_finite()) {
        return Err(
            UsageError("--twin-sleep must be 0 or more, --static-power-pct finite".into()).into(),
        );
    }
    let cat = load_catalog(catalog_dir)?;
    let dir = new_out_dir(out_dir.as_deref(), || {
        fresh_dir(Path::new("reports/bench-fleet"), "")
    })?;
    let rep = fleet_bench::run(&cat, o, &mut |r| {
        eprintln!(
            "seed {}: {} worker{}: {:.1} s, regret {:.2} %, {:.0} board seconds simulated",
            r.seed,
            r.workers,
            if r.workers == 1 { "" } else { "s" },
            r.wall_s,
            r.regret_pct,
            r.board_s
        )
    })?;
    create_dir(&dir)?;
    write_json(&dir, "bench-fleet.json", &rep)?;
    let md = crate::report::bench::fleet_markdown(&rep);
    write_file(&dir, "bench-fleet.md", &md)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{md}")?;
    }
    eprintln!("bench written to {}", dir.display());
    Ok(rep)
}
