//! Coverage rows as CSV.

use super::{
    COVERAGE_COLUMNS, ExportError, csv_safe, finite, headers, indicator_names, name_of, tick,
};
use fieldbook_core::model::indicator::{CoverageRow, Indicators};
use std::io::Write;

/// Excel reads a CSV without it in the machine's ANSI code page, which turns
/// every Chinese name into mojibake on a Chinese Windows desktop.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Four decimals keep a rate exact to a hundredth of a percentage point;
/// an absent or non-finite value is an empty field, not `NaN`.
fn ratio(x: Option<f64>) -> String {
    finite(x).map_or_else(String::new, |v| format!("{v:.4}"))
}

/// Writes coverage rows as UTF-8 CSV with a byte-order mark and a bilingual
/// header ([`COVERAGE_COLUMNS`]). Rate, target and gap are fractions with
/// four decimals (`0.5500`), empty when there is none. Fields are quoted
/// only when they must be (RFC 4180), lines end in CRLF. Returns the number
/// of data rows.
pub fn write_coverage_csv(
    rows: impl Iterator<Item = CoverageRow>,
    defs: &Indicators,
    mut out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    out.write_all(UTF8_BOM)?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(headers())?;
    let names = indicator_names(defs);
    let mut n = 0u64;
    for row in rows {
        let t = row.tally;
        let fields: [&str; COVERAGE_COLUMNS.len()] = [
            &row.indicator,
            &csv_safe(name_of(&names, &row)),
            row.level.key(),
            &row.area_code,
            &csv_safe(&row.area_name),
            &t.numerator.to_string(),
            &t.denominator.to_string(),
            &ratio(row.rate),
            &ratio(row.target),
            &ratio(row.gap),
            &t.not_inspected.to_string(),
        ];
        w.write_record(fields)?;
        n += 1;
        tick(n, progress);
    }
    w.flush()?;
    progress(n);
    Ok(n)
}
