//! The real Jetson backend: CPU clocks through cpufreq, GPU clocks through devfreq, board power
//! from the INA3221 rails, all under a sysfs root (`/` on a board, a fixture tree in tests).
//!
//! Every file this backend may write is snapshotted to a state file before the first write
//! ([`snapshot`]); the snapshot is written back on success, on error, on panic (the device's
//! `Drop`), on SIGINT/SIGTERM/SIGHUP, and by `edgetune restore` after a SIGKILL or power loss.

mod discover;
mod error;
pub mod live;
pub mod nvpmodel;
pub mod owner;
pub mod persist;
pub mod rails;
pub mod rig;
pub mod snapshot;
pub mod sysfs;

use crate::device::BaselineKind;
use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting};
use crate::measure::power::{Poller, DEFAULT_POLL_MS};
use crate::opt::Opt;
use snapshot::{Entry, Snapshot};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sysfs::Sysfs;

pub use discover::*;
pub use error::JetsonError;

/// Where the restore snapshot is kept: `<root>/var/lib/edgetune/restore.json` (so
/// `/var/lib/edgetune/restore.json` on a board) unless overridden.
pub fn default_state_path(root: &Path) -> PathBuf {
    root.join("var/lib/edgetune/restore.json")
}

/// The Jetson device: pins clocks through sysfs and integrates the rails' power.
pub struct JetsonDevice {
    disc: Discovery,
    fs: Sysfs,
    snapshot: Snapshot,
    state_path: PathBuf,
    /// Whether the board may differ from the snapshot (the state file exists).
    dirty: bool,
    poll: Duration,
    poller: Option<Poller>,
    notes: Vec<String>,
    /// Whether the tree is edgetune's virtual Jetson (found once, at open).
    emulated: bool,
    pinned_at_start: bool,
    /// This process's ownership of the board: from open until the board is restored (taken
    /// again should it be written after that).
    owner: Option<owner::BoardLock>,
    /// Times a clock is read again while it has not followed a pin yet (20 ms apart).
    read_back_retries: u32,
    /// The power mode the board is in, where this run switches modes (`--power-modes`).
    mode_now: Option<u32>,
    /// Each thermal zone's lowest and highest reading at the end of a measured run, in C.
    temps_c: Vec<(String, f64, f64)>,
}

impl JetsonDevice {
    /// Takes the board over: refuses when a stale snapshot exists, reads every file it may
    /// write into a snapshot and checks each can be opened for writing (so a user who is not
    /// root is told before anything changes). Nothing is written until the first `apply`.
    pub fn open(
        disc: Discovery,
        state_path: &Path,
        poll_ms: Option<u64>,
    ) -> Result<JetsonDevice, JetsonError> {
        let owner = owner::BoardLock::take(state_path)?;
        snapshot::refuse_stale(state_path)?;
        Self::take_over(disc, state_path, poll_ms, None, owner)
    }

    /// Like [`JetsonDevice::open`], but an existing snapshot is kept as the state to return to
    /// (for `edgetune apply` run twice: the first snapshot holds what the board was before).
    pub fn open_keeping(disc: Discovery, state_path: &Path) -> Result<JetsonDevice, JetsonError> {
        let owner = owner::BoardLock::take(state_path)?;
        let old = match state_path.exists() {
            true => Some(Snapshot::load(state_path)?),
            false => None,
        };
        Self::take_over(disc, state_path, None, old, owner)
    }

