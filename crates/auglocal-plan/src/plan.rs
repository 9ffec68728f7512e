//! The plan: modules, isolation points and the aux net of each, as pure data.

use std::ops::Range;

use auglocal_model::cost::{self, Cost};
use auglocal_model::nn::ClassifierHeadConfig;
use auglocal_model::{AuxHeadStyle, NetworkSpec, UnitSpec};
use serde::{Deserialize, Serialize};

use crate::depth::depth_schedule;
use crate::nets::{DglHeadConfig, InfoProHeadConfig, MlpHeadConfig, PredSimHeadConfig};
use crate::partition::isolation_points;
use crate::select::{aux_blocks, select_units};
use crate::{LocalConfig, LossWeights, PlanError, Rule};

/// A complete local-learning plan for one network: which units each gradient-isolated module
/// holds, and the aux net that trains it. Build it with [`Plan::new`]; build the Burn aux nets
/// with [`Plan::init_aux_nets`](crate::Plan::init_aux_nets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The primary network, unit by unit.
    pub network: NetworkSpec,
    /// The configuration the plan was made from.
    pub config: LocalConfig,
    /// The gradient-isolated modules, in order; the last is trained by the primary head.
    pub modules: Vec<ModulePlan>,
    /// Totals over the backbone and the aux nets.
    pub totals: Totals,
}

/// One gradient-isolated module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModulePlan {
    /// Position of the module, from 0.
    pub index: usize,
    /// First unit held by the module.
    pub first_unit: usize,
    /// Last unit held by the module (inclusive); its output is detached unless this is the
    /// last module.
    pub last_unit: usize,
    /// Cost of the backbone units it holds (plus the primary head for the last module).
    pub backbone: Cost,
    /// The aux net trained with this module, or `None` for the last module (primary head).
    pub aux: Option<AuxPlan>,
}

impl ModulePlan {
    /// The units held, as a range.
    pub fn units(&self) -> Range<usize> {
        self.first_unit..self.last_unit + 1
    }
}

/// The aux net at one isolation point: fresh units (AugLocal only) and a classifier head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuxPlan {
    /// The unit whose output the aux net reads (and after which gradients are cut).
    pub isolation_point: usize,
    /// Channels of that output.
    pub input_width: usize,
    /// Side of that output.
    pub input_size: usize,
    /// AugLocal's aux depth `d_l` for this point; `None` for other rules.
    pub depth: Option<usize>,
    /// Units of the primary network whose shapes the aux blocks take (AugLocal only).
    pub selected_units: Vec<usize>,
    /// Freshly initialised units, in order (never copies of the primary net's): blocks of
    /// the network's own type, shaped like the selected units.
    pub blocks: Vec<UnitSpec>,
    /// The head that turns the last block's output into logits.
    pub head: AuxHeadPlan,
    /// Parameters and forward multiply-adds per image of the whole aux net.
    pub cost: Cost,
}

/// The classifier head of an aux net.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuxHeadPlan {
    /// GAP -> (BatchNorm1d) -> Linear: greedy, and the end of every AugLocal aux net.
    Linear(ClassifierHeadConfig),
    /// DGL's head: pool, three 1x1 conv + BN + ReLU, pool, two Linear + BN1d + ReLU, Linear.
    Dgl(DglHeadConfig),
    /// The reference's VGG aux head: the flattened map pooled to 512, two Linear + BN1d +
    /// ReLU, Linear.
    Mlp(MlpHeadConfig),
    /// PredSim's pooled prediction head and similarity branch, with the weights of their
    /// losses.
    #[serde(rename = "predsim")]
    PredSim(PredSimHeadConfig),
    /// InfoPro's classifier and decoder, with the weights of their losses at this point.
    #[serde(rename = "infopro")]
    InfoPro(InfoProHeadConfig),
}

