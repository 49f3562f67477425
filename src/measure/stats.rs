//! Small statistics used by the protocol and the benchmark.

/// Arithmetic mean (0 for an empty slice).
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

/// Sample standard deviation (n - 1); 0 for fewer than two values.
pub fn std_dev(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Coefficient of variation: sample standard deviation over mean.
pub fn cv(x: &[f64]) -> f64 {
    let m = mean(x);
    if m == 0.0 {
        0.0
    } else {
        std_dev(x) / m.abs()
    }
}

/// Percentile `q` in [0, 1] by linear interpolation between order statistics.
pub fn percentile(x: &[f64], q: f64) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let mut v = x.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Median.
pub fn median(x: &[f64]) -> f64 {
    percentile(x, 0.5)
}

/// Index of the smallest value (the first of equals); `None` when empty.
pub fn argmin(x: &[f64]) -> Option<usize> {
    x.iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// Whether a curve's minimum lies strictly inside it (a non-monotonic, U-shaped curve).
pub fn has_interior_min(x: &[f64]) -> bool {
    argmin(x).is_some_and(|i| i > 0 && i + 1 < x.len())
}

/// Largest over smallest value.
pub fn spread(x: &[f64]) -> f64 {
    x.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        / x.iter().cloned().fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_percentiles() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&x), 5.0);
        assert!((std_dev(&x) - 2.138089935).abs() < 1e-6);
        assert!((cv(&x) - 0.427617987).abs() < 1e-6);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.9), 4.6);
        assert_eq!(cv(&[3.0]), 0.0);
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(argmin(&[3.0, 1.0, 1.0, 2.0]), Some(1));
        assert!(has_interior_min(&[3.0, 1.0, 2.0]));
        assert!(!has_interior_min(&[1.0, 2.0, 3.0]) && !has_interior_min(&[3.0, 2.0, 1.0]));
        assert_eq!(spread(&[2.0, 4.0, 3.0]), 2.0);
    }
}
