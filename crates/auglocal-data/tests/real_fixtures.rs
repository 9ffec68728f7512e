//! Every official reader on real pixels: the 20 CIFAR-10 sample images (and CIFAR-100,
//! Fashion-MNIST and ImageNet samples) from the foolbox wheel, written here in each official
//! layout straight from the format's definition, then read back.
//!
//! The CIFAR-10 samples carry the labels of the first 20 official test images.

mod common;

use std::path::{Path, PathBuf};

use auglocal_data::formats::cifar::{self, Cifar};
use auglocal_data::formats::folder::ImageFolder;
use auglocal_data::formats::mat::{mi, write};
use auglocal_data::formats::{idx, stl10, svhn};
use auglocal_data::{Augment, ImageSet, ImageShape, ImageSource, Sample, augment::item_rng};

/// A sample image: RGB pixels as `rgb[y][x][c]` and the label from its file name.
struct Real {
    rgb: image::RgbImage,
    label: usize,
    path: PathBuf,
}

impl Real {
    fn px(&self, c: usize, y: usize, x: usize) -> u8 {
        self.rgb.get_pixel(x as u32, y as u32)[c]
    }
}

/// `<prefix>_NN_LABEL.png` files of the foolbox folder, in order.
fn samples(prefix: &str, test: &str) -> Option<Vec<Real>> {
    let dir = common::require("foolbox", test)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("foolbox folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&format!("{prefix}_"))
        })
        .collect();
    paths.sort();
    let reals: Vec<Real> = paths
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("name")
                .to_string();
            let label = stem
                .rsplit('_')
                .next()
                .and_then(|l| l.parse().ok())
                .expect("label");
            let rgb = image::open(&path).expect("decodes").to_rgb8();
            Real { rgb, label, path }
        })
        .collect();
    assert_eq!(reals.len(), 20, "foolbox ships 20 {prefix} images");
    Some(reals)
}