/// What a module's local loss is, with its weights: part of the plan (`auglocal plan` prints
/// it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Objective {
    /// The cross-entropy of the aux net's logits (of the primary head's, for the last module).
    CrossEntropy,
    /// PredSim: `similarity` x the similarity-matching loss + `prediction` x the prediction's
    /// cross-entropy.
    #[serde(rename = "predsim")]
    PredSim {
        /// Weight of the similarity-matching loss.
        similarity: f64,
        /// Weight of the prediction loss.
        prediction: f64,
    },
    /// InfoPro: `reconstruction` x the decoder's binary cross-entropy against the input
    /// image + `classification` x the classifier's cross-entropy.
    #[serde(rename = "infopro")]
    InfoPro {
        /// Weight of the reconstruction loss (`lambda_r`).
        reconstruction: f64,
        /// Weight of the classification loss (`lambda_c`).
        classification: f64,
    },
}

impl AuxPlan {
    /// Float elements its blocks keep for the backward pass, per image (a lower bound; heads
    /// are not counted).
    pub fn activations(&self) -> u64 {
        self.blocks.iter().map(UnitSpec::activations).sum()
    }

    /// The local loss of the module it trains.
    pub fn objective(&self) -> Objective {
        match &self.head {
            AuxHeadPlan::PredSim(c) => Objective::PredSim {
                similarity: c.similarity_weight,
                prediction: c.prediction_weight,
            },
            AuxHeadPlan::InfoPro(c) => Objective::InfoPro {
                reconstruction: c.reconstruction_weight,
                classification: c.classification_weight,
            },
            _ => Objective::CrossEntropy,
        }
    }
}

impl AuxHeadPlan {
    /// Parameters and multiply-adds per image of the head.
    pub fn cost(&self) -> Cost {
        match self {
            AuxHeadPlan::Linear(c) => cost::classifier_head(c.width, c.num_classes, c.batch_norm),
            AuxHeadPlan::Dgl(c) => c.cost(),
            AuxHeadPlan::Mlp(c) => c.cost(),
            AuxHeadPlan::PredSim(c) => c.cost(),
            AuxHeadPlan::InfoPro(c) => c.cost(),
        }
    }
}

/// Totals over the plan, and the aux-to-backbone ratios the paper reports.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// The primary network (every unit and its head).
    pub backbone: Cost,
    /// Every aux net together.
    pub aux: Cost,
    /// `aux.params / backbone.params`.
    pub aux_param_ratio: f64,
    /// `aux.macs / backbone.macs`: extra forward compute of local learning.
    pub aux_mac_ratio: f64,
}

impl Plan {
    /// Plans `config` for `network`, checking the configuration first.
    pub fn new(network: &NetworkSpec, config: &LocalConfig) -> Result<Plan, PlanError> {
        let points = isolation_points(network, config)?;
        if config.rule == Rule::InfoPro
            && let Some(weights) = config.infopro_weights
            && !weights.is_valid()
        {
            return Err(PlanError::BadLossWeights(weights));
        }
        let depths = depth_schedule(config.depth, config.pyramid, points.len() + 1);
        let mut modules = Vec::with_capacity(points.len() + 1);
        let mut first_unit = 0;
        for (index, &point) in points.iter().enumerate() {
            let aux = aux_plan(network, config, [index, points.len()], point, depths[index]);
            modules.push(ModulePlan {
                index,
                first_unit,
                last_unit: point,
                backbone: network.units_cost(first_unit..point + 1),
                aux: Some(aux),
            });
            first_unit = point + 1;
        }
        let last_unit = network.num_units() - 1;
        modules.push(ModulePlan {
            index: points.len(),
            first_unit,
            last_unit,
            backbone: network.units_cost(first_unit..last_unit + 1) + network.head_cost(),
            aux: None,
        });
        let backbone = network.cost();
        let aux: Cost = modules
            .iter()
            .filter_map(|m| m.aux.as_ref())
            .map(|a| a.cost)
            .sum();
        Ok(Plan {
            network: network.clone(),
            config: config.clone(),
            modules,
            totals: Totals {
                backbone,
                aux,
                aux_param_ratio: aux.params as f64 / backbone.params as f64,
                aux_mac_ratio: aux.macs as f64 / backbone.macs as f64,
            },
        })
    }

    /// Number of gradient-isolated modules.
    pub fn num_modules(&self) -> usize {
        self.modules.len()
    }

