//! `profile.toml` (what `edgetune apply` will take) and the nvpmodel `POWER_MODEL` block for
//! Jetson users who prefer nvpmodel.

use super::source::Source;
use super::Report;
use crate::catalog::Board;
use serde::{Deserialize, Serialize};

/// A recommended profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Board id.
    pub board: String,
    /// Model id.
    pub model: String,
    /// Backend that measured it (`sim` is the digital twin).
    pub backend: crate::device::BackendKind,
    /// The clocks (CPU for every cluster; memory when it was tuned with `--emc`) and batch size.
    #[serde(flatten)]
    pub config: crate::space::Config,
    /// Energy measured for `inferences` inferences.
    pub energy_j: f64,
    /// Inferences the energy is for.
    pub inferences: u32,
    /// Saving against DVFS at the baseline batch size, percent (at `rate_hz` where it is set).
    pub saving_pct: Option<f64>,
    /// The rate it was tuned for, inferences per second (`tune --rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_hz: Option<f64>,
    /// Energy for `inferences` arriving at `rate_hz`: busy, then idle until the last arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_at_rate_j: Option<f64>,
}

/// Which ways of putting a profile on the board exist beside it (its header names no other).
#[derive(Debug, Clone, Copy, Default)]
pub struct Beside {
    /// apply-profile.sh was written.
    pub script: bool,
    /// nvpmodel.conf was written.
    pub nvpmodel: bool,
    /// `edgetune apply` takes it: a catalogue board's clocks.
    pub appliable: bool,
}

/// How the header says to put the recommendation `c` on the board, with the files `beside`.
fn how_to_apply(c: &crate::space::Config, beside: Beside) -> String {
    let mut ways: Vec<String> = Vec::new();
    if let Some(m) = c.power_mode {
        ways.push(format!("`sudo nvpmodel -m {m}`"));
    } else if beside.appliable && c.cpu_freq_khz != 0 && c.gpu_freq_hz != 0 {
        ways.push("`sudo edgetune apply profile.toml` (undo: `sudo edgetune restore`)".into());
    }
    if beside.script {
        ways.push("apply-profile.sh".into());
    }
    if beside.nvpmodel {
        ways.push("the nvpmodel.conf block beside this file".into());
    }
    let batch = match c.batch_size {
        0 => "",
        _ => ", with the batch size in your application",
    };
    match ways.len() {
        0 => format!("set these values yourself{batch} (no board file was written for them)"),
        n => {
            let last = ways.pop().unwrap_or_default();
            let joined = match n {
                1 => last,
                _ => format!("{}, or {last}", ways.join(", ")),
            };
            format!("{joined}{batch}")
        }
    }
}

/// The profile file's text, or `None` when nothing was recommended.
pub fn profile_toml(r: &Report, beside: Beside) -> Option<String> {
    let b = r.best.as_ref()?;
    let p = Profile {
        board: r.device.clone(),
        model: r.model.clone(),
        backend: r.backend,
        config: b.config,
        energy_j: round3(b.energy.energy_j),
        inferences: r.inferences,
        saving_pct: r.saving_pct.map(round3),
        rate_hz: r.at_rate.map(|a| a.rate_hz),
        energy_at_rate_j: r.at_rate.and_then(|a| a.best_energy_j).map(round3),
    };
    let body = toml::to_string(&p).expect("profile serialises");
    let mode = comma_mode(&b.config);
    let how = how_to_apply(&b.config, beside);
    Some(format!(
        "# edgetune profile: {} on {}{mode}{}, {:.1} J per {} ({}).\n# On the board: {how}.\n[profile]\n{body}",
        r.model,
        r.device,
        comma_batch(b.config.batch_size),
        b.energy.energy_j,
        crate::units::inferences(r.inferences),
        r.backend.provenance_on(r.emulated),
    ))
}

