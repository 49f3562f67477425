//! Exhaustive search in grid order (what the paper did), skipping what was measured.

use super::base::{History, Strategy, StrategyInit};
use crate::space::point_at;
use crate::space::Point;

/// Every configuration in flat-index order.
pub struct Grid {
    dims: Vec<usize>,
    next: usize,
}

impl Grid {
    /// A grid over `init.dims`.
    pub fn new(init: &StrategyInit) -> Grid {
        Grid {
            dims: init.dims.clone(),
            next: 0,
        }
    }
}

impl Strategy for Grid {
    fn name(&self) -> &'static str {
        "grid"
    }
    fn ask(&mut self, history: &History) -> Option<Point> {
        let size: usize = self.dims.iter().product();
        while self.next < size {
            let p = point_at(&self.dims, self.next);
            self.next += 1;
            if !history.contains(&p) {
                return Some(p);
            }
        }
        None
    }
    fn stop_reason(&self) -> String {
        "the whole grid was measured".into()
    }
}
