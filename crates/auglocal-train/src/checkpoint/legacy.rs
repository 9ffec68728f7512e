//! Network records of checkpoint formats 1 and 2, written before network families: an aux
//! net's blocks were BasicBlocks (not units of any kind) and the primary head was GAP +
//! Linear (not one of several heads). Their tensors and parameter ids are today's; only the
//! nesting differs, so [`upgrade`] moves them into today's record.

use auglocal_model::nn::{BasicBlock, ClassifierHead, HeadRecord, Unit, UnitRecord};
use auglocal_plan::{AuxHead, AuxNetRecord};
use burn::module::Module;
use burn::tensor::backend::Backend;

use crate::local::{LocalModuleRecord, LocalNetworkRecord, OutputRecord};

/// The network as formats 1 and 2 recorded it (only its record is built, by the recorder).
#[derive(Module, Debug)]
#[allow(dead_code, reason = "only the derived record type is used")]
pub(crate) struct LocalNetworkV2<B: Backend> {
    modules: Vec<LocalModuleV2<B>>,
}

#[derive(Module, Debug)]
struct LocalModuleV2<B: Backend> {
    units: Vec<Unit<B>>,
    output: OutputV2<B>,
}

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant, reason = "only its record is used")]
enum OutputV2<B: Backend> {
    Aux(AuxNetV2<B>),
    Head(ClassifierHead<B>),
}

#[derive(Module, Debug)]
struct AuxNetV2<B: Backend> {
    blocks: Vec<BasicBlock<B>>,
    head: AuxHead<B>,
}

/// Today's record of a network recorded by format 1 or 2.
pub(crate) fn upgrade<B: Backend>(old: LocalNetworkV2Record<B>) -> LocalNetworkRecord<B, Unit<B>> {
    LocalNetworkRecord {
        modules: old
            .modules
            .into_iter()
            .map(|m| LocalModuleRecord {
                units: m.units,
                output: match m.output {
                    OutputV2Record::Aux(aux) => OutputRecord::Aux(AuxNetRecord {
                        blocks: aux.blocks.into_iter().map(UnitRecord::Block).collect(),
                        head: aux.head,
                    }),
                    OutputV2Record::Head(head) => OutputRecord::Head(HeadRecord::Linear(head)),
                },
            })
            .collect(),
    }
}