fn assert_same_pixels(set: &ImageSet, reals: &[Real], scale: usize) {
    assert_eq!(set.len(), reals.len());
    for (i, real) in reals.iter().enumerate() {
        let s = set.sample(i).expect("in range");
        assert_eq!(s.label, real.label, "label of image {i}");
        let side = s.shape.height;
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    assert_eq!(
                        s.at(c, y, x),
                        real.px(c, y / scale, x / scale),
                        "image {i} ({}) pixel c{c} y{y} x{x}",
                        real.path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn cifar10_samples_carry_the_first_official_test_labels() {
    let Some(reals) = samples("cifar10", "cifar10 labels") else {
        return;
    };
    let labels: Vec<usize> = reals.iter().map(|r| r.label).collect();
    assert_eq!(
        labels,
        vec![3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
    );
}

#[test]
fn cifar10_and_cifar100_binary_round_trip() {
    let dir = common::temp_dir("cifar");
    for (prefix, which) in [("cifar10", Cifar::Ten), ("cifar100", Cifar::Hundred)] {
        let Some(reals) = samples(prefix, "cifar binary") else {
            return;
        };
        // Record: [coarse label,] label, 1,024 R, 1,024 G, 1,024 B, each row-major.
        let mut bytes = Vec::new();
        for r in &reals {
            if which == Cifar::Hundred {
                bytes.push((r.label / 5) as u8);
            }
            bytes.push(r.label as u8);
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        bytes.push(r.px(c, y, x));
                    }
                }
            }
        }
        let path = dir.join(format!("{prefix}.bin"));
        std::fs::write(&path, &bytes).expect("write fixture");
        let set = cifar::read(&[path], which).expect("reads");
        assert_same_pixels(&set, &reals, 1);
    }
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// SVHN's X: pixel (r, c, ch, n) at r + 32 c + 1024 ch + 3072 n (column-major).
fn svhn_x(reals: &[Real], transposed: bool) -> Vec<u8> {
    let mut x = vec![0u8; reals.len() * 3072];
    for (n, real) in reals.iter().enumerate() {
        for ch in 0..3 {
            for r in 0..32 {
                for c in 0..32 {
                    let at = if transposed { c + 32 * r } else { r + 32 * c };
                    x[at + 1024 * ch + 3072 * n] = real.px(ch, r, c);
                }
            }
        }
    }
    x
}

fn svhn_file(reals: &[Real], transposed: bool) -> Vec<u8> {
    let n = reals.len() as i32;
    let mut f = write::header();
    f.extend(write::variable(
        "X",
        9,
        &[32, 32, 3, n],
        mi::UINT8,
        &svhn_x(reals, transposed),
    ));
    // Labels 1..10 with 10 for the digit 0, stored as doubles as in the official files.
    let y: Vec<u8> = reals
        .iter()
        .map(|r| {
            if r.label == 0 {
                10.0f64
            } else {
                r.label as f64
            }
        })
        .flat_map(f64::to_le_bytes)
        .collect();
    f.extend(write::variable("y", 6, &[n, 1], mi::DOUBLE, &y));
    f
}

#[test]
fn svhn_mat_round_trips_in_the_right_orientation() {
    let Some(reals) = samples("cifar10", "svhn .mat") else {
        return;
    };
    let dir = common::temp_dir("svhn");
    let path = dir.join("test_32x32.mat");
    std::fs::write(&path, svhn_file(&reals, false)).expect("write fixture");
    assert_same_pixels(&svhn::read(&path).expect("reads"), &reals, 1);

    // Negative control: planes written row-major (transposed) must not read back equal.
    std::fs::write(&path, svhn_file(&reals, true)).expect("write fixture");
    let wrong = svhn::read(&path).expect("reads");
    let first = wrong.sample(0).expect("image 0");
    let differs = (0..32).any(|y| (0..32).any(|x| first.at(0, y, x) != reals[0].px(0, y, x)));
    assert!(differs, "a transposed plane must fail the pixel check");
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// STL-10's X: pixel (n, ch, r, c) at n * 27648 + ch * 9216 + c * 96 + r, the 32x32 sample
/// enlarged 3x by repeating pixels.
fn stl_x(reals: &[Real], transposed: bool) -> Vec<u8> {
    let mut x = vec![0u8; reals.len() * 27648];
    for (n, real) in reals.iter().enumerate() {
        for ch in 0..3 {
            for r in 0..96 {
                for c in 0..96 {
                    let at = if transposed { r * 96 + c } else { c * 96 + r };
                    x[n * 27648 + ch * 9216 + at] = real.px(ch, r / 3, c / 3);
                }
            }
        }
    }
    x
}

#[test]
fn stl10_binary_round_trips_in_the_right_orientation() {
    let Some(reals) = samples("cifar10", "stl10 .bin") else {
        return;
    };
    let dir = common::temp_dir("stl10");
    let (xp, yp) = (dir.join("test_X.bin"), dir.join("test_y.bin"));
    let labels: Vec<u8> = reals.iter().map(|r| r.label as u8 + 1).collect();
    std::fs::write(&yp, &labels).expect("write labels");
    std::fs::write(&xp, stl_x(&reals, false)).expect("write images");
    let set = stl10::read(&xp, &yp).expect("reads");
    assert_eq!(set.shape(), ImageShape::new(3, 96, 96));
    assert_same_pixels(&set, &reals, 3);

    std::fs::write(&xp, stl_x(&reals, true)).expect("write images");
    let wrong = stl10::read(&xp, &yp)
        .expect("reads")
        .sample(0)
        .expect("image 0");
    let differs =
        (0..96).any(|y| (0..96).any(|x| wrong.at(1, y, x) != reals[0].px(1, y / 3, x / 3)));
    assert!(differs, "a transposed plane must fail the pixel check");
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn idx_round_trips_plain_and_gzipped_on_fashion_mnist_samples() {
    let Some(reals) = samples("fashionMNIST", "idx") else {
        return;
    };
    let dir = common::temp_dir("idx");
    let mut images = vec![0, 0, 8, 3];
    for d in [reals.len() as u32, 28, 28] {
        images.extend(d.to_be_bytes());
    }
    for r in &reals {
        for y in 0..28 {
            for x in 0..28 {
                images.push(r.px(0, y, x));
            }
        }
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((reals.len() as u32).to_be_bytes());
    labels.extend(reals.iter().map(|r| r.label as u8));
    let (ip, lp) = (
        dir.join("images-idx3-ubyte"),
        dir.join("labels-idx1-ubyte.gz"),
    );
    std::fs::write(&ip, &images).expect("write");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &labels).expect("gzip");
    std::fs::write(&lp, gz.finish().expect("gzip")).expect("write");
    let set = idx::read(&ip, &lp, 10, Some((28, 28))).expect("reads");
    assert_eq!(set.shape(), ImageShape::new(1, 28, 28));
    for (i, r) in reals.iter().enumerate() {
        let s = set.sample(i).expect("in range");
        assert_eq!(s.label, r.label);
        assert!(
            (0..28).all(|y| (0..28).all(|x| s.at(0, y, x) == r.px(0, y, x))),
            "image {i}"
        );
    }
    std::fs::remove_dir_all(dir).expect("clean up");
}

fn chw(real: &Real) -> Sample {
    let (w, h) = real.rgb.dimensions();
    let shape = ImageShape::new(3, h as usize, w as usize);
    let mut pixels = Vec::with_capacity(shape.len());
    for c in 0..3 {
        for y in 0..h as usize {
            for x in 0..w as usize {
                pixels.push(real.px(c, y, x));
            }
        }
    }
    Sample {
        pixels,
        shape,
        label: real.label,
    }
}

#[test]
fn image_folder_decodes_real_jpegs_lazily_by_class() {
    let Some(dir) = common::require("foolbox", "image folder") else {
        return;
    };
    let root = common::temp_dir("imagenet");
    let mut reals = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("foolbox") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if let Some(rest) = name.strip_prefix("imagenet_") {
            let class = rest
                .trim_end_matches(".jpg")
                .rsplit('_')
                .next()
                .expect("label");
            let class_dir = root.join("train").join(format!("n{class:0>4}"));
            std::fs::create_dir_all(&class_dir).expect("class dir");
            let dest = class_dir.join(name.replace(".jpg", ".JPEG"));
            std::fs::copy(&path, &dest).expect("copy");
            let rgb = image::open(&path).expect("decodes").to_rgb8();
            reals.push((dest, format!("n{class:0>4}"), rgb));
        }
    }
    assert_eq!(reals.len(), 20);
    let folder = ImageFolder::open(&root.join("train")).expect("opens");
    assert_eq!(folder.len(), 20);
    assert!(
        folder.classes().windows(2).all(|w| w[0] < w[1]),
        "sorted classes"
    );
    for i in 0..folder.len() {
        let (path, label) = folder.item(i).expect("in range");
        let (_, class, rgb) = reals
            .iter()
            .find(|(p, _, _)| p == path)
            .expect("listed file");
        assert_eq!(&folder.classes()[label], class);
        let s = ImageSource::load(&folder, i).expect("decodes");
        let real = Real {
            rgb: rgb.clone(),
            label,
            path: path.to_path_buf(),
        };
        assert_eq!(s, chw(&real), "{}", path.display());
        // The ImageNet pipelines give 224x224 from these 512x512 photographs.
        let eval = Augment::ResizeCenterCrop {
            resize: 256,
            crop: 224,
        }
        .apply(s.clone(), &mut item_rng(0, 0, i));
        let train = Augment::RandomResizedCrop {
            size: 224,
            flip: true,
        }
        .apply(s, &mut item_rng(0, 0, i));
        assert_eq!(
            (eval.shape, train.shape),
            (ImageShape::new(3, 224, 224), ImageShape::new(3, 224, 224))
        );
    }
    std::fs::remove_dir_all(root).expect("clean up");
}

#[test]
fn fixtures_stay_out_of_the_repository() {
    // The fixtures are made in a temporary folder and removed; data/ is ignored by git.
    let gitignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.gitignore"))
            .expect(".gitignore");
    assert!(
        gitignore.lines().any(|l| l.trim() == "/data"),
        "{gitignore}"
    );
}
