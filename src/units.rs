//! Unit conversions and the one way clocks are written for people: MHz with one decimal.
//! Files keep sysfs units (kHz for cpufreq, Hz for devfreq and NVML).

/// kHz to MHz.
pub fn khz_to_mhz(khz: u64) -> f64 {
    khz as f64 / 1e3
}

/// Hz to MHz.
pub fn hz_to_mhz(hz: u64) -> f64 {
    hz as f64 / 1e6
}

/// A CPU clock in MHz for people (`825.6`).
pub fn cpu_mhz(khz: u64) -> String {
    format!("{:.1}", khz_to_mhz(khz))
}

/// A GPU or memory clock in MHz for people (`921.6`).
pub fn gpu_mhz(hz: u64) -> String {
    format!("{:.1}", hz_to_mhz(hz))
}

/// An optional reading in MHz, `?` when absent; `khz` when it is in kHz (cpufreq), else Hz.
pub fn opt_mhz(value: Option<u64>, khz: bool) -> String {
    value.map_or("?".into(), |v| if khz { cpu_mhz(v) } else { gpu_mhz(v) })
}

/// A CPU clock in a table cell: MHz, or `not set` for 0 (an NVML GPU's CPU is not a knob).
pub fn cpu_cell(khz: u64) -> String {
    match khz {
        0 => "not set".into(),
        _ => cpu_mhz(khz),
    }
}

/// A GPU clock in a table cell: MHz, or `default` for 0 (an NVML GPU's unlocked clocks).
pub fn gpu_cell(hz: u64) -> String {
    match hz {
        0 => "default".into(),
        _ => gpu_mhz(hz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_in_mhz_with_one_decimal() {
        assert_eq!(cpu_mhz(825_600), "825.6");
        assert_eq!(gpu_mhz(921_600_000), "921.6");
        assert_eq!(opt_mhz(None, true), "?");
        assert_eq!(opt_mhz(Some(1_479_000), true), "1479.0");
        assert_eq!(opt_mhz(Some(76_800_000), false), "76.8");
        assert_eq!(cpu_cell(0), "not set");
        assert_eq!(gpu_cell(0), "default");
        assert_eq!(gpu_cell(614_400_000), "614.4");
    }
}
