//! Deterministic pixel operations on CHW u8 images.

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Rgb};

use crate::{ImageShape, Sample};

/// How [`pad_crop`] fills pixels outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Mirror without repeating the edge (PyTorch's `reflect`): index -1 reads index 1.
    Reflect,
    /// Zeros.
    Zero,
}

/// HWC (interleaved) pixels to CHW planes.
pub fn hwc_to_chw(hwc: &[u8], channels: usize) -> Vec<u8> {
    let pixels = hwc.len() / channels;
    let mut chw = vec![0u8; hwc.len()];
    for (i, px) in hwc.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            chw[c * pixels + i] = v;
        }
    }
    chw
}

/// CHW planes to HWC (interleaved) pixels.
pub fn chw_to_hwc(chw: &[u8], channels: usize) -> Vec<u8> {
    let pixels = chw.len() / channels;
    let mut hwc = vec![0u8; chw.len()];
    for c in 0..channels {
        for i in 0..pixels {
            hwc[i * channels + c] = chw[c * pixels + i];
        }
    }
    hwc
}

/// Repeats a grey image to `channels` channels (no-op if it already has them).
pub fn repeat_channels(sample: Sample, channels: usize) -> Sample {
    if sample.shape.channels != 1 || channels == 1 {
        return sample;
    }
    let shape = ImageShape::new(channels, sample.shape.height, sample.shape.width);
    Sample {
        pixels: sample.pixels.repeat(channels),
        shape,
        label: sample.label,
    }
}

/// RGB to grey by ITU-R 601 luma, `(299 R + 587 G + 114 B) / 1000` rounded (PIL's
/// `convert("L")`); three equal channels give that channel exactly. Other channel counts are
/// returned as they are.
pub fn to_grey(sample: &Sample) -> Sample {
    if sample.shape.channels != 3 {
        return sample.clone();
    }
    let plane = sample.shape.height * sample.shape.width;
    let (r, rest) = sample.pixels.split_at(plane);
    let (g, b) = rest.split_at(plane);
    let pixels = r
        .iter()
        .zip(g)
        .zip(b)
        .map(|((&r, &g), &b)| {
            ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
        })
        .collect();
    Sample {
        pixels,
        shape: ImageShape::new(1, sample.shape.height, sample.shape.width),
        label: sample.label,
    }
}

/// Centres the image on a `size x size` zero canvas (28 -> 32 pads 2 on each side); an image
/// already that large is returned as is.
pub fn center_on_canvas(sample: Sample, size: usize) -> Sample {
    let ImageShape {
        channels,
        height,
        width,
    } = sample.shape;
    if height >= size && width >= size {
        return sample;
    }
    let (top, left) = ((size - height) / 2, (size - width) / 2);
    let mut pixels = vec![0u8; channels * size * size];
    for c in 0..channels {
        for y in 0..height {
            let src = &sample.pixels[(c * height + y) * width..][..width];
            pixels[(c * size + top + y) * size + left..][..width].copy_from_slice(src);
        }
    }
    Sample {
        pixels,
        shape: ImageShape::new(channels, size, size),
        label: sample.label,
    }
}

fn source_index(i: isize, len: usize, padding: Padding) -> Option<usize> {
    let n = len as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match padding {
        Padding::Zero => None,
        // Reflect about the first and last pixel (valid for pad < len, as in PyTorch).
        Padding::Reflect => {
            let r = if i < 0 { -i } else { 2 * (n - 1) - i };
            (0..n).contains(&r).then_some(r as usize)
        }
    }
}

/// Pads by `pad` on every side, crops `size x size` at `(top, left)` of the padded image and
/// optionally flips horizontally, in one pass.
///
/// `top` and `left` range over `0 ..= H + 2 pad - size` (and the same for W).
pub fn pad_crop(
    sample: &Sample,
    pad: usize,
    padding: Padding,
    size: usize,
    (top, left): (usize, usize),
    flip: bool,
) -> Sample {
    let ImageShape {
        channels,
        height,
        width,
    } = sample.shape;
    let rows: Vec<Option<usize>> = (0..size)
        .map(|y| source_index((top + y) as isize - pad as isize, height, padding))
        .collect();
    let cols: Vec<Option<usize>> = (0..size)
        .map(|x| {
            let x = if flip { size - 1 - x } else { x };
            source_index((left + x) as isize - pad as isize, width, padding)
        })
        .collect();
    let mut pixels = vec![0u8; channels * size * size];
    for c in 0..channels {
        let plane = &sample.pixels[c * height * width..][..height * width];
        for (y, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let out = &mut pixels[(c * size + y) * size..][..size];
            for (o, col) in out.iter_mut().zip(&cols) {
                if let Some(col) = col {
                    *o = plane[row * width + col];
                }
            }
        }
    }
    Sample {
        pixels,
        shape: ImageShape::new(channels, size, size),
        label: sample.label,
    }
}

/// Mirrors every row.
pub fn flip_horizontal(mut sample: Sample) -> Sample {
    for row in sample.pixels.chunks_exact_mut(sample.shape.width) {
        row.reverse();
    }
    sample
}