    fn take_over(
        disc: Discovery,
        state_path: &Path,
        poll_ms: Option<u64>,
        old: Option<Snapshot>,
        owner: owner::BoardLock,
    ) -> Result<JetsonDevice, JetsonError> {
        let fs = disc.sysfs();
        let entries = disc.snapshot_entries(&fs)?;
        for e in &entries {
            for p in e.paths() {
                fs.check_writable(p)?;
            }
        }
        let pinned_at_start = entries
            .iter()
            .any(|e| matches!(e, Entry::Range { min, max, .. } if min == max));
        let dirty = old.is_some();
        let mut snapshot = match old {
            Some(mut s) => {
                s.check(&fs)?;
                // Files this run may write that the kept snapshot does not hold (a memory
                // clock now, where the first apply had none) still have their values from
                // before: add them, on disk too, before anything is written.
                let held: Vec<PathBuf> = s
                    .entries
                    .iter()
                    .flat_map(|e| e.paths())
                    .map(Path::to_path_buf)
                    .collect();
                let missing: Vec<Entry> = entries
                    .into_iter()
                    .filter(|e| e.paths().iter().any(|p| !held.iter().any(|h| h == p)))
                    .collect();
                if !missing.is_empty() {
                    s.entries.extend(missing);
                    s.save(state_path)?;
                }
                s
            }
            None => Snapshot::new(&disc, entries),
        };
        // The mode as found goes into the snapshot before anything is written.
        let mode_now = match (&disc.power_modes, snapshot.power_mode) {
            (Some(_), None) => {
                let m = nvpmodel::query()?;
                snapshot.power_mode = Some(m);
                Some(m)
            }
            (_, kept) => kept,
        };
        let emulated = emulated_note(&disc.root);
        Ok(JetsonDevice {
            fs,
            snapshot,
            state_path: state_path.to_path_buf(),
            dirty,
            poll: Duration::from_millis(poll_ms.unwrap_or(DEFAULT_POLL_MS)),
            poller: None,
            emulated: emulated.is_some(),
            notes: emulated.into_iter().collect(),
            pinned_at_start,
            disc,
            owner: Some(owner),
            read_back_retries: 5,
            mode_now,
            temps_c: Vec::new(),
        })
    }

    /// What discovery found.
    pub fn discovery(&self) -> &Discovery {
        &self.disc
    }

    /// The snapshot taken at open.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// Every write made so far (path, value), in order.
    pub fn write_log(&self) -> &[(PathBuf, String)] {
        &self.fs.log
    }

