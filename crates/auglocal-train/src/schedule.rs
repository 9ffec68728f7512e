//! Learning-rate schedules: the reference's cosine with linear warm-up, or constant.

use serde::{Deserialize, Serialize};

/// Warm-up epochs of every published run (400 epochs long).
pub const WARMUP_EPOCHS: usize = 10;

/// Warm-up epochs when none are given: the reference's share of its run (10 of 400 epochs),
/// at most [`WARMUP_EPOCHS`]; 0 for runs under 40 epochs.
pub fn scaled_warmup(epochs: usize) -> usize {
    (epochs / 40).min(WARMUP_EPOCHS)
}

/// How the learning rate moves from epoch to epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The reference: cosine over the run after `warmup` epochs of linear warm-up from 0.01.
    Cosine {
        /// Warm-up epochs (10 in the reference); `None` (JSON `null`) scales them to the run
        /// ([`scaled_warmup`]).
        #[serde(default)]
        warmup: Option<usize>,
    },
    /// The base rate every epoch (short runs, where cosine and warm-up leave little room).
    Constant,
}

impl Schedule {
    /// The reference's schedule.
    pub const REFERENCE: Schedule = Schedule::Cosine {
        warmup: Some(WARMUP_EPOCHS),
    };

    /// Cosine with warm-up scaled to the run's length (the default).
    pub const SCALED: Schedule = Schedule::Cosine { warmup: None };

    /// Warm-up epochs in a run of `epochs` epochs (0 for the constant schedule).
    pub fn warmup_epochs(&self, epochs: usize) -> usize {
        match *self {
            Schedule::Cosine { warmup } => warmup.unwrap_or_else(|| scaled_warmup(epochs)),
            Schedule::Constant => 0,
        }
    }

    /// Learning rate of epoch `epoch` (from 1) of `epochs` with base rate `lr0`. With `W`
    /// warm-up epochs (the reference's formula at `W = 10`):
    /// - `e <= W`: `0.5 lr0 (1 + cos(pi e / E)) (e - 1) / W + 0.01 (W + 1 - e) / W`;
    /// - `e > W`: `0.5 lr0 (1 + cos(pi e / E))`.
    pub fn lr(&self, lr0: f64, epoch: usize, epochs: usize) -> f64 {
        if *self == Schedule::Constant {
            return lr0;
        }
        let warmup = self.warmup_epochs(epochs);
        let e = epoch as f64;
        let cosine = 0.5 * lr0 * (1.0 + (std::f64::consts::PI * e / epochs as f64).cos());
        if epoch <= warmup {
            let w = warmup as f64;
            cosine * (e - 1.0) / w + 0.01 * (w + 1.0 - e) / w
        } else {
            cosine
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    /// `cosine` (its warm-up scaled to the run, [`Schedule::SCALED`]) or `constant`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cosine" => Ok(Schedule::SCALED),
            "constant" => Ok(Schedule::Constant),
            _ => Err(format!("expected cosine or constant, got '{s}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_formula() {
        // Python: lr0, E = 0.8, 400
        //   [0.5*lr0*(1+math.cos(math.pi*e/E))*(e-1)/10 + 0.01*(11-e)/10 if e <= 10
        //    else 0.5*lr0*(1+math.cos(math.pi*e/E)) for e in (1, 2, 10, 11, 200, 400)]
        let expected = [
            (1, 0.01),
            (2, 0.088_995_065_299_266_43),
            (10, 0.719_890_240_143_926_1),
            (11, 0.798_508_150_597_176_5),
            (200, 0.4),
            (400, 0.0),
        ];
        for (e, lr) in expected {
            let got = Schedule::REFERENCE.lr(0.8, e, 400);
            assert!((got - lr).abs() < 1e-12, "epoch {e}: {got} vs {lr}");
        }
    }

    #[test]
    fn constant_and_no_warm_up() {
        assert_eq!(Schedule::Constant.lr(0.05, 7, 10), 0.05);
        // Pure cosine: 0.75 lr0 at epoch 1 of 3.
        let c = Schedule::Cosine { warmup: Some(0) }.lr(0.2, 1, 3);
        assert!((c - 0.15).abs() < 1e-12, "{c}");
    }

    #[test]
    fn unset_warm_up_scales_with_the_run_and_leaves_room_for_cosine() {
        assert_eq!(Schedule::SCALED.warmup_epochs(400), 10);
        assert_eq!(Schedule::SCALED.warmup_epochs(4000), 10);
        assert_eq!(Schedule::SCALED.warmup_epochs(100), 2);
        assert_eq!(Schedule::SCALED.warmup_epochs(10), 0);
        // A 10-epoch run reaches the base rate's cosine at once: 0.5 lr0 (1 + cos(pi / 10)).
        let lr = Schedule::SCALED.lr(0.1, 1, 10);
        assert!((lr - 0.097_552_825_814_757_68).abs() < 1e-12, "{lr}");
        let old: Schedule = serde_json::from_str(r#"{"kind": "cosine", "warmup": 10}"#)
            .expect("configs of earlier releases");
        assert_eq!(old, Schedule::REFERENCE);
    }
}
