//! Loading and validating the catalogue: boards (`search-spaces/*.toml`) and models
//! (`models/*.toml`). Every error names the file, the field and the line.

use crate::opt::Opt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

mod parse;

include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));

/// What can be wrong with the catalogue or with a name looked up in it.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Malformed TOML or a field of the wrong type (the message carries line and column).
    #[error("{file}: {message}")]
    Parse {
        /// File that failed.
        file: String,
        /// Parser message.
        message: String,
    },
    /// A well-formed file with a value that makes no sense.
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        /// File that failed.
        file: String,
        /// 1-based line of the field (0 when unknown).
        line: usize,
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A model name that is not in the catalogue.
    #[error("unknown model `{name}`; valid models: {valid} (a model of your own runs on a board, a GPU or a host with {} or {})", Opt::WorkloadCmd, Opt::Torchscript)]
    UnknownModel {
        /// Name given.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// A device name that is not in the catalogue.
    #[error("unknown device `{name}`; valid devices: {valid}")]
    UnknownDevice {
        /// Name given.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// The model has no twin parameters for that board.
    #[error("model `{model}` has no [twin.{board}] section in {file}, so the twin cannot simulate it on that board")]
    NoTwin {
        /// Model id.
        model: String,
        /// Board id.
        board: String,
        /// Model file.
        file: String,
    },
    /// A label for a replay table's model or board that cannot name files.
    #[error("`{name}` cannot label a table's {what}: use 1 to 64 letters, digits, `-`, `_`, `.` or `:`, not starting with `.`")]
    BadLabel {
        /// Name given.
        name: String,
        /// "model" or "board".
        what: &'static str,
    },
    /// Two entries share a name or alias.
    #[error("{file}: name `{name}` is already used by {other}")]
    Duplicate {
        /// File that failed.
        file: String,
        /// Clashing name.
        name: String,
        /// File that has it already.
        other: String,
    },
}

/// A board: its knobs, governors, sensors and twin parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Identity and detection.
    pub board: BoardInfo,
    /// CPU frequency control.
    pub cpu: CpuSpec,
    /// GPU frequency control.
    pub gpu: GpuSpec,
    /// Power sensor rails.
    pub sensors: Sensors,
    /// Digital-twin parameters.
    pub twin: BoardTwin,
    /// Memory (EMC) clock rates, for `--emc` on a real board.
    #[serde(default)]
    pub emc: Option<EmcSpec>,
    /// The sysfs layout `edgetune emulate` builds for this board (a virtual board).
    #[serde(default)]
    pub emulator: Option<EmulatorLayout>,
    /// File it came from (not in the TOML).
    #[serde(skip)]
    pub file: String,
}

/// Memory-clock rates a board runs at (debugfs offers no list of them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmcSpec {
    /// Rates, Hz, ascending.
    pub frequencies_hz: Vec<u64>,
}

/// Where a virtual board's files go: the paths of one real JetPack release.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorLayout {
    /// `/proc/device-tree/model` text.
    pub dt_model: String,
    /// The GPU's device directory (its devfreq directory is `devfreq/<gpu.devfreq>` inside).
    pub gpu_device: String,
    /// The GPU's `of_node/name`.
    pub gpu_node: String,
    /// `iio` (JetPack 4, `ina3221x`) or `hwmon` (JetPack 5+, `ina3221`).
    pub sensor_driver: String,
    /// The INA3221's I2C device directory.
    pub sensor_device: String,
}

/// Identity and detection of a board.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    /// Short id used on the command line.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Other accepted names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// SoC name (t210, t194, ...).
    pub soc: String,
    /// Substrings of `/proc/device-tree/model` that identify the board.
    pub detect_model: Vec<String>,
}

/// CPU frequency control of a board.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuSpec {
    /// `scaling_available_frequencies`, kHz, ascending.
    pub frequencies_khz: Vec<u64>,
    /// Governor at boot.
    pub default_governor: String,
    /// cpufreq policies.
    pub clusters: Vec<CpuCluster>,
}

