//! The command line's values into the library's option structs: what each subcommand's
//! arguments (defined in `cli.rs`) mean for `app/`.

use crate::cli::*;
use edgetune::app::board::BoardOptions;
use edgetune::app::emulate::EmulateOptions;
use edgetune::app::measure::MeasureOptions;
use edgetune::app::sweep::SweepOptions;
use edgetune::app::torch::{InferOptions, TorchBenchOptions, TorchOptions};
use edgetune::app::tune::{StoredStudy, TuneOptions};
use edgetune::app::Common;
use edgetune::bench::BenchOptions;
use edgetune::error::UsageError;
use edgetune::measure::ProtocolSettings;
use edgetune::objective::{Goal, Limits, Objective};
use edgetune::space::{self, Knob, SpaceError};
use edgetune::strategy::bayes::Acquisition;
use edgetune::strategy::StrategyOptions;
use std::path::PathBuf;

impl BenchFleetArgs {
    pub fn to_options(&self) -> anyhow::Result<edgetune::fleet_bench::FleetBenchOptions> {
        let workers = list(&Some(self.workers.clone()))
            .iter()
            .map(|w| {
                w.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=crate::bounds::MAX_WORKERS).contains(n))
                    .ok_or_else(|| {
                        UsageError(format!(
                            "--workers takes counts from 1 to {} like 1,4; `{w}` is not one",
                            crate::bounds::MAX_WORKERS
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prior = match self.board_time.prior() {
            edgetune::app::PriorChoice::Auto | edgetune::app::PriorChoice::Twin => true,
            edgetune::app::PriorChoice::None => false,
            edgetune::app::PriorChoice::Dir(_) | edgetune::app::PriorChoice::Stored(_) => {
                return Err(UsageError(
                    "bench-fleet takes --prior twin or none: its boards are the catalogue's twin"
                        .into(),
                )
                .into())
            }
        };
        Ok(edgetune::fleet_bench::FleetBenchOptions {
            model: self.model.clone(),
            device: self.device.clone(),
            workers,
            seeds: self.seeds,
            budget: self.budget,
            strategy: self.strategy.trim().to_ascii_lowercase(),
            twin_sleep: self.twin_sleep,
            static_power_pct: self.static_power_pct,
            storage: self.storage.clone(),
            protocol: ProtocolSettings::default(),
            exploration: self.board_time.exploration().for_study(
                &Goal::default(),
                false,
                false,
                edgetune::strategy::pools_readings(&self.strategy),
            ),
            lease_s: self.lease_s,
            prior,
        })
    }
}

impl TorchArgs {
    fn to_options(&self) -> TorchOptions {
        TorchOptions {
            device: self.torch_device.clone(),
            torchscript: self.torchscript.clone(),
            input_shape: self.input_shape.clone(),
        }
    }
}

impl InferArgs {
    pub fn to_options(&self) -> InferOptions {
        InferOptions {
            model: self.model.clone(),
            batch: self.batch,
            inferences: self.inferences,
            torch: self.torch.to_options(),
            json: self.json,
            save_torchscript: self.save_torchscript.clone(),
        }
    }
}

impl BenchTorchArgs {
    pub fn to_options(&self) -> Result<TorchBenchOptions, SpaceError> {
        Ok(TorchBenchOptions {
            models: list(&Some(self.models.clone())),
            batch_sizes: space::parse_batch_list(&self.batch_sizes)?
                .into_iter()
                .map(|b| b as u32)
                .collect(),
            inferences: self.inferences,
            repeats: self.repeats,
            device: self.torch_device.clone(),
            python: self.python.clone(),
        })
    }
}

impl EmulateArgs {
    pub fn to_options(&self) -> EmulateOptions {
        EmulateOptions {
            board: self.board.clone(),
            root: self.root.clone(),
            sensor_refresh_ms: self.sensor_refresh_ms,
            time_scale: self.time_scale,
            quiet: self.quiet,
        }
    }
}

impl BoardArgs {
    fn to_options(&self, poll_ms: u64) -> BoardOptions {
        BoardOptions {
            sysfs_root: self
                .sysfs_root
                .clone()
                .unwrap_or_else(|| PathBuf::from("/")),
            state_file: self.state_file.clone(),
            poll_ms,
            emc: false,
            force: false,
            power_modes: None,
            nvpmodel: self.nvpmodel.clone(),
        }
    }
}

impl DevicesArgs {
    pub fn options(&self) -> (BoardOptions, bool) {
        (self.board.to_options(0), self.board.sysfs_root.is_some())
    }
}

impl RestoreArgs {
    pub fn options(&self) -> BoardOptions {
        BoardOptions {
            force: self.force,
            ..self.board.to_options(0)
        }
    }
}

impl ApplyArgs {
    pub fn options(&self) -> BoardOptions {
        self.board.to_options(0)
    }
}

impl BoardTimeArgs {
    fn exploration(&self) -> edgetune::study::Exploration {
        edgetune::study::Exploration {
            race: !self.no_race,
            screen_inferences: (self.screen_inferences > 0).then_some(self.screen_inferences),
        }
    }
    fn prior(&self) -> edgetune::app::PriorChoice {
        edgetune::app::PriorChoice::parse(self.prior.as_deref())
    }
}

impl GoalArgs {
    pub fn to_goal(&self) -> Goal {
        Goal {
            objective: match self.objective {
                ObjectiveArg::Energy => Objective::Energy,
                ObjectiveArg::Edp => Objective::Edp,
                ObjectiveArg::Time => Objective::Time,
            },
            limits: Limits {
                max_latency_ms: self.max_latency_ms,
                min_throughput: self.min_throughput,
                max_slowdown: self.max_slowdown,
                max_power_w: self.max_power_w,
            },
            pareto: self.pareto,
            rate_hz: self.rate,
        }
    }
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

impl CommonArgs {
    pub fn to_common(&self, catalog: &Option<PathBuf>) -> Common {
        Common {
            catalog_dir: catalog.clone(),
            model: self.model.clone(),
            device: self.device.clone(),
            backend: self.backend.0,
            protocol: ProtocolSettings {
                inferences: self.inferences,
                warmup_inferences: self.warmup,
                cv_target: self.cv_target,
                min_runs: self.min_runs,
                max_runs: self.max_runs,
                min_window_s: self.min_window_s.unwrap_or(0.0),
                idle_window_s: 0.0,
            },
            seed: self.seed,
            noise: self.noise == OnOff::On,
            twin_sleep: self.twin_sleep,
            noise_salt: 0,
            twin_static_power_pct: 0.0,
            twin_first_run_pct: 0.0,
            quiet: self.quiet,
            table: self.table.clone(),
            board: BoardOptions {
                emc: self.emc,
                power_modes: self.power_modes.clone(),
                ..self.board.to_options(self.poll_ms)
            },
            workload_cmd: self.workload_cmd.clone(),
            workload_timeout_s: self.workload_timeout,
            torch: self.torch.to_options(),
            allow_clock_control: self.allow_clock_control,
            min_window_s: self.min_window_s,
        }
    }
}

impl TuneArgs {
    /// The options; `args` are the study's arguments, recorded in its journal.
    pub fn to_options(
        &self,
        catalog: &Option<PathBuf>,
        args: Vec<String>,
    ) -> anyhow::Result<TuneOptions> {
        let mut common = self.common.to_common(catalog);
        if self.goal.rate.is_some() {
            common.protocol.idle_window_s = self.goal.idle_window_s;
        }
        Ok(TuneOptions {
            common,
            args,
            strategy: self.strategy.clone(),
            strategy_options: StrategyOptions {
                acquisition: match self.acquisition {
                    AcquisitionArg::Ei => Acquisition::Ei,
                    AcquisitionArg::Lcb => Acquisition::Lcb { kappa: self.kappa },
                },
                ei_stop: self.ei_stop,
                pareto: self.goal.pareto,
            },
            budget: self.budget,
            batch_sizes: self
                .batch_sizes
                .as_deref()
                .map(space::parse_batch_list)
                .transpose()?,
            fixes: self
                .fix
                .iter()
                .map(|f| space::parse_fix(f))
                .collect::<Result<_, _>>()?,
            baseline_batch: self.baseline_batch,
            out: self.out.clone(),
            json: self.json,
            resume: self
                .resume
                .clone()
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            goal: self.goal.to_goal(),
            exploration: self.board_time.exploration(),
            prior: self.board_time.prior(),
            storage: self.stored()?,
        })
    }

    /// `--storage`/`--study` with `--resume`, checked against each other.
    fn stored(&self) -> Result<Option<StoredStudy>, UsageError> {
        let resume = self.resume.as_ref();
        match (&self.storage.storage, &self.storage.study) {
            (Some(url), Some(name)) => {
                if resume.is_some_and(|d| !d.is_empty()) {
                    return Err(UsageError("with --storage, --resume takes no folder: the study is --study in --storage".into()));
                }
                Ok(Some(StoredStudy {
                    url: url.clone(),
                    name: name.clone(),
                    resume: resume.is_some(),
                }))
            }
            _ => match resume {
                Some(d) if d.is_empty() => Err(UsageError(
                    "--resume needs the folder of an earlier tune (or --storage URL --study NAME)"
                        .into(),
                )),
                Some(_) if self.out.is_some() => Err(UsageError(
                    "--resume DIR continues the study in DIR and writes there; leave out --out"
                        .into(),
                )),
                _ => Ok(None),
            },
        }
    }
}

impl SweepArgs {
    pub fn to_options(&self, catalog: &Option<PathBuf>) -> Result<SweepOptions, SpaceError> {
        Ok(SweepOptions {
            common: self.common.to_common(catalog),
            batch: self.batch,
            batch_sizes: self
                .batch_sizes
                .as_deref()
                .map(space::parse_batch_list)
                .transpose()?,
            fixes: self
                .fix
                .iter()
                .map(|f| space::parse_fix(f))
                .collect::<Result<_, _>>()?,
            out: self.out.clone(),
            json: self.json,
        })
    }
}

impl MeasureArgs {
    pub fn to_options(&self, catalog: &Option<PathBuf>) -> Result<MeasureOptions, SpaceError> {
        Ok(MeasureOptions {
            common: self.common.to_common(catalog),
            cpu_freq_khz: self
                .cpu_freq
                .as_deref()
                .map(|f| Knob::CpuFreqKhz.parse_value(f))
                .transpose()?,
            gpu_freq_hz: self
                .gpu_freq
                .as_deref()
                .map(|f| Knob::GpuFreqHz.parse_value(f))
                .transpose()?,
            batches: vec![self.batch],
            json: self.json,
        })
    }
}

impl BaselineArgs {
    pub fn to_options(&self, catalog: &Option<PathBuf>) -> Result<MeasureOptions, SpaceError> {
        let batches = match &self.batch {
            Some(b) => space::parse_batch_list(b)?
                .into_iter()
                .map(|b| b as u32)
                .collect(),
            None => vec![],
        };
        Ok(MeasureOptions {
            common: self.common.to_common(catalog),
            cpu_freq_khz: None,
            gpu_freq_hz: None,
            batches,
            json: self.json,
        })
    }
}

impl BenchArgs {
    pub fn to_options(&self) -> BenchOptions {
        BenchOptions {
            strategies: list(&Some(self.strategies.clone())),
            models: list(&self.models),
            devices: list(&self.devices),
            seeds: self.seeds,
            budget: self.budget,
            budget_fraction: self.budget_fraction,
            protocol: ProtocolSettings {
                inferences: self.inferences,
                ..ProtocolSettings::default()
            },
            tables: self.table.clone(),
            goal: self.goal.to_goal(),
            exploration: self.board_time.exploration(),
            prior: !matches!(self.board_time.prior(), edgetune::app::PriorChoice::None),
            prior_dir: match self.board_time.prior() {
                edgetune::app::PriorChoice::Dir(d) => Some(d),
                _ => None,
            },
            mismatch: self.mismatch,
            table_noise: self.table_noise,
            table_holes: self.table_holes,
            rough: self.rough,
        }
    }
}

impl WorkerArgs {
    /// The worker's options; `args` are the study's (unused: a worker records nothing).
    pub fn to_options(
        &self,
        catalog: &Option<PathBuf>,
    ) -> anyhow::Result<edgetune::app::worker::WorkerOptions> {
        let mut tune = self.tune.to_options(catalog, Vec::new())?;
        tune.common.twin_static_power_pct = self.twin_static_power_pct;
        tune.common.twin_first_run_pct = self.twin_first_run_pct;
        Ok(edgetune::app::worker::WorkerOptions {
            tune,
            board_id: self.board_id.clone(),
            lease_s: self.lease_s,
        })
    }
}
