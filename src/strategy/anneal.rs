//! Simulated annealing on the grid through argmin's `SimulatedAnnealing` solver, as a baseline.
//!
//! argmin's executor calls the cost function itself, so the solver runs on its own thread and
//! its cost function hands each point out through a channel and waits for the value: `ask`
//! returns the point, the next `ask` (after the study measured it) sends the value back. The
//! exchange is strictly sequential, so a seed gives the same sequence every time. Points the
//! solver revisits are answered from the history without measuring again.

use super::base::{History, Strategy, StrategyInit};
use crate::space::Point;
use argmin::core::{CostFunction, Error, Executor};
use argmin::solver::simulatedannealing::{Anneal as ArgminAnneal, SimulatedAnnealing};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

/// Initial temperature, in log-energy units (a 10 % worse point is accepted with probability
/// about 1/e at the start).
const T0: f64 = 0.1;
/// Consecutive revisits of measured points after which annealing is taken to have converged.
const MAX_REVISITS: usize = 500;

struct GridProblem {
    dims: Vec<usize>,
    rng: Mutex<ChaCha8Rng>,
    to_strategy: Sender<Point>,
    from_strategy: Mutex<Receiver<f64>>,
}

impl CostFunction for GridProblem {
    type Param = Point;
    type Output = f64;
    fn cost(&self, p: &Point) -> Result<f64, Error> {
        self.to_strategy
            .send(p.clone())
            .map_err(|_| Error::msg("strategy dropped"))?;
        self.from_strategy
            .lock()
            .map_err(|_| Error::msg("poisoned"))?
            .recv()
            .map_err(|_| Error::msg("strategy dropped"))
    }
}

impl ArgminAnneal for GridProblem {
    type Param = Point;
    type Output = Point;
    type Float = f64;
    /// A neighbour: one axis that varies moves by up to a span that shrinks with the temperature.
    fn anneal(&self, p: &Point, temp: f64) -> Result<Point, Error> {
        let mut rng = self.rng.lock().map_err(|_| Error::msg("poisoned"))?;
        let active: Vec<usize> = (0..self.dims.len()).filter(|a| self.dims[*a] > 1).collect();
        let mut q = p.clone();
        if active.is_empty() {
            return Ok(q);
        }
        let a = active[rng.random_range(0..active.len())];
        let n = self.dims[a] as i64;
        let span = (1.0 + (temp / T0).min(1.0) * (n as f64 - 1.0) / 2.0).round() as i64;
        let step = rng.random_range(1..=span.max(1)) * if rng.random::<bool>() { 1 } else { -1 };
        q[a] = (q[a] as i64 + step).clamp(0, n - 1) as usize;
        Ok(q)
    }
}

/// The annealing strategy.
pub struct Anneal {
    points: Option<Receiver<Point>>,
    values: Option<Sender<f64>>,
    pending: Option<Point>,
    handle: Option<JoinHandle<()>>,
    stopped: Option<String>,
}

impl Anneal {
    /// Annealing over `init.dims` from a seeded random start.
    pub fn new(init: &StrategyInit) -> Anneal {
        let (to_strategy, points) = channel();
        let (values, from_strategy) = channel();
        let mut rng = ChaCha8Rng::seed_from_u64(init.seed);
        let start: Point = init.dims.iter().map(|d| rng.random_range(0..*d)).collect();
        let problem = GridProblem {
            dims: init.dims.clone(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(init.seed ^ 0x5EED)),
            to_strategy,
            from_strategy: Mutex::new(from_strategy),
        };
        let seed = init.seed;
        let handle = std::thread::spawn(move || {
            let Ok(solver) = SimulatedAnnealing::new_with_rng(T0, ChaCha8Rng::seed_from_u64(seed))
            else {
                return;
            };
            // Ends when the strategy is dropped (the cost function then fails) or at max_iters.
            let _ = Executor::new(problem, solver)
                .configure(|s| s.param(start).max_iters(1_000_000))
                .run();
        });
        Anneal {
            points: Some(points),
            values: Some(values),
            pending: None,
            handle: Some(handle),
            stopped: None,
        }
    }
}

impl Strategy for Anneal {
    fn name(&self) -> &'static str {
        "anneal"
    }

    fn ask(&mut self, h: &History) -> Option<Point> {
        if self.stopped.is_some() {
            return None;
        }
        let (points, values) = (self.points.as_ref()?, self.values.as_ref()?);
        if let Some(p) = self.pending.take() {
            let v = h.get(&p)?.value.ln();
            values.send(v).ok()?;
        }
        let mut revisits = 0;
        loop {
            let Ok(p) = points.recv() else {
                self.stopped = Some("the annealing schedule ended".into());
                return None;
            };
            match h.get(&p) {
                Some(o) => {
                    revisits += 1;
                    if revisits > MAX_REVISITS {
                        self.stopped = Some(format!(
                            "annealing proposed only measured configurations {MAX_REVISITS} times in a row"
                        ));
                        return None;
                    }
                    values.send(o.value.ln()).ok()?;
                }
                None => {
                    self.pending = Some(p.clone());
                    return Some(p);
                }
            }
        }
    }

    fn stop_reason(&self) -> String {
        self.stopped
            .clone()
            .unwrap_or_else(|| "the strategy had nothing more to try".into())
    }
}

impl Drop for Anneal {
    fn drop(&mut self) {
        // Closing both channels makes the solver's cost function fail, which ends its thread.
        self.values.take();
        self.points.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