    /// Float elements that the largest module (its units and its aux net) keeps for its
    /// backward pass, per image: since each module's graph is freed before the next runs,
    /// this is what a step needs at its peak (a lower bound). For bp, the whole network.
    pub fn peak_activations(&self) -> u64 {
        self.modules
            .iter()
            .map(|m| {
                let units: u64 = self.network.units[m.units()]
                    .iter()
                    .map(|u| u.activations())
                    .sum();
                units + m.aux.as_ref().map_or(0, AuxPlan::activations)
            })
            .max()
            .unwrap_or(0)
    }

    /// Units after which gradients are cut.
    pub fn isolation_points(&self) -> Vec<usize> {
        self.aux_plans().map(|a| a.isolation_point).collect()
    }

    /// The aux nets, one per isolation point, in order.
    pub fn aux_plans(&self) -> impl Iterator<Item = &AuxPlan> {
        self.modules.iter().filter_map(|m| m.aux.as_ref())
    }
}

/// The aux net of isolation point `point` (the `index`-th of `points`) under `config`;
/// `depth` is AugLocal's `d_l`.
fn aux_plan(
    network: &NetworkSpec,
    config: &LocalConfig,
    [index, points]: [usize; 2],
    point: usize,
    depth: usize,
) -> AuxPlan {
    let unit = &network.units[point];
    let (input_width, input_size) = (unit.out_width, unit.out_size);
    let num_classes = network.num_classes;
    let (depth, selected_units, blocks, head) = match config.rule {
        Rule::AugLocal => {
            let selected = select_units(point, depth, network.num_units());
            let shapes: Vec<UnitSpec> = selected.iter().map(|&u| network.units[u]).collect();
            let blocks = aux_blocks(input_width, input_size, &shapes);
            let width = blocks.last().map_or(input_width, |b| b.out_width);
            let head = match network.local.aux_head {
                AuxHeadStyle::Linear {
                    batch_norm_when_shallow,
                } => AuxHeadPlan::Linear(
                    ClassifierHeadConfig::new(width, num_classes)
                        .with_batch_norm(batch_norm_when_shallow && depth <= 1),
                ),
                AuxHeadStyle::Mlp { features } => {
                    AuxHeadPlan::Mlp(MlpHeadConfig::new(features, num_classes))
                }
            };
            (Some(depth), selected, blocks, head)
        }
        Rule::Greedy => {
            let head = ClassifierHeadConfig::new(input_width, num_classes);
            (None, vec![], vec![], AuxHeadPlan::Linear(head))
        }
        Rule::Dgl => {
            let head = DglHeadConfig::new(input_width, input_size, num_classes);
            (None, vec![], vec![], AuxHeadPlan::Dgl(head))
        }
        Rule::PredSim => {
            let head = PredSimHeadConfig::new(input_width, input_size, num_classes);
            (None, vec![], vec![], AuxHeadPlan::PredSim(head))
        }
        Rule::InfoPro => {
            let weights = config
                .infopro_weights
                .unwrap_or_else(|| LossWeights::reference(network.arch));
            let final_width = network.units.last().map_or(input_width, |u| u.out_width);
            let head = InfoProHeadConfig::for_map(
                [input_width, input_size],
                final_width,
                num_classes,
                [network.in_channels, network.image_size],
                weights.at(index, points),
            );
            (None, vec![], vec![], AuxHeadPlan::InfoPro(head))
        }
        Rule::Bp => unreachable!("bp has no isolation point"),
    };
    let cost = head.cost() + blocks.iter().map(UnitSpec::cost).sum();
    AuxPlan {
        isolation_point: point,
        input_width,
        input_size,
        depth,
        selected_units,
        blocks,
        head,
        cost,
    }
}

#[cfg(test)]
mod tests {
    use auglocal_model::{Arch, NetworkConfig};

    use super::*;

    fn plan(arch: Arch, config: LocalConfig) -> Plan {
        let network = NetworkConfig::new(arch).spec().expect("valid network");
        Plan::new(&network, &config).expect("valid plan")
    }

    fn auglocal(arch: Arch, k: usize, depth: usize) -> Plan {
        plan(arch, LocalConfig::new(Rule::AugLocal, k).with_depth(depth))
    }

