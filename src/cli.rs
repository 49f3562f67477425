//! Command-line definitions (clap) and their conversion into the library's option structs.

use clap::{Args, Parser, Subcommand, ValueEnum};
use edgetune::device::BackendKind;
use std::path::PathBuf;

/// Find the CPU frequency, GPU frequency and batch size at which DNN inference uses the least
/// energy on an NVIDIA Jetson. Without a board it runs on a digital twin calibrated to published
/// Jetson Nano and Xavier NX measurements, and says so.
#[derive(Debug, Parser)]
#[command(name = "edgetune", version, propagate_version = true)]
#[command(
    after_help = "Example:\n  edgetune tune --model yolov4-tiny --device nano\n\nExit codes: 0 success, 1 failure at run time, 2 bad input, 130 interrupted (what was measured is kept)."
)]
pub struct Cli {
    /// Read search-spaces/ and models/ from this folder instead of the built-in catalogue.
    #[arg(long, global = true, env = "EDGETUNE_CATALOG", value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Search for the lowest-energy configuration and compare it with the DVFS governors.
    Tune(Box<TuneArgs>),
    /// Measure every configuration of the grid (on the twin, in parallel).
    Sweep(SweepArgs),
    /// Measure one pinned configuration through the protocol.
    Measure(MeasureArgs),
    /// Measure the default DVFS governors at one or more batch sizes.
    Baseline(BaselineArgs),
    /// Compare search strategies on the twin against the noiseless grid minimum.
    Bench(BenchArgs),
    /// List the models in the catalogue.
    Models(ListArgs),
    /// Show this board's knobs, governors and power rails (on a Jetson), and the catalogue's boards.
    Devices(DevicesArgs),
    /// Put the board's clocks back from the snapshot an interrupted or killed run left behind.
    Restore(RestoreArgs),
    /// Pin a recommended profile.toml on the board and leave it pinned (undo with `restore`).
    Apply(ApplyArgs),
    /// Run a virtual Jetson: its sysfs tree under --root, clocks and power sensors kept live by
    /// the digital twin, until Ctrl-C or SIGTERM.
    Emulate(EmulateArgs),
    /// The virtual Jetson's workload: sleep for the twin's time of N inferences at the clocks
    /// set under --root, between EDGETUNE_BEGIN and EDGETUNE_END.
    EmulateInfer(EmulateInferArgs),
    /// Run a built-in model (or --torchscript FILE) through libtorch: N inferences between
    /// EDGETUNE_BEGIN and EDGETUNE_END, then the throughput (needs the `torch` feature).
    Infer(InferArgs),
    /// Throughput of the built-in models against the same architectures in Python PyTorch eager
    /// mode, interleaved on this machine (needs the `torch` feature, and torchvision in Python).
    BenchTorch(BenchTorchArgs),
    /// Measure one board's share of a study kept in a database (`study create` makes it): claim
    /// a configuration, measure it, write it, until the study is done. The study's options come
    /// from the database; give this board's own (--backend, --workload-cmd, --board-id).
    #[command(
        override_usage = "edgetune worker --storage <URL> --study <NAME> [--board-id <ID>] [--backend <BACKEND>] [--workload-cmd <COMMAND>] [OPTIONS]",
        after_help = "Every tune option is accepted; those that define the study (model, board kind, space, protocol, goal, strategy, seed, budget) come from the storage, and a worker given different ones refuses to start (exit 2)."
    )]
    Worker(Box<WorkerArgs>),
    /// Wall time and regret of one study measured by 1, 2, 4... workers at once on the twin
    /// (each worker a thread with its own twin board, sleeping its run times scaled down).
    BenchFleet(BenchFleetArgs),
    /// Studies kept in a database: create one for workers, list them, write a report.
    #[command(subcommand)]
    Study(StudyCommand),
    /// A read-only web dashboard of a storage's studies (live while workers measure) and of a
    /// folder of tune outputs, on this machine only unless --bind says otherwise.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The studies to show: sqlite:PATH or postgresql://USER@HOST/DB.
    #[arg(long, value_name = "URL", env = "EDGETUNE_STORAGE")]
    pub storage: Option<String>,
    /// The folder of tune outputs to show (each folder in it with a report.json).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub reports: PathBuf,
    /// Address and port to listen on. The default lets in this machine only; 0.0.0.0:PORT
    /// lets in any machine that can reach it (there is no login), with a warning.
    #[arg(long, value_name = "ADDR:PORT", default_value = edgetune::app::serve::DEFAULT_BIND)]
    pub bind: String,
    /// Threads answering requests.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = crate::bounds::int::<usize>(1, 256))]
    pub threads: usize,
}

