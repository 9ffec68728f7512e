//! The network cut into gradient-isolated modules, each with what trains it.
//!
//! Generic over the type of the primary network's units, `U`: auglocal's own [`Unit`] by
//! default, or any [`LocalUnit`] of a library user's ([`LocalNetwork::from_units`]).

use auglocal_kernels::FastOps;
use auglocal_model::LocalUnit;
use auglocal_model::nn::{Head, Network, Unit, materialize};
use auglocal_plan::nets::cross_entropy;
use auglocal_plan::{AuxNet, Plan};
use burn::module::Module;
use burn::tensor::{Int, Tensor, backend::Backend};

use crate::TrainError;

/// What turns a module's output into logits.
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per module, a few dozen at most; boxing would not pay"
)]
pub enum Output<B: Backend> {
    /// The aux net of an isolation point.
    Aux(AuxNet<B>),
    /// The primary head (the last module).
    Head(Head<B>),
}

/// One gradient-isolated module: its units of the primary network and its aux net, or the
/// primary head for the last module.
#[derive(Module, Debug)]
pub struct LocalModule<B: Backend, U: Module<B> = Unit<B>> {
    /// Units of the primary network, in order.
    pub units: Vec<U>,
    /// Its aux net, or the primary head.
    pub output: Output<B>,
}

impl<B: FastOps, U: LocalUnit<B>> LocalModule<B, U> {
    /// Runs the module's units.
    ///
    /// # Shapes
    /// - input: the input of its first unit, `[batch, C, H, W]`
    /// - output: the output of its last unit
    pub fn forward_units(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.units.iter().fold(x, |x, u| u.forward(x))
    }

    /// Logits from the module's output, through its aux net or the primary head.
    ///
    /// # Shapes
    /// - input: the output of its last unit
    /// - output: `[batch, num_classes]`
    pub fn forward_output(&self, h: Tensor<B, 4>) -> Tensor<B, 2> {
        match &self.output {
            Output::Aux(aux) => aux.forward(h),
            Output::Head(head) => head.forward(h),
        }
    }

    /// Forward through the units and the output, and the module's local loss: its aux net's
    /// objective ([`AuxNet::local_loss`]), or the primary head's cross-entropy.
    ///
    /// # Shapes
    /// - x: the input of its first unit; targets: `[batch]`; pixels: the batch's images in
    ///   [0, 1], for an objective that needs them ([`LocalModule::needs_pixels`])
    /// - returns the units' output `h`, the logits `[batch, num_classes]` and the loss `[1]`
    ///
    /// # Panics
    /// If the objective needs the pixels and `pixels` is `None`.
    pub fn forward_loss(
        &self,
        x: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        pixels: Option<Tensor<B, 4>>,
    ) -> (Tensor<B, 4>, Tensor<B, 2>, Tensor<B, 1>) {
        let h = self.forward_units(x);
        let (logits, loss) = match &self.output {
            Output::Aux(aux) => aux.local_loss(h.clone(), targets, pixels),
            Output::Head(head) => {
                let logits = head.forward(h.clone());
                (logits.clone(), cross_entropy(logits, targets))
            }
        };
        (h, logits, loss)
    }

    /// Whether its local loss needs the batch's images in [0, 1] (InfoPro's reconstruction).
    pub fn needs_pixels(&self) -> bool {
        matches!(&self.output, Output::Aux(aux) if aux.needs_pixels())
    }

    /// Whether the module ends in the primary head.
    pub fn is_last(&self) -> bool {
        matches!(self.output, Output::Head(_))
    }
}

/// The whole network as gradient-isolated modules.
#[derive(Module, Debug)]
pub struct LocalNetwork<B: Backend, U: Module<B> = Unit<B>> {
    /// The modules, in order; the last holds the primary head.
    pub modules: Vec<LocalModule<B, U>>,
}

impl<B: Backend> LocalNetwork<B> {
    /// Cuts `network` as `plan` says and gives every module but the last its aux net
    /// (`aux_nets[m]` for module `m`, as [`Plan::init_aux_nets`] builds them).
    ///
    /// # Panics
    /// If the plan is not for this network (unit counts differ) or `aux_nets` does not hold
    /// one net per isolation point.
    pub fn new(network: Network<B>, plan: &Plan, aux_nets: Vec<AuxNet<B>>) -> Self {
        Self::cut(network.units, network.head, plan, aux_nets)
    }

