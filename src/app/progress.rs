//! Progress while a study measures: an indicatif bar on a terminal, a line every ten
//! measurements in a log, nothing with `--quiet` (`tune`); a line per configuration (`sweep` on
//! a device).

use crate::report::human_duration;
use crate::study::Event;
use std::cell::Cell;
use std::time::Instant;

/// `tune`'s progress.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    wall_s: Cell<f64>,
}

impl Progress {
    /// A bar on a terminal stderr, else lines; nothing when `quiet`.
    pub fn new(quiet: bool, budget: usize) -> Progress {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(budget as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} configurations  {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            quiet,
            wall_s: Cell::new(0.0),
        }
    }

    /// Shows one event of the study.
    pub fn event(&self, e: &Event<'_>) {
        match e {
            Event::Baseline(m) => {
                self.wall_s.set(self.wall_s.get() + m.wall_s);
                if let Some(b) = &self.bar {
                    b.set_message(format!("DVFS baseline {:.1} J", m.energy_j));
                }
            }
            Event::Measured {
                n,
                budget,
                measured,
                best,
                best_energy_j,
            } => {
                let m = &measured.measurement;
                self.wall_s.set(self.wall_s.get() + m.wall_s);
                // Device time left if every remaining configuration costs what they did so far.
                let left_s = self.wall_s.get() / (*n as f64 + 1.0) * (budget - n) as f64;
                let msg = format!(
                    "last {} ({} runs, CV {:.1} %); recommended {:.1} J; at most {} of device time left",
                    measured.config,
                    m.runs.len(),
                    m.cv * 100.0,
                    best_energy_j,
                    human_duration(left_s)
                );
                match &self.bar {
                    Some(b) => {
                        b.set_position(*n as u64);
                        b.set_message(msg);
                    }
                    None if !self.quiet && (n % 10 == 0 || n == budget) => {
                        eprintln!(
                            "  measured {n}/{budget}: recommended so far {:.1} J at {}",
                            best_energy_j, best.config
                        )
                    }
                    None => {}
                }
            }
            Event::Confirmed {
                measured,
                extra_wall_s,
            } => {
                self.wall_s.set(self.wall_s.get() + extra_wall_s);
                let m = &measured.measurement;
                let line = format!(
                    "  confirmed {} at the full protocol: {:.1} J ({} runs, CV {:.1} %)",
                    measured.config,
                    m.energy_j,
                    m.runs.len(),
                    m.cv * 100.0
                );
                match &self.bar {
                    Some(b) => b.println(line),
                    None if !self.quiet => eprintln!("{line}"),
                    None => {}
                }
            }
            Event::Failed { config, error } => {
                let first = error.lines().next().unwrap_or("");
                match &self.bar {
                    Some(b) => b.println(format!("  failed at {config}: {first}")),
                    None if !self.quiet => eprintln!("  failed at {config}: {first}"),
                    None => {}
                }
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// A line per configuration of a sweep on a device (`n/total: config: energy, time ...`).
pub struct SweepLog {
    quiet: bool,
    total: usize,
    tried: Cell<usize>,
    started: Instant,
}

impl SweepLog {
    /// For a sweep of `total` configurations.
    pub fn new(quiet: bool, total: usize) -> SweepLog {
        SweepLog {
            quiet,
            total,
            tried: Cell::new(0),
            started: Instant::now(),
        }
    }

    /// Shows one event of the sweep's study (failures even with `quiet`).
    pub fn event(&self, e: &Event<'_>) {
        let (i, n) = (self.tried.get() + 1, self.total);
        match e {
            Event::Baseline(_) | Event::Confirmed { .. } => {}
            Event::Measured { measured, .. } => {
                self.tried.set(i);
                let (cfg, m) = (&measured.config, &measured.measurement);
                if !self.quiet {
                    eprintln!(
                        "  {i}/{n}: {cfg}: {:.2} J, {:.3} s per {} inferences (CV {:.1} %, {} runs{}) [{:.0} s]",
                        m.energy_j,
                        m.time_s,
                        m.inferences,
                        100.0 * m.cv,
                        m.runs.len(),
                        if m.window_repeats > 1 {
                            format!(", {}x per window", m.window_repeats)
                        } else {
                            String::new()
                        },
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
            Event::Failed { config, error } => {
                self.tried.set(i);
                eprintln!("  {i}/{n}: {config}: failed, skipped: {error}");
            }
        }
    }
}
