//! Power polling for sensors that report instantaneous power (the INA3221 rails of a Jetson): a
//! thread samples a [`PowerSource`] every `interval` with monotonic timestamps, and the trace is
//! integrated by the trapezoid rule.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default polling interval: the paper's 100 ms (overhead under 0.5 %; 10 ms or 1 ms cost over 2 %).
pub const DEFAULT_POLL_MS: u64 = 100;

/// Something that reports the board's power now.
pub trait PowerSource: Send + 'static {
    /// Current power, mW.
    fn read_power_mw(&mut self) -> Result<f64, String>;
    /// Current power, mW, and the power of each rail behind it (empty when the source has no
    /// rails); the poller integrates each rail as it does the total.
    fn read_rails_mw(&mut self) -> Result<(f64, Vec<f64>), String> {
        Ok((self.read_power_mw()?, Vec::new()))
    }
}

impl<F: FnMut() -> Result<f64, String> + Send + 'static> PowerSource for F {
    fn read_power_mw(&mut self) -> Result<f64, String> {
        self()
    }
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the poller started (monotonic clock).
    pub t_s: f64,
    /// Power, mW.
    pub power_mw: f64,
}

/// What a poller collected.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerTrace {
    /// Samples in time order.
    pub samples: Vec<Sample>,
    /// Trapezoid-rule energy over the samples.
    pub energy_j: f64,
    /// Time from first to last sample.
    pub time_s: f64,
    /// The first read error, if any (sampling stops at the first error).
    pub error: Option<String>,
    /// Longest stretch, in seconds, over which consecutive samples repeated the same value.
    pub longest_repeat_s: f64,
    /// Trapezoid-rule energy of each rail the source reports, in the source's order.
    pub rail_energy_j: Vec<f64>,
}

/// Energy in joules of a trace of mW samples by the trapezoid rule.
pub fn trapezoid_energy_j(samples: &[Sample]) -> f64 {
    samples
        .windows(2)
        .map(|w| (w[1].t_s - w[0].t_s) * (w[0].power_mw + w[1].power_mw) / 2.0)
        .sum::<f64>()
        / 1000.0
}

fn longest_repeat_s(samples: &[Sample]) -> f64 {
    let (mut best, mut start) = (0.0f64, 0usize);
    for i in 1..samples.len() {
        if samples[i].power_mw != samples[start].power_mw {
            start = i;
        }
        best = best.max(samples[i].t_s - samples[start].t_s);
    }
    best
}

/// A sample of the total with the rails behind it.
type RailSample = (Sample, Vec<f64>);

/// A running poller thread.
pub struct Poller {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<RailSample>>>,
    error: Arc<Mutex<Option<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl Poller {
    /// Starts sampling `source` every `interval` (the first sample is taken at once).
    pub fn start(mut source: impl PowerSource, interval: Duration) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let error = Arc::new(Mutex::new(None));
        let start = Instant::now();
        let (s2, v2, e2) = (stop.clone(), samples.clone(), error.clone());
        let handle = std::thread::spawn(move || {
            let mut next = start;
            loop {
                let read = source.read_rails_mw();
                let t_s = start.elapsed().as_secs_f64();
                match read {
                    Ok((p, rails)) if p.is_finite() => v2
                        .lock()
                        .unwrap()
                        .push((Sample { t_s, power_mw: p }, rails)),
                    Ok((p, _)) => {
                        *e2.lock().unwrap() = Some(format!("sensor returned {p}"));
                        return;
                    }
                    Err(e) => {
                        *e2.lock().unwrap() = Some(e);
                        return;
                    }
                }
                // Stopped already (a window shorter than one tick): go straight to the last
                // sample, so every trace has at least two.
                let stopped_early = s2.load(Ordering::Acquire);
                // Sleep to the next tick on the schedule, so polling does not drift.
                next += interval;
                let now = Instant::now();
                if !stopped_early {
                    if next > now {
                        std::thread::park_timeout(next - now);
                    } else {
                        next = now;
                    }
                }
                if s2.load(Ordering::Acquire) {
                    // One last sample at the stop time closes the window.
                    if let Ok((p, rails)) = source.read_rails_mw() {
                        let t_s = start.elapsed().as_secs_f64();
                        v2.lock()
                            .unwrap()
                            .push((Sample { t_s, power_mw: p }, rails));
                    }
                    return;
                }
            }
        });
        Poller {
            stop,
            samples,
            error,
            handle: Some(handle),
        }
    }

