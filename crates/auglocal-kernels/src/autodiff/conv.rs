//! The convolution on [`Autodiff`]: a backward step that calls the inner backend's
//! [`FastConv`] kernels, built the way burn-autodiff 0.21 builds its own `conv2d`.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::{ConvOptions, FloatTensor};

use crate::FastConv;

/// Backward of a convolution with a bias: parents `[x, weight, bias]`.
#[derive(Debug)]
struct Conv2dWithBias;

/// Backward of a convolution without a bias: parents `[x, weight]`.
#[derive(Debug)]
struct Conv2dNoBias;

impl<B: FastConv> Backward<B, 3> for Conv2dWithBias {
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, bias, options) = ops.state;
        let x: FloatTensor<B> = cp.retrieve_node_output(x);
        let weight: FloatTensor<B> = cp.retrieve_node_output(weight);
        let bias: FloatTensor<B> = cp.retrieve_node_output(bias);

        let nodes = [node_x.map(|n| n.id), node_weight.map(|n| n.id)];
        register_x_and_weight::<B>(grads, nodes, &x, weight, &grad, options);
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::fast_conv2d_bias_backward(x, bias, grad));
        }
    }
}

impl<B: FastConv> Backward<B, 2> for Conv2dNoBias {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, options) = ops.state;
        let x: FloatTensor<B> = cp.retrieve_node_output(x);
        let weight: FloatTensor<B> = cp.retrieve_node_output(weight);

        let nodes = [node_x.map(|n| n.id), node_weight.map(|n| n.id)];
        register_x_and_weight::<B>(grads, nodes, &x, weight, &grad, options);
    }
}

/// Registers the gradients of `x` and `weight`, each only when its node is tracked.
fn register_x_and_weight<B: FastConv>(
    grads: &mut Gradients,
    [node_x, node_weight]: [Option<NodeId>; 2],
    x: &FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: &FloatTensor<B>,
    options: ConvOptions<2>,
) {
    if let Some(id) = node_x {
        let dx =
            B::fast_conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
        grads.register::<B>(id, dx);
    }
    if let Some(id) = node_weight {
        let dw = B::fast_conv2d_weight_backward(x.clone(), weight, grad.clone(), options);
        grads.register::<B>(id, dw);
    }
}

/// [`FastConv::fast_conv2d`] on `Autodiff<B, C>`: the inner forward, plus a backward step when
/// any input is tracked.
pub(crate) fn conv2d<B: FastConv, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<B, C>> {
    match bias {
        Some(bias) => match Conv2dWithBias
            .prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                    options.clone(),
                );
                let out =
                    B::fast_conv2d(x.primitive, weight.primitive, Some(bias.primitive), options);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(
                x.primitive,
                weight.primitive,
                Some(bias.primitive),
                options,
            )),
        },
        None => match Conv2dNoBias
            .prepare::<C>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    options.clone(),
                );
                let out = B::fast_conv2d(x.primitive, weight.primitive, None, options);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fast_conv2d(x.primitive, weight.primitive, None, options))
            }
        },
    }
}