/// Crops the rectangle `(top, left, height, width)` and resizes it to `out_h x out_w`
/// (bilinear with antialiasing, as PIL does), RGB images only.
///
/// # Panics
/// If the sample is not 3-channel or the rectangle leaves the image.
pub fn crop_resize(
    sample: &Sample,
    (top, left, h, w): (usize, usize, usize, usize),
    (out_h, out_w): (usize, usize),
) -> Sample {
    assert_eq!(sample.shape.channels, 3, "crop_resize takes RGB images");
    let rgb: ImageBuffer<Rgb<u8>, Vec<u8>> = ImageBuffer::from_raw(
        sample.shape.width as u32,
        sample.shape.height as u32,
        chw_to_hwc(&sample.pixels, 3),
    )
    .expect("buffer matches its shape");
    let crop = imageops::crop_imm(&rgb, left as u32, top as u32, w as u32, h as u32).to_image();
    let resized = if (h, w) == (out_h, out_w) {
        crop
    } else {
        imageops::resize(&crop, out_w as u32, out_h as u32, FilterType::Triangle)
    };
    Sample {
        pixels: hwc_to_chw(resized.as_raw(), 3),
        shape: ImageShape::new(3, out_h, out_w),
        label: sample.label,
    }
}

/// torchvision's `Resize(size)` then `CenterCrop(crop)`: the shorter side becomes `size`, the
/// other keeps the aspect ratio (truncated), then the centre `crop x crop`.
pub fn resize_center_crop(sample: &Sample, size: usize, crop: usize) -> Sample {
    let (h, w) = (sample.shape.height, sample.shape.width);
    let (rh, rw) = if h <= w {
        (size, size * w / h)
    } else {
        (size * h / w, size)
    };
    let resized = crop_resize(sample, (0, 0, h, w), (rh, rw));
    let top = ((rh as f64 - crop as f64) / 2.0).round().max(0.0) as usize;
    let left = ((rw as f64 - crop as f64) / 2.0).round().max(0.0) as usize;
    crop_resize(
        &resized,
        (top, left, crop.min(rh), crop.min(rw)),
        (crop, crop),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(channels: usize, h: usize, w: usize) -> Sample {
        Sample {
            pixels: (0..channels * h * w).map(|i| i as u8).collect(),
            shape: ImageShape::new(channels, h, w),
            label: 0,
        }
    }

    #[test]
    fn grey_is_luma_and_exact_on_grey_pixels() {
        let rgb = Sample {
            pixels: vec![255, 0, 77, /* G */ 0, 255, 77, /* B */ 0, 0, 77],
            shape: ImageShape::new(3, 1, 3),
            label: 2,
        };
        let grey = to_grey(&rgb);
        assert_eq!(grey.shape, ImageShape::new(1, 1, 3));
        // PIL: Image.new("RGB", (1, 1), (255, 0, 0)).convert("L") is 76; green 150.
        assert_eq!(grey.pixels, vec![76, 150, 77]);
        assert_eq!(grey.label, 2);
    }

    #[test]
    fn layouts_round_trip() {
        let s = ramp(3, 2, 5);
        assert_eq!(hwc_to_chw(&chw_to_hwc(&s.pixels, 3), 3), s.pixels);
    }

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let s = ramp(1, 4, 4);
        // Offset (0, 0) of a 2-padded image: row -2 reads row 2, column -1 reads column 1.
        let out = pad_crop(&s, 2, Padding::Reflect, 4, (0, 0), false);
        assert_eq!(out.at(0, 0, 0), s.at(0, 2, 2));
        assert_eq!(out.at(0, 1, 3), s.at(0, 1, 1));
        let zero = pad_crop(&s, 2, Padding::Zero, 4, (0, 0), false);
        assert_eq!((zero.at(0, 0, 0), zero.at(0, 2, 2)), (0, s.at(0, 0, 0)));
    }

    #[test]
    fn centred_crop_without_flip_is_identity_and_flip_mirrors() {
        let s = ramp(3, 8, 8);
        assert_eq!(pad_crop(&s, 4, Padding::Reflect, 8, (4, 4), false), s);
        let f = pad_crop(&s, 4, Padding::Reflect, 8, (4, 4), true);
        assert_eq!(f.at(2, 3, 0), s.at(2, 3, 7));
        assert_eq!(flip_horizontal(s.clone()), f);
    }

    #[test]
    fn canvas_and_channels() {
        let s = center_on_canvas(ramp(1, 28, 28), 32);
        assert_eq!(s.shape, ImageShape::new(1, 32, 32));
        assert_eq!((s.at(0, 0, 0), s.at(0, 2, 2), s.at(0, 2, 3)), (0, 0, 1));
        let rgb = repeat_channels(s, 3);
        assert_eq!(rgb.shape.channels, 3);
        assert_eq!(rgb.at(2, 2, 3), 1);
    }

    #[test]
    fn resize_then_centre_crop_has_the_asked_shape() {
        let s = ramp(3, 30, 40);
        let out = resize_center_crop(&s, 16, 12);
        assert_eq!(out.shape, ImageShape::new(3, 12, 12));
        let same = crop_resize(&s, (0, 0, 30, 40), (30, 40));
        assert_eq!(same, s);
    }
}