    fn aux_at(plan: &Plan, unit: usize) -> &AuxPlan {
        plan.aux_plans()
            .find(|a| a.isolation_point == unit)
            .expect("an isolation point at that unit")
    }

    fn triples(aux: &AuxPlan) -> Vec<(usize, usize, usize)> {
        aux.blocks
            .iter()
            .map(|b| (b.in_width, b.out_width, b.stride))
            .collect()
    }

    #[test]
    fn resnet32_d2_pyramid_worked_examples() {
        let p = auglocal(Arch::ResNet32, 16, 2);
        let a = aux_at(&p, 0);
        assert_eq!(a.selected_units, vec![8, 15]);
        assert_eq!(triples(a), vec![(16, 32, 2), (32, 64, 2)]);
        let a = aux_at(&p, 6);
        assert_eq!(a.selected_units, vec![10, 15]);
        assert_eq!(triples(a), vec![(32, 32, 1), (32, 64, 2)]);
        let a = aux_at(&p, 12);
        assert_eq!(a.selected_units, vec![14, 15]);
        assert_eq!(triples(a), vec![(64, 64, 1), (64, 64, 1)]);
        // Unit 12's depth is round_half_even(1.5) = 2, so its head has no BatchNorm1d.
        assert_eq!(a.depth, Some(2));
        assert_eq!(
            a.head,
            AuxHeadPlan::Linear(ClassifierHeadConfig::new(64, 10).with_batch_norm(false))
        );
    }

    #[test]
    fn aux_nets_reach_the_last_units_resolution_at_any_width() {
        // Every aux net samples the last unit, so it ends at its 8x8, also at width 0.3 (stages
        // 5, 10 and 19 wide), where halvings counted from width ratios would stop at 16x16.
        for width in [1.0, 0.5, 0.3] {
            let network = NetworkConfig::new(Arch::ResNet32)
                .with_width_multiplier(width)
                .spec()
                .expect("valid network");
            let config = LocalConfig::new(Rule::AugLocal, 16).with_depth(2);
            let p = Plan::new(&network, &config).expect("valid plan");
            for a in p.aux_plans() {
                let size = a.blocks.last().map_or(a.input_size, |b| b.out_size);
                assert_eq!(
                    size, 8,
                    "width {width}, aux net of unit {}",
                    a.isolation_point
                );
            }
        }
    }

    #[test]
    fn round_half_even_decides_unit_2() {
        // 2 + (13 / 2) * 1 = 8.5: Python's round gives 8, round-half-up would give 9.
        let p = auglocal(Arch::ResNet32, 16, 2);
        assert_eq!(aux_at(&p, 2).selected_units, vec![8, 15]);
    }

    #[test]
    fn resnet110_d3_worked_example_and_partition() {
        let p = auglocal(Arch::ResNet110, 55, 3);
        assert_eq!(p.num_modules(), 52);
        assert_eq!(aux_at(&p, 0).selected_units, vec![18, 36, 54]);
        assert_eq!(
            triples(aux_at(&p, 0)),
            vec![(16, 16, 1), (16, 32, 2), (32, 64, 2)]
        );
        let last = p.modules.last().expect("modules");
        assert_eq!(
            last.units(),
            51..55,
            "the last module holds the final d + 1 units"
        );
        assert!(last.aux.is_none());
    }

    #[test]
    fn resnet32_k16_d2_has_14_modules_covering_every_unit() {
        let p = auglocal(Arch::ResNet32, 16, 2);
        assert_eq!(p.num_modules(), 14);
        assert_eq!(p.isolation_points(), (0..13).collect::<Vec<_>>());
        let covered: Vec<usize> = p.modules.iter().flat_map(ModulePlan::units).collect();
        assert_eq!(covered, (0..16).collect::<Vec<_>>());
        assert_eq!(p.modules[13].units(), 13..16);
        let backbone: Cost = p.modules.iter().map(|m| m.backbone).sum();
        assert_eq!(backbone, p.totals.backbone);
    }

