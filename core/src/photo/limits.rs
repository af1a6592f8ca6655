//! Limits on what the pipeline accepts, checked before any decoding.
//!
//! A decoder sizes its buffers from the dimensions the header declares, so a
//! few hundred bytes can demand gigabytes (measured: a 20,000² progressive
//! JPEG allocates 1.2 GB even when decoded at 1/8 scale). Neither the
//! `image` crate's defaults nor a decoder's own limits stop that, so every
//! path reads the declared size first and refuses before allocating.

use super::error::{PhotoError, Result};

/// Largest input file accepted, in bytes (40 MiB): a 50 MP camera JPEG at
/// its best quality is about 25 MB.
pub const PHOTO_BYTES_MAX: u64 = 40 * 1024 * 1024;
/// Largest declared image accepted, in pixels (50 MP, e.g. 8660 × 5773):
/// above the biggest phone sensors in use, far below a bomb.
pub const PHOTO_PIXELS_MAX: u64 = 50_000_000;
/// Default long edge of the output, in pixels.
pub const PHOTO_EDGE_PX_DEFAULT: u32 = 1600;
/// Largest long edge a caller may ask for, in pixels.
pub const PHOTO_EDGE_PX_MAX: u32 = 8192;
/// Default JPEG quality of the output (libjpeg scale, 1–100).
pub const PHOTO_QUALITY_DEFAULT: u8 = 80;
/// Most progressive scans accepted in a JPEG. Real encoders write about 10;
/// thousands of tiny scans make decoding arbitrarily slow (libjpeg-turbo's
/// "two issues with the JPEG standard" advisory).
pub const PHOTO_JPEG_SCANS_MAX: u32 = 500;

/// The limits in force for one call; [`Limits::default`] is what the app
/// uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input, in bytes.
    pub bytes_max: u64,
    /// Largest declared width × height, in pixels.
    pub pixels_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bytes_max: PHOTO_BYTES_MAX,
            pixels_max: PHOTO_PIXELS_MAX,
        }
    }
}

impl Limits {
    /// Refuses an input of `bytes` bytes if it is over the limit.
    pub fn check_bytes(&self, bytes: u64) -> Result<()> {
        if bytes > self.bytes_max {
            return Err(PhotoError::TooLarge {
                bytes,
                max: self.bytes_max,
            });
        }
        Ok(())
    }

    /// Refuses declared dimensions that are empty or over the pixel limit.
    pub fn check_dimensions(&self, width: u64, height: u64, format: &'static str) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(PhotoError::Corrupt {
                format,
                reason: format!("the header declares an empty {width}×{height} image"),
            });
        }
        if width.saturating_mul(height) > self.pixels_max {
            return Err(PhotoError::TooManyPixels {
                width,
                height,
                max: self.pixels_max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_and_refuse_empty_and_huge() {
        let l = Limits {
            bytes_max: 10,
            pixels_max: 100,
        };
        assert!(l.check_bytes(10).is_ok());
        assert!(matches!(
            l.check_bytes(11),
            Err(PhotoError::TooLarge { bytes: 11, max: 10 })
        ));
        assert!(l.check_dimensions(10, 10, "JPEG").is_ok());
        assert!(matches!(
            l.check_dimensions(10, 11, "JPEG"),
            Err(PhotoError::TooManyPixels { .. })
        ));
        assert!(matches!(
            l.check_dimensions(0, 5, "PNG"),
            Err(PhotoError::Corrupt { .. })
        ));
        // No overflow on absurd headers.
        assert!(matches!(
            l.check_dimensions(u64::MAX, u64::MAX, "PNG"),
            Err(PhotoError::TooManyPixels { .. })
        ));
    }
}