/// One cpufreq policy (clock domain).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuCluster {
    /// nvpmodel PARAM name (`CPU_A57`, `CPU_DENVER_0`, ...).
    pub nvpmodel_param: String,
    /// CPUs in the domain; the first one's cpufreq directory controls it.
    pub cpus: Vec<u32>,
}

/// GPU frequency control of a board.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// devfreq `available_frequencies`, Hz, ascending.
    pub frequencies_hz: Vec<u64>,
    /// Governor at boot.
    pub default_governor: String,
    /// devfreq device name.
    pub devfreq: String,
    /// nvpmodel PARAM name.
    pub nvpmodel_param: String,
}

/// Power sensor rails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sensors {
    /// Driver name (`ina3221x` on JetPack 4, `ina3221` on 5+).
    pub driver: String,
    /// Rail labels in channel order.
    pub rails: Vec<String>,
    /// The rail that measures the whole module; none where no rail does (AGX Orin): then
    /// board power is the sum of the rails.
    #[serde(default)]
    pub total_rail: Option<String>,
}

impl Sensors {
    /// What board power is, in the words discovery uses: the total rail, or the sum of the rails.
    pub fn total_words(&self) -> String {
        match &self.total_rail {
            Some(t) => t.clone(),
            None => format!("sum of {}", self.rails.join(" + ")),
        }
    }
}

/// Board half of the twin's parameters (the physics is in [`crate::twin`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardTwin {
    /// Workload-independent board power.
    pub base_power_mw: f64,
    /// DRAM bandwidth.
    pub dram_bandwidth_gbps: f64,
    /// DRAM power per GB/s of traffic.
    pub dram_mw_per_gbps: f64,
    /// Per-run coefficient of variation of measured energy.
    pub noise_cv: f64,
    /// Fraction of a core kept busy by the OS on the other cores.
    pub background_core_util: f64,
    /// Share of the CPU's and GPU's leakage left while they idle between inferences arriving at
    /// a rate (power gating cuts the rest; the rails stay at the clocks' voltages).
    #[serde(default = "default_idle_leak_share")]
    pub idle_leak_share: f64,
    /// GPU parameters.
    pub gpu: TwinGpu,
    /// CPU parameters.
    pub cpu: TwinCpu,
    /// Default-governor model.
    pub dvfs: TwinDvfs,
    /// What a measurement window sees besides the run-to-run spread: the sensor's steps and the
    /// settling after a clock change.
    #[serde(default)]
    pub measurement: TwinMeasurement,
    /// The persistent structure a real board adds to the twin's smooth landscape (used only
    /// where a rough board is asked for: `bench --rough`).
    #[serde(default)]
    pub rough: TwinRough,
}

/// How rough a real board's landscape is (`../shared/reference/real-landscapes.md`): each
/// configuration's energy is the twin's times a persistent factor that stays when it is
/// measured again, made of a per-configuration part, a part per value of each knob (a clock step
/// in a poor voltage bin, a batch size that fits the caches badly) and rare sharp dips and bumps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinRough {
    /// Standard deviation of the per-configuration part, in ln energy.
    pub config_sd: f64,
    /// Standard deviation of each knob value's part, in ln energy.
    pub value_sd: f64,
    /// Share of configurations with a sharp dip.
    pub dip_share: f64,
    /// Depth of a dip, relative: drawn evenly between the two.
    pub dip_depth: [f64; 2],
    /// Share of configurations with a sharp bump.
    pub bump_share: f64,
    /// Height of a bump, relative: drawn evenly between the two.
    pub bump_height: [f64; 2],
}

impl Default for TwinRough {
    fn default() -> Self {
        TwinRough {
            config_sd: 0.028,
            value_sd: 0.01,
            dip_share: 0.01,
            dip_depth: [0.04, 0.1],
            bump_share: 0.03,
            bump_height: [0.1, 0.4],
        }
    }
}

