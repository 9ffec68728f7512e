//! The Burn modules built from a plan: parameter counts and shapes, through the public API.

use auglocal::burn::backend::{Autodiff, Flex};
use auglocal::burn::tensor::{Distribution, Tensor};
use auglocal::model::nn::num_trainable_params;
use auglocal::model::{Arch, NetworkConfig};
use auglocal::plan::{LocalConfig, Plan, Rule};

type B = Autodiff<Flex>;

#[test]
fn primary_networks_have_the_reference_parameter_counts() {
    let device = Default::default();
    for (arch, expected) in [(Arch::ResNet32, 466_906), (Arch::ResNet110, 1_730_714)] {
        let net = NetworkConfig::new(arch)
            .spec()
            .expect("valid")
            .init::<B>(&device);
        assert_eq!(num_trainable_params(&net), expected, "{arch}");
    }
}

#[test]
fn resnet32_and_its_aux_nets_give_logits_from_every_isolation_point() {
    let device = Default::default();
    let network = NetworkConfig::new(Arch::ResNet32).spec().expect("valid");
    let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 16)).expect("plan");
    let net = network.init::<B>(&device);
    let aux_nets = plan.init_aux_nets::<B>(&device);

    let mut x = Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Default, &device);
    for module in &plan.modules {
        x = net.forward_units(module.units(), x);
        if module.aux.is_some() {
            let logits = aux_nets[module.index].forward(x.clone());
            assert_eq!(logits.dims(), [2, 10], "aux net of module {}", module.index);
        }
    }
    assert_eq!(net.forward_head(x).dims(), [2, 10]);
}
