//! Coverage rows as an Excel workbook, one sheet per division level.

use super::{
    COVERAGE_COLUMNS, ExportError, finite, headers, indicator_names, level_zh, name_of, tick,
};
use fieldbook_core::model::Level;
use fieldbook_core::model::indicator::{CoverageRow, Indicators};
use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

/// Data rows that fit on one sheet: Excel's 1,048,576 rows less the header.
pub const MAX_SHEET_DATA_ROWS: u32 = 1_048_575;

/// Column widths in Excel's character units, wide enough for the bilingual
/// header (a Chinese character takes about two units) and typical values.
const WIDTHS: [f64; COVERAGE_COLUMNS.len()] = [
    28.0, 36.0, 12.0, 15.0, 24.0, 14.0, 16.0, 10.0, 12.0, 18.0, 18.0,
];

/// The cell formats, made once: `rust_xlsxwriter` interns formats by value,
/// and building one per cell would cost a hash per cell for nothing.
struct Formats {
    header: Format,
    count: Format,
    percent: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            header: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center),
            count: Format::new().set_num_format("0"),
            percent: Format::new().set_num_format("0.0%"),
        }
    }
}

/// The sheets of one level: full ones, and the one being filled.
struct LevelSheets {
    done: Vec<Worksheet>,
    current: Worksheet,
    /// Data rows on `current`.
    rows: u32,
}

/// A constant-memory sheet with its name, widths, frozen header and header
/// row. The `number`th sheet of a level (from 1) is called `村`, `村 2`, ….
fn new_sheet(
    wb: &mut Workbook,
    base: &str,
    number: usize,
    f: &Formats,
) -> Result<Worksheet, ExportError> {
    let mut ws = wb.new_worksheet_with_constant_memory()?;
    if number <= 1 {
        ws.set_name(base)?;
    } else {
        ws.set_name(format!("{base} {number}"))?;
    }
    for (col, width) in (0u16..).zip(WIDTHS) {
        ws.set_column_width(col, width)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (col, h) in (0u16..).zip(headers()) {
        ws.write_string_with_format(0, col, h, &f.header)?;
    }
    Ok(ws)
}

fn write_row(
    ws: &mut Worksheet,
    r: u32,
    row: &CoverageRow,
    name: &str,
    f: &Formats,
) -> Result<(), ExportError> {
    let t = row.tally;
    ws.write_string(r, 0, &row.indicator)?;
    ws.write_string(r, 1, name)?;
    ws.write_string(r, 2, row.level.key())?;
    // Text, not a number: a 12-digit code as a number shows as 4.10324E+11.
    ws.write_string(r, 3, &row.area_code)?;
    ws.write_string(r, 4, &row.area_name)?;
    ws.write_number_with_format(r, 5, t.numerator as f64, &f.count)?;
    ws.write_number_with_format(r, 6, t.denominator as f64, &f.count)?;
    // No rate (0 of 0), no target: an empty cell, so sums and averages in
    // Excel skip it instead of counting a zero.
    for (col, v) in [(7u16, row.rate), (8, row.target), (9, row.gap)] {
        if let Some(v) = finite(v) {
            ws.write_number_with_format(r, col, v, &f.percent)?;
        }
    }
    ws.write_number_with_format(r, 10, t.not_inspected as f64, &f.count)?;
    Ok(())
}

/// Writes coverage rows as an XLSX workbook: one sheet per level present,
/// in the order 市, 县区, 乡镇, 村 (rows keep their input order within a
/// sheet), each with the [`COVERAGE_COLUMNS`] header frozen, counts as
/// integers and rate, target and gap as `0.0%`. A level with more rows than
/// a sheet holds continues on `村 2`, `村 3`, …. No rows at all gives one
/// header-only sheet, `无数据`.
///
/// Rows are spilled to temporary files in the system temp directory as
/// they come, so memory stays flat; those files hold the uncompressed sheet
/// XML, about 550 MB per million rows, until the workbook is assembled
/// into `out` after the last row (several seconds for a million rows, after
/// progress has reached the total).
/// `out` needs no `Seek`: the zip is written as a stream. Returns the
/// number of data rows.
pub fn write_coverage_xlsx(
    rows: impl Iterator<Item = CoverageRow>,
    defs: &Indicators,
    out: impl Write + Send,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    write_coverage_xlsx_split_at(rows, defs, out, progress, MAX_SHEET_DATA_ROWS)
}

/// [`write_coverage_xlsx`] with at most `rows_per_sheet` data rows on a
/// sheet (clamped to 1..=[`MAX_SHEET_DATA_ROWS`]), for readers that choke
/// on very long sheets.
pub fn write_coverage_xlsx_split_at(
    rows: impl Iterator<Item = CoverageRow>,
    defs: &Indicators,
    out: impl Write + Send,
    progress: &mut dyn FnMut(u64),
    rows_per_sheet: u32,
) -> Result<u64, ExportError> {
    let limit = rows_per_sheet.clamp(1, MAX_SHEET_DATA_ROWS);
    let f = Formats::new();
    let names = indicator_names(defs);
    let mut wb = Workbook::new();
    // Rows of all levels arrive interleaved; each level keeps its own open
    // sheet, and each sheet only ever appends, as constant memory requires.
    let mut levels: BTreeMap<Level, LevelSheets> = BTreeMap::new();
    let mut n = 0u64;
    for row in rows {
        let base = level_zh(row.level);
        let sheets = match levels.entry(row.level) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(LevelSheets {
                done: Vec::new(),
                current: new_sheet(&mut wb, base, 1, &f)?,
                rows: 0,
            }),
        };
        if sheets.rows == limit {
            let next = new_sheet(&mut wb, base, sheets.done.len() + 2, &f)?;
            sheets
                .done
                .push(std::mem::replace(&mut sheets.current, next));
            sheets.rows = 0;
        }
        sheets.rows += 1;
        write_row(
            &mut sheets.current,
            sheets.rows,
            &row,
            name_of(&names, &row),
            &f,
        )?;
        n += 1;
        tick(n, progress);
    }
    if levels.is_empty() {
        let ws = new_sheet(&mut wb, "无数据", 1, &f)?;
        wb.push_worksheet(ws);
    }
    for (_, sheets) in levels {
        for ws in sheets.done {
            wb.push_worksheet(ws);
        }
        wb.push_worksheet(sheets.current);
    }
    let mut buf = BufWriter::new(out);
    wb.save_to_writer(&mut buf)?;
    buf.flush()?;
    progress(n);
    Ok(n)
}
