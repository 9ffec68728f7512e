//! Writing a sample as a PNG file (grey or RGB, as stored), e.g. to hand real test images to
//! `auglocal predict`.

use std::path::Path;

use image::{ColorType, ImageFormat};

use crate::{DataError, Sample};

/// Writes `sample` (1 or 3 channels, CHW) to `path` as an 8-bit PNG.
pub fn write_png(sample: &Sample, path: &Path) -> Result<(), DataError> {
    let s = sample.shape;
    let color = match s.channels {
        1 => ColorType::L8,
        3 => ColorType::Rgb8,
        c => {
            return Err(DataError::Config(format!(
                "{}: a PNG holds 1 or 3 channels here, the image has {c}",
                path.display()
            )));
        }
    };
    let hwc = crate::transform::chw_to_hwc(&sample.pixels, s.channels);
    image::save_buffer_with_format(
        path,
        &hwc,
        s.width as u32,
        s.height as u32,
        color,
        ImageFormat::Png,
    )
    .map_err(|e| match e {
        image::ImageError::IoError(source) => DataError::io(path, source),
        other => DataError::Config(format!("{}: cannot write PNG: {other}", path.display())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageShape;

    #[test]
    fn written_pngs_decode_to_the_same_pixels() {
        let dir = std::env::temp_dir().join(format!("auglocal-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let grey = Sample {
            pixels: (0..=255).collect(),
            shape: ImageShape::new(1, 16, 16),
            label: 3,
        };
        let path = dir.join("grey.png");
        write_png(&grey, &path).expect("written");
        // decode gives RGB: three equal planes.
        let back = super::super::decode::read(&path, 3).expect("decodes");
        assert_eq!(back.shape, ImageShape::new(3, 16, 16));
        assert_eq!(&back.pixels[..256], &grey.pixels[..]);
        assert_eq!(&back.pixels[512..], &grey.pixels[..]);
        let rgb = Sample {
            pixels: (0..48).collect(),
            shape: ImageShape::new(3, 4, 4),
            label: 0,
        };
        write_png(&rgb, &dir.join("rgb.png")).expect("written");
        let back = super::super::decode::read(&dir.join("rgb.png"), 0).expect("decodes");
        assert_eq!(back.pixels, rgb.pixels);
    }
}
