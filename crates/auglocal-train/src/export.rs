//! Exporting a run's primary network: the checkpoint of an epoch, without its aux nets and
//! optimiser states, as an [`auglocal_model::export`] file with its manifest.

use std::path::{Path, PathBuf};

use auglocal_data::DataConfig;
use auglocal_kernels::FastOpsAutodiff;
use auglocal_model::export::{self, Manifest, Provenance};
use burn::module::AutodiffModule;

use crate::built::Built;
use crate::checkpoint::{self, CHECKPOINTS};
use crate::config::best_epoch;
use crate::local::LocalNetwork;
use crate::rundir;
use crate::{Keep, TrainConfig, TrainError};

/// Which epoch of a run to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochChoice {
    /// The last complete epoch (the checkpoint a resume continues from).
    Last,
    /// This epoch, if the run kept its checkpoint.
    Epoch(usize),
    /// The epoch of the best test accuracy (the earliest of equals), if the run kept it.
    Best,
}

/// What [`export_run`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct RunExport {
    /// The checkpoint exported.
    pub checkpoint: PathBuf,
    /// Its epoch.
    pub epoch: usize,
    /// The manifest written beside the weights.
    pub manifest: Manifest,
}

/// The rule as people write it: `auglocal K=16 d=2 pyramid 0.5, 15 modules`.
fn rule_text(config: &TrainConfig, units: usize, modules: usize) -> String {
    use auglocal_plan::Rule;
    if config.local.rule == Rule::Bp {
        return config.local.rule.to_string();
    }
    let mut text = format!(
        "{} K={}",
        config.local.rule,
        config.local.k.unwrap_or(units)
    );
    if config.local.rule == Rule::AugLocal {
        text += &format!(" d={}", config.local.depth);
        if let Some(c) = config.local.pyramid {
            text += &format!(" pyramid {c}");
        }
    }
    text + &format!(", {modules} modules")
}

/// Writes the primary network of run `dir` at `choice` to `out` (safetensors) with its
/// manifest beside it (`out` with `.json`): the network's description, the data set's test
/// preprocessing and class names, the rule and epoch, the file's SHA-256. Reads the run only
/// (no lock, nothing written inside it); the data set's files are not needed (but for the
/// class names of an image folder, left out when the folder is not found).
///
/// The export is read back into a network rebuilt from its manifest before this returns.
pub fn export_run<B: FastOpsAutodiff>(
    dir: &Path,
    choice: EpochChoice,
    out: &Path,
    device: &B::Device,
) -> Result<RunExport, TrainError> {
    let config = rundir::read_config(dir)?;
    config.validate()?;
    let Some(latest) = checkpoint::find(dir)? else {
        return Err(TrainError::refused(
            dir,
            "has no complete checkpoint to export: train at least one epoch",
        ));
    };
    let state = checkpoint::read_state(&latest)?;
    let history = state.history.clone().unwrap_or_default();
    let epoch = match choice {
        EpochChoice::Last => state.epoch,
        EpochChoice::Epoch(n) => n,
        EpochChoice::Best => best_epoch(&history).ok_or_else(|| {
            TrainError::refused(
                &latest,
                "records no test accuracy per epoch (a checkpoint of an early release): \
                 choose the epoch instead (`EpochChoice::Epoch`)",
            )
        })?,
    };
    let kept = checkpoint::complete_epochs(dir);
    if !kept.contains(&epoch) {
        let why = match choice {
            EpochChoice::Best => format!(
                "epoch {epoch} had the best test accuracy ({:.2}%), but its checkpoint was not \
                 kept",
                history
                    .get(epoch.wrapping_sub(1))
                    .map_or(f64::NAN, |m| 100.0 * m.test_accuracy)
            ),
            _ => format!("has no complete checkpoint of epoch {epoch}"),
        };
        let hint = if config.keep_checkpoints == Keep::All {
            String::new()
        } else {
            "; `config.keep_checkpoints` best (or all) keeps more".into()
        };
        return Err(TrainError::refused(
            dir.join(CHECKPOINTS),
            format!("{why}; the run keeps epochs {kept:?}{hint}"),
        ));
    }
    let folder = dir.join(CHECKPOINTS).join(checkpoint::name(epoch));
    let plan = match rundir::read_plan(dir) {
        Ok(plan) => plan,
        // A plan.json of an earlier layout: plan again from the configuration (this opens
        // the data set, for its classes and shape).
        Err(_) => Built::<B>::new(config.clone(), device)?.plan,
    };
    let loaded = checkpoint::read(&folder, LocalNetwork::<B>::init(&plan, device), device)?;
    let network = loaded.network.valid().into_primary();

    let image_size = plan.network.image_size;
    let mut data = DataConfig::new(config.data.dataset, image_size);
    data.data_dir = config.data.data_dir.clone();
    let classes = data.class_names().unwrap_or(None);
    let trained = Provenance {
        dataset: config.data.dataset.to_string(),
        rule: rule_text(&config, plan.network.num_units(), plan.num_modules()),
        epoch,
        epochs: config.epochs,
        test_accuracy: history.get(epoch - 1).map(|m| m.test_accuracy),
        seed: config.seed,
    };
    let manifest = export::save(
        &network,
        &plan.network,
        &data.preprocess(),
        classes,
        Some(trained),
        out,
    )?;
    // Read back into a network rebuilt from the manifest alone, as a user would load it.
    export::load::<B::InnerBackend>(out, device)?;
    Ok(RunExport {
        checkpoint: folder,
        epoch,
        manifest,
    })
}
