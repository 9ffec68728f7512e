//! Global average pooling on [`Autodiff`]: the inner backend's [`FastPool`] forward, and a
//! backward step that calls its backward kernel.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::tensor::TensorMetadata;
use burn::tensor::ops::FloatTensor;

use crate::FastPool;

/// Backward of the pooling: parent `[x]`, state the input's shape.
#[derive(Debug)]
struct GlobalAvgPool;

impl<B: FastPool> Backward<B, 1> for GlobalAvgPool {
    type State = [usize; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let shape = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::fast_global_avg_pool_backward(grad, shape)
        });
    }
}

/// [`FastPool::fast_global_avg_pool`] on `Autodiff<B, C>`: the inner backend's forward, plus a
/// backward step when the input is tracked.
pub(crate) fn global_avg_pool<B: FastPool, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    let shape = x.primitive.shape().dims();
    let output = B::fast_global_avg_pool(x.primitive);
    match GlobalAvgPool
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(shape, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}