    /// Things the user should know (read-back mismatches, stale sensors), each once.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn note(&mut self, s: String) {
        if !self.notes.contains(&s) {
            self.notes.push(s);
        }
    }

    /// Writes the snapshot to the state file before the first write to the board.
    fn arm(&mut self) -> Result<(), JetsonError> {
        if self.owner.is_none() {
            self.owner = Some(owner::BoardLock::take(&self.state_path)?);
        }
        if !self.dirty {
            self.snapshot.save(&self.state_path)?;
            snapshot::register_emergency(&self.disc.root, &self.state_path);
            self.dirty = true;
        }
        Ok(())
    }

    /// Checks a pinned setting against the board's own lists, before any write.
    fn check(
        &self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        emc_freq_hz: Option<u64>,
    ) -> Result<(), JetsonError> {
        if let Some(f) = emc_freq_hz {
            match &self.disc.emc {
                None => {
                    return Err(JetsonError::Unsupported(format!(
                        "a memory clock ({f} Hz) was asked for, but memory-clock control is off; pass {}",
                        Opt::Emc
                    )))
                }
                Some(e) if !(e.min_hz..=e.max_hz).contains(&f) => {
                    return Err(JetsonError::Unsupported(format!(
                        "memory clock {f} Hz is outside the board's limits {}-{} Hz",
                        e.min_hz, e.max_hz
                    )))
                }
                Some(_) => {}
            }
        }
        for p in &self.disc.cpu {
            if !p.available_khz.contains(&cpu_freq_khz) {
                return Err(JetsonError::Unsupported(format!(
                    "CPU frequency {cpu_freq_khz} kHz is not in {} ({})",
                    p.file("scaling_available_frequencies").display(),
                    join(&p.available_khz)
                )));
            }
        }
        if !self.disc.gpu.available_hz.contains(&gpu_freq_hz) {
            return Err(JetsonError::Unsupported(format!(
                "GPU frequency {gpu_freq_hz} Hz is not in {} ({})",
                self.disc.gpu.dir.join("available_frequencies").display(),
                join(&self.disc.gpu.available_hz)
            )));
        }
        Ok(())
    }

    /// Pins the clocks, with the board-write guard held for every write of it.
    fn pin(
        &mut self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        emc_freq_hz: Option<u64>,
    ) -> Result<(), JetsonError> {
        self.check(cpu_freq_khz, gpu_freq_hz, emc_freq_hz)?;
        let closed = snapshot::writes();
        if closed.contains(&self.state_path) {
            return Err(JetsonError::Closed);
        }
        self.pin_locked(cpu_freq_khz, gpu_freq_hz, emc_freq_hz)
    }

    fn pin_locked(
        &mut self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        emc_freq_hz: Option<u64>,
    ) -> Result<(), JetsonError> {
        self.arm()?;
        for p in self.disc.cpu.clone() {
            let (lo, hi) = (p.file("scaling_min_freq"), p.file("scaling_max_freq"));
            if p.has_userspace() {
                if self.fs.read(&p.file("scaling_governor"))? != "userspace" {
                    self.fs.write(&p.file("scaling_governor"), "userspace")?;
                }
                let (cur_lo, cur_hi) = (self.fs.read_u64(&lo)?, self.fs.read_u64(&hi)?);
                if cpu_freq_khz < cur_lo || cpu_freq_khz > cur_hi {
                    let (a, b) = (cur_lo.min(cpu_freq_khz), cur_hi.max(cpu_freq_khz));
                    self.fs.write_range(&lo, &hi, a, b)?;
                }
                self.fs
                    .write(&p.file("scaling_setspeed"), &cpu_freq_khz.to_string())?;
            } else {
                self.fs.write_range(&lo, &hi, cpu_freq_khz, cpu_freq_khz)?;
            }
            self.read_back(&p.file("scaling_cur_freq"), cpu_freq_khz, "kHz");
        }
        let g = self.disc.gpu.dir.clone();
        self.fs.write_range(
            &g.join("min_freq"),
            &g.join("max_freq"),
            gpu_freq_hz,
            gpu_freq_hz,
        )?;
        self.read_back(&g.join("cur_freq"), gpu_freq_hz, "Hz");
        if let (Some(f), Some(e)) = (emc_freq_hz, self.disc.emc.clone()) {
            let (rate, flag, now) = e.files();
            // jetson_clocks' order: T210 sets the rate, then turns the override on; BPMP
            // locks first, then sets the rate.
            match e.kind {
                EmcKind::Tegra210 => {
                    self.fs.write(&rate, &f.to_string())?;
                    self.fs.write(&flag, "1")?;
                }
                EmcKind::Bpmp => {
                    self.fs.write(&flag, "1")?;
                    self.fs.write(&rate, &f.to_string())?;
                }
            }
            self.read_back(&now, f, "Hz");
        }
        Ok(())
    }

    /// Reads the current frequency back and notes a mismatch (thermal capping, a governor or
    /// nvpmodel fighting the pin).
    fn read_back(&mut self, path: &Path, want: u64, unit: &str) {
        // One note per file: the first mismatch says what to look at.
        let shown = path.display().to_string();
        if self.notes.iter().any(|n| n.starts_with(&shown)) {
            return;
        }
        // A clock can take a moment to follow the write: look again for up to 100 ms.
        let mut got = self.fs.read_u64(path);
        for _ in 0..self.read_back_retries {
            if !matches!(got, Ok(v) if v != want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            got = self.fs.read_u64(path);
        }
        match got {
            Ok(v) if v == want => {}
            Ok(v) => self.note(format!(
                "{shown} read {v} {unit} after pinning {want} {unit}; the clock may be capped (thermal, nvpmodel) or the pin did not take (later mismatches on this file are not repeated)"
            )),
            Err(e) => self.note(format!("{shown}: could not read the clock back: {e}")),
        }
    }

    /// Reads every thermal zone (millidegrees) into the lowest and highest seen; a zone that
    /// cannot be read now is skipped.
    fn read_temperatures(&mut self) {
        for z in &self.disc.thermal {
            let read = self.fs.read(&z.temp).ok();
            let Some(c) = read
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map(|m| m / 1000.0)
            else {
                continue;
            };
            match self.temps_c.iter_mut().find(|(n, _, _)| *n == z.name) {
                Some((_, lo, hi)) => {
                    *lo = lo.min(c);
                    *hi = hi.max(c);
                }
                None => self.temps_c.push((z.name.clone(), c, c)),
            }
        }
    }

    /// The board's temperatures over the measured runs, where it has thermal zones.
    fn temperature_note(&self) -> Option<String> {
        let hottest = self
            .temps_c
            .iter()
            .map(|(_, _, hi)| *hi)
            .fold(f64::NAN, f64::max);
        let zones: Vec<String> = self
            .temps_c
            .iter()
            .map(|(n, lo, hi)| format!("{n} {lo:.1}-{hi:.1} C"))
            .collect();
        (!zones.is_empty()).then(|| {
            format!(
                "board temperature at the end of each measured run (thermal zones): {}{}",
                zones.join(", "),
                if hottest >= 80.0 {
                    "; the board ran hot: throttling lowers clocks under the pins (see the clocks that did not read back)"
                } else {
                    ""
                }
            )
        })
    }

    /// Switches to power mode `m` (one of the board's), after the state file holds the mode
    /// found.
    fn switch_mode(&mut self, m: u32) -> Result<(), JetsonError> {
        let Some(modes) = &self.disc.power_modes else {
            return Err(JetsonError::Unsupported(format!(
                "power mode {m} was asked for, but power modes are not the knob; pass {}",
                Opt::PowerModes
            )));
        };
        if !modes.iter().any(|d| d.id == m) {
            let ids: Vec<String> = modes.iter().map(|d| d.id.to_string()).collect();
            return Err(JetsonError::Unsupported(format!(
                "power mode {m} is not in {} (modes {})",
                nvpmodel::conf_path(&self.disc.root).display(),
                ids.join(", ")
            )));
        }
        let closed = snapshot::writes();
        if closed.contains(&self.state_path) {
            return Err(JetsonError::Closed);
        }
        self.arm()?;
        self.set_mode(m)
    }

    /// `nvpmodel -m m` unless the board is in mode `m` already.
    fn set_mode(&mut self, m: u32) -> Result<(), JetsonError> {
        if self.mode_now != Some(m) {
            // Unknown until it succeeds: a failed switch may have written some caps.
            self.mode_now = None;
            nvpmodel::set(m)?;
            self.mode_now = Some(m);
        }
        Ok(())
    }

    /// Writes the snapshot back, whatever state the board is in (the mode found first, since a
    /// mode switch writes the clock limits itself), and checks every file reads back as it was;
    /// nothing to do when a second signal already put the board back.
    /// With `done`, the state file is deleted too, under the same guard as the writes: a second
    /// signal's restore then either finishes first (this waits) or finds nothing to do, and is
    /// never cut short by this process exiting in between.
    fn put_back(&mut self, done: bool) -> Result<(), JetsonError> {
        let closed = snapshot::writes();
        if !closed.contains(&self.state_path) {
            if let Some(m) = self.snapshot.power_mode {
                self.set_mode(m)?;
            }
            snapshot::restore_and_verify(&mut self.fs, &self.snapshot.entries, &self.state_path)?;
        }
        if done {
            snapshot::remove_state(&self.state_path)?;
        }
        Ok(())
    }
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Device for JetsonDevice {
    fn backend(&self) -> crate::device::BackendKind {
        crate::device::BackendKind::Jetson
    }

    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError> {
        match *setting {
            FreqSetting::Pinned {
                cpu_freq_khz,
                gpu_freq_hz,
                emc_freq_hz,
                cpu_cores,
                power_mode,
            } => {
                if cpu_cores.is_some() {
                    return Err(DeviceError::Unsupported(
                        "the jetson backend does not switch CPU cores on and off".into(),
                    ));
                }
                match power_mode {
                    // A mode's caps, the governors running within them: no clock is pinned.
                    Some(m) => Ok(self.switch_mode(m)?),
                    None => Ok(self.pin(cpu_freq_khz, gpu_freq_hz, emc_freq_hz)?),
                }
            }
            // The governors and limits found at start are the DVFS baseline.
            FreqSetting::Dvfs => {
                if self.dirty {
                    self.put_back(false)?;
                }
                Ok(())
            }
        }
    }

    fn window_begin(&mut self) -> Result<(), DeviceError> {
        if let Some(p) = self.poller.take() {
            p.stop();
        }
        let src = self.disc.rails.source(&self.disc.root);
        self.poller = Some(Poller::start(src, self.poll));
        Ok(())
    }

    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
        let trace = self
            .poller
            .take()
            .ok_or_else(|| DeviceError::Failed("window_end without window_begin".into()))?
            .stop();
        if let Some(e) = trace.error {
            return Err(DeviceError::Failed(format!(
                "the power sensor failed during the run ({e}); the run is discarded"
            )));
        }
        if trace.samples.len() < 2 {
            return Err(DeviceError::Failed(
                "the power sensor gave fewer than two readings in the run".into(),
            ));
        }
        if trace.longest_repeat_s > 1.0 {
            self.note(format!(
                "the power sensor ({}) repeated one value for {:.1} s, longer than its averaging window; readings may be stale",
                self.disc.rails.total_name(),
                trace.longest_repeat_s
            ));
        }
        self.read_temperatures();
        Ok(EnergyWindow {
            energy_j: trace.energy_j,
            time_s: trace.time_s,
            rail_energy_j: self
                .disc
                .rails
                .rails
                .iter()
                .map(|r| r.name.clone())
                .zip(trace.rail_energy_j)
                .collect(),
        })
    }

    fn restore(&mut self) -> Result<(), DeviceError> {
        if let Some(p) = self.poller.take() {
            p.stop();
        }
        if !self.dirty {
            return Ok(());
        }
        self.put_back(true)?;
        self.dirty = false;
        // Back as found: the board is free for another run.
        self.owner = None;
        Ok(())
    }

    fn emulated(&self) -> bool {
        self.emulated
    }

    fn notes(&self) -> Vec<String> {
        let mut n = self.notes.clone();
        n.extend(self.temperature_note());
        n
    }

    fn restore_record(&self) -> Option<String> {
        serde_json::to_string_pretty(&self.snapshot).ok()
    }

    fn baseline_kind(&self) -> BaselineKind {
        if self.pinned_at_start {
            BaselineKind::AsFound
        } else {
            BaselineKind::Dvfs
        }
    }
}