/// The recommended values a board cannot be set to (a replay table's values need not be in the
/// board's tables): board files are written only when there are none.
pub fn off_the_board(r: &Report, board: &Board) -> Vec<String> {
    let Some(c) = r.best.as_ref().map(|b| b.config) else {
        return Vec::new();
    };
    let mut off = Vec::new();
    if c.cpu_freq_khz != 0 && !board.cpu.frequencies_khz.contains(&c.cpu_freq_khz) {
        off.push(format!("CPU {} kHz", c.cpu_freq_khz));
    }
    if c.gpu_freq_hz != 0 && !board.gpu.frequencies_hz.contains(&c.gpu_freq_hz) {
        off.push(format!("GPU {} Hz", c.gpu_freq_hz));
    }
    if let Some(f) = c.emc_freq_hz {
        if !board
            .emc
            .as_ref()
            .is_some_and(|e| e.frequencies_hz.contains(&f))
        {
            off.push(format!("memory {f} Hz"));
        }
    }
    if let Some(n) = c.cpu_cores {
        if n == 0 || n as usize > all_cpus(board).len() {
            off.push(format!("{n} CPU cores"));
        }
    }
    off
}

/// Whether the recommendation sets anything on a board (a table may vary the batch size only).
fn sets_the_board(c: &crate::space::Config) -> bool {
    c.pins_a_clock() || c.cpu_cores.is_some()
}

/// An nvpmodel `POWER_MODEL` block pinning the recommended clocks (MIN_FREQ = MAX_FREQ, in
/// nvpmodel's units: kHz for the CPU, Hz for the GPU), with the board's own PARAM names.
pub fn nvpmodel_block(r: &Report, board: &Board, id: u32) -> Option<String> {
    // A power mode is one of the board's own: there is no block to add.
    let b = r
        .best
        .as_ref()
        .filter(|b| sets_the_board(&b.config) && b.config.power_mode.is_none())?;
    // nvpmodel's NAME is one word: anything but letters and digits becomes `_`.
    let word: String = r
        .model
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() => c.to_ascii_uppercase(),
            _ => '_',
        })
        .collect();
    let name = format!("EDGETUNE_{word}");
    let mut s = format!(
        "{}# Paste into /etc/nvpmodel.conf (keep the PARAM sections) and select with `sudo nvpmodel -m {id}`.\n< POWER_MODEL ID={id} NAME={name} >\n",
        provenance(r, b, &board.board.name)
    );
    // A knob at 0 is not one of the study's (a table without its column): left as it is.
    if b.config.cpu_freq_khz != 0 {
        for c in &board.cpu.clusters {
            s += &format!("{} MIN_FREQ {}\n", c.nvpmodel_param, b.config.cpu_freq_khz);
            s += &format!("{} MAX_FREQ {}\n", c.nvpmodel_param, b.config.cpu_freq_khz);
        }
    }
    if b.config.gpu_freq_hz != 0 {
        let (param, hz) = (&board.gpu.nvpmodel_param, b.config.gpu_freq_hz);
        s += &format!("{param} MIN_FREQ {hz}\n{param} MAX_FREQ {hz}\n");
    }
    // nvpmodel's CPU_ONLINE section: the first `cpu_cores` cores on, the rest off.
    if let Some(n) = b.config.cpu_cores {
        for cpu in all_cpus(board) {
            s += &format!("CPU_ONLINE CORE_{cpu} {}\n", u8::from(cpu < n));
        }
    }
    Some(s)
}

/// Every CPU of the board's clusters, ascending.
fn all_cpus(board: &Board) -> Vec<u32> {
    let mut v: Vec<u32> = board
        .cpu
        .clusters
        .iter()
        .flat_map(|c| c.cpus.iter().copied())
        .collect();
    v.sort_unstable();
    v
}

/// The comment line saying what a profile is for and where its energy came from.
fn provenance(r: &Report, b: &super::Best, board_name: &str) -> String {
    // One comment line whatever the names hold: a newline would end the comment.
    let line = |s: &str| s.replace(char::is_control, " ");
    format!(
        "# edgetune: {} on {}{}{}, {:.1} J per {} ({}).\n",
        line(&r.model),
        line(board_name),
        comma_mode(&b.config),
        comma_batch(b.config.batch_size),
        b.energy.energy_j,
        crate::units::inferences(r.inferences),
        r.backend.provenance_on(r.emulated)
    )
}

/// ", power mode N", or nothing where the power mode is not a knob.
fn comma_mode(c: &crate::space::Config) -> String {
    c.power_mode
        .map_or(String::new(), |m| format!(", power mode {m}"))
}

