//! The bounds of every numeric command-line option, in one place: each numeric `#[arg]` in
//! `cli.rs` takes its value parser from here, so a value outside them (0 where a count is
//! needed, NaN, infinity, 1e308, 2^32) is refused by clap with exit code 2 before anything
//! runs, instead of overflowing, panicking or hanging somewhere deep in a run.
//! `tests/options.rs` walks clap's command definition and checks every numeric option of every
//! command against it.

use clap::builder::{RangedU64ValueParser, TypedValueParser};

/// Most inferences of one run (3200 is the paper's; a run of 10 million is days on a Nano).
pub const MAX_INFERENCES: u64 = 10_000_000;
/// Largest batch size.
pub const MAX_BATCH: u64 = 65_536;
/// Most workers of one `bench-fleet` study (each a thread with its own twin).
pub const MAX_WORKERS: usize = 256;
/// Most runs per configuration, most repeats, most seeds.
pub const MAX_REPEATS: u64 = 10_000;
/// Most measurements of one study (the largest grid in the catalogue is under 10 000).
pub const MAX_BUDGET: u64 = 1_000_000;
/// Longest time any one option may name, seconds: a week.
pub const MAX_SECONDS: f64 = 604_800.0;
/// Largest polling or refresh interval, ms.
pub const MAX_INTERVAL_MS: u64 = 60_000;
/// Largest limit value (ms, inferences per second, W, a slowdown factor).
pub const MAX_LIMIT: f64 = 1e9;
/// Widest board-to-board difference of static power, percent.
pub const MAX_PCT: f64 = 1_000.0;

/// An integer option in `lo..=hi`, of type `T`.
pub fn int<T>(lo: u64, hi: u64) -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    RangedU64ValueParser::<T>::new().range(lo..=hi)
}

/// Inferences of one run: 1 to [`MAX_INFERENCES`].
pub fn inferences() -> RangedU64ValueParser<u32> {
    int(1, MAX_INFERENCES)
}

/// A batch size: 1 to [`MAX_BATCH`].
pub fn batch() -> RangedU64ValueParser<u32> {
    int(1, MAX_BATCH)
}

/// A count of runs, repeats or seeds: 1 to [`MAX_REPEATS`].
pub fn repeats<T>() -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    int(1, MAX_REPEATS)
}

/// A study's budget: 1 to [`MAX_BUDGET`] measurements.
pub fn budget() -> RangedU64ValueParser<usize> {
    int(1, MAX_BUDGET)
}

/// An interval in ms: 1 to [`MAX_INTERVAL_MS`].
pub fn interval_ms() -> RangedU64ValueParser<u64> {
    int(1, MAX_INTERVAL_MS)
}

/// A finite real number in `lo..=hi` (`lo` itself excluded when `open_lo`).
fn real_in(lo: f64, hi: f64, open_lo: bool) -> impl TypedValueParser<Value = f64> {
    move |s: &str| -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number"))?;
        let above = if open_lo { v > lo } else { v >= lo };
        if v.is_finite() && above && v <= hi {
            Ok(v)
        } else if open_lo {
            Err(format!("must be above {lo} and at most {hi}, got {s}"))
        } else {
            Err(format!("must be between {lo} and {hi}, got {s}"))
        }
    }
}

/// A real number in `lo..=hi`.
pub fn real(lo: f64, hi: f64) -> impl TypedValueParser<Value = f64> {
    real_in(lo, hi, false)
}

/// A real number above 0 and at most `hi`.
pub fn positive(hi: f64) -> impl TypedValueParser<Value = f64> {
    real_in(0.0, hi, true)
}

/// A fraction in `0..=1` (0.05 = 5 %).
pub fn fraction() -> impl TypedValueParser<Value = f64> {
    real(0.0, 1.0)
}

/// A fraction above 0 and at most 1.
pub fn positive_fraction() -> impl TypedValueParser<Value = f64> {
    positive(1.0)
}

/// Seconds above 0, at most [`MAX_SECONDS`].
pub fn positive_seconds() -> impl TypedValueParser<Value = f64> {
    positive(MAX_SECONDS)
}

/// A limit (ms, W, inferences per second, a factor): above 0, at most [`MAX_LIMIT`].
pub fn limit() -> impl TypedValueParser<Value = f64> {
    positive(MAX_LIMIT)
}

/// A percentage difference of static power: -90 to [`MAX_PCT`].
pub fn pct() -> impl TypedValueParser<Value = f64> {
    real(-90.0, MAX_PCT)
}

/// A claim's lease, seconds: half a second to a day (its heartbeat beats every third of it).
pub fn lease() -> impl TypedValueParser<Value = f64> {
    real(0.5, edgetune::study::storage::MAX_LEASE_S)
}

/// Real seconds per twin second of the virtual Jetson: 1e-4 to 1000.
pub fn time_scale() -> impl TypedValueParser<Value = f64> {
    real(1e-4, 1e3)
}

/// Wall seconds slept per simulated second: 0 to 1.
pub fn sleep_factor() -> impl TypedValueParser<Value = f64> {
    real(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn parse(p: impl TypedValueParser<Value = f64>, s: &str) -> Option<f64> {
        Command::new("t")
            .arg(
                Arg::new("x")
                    .long("x")
                    .value_parser(p)
                    .allow_negative_numbers(true),
            )
            .try_get_matches_from(["t", "--x", s])
            .ok()
            .and_then(|m| m.get_one::<f64>("x").copied())
    }

    #[test]
    fn reals_are_finite_and_inside_their_bounds() {
        assert_eq!(parse(fraction(), "0.05"), Some(0.05));
        assert_eq!(parse(fraction(), "0"), Some(0.0));
        for bad in ["NaN", "inf", "-inf", "1e308", "-1", "1.5", "x"] {
            assert_eq!(parse(fraction(), bad), None, "{bad}");
        }
        assert_eq!(parse(positive(5.0), "0"), None);
        assert_eq!(parse(positive(5.0), "5"), Some(5.0));
        assert_eq!(parse(pct(), "-10"), Some(-10.0));
    }
}