impl Drop for JetsonDevice {
    /// The last line of defence (an early return or a panic): put the board back.
    fn drop(&mut self) {
        if self.dirty {
            if let Err(e) = Device::restore(self) {
                eprintln!(
                    "error: restoring the board failed: {e}; run `sudo edgetune restore` (snapshot at {})",
                    self.state_path.display()
                );
            }
        }
    }
}

#[cfg(test)]
impl JetsonDevice {
    /// No waiting for clocks to follow (a fixture's never do).
    pub(crate) fn without_read_back_wait(mut self) -> JetsonDevice {
        self.read_back_retries = 0;
        self
    }

    /// What a SIGKILL leaves: nothing is restored, the kernel drops the lock (its file stays).
    pub(crate) fn killed(mut self) {
        if let Some(o) = self.owner.take() {
            o.leak_unlocked();
        }
        std::mem::forget(self);
    }
}

/// Leaves a pinned setting in place (for `edgetune apply`): the state file stays, so
/// `edgetune restore` undoes it later.
pub fn apply_and_keep(
    mut dev: JetsonDevice,
    cpu_freq_khz: u64,
    gpu_freq_hz: u64,
    emc_freq_hz: Option<u64>,
) -> Result<Vec<String>, JetsonError> {
    let r = dev.pin(cpu_freq_khz, gpu_freq_hz, emc_freq_hz);
    if r.is_err() {
        return r.map(|_| Vec::new());
    }
    dev.dirty = false;
    Ok(std::mem::take(&mut dev.notes))
}

#[cfg(test)]
mod tests;
