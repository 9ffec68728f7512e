//! Plan AugLocal for ResNet-32, build the network and its aux nets, and run one batch through
//! them module by module, detaching between modules as the local trainer does.
//!
//! Run with `cargo run --release --example plan`.

use auglocal::burn::backend::{Autodiff, Flex};
use auglocal::burn::tensor::{Distribution, Tensor};
use auglocal::model::{Arch, NetworkConfig};
use auglocal::plan::{LocalConfig, Plan, Rule};

type B = Autodiff<Flex>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The primary network as units, and the plan: K = 16 local modules, aux depth d = 2,
    // pyramid coefficient 0.5 (AugLocal trains K - d = 14 gradient-isolated modules).
    let network = NetworkConfig::new(Arch::ResNet32).spec()?;
    let config = LocalConfig::new(Rule::AugLocal, 16)
        .with_depth(2)
        .with_pyramid(Some(0.5));
    let plan = Plan::new(&network, &config)?;

    // Burn modules, freshly initialised as the reference does.
    let device = Default::default();
    let net = network.init::<B>(&device);
    let aux_nets = plan.init_aux_nets::<B>(&device);

    let mut x = Tensor::<B, 4>::random([4, 3, 32, 32], Distribution::Default, &device);
    for module in &plan.modules {
        let h = net.forward_units(module.units(), x);
        let logits = match &module.aux {
            Some(_) => aux_nets[module.index].forward(h.clone()),
            None => net.forward_head(h.clone()),
        };
        println!(
            "module {:2}: units {:?} -> features {:?}, logits {:?}",
            module.index,
            module.units(),
            h.dims(),
            logits.dims()
        );
        // The trainer computes this module's loss from `logits` and steps it here; the next
        // module gets a detached copy, so no gradient crosses the isolation point.
        x = h.detach();
    }
    println!(
        "aux nets: {:.2}x the backbone's parameters, {:.2}x its multiply-adds",
        plan.totals.aux_param_ratio, plan.totals.aux_mac_ratio
    );
    Ok(())
}
