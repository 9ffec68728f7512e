//! Pipeline stages: a plan's modules cut into contiguous runs, one per thread or device,
//! balanced by cost. Pure arithmetic; the trainer runs them.
//!
//! A module's cost is the forward multiply-adds per image of its backbone units and its aux
//! net (or the primary head), plus [`MACS_PER_ACTIVATION`] for every float they keep for the
//! backward pass: on the CPU the element-wise and memory-bound work (im2col, BatchNorm, ReLU,
//! their backward) weighs as much as the multiply-adds, and it scales with the activations.
//! Only the ratio between modules matters. The cut minimises the largest stage (the
//! pipeline's pace), the earliest of equal cuts.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{Plan, PlanError};

/// One stage: the modules it trains and their cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    /// First module of the stage.
    pub first_module: usize,
    /// Last module of the stage (inclusive).
    pub last_module: usize,
    /// Cost per image of its modules (units and aux nets), in multiply-adds
    /// ([`module_costs`]).
    pub cost: u64,
}

impl StageSpec {
    /// Its modules.
    pub fn modules(&self) -> Range<usize> {
        self.first_module..self.last_module + 1
    }
}

/// A plan's modules cut into pipeline stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    /// The stages, in order.
    pub stages: Vec<StageSpec>,
}

/// Multiply-adds one float a module keeps for its backward pass is worth: the element-wise
/// work and memory traffic (im2col and col2im, BatchNorm, ReLU, residual adds, forward and
/// backward) that the multiply-adds miss. Calibrated on this project's CPU kernels: with
/// multiply-adds alone, AugLocal ResNet-32's two stages measured 100% and 61% busy; with 400,
/// 93% and 81% against 100% and 84% predicted (docs/scaling.md, "Pipelined training").
pub const MACS_PER_ACTIVATION: u64 = 400;

/// Each module's cost: its backbone's and its aux net's forward multiply-adds, plus
/// [`MACS_PER_ACTIVATION`] per float they keep for the backward pass (at least 1, so that
/// modules of unknown cost, a user's own units, count as equal).
pub fn module_costs(plan: &Plan) -> Vec<u64> {
    plan.modules
        .iter()
        .map(|m| {
            let macs = m.backbone.macs + m.aux.as_ref().map_or(0, |a| a.cost.macs);
            let kept: u64 = plan.network.units[m.units()]
                .iter()
                .map(|u| u.activations())
                .sum::<u64>()
                + m.aux.as_ref().map_or(0, |a| a.activations());
            (macs + MACS_PER_ACTIVATION * kept).max(1)
        })
        .collect()
}

/// Cuts `costs` into `stages` contiguous non-empty runs minimising the largest run's sum;
/// returns the runs' starts (the first is 0). The earliest of equal cuts wins.
fn linear_partition(costs: &[u64], stages: usize) -> Vec<usize> {
    let n = costs.len();
    let prefix: Vec<u64> = std::iter::once(0)
        .chain(costs.iter().scan(0u64, |s, &c| {
            *s += c;
            Some(*s)
        }))
        .collect();
    let sum = |a: usize, b: usize| prefix[b] - prefix[a];
    // best[s][i]: the smallest largest run cutting the first i costs into s runs.
    let mut best = vec![vec![u64::MAX; n + 1]; stages + 1];
    let mut cut = vec![vec![0usize; n + 1]; stages + 1];
    best[0][0] = 0;
    for s in 1..=stages {
        for i in s..=n {
            for j in (s - 1)..i {
                if best[s - 1][j] == u64::MAX {
                    continue;
                }
                let worst = best[s - 1][j].max(sum(j, i));
                if worst < best[s][i] {
                    best[s][i] = worst;
                    cut[s][i] = j;
                }
            }
        }
    }
    let mut starts = vec![0; stages];
    let mut i = n;
    for s in (1..=stages).rev() {
        starts[s - 1] = cut[s][i];
        i = cut[s][i];
    }
    starts
}

