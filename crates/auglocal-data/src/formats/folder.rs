//! Image folders in the ImageNet layout: `root/<class>/<image>.{JPEG,jpg,png}`, decoded lazily.

use std::path::{Path, PathBuf};

use crate::{DataError, ImageShape, Sample};

const EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// An image folder: classes are the sorted subdirectory names, images are listed at open and
/// decoded only when loaded.
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

impl ImageFolder {
    /// Lists `root/<class>/*` (JPEG and PNG, by extension, any case).
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let mut classes = Vec::new();
        let mut items = Vec::new();
        for dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
            let label = classes.len() as u32;
            classes.push(
                dir.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into()),
            );
            for file in sorted_entries(&dir)? {
                let ext = file
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase());
                if ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
                    items.push((file, label));
                }
            }
        }
        if classes.is_empty() || items.is_empty() {
            return Err(DataError::format(
                root,
                "class subdirectories holding .JPEG, .jpg or .png images (root/<class>/<image>)",
                format!(
                    "{} class directories and {} images",
                    classes.len(),
                    items.len()
                ),
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes,
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
        let rgb = image::open(path)
            .map_err(|e| DataError::Decode {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .to_rgb8();
        Ok(Sample {
            shape: ImageShape::new(3, rgb.height() as usize, rgb.width() as usize),
            pixels: crate::transform::hwc_to_chw(rgb.as_raw(), 3),
            label,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
