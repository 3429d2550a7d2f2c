//! `assay report`: its arguments, the time range, and the output; from the
//! local ledger (`--state-dir`) or from every host's rows on the fleet
//! stream (`--nats`, see [`crate::ledger::fleet`]).

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result, anyhow};

use crate::ledger::{
    declarations::Declarations,
    fleet, html,
    report::{self, Options},
    store::Store,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// For machines: docs/ledger-report.schema.json.
    Json,
    /// One row per workload and class.
    Csv,
    /// One self-contained page (no scripts, nothing fetched) that prints
    /// to PDF.
    Html,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The agent's --state-dir (it holds ledger.sqlite).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "nats",
        conflicts_with = "nats"
    )]
    pub state_dir: Option<PathBuf>,
    /// Build the report across every host from the ledger rows the agents
    /// publish to NATS JetStream (`assay --nats … --state-dir …`), per host
    /// and in total, instead of from a local ledger. Credentials from
    /// ASSAY_NATS_TOKEN or ASSAY_NATS_USER/ASSAY_NATS_PASSWORD.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// The JetStream stream with --nats (default: the prefix in upper
    /// case, as the agents create it).
    #[arg(long, value_name = "NAME", conflicts_with = "state_dir")]
    pub stream: Option<String>,
    /// The agents' --nats-prefix, with --nats.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "assay",
        conflicts_with = "state_dir"
    )]
    pub prefix: String,
    /// What operators declared their workloads are for (TOML `[[declare]]`
    /// entries: name, purpose, optional registration and valid_until, and
    /// the policy's matchers; see the README). Without it every workload
    /// is undeclared. A bad file is refused with its line.
    #[arg(long, value_name = "FILE")]
    pub declarations: Option<PathBuf>,
    /// Start of the period: an RFC 3339 time (2026-11-01T08:00:00Z) or a
    /// date (2026-11-01, midnight UTC). Default: 30 days before --to.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period (excluded), as --from. Default: now.
    #[arg(long, value_name = "TIME", conflicts_with = "last")]
    pub to: Option<String>,
    /// The period ending now, e.g. 30d, 12h, 90min (default 30d when no
    /// --from is given).
    #[arg(long, value_name = "DURATION", conflicts_with = "from")]
    pub last: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: ReportFormat,
    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The share of a workload's compute another class than the declared
    /// purpose must hold to make it a mismatch (0 to 1).
    #[arg(long, default_value_t = 0.1, value_name = "SHARE")]
    pub material_share: f64,
}

/// Every host's report from the stream, merged.
fn fleet_report(
    url: &str,
    args: &ReportArgs,
    declarations: &Declarations,
    options: &Options,
) -> Result<report::Report> {
    let stream = args
        .stream
        .clone()
        .unwrap_or_else(|| crate::sinks::fleet::stream_name(&args.prefix));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let collected = runtime.block_on(fleet::read_stream(
        url,
        &stream,
        &args.prefix,
        (options.from, options.to),
    ))?;
    tracing::info!(
        stream,
        messages = collected.messages,
        duplicates = collected.duplicates,
        superseded = collected.superseded,
        malformed = collected.malformed,
        outside = collected.outside,
        "fleet stream read"
    );
    if collected.malformed > 0 {
        tracing::warn!(
            malformed = collected.malformed,
            "messages on the ledger subjects that are not ledger rows were skipped"
        );
    }
    let empty = report::build(&Store::in_memory()?, declarations, options)?;
    let mut per_host = Vec::new();
    for (host, store) in collected.into_stores()? {
        per_host.push((host, report::build(&store, declarations, options)?));
    }
    Ok(report::merge(empty, per_host))
}

/// A time as Unix minutes (seconds rounded down).
fn minute_of(text: &str) -> Result<i64> {
    let text = text.trim();
    let full = if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    let at = humantime::parse_rfc3339_weak(&full)
        .map_err(|e| anyhow!("{text:?} is not a date or an RFC 3339 time ({e})"))?;
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow!("{text:?} is before 1970"))?
        .as_secs();
    Ok((secs / 60) as i64)
}

