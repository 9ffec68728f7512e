#![doc = include_str!("../README.md")]
//!
//! ## In this crate
//!
//! Planning is pure ([`Plan::new`]): from a [`NetworkSpec`](auglocal_model::NetworkSpec) and a
//! [`LocalConfig`] (rule, K, maximum aux depth d, pyramid coefficient) it decides where
//! gradients are cut ([`partition`]), each aux net's depth ([`depth`]), which units it samples
//! and its blocks ([`select`]), and the cost of everything. The Burn modules ([`nets`]) are
//! built from the plan.
//!
//! ```
//! use auglocal_plan::{LocalConfig, Plan, Rule};
//! use auglocal_model::{Arch, NetworkConfig};
//!
//! let network = NetworkConfig::new(Arch::ResNet32).spec().unwrap();
//! let config = LocalConfig::new(Rule::AugLocal, 16).with_depth(2).with_pyramid(Some(0.5));
//! let plan = Plan::new(&network, &config).unwrap();
//! assert_eq!(plan.num_modules(), 14);
//! let first = plan.aux_plans().next().unwrap();
//! assert_eq!(first.selected_units, vec![8, 15]);
//! ```

mod config;
pub mod depth;
mod error;
pub mod nets;
pub mod partition;
mod plan;
mod rule;
pub mod select;
pub mod stages;

pub use config::{LocalConfig, LossWeights};
pub use error::PlanError;
pub use nets::{AuxHead, AuxNet, AuxNetRecord, MlpHeadConfig};
pub use plan::{AuxHeadPlan, AuxPlan, ModulePlan, Objective, Plan, Totals};
pub use rule::Rule;
pub use stages::{StagePlan, StageSpec};
