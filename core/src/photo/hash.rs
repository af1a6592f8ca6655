//! The two hashes of a compressed photo.
//!
//! - **Content hash**: BLAKE3 of the output JPEG's bytes, 64 lowercase hex
//!   digits. It names the file on the phone and on the server and is the
//!   photo's identity in every record.
//! - **Perceptual hash**: a 64-bit DCT hash (the pHash of Zauner, 2010) of
//!   the output pixels, 16 lowercase hex digits. Re-encoding, resizing or
//!   light edits flip only a few bits, so the server can flag the same scene
//!   submitted as evidence twice even when the bytes differ. Compare two with
//!   [`phash_distance`]: the number of differing bits, 0–64.
//!
//! The perceptual hash, step by step (change any step and every stored hash
//! changes meaning):
//! 1. luma `Y = (299 R + 587 G + 114 B) / 1000` (BT.601) of the upright
//!    output image;
//! 2. area average onto a 32 × 32 grid: pixel (x, y) of a w × h image
//!    counts in cell (⌊32x/w⌋, ⌊32y/h⌋);
//! 3. 2-D DCT-II of the grid, keeping the 8 × 8 coefficients of frequencies
//!    1–8 in each direction (the DC row and column carry only brightness);
//! 4. bit `63 − (8·row + col)` is set when that coefficient is above the
//!    median of the 64.

/// BLAKE3 of `bytes` as 64 lowercase hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Side of the grid the DCT runs on.
const GRID: usize = 32;
/// Frequencies kept in each direction, starting at 1.
const KEEP: usize = 8;

/// The 64-bit perceptual hash of a packed RGB image (see the module doc).
pub fn perceptual_hash(rgb: &[u8], width: u32, height: u32) -> u64 {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        return 0;
    }
    // 1–2. Luma, area-averaged: pixel (x, y) belongs to cell
    // (⌊32x/w⌋, ⌊32y/h⌋). Images smaller than the grid leave cells empty;
    // those take the pixel under the cell's corner.
    let luma = |i: usize| -> u64 {
        let p = &rgb[i * 3..i * 3 + 3];
        299 * u64::from(p[0]) + 587 * u64::from(p[1]) + 114 * u64::from(p[2])
    };
    let col_cell: Vec<usize> = (0..w).map(|x| x * GRID / w).collect();
    let mut sums = [[0u64; GRID]; GRID];
    let mut counts = [[0u64; GRID]; GRID];
    for y in 0..h {
        let gy = y * GRID / h;
        for (x, &gx) in col_cell.iter().enumerate() {
            sums[gy][gx] += luma(y * w + x);
            counts[gy][gx] += 1;
        }
    }
    let mut grid = [[0f64; GRID]; GRID];
    for gy in 0..GRID {
        for gx in 0..GRID {
            grid[gy][gx] = if counts[gy][gx] == 0 {
                luma(gy * h / GRID * w + gx * w / GRID) as f64 / 1000.0
            } else {
                sums[gy][gx] as f64 / (counts[gy][gx] as f64 * 1000.0)
            };
        }
    }
    // 3. DCT-II: first along rows for the kept frequencies, then columns.
    let cos = |k: usize, n: usize| -> f64 {
        (std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / (2 * GRID) as f64).cos()
    };
    let mut table = [[0f64; GRID]; KEEP + 1];
    for (k, row) in table.iter_mut().enumerate() {
        for (n, c) in row.iter_mut().enumerate() {
            *c = cos(k, n);
        }
    }
    let mut rows = [[0f64; KEEP]; GRID];
    for (y, out) in rows.iter_mut().enumerate() {
        for (kx, o) in out.iter_mut().enumerate() {
            *o = (0..GRID).map(|x| grid[y][x] * table[kx + 1][x]).sum();
        }
    }
    let mut coeffs = [0f64; KEEP * KEEP];
    for ky in 0..KEEP {
        for kx in 0..KEEP {
            coeffs[ky * KEEP + kx] = (0..GRID).map(|y| rows[y][kx] * table[ky + 1][y]).sum();
        }
    }
    // 4. Threshold at the median.
    let mut sorted = coeffs;
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[KEEP * KEEP / 2 - 1] + sorted[KEEP * KEEP / 2]) / 2.0;
    coeffs
        .iter()
        .fold(0u64, |acc, &c| (acc << 1) | u64::from(c > median))
}

/// A perceptual hash as 16 lowercase hex digits.
pub fn phash_hex(phash: u64) -> String {
    format!("{phash:016x}")
}

/// Number of differing bits between two perceptual hashes written as 16 hex
/// digits; `None` if either is malformed. Below about 10 of 64 means "very
/// likely the same picture" (see `core/tests/photo.rs` for the measured
/// spread).
pub fn phash_distance(a: &str, b: &str) -> Option<u32> {
    let parse = |s: &str| (s.len() == 16).then(|| u64::from_str_radix(s, 16).ok())?;
    Some((parse(a)? ^ parse(b)?).count_ones())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_is_blake3_hex() {
        // BLAKE3 of the empty input, from the reference test vectors.
        assert_eq!(
            content_hash(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn phash_of_a_flat_image_is_stable_and_distances_parse() {
        let flat = [90u8, 90, 90].repeat(40 * 30);
        let a = perceptual_hash(&flat, 40, 30);
        assert_eq!(a, perceptual_hash(&flat, 40, 30));
        let hex = phash_hex(a);
        assert_eq!(hex.len(), 16);
        assert_eq!(phash_distance(&hex, &hex), Some(0));
        assert_eq!(
            phash_distance("ffffffffffffffff", "0000000000000000"),
            Some(64)
        );
        assert_eq!(phash_distance("xyz", "0000000000000000"), None);
    }

    #[test]
    fn phash_handles_images_smaller_than_the_grid() {
        let tiny: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 17 % 256) as u8).collect();
        let _ = perceptual_hash(&tiny, 5, 3);
        assert_eq!(perceptual_hash(&[], 0, 0), 0);
    }

    #[test]
    fn phash_sees_structure_not_brightness() {
        // A left-dark/right-light image and its brighter copy hash alike;
        // the mirrored image is far away.
        let img = |w: usize, h: usize, off: u8, flip: bool| -> Vec<u8> {
            let mut v = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let g = ((xx * 180 / w) as u8).saturating_add(off) ^ ((y / 8) as u8 & 7);
                    v.extend_from_slice(&[g, g, g]);
                }
            }
            v
        };
        let a = perceptual_hash(&img(128, 96, 0, false), 128, 96);
        let b = perceptual_hash(&img(128, 96, 40, false), 128, 96);
        let c = perceptual_hash(&img(128, 96, 0, true), 128, 96);
        assert!((a ^ b).count_ones() <= 4, "{a:016x} {b:016x}");
        assert!((a ^ c).count_ones() >= 16, "{a:016x} {c:016x}");
    }
}