fn duration_minutes(text: &str) -> Result<i64> {
    let d = humantime::parse_duration(text)
        .map_err(|e| anyhow!("--last {text:?} is not a duration like 30d or 12h ({e})"))?;
    Ok(d.as_secs().div_ceil(60) as i64)
}

/// [`from`, `to`) in Unix minutes from the options, at `now`.
pub fn range(args: &ReportArgs, now_minute: i64) -> Result<(i64, i64)> {
    let to = match &args.to {
        Some(t) => minute_of(t)?,
        // The current minute too (an agent that stopped wrote it).
        None => now_minute + 1,
    };
    let from = match (&args.from, &args.last) {
        (Some(f), _) => minute_of(f)?,
        (None, Some(last)) => to - duration_minutes(last)?,
        (None, None) => to - 30 * 1440,
    };
    if from >= to {
        anyhow::bail!("the period is empty: --from must come before --to");
    }
    Ok((from, to))
}

pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.material_share) {
        anyhow::bail!("--material-share must be between 0 and 1");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
        / 60;
    let (from, to) = range(args, now)?;
    let declarations = match &args.declarations {
        Some(path) => Declarations::load(path)?,
        None => Declarations::default(),
    };
    let options = Options {
        from,
        to,
        material_share: args.material_share,
    };
    let report = match (&args.nats, &args.state_dir) {
        (Some(url), _) => fleet_report(url, args, &declarations, &options)?,
        (None, Some(dir)) => report::build(&Store::open_read(dir)?, &declarations, &options)?,
        (None, None) => anyhow::bail!("--state-dir or --nats is needed"),
    };
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Csv => report::to_csv(&report),
        ReportFormat::Html => html::render(&report, from, to),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    tracing::info!(
        workloads = report.totals.workloads,
        mismatched = report.totals.mismatched_workloads,
        from = %report.from,
        to = %report.to,
        "report written"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReportArgs,
    }

    fn args(argv: &[&str]) -> ReportArgs {
        let mut full = vec!["report", "--state-dir", "/x"];
        full.extend_from_slice(argv);
        Cli::parse_from(full).args
    }

    #[test]
    fn a_report_reads_a_state_dir_or_the_fleet_stream_not_both() {
        let fleet = Cli::try_parse_from(["r", "--nats", "nats://n:4222", "--stream", "S"])
            .unwrap()
            .args;
        assert_eq!(fleet.nats.as_deref(), Some("nats://n:4222"));
        assert_eq!(fleet.stream.as_deref(), Some("S"));
        assert_eq!(fleet.prefix, "assay");
        assert!(fleet.state_dir.is_none());
        for bad in [
            &["r"][..],
            &["r", "--state-dir", "/x", "--nats", "nats://n"],
            &["r", "--state-dir", "/x", "--stream", "S"],
            &["r", "--state-dir", "/x", "--prefix", "p"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_period_comes_from_from_to_or_last() {
        let now = 29_000_000;
        assert_eq!(range(&args(&[]), now).unwrap(), (now + 1 - 43_200, now + 1));
        assert_eq!(
            range(&args(&["--last", "2h"]), now).unwrap(),
            (now + 1 - 120, now + 1)
        );
        let day = minute_of("2026-11-01").unwrap();
        assert_eq!(day % 1440, 0);
        assert_eq!(
            range(
                &args(&["--from", "2026-11-01", "--to", "2026-11-02T00:00:00Z"]),
                now
            )
            .unwrap(),
            (day, day + 1440)
        );
        assert!(range(&args(&["--from", "2026-11-02", "--to", "2026-11-01"]), now).is_err());
        assert!(range(&args(&["--from", "yesterday"]), now).is_err());
        assert!(range(&args(&["--last", "a while"]), now).is_err());
        assert!(
            Cli::try_parse_from([
                "r",
                "--state-dir",
                "/x",
                "--to",
                "2026-11-01",
                "--last",
                "1d"
            ])
            .is_err()
        );
    }
}
