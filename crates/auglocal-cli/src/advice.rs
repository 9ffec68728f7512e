//! The libraries' errors in the command line's words.
//!
//! A library message names a setting by its place in a run's configuration, in backticks
//! (`` `config.batch` ``, `` `config.network.width` ``; the model and data crates, which know
//! no run, `` `image_size` `` and `` `data_dir` ``), and an action by the call that does it
//! (`` `Run::overwrite` ``). Here each becomes the flag that sets or does it, so that a
//! command-line user reads `--batch` where a library user reads `config.batch`. An error
//! whose advice is a whole command ([`TrainError::NodeCount`]) is worded here in full.

use auglocal_train::TrainError;

/// Each name the libraries' messages use, and the flag that stands for it on the command line.
pub const FLAGS: &[(&str, &str)] = &[
    ("config.network.arch", "--arch"),
    ("config.network.width", "--width"),
    ("config.network.image_size", "--image-size"),
    ("config.local.rule", "--rule"),
    ("config.local.k", "--k"),
    ("config.local.depth", "--depth"),
    ("config.local.pyramid", "--pyramid"),
    ("config.local.infopro_weights", "--infopro-weights"),
    ("config.data.dataset", "--dataset"),
    ("config.data.data_dir", "--data-dir"),
    ("config.data.train_limit", "--train-limit"),
    ("config.data.test_limit", "--test-limit"),
    ("config.data.workers", "--workers"),
    ("config.epochs", "--epochs"),
    ("config.batch", "--batch"),
    ("config.lr", "--lr"),
    ("config.schedule.warmup", "--warmup"),
    ("config.optimizer.momentum", "--momentum"),
    ("config.optimizer.weight_decay", "--weight-decay"),
    ("config.seed", "--seed"),
    ("config.aux_accuracy", "--aux-accuracy"),
    ("config.keep_checkpoints", "--keep-checkpoints"),
    ("config.execution.threads", "--threads"),
    ("image_size", "--image-size"),
    ("data_dir", "--data-dir"),
    ("Run::resume", "--resume"),
    ("Run::overwrite", "--overwrite"),
    ("EpochChoice::Epoch", "--epoch N"),
];

/// `text` with each name of [`FLAGS`] in backticks replaced by its flag.
pub fn in_flags(text: &str) -> String {
    FLAGS.iter().fold(text.to_string(), |text, (name, flag)| {
        text.replace(&format!("`{name}`"), flag)
    })
}

/// `err` as `{err:#}` prints it (each error of the chain, joined by ": "), in the command
/// line's words.
pub fn message(err: &anyhow::Error) -> String {
    let chain: Vec<String> = err
        .chain()
        .map(|e| match e.downcast_ref::<TrainError>() {
            Some(e) => train_error(e),
            None => e.to_string(),
        })
        .collect();
    in_flags(&chain.join(": "))
}

/// A training error whose advice is a command.
fn train_error(err: &TrainError) -> String {
    match err {
        TrainError::NodeCount {
            path,
            trained_by,
            world,
        } => {
            let dir = path.parent().unwrap_or(path).display();
            let job = match world {
                1 => "this is one process alone".to_string(),
                n => format!("this MPI job has {n}"),
            };
            let how = match trained_by {
                1 => format!("`auglocal train --resume {dir}`, without mpirun"),
                n => format!("`mpirun -np {n} auglocal train --resume {dir}`"),
            };
            format!(
                "{}: the run is trained by {trained_by} process(es) (field `execution.nodes`), \
                 but {job}; resume it with {how}",
                path.display()
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use anyhow::Context;
    use auglocal_plan::LossWeights;
    use auglocal_train::{
        DataSettings, ExecutionSettings, LocalSettings, NetworkSettings, Schedule, TrainConfig,
    };
    use clap::CommandFactory;

    use super::*;

    /// Every path of `value`'s fields, dotted (`network.width`).
    fn paths(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(map) = value {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                paths(v, &path, out);
                out.insert(path);
            }
        }
    }

    #[test]
    fn every_name_is_a_setting_of_the_configuration_and_every_flag_exists() {
        // Every optional setting set, so that each shows in the JSON.
        let full = TrainConfig {
            network: NetworkSettings {
                image_size: Some(32),
                ..Default::default()
            },
            local: LocalSettings {
                k: Some(4),
                infopro_weights: Some(LossWeights::reference(auglocal_model::Arch::ResNet32)),
                ..Default::default()
            },
            data: DataSettings {
                data_dir: Some("data".into()),
                train_limit: Some(1),
                test_limit: Some(1),
                ..Default::default()
            },
            schedule: Schedule::Cosine { warmup: Some(1) },
            execution: ExecutionSettings {
                threads: Some(1),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut settings = BTreeSet::new();
        paths(
            &serde_json::to_value(&full).expect("json"),
            "",
            &mut settings,
        );
        let mut flags = BTreeSet::new();
        for command in crate::Cli::command().get_subcommands() {
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    flags.insert(format!("--{long}"));
                }
            }
        }
        for (name, flag) in FLAGS {
            if let Some(path) = name.strip_prefix("config.") {
                assert!(
                    settings.contains(path),
                    "`{name}` is no setting: {settings:?}"
                );
            }
            let flag = flag.split(' ').next().expect("a flag");
            assert!(flags.contains(flag), "{flag} is no flag of auglocal");
        }
    }

    #[test]
    fn library_words_become_flags_and_a_node_count_a_command() {
        let refused = TrainError::refused(
            "runs/x",
            "already holds a run (config.json); resume it (`Run::resume`), replace it \
             (`Run::overwrite`), or choose another directory",
        );
        let err = anyhow::Error::from(refused).context("training");
        assert_eq!(
            message(&err),
            "training: runs/x: already holds a run (config.json); resume it (--resume), \
             replace it (--overwrite), or choose another directory"
        );
        let memory = TrainError::TooLarge {
            what: "batch 4096".into(),
            needed_gib: 90.0,
            available_gib: 24.0,
        };
        let text = message(&memory.into());
        assert!(
            text.ends_with("use a smaller --batch, --width or --image-size"),
            "{text}"
        );
        // Settings named as fields of config.json stay as they are.
        assert_eq!(
            in_flags("field `network.width` is 0.5"),
            "field `network.width` is 0.5"
        );

        let count = |trained_by, world| {
            let err = TrainError::NodeCount {
                path: "runs/x/config.json".into(),
                trained_by,
                world,
            };
            (
                err.to_string(),
                message(&Err::<(), _>(err).context("resuming").expect_err("an error")),
            )
        };
        let (library, cli) = count(2, 1);
        assert!(
            library.contains("resume it with as many (`Run::resume_on_nodes`)"),
            "{library}"
        );
        assert!(
            cli.ends_with(
                "but this is one process alone; resume it with \
                 `mpirun -np 2 auglocal train --resume runs/x`"
            ),
            "{cli}"
        );
        let (_, cli) = count(1, 3);
        assert!(
            cli.contains("but this MPI job has 3; resume it with `auglocal train --resume runs/x`"),
            "{cli}"
        );
    }
}