impl ServeArgs {
    /// The options `serve` takes.
    pub fn options(&self) -> edgetune::app::serve::ServeOptions {
        edgetune::app::serve::ServeOptions {
            storage: self.storage.clone(),
            reports_dir: self.reports.clone(),
            bind: self.bind.clone(),
            threads: self.threads,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchFleetArgs {
    /// Model.
    #[arg(long, short = 'm', default_value = "resnet18")]
    pub model: String,
    /// Board.
    #[arg(long, short = 'd', default_value = "nano")]
    pub device: String,
    /// Worker counts to compare, comma-separated (the first is the reference).
    #[arg(long, default_value = "1,4")]
    pub workers: String,
    /// Seeds 1..=N per worker count.
    #[arg(long, default_value_t = 10, value_parser = crate::bounds::repeats::<u64>())]
    pub seeds: u64,
    /// Measurements per study.
    #[arg(long, default_value_t = 40, value_parser = crate::bounds::budget())]
    pub budget: usize,
    /// Strategy.
    #[arg(long, short = 's', default_value = "bayes")]
    pub strategy: String,
    /// Wall seconds each worker sleeps per simulated second of a run.
    #[arg(long, default_value_t = 0.01, value_name = "F", value_parser = crate::bounds::sleep_factor())]
    pub twin_sleep: f64,
    /// Every other board's static power this many percent above the catalogue's; regret is
    /// then the worse of both boards' twins.
    #[arg(long, default_value_t = 0.0, value_name = "PCT", value_parser = crate::bounds::pct())]
    pub static_power_pct: f64,
    /// A database for the studies [default: a fresh SQLite file per study].
    #[arg(long, value_name = "URL")]
    pub storage: Option<String>,
    /// Claim lease, seconds.
    #[arg(long, default_value_t = 10.0, value_name = "S", value_parser = crate::bounds::lease())]
    pub lease_s: f64,
    /// Output folder [default: reports/bench-fleet/<timestamp>/].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print bench-fleet.json to stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub board_time: BoardTimeArgs,
}

/// `study` subcommands.
#[derive(Debug, Subcommand)]
pub enum StudyCommand {
    /// Record a study (tune's options) in --storage under --study, for workers to measure.
    Create(Box<TuneArgs>),
    /// List the studies in --storage with their progress.
    List(StudyListArgs),
    /// Write a stored study's report files (the same files tune writes).
    Report(StudyReportArgs),
}

/// Where a study is kept.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Keep the study's state in a database instead of the output folder's journal.jsonl:
    /// sqlite:PATH (one machine) or postgresql://USER@HOST/DB (boards on a network).
    #[arg(long, value_name = "URL", requires = "study")]
    pub storage: Option<String>,
    /// The study's name in --storage.
    #[arg(long, value_name = "NAME", requires = "storage")]
    pub study: Option<String>,
}

#[derive(Debug, Args)]
pub struct StudyListArgs {
    /// sqlite:PATH or postgresql://USER@HOST/DB.
    #[arg(long, value_name = "URL", env = "EDGETUNE_STORAGE")]
    pub storage: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StudyReportArgs {
    /// sqlite:PATH or postgresql://USER@HOST/DB.
    #[arg(long, value_name = "URL", env = "EDGETUNE_STORAGE")]
    pub storage: String,
    /// The study.
    #[arg(long, value_name = "NAME")]
    pub study: String,
    /// Output folder [default: reports/study-<name>-<timestamp>/].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print report.json to stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `worker`: tune's options (the study's come from the storage) and the worker's own.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub tune: TuneArgs,
    /// This board's name in the study [default: its serial number, else the machine id].
    #[arg(long, value_name = "ID")]
    pub board_id: Option<String>,
    /// Seconds a claim lives without a heartbeat (one every third of it): a worker killed
    /// mid-measurement gives its configuration back after this long.
    #[arg(long, default_value_t = edgetune::app::worker::DEFAULT_LEASE_S, value_name = "S", value_parser = crate::bounds::lease())]
    pub lease_s: f64,
    /// On the twin: this board's static power this many percent above the catalogue's (two
    /// boards of one kind differ so).
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "PCT",
        allow_negative_numbers = true,
        value_parser = crate::bounds::pct(),
    )]
    pub twin_static_power_pct: f64,
    /// On the twin: this board's first run (its first baseline window) reads this many
    /// percent high, as a real board's may after it starts.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "PCT",
        allow_negative_numbers = true,
        value_parser = crate::bounds::pct(),
    )]
    pub twin_first_run_pct: f64,
}

