//! `assay pcap FILE`: the capture classified by `assay_classify::pcap`,
//! printed on stdout.

use std::{
    io::{self, Write as _},
    path::Path,
};

use anyhow::Context as _;
use assay_classify::pcap::{Options, Report, classify_capture, write_json, write_table};

/// How to print flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// `assay pcap FILE`: classifies the file and prints its flows on stdout,
/// then the summary (on stdout after a table, on stderr after JSON lines).
/// An error names the file, and comes after whatever was read before it.
pub fn run(path: &Path, format: Format, options: &Options) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open capture {}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!("{} is a directory, not a capture file", path.display());
    }
    let report = classify_capture(file, options);
    match print(&report, format) {
        // `assay pcap x | head`: the reader has all it wants.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the report")?,
    }
    match report.error {
        Some(error) => {
            Err(anyhow::Error::new(error).context(format!("reading capture {}", path.display())))
        }
        None => Ok(()),
    }
}

fn print(report: &Report, format: Format) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Table => {
            write_table(report, &mut out)?;
            writeln!(out, "{}", report.summary())?;
        }
        Format::Json => {
            write_json(report, &mut out)?;
            writeln!(io::stderr(), "{}", report.summary())?;
        }
    }
    out.flush()
}
