//! What a command asks of a backend: the options every measuring command shares, resolved by
//! `app/` into typed values (the backend asked for, the protocol, the board's files, the
//! workload). A backend's rig reads them; a leaf of `backend/` that no backend's own files import.

use super::jetson::default_state_path;
use super::sim::Noise;
use crate::device::BackendKind;
use crate::measure::power::DEFAULT_POLL_MS;
use crate::measure::ProtocolSettings;
use std::path::PathBuf;

/// Where a board's files are and how to watch it.
#[derive(Debug, Clone)]
pub struct BoardOptions {
    /// Root of `/sys` and `/proc` (`/` on a board).
    pub sysfs_root: PathBuf,
    /// Restore snapshot; `None` for `<root>/var/lib/edgetune/restore.json`.
    pub state_file: Option<PathBuf>,
    /// Power polling interval.
    pub poll_ms: u64,
    /// Also control the memory clock (debugfs).
    pub emc: bool,
    /// `restore --force`: restore even while another run owns the board.
    pub force: bool,
    /// nvpmodel power modes as the knob (`--power-modes`: `all` or ids `0,3,4`, read by the
    /// board's rig); `None` for pinned clocks.
    pub power_modes: Option<String>,
    /// The nvpmodel program (`--nvpmodel`); `None` for `nvpmodel` on the PATH.
    pub nvpmodel: Option<String>,
}

impl Default for BoardOptions {
    fn default() -> Self {
        BoardOptions {
            sysfs_root: PathBuf::from("/"),
            state_file: None,
            poll_ms: DEFAULT_POLL_MS,
            emc: false,
            force: false,
            power_modes: None,
            nvpmodel: None,
        }
    }
}

impl BoardOptions {
    /// The restore snapshot's path.
    pub fn state_path(&self) -> PathBuf {
        self.state_file
            .clone()
            .unwrap_or_else(|| default_state_path(&self.sysfs_root))
    }
}

/// How the built-in workload runs.
#[derive(Debug, Clone, Default)]
pub struct TorchOptions {
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when libtorch sees a GPU).
    pub device: String,
    /// A user's TorchScript model instead of the built-in one.
    pub torchscript: Option<PathBuf>,
    /// The TorchScript model's input (`3,224,224`, `tokens:512`); default the catalogue model's.
    pub input_shape: Option<String>,
}

/// Options shared by every command that measures.
#[derive(Debug, Clone)]
pub struct Common {
    /// Folder holding `search-spaces/` and `models/`; `None` for the built-in catalogue.
    pub catalog_dir: Option<PathBuf>,
    /// Model name.
    pub model: String,
    /// Device name; `None` to detect the board.
    pub device: Option<String>,
    /// The backend asked for (`--backend`); `None` for `auto`: the real board when running on
    /// it, an NVIDIA GPU when the device names one, else the twin.
    pub backend: Option<BackendKind>,
    /// Protocol settings.
    pub protocol: ProtocolSettings,
    /// Seed (twin noise and strategies).
    pub seed: u64,
    /// Twin measurement noise on.
    pub noise: bool,
    /// Wall seconds the twin sleeps per simulated second of a run (`--twin-sleep`; 0: none).
    pub twin_sleep: f64,
    /// Mixed into the twin's noise seed: one stream per board of a fleet (0 for `tune`).
    pub noise_salt: u64,
    /// The twin's static power this many percent above the catalogue's (a fleet's other board).
    pub twin_static_power_pct: f64,
    /// The twin's first run reads this many percent high (a fleet's board with a bad first
    /// baseline window).
    pub twin_first_run_pct: f64,
    /// No notes on stderr.
    pub quiet: bool,
    /// Replay table (implies the replay backend).
    pub table: Option<PathBuf>,
    /// Where the board's `/sys` and `/proc` are (`/` on a board, a fixture tree in tests).
    pub board: BoardOptions,
    /// The external inference program (`--workload-cmd`), with its per-run time limit.
    pub workload_cmd: Option<String>,
    /// Longest a run of `workload_cmd` may take.
    pub workload_timeout_s: f64,
    /// The built-in (or TorchScript) workload, used on a board when `workload_cmd` is absent.
    pub torch: TorchOptions,
    /// `--allow-clock-control`: lock GPU clocks through NVML (root).
    pub allow_clock_control: bool,
    /// `--min-window-s`; `None` for the backend's default (2 s on NVML, else none).
    pub min_window_s: Option<f64>,
}

impl Common {
    /// The defaults of the command line for `model`, detecting the board.
    pub fn new(model: &str) -> Common {
        Common {
            catalog_dir: None,
            model: model.into(),
            device: None,
            backend: None,
            protocol: ProtocolSettings::default(),
            seed: 42,
            noise: true,
            twin_sleep: 0.0,
            noise_salt: 0,
            twin_static_power_pct: 0.0,
            twin_first_run_pct: 0.0,
            quiet: false,
            table: None,
            board: BoardOptions::default(),
            workload_cmd: None,
            workload_timeout_s: 600.0,
            torch: TorchOptions {
                device: "auto".into(),
                ..Default::default()
            },
            allow_clock_control: false,
            min_window_s: None,
        }
    }

    /// Whether the user brings the workload (`--workload-cmd`, `--torchscript`): then any model
    /// name is theirs to give.
    pub fn brings_workload(&self) -> bool {
        self.workload_cmd.is_some() || self.torch.torchscript.is_some()
    }

    /// The twin's noise: seeded from `--seed` and `salt` (one stream per parallel measurement),
    /// or off.
    pub fn noise(&self, salt: u64) -> Noise {
        if self.noise {
            Noise::Seeded(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt)
        } else {
            Noise::Off
        }
    }
}