/// The twin's model of one energy window (`../shared/reference/measurement-noise.md`): a power
/// sensor that moves in steps integrated over a window, and a transient after each clock change.
/// Short windows are both noisier and biased.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinMeasurement {
    /// Seconds between two readings of the power sensor (INA3221 `update_interval`).
    pub sensor_refresh_s: f64,
    /// Seconds between two polls of the sensor.
    pub poll_s: f64,
    /// Relative power excess right after a clock change (clocks and temperature settling).
    pub settle_bias: f64,
    /// Time constant of the settling transient, seconds.
    pub settle_tau_s: f64,
}

/// `idle_leak_share` where a board file leaves it out.
fn default_idle_leak_share() -> f64 {
    0.2
}

impl Default for TwinMeasurement {
    fn default() -> Self {
        TwinMeasurement {
            sensor_refresh_s: 0.43,
            poll_s: 0.1,
            settle_bias: 0.15,
            settle_tau_s: 3.0,
        }
    }
}

/// GPU parameters of the twin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinGpu {
    /// CUDA cores.
    pub cores: u32,
    /// FLOPs per core per cycle (2 for FP32 FMA).
    pub flops_per_core_cycle: f64,
    /// C_eff in P = C f V^2 at full activity, mW/(MHz V^2).
    pub dyn_mw_per_mhz_v2: f64,
    /// Activity while stalled on DRAM, relative to compute.
    pub mem_stall_activity: f64,
    /// Leakage at 1 V, scales with V^3.
    pub leak_mw_at_1v: f64,
    /// Voltage curve: `[MHz, mV]` points, ascending.
    pub voltage_mv_by_mhz: Vec<[f64; 2]>,
    /// Voltage floor.
    pub v_min_mv: f64,
}

/// CPU parameters of the twin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinCpu {
    /// Cores.
    pub cores: u32,
    /// C_eff per busy core, mW/(MHz V^2).
    pub dyn_mw_per_mhz_v2: f64,
    /// Cluster leakage at 1 V, scales with V^3.
    pub leak_mw_at_1v: f64,
    /// Voltage curve: `[MHz, mV]` points, ascending.
    pub voltage_mv_by_mhz: Vec<[f64; 2]>,
    /// Voltage floor.
    pub v_min_mv: f64,
}

/// Default-governor residency model (calibration target T7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwinDvfs {
    /// Share of time the CPU governor spends at the top frequency.
    pub cpu_top_residency: f64,
    /// Share of time the GPU governor spends at the top frequency.
    pub gpu_top_residency: f64,
    /// The remaining time is spread evenly over this many steps below the top.
    pub spread_steps: usize,
}

/// The batch sizes of a model the catalogue does not have: one frame at a time, as a camera
/// pipeline runs, and the paper's sizes.
pub const OWN_MODEL_BATCH_SIZES: [u32; 6] = [1, 4, 8, 16, 32, 64];

/// A model: the paper's row and the twin's per-board parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Identity.
    pub model: ModelInfo,
    /// The paper's table row.
    pub paper: PaperRow,
    /// Twin parameters per board id.
    #[serde(default)]
    pub twin: BTreeMap<String, ModelTwin>,
    /// How edgetune builds the model itself (feature `torch`) and what the built model counts.
    pub built: Option<BuiltSpec>,
    /// File it came from.
    #[serde(skip)]
    pub file: String,
}

/// Identity of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Short id used on the command line.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Other accepted names.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The paper's description of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRow {
    /// Layers.
    pub layers: u32,
    /// Parameters, millions.
    pub params_m: f64,
    /// GFLOPs per inference as the paper gives it.
    pub gflops: f64,
    /// Batch sizes the paper used.
    pub batch_sizes: Vec<u32>,
    /// Input description.
    pub input: String,
    /// Framework the paper used.
    pub framework: String,
}

/// The architecture edgetune builds (random weights) and what the built model was counted to
/// hold. The counts are checked against the built model by the `torch` tests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltSpec {
    /// Builder: `alexnet`, `resnet18`, `mobilenet-v2` (tch::vision), `yolov4-tiny`, `encoder`.
    pub arch: String,
    /// One inference's input: `[channels, height, width]` of an image; absent for token models.
    #[serde(default)]
    pub input_shape: Vec<i64>,
    /// Output classes of an image model.
    #[serde(default)]
    pub classes: Option<i64>,
    /// Token models: the encoder's shape.
    pub encoder: Option<EncoderSpec>,
    /// Parameters of the built model.
    pub params: u64,
    /// Parameters left out when comparing with the paper's row (the row's convention).
    #[serde(default)]
    pub params_not_in_paper: u64,
    /// Multiply-accumulates of one inference (conv, linear and attention matrix products), as
    /// counted by `scripts/count-macs.py` on the traced built model.
    pub macs: u64,
}

