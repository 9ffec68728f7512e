//! AugLocal's pyramidal depth schedule (method doc, section 4).

/// Python 3's `round` on an f64: round half to even.
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// Aux depth `d_l` of each isolation point `l = 0 .. num_modules - 2`.
///
/// With coefficient `c`: `d_l = max(1, round_half_even(d (1 - l c / (L - 2)) + l c / (L - 2)))`,
/// evaluated in the reference's order so that ties fall on the same bits. Without the pyramid,
/// every `d_l = d`. With `L = 2` there is one isolation point, `l = 0`, whose depth is `d`.
pub fn depth_schedule(max_depth: usize, pyramid: Option<f64>, num_modules: usize) -> Vec<usize> {
    let points = num_modules.saturating_sub(1);
    let Some(c) = pyramid else {
        return vec![max_depth; points];
    };
    let d = max_depth as f64;
    (0..points)
        .map(|l| {
            let ratio = if num_modules > 2 {
                (l as f64 * c) / (num_modules - 2) as f64
            } else {
                0.0
            };
            let depth = round_half_even(d * (1.0 - ratio) + ratio * 1.0);
            (depth as usize).max(1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_ties_to_even_like_python() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(8.5), 8.0);
        assert_eq!(round_half_even(2.51), 3.0);
    }

    #[test]
    fn resnet32_d5_pyramid_starts_5_5_5_4_4_4_4_3() {
        // ResNet-32, K = 16, d = 5: L = K - d = 11 modules, 10 isolation points.
        let depths = depth_schedule(5, Some(0.5), 11);
        assert_eq!(depths.len(), 10);
        assert_eq!(depths[..8], [5, 5, 5, 4, 4, 4, 4, 3]);
    }

    #[test]
    fn depth_falls_to_about_d_minus_c_times_d_minus_1() {
        // ResNet-110, K = 55, d = 3: L = 52; last isolation point l = 50 gets round(2.0) = 2.
        let depths = depth_schedule(3, Some(0.5), 52);
        assert_eq!(depths.first(), Some(&3));
        assert_eq!(depths.last(), Some(&2));
        assert!(depths.windows(2).all(|w| w[0] >= w[1]), "{depths:?}");
    }

    #[test]
    fn constant_without_pyramid_and_at_least_one() {
        assert_eq!(depth_schedule(4, None, 5), vec![4; 4]);
        // c = 1, d = 1: stays 1; two modules: a single point at depth d.
        assert_eq!(depth_schedule(1, Some(1.0), 6), vec![1; 5]);
        assert_eq!(depth_schedule(3, Some(0.5), 2), vec![3]);
    }
}