/// Which model libtorch runs, and where.
#[derive(Debug, Args)]
pub struct TorchArgs {
    /// libtorch device of the built-in workload: cpu, cuda, cuda:N, or auto (CUDA when libtorch
    /// sees a GPU).
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub torch_device: String,
    /// Run this TorchScript model (torch.jit.trace or script, then save) instead of the built-in
    /// one; --model still picks the batch sizes and the search space.
    #[arg(long, value_name = "FILE.pt")]
    pub torchscript: Option<PathBuf>,
    /// Input of one inference of the --torchscript model, without the batch dimension:
    /// 3,224,224 (random floats) or tokens:512[:VOCAB] (random ids) [default: --model's input].
    #[arg(long, value_name = "SHAPE")]
    pub input_shape: Option<String>,
}

#[derive(Debug, Args)]
pub struct InferArgs {
    /// Model (see `edgetune models`).
    #[arg(long, short = 'm')]
    pub model: String,
    /// Batch size.
    #[arg(long, short = 'b', default_value_t = 8, value_name = "B", value_parser = crate::bounds::batch())]
    pub batch: u32,
    /// Inferences (the last batch is smaller when B does not divide N).
    #[arg(long, short = 'n', default_value_t = 3200, value_name = "N", value_parser = crate::bounds::inferences())]
    pub inferences: u32,
    #[command(flatten)]
    pub torch: TorchArgs,
    /// Print the result as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Save the network as TorchScript (traced at --batch) to this file instead of running it:
    /// the same network for torch.jit.load, another tool, or --torchscript (any batch size).
    #[arg(long, value_name = "FILE.pt")]
    pub save_torchscript: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchTorchArgs {
    /// Models, comma-separated (alexnet, resnet18, mobilenet-v2).
    #[arg(long, default_value = "resnet18,mobilenet-v2")]
    pub models: String,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "8,32")]
    pub batch_sizes: String,
    /// Inferences per timed run.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = crate::bounds::inferences())]
    pub inferences: u32,
    /// Timed runs per side and configuration, interleaved; the median is reported.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = crate::bounds::repeats::<u32>())]
    pub repeats: u32,
    /// libtorch device: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub torch_device: String,
    /// Python with torch 2.11.0 and torchvision [default: $EDGETUNE_TORCH_PYTHON, else python3].
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Board to emulate (see `edgetune devices`).
    #[arg(long, short = 'd')]
    pub board: String,
    /// Folder to build the board's tree in (new or empty).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// How often the power sensors refresh, ms (JetPack 5's INA3221 averages over 430 ms).
    #[arg(long, default_value_t = 430, value_name = "MS", value_parser = crate::bounds::interval_ms())]
    pub sensor_refresh_ms: u64,
    /// Real seconds per twin second (0.01 runs a 100 s workload in 1 s).
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = crate::bounds::time_scale())]
    pub time_scale: f64,
    /// Print no notes on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EmulateInferArgs {
    /// Root of a running `edgetune emulate`.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Model (see `edgetune models`).
    #[arg(long, short = 'm')]
    pub model: String,
    /// Batch size.
    #[arg(long, short = 'b', value_name = "B", value_parser = crate::bounds::batch())]
    pub batch: u32,
    /// Inferences.
    #[arg(long, value_name = "N", value_parser = crate::bounds::inferences())]
    pub inferences: u32,
}

