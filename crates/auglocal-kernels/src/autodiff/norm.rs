//! Training-mode BatchNorm2d on [`Autodiff`]: the inner backend's [`FastBatchNorm`] kernel
//! forward, and a backward step that calls its backward kernel.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::FloatTensor;

use crate::norm::{BatchNormForward, BatchNormOptions, BatchNormSaved, FastBatchNorm};

// The backward step keeps a `BatchNormSaved`: the input (which a BatchNorm composed of Burn's
// ops keeps too, with several intermediates), the output when a ReLU follows (in a block, the
// next convolution's input, which that convolution keeps anyway) and `[c]` vectors.

/// Backward of a BatchNorm without a residual: parents `[x, gamma, beta]`.
#[derive(Debug)]
struct BatchNorm2d;

/// Backward of a BatchNorm with a residual: parents `[x, gamma, beta, residual]`.
#[derive(Debug)]
struct BatchNorm2dResidual;

impl<B: FastBatchNorm> Backward<B, 3> for BatchNorm2d {
    type State = BatchNormSaved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [x, gamma, beta] = ops.parents.map(|n| n.map(|n| n.id));
        register::<B>(grads, [x, gamma, beta, None], ops.state, grad);
    }
}

impl<B: FastBatchNorm> Backward<B, 4> for BatchNorm2dResidual {
    type State = BatchNormSaved<B>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let nodes = ops.parents.map(|n| n.map(|n| n.id));
        register::<B>(grads, nodes, ops.state, grad);
    }
}

/// Computes the gradients and registers those of the tracked parents `[x, gamma, beta,
/// residual]`.
fn register<B: FastBatchNorm>(
    grads: &mut Gradients,
    [x, gamma, beta, residual]: [Option<NodeId>; 4],
    saved: BatchNormSaved<B>,
    grad: FloatTensor<B>,
) {
    let d = B::fast_batch_norm2d_backward(saved, grad, residual.is_some());
    for (node, tensor) in [(x, Some(d.x)), (gamma, Some(d.gamma)), (beta, Some(d.beta))]
        .into_iter()
        .chain([(residual, d.residual)])
    {
        if let (Some(id), Some(tensor)) = (node, tensor) {
            grads.register::<B>(id, tensor);
        }
    }
}

/// [`FastBatchNorm::fast_batch_norm2d`] on `Autodiff<B, C>`: the inner kernel forward (`None`
/// where the inner backend has none), plus a backward step when any input is tracked. The
/// statistics come back untracked.
pub(crate) fn batch_norm2d<B: FastBatchNorm, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    gamma: FloatTensor<Autodiff<B, C>>,
    beta: FloatTensor<Autodiff<B, C>>,
    residual: Option<FloatTensor<Autodiff<B, C>>>,
    options: BatchNormOptions,
) -> Option<BatchNormForward<Autodiff<B, C>>> {
    let forward = B::fast_batch_norm2d(
        x.primitive.clone(),
        gamma.primitive.clone(),
        beta.primitive.clone(),
        residual.as_ref().map(|r| r.primitive.clone()),
        options,
    )?;
    let saved = || BatchNormSaved::<B> {
        x: x.primitive.clone(),
        gamma: gamma.primitive.clone(),
        mean: forward.mean.clone(),
        var: forward.var.clone(),
        output: options.relu.then(|| forward.output.clone()),
        epsilon: options.epsilon,
    };
    let [x_node, gamma_node, beta_node] = [&x, &gamma, &beta].map(|t| t.node.clone());
    let output = match &residual {
        None => match BatchNorm2d
            .prepare::<C>([x_node, gamma_node, beta_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved(), forward.output),
            OpsKind::UnTracked(prep) => prep.finish(forward.output),
        },
        Some(r) => match BatchNorm2dResidual
            .prepare::<C>([x_node, gamma_node, beta_node, r.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved(), forward.output),
            OpsKind::UnTracked(prep) => prep.finish(forward.output),
        },
    };
    Some(BatchNormForward {
        output,
        mean: Autodiff::<B, C>::from_inner(forward.mean),
        var: Autodiff::<B, C>::from_inner(forward.var),
    })
}
