//! The report as one self-contained HTML page, for a compliance officer:
//! a summary, charts of compute and energy by class over time (inline SVG,
//! for the host and each workload), the declared-versus-observed table
//! with mismatches marked, and the evidence behind each mismatch in words.
//! No script, no font, no image and no link to fetch: it opens offline and
//! prints to PDF as it shows (print CSS keeps rows and sections whole).

use std::fmt::Write as _;

use super::report::{HostTotals, Point, Report, WorkloadReport};

/// Each class's colour, the same in every chart and the legend.
const COLOURS: [(&str, &str); 9] = [
    ("pow-mining", "#c0392b"),
    ("chain-node", "#8e44ad"),
    ("pos-validator", "#6c3483"),
    ("storage-proving", "#a04000"),
    ("chain-client", "#b7950b"),
    ("zk-proving", "#d35400"),
    ("ai-training", "#2471a3"),
    ("ai-inference", "#17a589"),
    ("general", "#95a5a6"),
];

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1c2833;margin:2em auto;max-width:1100px;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #d5d8dc}
.muted{color:#5d6d7e}.figures{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.figure{border:1px solid #d5d8dc;border-radius:4px;padding:.5em 1em;min-width:10em}
.figure b{display:block;font-size:1.4em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border-bottom:1px solid #e5e8e8;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.mismatch td{background:#fdedec}tr.mismatch td:first-child{border-left:4px solid #c0392b}
.flag{font-weight:bold;color:#c0392b}.ok{color:#1e8449}
.legend span{display:inline-block;margin-right:1em}.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
section.workload{border:1px solid #d5d8dc;border-radius:4px;padding:.5em 1em;margin:1em 0}
section.workload.mismatch{border-left:6px solid #c0392b}
.evidence{background:#fbfcfc;border-left:3px solid #d5d8dc;padding:.3em .8em;margin:.4em 0}
svg{max-width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#5d6d7e}
@media print{body{margin:0;max-width:none;font-size:11px}section.workload,tr,.figure,svg{break-inside:avoid;page-break-inside:avoid}
h2{break-after:avoid;page-break-after:avoid}tr.mismatch td{-webkit-print-color-adjust:exact;print-color-adjust:exact}
.swatch,svg rect{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
";

fn colour(class: &str) -> &'static str {
    COLOURS
        .iter()
        .find(|(c, _)| *c == class)
        .map_or("#34495e", |(_, c)| c)
}

/// Text as HTML (for element content and quoted attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Joules in the unit that reads best.
fn energy(joules: f64) -> String {
    if joules >= 3.6e6 {
        format!("{:.2} kWh", joules / 3.6e6)
    } else if joules >= 3600.0 {
        format!("{:.2} Wh", joules / 3600.0)
    } else {
        format!("{joules:.0} J")
    }
}

fn hours(core_seconds: f64) -> String {
    if core_seconds >= 3600.0 {
        format!("{:.2} core-h", core_seconds / 3600.0)
    } else {
        format!("{core_seconds:.1} core-s")
    }
}

/// Stacked bars of `value` per class over the points: an inline SVG with
/// its title (for screen readers and the test that looks for it).
fn chart(
    out: &mut String,
    title: &str,
    points: &[Point],
    value: impl Fn(&Point) -> &std::collections::BTreeMap<String, f64>,
    unit: &str,
    axis: Axis,
) {
    let Axis {
        from,
        bucket,
        buckets,
    } = axis;
    let (width, height, left, bottom) = (800.0, 180.0, 60.0, 20.0);
    let plot_w = width - left - 10.0;
    let plot_h = height - bottom - 10.0;
    let max = points
        .iter()
        .map(|p| value(p).values().sum::<f64>())
        .fold(0.0, f64::max);
    let bar_w = plot_w / buckets.max(1) as f64;
    let _ = write!(
        out,
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#aab7b8\"/>\
         <text x=\"{}\" y=\"14\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        escape(title),
        10.0 + plot_h,
        left + plot_w,
        10.0 + plot_h,
        left - 4.0,
        escape(&format!("{max:.0} {unit}")),
        left - 4.0,
        10.0 + plot_h,
    );
    if max > 0.0 {
        for p in points {
            let index = (p.minute - from) / bucket.max(1);
            let x = left + index as f64 * bar_w;
            let mut y = 10.0 + plot_h;
            for (class, _) in COLOURS.iter().rev() {
                let Some(v) = value(p).get(*class) else {
                    continue;
                };
                let h = v / max * plot_h;
                y -= h;
                let _ = write!(
                    out,
                    "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{}\">\
                     <title>{} {}: {v:.1} {}</title></rect>",
                    (bar_w - 0.5).max(0.5),
                    colour(class),
                    escape(&p.start),
                    class,
                    escape(unit)
                );
            }
        }
    }
    out.push_str("</svg>\n");
}

/// Where the bars go: the range's start, minutes per bar, and bars.
#[derive(Clone, Copy)]
struct Axis {
    from: i64,
    bucket: i64,
    buckets: i64,
}

fn legend(out: &mut String) {
    out.push_str("<p class=\"legend\">");
    for (class, colour) in COLOURS {
        let _ = write!(
            out,
            "<span><span class=\"swatch\" style=\"background:{colour}\"></span>{class}</span>"
        );
    }
    out.push_str("</p>\n");
}

pub fn render(report: &Report, from: i64, to: i64) -> String {
    let bucket = report.bucket_minutes;
    let axis = Axis {
        from,
        bucket,
        buckets: ((to - from) + bucket - 1) / bucket.max(1),
    };
    let t = &report.totals;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Compute-use report {} to {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Compute-use report</h1>\n<p class=\"muted\">From {} to {} · generated {} by assay · \
         classes as the agent observed them, against the operators' declarations</p>\n",
        escape(&report.from),
        escape(&report.to),
        escape(&report.from),
        escape(&report.to),
        escape(&report.generated_at)
    );
    // Summary.
    let _ = write!(
        out,
        "<h2>Summary</h2>\n<div class=\"figures\">\
         <div class=\"figure\"><b>{}</b>workloads</div>\
         <div class=\"figure\"><b class=\"{}\">{}</b>mismatched</div>\
         <div class=\"figure\"><b>{}</b>undeclared</div>\
         <div class=\"figure\"><b>{}</b>CPU</div>\
         <div class=\"figure\"><b>{:.1} GPU-h</b>GPU</div>\
         <div class=\"figure\"><b>{}</b>energy{}</div>\
         <div class=\"figure\"><b>{}</b>of compute undeclared</div>\
         <div class=\"figure\"><b>{}</b>of compute mismatched</div></div>\n",
        t.workloads,
        if t.mismatched_workloads > 0 {
            "flag"
        } else {
            "ok"
        },
        t.mismatched_workloads,
        t.undeclared_workloads,
        hours(t.cpu_core_seconds),
        t.gpu_seconds / 3600.0,
        energy(t.energy_joules),
        if t.energy_estimated_joules > 0.0 {
            format!(" ({} estimated)", energy(t.energy_estimated_joules))
        } else {
            String::new()
        },
        pct(t.undeclared_share),
        pct(t.mismatched_share),
    );
    out.push_str(
        "<table><thead><tr><th>Class</th><th>CPU</th><th>GPU seconds</th><th>Energy</th>\
         <th>Share of compute</th></tr></thead><tbody>\n",
    );
    for c in &t.classes {
        let _ = writeln!(
            out,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}{}</td>\
             <td class=\"num\">{}</td></tr>",
            colour(&c.class),
            escape(&c.class),
            hours(c.cpu_core_seconds),
            c.gpu_seconds,
            energy(c.energy_joules),
            if c.energy_estimated { " (est.)" } else { "" },
            pct(c.share)
        );
    }
    out.push_str("</tbody></table>\n");
    if let Some(hosts) = &report.hosts {
        hosts_table(&mut out, hosts);
    }
    out.push_str("<h2>Compute and energy by class over time</h2>\n");
    legend(&mut out);
    chart(
        &mut out,
        "Host CPU core-seconds by class",
        &report.series,
        |p| &p.cpu_core_seconds,
        "core-s",
        axis,
    );
    chart(
        &mut out,
        "Host energy by class",
        &report.series,
        |p| &p.energy_joules,
        "J",
        axis,
    );
    let _ = writeln!(
        out,
        "<p class=\"muted\">Each bar is {bucket} minute(s). Energy is RAPL (by CPU share) or \
         NVML (by GPU share) where the host has them, otherwise estimated from watts per busy \
         core and GPU, and marked so.</p>"
    );
    // What a reader looks for first: the mismatches, then the largest
    // compute (a host has many small workloads).
    let mut order: Vec<&WorkloadReport> = report.workloads.iter().collect();
    order.sort_by(|a, b| {
        b.mismatch
            .cmp(&a.mismatch)
            .then(b.dual_use.is_some().cmp(&a.dual_use.is_some()))
            .then(
                (b.cpu_core_seconds + b.gpu_seconds)
                    .total_cmp(&(a.cpu_core_seconds + a.gpu_seconds)),
            )
    });
    declared_table(&mut out, &order);
    out.push_str("<h2>Workloads</h2>\n");
    for w in order {
        workload_section(&mut out, w, axis);
    }
    out.push_str(
        "<p class=\"muted\">How to read this: a workload is a mismatch when a class other than \
         its declared purpose (other than general) holds at least the material share of its \
         compute, when it has a verdict and no declaration, or when its declaration expired \
         while it ran. General is compute the agent found no purpose for.</p>\n</body></html>\n",
    );
    out
}

/// A fleet report's hosts, each with its totals.
fn hosts_table(out: &mut String, hosts: &[HostTotals]) {
    out.push_str(
        "<h2>Hosts</h2>\n<table id=\"hosts\"><thead><tr><th>Host</th><th>Workloads</th>\
         <th>Mismatched</th><th>Undeclared</th><th>CPU</th><th>GPU seconds</th>\
         <th>Energy</th><th>Of compute mismatched</th></tr></thead><tbody>\n",
    );
    for h in hosts {
        let t = &h.totals;
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            if t.mismatched_workloads > 0 {
                "mismatch"
            } else {
                "match"
            },
            escape(&h.host),
            t.workloads,
            t.mismatched_workloads,
            t.undeclared_workloads,
            hours(t.cpu_core_seconds),
            t.gpu_seconds,
            energy(t.energy_joules),
            pct(t.mismatched_share)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn declared_table(out: &mut String, workloads: &[&WorkloadReport]) {
    let fleet = workloads.iter().any(|w| w.host.is_some());
    let _ = write!(
        out,
        "<h2>Declared versus observed</h2>\n<table id=\"declared-vs-observed\"><thead><tr>\
         {}<th>Workload</th><th>Declared</th>\
         <th>Observed (share of compute)</th><th>CPU</th>\
         <th>Energy</th><th>Status</th></tr></thead><tbody>\n",
        if fleet { "<th>Host</th>" } else { "" }
    );
    for w in workloads {
        let declared = w.declared.as_ref().map_or_else(
            || "<em>none</em>".to_owned(),
            |d| {
                format!(
                    "{} <span class=\"muted\">({}{})</span>",
                    escape(&d.purpose),
                    escape(&d.name),
                    d.registration
                        .as_deref()
                        .map(|r| format!(", {}", escape(r)))
                        .unwrap_or_default()
                )
            },
        );
        let observed: Vec<String> = w
            .classes
            .iter()
            .map(|c| format!("{} {}", escape(&c.class), pct(c.share)))
            .collect();
        let _ = writeln!(
            out,
            "<tr class=\"{}\" data-mismatch=\"{}\">{}<td>{}</td><td>{declared}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if w.mismatch { "mismatch" } else { "match" },
            w.mismatch,
            w.host
                .as_deref()
                .map(|h| format!("<td>{}</td>", escape(h)))
                .unwrap_or_default(),
            escape(&w.workload),
            observed.join(", "),
            hours(w.cpu_core_seconds),
            energy(w.energy_joules),
            match (w.mismatch, w.dual_use.is_some()) {
                (true, true) =>
                    "<span class=\"flag\">MISMATCH</span> <span class=\"flag\">DUAL-USE</span>",
                (true, false) => "<span class=\"flag\">MISMATCH</span>",
                (false, true) => "<span class=\"flag\">DUAL-USE</span>",
                // No declaration and no verdict: nothing contradicts it,
                // but nothing was declared either.
                (false, false) if w.declared.is_none() => "<span class=\"muted\">undeclared</span>",
                (false, false) => "<span class=\"ok\">as declared</span>",
            }
        );
    }
    out.push_str("</tbody></table>\n");
}

fn workload_section(out: &mut String, w: &WorkloadReport, axis: Axis) {
    let _ = writeln!(
        out,
        "<section class=\"workload{}\"><h3>{}{}{}</h3>",
        if w.mismatch { " mismatch" } else { "" },
        w.host
            .as_deref()
            .map(|h| format!("{} · ", escape(h)))
            .unwrap_or_default(),
        escape(&w.workload),
        if w.mismatch {
            " <span class=\"flag\">MISMATCH</span>"
        } else {
            ""
        }
    );
    let subject = serde_json::to_string(&w.subject).unwrap_or_default();
    let _ = writeln!(
        out,
        "<p class=\"muted\">Identified by {} · {} CPU · {:.1} GPU seconds · {}</p>",
        escape(&subject),
        hours(w.cpu_core_seconds),
        w.gpu_seconds,
        energy(w.energy_joules)
    );
    if let Some(dual_use) = &w.dual_use {
        let _ = writeln!(
            out,
            "<p class=\"evidence\"><b>Dual-use:</b> {}</p>",
            escape(dual_use)
        );
    }
    for reason in &w.reasons {
        let _ = writeln!(out, "<p class=\"evidence\">{}</p>", escape(reason));
    }
    chart(
        out,
        &format!("{} CPU core-seconds by class", w.workload),
        &w.series,
        |p| &p.cpu_core_seconds,
        "core-s",
        axis,
    );
    if !w.verdicts.is_empty() {
        out.push_str("<table><thead><tr><th>Verdict</th><th>Class</th><th>Level</th><th>Seen</th><th>Explanation</th></tr></thead><tbody>\n");
        for v in &w.verdicts {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} to {}</td><td>{}</td></tr>",
                escape(&v.id),
                escape(&v.class),
                escape(&v.level),
                escape(&v.first_seen),
                escape(&v.last_seen),
                escape(&v.explanation)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_host_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(energy(7_200_000.0), "2.00 kWh");
        assert_eq!(energy(7200.0), "2.00 Wh");
        assert_eq!(hours(7200.0), "2.00 core-h");
    }
}
