//! What a run is built from before its directory is touched: its configuration, plan, data and
//! trainer ([`Built`]), shared by a new run ([`crate::Run::create`]) and a reopened one.

use std::path::PathBuf;

use auglocal_data::{Data, DataConfig, Loader, LoaderConfig};
use auglocal_kernels::FastOpsAutodiff;
use auglocal_plan::{Plan, StagePlan};
use burn::tensor::backend::AutodiffBackend;

use crate::execution::Execution;
use crate::nodes::fingerprint;
use crate::rundir::CONFIG;
use crate::trainer::{Trainer, sgd_config};
use crate::{TrainConfig, TrainError, footprint};

/// Everything a run is built from, before its directory is touched.
pub(crate) struct Built<B: AutodiffBackend> {
    pub(crate) config: TrainConfig,
    pub(crate) plan: Plan,
    pub(crate) data: Data,
    pub(crate) trainer: Trainer<B>,
}

impl<B: FastOpsAutodiff> Built<B> {
    /// A fingerprint of what nodes must share to train one run: the configuration (but where
    /// each finds the data, and its loader threads), the plan, and the data's image counts.
    pub(crate) fn fingerprint(&self) -> Result<u64, TrainError> {
        let mut config = self.config.clone();
        config.data.data_dir = None;
        config.data.workers = 0;
        let json = |value: serde_json::Result<Vec<u8>>| {
            value.map_err(|source| TrainError::Json {
                path: PathBuf::from(CONFIG),
                source,
            })
        };
        let mut bytes = json(serde_json::to_vec(&config))?;
        bytes.extend(json(serde_json::to_vec(&self.plan))?);
        for n in [
            self.data.train.len(),
            self.data.test.len(),
            self.data.num_classes,
        ] {
            bytes.extend((n as u64).to_le_bytes());
        }
        Ok(fingerprint(&bytes))
    }

    /// Opens the data, plans, checks the memory it needs, and builds the trainer.
    pub(crate) fn new(config: TrainConfig, device: &B::Device) -> Result<Self, TrainError> {
        let mut data_config = DataConfig::new(config.data.dataset, config.image_size());
        data_config.data_dir = config.data.data_dir.clone();
        let data = Data::open(&data_config)?.limit(config.data.train_limit, config.data.test_limit);
        let shape = data.image_shape;
        let network = config.network_spec(
            data.num_classes,
            [shape.channels, shape.height, shape.width],
        )?;
        let plan = Plan::new(&network, &config.local_config(&network))?;
        check_execution(&config, &plan)?;
        footprint::check(&plan, config.batch)?;
        let sgd = sgd_config(config.optimizer.momentum, config.optimizer.weight_decay);
        let trainer = Trainer::init(&plan, &sgd, config.seed, device)
            .with_image_normalization(data.train_pipeline.normalize);
        Ok(Self {
            config,
            plan,
            data,
            trainer,
        })
    }
}

/// Records where the data was found, so that the run resumes from any directory.
pub(crate) fn record_data_dir<B: AutodiffBackend>(built: &mut Built<B>) {
    if let Some(location) = &built.data.location {
        built.config.data.data_dir =
            Some(location.canonicalize().unwrap_or_else(|_| location.clone()));
    }
}

/// The loader of the test set, for evaluation.
pub(crate) fn test_loader<B: FastOpsAutodiff>(
    data: &Data,
    config: &TrainConfig,
    device: &B::Device,
) -> Result<Loader<B::InnerBackend>, TrainError> {
    Ok(Loader::new(
        data.test.clone(),
        data.test_pipeline.clone(),
        LoaderConfig {
            workers: config.data.workers,
            ..LoaderConfig::eval(config.batch)
        },
        device.clone(),
    )?)
}

/// Refuses an execution the plan cannot run: more pipeline stages than modules, or a
/// pipeline of `bp`'s one module.
pub(crate) fn check_execution(config: &TrainConfig, plan: &Plan) -> Result<(), TrainError> {
    if let Execution::Pipelined { stages } = config.execution.strategy {
        StagePlan::balance(plan, stages)?;
    }
    Ok(())
}