/// Where the board's files are.
#[derive(Debug, Args)]
pub struct BoardArgs {
    /// Root under which /sys and /proc are read and written [default: /]; point it at a copy
    /// of a board's tree to test without one.
    #[arg(long, env = "EDGETUNE_SYSFS_ROOT", value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
    /// Restore snapshot written before the first change to the board [default:
    /// <sysfs-root>/var/lib/edgetune/restore.json].
    #[arg(long, env = "EDGETUNE_STATE_FILE", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// The nvpmodel program that switches power modes (--power-modes, and restoring the mode
    /// found), split like a shell would split it [default: nvpmodel on the PATH].
    #[arg(long, env = "EDGETUNE_NVPMODEL", value_name = "COMMAND")]
    pub nvpmodel: Option<String>,
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    pub board: BoardArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub board: BoardArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Restore even while another edgetune owns the board (its lock is held): only when that
    /// process is stuck; a live run would go on pinning.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A profile.toml written by `edgetune tune`.
    #[arg(value_name = "PROFILE")]
    pub profile: PathBuf,
    /// Also apply it at every boot: a systemd unit (/etc/systemd/system/edgetune-profile.service,
    /// enabled) runs this edgetune on a copy in /etc/edgetune; `edgetune restore` removes both.
    #[arg(long)]
    pub persist: bool,
    #[command(flatten)]
    pub board: BoardArgs,
}

/// `--backend`: `auto`, or a backend of the registry.
#[derive(Debug, Clone, Copy)]
pub struct BackendChoice(pub Option<BackendKind>);

