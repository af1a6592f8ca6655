//! What the original's EXIF says: orientation, capture time, position.
//!
//! The output JPEG carries no metadata (it would leak the phone model and
//! more, and costs bytes), so what matters is read here from the original
//! and goes into the record. EXIF is written by every kind of camera app,
//! often badly: anything unreadable is treated as absent, never as an error
//! that would lose the photo.
//!
//! Capture time: `DateTimeOriginal` (else `DateTimeDigitized`) is local
//! clock time without a zone. It is read in the zone `OffsetTimeOriginal`
//! (else `OffsetTime`) gives, and otherwise as China time, UTC+8, where
//! Fieldbook's inspectors work. Sub-seconds come from `SubSecTimeOriginal`.

use super::orientation::Orientation;
use crate::model::GeoPoint;
use exif::{In, Tag, Value};

/// The zone assumed for a capture time without an offset tag: UTC+8, in
/// minutes.
pub const CAPTURE_OFFSET_MIN_DEFAULT: i16 = 8 * 60;

/// The metadata the pipeline keeps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Meta {
    pub orientation: Orientation,
    /// Capture time, Unix milliseconds.
    pub taken_at: Option<i64>,
    pub gps: Option<GeoPoint>,
}

/// Reads the metadata of a JPEG (its APP1 Exif segment) or a PNG (its eXIf
/// chunk). Never fails: missing or broken EXIF gives [`Meta::default`].
pub(crate) fn read(bytes: &[u8], is_jpeg: bool) -> Meta {
    let raw = if is_jpeg {
        jpeg_exif_segment(bytes).map(<[u8]>::to_vec)
    } else {
        png_exif_chunk(bytes).map(<[u8]>::to_vec)
    };
    let Some(raw) = raw else {
        return Meta::default();
    };
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let parsed = reader
        .read_raw(raw)
        .or_else(|e| e.distill_partial_result(|_| {}));
    match parsed {
        Ok(exif) => from_exif(&exif),
        Err(_) => Meta::default(),
    }
}

/// The TIFF payload of the first APP1 "Exif" segment before the image data.
/// Walks the marker segments only; never scans entropy-coded data.
fn jpeg_exif_segment(b: &[u8]) -> Option<&[u8]> {
    const EXIF_ID: &[u8] = b"Exif\0\0";
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker code.
        while *b.get(i)? == 0xFF && *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i + 1)?;
        match marker {
            // Start of scan or end of image: no EXIF before the pixels.
            0xDA | 0xD9 => return None,
            // Stand-alone markers have no length.
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]));
        let seg = b.get(i + 4..i + 2 + len.max(2))?;
        if marker == 0xE1 && seg.starts_with(EXIF_ID) {
            return Some(&seg[EXIF_ID.len()..]);
        }
        i += 2 + len.max(2);
    }
}

/// The payload of a PNG's eXIf chunk, if it has one before the image data.
fn png_exif_chunk(b: &[u8]) -> Option<&[u8]> {
    let mut i = 8;
    loop {
        let len = u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize;
        let kind = b.get(i + 4..i + 8)?;
        let data = b.get(i + 8..(i + 8).checked_add(len)?)?;
        match kind {
            b"eXIf" => return Some(data),
            b"IEND" => return None,
            _ => i = i + 12 + len,
        }
    }
}

fn from_exif(exif: &exif::Exif) -> Meta {
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let orientation = field(Tag::Orientation)
        .and_then(|v| v.get_uint(0))
        .map_or(Orientation::Normal, Orientation::from_exif);
    let ascii = |tag: Tag| -> Option<&[u8]> {
        match field(tag)? {
            Value::Ascii(parts) => parts.first().map(Vec::as_slice),
            _ => None,
        }
    };
    let taken_at = [
        (
            Tag::DateTimeOriginal,
            Tag::OffsetTimeOriginal,
            Tag::SubSecTimeOriginal,
        ),
        (
            Tag::DateTimeDigitized,
            Tag::OffsetTimeDigitized,
            Tag::SubSecTimeDigitized,
        ),
    ]
    .iter()
    .find_map(|&(dt, off, sub)| {
        let offset = ascii(off).or_else(|| ascii(Tag::OffsetTime));
        capture_time(ascii(dt)?, offset, ascii(sub))
    });
    let gps = gps_point(
        field(Tag::GPSLatitude),
        ascii(Tag::GPSLatitudeRef),
        field(Tag::GPSLongitude),
        ascii(Tag::GPSLongitudeRef),
    );
    Meta {
        orientation,
        taken_at,
        gps,
    }
}

/// An EXIF date-time ("YYYY:MM:DD HH:MM:SS"), its offset ("+HH:MM") and
/// sub-second digits as Unix milliseconds. `None` for a blank or impossible
/// date.
pub(crate) fn capture_time(dt: &[u8], offset: Option<&[u8]>, subsec: Option<&[u8]>) -> Option<i64> {
    let mut t = exif::DateTime::from_ascii(dt).ok()?;
    if let Some(s) = subsec {
        // A malformed sub-second field only loses the milliseconds.
        let _ = t.parse_subsec(s);
    }
    if let Some(o) = offset {
        // A malformed offset leaves `t.offset` unset: China time applies.
        let _ = t.parse_offset(o);
    }
    let offset_min = t
        .offset
        .filter(|m| m.abs() <= 14 * 60)
        .unwrap_or(CAPTURE_OFFSET_MIN_DEFAULT);
    let (y, mo, d) = (i64::from(t.year), u32::from(t.month), u32::from(t.day));
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || t.hour > 23
        || t.minute > 59
        || t.second > 60
        || y == 0
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs =
        days * 86_400 + i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second)
            - i64::from(offset_min) * 60;
    let ms = i64::from(t.nanosecond.unwrap_or(0) / 1_000_000);
    Some(secs * 1000 + ms)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Degrees from EXIF's degrees/minutes/seconds rationals and N/S or E/W.
