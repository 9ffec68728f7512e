//! Where gradients are cut (method doc, section 5).

use auglocal_model::NetworkSpec;

use crate::{LocalConfig, PlanError, Rule};

/// Checks `config` against `network` and returns the isolation points: the units after which
/// the activation is detached and an aux net trains the module that ends there.
///
/// - `bp`: none (one module, plain backprop).
/// - `greedy`, `dgl`, `infopro`, `predsim`: after units `0 ..= K - 2` (K modules).
/// - `auglocal`: after units `0 ..= L - 2` with `L = K - d` modules where the network's
///   [`LocalStyle`](auglocal_model::LocalStyle) says so (the reference on CIFAR: the last
///   module holds every unit after `L - 2`, the final `d + 1` units when K = N, and is trained
///   by the primary head), else `L = K` as the reference's ImageNet runs.
pub fn isolation_points(
    network: &NetworkSpec,
    config: &LocalConfig,
) -> Result<Vec<usize>, PlanError> {
    let units = network.num_units();
    let arch = network.arch;
    let (k, depth) = (config.k, config.depth);
    // Each rule checks only the settings it uses: bp ignores K, d and c; greedy and DGL
    // ignore d and c.
    if config.rule == Rule::Bp {
        return Ok(Vec::new());
    }
    if k == 0 {
        return Err(PlanError::ZeroK);
    }
    if k > units {
        return Err(PlanError::KTooLarge { k, units, arch });
    }
    let num_modules = match config.rule {
        Rule::Bp => 1,
        Rule::Greedy | Rule::Dgl | Rule::InfoPro | Rule::PredSim => k,
        Rule::AugLocal => {
            if depth == 0 {
                return Err(PlanError::ZeroDepth);
            }
            if let Some(c) = config.pyramid
                && !(0.0..=1.0).contains(&c)
            {
                return Err(PlanError::PyramidOutOfRange(c));
            }
            // d is bounded first, so that `d + 2` cannot overflow, whatever d is.
            let max_depth = units.saturating_sub(2);
            if depth > max_depth {
                return Err(PlanError::DepthTooLarge {
                    depth,
                    units,
                    max_depth,
                    arch,
                });
            }
            if !network.local.subtract_depth {
                return Ok((0..k - 1).collect());
            }
            if k < depth + 2 {
                return Err(PlanError::TooFewModules {
                    k,
                    depth,
                    modules: k.saturating_sub(depth),
                    min_k: depth + 2,
                    max_k: units,
                    arch,
                });
            }
            k - depth
        }
    };
    Ok((0..num_modules - 1).collect())
}

#[cfg(test)]
mod tests {
    use auglocal_model::{Arch, NetworkConfig};

    use super::*;

    fn net(arch: Arch) -> NetworkSpec {
        NetworkConfig::new(arch).spec().expect("valid")
    }

    fn points(arch: Arch, rule: Rule, k: usize, depth: usize) -> Result<Vec<usize>, PlanError> {
        isolation_points(&net(arch), &LocalConfig::new(rule, k).with_depth(depth))
    }

    #[test]
    fn partition_sizes_of_the_paper() {
        // ResNet-32 K = 16 d = 2 -> 14 modules; ResNet-110 K = 55 d = 3 -> 52.
        assert_eq!(
            points(Arch::ResNet32, Rule::AugLocal, 16, 2).map(|p| p.len() + 1),
            Ok(14)
        );
        assert_eq!(
            points(Arch::ResNet110, Rule::AugLocal, 55, 3).map(|p| p.len() + 1),
            Ok(52)
        );
        assert_eq!(
            points(Arch::ResNet32, Rule::Greedy, 16, 2),
            Ok((0..15).collect())
        );
        assert_eq!(points(Arch::ResNet32, Rule::Dgl, 4, 2), Ok(vec![0, 1, 2]));
        assert_eq!(
            points(Arch::ResNet32, Rule::PredSim, 16, 2),
            Ok((0..15).collect())
        );
        assert_eq!(points(Arch::ResNet32, Rule::Bp, 16, 2), Ok(vec![]));
        assert_eq!(points(Arch::ResNet32, Rule::Greedy, 1, 2), Ok(vec![]));
    }

    #[test]
    fn bad_configs_are_errors() {
        let a = Arch::ResNet32;
        assert_eq!(points(a, Rule::Greedy, 0, 2), Err(PlanError::ZeroK));
        assert!(matches!(
            points(a, Rule::Greedy, 17, 2),
            Err(PlanError::KTooLarge {
                k: 17,
                units: 16,
                ..
            })
        ));
        assert_eq!(points(a, Rule::AugLocal, 16, 0), Err(PlanError::ZeroDepth));
        // Sizes near usize::MAX overflowed `d + 2` and panicked, or wrapped into a plan.
        for depth in [usize::MAX - 1, usize::MAX] {
            assert!(
                matches!(
                    points(a, Rule::AugLocal, 16, depth),
                    Err(PlanError::DepthTooLarge { max_depth: 14, .. })
                ),
                "d = {depth}"
            );
        }
        assert!(matches!(
            points(a, Rule::Greedy, usize::MAX, 2),
            Err(PlanError::KTooLarge { .. })
        ));
        assert!(matches!(
            points(a, Rule::AugLocal, 3, 2),
            Err(PlanError::TooFewModules {
                modules: 1,
                min_k: 4,
                max_k: 16,
                ..
            })
        ));
        assert!(matches!(
            points(a, Rule::AugLocal, 16, 15),
            Err(PlanError::DepthTooLarge { max_depth: 14, .. })
        ));
        for c in [-0.1, 1.5, f64::NAN] {
            let config = LocalConfig::new(Rule::AugLocal, 16).with_pyramid(Some(c));
            assert!(matches!(
                isolation_points(&net(a), &config),
                Err(PlanError::PyramidOutOfRange(_))
            ));
        }
    }

    #[test]
    fn rules_ignore_the_settings_they_do_not_use() {
        let a = Arch::ResNet32;
        assert_eq!(points(a, Rule::Bp, 999, 0), Ok(vec![]));
        assert_eq!(points(a, Rule::Bp, 0, usize::MAX), Ok(vec![]));
        assert_eq!(points(a, Rule::Greedy, 4, 0), Ok(vec![0, 1, 2]));
        let config = LocalConfig::new(Rule::Dgl, 4).with_pyramid(Some(7.0));
        assert_eq!(isolation_points(&net(a), &config), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn too_few_modules_says_which_k_works() {
        let err = points(Arch::ResNet20, Rule::AugLocal, 4, 3).expect_err("too few modules");
        let msg = err.to_string();
        assert!(msg.contains("5..=10"), "{msg}");
    }
}