/// A BERT-style encoder stack (post-layer-norm, GELU feed-forward).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// Tokens per inference (also the position table's size).
    pub sequence_length: i64,
    /// Word-piece vocabulary.
    pub vocab: i64,
    /// Token-type table rows (BERT: 2; DistilBERT has none).
    pub token_types: i64,
    /// Transformer layers.
    pub layers: i64,
    /// Hidden width.
    pub hidden: i64,
    /// Attention heads.
    pub heads: i64,
    /// Feed-forward width.
    pub intermediate: i64,
}

/// Model half of the twin's parameters for one board.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTwin {
    /// Achieved FLOP/s at large batch over the FP32 peak (above 1 with half precision or
    /// tensor cores).
    pub gpu_efficiency: f64,
    /// Batch size at which half of `gpu_efficiency` is reached.
    pub batch_half: f64,
    /// Weights read from DRAM once per batch.
    pub weights_mb: f64,
    /// Activation traffic per inference.
    pub activations_mb_per_inference: f64,
    /// CPU work per inference (pre/post-processing), millions of cycles.
    pub cpu_mcycles_per_inference: f64,
    /// CPU work per batch (framework dispatch, kernel launches, sync), millions of cycles.
    pub cpu_mcycles_per_batch: f64,
    /// Fraction of the shorter of CPU and GPU work hidden behind the longer.
    pub overlap: f64,
    /// Fraction of a core busy-waiting while the GPU works.
    pub spin: f64,
}

/// The whole catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Boards, sorted by id.
    pub boards: Vec<Board>,
    /// Models, in the paper's order where known.
    pub models: Vec<Model>,
}

impl Board {
    /// This board with its static power (the board's base power and the CPU's and GPU's
    /// leakage) `pct` percent higher: two boards of one kind differ like this.
    pub fn with_static_power_pct(&self, pct: f64) -> Board {
        let k = 1.0 + pct / 100.0;
        let mut b = self.clone();
        b.twin.base_power_mw *= k;
        b.twin.gpu.leak_mw_at_1v *= k;
        b.twin.cpu.leak_mw_at_1v *= k;
        b
    }

    /// Every name this board answers to.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.board.id.as_str()).chain(self.board.aliases.iter().map(|s| s.as_str()))
    }
}

impl Model {
    /// Its id (`resnet18`).
    pub fn id(&self) -> &str {
        &self.model.id
    }

    /// Every name this model answers to.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.model.id.as_str()).chain(self.model.aliases.iter().map(|s| s.as_str()))
    }

    /// A model the catalogue does not have, under the user's own name, for a workload the user
    /// brings (`--workload-cmd`, `--torchscript`): no paper row, no twin, nothing built; its
    /// batch sizes are [`OWN_MODEL_BATCH_SIZES`] unless `--batch-sizes` says.
    pub fn own(name: &str) -> Result<Model, CatalogError> {
        let id = check_label(name, "model")?;
        Ok(Model {
            model: ModelInfo {
                name: id.clone(),
                id,
                aliases: Vec::new(),
            },
            paper: PaperRow {
                layers: 0,
                params_m: 0.0,
                gflops: 0.0,
                batch_sizes: OWN_MODEL_BATCH_SIZES.to_vec(),
                input: String::new(),
                framework: String::new(),
            },
            twin: BTreeMap::new(),
            built: None,
            file: String::new(),
        })
    }

    /// Twin parameters for a board, or an error naming the missing section.
    pub fn twin_for(&self, board: &str) -> Result<&ModelTwin, CatalogError> {
        self.twin.get(board).ok_or_else(|| CatalogError::NoTwin {
            model: self.model.id.clone(),
            board: board.to_string(),
            file: self.file.clone(),
        })
    }
}