    #[test]
    fn depth_schedule_reaches_the_aux_nets() {
        let p = auglocal(Arch::ResNet32, 16, 5);
        let depths: Vec<usize> = p.aux_plans().map(|a| a.depth.expect("auglocal")).collect();
        assert_eq!(depths[..8], [5, 5, 5, 4, 4, 4, 4, 3]);
        for a in p.aux_plans() {
            assert_eq!(a.blocks.len(), a.selected_units.len());
            assert!(a.selected_units.len() <= a.depth.expect("auglocal"));
            assert_eq!(
                a.selected_units.last(),
                Some(&15),
                "the last unit is always selected"
            );
        }
    }

    #[test]
    fn depth_one_heads_get_batch_norm() {
        let p = plan(
            Arch::ResNet20,
            LocalConfig::new(Rule::AugLocal, 10)
                .with_depth(1)
                .with_pyramid(None),
        );
        for a in p.aux_plans() {
            let AuxHeadPlan::Linear(head) = &a.head else {
                panic!("auglocal heads are linear")
            };
            assert!(head.batch_norm);
            assert_eq!(a.blocks.len(), 1);
        }
    }

    #[test]
    fn aux_cost_ratios_match_the_method_doc() {
        // Method doc, section 9: ResNet-32 d=2 pyramid ~2.9x params and ~1.5x MACs;
        // ResNet-110 d=3 ~4.2x and ~2.1x.
        let t = auglocal(Arch::ResNet32, 16, 2).totals;
        assert!((t.aux_param_ratio - 2.9).abs() < 0.05, "{t:?}");
        assert!((t.aux_mac_ratio - 1.5).abs() < 0.05, "{t:?}");
        let t = auglocal(Arch::ResNet110, 55, 3).totals;
        assert!((t.aux_param_ratio - 4.2).abs() < 0.05, "{t:?}");
        assert!((t.aux_mac_ratio - 2.1).abs() < 0.05, "{t:?}");
    }

    #[test]
    fn greedy_and_dgl_heads() {
        let p = plan(Arch::ResNet32, LocalConfig::new(Rule::Greedy, 16));
        assert_eq!(p.num_modules(), 16);
        let a = aux_at(&p, 0);
        assert!(a.blocks.is_empty() && a.depth.is_none());
        assert_eq!(
            a.cost,
            Cost {
                params: 16 * 10 + 10,
                macs: 160
            }
        );

        let p = plan(Arch::ResNet32, LocalConfig::new(Rule::Dgl, 16));
        let AuxHeadPlan::Dgl(head) = &aux_at(&p, 0).head else {
            panic!("dgl head")
        };
        assert_eq!(
            (head.pool_size(), head.mlp_pool_size(), head.hidden()),
            (8, 2, 64)
        );
        // 3 x (16*16 conv + 32 BN) + 2 x (64*64 linear + 128 BN1d) + (64*10 + 10).
        assert_eq!(
            aux_at(&p, 0).cost.params,
            3 * (256 + 32) + 2 * (4096 + 128) + 650
        );
        let AuxHeadPlan::Dgl(head) = &aux_at(&p, 14).head else {
            panic!("dgl head")
        };
        assert_eq!(
            (head.input_size, head.pool_size(), head.hidden()),
            (8, 2, 256)
        );
    }

    #[test]
    fn local_modules_keep_far_fewer_activations_than_backprop() {
        let bp = plan(Arch::ResNet110, LocalConfig::bp());
        let total: u64 = bp.network.units.iter().map(|u| u.activations()).sum();
        assert_eq!(bp.peak_activations(), total);
        let local = auglocal(Arch::ResNet110, 55, 3);
        assert!(
            local.peak_activations() * 10 < total,
            "{}",
            local.peak_activations()
        );
    }

    #[test]
    fn bp_is_one_module_without_aux() {
        let p = plan(Arch::ResNet110, LocalConfig::bp());
        assert_eq!(p.num_modules(), 1);
        assert_eq!(p.modules[0].units(), 0..55);
        assert_eq!(p.totals.aux, Cost::default());
        assert_eq!(p.modules[0].backbone.params, 1_730_714);
    }

    #[test]
    fn plan_round_trips_through_json() {
        let p = plan(Arch::ResNet32, LocalConfig::new(Rule::Dgl, 8));
        let json = serde_json::to_string(&p).expect("serialise");
        assert!(json.contains(r#""kind":"dgl""#), "{json}");
        let back: Plan = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, p);
    }
}