/// ", batch N", or nothing where the batch size is not a knob.
fn comma_batch(b: u32) -> String {
    match b {
        0 => String::new(),
        b => format!(", batch {b}"),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// For an NVML GPU: `nvidia-smi` locks the recommended GPU clock (when the study locked clocks);
/// the batch size is for the user's program either way.
pub fn nvml_snippet(r: &Report, spec: &crate::backend::nvml::GpuSpec) -> Option<String> {
    let b = r.best.as_ref()?;
    let gpu = spec.index;
    let mut s = format!("#!/bin/sh\n{}", provenance(r, b, &spec.name));
    if b.config.gpu_freq_hz == 0 {
        s += &format!(
            "# The GPU ran at its default clocks: there is nothing to set. Run inference at batch {}.\n",
            b.config.batch_size
        );
    } else {
        let mhz = b.config.gpu_freq_hz / 1_000_000;
        s += &format!(
            "# Run as root; `nvidia-smi -i {gpu} --reset-gpu-clocks` undoes it. Run inference at batch {}.\nset -e\nnvidia-smi -i {gpu} --lock-gpu-clocks={mhz},{mhz}\n",
            b.config.batch_size
        );
    }
    Some(s)
}

/// A shell script that writes the recommended clocks to sysfs, pinning min = max in an order that
/// never makes min > max (the board's own cpufreq policies and devfreq device).
pub fn shell_snippet(r: &Report, board: &Board) -> Option<String> {
    let b = r.best.as_ref().filter(|b| sets_the_board(&b.config))?;
    let mut s = format!(
        "#!/bin/sh\n{}# Run as root on the board; a reboot (or nvpmodel -m with your usual mode) undoes it.\nset -e\n",
        provenance(r, b, &board.board.name)
    );
    if let Some(m) = b.config.power_mode {
        // The mode's caps first; the governors run within them.
        s += &format!("nvpmodel -m {m}\n");
    }
    s += "# pin DIR MIN_FILE MAX_FILE VALUE: raise max first when going up, lower min first when going down.\n";
    s += "pin() {\n  if [ \"$4\" -ge \"$(cat \"$1/$2\")\" ]; then\n    echo \"$4\" > \"$1/$3\"; echo \"$4\" > \"$1/$2\"\n  else\n    echo \"$4\" > \"$1/$2\"; echo \"$4\" > \"$1/$3\"\n  fi\n}\n";
    for c in board
        .cpu
        .clusters
        .iter()
        .filter(|_| b.config.cpu_freq_khz != 0)
    {
        s += &format!(
            "pin /sys/devices/system/cpu/cpu{}/cpufreq scaling_min_freq scaling_max_freq {}\n",
            c.cpus[0], b.config.cpu_freq_khz
        );
    }
    if b.config.gpu_freq_hz != 0 {
        // The catalogue checks the name; quoted all the same, as everything a script runs.
        let dir = format!("/sys/class/devfreq/{}", board.gpu.devfreq);
        let dir = shlex::try_quote(&dir).map_err(|_| ()).ok()?;
        s += &format!("pin {dir} min_freq max_freq {}\n", b.config.gpu_freq_hz);
    }
    if let Some(f) = b.config.emc_freq_hz {
        // jetson_clocks' do_emc, with debugfs mounted.
        s += &if board.board.soc == "t210" {
            format!(
                "d=/sys/kernel/debug/clk/override.emc
echo {f} > $d/clk_update_rate; echo 1 > $d/clk_state
"
            )
        } else {
            format!(
                "d=/sys/kernel/debug/bpmp/debug/clk/emc
echo 1 > $d/mrq_rate_locked; echo {f} > $d/rate
"
            )
        };
    }
    if let Some(n) = b.config.cpu_cores {
        // The first `cpu_cores` cores online, the rest offline (cpu0 always stays on).
        for cpu in all_cpus(board).into_iter().filter(|c| *c > 0) {
            s += &format!(
                "echo {} > /sys/devices/system/cpu/cpu{cpu}/online\n",
                u8::from(cpu < n)
            );
        }
    }
    Some(s)
}
