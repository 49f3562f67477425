//! Search strategies. A strategy is pure ask/tell: it proposes points of the space from what
//! has been measured and never touches hardware or files. The [`crate::study::Study`] measures
//! what it asks for and enforces the budget.

pub mod anneal;
mod base;
pub mod bayes;
pub mod coordinate;
pub mod gp;
pub mod grid;
pub mod random;

#[cfg(test)]
mod conformance;

pub use base::*;

/// Whether the strategy of that name pools neighbouring readings (see
/// [`Strategy::pools_readings`]); false for a name that is no strategy.
pub fn pools_readings(name: &str) -> bool {
    make(name, &StrategyInit::new(vec![1], 0, 1)).is_ok_and(|s| s.pools_readings())
}

/// Builds a strategy by name.
pub fn make(name: &str, init: &StrategyInit) -> Result<Box<dyn Strategy>, StrategyError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "grid" => Ok(Box::new(grid::Grid::new(init))),
        "random" => Ok(Box::new(random::RandomSearch::new(init))),
        "coordinate" | "cd" => Ok(Box::new(coordinate::Coordinate::new(init))),
        "bayes" | "bo" => Ok(Box::new(bayes::Bayes::new(init))),
        "anneal" | "sa" => Ok(Box::new(anneal::Anneal::new(init))),
        _ => Err(StrategyError(name.to_string())),
    }
}