/// `--backend`'s values and their help: `auto`, then every registered backend's.
fn backend_parser() -> impl clap::builder::TypedValueParser<Value = BackendChoice> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let auto = PossibleValue::new("auto").help(
        "The real board when running on it, an NVIDIA GPU when --device names one, else the twin",
    );
    let each = edgetune::backend::ALL
        .iter()
        .map(|e| PossibleValue::new(e.kind.name()).help(e.help));
    PossibleValuesParser::new(std::iter::once(auto).chain(each))
        .map(|name| BackendChoice(edgetune::backend::by_name(&name)))
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum AcquisitionArg {
    /// Expected improvement.
    Ei,
    /// Lower confidence bound.
    Lcb,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum OnOff {
    On,
    Off,
}

/// Options of every command that measures.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Model to run (see `edgetune models`); aliases such as resnet-18 work. With --table, any
    /// label (my-net); with your own --workload-cmd or --torchscript on a board, a GPU or a
    /// host, your model's name (yolov8n).
    #[arg(long, short = 'm')]
    pub model: String,
    /// Board (see `edgetune devices`), detected when running on a Jetson; or an NVIDIA GPU:
    /// gpu, gpu:N or its name (backend nvml). With --table, any label (my-board).
    #[arg(long, short = 'd')]
    pub device: Option<String>,
    /// Where to measure.
    #[arg(long, default_value = "auto", value_parser = backend_parser())]
    pub backend: BackendChoice,
    /// Replay a recorded table (CSV: knob columns, then energy_j or power_w and time_s) instead
    /// of measuring; implies --backend replay.
    #[arg(long, value_name = "FILE.csv")]
    pub table: Option<PathBuf>,
    /// Inferences per measured run.
    #[arg(long, default_value_t = 3200, value_name = "N", value_parser = crate::bounds::inferences())]
    pub inferences: u32,
    /// Inferences run before measuring each configuration (0 for none).
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = crate::bounds::int::<u32>(0, crate::bounds::MAX_INFERENCES))]
    pub warmup: u32,
    /// Repeat runs until the coefficient of variation of energy is below this (0.05 = 5 %).
    #[arg(long, default_value_t = 0.05, value_name = "FRACTION", value_parser = crate::bounds::positive_fraction())]
    pub cv_target: f64,
    /// Runs per configuration, at least.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = crate::bounds::repeats::<u32>())]
    pub min_runs: u32,
    /// Runs per configuration, at most.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = crate::bounds::repeats::<u32>())]
    pub max_runs: u32,
    /// Shortest energy window: a run of --inferences that is shorter repeats inside one window
    /// until it is this long, and is reported per --inferences [default: 2 on NVML, else 0].
    #[arg(long, value_name = "S", value_parser = crate::bounds::real(0.0, edgetune::measure::protocol::MAX_MIN_WINDOW_S))]
    pub min_window_s: Option<f64>,
    /// On an NVIDIA GPU (root only), lock the GPU clock per configuration so it becomes a
    /// knob; the clocks are reset on every exit path and by `edgetune restore`.
    #[arg(long)]
    pub allow_clock_control: bool,
    /// Seed for the strategy and the twin's measurement noise.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The twin's measurement noise (off gives the noiseless ground truth).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub noise: OnOff,
    /// Make the twin take wall time: sleep this many seconds per simulated second of each run
    /// (0.001 runs a 9.8 h study in about 35 s), for demos and for interrupting a study.
    #[arg(long, default_value_t = 0.0, value_name = "F", value_parser = crate::bounds::sleep_factor())]
    pub twin_sleep: f64,
    /// Print no notes or progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Your inference program, run once per measured run: split like a shell would (no shell
    /// runs), with {model}, {batch} and {inferences} replaced. If it prints EDGETUNE_BEGIN and
    /// EDGETUNE_END lines, only the part between them is measured.
    #[arg(long, value_name = "COMMAND")]
    pub workload_cmd: Option<String>,
    /// Stop a run of --workload-cmd that takes longer than this many seconds.
    #[arg(long, default_value_t = 600.0, value_name = "S", value_parser = crate::bounds::positive_seconds())]
    pub workload_timeout: f64,
    /// Power polling interval of the board's sensors, ms.
    #[arg(long, default_value_t = 100, value_name = "MS", value_parser = crate::bounds::interval_ms())]
    pub poll_ms: u64,
    /// On a board, also tune the memory (EMC) clock through debugfs: rates from the board's
    /// search-spaces file within the limits debugfs reports.
    #[arg(long)]
    pub emc: bool,
    /// On a board, search nvpmodel power modes x batch sizes instead of pinned clocks: `all`
    /// (every mode /etc/nvpmodel.conf defines) or ids `0,3,4`; the mode found is put back.
    #[arg(long, value_name = "all|LIST")]
    pub power_modes: Option<String>,
    #[command(flatten)]
    pub board: BoardArgs,
    #[command(flatten)]
    pub torch: TorchArgs,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Search strategy: bayes (Gaussian-process Bayesian optimization), coordinate (coordinate
    /// descent), anneal (simulated annealing), random, grid.
    #[arg(long, short = 's', default_value = "bayes")]
    pub strategy: String,
    /// Acquisition function of bayes: ei (expected improvement) or lcb (lower confidence bound).
    #[arg(long, value_enum, default_value_t = AcquisitionArg::Ei)]
    pub acquisition: AcquisitionArg,
    /// Exploration weight of --acquisition lcb (mean minus kappa standard deviations).
    #[arg(long, default_value_t = 2.0, value_name = "K", value_parser = crate::bounds::positive(crate::bounds::MAX_LIMIT))]
    pub kappa: f64,
    /// bayes stops when the best expected improvement is below this fraction of the best energy
    /// three times in a row (0.002 = 0.2 %), once the readings make a rough board improbable
    /// (on a board that may be rough, when even a rough board's is below a tenth of it).
    #[arg(long, default_value_t = 0.002, value_name = "FRACTION", value_parser = crate::bounds::fraction())]
    pub ei_stop: f64,
    /// Most configurations to measure [default: 10 % of the grid; all of it with --strategy grid].
    #[arg(long, value_name = "N", value_parser = crate::bounds::budget())]
    pub budget: Option<usize>,
    /// Only these batch sizes, comma-separated (a subset of the model's; any sizes on a GPU).
    #[arg(long, value_name = "LIST")]
    pub batch_sizes: Option<String>,
    /// Fix a knob: cpu_freq_khz=1479000, gpu=614.4MHz, batch=8 (repeatable).
    #[arg(long, value_name = "KNOB=VALUE")]
    pub fix: Vec<String>,
    /// Batch size of the DVFS baseline [default: the model's smallest].
    #[arg(long, value_name = "B", value_parser = crate::bounds::batch())]
    pub baseline_batch: Option<u32>,
    /// Output folder [default: reports/<model>-<device>-<timestamp>/].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print report.json to stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Continue the study in this folder from its journal, without re-measuring; its options
    /// come from the journal (any given now replace those). With --storage: --resume alone.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub board_time: BoardTimeArgs,
    #[command(flatten)]
    pub goal: GoalArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum ObjectiveArg {
    /// Energy for the workload.
    Energy,
    /// Energy-delay product: energy per inference x time per inference.
    Edp,
    /// Time for the workload.
    Time,
}

/// How a search spends board time.
#[derive(Debug, Args)]
pub struct BoardTimeArgs {
    /// Measure every configuration the search asks for at the full protocol (--min-runs runs
    /// until the CV target), instead of racing: one run first, more only while it can still be
    /// the best.
    #[arg(long)]
    pub no_race: bool,
    /// Inferences per run while exploring (0: the full --inferences). The recommendation is
    /// always confirmed at the full protocol; nothing measured at this length is reported as a
    /// final figure.
    #[arg(long, value_name = "N", default_value_t = edgetune::app::DEFAULT_SCREEN_INFERENCES, value_parser = crate::bounds::int::<u32>(0, crate::bounds::MAX_INFERENCES))]
    pub screen_inferences: u32,
    /// What the search knows before it measures: `twin` (the catalogue twin's predictions; the
    /// default where the catalogue has the board and model), `none`, or the folder of an earlier
    /// tune (another model on this board, or this model on another board).
    #[arg(long, value_name = "twin|none|DIR")]
    pub prior: Option<String>,
}

/// What to minimise and under which limits.
#[derive(Debug, Args)]
pub struct GoalArgs {
    /// What to minimise.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::Energy)]
    pub objective: ObjectiveArg,
    /// Time of one batch must be at most this, ms.
    #[arg(long, value_name = "MS", value_parser = crate::bounds::limit())]
    pub max_latency_ms: Option<f64>,
    /// Inferences per second must be at least this.
    #[arg(long, value_name = "PER_S", value_parser = crate::bounds::limit())]
    pub min_throughput: Option<f64>,
    /// Time for the workload must be at most F times that of the DVFS baseline (at the baseline
    /// batch size): 1.2 allows 20 % slower.
    #[arg(long, value_name = "F", value_parser = crate::bounds::limit())]
    pub max_slowdown: Option<f64>,
    /// Average board power must be at most this, W.
    #[arg(long, value_name = "W", value_parser = crate::bounds::limit())]
    pub max_power_w: Option<f64>,
    /// Map the energy-latency Pareto front: report it, plot it, write pareto.csv (bayes spends
    /// its budget on the front, not one minimum).
    #[arg(long)]
    pub pareto: bool,
    /// Inferences arrive at this rate, per second (a camera's frame rate), and the board idles
    /// between them: energy counts that idle at each configuration's clocks (an idle window
    /// measured after its runs), and each batch must be done before the next is due.
    #[arg(long, value_name = "PER_S", value_parser = crate::bounds::limit())]
    pub rate: Option<f64>,
    /// With --rate: seconds of the idle window measured after each configuration's runs (a few
    /// refreshes of the board's power sensor).
    #[arg(long, value_name = "S", default_value_t = edgetune::measure::protocol::IDLE_WINDOW_S, requires = "rate", value_parser = crate::bounds::positive(edgetune::measure::protocol::MAX_MIN_WINDOW_S))]
    pub idle_window_s: f64,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Only this batch size.
    #[arg(long, value_name = "B", value_parser = crate::bounds::batch())]
    pub batch: Option<u32>,
    /// Only these batch sizes, comma-separated (on a board or a GPU any sizes; on the twin the
    /// model's).
    #[arg(long, value_name = "LIST", conflicts_with = "batch")]
    pub batch_sizes: Option<String>,
    /// Fix a knob: cpu_freq_khz=1479000, gpu=614.4MHz (repeatable): sweep a slice of the grid.
    #[arg(long, value_name = "KNOB=VALUE")]
    pub fix: Vec<String>,
    /// Output folder [default: reports/sweep-<model>-<device>-<timestamp>/].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print sweep.json to stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// CPU frequency: kHz as in sysfs (1479000) or with a unit (1479MHz); not on a GPU, whose
    /// CPU clock is not a knob.
    #[arg(long, value_name = "FREQ", required_unless_present = "gpu_freq")]
    pub cpu_freq: Option<String>,
    /// GPU frequency: Hz as in sysfs (921600000) or with a unit (921.6MHz); not on a host CPU.
    #[arg(long, value_name = "FREQ")]
    pub gpu_freq: Option<String>,
    /// Batch size (on a board or a GPU any size, 1 included; on the twin the model's).
    #[arg(long, short = 'b', value_name = "B", value_parser = crate::bounds::batch())]
    pub batch: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Batch sizes, comma-separated [default: all of the model's] (also `--batch-sizes`, as
    /// tune and sweep call it).
    #[arg(long, short = 'b', value_name = "LIST", visible_alias = "batch-sizes")]
    pub batch: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Strategies to compare, comma-separated.
    #[arg(long, default_value = "bayes,coordinate,anneal,random")]
    pub strategies: String,
    /// Models, comma-separated [default: all].
    #[arg(long)]
    pub models: Option<String>,
    /// Boards, comma-separated [default: all].
    #[arg(long)]
    pub devices: Option<String>,
    /// Seeds per model and board.
    #[arg(long, default_value_t = 20, value_parser = crate::bounds::repeats::<u64>())]
    pub seeds: u64,
    /// Measurements per study [default: --budget-fraction of each grid].
    #[arg(long, value_parser = crate::bounds::budget())]
    pub budget: Option<usize>,
    /// Budget as a fraction of each grid.
    #[arg(long, default_value_t = 0.1, value_parser = crate::bounds::positive_fraction())]
    pub budget_fraction: f64,
    /// Inferences per run.
    #[arg(long, default_value_t = 3200, value_parser = crate::bounds::inferences())]
    pub inferences: u32,
    /// Compare the strategies on recorded tables instead of the twin (repeatable; each table's
    /// mean energy per configuration is its ground truth); --models and --devices then name the
    /// tables in order.
    #[arg(long, value_name = "FILE.csv")]
    pub table: Vec<PathBuf>,
    /// Output folder [default: reports/bench/<timestamp>/].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print bench.json to stdout.
    #[arg(long)]
    pub json: bool,
    /// Measure each study on a perturbed twin (static power, dynamic power, GPU efficiency and
    /// memory traffic off by up to 20 %, voltage curves stretched by up to 15 %), judged against
    /// that board's own noiseless grid, while the prior stays the catalogue twin.
    #[arg(long)]
    pub mismatch: bool,
    /// Replay each study from a table generated from the twin: one reading per configuration
    /// with this relative noise on its energy (0.05 = 5 %), no DVFS rows; judged against the
    /// noiseless twin.
    #[arg(long, value_name = "F", value_parser = crate::bounds::fraction())]
    pub table_noise: Option<f64>,
    /// With --table-noise: the share of configurations the generated tables leave out (0.01 =
    /// 1 %), as failed runs leave holes in a real sweep.
    #[arg(long, value_name = "F", default_value_t = 0.0, requires = "table_noise", value_parser = crate::bounds::real(0.0, 0.5))]
    pub table_holes: f64,
    /// Make each study's board rough, as real boards are: a persistent, seeded structure per
    /// configuration (dips and bumps that stay when it is measured again), calibrated to real
    /// recorded tables; judged against that board's noiseless rough grid, while the prior stays
    /// the smooth catalogue twin. With --table-noise, the tables are single readings of it.
    #[arg(long)]
    pub rough: bool,
    #[command(flatten)]
    pub board_time: BoardTimeArgs,
    #[command(flatten)]
    pub goal: GoalArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
