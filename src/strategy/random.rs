//! Uniform random search without repeats, seeded.

use super::base::{History, Strategy, StrategyInit};
use crate::space::point_at;
use crate::space::Point;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random configurations, each at most once.
pub struct RandomSearch {
    dims: Vec<usize>,
    rng: ChaCha8Rng,
}

impl RandomSearch {
    /// Random search over `init.dims` seeded with `init.seed`.
    pub fn new(init: &StrategyInit) -> RandomSearch {
        RandomSearch {
            dims: init.dims.clone(),
            rng: ChaCha8Rng::seed_from_u64(init.seed),
        }
    }
}

impl Strategy for RandomSearch {
    fn name(&self) -> &'static str {
        "random"
    }
    fn ask(&mut self, history: &History) -> Option<Point> {
        let size: usize = self.dims.iter().product();
        if history.len() >= size {
            return None;
        }
        // Rejection sampling is fast while the space is mostly unmeasured; fall back to a scan.
        for _ in 0..64 {
            let p = point_at(&self.dims, self.rng.random_range(0..size));
            if !history.contains(&p) {
                return Some(p);
            }
        }
        let start = self.rng.random_range(0..size);
        (0..size)
            .map(|k| point_at(&self.dims, (start + k) % size))
            .find(|p| !history.contains(p))
    }
    fn stop_reason(&self) -> String {
        "every configuration was measured".into()
    }
}