/// Normalises a name for lookup: case-insensitive, `_` and `-` equivalent.
fn norm(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('_', "-")
}

/// The paper's model order, used to list models.
const PAPER_ORDER: [&str; 6] = [
    "alexnet",
    "resnet18",
    "mobilenet-v2",
    "yolov4-tiny",
    "bert-tiny",
    "distilbert",
];

impl Catalog {
    /// The board whose detection string matches the device-tree model (`/proc/device-tree/model`),
    /// if any.
    pub fn detect(&self, dt_model: Option<&str>) -> Option<&Board> {
        let m = dt_model?;
        self.boards
            .iter()
            .find(|b| b.board.detect_model.iter().any(|d| m.contains(d.as_str())))
    }

    /// Loads the catalogue from `dir` (holding `search-spaces/` and `models/`), or the copy
    /// embedded at build time when `dir` is `None`.
    pub fn load(dir: Option<&Path>) -> Result<Catalog, CatalogError> {
        let (boards, models) = match dir {
            None => (
                EMBEDDED_BOARDS
                    .iter()
                    .map(|(f, s)| (f.to_string(), s.to_string()))
                    .collect(),
                EMBEDDED_MODELS
                    .iter()
                    .map(|(f, s)| (f.to_string(), s.to_string()))
                    .collect(),
            ),
            Some(d) => (
                read_dir_tomls(&d.join("search-spaces"))?,
                read_dir_tomls(&d.join("models"))?,
            ),
        };
        Self::from_sources(&boards, &models)
    }

    /// Board ids.
    pub fn board_ids(&self) -> Vec<String> {
        self.boards.iter().map(|b| b.board.id.clone()).collect()
    }

    /// Model ids.
    pub fn model_ids(&self) -> Vec<String> {
        self.models.iter().map(|m| m.model.id.clone()).collect()
    }

    /// Finds a board by id or alias.
    pub fn board(&self, name: &str) -> Result<&Board, CatalogError> {
        let n = norm(name);
        self.boards
            .iter()
            .find(|b| b.names().any(|x| norm(x) == n))
            .ok_or_else(|| CatalogError::UnknownDevice {
                name: name.to_string(),
                valid: self.board_ids().join(", "),
            })
    }

    /// The model a replay table is labelled with: the catalogue's (an alias resolved to its id),
    /// or, for a network the catalogue does not have, the name itself as a label.
    pub fn model_label(&self, name: &str) -> Result<Labelled<&Model>, CatalogError> {
        match self.model(name) {
            Ok(m) => Ok(Labelled::Known(m)),
            Err(_) => Ok(Labelled::Label(check_label(name, "model")?)),
        }
    }

    /// The board a replay table is labelled with, as [`Catalog::model_label`].
    pub fn board_label(&self, name: &str) -> Result<Labelled<&Board>, CatalogError> {
        match self.board(name) {
            Ok(b) => Ok(Labelled::Known(b)),
            Err(_) => Ok(Labelled::Label(check_label(name, "board")?)),
        }
    }

    /// The model named; where the user brings the workload (`own_workload`), a name the
    /// catalogue lacks is the user's own model ([`Model::own`]): the catalogue's models are
    /// defaults on a real device, not a whitelist.
    pub fn model_or_own(&self, name: &str, own_workload: bool) -> Result<Model, CatalogError> {
        match self.model(name) {
            Ok(m) => Ok(m.clone()),
            Err(_) if own_workload => Model::own(name),
            Err(e) => Err(e),
        }
    }

    /// Finds a model by id or alias.
    pub fn model(&self, name: &str) -> Result<&Model, CatalogError> {
        let n = norm(name);
        self.models
            .iter()
            .find(|m| m.names().any(|x| norm(x) == n))
            .ok_or_else(|| CatalogError::UnknownModel {
                name: name.to_string(),
                valid: self.model_ids().join(", "),
            })
    }
}

