//! Burn modules built from a [`crate::NetworkSpec`]: stem, BasicBlock, classifier head, ResNet.

mod block;
mod head;
mod init;
mod norm;
mod params;
mod resnet;
mod stem;

pub use block::{BasicBlock, BasicBlockConfig, Projection};
pub use head::{ClassifierHead, ClassifierHeadConfig, global_avg_pool};
pub use init::{conv_initializer, conv2d_config};
pub use norm::{BatchNorm, BatchNormConfig};
pub use params::{materialize, num_trainable_params};
pub use resnet::{ResNet, Unit};
pub use stem::{Stem, StemConfig};