    /// Stops the thread and returns the trace.
    pub fn stop(mut self) -> PowerTrace {
        self.finish()
    }

    fn finish(&mut self) -> PowerTrace {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        let both = std::mem::take(&mut *self.samples.lock().unwrap());
        let n_rails = both.iter().map(|(_, r)| r.len()).min().unwrap_or(0);
        let rail_energy_j = (0..n_rails)
            .map(|k| {
                let s: Vec<Sample> = both
                    .iter()
                    .map(|(s, r)| Sample {
                        t_s: s.t_s,
                        power_mw: r[k],
                    })
                    .collect();
                trapezoid_energy_j(&s)
            })
            .collect();
        let samples: Vec<Sample> = both.into_iter().map(|(s, _)| s).collect();
        let time_s = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => b.t_s - a.t_s,
            _ => 0.0,
        };
        PowerTrace {
            energy_j: trapezoid_energy_j(&samples),
            longest_repeat_s: longest_repeat_s(&samples),
            rail_energy_j,
            time_s,
            samples,
            error: self.error.lock().unwrap().take(),
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_rule_is_exact_for_linear_power() {
        // Power ramps 1000 -> 3000 mW over 2 s: 4 J.
        let s: Vec<Sample> = (0..=20)
            .map(|i| Sample {
                t_s: i as f64 * 0.1,
                power_mw: 1000.0 + 1000.0 * i as f64 * 0.1,
            })
            .collect();
        assert!((trapezoid_energy_j(&s) - 4.0).abs() < 1e-9);
        assert_eq!(trapezoid_energy_j(&s[..1]), 0.0);
    }

    #[test]
    fn poller_thread_integrates_a_synthetic_source() {
        // A synthetic 5 W source whose value is a function of real time.
        let t0 = Instant::now();
        let src = move || Ok(5000.0 + 0.0 * t0.elapsed().as_secs_f64());
        let p = Poller::start(src, Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(300));
        let trace = p.stop();
        assert!(trace.error.is_none());
        assert!(trace.samples.len() >= 10, "{}", trace.samples.len());
        assert!(trace.samples.windows(2).all(|w| w[1].t_s >= w[0].t_s));
        // Energy is 5 W times the sampled span.
        assert!((trace.energy_j - 5.0 * trace.time_s).abs() < 1e-9);
        assert!(
            trace.time_s > 0.25 && trace.time_s < 1.0,
            "{}",
            trace.time_s
        );
        // A constant source repeats its value for the whole span.
        assert!((trace.longest_repeat_s - trace.time_s).abs() < 1e-9);
    }

    #[test]
    fn a_failing_sensor_stops_sampling_and_reports_why() {
        let mut n = 0;
        let src = move || {
            n += 1;
            if n > 3 {
                Err("in_power0_input: No such device".to_string())
            } else {
                Ok(1000.0 * n as f64)
            }
        };
        let p = Poller::start(src, Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(100));
        let trace = p.stop();
        assert_eq!(trace.samples.len(), 3);
        assert!(trace.error.unwrap().contains("No such device"));
        assert!(trace.longest_repeat_s == 0.0);
    }

    #[test]
    fn a_window_shorter_than_a_tick_still_has_two_samples() {
        for _ in 0..50 {
            let p = Poller::start(|| Ok(3000.0), Duration::from_secs(10));
            let trace = p.stop();
            assert!(trace.samples.len() >= 2, "{}", trace.samples.len());
            assert!(trace.error.is_none());
        }
    }
}
