//! INA3221 power rails: the iio driver `ina3221x` of JetPack 4 (`rail_name_N`,
//! `in_power{N}_input` in mW) and the hwmon driver `ina3221` of JetPack 5 and later
//! (`in{N}_label`, `in{N}_input` mV x `curr{N}_input` mA, no power file).

use super::error::JetsonError;
use super::sysfs::{subdirs, Sysfs};
use crate::measure::power::PowerSource;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which driver exposes the sensors; it also tells the JetPack generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorDriver {
    /// NVIDIA's iio driver, JetPack 4 (L4T r32).
    Iio,
    /// The upstream hwmon driver, JetPack 5 and later.
    Hwmon,
}

impl SensorDriver {
    /// The JetPack generation this driver belongs to.
    pub fn jetpack(self) -> &'static str {
        match self {
            SensorDriver::Iio => "JetPack 4 (L4T r32, iio ina3221x)",
            SensorDriver::Hwmon => "JetPack 5 or later (hwmon ina3221)",
        }
    }
}

/// Where a rail's power comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RailFiles {
    /// A power file in mW (iio `in_power{N}_input`).
    Power {
        /// The file.
        power: PathBuf,
    },
    /// Bus voltage in mV and current in mA (hwmon `in{N}_input`, `curr{N}_input`).
    VoltCurr {
        /// Voltage file.
        voltage: PathBuf,
        /// Current file.
        current: PathBuf,
    },
}

/// One INA3221 channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rail {
    /// Label (`POM_5V_IN`, `VDD_IN`, ...).
    pub name: String,
    /// Files to read.
    pub files: RailFiles,
}

impl Rail {
    /// Power now, mW.
    pub fn read_mw(&self, fs: &Sysfs) -> Result<f64, JetsonError> {
        match &self.files {
            RailFiles::Power { power } => Ok(fs.read_u64(power)? as f64),
            RailFiles::VoltCurr { voltage, current } => {
                Ok(fs.read_u64(voltage)? as f64 * fs.read_u64(current)? as f64 / 1000.0)
            }
        }
    }
}

/// The board's power sensors.
#[derive(Debug, Clone, Serialize)]
pub struct Rails {
    /// Driver found.
    pub driver: SensorDriver,
    /// Sensor directories (`iio:device0`, `hwmon1`, ...).
    pub dirs: Vec<PathBuf>,
    /// Rails in discovery order.
    pub rails: Vec<Rail>,
    /// Index of the rail that measures the whole module (`POM_5V_IN`, `VDD_IN`); `None` means
    /// the total is the sum of the rails.
    pub total: Option<usize>,
}

/// Rail names that measure the module's input, so are the board total.
pub const TOTAL_RAILS: [&str; 2] = ["POM_5V_IN", "VDD_IN"];

/// Finds the INA3221 rails under the root: hwmon first (JetPack 5+), then iio (JetPack 4).
pub fn discover(fs: &Sysfs) -> Result<Rails, JetsonError> {
    let mut found = discover_hwmon(fs)?;
    if found.rails.is_empty() {
        found = discover_iio(fs)?;
    }
    if found.rails.is_empty() {
        return Err(JetsonError::NotFound(format!(
            "no INA3221 power sensor: looked for {} (JetPack 5+) and {} (JetPack 4)",
            fs.path("/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label")
                .display(),
            fs.path("/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*")
                .display()
        )));
    }
    // Never add rails up when one of them already is the total: the others are inside it.
    found.total = found
        .rails
        .iter()
        .position(|r| TOTAL_RAILS.contains(&r.name.as_str()));
    Ok(found)
}

fn discover_hwmon(fs: &Sysfs) -> Result<Rails, JetsonError> {
    let mut rails = Vec::new();
    let mut dirs = Vec::new();
    for dev in subdirs(&fs.path("/sys/bus/i2c/drivers/ina3221"), |n| {
        n.contains('-')
    }) {
        for hw in subdirs(&dev.join("hwmon"), |n| n.starts_with("hwmon")) {
            let mut any = false;
            // Channels 1-3 are the rails; 4-6 are shunt voltages and 7 their sum.
            for n in 1..=3 {
                let label = hw.join(format!("in{n}_label"));
                if !label.exists() {
                    continue;
                }
                let name = fs.read(&label)?;
                if name.is_empty() || name == "NC" || name.contains("NC ") {
                    continue;
                }
                rails.push(Rail {
                    name,
                    files: RailFiles::VoltCurr {
                        voltage: hw.join(format!("in{n}_input")),
                        current: hw.join(format!("curr{n}_input")),
                    },
                });
                any = true;
            }
            if any {
                dirs.push(hw);
            }
        }
    }
    Ok(Rails {
        driver: SensorDriver::Hwmon,
        dirs,
        rails,
        total: None,
    })
}

fn discover_iio(fs: &Sysfs) -> Result<Rails, JetsonError> {
    let mut rails = Vec::new();
    let mut dirs = Vec::new();
    for dev in subdirs(&fs.path("/sys/bus/i2c/drivers/ina3221x"), |n| {
        n.contains('-')
    }) {
        for iio in subdirs(&dev, |n| n.starts_with("iio:device")) {
            let mut any = false;
            for n in 0..=2 {
                let label = iio.join(format!("rail_name_{n}"));
                if !label.exists() {
                    continue;
                }
                rails.push(Rail {
                    name: fs.read(&label)?,
                    files: RailFiles::Power {
                        power: iio.join(format!("in_power{n}_input")),
                    },
                });
                any = true;
            }
            if any {
                dirs.push(iio);
            }
        }
    }
    Ok(Rails {
        driver: SensorDriver::Iio,
        dirs,
        rails,
        total: None,
    })
}

impl Rails {
    /// Name of the total: the total rail's, or a description of the sum.
    pub fn total_name(&self) -> String {
        match self.total {
            Some(i) => self.rails[i].name.clone(),
            None => format!(
                "sum of {}",
                self.rails
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        }
    }

    /// Board power now and each rail's, mW.
    pub fn read(&self, fs: &Sysfs) -> Result<(f64, Vec<f64>), JetsonError> {
        let each = self
            .rails
            .iter()
            .map(|r| r.read_mw(fs))
            .collect::<Result<Vec<_>, _>>()?;
        let total = match self.total {
            Some(i) => each[i],
            None => each.iter().sum(),
        };
        Ok((total, each))
    }

    /// A source for the poller thread.
    pub fn source(&self, root: &Path) -> RailSource {
        RailSource {
            fs: Sysfs::new(root),
            rails: self.clone(),
        }
    }
}

/// The rails as a [`PowerSource`] for the poller thread.
pub struct RailSource {
    fs: Sysfs,
    rails: Rails,
}

impl PowerSource for RailSource {
    fn read_power_mw(&mut self) -> Result<f64, String> {
        self.read_rails_mw().map(|(t, _)| t)
    }
    fn read_rails_mw(&mut self) -> Result<(f64, Vec<f64>), String> {
        self.rails.read(&self.fs).map_err(|e| e.to_string())
    }
}
