//! `auglocal export` and `auglocal predict`: a trained run's primary network leaves the run as
//! safetensors + manifest, loads in another process with the model crate alone, scores what
//! `auglocal eval` scores, classifies real image files as the evaluation does, and refuses
//! broken inputs with exit status 2.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auglocal_data::{Data, DataConfig, DatasetName};
use auglocal_model::export;
use burn::backend::Flex;
use burn::module::Module;
use common::{auglocal, stderr, stdout, temp};

fn ok(args: &[&str]) -> String {
    let out = auglocal(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Runs `args`, expects exit status 2 and `needle` in the error.
fn refused(args: &[&str], needle: &str) {
    let out = auglocal(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert!(
        stderr(&out).contains(needle),
        "{needle:?} not in: {}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

/// The names of the tensors of a safetensors file (its header is a length, then JSON).
fn tensor_names(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("weights");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = json(std::str::from_utf8(&bytes[8..8 + len]).expect("utf-8 header"));
    header
        .as_object()
        .expect("an object")
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

/// The repository's Fashion-MNIST, or `None` (with a loud note) when it was not fetched; with
/// `AUGLOCAL_REQUIRE_DATA=1` (CI) a missing data set fails the test.
fn fashion_mnist() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!("{} is missing: run scripts/fetch-data.sh", dir.display());
    if std::env::var("AUGLOCAL_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{message} (AUGLOCAL_REQUIRE_DATA=1)");
    }
    eprintln!("\n*** SKIPPED export/predict test on real data: {message} ***\n");
    None
}

const TEST_IMAGES: usize = 200;
const BATCH: usize = 32;

#[test]
fn an_exported_run_scores_and_predicts_as_its_evaluation_on_real_images() {
    let Some(data_dir) = fashion_mnist() else {
        return;
    };
    let dir = temp("export-real");
    let run = dir.join("run");
    let batch = BATCH.to_string();
    let test_limit = TEST_IMAGES.to_string();
    ok(&[
        "train",
        "--out",
        s(&run),
        "--data-dir",
        s(&data_dir),
        "--arch",
        "resnet20",
        "--width",
        "0.25",
        "--rule",
        "auglocal",
        "--k",
        "4",
        "--train-limit",
        "640",
        "--test-limit",
        &test_limit,
        "--epochs",
        "2",
        "--batch",
        &batch,
        "--lr",
        "0.05",
        "--keep-checkpoints",
        "all",
    ]);
    let eval = json(&ok(&["eval", s(&run), "--json"]));
    let model = dir.join("model.safetensors");
    let text = ok(&["export", s(&run), "--out", s(&model)]);
    assert!(text.contains("epoch 2 of 2"), "{text}");

    // The manifest says what was trained, and the file holds the primary network only: its
    // tensors' floats (parameters and BatchNorm statistics) plus a header.
    let manifest = json(&std::fs::read_to_string(dir.join("model.json")).expect("manifest"));
    assert_eq!(manifest["trained"]["epoch"], 2);
    assert_eq!(manifest["trained"]["dataset"], "fashion-mnist");
    assert_eq!(manifest["classes"][9], "Ankle boot");
    assert_eq!(manifest["preprocess"]["stored"]["height"], 28);
    let names = tensor_names(&model);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("units.") || n.starts_with("head.")),
        "{names:?}"
    );

    // In this process, with the model crate only: the test accuracy of `auglocal eval`.
    let device = Default::default();
    let loaded = export::load::<Flex>(&model, &device).expect("loads");
    let floats = loaded.network.num_params() as u64;
    let bytes = std::fs::metadata(&model).expect("weights").len();
    assert!(
        bytes >= 4 * floats && bytes < 4 * floats + 32 * 1024,
        "{bytes} bytes for {floats} floats"
    );
    let mut config = DataConfig::new(DatasetName::FashionMnist, 32);
    config.data_dir = Some(data_dir);
    let data = Data::open(&config)
        .expect("Fashion-MNIST")
        .limit(None, Some(TEST_IMAGES));
    let mut ours = Vec::new();
    let mut labels = Vec::new();
    for start in (0..TEST_IMAGES).step_by(BATCH) {
        let samples: Vec<_> = (start..(start + BATCH).min(TEST_IMAGES))
            .map(|i| data.test.load(i).expect("image"))
            .collect();
        labels.extend(samples.iter().map(|s| s.label));
        ours.extend(loaded.predict(samples, 1).into_iter().map(|p| p.label));
    }
    let correct = ours.iter().zip(&labels).filter(|(p, l)| p == l).count();
    assert_eq!(
        correct as f64 / TEST_IMAGES as f64,
        eval["test_accuracy"].as_f64().expect("accuracy"),
        "the exported network scores what eval scores"
    );

    // The same images as PNG files in class folders: predict gives the same classes.
    let images = dir.join("images");
    ok(&[
        "data",
        "--data-dir",
        s(&config.data_dir.clone().expect("dir")),
        "--write-images",
        s(&images),
        "--limit",
        &test_limit,
    ]);
    let report = json(&ok(&[
        "predict",
        "--model",
        s(&model),
        s(&images),
        "--json",
        "--top",
        "3",
    ]));
    let predicted: BTreeMap<usize, u64> = report["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| {
            let file = Path::new(p["image"].as_str().expect("path"));
            let index: usize = file
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .expect("index");
            assert_eq!(p["label"].as_u64(), Some(labels[index] as u64));
            assert_eq!(p["top"].as_array().expect("top").len(), 3);
            (index, p["predicted"].as_u64().expect("class"))
        })
        .collect();
    assert_eq!(predicted.len(), TEST_IMAGES);
    for (i, p) in &predicted {
        assert_eq!(*p, ours[*i] as u64, "image {i}");
    }
    assert_eq!(report["score"]["correct"], correct);
    // The table names classes: each image of class 9 on a line with the name its JSON gave.
    let table = ok(&["predict", "--model", s(&model), s(&images.join("9"))]);
    let predictions = report["predictions"]
        .as_array()
        .expect("predictions")
        .iter();
    let mut named = 0;
    for p in predictions.filter(|p| p["label"].as_u64() == Some(9)) {
        let (image, name) = (p["image"].as_str().expect("path"), p["name"].as_str());
        let line = table.lines().find(|l| l.contains(image));
        let line = line.unwrap_or_else(|| panic!("{image} is not in the table:\n{table}"));
        assert!(line.contains(name.expect("a class name")), "{line}");
        named += 1;
    }
    assert!(named > 0 && table.lines().count() == named + 2, "{table}");

    // Other epochs: --epoch N where kept, --best by the metrics.
    let first = dir.join("first.safetensors");
    ok(&["export", s(&run), "--epoch", "1", "--out", s(&first)]);
    let m1 = json(&std::fs::read_to_string(dir.join("first.json")).expect("manifest"));
    assert_eq!(m1["trained"]["epoch"], 1);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
    let accs: Vec<f64> = metrics
        .lines()
        .map(|l| json(l)["test_accuracy"].as_f64().expect("acc"))
        .collect();
    let best_epoch = if accs[1] > accs[0] { 2 } else { 1 };
    let best = dir.join("best.safetensors");
    ok(&["export", s(&run), "--best", "--out", s(&best)]);
    let mb = json(&std::fs::read_to_string(dir.join("best.json")).expect("manifest"));
    assert_eq!(mb["trained"]["epoch"], best_epoch);
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn broken_runs_models_and_images_are_refused_with_status_2() {
    let dir = temp("export-refusals");
    let run = dir.join("run");
    ok(&[
        "train",
        "--out",
        s(&run),
        "--dataset",
        "synthetic",
        "--arch",
        "resnet20",
        "--width",
        "0.25",
        "--k",
        "4",
        "--train-limit",
        "32",
        "--test-limit",
        "16",
        "--batch",
        "16",
        "--epochs",
        "2",
    ]);
    let model = dir.join("model.safetensors");
    let m = s(&model);
    // Epoch 1's checkpoint was not kept (the default keeps the last).
    refused(
        &["export", s(&run), "--epoch", "1", "--out", m],
        "--keep-checkpoints",
    );
    refused(
        &["export", s(&run), "--epoch", "7", "--out", m],
        "no complete checkpoint of epoch 7",
    );
    ok(&["export", s(&run), "--out", m]);
    refused(&["export", s(&run), "--out", m], "--overwrite");
    ok(&["export", s(&run), "--out", m, "--overwrite"]);

    // A run that never finished an epoch.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::fs::copy(run.join("config.json"), empty.join("config.json")).expect("copy");
    refused(
        &["export", s(&empty), "--out", s(&dir.join("x.safetensors"))],
        "no complete checkpoint",
    );

    // An image to classify, and broken ones.
    let image = dir.join("image.png");
    let png = auglocal_data::Sample {
        pixels: vec![128; 3 * 40 * 50],
        shape: auglocal_data::ImageShape::new(3, 40, 50),
        label: 0,
    };
    auglocal_data::formats::encode::write_png(&png, &image).expect("png");
    let out = ok(&["predict", "--model", m, s(&image)]);
    assert!(out.contains("image.png"), "{out}");
    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n not really").expect("write");
    refused(&["predict", "--model", m, s(&corrupt)], "corrupt.png");
    refused(
        &["predict", "--model", m, s(&dir.join("nothing.png"))],
        "no such file",
    );
    refused(
        &["predict", "--model", m, "/dev/zero"],
        "not a regular file or folder",
    );

    // The weights changed, truncated, without their manifest, or not the manifest's.
    let bytes = std::fs::read(&model).expect("weights");
    std::fs::write(&model, &bytes[..bytes.len() / 2]).expect("truncate");
    refused(&["predict", "--model", m, s(&image)], "truncated");
    let mut changed = bytes.clone();
    changed[bytes.len() - 1] ^= 0xff;
    std::fs::write(&model, &changed).expect("change");
    refused(&["predict", "--model", m, s(&image)], "SHA-256");
    let alone = dir.join("alone.safetensors");
    std::fs::write(&alone, &bytes).expect("copy");
    refused(&["predict", "--model", s(&alone), s(&image)], "alone.json");
    // Weights that are all NaN, their checksum made to match: refused, not predicted as null.
    let original = std::fs::read_to_string(dir.join("model.json")).expect("manifest");
    let header = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut nan = bytes.clone();
    for value in nan[8 + header..].chunks_exact_mut(4) {
        value.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    let mut manifest = json(&original);
    manifest["weights"] =
        serde_json::to_value(export::WeightsFile::of("model.safetensors", &nan)).expect("json");
    std::fs::write(&model, &nan).expect("write");
    std::fs::write(dir.join("model.json"), manifest.to_string()).expect("write");
    refused(&["predict", "--model", m, s(&image)], "not numbers (NaN)");
    std::fs::write(dir.join("model.json"), original).expect("restore");
    // Another architecture's manifest, its checksum made to match: the tensors do not fit.
    std::fs::write(&model, &bytes).expect("restore");
    let mut manifest = json(&std::fs::read_to_string(dir.join("model.json")).expect("manifest"));
    let other = auglocal_model::NetworkConfig::new(auglocal_model::Arch::ResNet32)
        .with_width_multiplier(0.25)
        .spec()
        .expect("spec");
    manifest["summary"] = serde_json::to_value(export::Summary::of(&other)).expect("summary");
    manifest["network"] = serde_json::to_value(&other).expect("network");
    std::fs::write(dir.join("model.json"), manifest.to_string()).expect("write");
    refused(&["predict", "--model", m, s(&image)], "another network");
    std::fs::write(dir.join("model.json"), "{\"format\": 1, \"weights\": 3}").expect("write");
    refused(
        &["predict", "--model", m, s(&image)],
        "not an auglocal model manifest",
    );
    std::fs::remove_dir_all(dir).expect("clean up");
}