/// A missing reference, a zero denominator or a point off the globe gives
/// `None`; so does exactly (0, 0), which camera apps write when they had no
/// fix.
fn gps_point(
    lat: Option<&Value>,
    lat_ref: Option<&[u8]>,
    lon: Option<&Value>,
    lon_ref: Option<&[u8]>,
) -> Option<GeoPoint> {
    let degrees = |v: Option<&Value>, r: Option<&[u8]>, neg: u8, pos: u8| -> Option<f64> {
        let Value::Rational(parts) = v? else {
            return None;
        };
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.denom == 0) {
            return None;
        }
        let dms: f64 = parts
            .iter()
            .zip([1.0, 60.0, 3600.0])
            .map(|(p, div)| p.to_f64() / div)
            .sum();
        match r?.first()?.to_ascii_uppercase() {
            c if c == neg => Some(-dms),
            c if c == pos => Some(dms),
            _ => None,
        }
    };
    let p = GeoPoint {
        lat: degrees(lat, lat_ref, b'S', b'N')?,
        lon: degrees(lon, lon_ref, b'W', b'E')?,
    };
    (p.is_valid() && !(p.lat == 0.0 && p.lon == 0.0)).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_time_defaults_to_china_time_and_honours_offsets() {
        // 2024-05-01 10:30:00 in Beijing is 02:30:00 UTC.
        let utc = 1_714_530_600_000; // 2024-05-01T02:30:00Z
        assert_eq!(capture_time(b"2024:05:01 10:30:00", None, None), Some(utc));
        assert_eq!(
            capture_time(b"2024:05:01 10:30:00", Some(b"+08:00"), None),
            Some(utc)
        );
        assert_eq!(
            capture_time(b"2024:05:01 02:30:00", Some(b"+00:00"), Some(b"25")),
            Some(utc + 250)
        );
        assert_eq!(
            capture_time(b"2024:04:30 21:30:00", Some(b"-05:00"), None),
            Some(utc)
        );
        // A malformed offset falls back to China time.
        assert_eq!(
            capture_time(b"2024:05:01 10:30:00", Some(b"junk"), None),
            Some(utc)
        );
    }

    #[test]
    fn impossible_or_blank_dates_are_absent() {
        for bad in [
            &b"    :  :     :  :  "[..],
            b"2024:13:01 00:00:00",
            b"2023:02:29 00:00:00",
            b"2024:05:01 25:00:00",
            b"0000:00:00 00:00:00",
            b"yesterday",
        ] {
            assert_eq!(capture_time(bad, None, None), None, "{bad:?}");
        }
        assert!(capture_time(b"2024:02:29 00:00:00", None, None).is_some());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn gps_from_rationals() {
        let r = |n: u32, d: u32| exif::Rational { num: n, denom: d };
        let lat = Value::Rational(vec![r(34, 1), r(37, 1), r(3600, 100)]);
        let lon = Value::Rational(vec![r(112, 1), r(27, 1), r(0, 1)]);
        let p = gps_point(Some(&lat), Some(b"N"), Some(&lon), Some(b"E")).unwrap();
        assert!((p.lat - 34.626_666).abs() < 1e-5);
        assert!((p.lon - 112.45).abs() < 1e-9);
        let p = gps_point(Some(&lat), Some(b"S"), Some(&lon), Some(b"W")).unwrap();
        assert!(p.lat < 0.0 && p.lon < 0.0);
        assert_eq!(gps_point(Some(&lat), None, Some(&lon), Some(b"E")), None);
        let zero = Value::Rational(vec![r(0, 1), r(0, 1), r(0, 1)]);
        assert_eq!(
            gps_point(Some(&zero), Some(b"N"), Some(&zero), Some(b"E")),
            None
        );
        let bad = Value::Rational(vec![r(1, 0)]);
        assert_eq!(
            gps_point(Some(&bad), Some(b"N"), Some(&lon), Some(b"E")),
            None
        );
        let far = Value::Rational(vec![r(95, 1)]);
        assert_eq!(
            gps_point(Some(&far), Some(b"N"), Some(&lon), Some(b"E")),
            None
        );
    }

    #[test]
    fn segment_walk_is_bounded_on_garbage() {
        assert_eq!(jpeg_exif_segment(&[0xFF, 0xD8, 0xFF]), None);
        assert_eq!(
            jpeg_exif_segment(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]),
            None
        );
        assert_eq!(jpeg_exif_segment(&[0xFF, 0xD8, 0x00, 0x00]), None);
        assert_eq!(
            png_exif_chunk(b"\x89PNG\r\n\x1a\n\xff\xff\xff\xffeXIf"),
            None
        );
        assert_eq!(
            read(b"\xFF\xD8\xFF\xE1\x00\x08Exif\0\0", true),
            Meta::default()
        );
    }
}
