//! Burn modules built from a [`crate::NetworkSpec`]: the units of every family (stem,
//! BasicBlock, Bottleneck, VGG conv), the classifier heads, and the network.

mod block;
mod bottleneck;
mod head;
mod init;
mod network;
mod norm;
mod params;
mod stem;
mod vgg;

pub use block::{BasicBlock, BasicBlockConfig, Projection};
pub use bottleneck::{Bottleneck, BottleneckConfig};
pub use head::{ClassifierHead, ClassifierHeadConfig, global_avg_pool};
pub use init::{conv, conv_initializer, conv2d_config};
pub use network::{Head, HeadRecord, Network, NetworkRecord, Unit, UnitRecord};
pub use norm::{BatchNorm, BatchNormConfig};
pub use params::{materialize, num_trainable_params};
pub use stem::{Stem, StemConfig};
pub use vgg::{VggConv, VggHead, max_pool_2x2};
