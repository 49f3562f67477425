//! The command line's words for what the library validates: its typed errors name fields
//! (`max_runs`), the user typed flags (`--max-runs`).

use crate::error::UsageError;
use crate::measure::protocol::Setting;
use crate::measure::ProtocolSettings;
use crate::objective::{Goal, Limit};

/// The flag that sets a protocol setting.
pub fn protocol_flag(s: Setting) -> &'static str {
    match s {
        Setting::Inferences => "--inferences",
        Setting::MinRuns => "--min-runs",
        Setting::MaxRuns => "--max-runs",
        Setting::MinWindowS => "--min-window-s",
        Setting::CvTarget => "--cv-target",
    }
}

/// The flag that sets a limit.
pub fn limit_flag(l: Limit) -> &'static str {
    match l {
        Limit::MaxLatencyMs => "--max-latency-ms",
        Limit::MinThroughput => "--min-throughput",
        Limit::MaxSlowdown => "--max-slowdown",
        Limit::MaxPowerW => "--max-power-w",
    }
}

/// Checks protocol settings, saying which flag to change.
pub fn check_protocol(p: &ProtocolSettings) -> Result<(), UsageError> {
    p.validate()
        .map_err(|e| UsageError(e.render(&protocol_flag)))
}

/// Checks an objective's limits, saying which flag to change.
pub fn check_goal(g: &Goal) -> Result<(), UsageError> {
    g.validate().map_err(|e| UsageError(e.render(&limit_flag)))
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
    }
}
