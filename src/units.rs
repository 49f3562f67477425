//! Unit conversions and the one way clocks are written for people: MHz with as many decimals as
//! the clock has (at least one, at most three), so what is printed can be typed back to `--fix`.
//! Files keep sysfs units (kHz for cpufreq, Hz for devfreq and NVML).

/// kHz to MHz.
pub fn khz_to_mhz(khz: u64) -> f64 {
    khz as f64 / 1e3
}

/// Hz to MHz.
pub fn hz_to_mhz(hz: u64) -> f64 {
    hz as f64 / 1e6
}

/// MHz with one to three decimals: exact for any clock that is a whole number of kHz.
fn exact_mhz(mhz: f64) -> String {
    let s = format!("{mhz:.3}");
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_string()
    }
}

/// A CPU clock in MHz for people (`825.6`).
pub fn cpu_mhz(khz: u64) -> String {
    exact_mhz(khz_to_mhz(khz))
}

/// A GPU or memory clock in MHz for people (`921.6`, `1109.25`).
pub fn gpu_mhz(hz: u64) -> String {
    exact_mhz(hz_to_mhz(hz))
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

/// `3200 inferences`, `1 inference`.
pub fn inferences(n: u32) -> String {
    format!("{n} inference{}", if n == 1 { "" } else { "s" })
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

    #[test]
    fn clocks_print_as_they_can_be_typed_back() {
        assert_eq!(gpu_mhz(1_109_250_000), "1109.25");
        assert_eq!(gpu_mhz(1_300_500_000), "1300.5");
        assert_eq!(cpu_mhz(1_132_800), "1132.8");
        // What is printed parses back to the same value.
        let fix = format!("gpu={}MHz", gpu_mhz(1_109_250_000));
        let (k, v) = crate::space::parse_fix(&fix).unwrap();
        assert_eq!((k, v), (crate::space::Knob::GpuFreqHz, 1_109_250_000));
    }
}
