//! A rough lower bound of a run's memory, checked against the machine's before anything is
//! allocated: a width, batch or image size that cannot fit is refused with "this needs N GiB"
//! instead of failing deep inside an allocation.

use auglocal_plan::Plan;

use crate::TrainError;

/// What a training step needs at least, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Weights, their gradients and the momentum buffers (f32), of the network and its aux
    /// nets.
    pub params_bytes: u64,
    /// Activations of the largest module (a lower bound; see [`Plan::peak_activations`]) for
    /// one batch.
    pub activations_bytes: u64,
}

impl Footprint {
    /// The footprint of training `plan` at batch size `batch`.
    pub fn of(plan: &Plan, batch: usize) -> Self {
        let params = plan
            .totals
            .backbone
            .params
            .saturating_add(plan.totals.aux.params);
        Self {
            params_bytes: params.saturating_mul(3 * 4),
            activations_bytes: plan
                .peak_activations()
                .saturating_mul(batch as u64)
                .saturating_mul(4),
        }
    }

    /// Both parts.
    pub fn total(&self) -> u64 {
        self.params_bytes.saturating_add(self.activations_bytes)
    }

    /// Refuses the run if it cannot fit in `available` bytes.
    pub fn check(&self, available: u64) -> Result<(), TrainError> {
        if self.total() <= available {
            return Ok(());
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        Err(TrainError::TooLarge {
            what: format!(
                "{:.1} GiB of weights, gradients and momentum, {:.1} GiB of activations",
                gib(self.params_bytes),
                gib(self.activations_bytes)
            ),
            needed_gib: gib(self.total()),
            available_gib: gib(available),
        })
    }
}

/// Physical memory plus swap of this machine, from `/proc/meminfo` (`None` where it is not
/// reported).
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("MemTotal:")? + kib("SwapTotal:").unwrap_or(0)) * 1024)
}

/// Refuses `plan` at batch size `batch` if it cannot fit in this machine's memory.
pub fn check(plan: &Plan, batch: usize) -> Result<(), TrainError> {
    match machine_memory() {
        Some(available) => Footprint::of(plan, batch).check(available),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use auglocal_model::{Arch, NetworkConfig};
    use auglocal_plan::{LocalConfig, Rule};

    use super::*;

    fn plan(width: f64, rule: Rule) -> Plan {
        let network = NetworkConfig::new(Arch::ResNet32)
            .with_width_multiplier(width)
            .spec()
            .expect("valid");
        Plan::new(&network, &LocalConfig::new(rule, 16)).expect("valid plan")
    }

    #[test]
    fn the_measured_benchmark_fits_and_a_huge_run_is_refused_in_gib() {
        // `auglocal bench` measured a 1,859 MiB heap peak for bp on ResNet-32 at batch 512:
        // the estimate is a lower bound of the same order.
        let bp = Footprint::of(&plan(1.0, Rule::Bp), 512);
        let mib = bp.total() >> 20;
        assert!((1_000..1_859).contains(&mib), "{mib} MiB");
        let local = Footprint::of(&plan(1.0, Rule::AugLocal), 512);
        assert!(local.activations_bytes * 3 < bp.activations_bytes);

        let huge = Footprint::of(&plan(64.0, Rule::Bp), 65_536);
        let err = huge.check(24 << 30).expect_err("cannot fit");
        let msg = err.to_string();
        assert!(msg.contains("GiB") && msg.contains("24.0 GiB"), "{msg}");
        assert!(err.is_bad_input());
    }
}