impl StagePlan {
    /// Cuts `plan`'s modules into `stages` stages balanced by cost.
    pub fn balance(plan: &Plan, stages: usize) -> Result<Self, PlanError> {
        let modules = plan.num_modules();
        if stages == 0 || stages > modules {
            return Err(PlanError::PipelineStages {
                stages,
                modules,
                hint: if modules == 1 {
                    " (bp trains one module: it has nothing to pipeline)"
                } else {
                    ""
                },
            });
        }
        let costs = module_costs(plan);
        let starts = linear_partition(&costs, stages);
        let stages = starts
            .iter()
            .enumerate()
            .map(|(s, &first)| {
                let end = starts.get(s + 1).copied().unwrap_or(modules);
                StageSpec {
                    first_module: first,
                    last_module: end - 1,
                    cost: costs[first..end].iter().sum(),
                }
            })
            .collect();
        Ok(Self { stages })
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether there is no stage.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The predicted fraction of the wall time each stage computes: its cost over the
    /// largest's (the slowest stage sets the pace; the others wait the rest).
    pub fn predicted_busy(&self) -> Vec<f64> {
        let max = self.stages.iter().map(|s| s.cost).max().unwrap_or(1).max(1) as f64;
        self.stages.iter().map(|s| s.cost as f64 / max).collect()
    }

    /// The predicted speed-up over one stage: the total cost over the largest stage's.
    pub fn predicted_speedup(&self) -> f64 {
        let max = self.stages.iter().map(|s| s.cost).max().unwrap_or(1).max(1) as f64;
        self.stages.iter().map(|s| s.cost).sum::<u64>() as f64 / max
    }
}

#[cfg(test)]
mod tests {
    use auglocal_model::{Arch, NetworkConfig};

    use super::*;
    use crate::{LocalConfig, Rule};

    #[test]
    fn the_cut_minimises_the_largest_stage() {
        assert_eq!(linear_partition(&[1, 1, 1, 1], 2), [0, 2]);
        assert_eq!(linear_partition(&[5, 1, 1, 1, 1, 1], 2), [0, 1]);
        assert_eq!(linear_partition(&[1, 2, 3, 4, 5], 3), [0, 3, 4]);
        assert_eq!(linear_partition(&[3, 3, 3], 3), [0, 1, 2]);
        assert_eq!(linear_partition(&[7], 1), [0]);
        // Brute force over every cut of 8 modules into 3 stages.
        let costs = [4, 9, 2, 7, 7, 1, 8, 3];
        let largest = |starts: &[usize]| {
            (0..starts.len())
                .map(|s| {
                    let end = starts.get(s + 1).copied().unwrap_or(costs.len());
                    costs[starts[s]..end].iter().sum::<u64>()
                })
                .max()
                .unwrap_or(0)
        };
        let mut optimum = u64::MAX;
        for a in 1..costs.len() {
            for b in a + 1..costs.len() {
                optimum = optimum.min(largest(&[0, a, b]));
            }
        }
        assert_eq!(largest(&linear_partition(&costs, 3)), optimum);
    }

    #[test]
    fn resnet32_auglocal_splits_in_two_near_halves() {
        let network = NetworkConfig::new(Arch::ResNet32).spec().expect("valid");
        let config = LocalConfig::new(Rule::AugLocal, 16).with_depth(2);
        let plan = Plan::new(&network, &config).expect("plan");
        let stages = StagePlan::balance(&plan, 2).expect("two stages");
        assert_eq!(stages.len(), 2);
        assert_eq!(stages.stages[0].first_module, 0);
        assert_eq!(
            stages.stages[0].last_module + 1,
            stages.stages[1].first_module
        );
        assert_eq!(stages.stages[1].last_module, plan.num_modules() - 1);
        let total: u64 = module_costs(&plan).iter().sum();
        assert_eq!(stages.stages.iter().map(|s| s.cost).sum::<u64>(), total);
        assert!(stages.predicted_speedup() > 1.6, "{:?}", stages);
        let busy = stages.predicted_busy();
        assert!(
            busy.contains(&1.0) && busy.iter().all(|&b| b > 0.6),
            "{busy:?}"
        );

        let max = StagePlan::balance(&plan, plan.num_modules()).expect("one module each");
        assert!(max.stages.iter().all(|s| s.first_module == s.last_module));
        for bad in [0, plan.num_modules() + 1] {
            let err = StagePlan::balance(&plan, bad).expect_err("out of range");
            assert!(err.to_string().contains("1 to 14 stages"), "{err}");
        }
        let bp = Plan::new(&network, &LocalConfig::bp()).expect("bp");
        let err = StagePlan::balance(&bp, 2).expect_err("bp");
        assert!(err.to_string().contains("nothing to pipeline"), "{err}");
    }
}
