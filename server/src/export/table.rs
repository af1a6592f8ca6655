//! One flat table (the records and findings exports) written as CSV or as
//! an XLSX sheet, row by row, so the scan that produces the rows never
//! needs to know the format.
//!
//! CSV follows the coverage export's conventions (byte-order mark, CRLF,
//! RFC 4180 quoting). XLSX puts the table on constant-memory sheets with a
//! frozen bold header; a table longer than a sheet continues on `name 2`,
//! `name 3`, …. Numbers go in as numbers so Excel can sum and filter them,
//! and codes and identifiers as text so a 12-digit village code is not
//! shown as `4.10324E+11`.

use super::{ExportError, MAX_SHEET_DATA_ROWS};
use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet};
use std::io::{BufWriter, Write};

/// Table file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Xlsx,
}

impl TableFormat {
    /// `csv` or `xlsx`; anything else is `None`.
    pub fn from_key(s: &str) -> Option<TableFormat> {
        match s {
            "csv" => Some(TableFormat::Csv),
            "xlsx" => Some(TableFormat::Xlsx),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            TableFormat::Csv => "text/csv; charset=utf-8",
            TableFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            TableFormat::Csv => "csv",
            TableFormat::Xlsx => "xlsx",
        }
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number; `None` (or a non-finite value) is an empty cell.
    Number(Option<f64>),
}

impl Cell {
    fn csv_text(&self) -> String {
        match self {
            Cell::Text(s) => super::csv_safe(s).into_owned(),
            Cell::Number(Some(x)) if x.is_finite() => x.to_string(),
            Cell::Number(_) => String::new(),
        }
    }
}

struct XlsxSink<W> {
    wb: Workbook,
    sheets: Vec<Worksheet>,
    current: Worksheet,
    rows: u32,
    out: W,
}

enum Sink<W: Write + Send> {
    // Both writers are hundreds of bytes; boxed, the table moves cheaply.
    Csv(Box<csv::Writer<BufWriter<W>>>),
    Xlsx(Box<XlsxSink<W>>),
}

/// A table being written: [`TableWriter::row`] for each row, then
/// [`TableWriter::finish`].
pub struct TableWriter<W: Write + Send> {
    sink: Sink<W>,
    sheet: String,
    columns: Vec<String>,
    widths: Vec<f64>,
    header: Format,
    rows_per_sheet: u32,
}

impl<W: Write + Send> TableWriter<W> {
    /// A table with `columns` (and their XLSX widths in character units),
    /// on sheets called `sheet` when it is a workbook.
    pub fn new(
        format: TableFormat,
        sheet: &str,
        columns: &[&str],
        widths: &[f64],
        out: W,
    ) -> Result<TableWriter<W>, ExportError> {
        TableWriter::split_at(format, sheet, columns, widths, out, MAX_SHEET_DATA_ROWS)
    }

    /// As [`TableWriter::new`], with at most `rows_per_sheet` data rows on a
    /// sheet (so tests can see a table continue on the next sheet).
    pub fn split_at(
        format: TableFormat,
        sheet: &str,
        columns: &[&str],
        widths: &[f64],
        out: W,
        rows_per_sheet: u32,
    ) -> Result<TableWriter<W>, ExportError> {
        let header = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Center);
        let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        let widths = widths.to_vec();
        let sink = match format {
            TableFormat::Csv => {
                let mut buf = BufWriter::new(out);
                // Without the byte-order mark Excel reads UTF-8 as the local
                // code page and the Chinese names come out garbled.
                buf.write_all("\u{feff}".as_bytes())?;
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(buf);
                w.write_record(&columns)?;
                Sink::Csv(Box::new(w))
            }
            TableFormat::Xlsx => {
                let mut wb = Workbook::new();
                let current = xlsx_sheet(&mut wb, sheet, 1, &columns, &widths, &header)?;
                Sink::Xlsx(Box::new(XlsxSink {
                    wb,
                    sheets: Vec::new(),
                    current,
                    rows: 0,
                    out,
                }))
            }
        };
        Ok(TableWriter {
            sink,
            sheet: sheet.to_owned(),
            columns,
            widths,
            header,
            rows_per_sheet: rows_per_sheet.clamp(1, MAX_SHEET_DATA_ROWS),
        })
    }

    /// Appends one row; it must have one cell per column.
    pub fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        debug_assert_eq!(cells.len(), self.columns.len());
        match &mut self.sink {
            Sink::Csv(w) => {
                w.write_record(cells.iter().map(Cell::csv_text))?;
            }
            Sink::Xlsx(x) => {
                let XlsxSink {
                    wb,
                    sheets,
                    current,
                    rows,
                    ..
                } = x.as_mut();
                if *rows == self.rows_per_sheet {
                    let next = xlsx_sheet(
                        wb,
                        &self.sheet,
                        sheets.len() + 2,
                        &self.columns,
                        &self.widths,
                        &self.header,
                    )?;
                    sheets.push(std::mem::replace(current, next));
                    *rows = 0;
                }
                *rows += 1;
                for (col, cell) in (0u16..).zip(cells) {
                    match cell {
                        Cell::Text(s) if !s.is_empty() => {
                            current.write_string(*rows, col, s)?;
                        }
                        Cell::Number(Some(x)) if x.is_finite() => {
                            current.write_number(*rows, col, *x)?;
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes CSV, or assembles and writes the workbook.
    pub fn finish(self) -> Result<(), ExportError> {
        match self.sink {
            Sink::Csv(mut w) => {
                w.flush()?;
                Ok(())
            }
            Sink::Xlsx(x) => {
                let XlsxSink {
                    mut wb,
                    sheets,
                    current,
                    out,
                    ..
                } = *x;
                for ws in sheets {
                    wb.push_worksheet(ws);
                }
                wb.push_worksheet(current);
                let mut buf = BufWriter::new(out);
                wb.save_to_writer(&mut buf)?;
                buf.flush()?;
                Ok(())
            }
        }
    }
}

fn xlsx_sheet(
    wb: &mut Workbook,
    base: &str,
    number: usize,
    columns: &[String],
    widths: &[f64],
    header: &Format,
) -> Result<Worksheet, ExportError> {
    let mut ws = wb.new_worksheet_with_constant_memory()?;
    if number <= 1 {
        ws.set_name(base)?;
    } else {
        ws.set_name(format!("{base} {number}"))?;
    }
    for (col, width) in (0u16..).zip(widths) {
        ws.set_column_width(col, *width)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (col, h) in (0u16..).zip(columns) {
        ws.write_string_with_format(0, col, h, header)?;
    }
    Ok(ws)
}
