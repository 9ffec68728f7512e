//! `auglocal predict`: classify image files with an exported model.

use std::path::{Path, PathBuf};

use anyhow::Result;
use auglocal_kernels::FastOpsAutodiff;
use auglocal_model::export::{self, Exported};
use clap::Args;
use serde::Serialize;

use crate::device::{BackendJob, Device, DeviceMemory, dispatch};
use crate::exit::usage;
use crate::format::thousands;

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Flags of `auglocal predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The exported model: its `.safetensors` file or its `.json` manifest.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// PNG or JPEG files, or folders of them; a folder of class folders (`class/*.png`, named
    /// by class name or label number) is scored: its accuracy is printed too.
    #[arg(required = true, value_name = "IMAGES")]
    images: Vec<PathBuf>,
    /// Classes shown per image, most probable first.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Where to run: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One image to classify, with its class where its folder names one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Input {
    path: PathBuf,
    label: Option<usize>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|rd| {
            rd.map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| usage(format!("{}: cannot list: {e}", dir.display())))?;
    entries.sort();
    Ok(entries)
}

/// The images named on the command line: files as given, the images of folders, and the
/// images of class folders inside them, labelled by `class_of`.
fn collect(paths: &[PathBuf], class_of: &dyn Fn(&str) -> Option<usize>) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_file() {
            inputs.push(Input {
                path: path.clone(),
                label: None,
            });
            continue;
        }
        if !path.is_dir() {
            let what = if path.exists() {
                "not a regular file or folder (a device, a FIFO or a socket); name PNG or JPEG \
                 files or folders of them"
            } else {
                "no such file or folder"
            };
            return Err(usage(format!("{}: {what}", path.display())));
        }
        for entry in sorted_entries(path)? {
            if entry.is_dir() {
                let name = entry
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into());
                let label = class_of(&name).ok_or_else(|| {
                    usage(format!(
                        "{}: a folder that names no class of the model (class folders are \
                         named by class name or label number)",
                        entry.display()
                    ))
                })?;
                for image in sorted_entries(&entry)?.into_iter().filter(|p| is_image(p)) {
                    inputs.push(Input {
                        path: image,
                        label: Some(label),
                    });
                }
            } else if is_image(&entry) {
                inputs.push(Input {
                    path: entry,
                    label: None,
                });
            }
        }
    }
    if inputs.is_empty() {
        return Err(usage(
            "no image found (PNG or JPEG files, by extension) in what was given",
        ));
    }
    Ok(inputs)
}

/// One class and its probability.
#[derive(Debug, Serialize)]
struct Ranked {
    class: usize,
    name: String,
    probability: f32,
}

/// What `predict` says of one image.
#[derive(Debug, Serialize)]
struct ImagePrediction {
    image: PathBuf,
    /// Its class, from its folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<usize>,
    /// Its class's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    label_name: Option<String>,
    predicted: usize,
    name: String,
    top: Vec<Ranked>,
}

/// Accuracy over the labelled images.
#[derive(Debug, Serialize)]
struct Score {
    correct: usize,
    images: usize,
    accuracy: f64,
}

/// What `auglocal predict --json` prints.
#[derive(Debug, Serialize)]
struct PredictReport {
    model: PathBuf,
    device: String,
    predictions: Vec<ImagePrediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<Score>,
}

struct PredictJob<'a>(&'a PredictArgs);

impl BackendJob for PredictJob<'_> {
    type Output = PredictReport;

    fn run<B: FastOpsAutodiff>(self, device: B::Device, _: DeviceMemory) -> Result<PredictReport> {
        let args = self.0;
        let model: Exported<B::InnerBackend> = export::load(&args.model, &device)?;
        let m = &model.manifest;
        let num_classes = m.network.num_classes;
        let class_of = |name: &str| {
            m.classes
                .as_ref()
                .and_then(|names| names.iter().position(|n| n == name))
                .or_else(|| name.parse::<usize>().ok().filter(|&l| l < num_classes))
        };
        let inputs = collect(&args.images, &class_of)?;
        let mut predictions = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(args.batch) {
            // Each image is brought to the network's size as soon as it is decoded, so that one
            // decoded image is held at a time, whatever its size and the batch.
            let images = chunk
                .iter()
                .map(|input| export::read_image(&input.path).map(|image| model.prepare(image)))
                .collect::<Result<Vec<_>, _>>()?;
            for (input, p) in chunk.iter().zip(model.predict_prepared(images, args.top)) {
                if p.top
                    .iter()
                    .any(|(_, probability)| !probability.is_finite())
                {
                    return Err(usage(format!(
                        "{}: the model's outputs are not numbers (NaN) for {}: its weights hold \
                         NaN or infinity; export it again from a good checkpoint",
                        args.model.display(),
                        input.path.display()
                    )));
                }
                predictions.push(ImagePrediction {
                    image: input.path.clone(),
                    label: input.label,
                    label_name: input.label.map(|l| model.class_name(l)),
                    predicted: p.label,
                    name: model.class_name(p.label),
                    top: p
                        .top
                        .iter()
                        .map(|&(class, probability)| Ranked {
                            class,
                            name: model.class_name(class),
                            probability,
                        })
                        .collect(),
                });
            }
        }
        let labelled: Vec<&ImagePrediction> =
            predictions.iter().filter(|p| p.label.is_some()).collect();
        let score = (!labelled.is_empty()).then(|| {
            let correct = labelled
                .iter()
                .filter(|p| p.label == Some(p.predicted))
                .count();
            Score {
                correct,
                images: labelled.len(),
                accuracy: correct as f64 / labelled.len() as f64,
            }
        });
        Ok(PredictReport {
            model: args.model.clone(),
            device: args.device.to_string(),
            predictions,
            score,
        })
    }
}

/// Classifies images with an exported model.
pub fn run(args: &PredictArgs) -> Result<()> {
    if args.top == 0 || args.batch == 0 {
        return Err(usage("--top and --batch must be at least 1"));
    }
    let report = dispatch(args.device, PredictJob(args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let labelled = report.score.is_some();
    let mut header = vec!["image", "predicted", "probability", "next"];
    if labelled {
        header.push("true class");
    }
    let mut table = crate::plan::markdown_table(header);
    for p in &report.predictions {
        let next = p.top[1..]
            .iter()
            .map(|r| format!("{} {:.3}", r.name, r.probability))
            .collect::<Vec<_>>()
            .join(", ");
        let mut row = vec![
            p.image.display().to_string(),
            p.name.clone(),
            format!("{:.3}", p.top[0].probability),
            next,
        ];
        if labelled {
            row.push(match (p.label, &p.label_name) {
                (Some(l), Some(name)) if l == p.predicted => name.clone(),
                (Some(_), Some(name)) => format!("{name} (wrong)"),
                _ => String::new(),
            });
        }
        table.add_row(row);
    }
    crate::plan::align_right(&mut table, &[2]);
    println!("{table}");
    if let Some(s) = &report.score {
        println!(
            "\naccuracy {:.2}% ({} of {} labelled images)",
            100.0 * s.accuracy,
            thousands(s.correct as u64),
            thousands(s.images as u64)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("auglocal-predict-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    #[test]
    fn folders_files_and_class_folders_are_collected_in_order() {
        let dir = scratch("collect");
        for f in [
            "b.png",
            "a.JPG",
            "notes.txt",
            "3/x.png",
            "3/y.jpeg",
            "Coat/z.png",
        ] {
            let path = dir.join(f);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, b"").expect("write");
        }
        let class_of = |name: &str| match name {
            "Coat" => Some(4),
            n => n.parse().ok(),
        };
        let found = collect(std::slice::from_ref(&dir), &class_of).expect("collected");
        let got: Vec<(String, Option<usize>)> = found
            .iter()
            .map(|i| {
                let rel = i.path.strip_prefix(&dir).expect("inside");
                (rel.display().to_string(), i.label)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("3/x.png".into(), Some(3)),
                ("3/y.jpeg".into(), Some(3)),
                ("Coat/z.png".into(), Some(4)),
                ("a.JPG".into(), None),
                ("b.png".into(), None),
            ]
        );
        std::fs::create_dir_all(dir.join("Hat")).expect("mkdir");
        let err = collect(std::slice::from_ref(&dir), &class_of).expect_err("Hat");
        assert!(err.to_string().contains("Hat"), "{err}");
        assert_eq!(crate::exit::status(&err), 2);
        let err = collect(&[dir.join("missing.png")], &class_of).expect_err("missing");
        assert_eq!(crate::exit::status(&err), 2);
    }
}
