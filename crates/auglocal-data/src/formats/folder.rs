//! Image folders in the ImageNet layout: `root/<class>/<image>.{JPEG,jpg,png}`, decoded lazily
//! (see [`super::decode`] for the limits).
//!
//! Classes are the sorted names of the subfolders of the training root; a validation root is
//! matched to them by name (a class the training root lacks is an error, never a silent
//! relabelling). An empty class folder, or an entry that cannot be resolved (a symlink loop, a
//! dangling link), is an error naming it.

use std::path::{Path, PathBuf};

use super::decode;
use crate::{DataError, Sample};

const EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// An image folder: class folders and their images, listed at open and decoded only when
/// loaded.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    items: Vec<(PathBuf, u32)>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .and_then(|rd| {
            rd.map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| DataError::io(dir, e))?;
    entries.sort();
    Ok(entries)
}

/// Whether `path` is a folder, following symlinks; one that cannot be resolved (a loop, a
/// dangling link) is an error naming it.
fn is_dir(path: &Path) -> Result<bool, DataError> {
    std::fs::metadata(path)
        .map(|m| m.is_dir())
        .map_err(|e| DataError::io(path, e))
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

impl ImageFolder {
    /// The class folders of `root`, sorted: the classes of a training root.
    pub fn list_classes(root: &Path) -> Result<Vec<String>, DataError> {
        let mut classes = Vec::new();
        for entry in sorted_entries(root)? {
            if is_dir(&entry)? {
                classes.push(name_of(&entry));
            }
        }
        if classes.is_empty() {
            return Err(DataError::format(
                root,
                "class subdirectories holding .JPEG, .jpg or .png images (root/<class>/<image>)",
                "no class directory",
            ));
        }
        Ok(classes)
    }

    /// Lists a training root: its class folders are the classes.
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let classes = Self::list_classes(root)?;
        Self::open_with_classes(root, &classes)
    }

    /// Lists `root/<class>/*` (JPEG and PNG, by extension, any case) with the labels of
    /// `classes` (a validation root, labelled as its training root): a class folder not in
    /// `classes` and a class folder without images are errors naming the folder.
    pub fn open_with_classes(root: &Path, classes: &[String]) -> Result<Self, DataError> {
        let mut items = Vec::new();
        for dir in sorted_entries(root)? {
            if !is_dir(&dir)? {
                continue;
            }
            let name = name_of(&dir);
            let label = classes.iter().position(|c| *c == name).ok_or_else(|| {
                DataError::format(
                    &dir,
                    format!(
                        "one of the {} classes of the training images (folders are matched by \
                         name)",
                        classes.len()
                    ),
                    format!("a class folder '{name}' that the training images lack"),
                )
            })?;
            let before = items.len();
            for file in sorted_entries(&dir)? {
                if is_image(&file) {
                    items.push((file, label as u32));
                }
            }
            if items.len() == before {
                return Err(DataError::format(
                    &dir,
                    "a class folder holding .JPEG, .jpg or .png images",
                    "an empty class folder",
                ));
            }
        }
        if items.is_empty() {
            return Err(DataError::format(
                root,
                "class subdirectories holding .JPEG, .jpg or .png images (root/<class>/<image>)",
                "no class directory",
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes: classes.to_vec(),
            items,
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names, in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Path and label of image `index`.
    pub fn item(&self, index: usize) -> Option<(&Path, usize)> {
        self.items
            .get(index)
            .map(|(p, l)| (p.as_path(), *l as usize))
    }

    /// Decodes image `index` to RGB, CHW.
    pub fn load(&self, index: usize) -> Result<Sample, DataError> {
        let (path, label) = self.item(index).ok_or_else(|| {
            DataError::Config(format!(
                "image {index} requested from {} which holds {}",
                self.root.display(),
                self.len()
            ))
        })?;
        decode::read(path, label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageShape;

    fn tempdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("auglocal-folder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn lists_sorted_classes_and_decodes_png() {
        let root = tempdir("ok");
        for (class, name) in [("n02", "b.png"), ("n01", "a.PNG"), ("n01", "notes.txt")] {
            std::fs::create_dir_all(root.join(class)).expect("dir");
            let path = root.join(class).join(name);
            if name.ends_with("txt") {
                std::fs::write(path, "not an image").expect("write");
            } else {
                image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 9]))
                    .save(path)
                    .expect("png");
            }
        }
        let folder = ImageFolder::open(&root).expect("valid");
        assert_eq!(folder.classes(), ["n01", "n02"]);
        assert_eq!(folder.len(), 2);
        let s = folder.load(1).expect("decodes");
        assert_eq!((s.label, s.shape), (1, ImageShape::new(3, 2, 3)));
        assert_eq!((s.at(0, 1, 2), s.at(1, 1, 2), s.at(2, 0, 0)), (2, 1, 9));
        std::fs::remove_dir_all(root).expect("clean up");
    }

    #[test]
    fn validation_classes_match_by_name_and_bad_folders_are_named() {
        let root = tempdir("val");
        let png = |path: PathBuf| {
            image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
                .save(path)
                .expect("png")
        };
        for class in ["cat", "dog"] {
            std::fs::create_dir_all(root.join("train").join(class)).expect("dir");
            png(root.join("train").join(class).join("a.png"));
        }
        let classes = ImageFolder::list_classes(&root.join("train")).expect("classes");
        // Only "dog" in val: it keeps label 1.
        std::fs::create_dir_all(root.join("val/dog")).expect("dir");
        png(root.join("val/dog/b.png"));
        let val = ImageFolder::open_with_classes(&root.join("val"), &classes).expect("val");
        assert_eq!(val.item(0).map(|(_, l)| l), Some(1));
        // A class the training images lack.
        std::fs::create_dir_all(root.join("val/emu")).expect("dir");
        png(root.join("val/emu/c.png"));
        let err = ImageFolder::open_with_classes(&root.join("val"), &classes).expect_err("emu");
        assert!(err.to_string().contains("emu"), "{err}");
        // An empty class folder.
        std::fs::create_dir_all(root.join("train/eel")).expect("dir");
        let err = ImageFolder::open(&root.join("train")).expect_err("empty");
        assert!(
            err.to_string().contains("eel") && err.to_string().contains("empty"),
            "{err}"
        );
        std::fs::remove_dir_all(root.join("train/eel")).expect("rm");
        // A symlink loop.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("loop", root.join("train/loop")).expect("symlink");
            let err = ImageFolder::open(&root.join("train")).expect_err("loop");
            assert!(err.to_string().contains("loop"), "{err}");
        }
        std::fs::remove_dir_all(root).expect("clean up");
    }

    #[test]
    fn undecodable_image_and_empty_root_are_errors() {
        let root = tempdir("bad");
        assert!(ImageFolder::open(&root).is_err(), "no classes");
        std::fs::create_dir_all(root.join("cls")).expect("dir");
        std::fs::write(root.join("cls/broken.JPEG"), b"\xff\xd8 not really a jpeg").expect("w");
        let folder = ImageFolder::open(&root).expect("listed");
        let err = folder.load(0).expect_err("cannot decode");
        assert!(matches!(err, DataError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("broken.JPEG"), "{err}");
        std::fs::remove_dir_all(root).expect("clean up");
        let err = ImageFolder::open(Path::new("/nonexistent/imagenet/train")).expect_err("io");
        assert!(
            err.to_string().contains("/nonexistent/imagenet/train"),
            "{err}"
        );
    }
}
