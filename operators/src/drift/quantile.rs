//! Type-7 (numpy `linear`) quantiles of an already sorted slice.
//!
//! Guarantees: the result is bit-for-bit what `numpy.quantile(a, p)` returns
//! for finite, sorted input, because reference cuts decide bin membership and
//! a cut one ulp off would move a tied value into the neighbouring bin.

/// Type-7 quantile of `sorted` (ascending, finite) at probability `p`.
///
/// Returns `None` for an empty slice or a `p` outside `[0, 1]` (or NaN).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let last = sorted.len() - 1;
    // numpy: virtual index (n - 1) * p, neighbours floor and floor + 1,
    // clamped to the last element.
    let virtual_index = last as f64 * p;
    let below = virtual_index.floor();
    let lo = (below as usize).min(last);
    let hi = (lo + 1).min(last);
    let gamma = virtual_index - below;
    Some(lerp(sorted[lo], sorted[hi], gamma))
}

/// Quantiles at several probabilities; `None` if any single one is `None`.
pub fn quantiles_sorted(sorted: &[f64], probs: &[f64]) -> Option<Vec<f64>> {
    probs.iter().map(|&p| quantile_sorted(sorted, p)).collect()
}

/// numpy's `_lerp`: interpolating from the nearer end keeps the result
/// monotone in `t` and exact at both ends.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear_definition() {
        let a = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile_sorted(&a, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&a, 1.0), Some(8.0));
        // (n-1)p = 1.5 -> halfway between 2 and 4.
        assert_eq!(quantile_sorted(&a, 0.5), Some(3.0));
        // (n-1)p = 0.75 -> 1 + 0.75 * (2 - 1).
        assert_eq!(quantile_sorted(&a, 0.25), Some(1.75));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[1.0], 1.5), None);
        assert_eq!(quantile_sorted(&[1.0], f64::NAN), None);
        assert_eq!(quantile_sorted(&[7.0], 0.3), Some(7.0));
    }
}
