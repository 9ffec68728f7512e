//! Counting trainable parameters of an instantiated module.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

struct TrainableCounter(usize);

impl<B: AutodiffBackend> ModuleVisitor<B> for TrainableCounter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() {
            self.0 += param.shape().num_elements();
        }
    }
}

/// Number of trainable parameters of a module: the tensors that receive gradients.
///
/// Burn's `Module::num_params` also counts BatchNorm running statistics, which are state, not
/// parameters; this count matches PyTorch's `sum(p.numel() for p in m.parameters())`. It needs
/// an autodiff backend, the only kind on which a tensor knows whether it requires gradients.
pub fn num_trainable_params<B: AutodiffBackend, M: Module<B>>(module: &M) -> usize {
    let mut counter = TrainableCounter(0);
    module.visit(&mut counter);
    counter.0
}

struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // Reading a lazily initialised parameter draws its initial value now.
        let _ = param.shape();
    }
}

/// Draws the initial value of every lazily initialised parameter now.
///
/// Burn initialises parameters on first use, and a clone of an uninitialised parameter
/// carries the initialiser, not the value: two clones would draw different weights, and the
/// draws would depend on the order of first use. Modules built by this workspace are
/// materialised when built, so a seed fixes them and clones are equal.
pub fn materialize<B: Backend, M: Module<B>>(module: M) -> M {
    module.visit(&mut Materialize);
    module
}