/// A model or board named for a replay table: a catalogue entry, or a label only.
#[derive(Debug, Clone, PartialEq)]
pub enum Labelled<T> {
    /// In the catalogue.
    Known(T),
    /// Not in the catalogue: the user's name for it.
    Label(String),
}

impl<T> Labelled<T> {
    /// The catalogue entry, if it is one.
    pub fn known(&self) -> Option<&T> {
        match self {
            Labelled::Known(t) => Some(t),
            Labelled::Label(_) => None,
        }
    }

    /// Its name in reports: the entry's id (`id_of` reads it), or the label.
    pub fn id(&self, id_of: impl FnOnce(&T) -> &str) -> String {
        match self {
            Labelled::Known(t) => id_of(t).to_string(),
            Labelled::Label(l) => l.clone(),
        }
    }
}

/// A label names report folders (`reports/<model>-<board>`), so it must be a plain file-name part.
fn check_label(name: &str, what: &'static str) -> Result<String, CatalogError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if (1..=64).contains(&name.len()) && name.chars().all(fine) && !name.starts_with('.') {
        Ok(name.to_string())
    } else {
        Err(CatalogError::BadLabel {
            name: name.to_string(),
            what,
        })
    }
}

fn read_dir_tomls(dir: &Path) -> Result<Vec<(String, String)>, CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") {
            let s = std::fs::read_to_string(&p).map_err(|source| CatalogError::Io {
                path: p.clone(),
                source,
            })?;
            out.push((p.display().to_string(), s));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Sources = Vec<(String, String)>;

    /// The embedded files, the Nano's first (the tests below edit `boards[0]`).
    fn embedded() -> (Sources, Sources) {
        let mut b: Sources = EMBEDDED_BOARDS
            .iter()
            .map(|(f, s)| (f.to_string(), s.to_string()))
            .collect();
        b.sort_by_key(|(f, _)| f != "search-spaces/nano.toml");
        let m = EMBEDDED_MODELS
            .iter()
            .map(|(f, s)| (f.to_string(), s.to_string()))
            .collect();
        (b, m)
    }

    #[test]
    fn embedded_catalogue_loads_with_the_paper_tables() {
        let cat = Catalog::load(None).unwrap();
        assert_eq!(
            cat.board_ids(),
            vec!["agx-orin", "nano", "orin-nano", "orin-nx", "xavier-nx"]
        );
        assert_eq!(
            cat.model_ids(),
            vec![
                "alexnet",
                "resnet18",
                "mobilenet-v2",
                "yolov4-tiny",
                "bert-tiny",
                "distilbert"
            ]
        );
        let nano = cat.board("nano").unwrap();
        assert_eq!(nano.cpu.frequencies_khz.len(), 15);
        assert_eq!(nano.gpu.frequencies_hz.len(), 12);
        assert_eq!(nano.cpu.frequencies_khz[14], 1_479_000);
        assert_eq!(nano.gpu.frequencies_hz[11], 921_600_000);
        let nx = cat.board("NX").unwrap();
        assert_eq!(nx.cpu.frequencies_khz.len(), 25);
        assert_eq!(nx.gpu.frequencies_hz.len(), 15);
        assert_eq!(nx.cpu.clusters.len(), 3);
        assert_eq!(nx.cpu.default_governor, "schedutil");
        assert_eq!(nx.gpu.default_governor, "nvhost_podgov");
        for m in &cat.models {
            for b in cat.board_ids() {
                assert!(m.twin.contains_key(&b), "{} {b}", m.model.id);
            }
        }
    }

    #[test]
    fn aliases_resolve_and_unknown_names_list_the_valid_ones() {
        let cat = Catalog::load(None).unwrap();
        assert_eq!(cat.model("ResNet-18").unwrap().model.id, "resnet18");
        assert_eq!(cat.model("mobilenetv2").unwrap().model.id, "mobilenet-v2");
        assert_eq!(cat.board("xavier_nx").unwrap().board.id, "xavier-nx");
        let e = cat.model("vgg16").unwrap_err().to_string();
        assert!(e.contains("vgg16") && e.contains("yolov4-tiny"), "{e}");
        let e = cat.board("orin").unwrap_err().to_string();
        assert!(e.contains("orin-nano, orin-nx, xavier-nx"), "{e}");
    }

    #[test]
    fn invalid_values_name_file_field_and_line() {
        let (mut boards, models) = embedded();
        boards[0].1 = boards[0]
            .1
            .replace("cpu_top_residency = 0.89", "cpu_top_residency = 1.7");
        let e = Catalog::from_sources(&boards, &models).unwrap_err();
        let CatalogError::Invalid {
            file, line, field, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(file, "search-spaces/nano.toml");
        assert_eq!(field, "twin.dvfs.cpu_top_residency");
        let expect = boards[0]
            .1
            .lines()
            .position(|l| l.starts_with("cpu_top_residency"))
            .unwrap()
            + 1;
        assert_eq!(*line, expect);
    }

    #[test]
    fn a_huge_parameter_is_rejected_before_it_overflows_the_twin() {
        let (mut boards, models) = embedded();
        let line = boards[0]
            .1
            .lines()
            .find(|l| l.starts_with("base_power_mw"))
            .unwrap();
        boards[0].1 = boards[0].1.replace(line, "base_power_mw = 1e308");
        let e = Catalog::from_sources(&boards, &models).unwrap_err();
        assert!(e.to_string().contains("twin.base_power_mw"), "{e}");
    }

    #[test]
    fn descending_frequency_table_is_rejected_with_its_line() {
        let (mut boards, models) = embedded();
        boards[0].1 = boards[0].1.replace("[102000, 204000,", "[204000, 102000,");
        let e = Catalog::from_sources(&boards, &models)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cpu.frequencies_khz") && e.contains("ascending"),
            "{e}"
        );
        assert!(e.starts_with("search-spaces/nano.toml:"), "{e}");
    }

    #[test]
    fn malformed_toml_reports_the_line() {
        let (boards, mut models) = embedded();
        models[0].1 = models[0].1.replace("layers = 8", "layers = = 8");
        let e = Catalog::from_sources(&boards, &models)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("models/alexnet.toml") && e.contains("line"),
            "{e}"
        );
    }

    #[test]
    fn twin_section_for_unknown_board_is_rejected() {
        let (boards, mut models) = embedded();
        models[0].1 = models[0].1.replace("[twin.nano]", "[twin.orin]");
        let e = Catalog::from_sources(&boards, &models)
            .unwrap_err()
            .to_string();
        assert!(e.contains("twin.orin") && e.contains("no board"), "{e}");
    }

    #[test]
    fn cluster_fields_in_arrays_of_tables_get_lines() {
        let (mut boards, models) = embedded();
        let i = boards
            .iter()
            .position(|(f, _)| f.contains("xavier"))
            .unwrap();
        boards[i].1 = boards[i].1.replace("cpus = [2, 3]", "cpus = [1, 3]");
        let e = Catalog::from_sources(&boards, &models).unwrap_err();
        let CatalogError::Invalid { line, field, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(field, "cpu.clusters[1].cpus");
        let expect = boards[i]
            .1
            .lines()
            .position(|l| l.starts_with("cpus = [1, 3]"))
            .unwrap()
            + 1;
        assert_eq!(*line, expect);
    }

    #[test]
    fn a_name_the_catalogue_lacks_is_the_users_own_model_only_with_their_workload() {
        let c = Catalog::load(None).unwrap();
        let e = c.model_or_own("yolov8n", false).unwrap_err().to_string();
        assert!(e.contains("unknown model `yolov8n`"), "{e}");
        let m = c.model_or_own("yolov8n", true).unwrap();
        assert_eq!(m.id(), "yolov8n");
        assert_eq!(m.paper.batch_sizes, OWN_MODEL_BATCH_SIZES);
        assert!(m.twin.is_empty() && m.built.is_none());
        // A catalogue model stays the catalogue's, by an alias too.
        assert!(c.model_or_own("resnet18", true).unwrap().built.is_some());
        // The name becomes part of report folders: a plain file-name part only.
        assert!(c.model_or_own("../x", true).is_err());
    }
}
