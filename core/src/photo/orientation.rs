//! EXIF orientation applied to the pixels.
//!
//! Phones store the sensor's frame and write how to turn it in the EXIF
//! Orientation tag. The output carries no EXIF, so the turn must be baked
//! into the pixels. It is applied to the small, resized image: turning the
//! full frame first measured +57% time and +14 MB for a 12 MP photo.

/// The eight EXIF orientations (tag 0x0112), named by what a viewer does to
/// the stored frame to show it upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// 1: as stored.
    #[default]
    Normal,
    /// 2: mirrored left–right.
    FlipHorizontal,
    /// 3: turned 180°.
    Rotate180,
    /// 4: mirrored top–bottom.
    FlipVertical,
    /// 5: mirrored along the main diagonal (transpose).
    Transpose,
    /// 6: turned 90° clockwise.
    Rotate90,
    /// 7: mirrored along the other diagonal (transverse).
    Transverse,
    /// 8: turned 90° counter-clockwise.
    Rotate270,
}

impl Orientation {
    /// From the EXIF value; anything outside 1–8 means "as stored".
    pub fn from_exif(value: u32) -> Orientation {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    /// The EXIF value, 1–8.
    pub fn exif_value(self) -> u16 {
        match self {
            Orientation::Normal => 1,
            Orientation::FlipHorizontal => 2,
            Orientation::Rotate180 => 3,
            Orientation::FlipVertical => 4,
            Orientation::Transpose => 5,
            Orientation::Rotate90 => 6,
            Orientation::Transverse => 7,
            Orientation::Rotate270 => 8,
        }
    }

    /// Whether showing it upright swaps width and height.
    pub fn swaps_dimensions(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }
}

/// Turns a packed RGB image (`width` × `height`, 3 bytes a pixel) upright.
/// Returns the new buffer and its dimensions.
pub(crate) fn apply(rgb: Vec<u8>, width: u32, height: u32, o: Orientation) -> (Vec<u8>, u32, u32) {
    if o == Orientation::Normal || width == 0 || height == 0 {
        return (rgb, width, height);
    }
    let (w, h) = (width as isize, height as isize);
    // Output pixel (u, v) comes from stored pixel index `base + u*du + v*dv`.
    let (base, du, dv) = match o {
        Orientation::Normal => (0, 1, w),
        Orientation::FlipHorizontal => (w - 1, -1, w),
        Orientation::Rotate180 => ((h - 1) * w + w - 1, -1, -w),
        Orientation::FlipVertical => ((h - 1) * w, 1, -w),
        Orientation::Transpose => (0, w, 1),
        Orientation::Rotate90 => ((h - 1) * w, -w, 1),
        Orientation::Transverse => ((h - 1) * w + w - 1, -w, -1),
        Orientation::Rotate270 => (w - 1, w, -1),
    };
    let (ow, oh) = if o.swaps_dimensions() {
        (height, width)
    } else {
        (width, height)
    };
    let mut out = vec![0u8; rgb.len()];
    let mut row_start = base;
    for out_row in out.chunks_exact_mut(ow as usize * 3).take(oh as usize) {
        let mut src = row_start;
        for px in out_row.chunks_exact_mut(3) {
            let s = src as usize * 3;
            px.copy_from_slice(&rgb[s..s + 3]);
            src += du;
        }
        row_start += dv;
    }
    (out, ow, oh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 image whose pixels are numbered 0..6 in reading order.
    fn numbered() -> Vec<u8> {
        (0u8..6).flat_map(|i| [i, i, i]).collect()
    }

    fn order(rgb: &[u8]) -> Vec<u8> {
        rgb.chunks_exact(3).map(|p| p[0]).collect()
    }

    #[test]
    fn every_orientation_maps_pixels_as_exif_defines() {
        // Stored frame:   0 1 2
        //                 3 4 5
        let cases: [(u32, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [0, 1, 2, 3, 4, 5]),
            (2, (3, 2), [2, 1, 0, 5, 4, 3]),
            (3, (3, 2), [5, 4, 3, 2, 1, 0]),
            (4, (3, 2), [3, 4, 5, 0, 1, 2]),
            (5, (2, 3), [0, 3, 1, 4, 2, 5]),
            (6, (2, 3), [3, 0, 4, 1, 5, 2]),
            (7, (2, 3), [5, 2, 4, 1, 3, 0]),
            (8, (2, 3), [2, 5, 1, 4, 0, 3]),
        ];
        for (value, dims, expected) in cases {
            let o = Orientation::from_exif(value);
            assert_eq!(u32::from(o.exif_value()), value);
            let (out, w, h) = apply(numbered(), 3, 2, o);
            assert_eq!((w, h), dims, "orientation {value}");
            assert_eq!(order(&out), expected, "orientation {value}");
        }
    }

    #[test]
    fn out_of_range_values_mean_as_stored() {
        assert_eq!(Orientation::from_exif(0), Orientation::Normal);
        assert_eq!(Orientation::from_exif(9), Orientation::Normal);
    }
}
