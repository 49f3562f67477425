//! The command line's words for what the library validates: its typed errors name fields
//! (`max_runs`), the user typed flags (`--max-runs`).

use super::options::Common;
use crate::error::UsageError;
use crate::measure::protocol::Setting;
use crate::measure::ProtocolSettings;
use crate::objective::{Goal, Limit};
use crate::opt::Opt;

/// The flag that sets a protocol setting.
pub fn protocol_flag(s: Setting) -> &'static str {
    opt_flag(s.opt())
}

/// The flag that sets a limit.
pub fn limit_flag(l: Limit) -> &'static str {
    match l {
        Limit::MaxLatencyMs => "--max-latency-ms",
        Limit::MinThroughput => "--min-throughput",
        Limit::MaxSlowdown => "--max-slowdown",
        Limit::MaxPowerW => "--max-power-w",
        Limit::Rate => "--rate",
    }
}

/// The flag that sets an option lower layers name in their messages.
pub fn opt_flag(o: Opt) -> &'static str {
    match o {
        Opt::AllowClockControl => "--allow-clock-control",
        Opt::Backend => "--backend",
        Opt::Device => "--device",
        Opt::SysfsRoot => "--sysfs-root",
        Opt::StateFile => "--state-file",
        Opt::Catalog => "--catalog",
        Opt::Emc => "--emc",
        Opt::PowerModes => "--power-modes",
        Opt::Nvpmodel => "--nvpmodel",
        Opt::WorkloadCmd => "--workload-cmd",
        Opt::WorkloadTimeout => "--workload-timeout",
        Opt::Inferences => "--inferences",
        Opt::MinRuns => "--min-runs",
        Opt::MaxRuns => "--max-runs",
        Opt::MinWindowS => "--min-window-s",
        Opt::IdleWindowS => "--idle-window-s",
        Opt::CvTarget => "--cv-target",
        Opt::TorchDevice => "--torch-device",
        Opt::Torchscript => "--torchscript",
        Opt::InputShape => "--input-shape",
        Opt::Fix => "--fix",
        Opt::BatchSizes => "--batch-sizes",
        Opt::Table => "--table",
        Opt::Resume => "--resume",
        Opt::Out => "--out",
        Opt::Storage => "--storage",
        Opt::Study => "--study",
        Opt::NoRace => "--no-race",
        Opt::ScreenInferences => "--screen-inferences",
        Opt::Prior => "--prior",
        Opt::Batch => "--batch",
        Opt::Board => "--board",
        Opt::Root => "--root",
    }
}

/// Makes every message name options by their flags: the command line's first step.
pub fn name_options_by_flags() {
    crate::opt::name_with(opt_flag);
}

/// Checks protocol settings, saying which flag to change.
pub fn check_protocol(p: &ProtocolSettings) -> Result<(), UsageError> {
    p.validate()
        .map_err(|e| UsageError(e.render(&protocol_flag)))
}

/// Longest `--workload-timeout`: a week (a run that takes longer is not a run).
pub const MAX_WORKLOAD_TIMEOUT_S: f64 = 7.0 * 24.0 * 3600.0;

/// Checks the options every measuring command shares: the protocol, the workload's time limit
/// and the power polling interval.
pub fn check_common(c: &Common) -> Result<(), UsageError> {
    check_protocol(&c.protocol)?;
    let t = c.workload_timeout_s;
    if !(t > 0.0 && t <= MAX_WORKLOAD_TIMEOUT_S) {
        return Err(UsageError(format!(
            "--workload-timeout must be a positive number of seconds (at most {MAX_WORKLOAD_TIMEOUT_S}), got {t}"
        )));
    }
    if c.board.poll_ms == 0 {
        return Err(UsageError("--poll-ms must be at least 1".into()));
    }
    if !(0.0..=1.0).contains(&c.twin_sleep) {
        return Err(UsageError(format!(
            "--twin-sleep must lie in [0, 1] (wall seconds per simulated second), got {}",
            c.twin_sleep
        )));
    }
    Ok(())
}

/// Checks a measurement budget given on the command line.
pub fn check_budget(budget: Option<usize>) -> Result<(), UsageError> {
    match budget {
        Some(0) => Err(UsageError("--budget must be at least 1".into())),
        _ => Ok(()),
    }
}

/// Checks an objective's limits, saying which flag to change.
pub fn check_goal(g: &Goal) -> Result<(), UsageError> {
    g.validate()
        .map_err(|e| UsageError(e.render(&limit_flag)))?;
    if g.rate_hz.is_some() && (g.objective != crate::objective::Objective::Energy || g.pareto) {
        return Err(UsageError(
            "--rate minimises the energy of inferences arriving at that rate: leave out --objective edp/time and --pareto (the rate fixes the time)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_name_the_flags() {
        let p = ProtocolSettings {
            max_runs: 2,
            ..Default::default()
        };
        let e = check_protocol(&p).unwrap_err().0;
        assert_eq!(e, "--max-runs (2) must be at least --min-runs (3)");
        let p = ProtocolSettings {
            min_window_s: -1.0,
            ..Default::default()
        };
        assert!(check_protocol(&p).unwrap_err().0.contains("--min-window-s"));
        let mut g = Goal::default();
        g.limits.max_slowdown = Some(-1.0);
        let e = check_goal(&g).unwrap_err().0;
        assert_eq!(e, "--max-slowdown must be a positive number, got -1");
        let mut c = Common::new("resnet18");
        for t in [0.0, -1.0, f64::NAN, 1e300] {
            c.workload_timeout_s = t;
            assert!(check_common(&c)
                .unwrap_err()
                .0
                .contains("--workload-timeout"));
        }
        c.workload_timeout_s = 600.0;
        c.protocol.min_window_s = 3e6;
        assert!(check_common(&c).unwrap_err().0.contains("--min-window-s"));
        assert!(check_budget(Some(0)).is_err() && check_budget(None).is_ok());
    }
}