    /// Builds the network and its aux nets with fresh weights.
    pub fn init(plan: &Plan, device: &B::Device) -> Self {
        Self::new(plan.network.init(device), plan, plan.init_aux_nets(device))
    }
}

impl<B: Backend, U: Module<B>> LocalNetwork<B, U> {
    /// Cuts a library user's own units as `plan` says (a plan of the
    /// [`NetworkSpec`](auglocal_model::NetworkSpec) that
    /// [`CustomNetworkConfig::spec`](auglocal_model::CustomNetworkConfig::spec) probed from
    /// them), with a fresh primary head (GAP -> Linear) and fresh aux nets, drawn now. The
    /// units keep their weights.
    pub fn from_units(units: Vec<U>, plan: &Plan, device: &B::Device) -> Result<Self, TrainError> {
        if units.len() != plan.network.num_units() {
            return Err(TrainError::Config(format!(
                "{} units given for a plan of {} units",
                units.len(),
                plan.network.num_units()
            )));
        }
        let head = materialize(Head::init(&plan.network.head, device));
        Ok(Self::cut(units, head, plan, plan.init_aux_nets(device)))
    }

    /// The primary network back from its modules: the units in order, and the primary head.
    ///
    /// # Panics
    /// If the last module does not hold the primary head (only a hand-assembled network can
    /// lack it).
    pub fn into_parts(self) -> (Vec<U>, Head<B>) {
        let mut units = Vec::new();
        let mut head = None;
        for module in self.modules {
            units.extend(module.units);
            head = match module.output {
                Output::Head(h) => Some(h),
                Output::Aux(_) => None,
            };
        }
        (units, head.expect("the last module holds the primary head"))
    }

    /// The primary network back from its modules, without the aux nets (what
    /// [`auglocal_model::export`] writes).
    ///
    /// # Panics
    /// As [`LocalNetwork::into_parts`].
    pub fn into_primary(self) -> Network<B, U> {
        let (units, head) = self.into_parts();
        Network { units, head }
    }

    /// [`LocalNetwork::into_primary`] under its former name.
    #[deprecated(note = "renamed `into_primary`: the primary network, without the aux nets")]
    pub fn into_network(self) -> Network<B, U> {
        self.into_primary()
    }

    fn cut(units: Vec<U>, head: Head<B>, plan: &Plan, aux_nets: Vec<AuxNet<B>>) -> Self {
        assert_eq!(
            units.len(),
            plan.network.num_units(),
            "plan of another network"
        );
        assert_eq!(
            aux_nets.len(),
            plan.num_modules() - 1,
            "one aux net per isolation point"
        );
        let mut units = units.into_iter();
        let mut aux = aux_nets.into_iter();
        let mut head = Some(head);
        let modules = plan
            .modules
            .iter()
            .map(|m| LocalModule {
                units: units.by_ref().take(m.units().len()).collect(),
                output: match (&m.aux, aux.next()) {
                    (Some(_), Some(net)) => Output::Aux(net),
                    _ => Output::Head(head.take().expect("one last module")),
                },
            })
            .collect();
        Self { modules }
    }
}

impl<B: FastOps, U: LocalUnit<B>> LocalNetwork<B, U> {
    /// Every module's local loss on one batch, without stepping: the forward pass of
    /// [`Trainer::step`](crate::Trainer::step). With `isolate`, each module's output is
    /// detached before the next module, as in training; without it gradients flow back
    /// through all earlier modules (for tests and for comparison). InfoPro's decoders
    /// reconstruct `images` as given (the trainer gives them the pixels in [0, 1]).
    pub fn losses(
        &self,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        isolate: bool,
    ) -> Vec<Tensor<B, 1>> {
        let pixels = self
            .modules
            .iter()
            .any(LocalModule::needs_pixels)
            .then(|| images.clone().detach());
        let mut x = images;
        self.modules
            .iter()
            .map(|m| {
                let (h, _, value) = m.forward_loss(x.clone(), targets.clone(), pixels.clone());
                x = if isolate { h.detach() } else { h };
                value
            })
            .collect()
    }

    /// End-to-end prediction of the primary network: every module's units, then the head.
    ///
    /// # Shapes
    /// - input: `[batch, channels, size, size]`
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = self.modules.iter().fold(x, |x, m| m.forward_units(x));
        match self.modules.last() {
            Some(last) => last.forward_output(h),
            None => panic!("a network has at least one module"),
        }
    }
}
