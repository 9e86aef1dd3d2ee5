//! The report as one self-contained HTML page: a header per app, then one figure per field with
//! the whole period's estimates (a bar per label, or the mean, each with its 95% interval) and a
//! per-day trend.
//!
//! The page is inert and closed: inline CSS and SVG only, no script, and no external font,
//! image, style sheet or link, so it can be mailed, archived or opened offline and looks the same
//! everywhere. Every text that comes from payloads or the catalogue (labels, redacted text,
//! names, descriptions) goes through one function, `escape`. A number that is not finite is never written
//! into a coordinate. The output depends on the reports alone (no clock): the same store gives
//! the same bytes.

use std::fmt::{self, Write as _};

use telemetry_schema::{AggregateRow, Day, EstimateStatus, MechanismKind};

use crate::report::{AppReport, FieldReport};

/// Width of one chart (the whole period, or the trend); two sit side by side.
const W: f64 = 420.0;
/// Height of one chart (a bar chart of many labels grows).
const H: f64 = 220.0;
/// Gap between the two charts (CSS `.charts` gap).
const GAP: f64 = 20.0;
/// Bars drawn at most in the whole-period chart (the largest ones beyond that).
const MAX_BARS: usize = 12;
/// Lines drawn at most in the trend (the largest labels beyond that).
const MAX_LINES: usize = 8;
/// Characters of a label drawn (the whole label is in the tooltip).
const LABEL_CHARS: usize = 16;
/// One colour per trend line, and for the bar of the same label; readable on white.
const PALETTE: [&str; MAX_LINES] = [
    "#3b6fb6", "#e07b39", "#3f9a5a", "#cf4a55", "#7b5fb8", "#2a9aa3", "#b38414", "#c2578f",
];
/// Bars of labels without a trend line.
const OTHER: &str = "#9aa5b4";

/// The page.
pub fn to_html(reports: &[AppReport]) -> String {
    let mut out = String::with_capacity(32 * 1024);
    out.push_str(HEAD);
    out.push_str("<body><main>\n<header class=\"page\"><h1>Telemetry report</h1>");
    let payloads: u64 = reports.iter().map(|r| r.payloads).sum();
    let _ = write!(
        out,
        "<p class=\"lede\">{} app{} · {} payload{} · estimates de-biased from randomised reports</p>",
        reports.len(),
        plural(reports.len() as u64),
        thousands(payloads),
        plural(payloads),
    );
    out.push_str(
        "<p class=\"key\"><span class=\"k-bar\"></span>estimate \
         <span class=\"k-ci\"></span>95% interval \
         <span class=\"k-na\"></span>not usable (see the note) \
         <span class=\"k-dot\"></span>per day</p></header>\n",
    );
    if reports.is_empty() {
        out.push_str("<p class=\"empty\">No payloads and no catalogue in the store.</p>\n");
    }
    for app in reports {
        app_section(&mut out, app);
    }
    out.push_str("</main></body></html>\n");
    out
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>Telemetry report</title>
<style>
:root{--bg:#f3f4f7;--card:#fff;--ink:#1d2433;--muted:#5d6778;--line:#e2e5ea;--warn:#8a5a00}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans","Liberation Sans",Arial,sans-serif;-webkit-font-smoothing:antialiased}
main{max-width:960px;margin:0 auto;padding:28px 20px 48px}
h1{font-size:26px;line-height:1.2;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:21px;line-height:1.2;margin:0;letter-spacing:-.01em}
.lede{margin:0;color:var(--muted)}
.key{margin:8px 0 0;font-size:13px;color:var(--muted)}
.key span{display:inline-block;vertical-align:-1px;margin:0 6px 0 12px}
.key span:first-child{margin-left:0}
.k-bar{width:22px;height:10px;border-radius:2px;background:#3b6fb6}
.k-ci{width:22px;height:10px;border:solid var(--ink);border-width:0 1.5px;background:linear-gradient(var(--ink),var(--ink)) center/100% 1.5px no-repeat}
.k-na{width:22px;height:10px;border:1px dashed #9aa3ad;background:repeating-linear-gradient(135deg,#eef0f3 0 3px,#b9c0c9 3px 4px)}
.k-dot{width:9px;height:9px;border-radius:50%;background:#3b6fb6;box-shadow:0 0 0 1.5px #fff,0 0 0 2.5px #3b6fb6}
.app{margin-top:30px}
.app-head{display:flex;flex-wrap:wrap;align-items:stretch;gap:10px;margin:0 0 14px}
.app-head h2{flex:1 0 100%;margin-bottom:2px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:7px 14px 8px;min-width:112px}
.tile .k{display:block;font-size:11.5px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.tile .v{display:block;font-size:19px;font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}
.tile svg{display:block;margin-top:4px}
figure.field-chart{margin:0 0 16px;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 20px 14px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
figcaption .name{margin:0;font-size:16px;font-weight:600;line-height:1.3}
figcaption code{font:600 15px/1.3 ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono","Liberation Mono",monospace}
figcaption code .ev{color:var(--muted);font-weight:500}
.desc{margin:3px 0 0}
.meta{margin:7px 0 0;display:flex;flex-wrap:wrap;gap:6px;font-size:12.5px}
.chip{padding:1px 9px;border-radius:999px;background:#eef1f6;color:#3d4657;white-space:nowrap}
.chip.eps{background:#e6effb;color:#23508f;font-weight:600}
.chip.plain{background:#f1eefa;color:#533d8f}
.chip.warn{background:#fdf1dc;color:var(--warn)}
.chip.dom{background:none;color:var(--muted);padding-left:2px;white-space:normal}
.charts{display:flex;flex-wrap:wrap;gap:20px;margin-top:12px}
svg.chart{display:block;max-width:100%;height:auto;font-size:12px}
.chart text{fill:var(--ink)}
.chart .ctitle{fill:var(--muted);font-size:11px;font-weight:600;letter-spacing:.06em}
.chart .tick{fill:var(--muted);font-size:11px;font-variant-numeric:tabular-nums}
.chart .lbl{font-size:12px}
.chart .val{font-size:12px;font-weight:600;font-variant-numeric:tabular-nums}
.chart .sub{fill:var(--muted);font-size:12px}
.chart .big{font-size:34px;font-weight:650;font-variant-numeric:tabular-nums;letter-spacing:-.02em}
.chart .na{fill:#7d8696;font-style:italic;font-weight:400}
.chart .grid{stroke:#edeff3;stroke-width:1}
.chart .axis{stroke:#c3c9d2;stroke-width:1}
.chart .ci{stroke:var(--ink);stroke-width:1.5;fill:none}
.chart .na-box{fill:#f1f3f5;stroke:#9aa3ad;stroke-width:1;stroke-dasharray:3 2}
.chart .hatch{stroke:#b9c0c9;stroke-width:1;fill:none}
.chart .track{fill:#eef1f5}
.chart .hollow{fill:#fff;stroke:#8d96a3;stroke-width:1.5}
.chart .empty-box{fill:#fafbfc;stroke:#d3d8df;stroke-dasharray:4 3}
.notes{margin:10px 0 0;padding:0;list-style:none;font-size:13px;color:var(--warn)}
.notes li{margin:2px 0;padding-left:18px;text-indent:-18px}
.notes li::before{content:"!";display:inline-block;width:13px;height:13px;margin-right:5px;border-radius:50%;background:#f2c46d;color:#fff;font:700 10px/13px system-ui,sans-serif;text-align:center;text-indent:0;vertical-align:1px}
.notes .info{color:var(--muted)}
.notes .info::before{content:"i";background:#aab3c0}
.empty{color:var(--muted)}
</style></head>
"#;

/// Escapes text for HTML content and attribute values (`&`, `<`, `>`, `"`, `'`); control
/// characters become spaces (tabs, line breaks) or U+FFFD. The one way text reaches the page.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with `…` in the middle when cut, so that labels sharing a prefix
/// stay apart (escape the result).
fn truncate(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let tail = keep / 2;
    let mut t: String = s.chars().take(keep - tail).collect();
    t.push('…');
    t.extend(s.chars().skip(count - tail));
    t
}

/// Rough width of `text` in pixels at 12 px (for placing labels; no fonts are measured).
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.6
}

/// Day indices as ranges of neighbours: `1 Apr – 4 Apr, 6 Apr`.
fn day_ranges(days: &[Day], which: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < which.len() {
        let mut j = i;
        while j + 1 < which.len() && which[j + 1] == which[j] + 1 {
            j += 1;
        }
        let (a, b) = (day_label(days[which[i]]), day_label(days[which[j]]));
        parts.push(match j - i {
            0 => a,
            1 => format!("{a}, {b}"),
            _ => format!("{a} – {b}"),
        });
        i = j + 1;
    }
    parts.join(", ")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A proportion as a percentage with one decimal; `—` when not finite.
fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        "—".to_owned()
    }
}

/// A mean with a few decimals; `—` when not finite.
fn dec(x: f64) -> String {
    if !x.is_finite() {
        "—".to_owned()
    } else if x.abs() < 100.0 {
        format!("{x:.2}")
    } else if x.abs() < 100_000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn value_text(x: f64, proportion: bool) -> String {
    if proportion { pct(x) } else { dec(x) }
}

/// A coordinate: one decimal, never `NaN` or `inf` (a non-finite number is written as 0; the
/// drawing code skips such values before they get here).
#[derive(Clone, Copy)]
struct C(f64);

impl fmt::Display for C {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = if self.0.is_finite() {
            (self.0.clamp(-1e6, 1e6) * 10.0).round() / 10.0
        } else {
            0.0
        };
        if x.fract() == 0.0 {
            write!(f, "{}", x as i64)
        } else {
            write!(f, "{x:.1}")
        }
    }
}

/// A linear map from data to pixels; values outside the domain are pinned to its ends.
#[derive(Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    fn at(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        let t = if !v.is_finite() {
            0.0
        } else if span > 0.0 && span.is_finite() {
            ((v - self.d0) / span).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.r0 + t * (self.r1 - self.r0)
    }
}

/// An axis: `lo..=hi` in steps of `step`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let r = raw / mag;
    let m = if r <= 1.0 + 1e-9 {
        1.0
    } else if r <= 2.0 + 1e-9 {
        2.0
    } else if r <= 2.5 + 1e-9 {
        2.5
    } else if r <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    m * mag
}

impl Axis {
    /// `0..=max` for proportions, at most 100%.
    fn proportion(max: f64) -> Self {
        let m = if max.is_finite() {
            max.clamp(0.02, 1.0)
        } else {
            1.0
        };
        let step = nice_step(m / 4.0);
        let hi = ((m / step - 1e-9).ceil() * step).min(1.0);
        Self { lo: 0.0, hi, step }
    }

    /// Around `lo..=hi` for means.
    fn values(lo: f64, hi: f64) -> Self {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if hi - lo <= 1e-9 * (1.0 + hi.abs()) {
            let pad = (hi.abs() * 0.1).max(0.5);
            lo -= pad;
            hi += pad;
        }
        let step = nice_step((hi - lo) / 4.0);
        Self {
            lo: (lo / step + 1e-9).floor() * step,
            hi: (hi / step - 1e-9).ceil() * step,
            step,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round();
        let n = if n.is_finite() {
            n.clamp(0.0, 20.0) as u32
        } else {
            0
        };
        (0..=n)
            .map(|i| self.lo + f64::from(i) * self.step)
            .collect()
    }

    fn label(&self, v: f64, proportion: bool) -> String {
        let unit = if proportion { 100.0 } else { 1.0 };
        let step = self.step * unit;
        let mut decimals = 0usize;
        while decimals < 6
            && ((step * 10f64.powi(decimals as i32)).round() - step * 10f64.powi(decimals as i32))
                .abs()
                > 1e-6
        {
            decimals += 1;
        }
        let v = v * unit;
        let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
        if proportion {
            format!("{v:.decimals$}%")
        } else {
            format!("{v:.decimals$}")
        }
    }
}

fn is_ok(r: &AggregateRow) -> bool {
    r.status == EstimateStatus::Ok
}

/// A few words for a row that is not usable, drawn beside it (the note says it in full).
fn tag(status: EstimateStatus) -> &'static str {
    match status {
        EstimateStatus::Ok => "",
        EstimateStatus::TooFewReports => "n < 2",
        EstimateStatus::Uninformative => "no signal",
    }
}

fn mechanism_name(m: MechanismKind) -> &'static str {
    match m {
        MechanismKind::RandomizedResponse => "randomised response",
        MechanismKind::KRandomizedResponse => "k-ary randomised response",
        MechanismKind::DiscreteLaplace => "discrete Laplace",
        MechanismKind::OneBitMean => "1BitMean",
        MechanismKind::RedactionOnly => "redaction only",
        MechanismKind::NotRandomized => "not randomised",
    }
}

fn day_label(day: Day) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, m, d) = day.ymd();
    format!(
        "{d} {}",
        MONTHS.get(usize::from(m).wrapping_sub(1)).unwrap_or(&"?")
    )
}

/// The label of a row as people read it (`mean` for means).
fn row_name(r: &AggregateRow) -> &str {
    r.value.as_deref().unwrap_or("mean")
}

/// A sort key: larger shown values first, non-finite last.
fn size_key(r: &AggregateRow) -> f64 {
    if r.shown.is_finite() {
        r.shown
    } else {
        f64::NEG_INFINITY
    }
}

fn app_section(out: &mut String, app: &AppReport) {
    let _ = write!(
        out,
        "<section class=\"app\">\n<header class=\"app-head\"><h2>{}</h2>",
        escape(&app.app)
    );
    tile(out, "Payloads", &thousands(app.payloads));
    tile(out, "Days with data", &app.days.len().to_string());
    let first = app.since.or_else(|| app.days.first().map(|d| d.day));
    let last = app.until.or_else(|| app.days.last().map(|d| d.day));
    let period = match (first, last) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a} – {b}"),
        (Some(a), None) => format!("from {a}"),
        (None, Some(b)) => format!("until {b}"),
        (None, None) => "all days".to_owned(),
    };
    tile(out, "Period", &period);
    tile(out, "Fields", &app.fields.len().to_string());
    if !app.days.is_empty() {
        out.push_str("<div class=\"tile\"><span class=\"k\">Payloads per day</span>");
        sparkline(out, app);
        out.push_str("</div>");
    }
    out.push_str("</header>\n");
    if app.fields.is_empty() {
        out.push_str("<p class=\"empty\">No catalogue and no reports for this app.</p>\n");
    }
    for f in &app.fields {
        field_figure(out, app, f);
    }
    out.push_str("</section>\n");
}

fn tile(out: &mut String, key: &str, value: &str) {
    let _ = write!(
        out,
        "<div class=\"tile\"><span class=\"k\">{}</span><span class=\"v\">{}</span></div>",
        escape(key),
        escape(value)
    );
}

fn sparkline(out: &mut String, app: &AppReport) {
    let (w, h) = (150.0, 30.0);
    let max = app
        .days
        .iter()
        .map(|d| d.payloads)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = app.days.len() as f64;
    let band = w / n;
    let bar = (band * 0.7).clamp(1.0, 18.0);
    let _ = write!(
        out,
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"payloads per day\">"
    );
    for (i, d) in app.days.iter().enumerate() {
        let bh = (d.payloads as f64 / max * (h - 2.0)).max(1.0);
        let x = band * i as f64 + (band - bar) / 2.0;
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"1.5\" fill=\"{}\"><title>{}: {} payload{}</title></rect>",
            C(x),
            C(h - bh),
            C(bar),
            C(bh),
            PALETTE[0],
            d.day,
            thousands(d.payloads),
            plural(d.payloads)
        );
    }
    out.push_str("</svg>");
}

/// What a field's figure draws: which rows get a bar, which labels a trend line.
struct Plan<'a> {
    proportion: bool,
    bars: Vec<&'a AggregateRow>,
    hidden_bars: usize,
    series: Vec<(Option<&'a str>, &'static str)>,
    hidden_series: usize,
}

impl<'a> Plan<'a> {
    fn new(f: &'a FieldReport) -> Self {
        let mut rows: Vec<&AggregateRow> = f.estimates.iter().collect();
        // Labels without a declared order (versions, redacted text): largest first.
        if matches!(
            f.mechanism,
            MechanismKind::NotRandomized | MechanismKind::RedactionOnly
        ) {
            rows.sort_by(|a, b| size_key(b).total_cmp(&size_key(a)));
        }
        let proportion = rows.iter().any(|r| r.value.is_some());
        let largest = |max: usize| -> Vec<&'a AggregateRow> {
            let mut sorted = rows.clone();
            sorted.sort_by(|a, b| size_key(b).total_cmp(&size_key(a)));
            sorted.truncate(max);
            sorted
        };
        let bars = if rows.len() <= MAX_BARS {
            rows.clone()
        } else {
            largest(MAX_BARS)
        };
        let lines: Vec<&AggregateRow> = if rows.len() <= MAX_LINES {
            rows.clone()
        } else {
            let keep = largest(MAX_LINES);
            // Catalogue (or first-seen) order among the kept ones, as in the bars.
            rows.iter()
                .copied()
                .filter(|r| keep.iter().any(|k| std::ptr::eq(*k, *r)))
                .collect()
        };
        let series = lines
            .iter()
            .enumerate()
            .map(|(i, r)| (r.value.as_deref(), PALETTE[i % PALETTE.len()]))
            .collect();
        Self {
            proportion,
            hidden_bars: rows.len() - bars.len(),
            bars,
            hidden_series: rows.len() - lines.len(),
            series,
        }
    }

    fn colour(&self, value: Option<&str>) -> &'static str {
        self.series
            .iter()
            .find(|(v, _)| *v == value)
            .map_or(OTHER, |s| s.1)
    }
}

fn field_figure(out: &mut String, app: &AppReport, f: &FieldReport) {
    let _ = write!(
        out,
        "<figure class=\"field-chart\" data-event=\"{}\" data-field=\"{}\">\n<figcaption><p class=\"name\"><code><span class=\"ev\">{}.</span>{}</code></p>",
        escape(&f.event),
        escape(&f.field),
        escape(&f.event),
        escape(&f.field)
    );
    if let Some(d) = f.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let _ = write!(out, "<p class=\"desc\">{}</p>", escape(d));
    }
    out.push_str("<p class=\"meta\">");
    match f.epsilon {
        Some(e) if e.is_finite() => {
            let _ = write!(out, "<span class=\"chip eps\">ε = {e:.2}</span>");
        }
        Some(_) => out.push_str("<span class=\"chip warn\">ε not finite</span>"),
        None => out.push_str("<span class=\"chip plain\">not randomised: no ε</span>"),
    }
    let _ = write!(
        out,
        "<span class=\"chip\">n = {} report{}</span>",
        thousands(f.n),
        plural(f.n)
    );
    if f.mechanism != MechanismKind::NotRandomized {
        let _ = write!(
            out,
            "<span class=\"chip\">{}</span>",
            mechanism_name(f.mechanism)
        );
    }
    if !f.catalogued {
        out.push_str("<span class=\"chip warn\">not in the catalogue</span>");
    }
    if let Some(v) = f.values.as_deref() {
        let _ = write!(out, "<span class=\"chip dom\">{}</span>", escape(v));
    }
    out.push_str("</p></figcaption>\n<div class=\"charts\">");

    let plan = Plan::new(f);
    let mut notes: Vec<(bool, String)> = Vec::new();
    if f.estimates.is_empty() {
        let text = if f.n == 0 {
            "no reports in this period"
        } else {
            "no estimate could be made from these reports"
        };
        empty_chart(out, f, text);
        out.push_str("</div>\n");
    } else {
        if plan.bars.len() == 1 && plan.hidden_bars == 0 {
            single_chart(
                out,
                f,
                plan.bars[0],
                plan.colour(plan.bars[0].value.as_deref()),
            );
        } else {
            bar_chart(out, f, &plan);
        }
        trend_chart(out, app, f, &plan, &mut notes);
        out.push_str("</div>\n");
        let mut usable: Vec<(bool, String)> = f
            .estimates
            .iter()
            .filter_map(|r| {
                r.status.note().map(|note| {
                    (
                        true,
                        format!("<b>{}</b>: {}", escape(row_name(r)), escape(note)),
                    )
                })
            })
            .collect();
        usable.append(&mut notes);
        notes = usable;
        if plan.hidden_bars > 0 {
            notes.push((
                false,
                format!(
                    "The {} largest of {} values are drawn.",
                    plan.bars.len(),
                    f.estimates.len()
                ),
            ));
        }
        if plan.hidden_series > 0 {
            notes.push((
                false,
                format!(
                    "Per day: lines for the {} largest of {} values.",
                    plan.series.len(),
                    f.estimates.len()
                ),
            ));
        }
    }
    // Warnings first, then how the figure was drawn.
    notes.sort_by_key(|(warn, _)| !*warn);
    if !notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for (warn, note) in &notes {
            let _ = write!(
                out,
                "<li{}>{note}</li>",
                if *warn { "" } else { " class=\"info\"" }
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</figure>\n");
}

fn svg_open(out: &mut String, w: f64, h: f64, label: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">",
        C(w),
        C(h),
        C(w),
        C(h),
        escape(label)
    );
}

fn chart_title(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<text class=\"ctitle\" x=\"0\" y=\"12\">{}</text>",
        escape(&title.to_uppercase())
    );
}

fn empty_chart(out: &mut String, f: &FieldReport, text: &str) {
    let (w, h) = (2.0 * W + GAP, 96.0);
    svg_open(out, w, h, &format!("{}.{}: {text}", f.event, f.field));
    let _ = write!(
        out,
        "<rect class=\"empty-box\" x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" rx=\"8\"/><text class=\"sub\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
        C(w - 1.0),
        C(h - 1.0),
        C(w / 2.0),
        C(h / 2.0 + 4.0),
        escape(text)
    );
}

/// A dashed grey box with diagonal hatching: a value that is drawn but not usable.
fn hatched(out: &mut String, x: f64, y: f64, w: f64, h: f64) {
    if !(x.is_finite() && y.is_finite() && w.is_finite() && h.is_finite()) || w <= 0.0 || h <= 0.0 {
        return;
    }
    let _ = write!(
        out,
        "<rect class=\"na-box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\"/>",
        C(x),
        C(y),
        C(w),
        C(h)
    );
    let mut d = String::new();
    let mut c = -h;
    while c < w {
        let (mut x0, mut y0) = (x + c, y + h);
        let (mut x1, mut y1) = (x + c + h, y);
        if x0 < x {
            y0 -= x - x0;
            x0 = x;
        }
        if x1 > x + w {
            y1 += x1 - (x + w);
            x1 = x + w;
        }
        if x1 > x0 + 0.5 {
            let _ = write!(d, "M{} {}L{} {}", C(x0), C(y0), C(x1), C(y1));
        }
        c += 5.0;
    }
    if !d.is_empty() {
        let _ = write!(out, "<path class=\"hatch\" d=\"{d}\"/>");
    }
}

/// A horizontal 95% interval with end caps.
fn whisker_h(out: &mut String, x0: f64, x1: f64, y: f64, cap: f64) {
    let _ = write!(
        out,
        "<path class=\"ci\" d=\"M{a} {y}H{b}M{a} {t}V{u}M{b} {t}V{u}\"/>",
        a = C(x0),
        b = C(x1),
        y = C(y),
        t = C(y - cap),
        u = C(y + cap)
    );
}

fn tooltip(f: &FieldReport, r: &AggregateRow, proportion: bool) -> String {
    let mut t = format!(
        "{}: {} (95% interval {} – {}), n = {}",
        row_name(r),
        value_text(r.shown, proportion),
        value_text(r.ci95.0, proportion),
        value_text(r.ci95.1, proportion),
        thousands(r.n)
    );
    if let Some(note) = r.status.note() {
        let _ = write!(t, "; {note}");
    }
    let _ = f;
    escape(&t)
}

/// The whole period when there is one number: a big figure, and a bar (proportion) or a point
/// on a number line (mean), with the interval.
fn single_chart(out: &mut String, f: &FieldReport, r: &AggregateRow, colour: &str) {
    let proportion = r.value.is_some();
    let ok = is_ok(r);
    svg_open(out, W, H, &format!("{}.{}: whole period", f.event, f.field));
    chart_title(out, "Whole period");
    let _ = write!(out, "<g><title>{}</title>", tooltip(f, r, proportion));
    let big = value_text(r.shown, proportion);
    if ok {
        let _ = write!(
            out,
            "<text class=\"big\" x=\"0\" y=\"62\" style=\"fill:{colour}\">{}</text>",
            escape(&big)
        );
    } else {
        let _ = write!(
            out,
            "<text class=\"big na\" x=\"0\" y=\"62\">{}</text>",
            escape(&big)
        );
    }
    let what = match r.value.as_deref() {
        Some("true") if f.mechanism == MechanismKind::RandomizedResponse => {
            "estimated share of true".to_owned()
        }
        Some(label) => format!("estimated share of “{}”", truncate(label, 32)),
        None => "estimated mean".to_owned(),
    };
    let _ = write!(
        out,
        "<text class=\"sub\" x=\"0\" y=\"86\">{}</text>",
        escape(&what)
    );
    match r.status.note() {
        None => {
            let _ = write!(
                out,
                "<text class=\"sub\" x=\"0\" y=\"106\">95% interval {} – {}</text>",
                escape(&value_text(r.ci95.0, proportion)),
                escape(&value_text(r.ci95.1, proportion))
            );
        }
        Some(note) => {
            let _ = write!(
                out,
                "<text class=\"sub na\" x=\"0\" y=\"106\">{}</text>",
                escape(note)
            );
        }
    }
    let (x0, x1) = (6.0, W - 18.0);
    if proportion {
        let axis = Axis {
            lo: 0.0,
            hi: 1.0,
            step: 0.25,
        };
        let s = Scale {
            d0: 0.0,
            d1: 1.0,
            r0: x0,
            r1: x1,
        };
        let (y, h) = (136.0, 18.0);
        axis_x(out, &axis, s, y - 6.0, y + h + 6.0, true);
        let _ = write!(
            out,
            "<rect class=\"track\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>",
            C(x0),
            C(y),
            C(x1 - x0),
            C(h)
        );
        if ok {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{colour}\"/>",
                C(x0),
                C(y),
                C((s.at(r.shown) - x0).max(1.5)),
                C(h)
            );
            whisker_h(out, s.at(r.ci95.0), s.at(r.ci95.1), y + h / 2.0, 6.0);
        } else {
            let w = if r.shown.is_finite() {
                (s.at(r.shown) - x0).max(8.0)
            } else {
                x1 - x0
            };
            hatched(out, x0, y, w, h);
        }
    } else {
        let (lo, hi) = if ok {
            (r.ci95.0.min(r.shown), r.ci95.1.max(r.shown))
        } else {
            (r.shown, r.shown)
        };
        let pad = (hi - lo) * 0.3;
        let axis = Axis::values(lo - pad, hi + pad);
        let s = Scale {
            d0: axis.lo,
            d1: axis.hi,
            r0: x0,
            r1: x1,
        };
        let y = 146.0;
        axis_x(out, &axis, s, y - 16.0, y + 10.0, false);
        let _ = write!(
            out,
            "<path class=\"axis\" d=\"M{} {}H{}\"/>",
            C(x0),
            C(y + 10.0),
            C(x1)
        );
        if r.shown.is_finite() {
            if ok {
                whisker_h(out, s.at(r.ci95.0), s.at(r.ci95.1), y, 7.0);
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"6.5\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"2\"/>",
                    C(s.at(r.shown)),
                    C(y)
                );
            } else {
                hatched(out, s.at(r.shown) - 9.0, y - 9.0, 18.0, 18.0);
            }
        }
    }
    out.push_str("</g></svg>");
}

/// Vertical grid lines from `y0` to `y1` and tick labels under `y1`.
fn axis_x(out: &mut String, axis: &Axis, s: Scale, y0: f64, y1: f64, proportion: bool) {
    let ticks = axis.ticks();
    let last = ticks.len().saturating_sub(1);
    for (i, t) in ticks.iter().enumerate() {
        let x = s.at(*t);
        let anchor = if i == 0 && s.r0 < 10.0 {
            "start"
        } else if i == last && s.r1 > W - 24.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            "<path class=\"grid\" d=\"M{x} {a}V{b}\"/><text class=\"tick\" x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            C(y1 + 14.0),
            escape(&axis.label(*t, proportion)),
            x = C(x),
            a = C(y0),
            b = C(y1),
        );
    }
}

/// The whole period for several labels: one horizontal bar each, with the interval.
fn bar_chart(out: &mut String, f: &FieldReport, plan: &Plan<'_>) {
    let rows = plan.bars.len().max(1);
    let top = 26.0;
    let bottom = 26.0;
    let avail = H - top - bottom;
    let band = if rows as f64 * 20.0 <= avail {
        (avail / rows as f64).min(34.0)
    } else {
        20.0
    };
    let plot_bottom = top + band * rows as f64;
    let h = (plot_bottom + bottom).max(H);
    let (x0, x1) = (118.0, W - 50.0);
    let max = plan
        .bars
        .iter()
        .map(|r| {
            if is_ok(r) {
                r.ci95.1.max(r.shown)
            } else {
                r.shown
            }
        })
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let axis = Axis::proportion(max);
    let s = Scale {
        d0: 0.0,
        d1: axis.hi,
        r0: x0,
        r1: x1,
    };
    svg_open(out, W, h, &format!("{}.{}: whole period", f.event, f.field));
    chart_title(out, "Whole period");
    axis_x(out, &axis, s, top - 2.0, plot_bottom + 2.0, true);
    let _ = write!(
        out,
        "<path class=\"axis\" d=\"M{x} {}V{}\"/>",
        C(top - 2.0),
        C(plot_bottom + 2.0),
        x = C(x0)
    );
    let thick = (band * 0.62).min(20.0);
    for (i, r) in plan.bars.iter().enumerate() {
        let cy = top + band * (i as f64 + 0.5);
        let y = cy - thick / 2.0;
        let _ = write!(
            out,
            "<g><title>{}</title><text class=\"lbl\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            tooltip(f, r, plan.proportion),
            C(x0 - 8.0),
            C(cy + 4.0),
            escape(&truncate(row_name(r), LABEL_CHARS))
        );
        if is_ok(r) {
            let end = s.at(r.shown);
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"{}\"/>",
                C(x0),
                C(y),
                C((end - x0).max(1.5)),
                C(thick),
                plan.colour(r.value.as_deref())
            );
            let (lo, hi) = (s.at(r.ci95.0), s.at(r.ci95.1));
            whisker_h(out, lo, hi, cy, (thick / 2.0 - 1.0).clamp(2.0, 5.0));
            let _ = write!(
                out,
                "<text class=\"val\" x=\"{}\" y=\"{}\">{}</text>",
                C(end.max(hi) + 5.0),
                C(cy + 4.0),
                escape(&pct(r.shown))
            );
        } else {
            let w = if r.shown.is_finite() {
                (s.at(r.shown) - x0).max(10.0)
            } else {
                x1 - x0
            };
            hatched(out, x0, y, w, thick);
            let text = if r.shown.is_finite() {
                format!("{} · {}", pct(r.shown), tag(r.status))
            } else {
                tag(r.status).to_owned()
            };
            let tw = text_width(&text);
            if x0 + w + 5.0 + tw <= W {
                let _ = write!(
                    out,
                    "<text class=\"val na\" x=\"{}\" y=\"{}\">{}</text>",
                    C(x0 + w + 5.0),
                    C(cy + 4.0),
                    escape(&text)
                );
            } else {
                // Inside the hatched bar, on a white pill.
                let right = x0 + w - 6.0;
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" rx=\"8\" fill=\"#fff\" opacity=\".92\"/><text class=\"val na\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                    C(right - tw - 6.0),
                    C(cy - 8.0),
                    C(tw + 10.0),
                    C(right),
                    C(cy + 4.0),
                    escape(&text)
                );
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

/// One point of a trend line.
struct Point {
    day: usize,
    shown: f64,
    ci: (f64, f64),
    ok: bool,
    status: EstimateStatus,
}

/// The estimates per day: one line per label (at most [`MAX_LINES`]) or of the mean, each point
/// with its interval; days whose estimate is not usable are hollow grey points.
fn trend_chart(
    out: &mut String,
    app: &AppReport,
    f: &FieldReport,
    plan: &Plan<'_>,
    notes: &mut Vec<(bool, String)>,
) {
    let mut days: Vec<Day> = app
        .days
        .iter()
        .map(|d| d.day)
        .chain(f.trend.iter().map(|t| t.day))
        .collect();
    days.sort();
    days.dedup();
    let n_of_day: Vec<Option<u64>> = days
        .iter()
        .map(|d| f.trend.iter().find(|t| t.day == *d).map(|t| t.n))
        .collect();
    let series: Vec<Vec<Point>> = plan
        .series
        .iter()
        .map(|(value, _)| {
            f.trend
                .iter()
                .filter_map(|t| {
                    let r = t.estimates.iter().find(|r| r.value.as_deref() == *value)?;
                    Some(Point {
                        day: days.iter().position(|d| *d == t.day)?,
                        shown: r.shown,
                        ci: r.ci95,
                        ok: is_ok(r),
                        status: r.status,
                    })
                })
                .collect()
        })
        .collect();

    // Legend rows (several lines only).
    let multi = plan.series.len() > 1;
    let mut legend: Vec<(f64, f64, usize)> = Vec::new();
    if multi {
        let (mut x, mut y) = (0.0, 34.0);
        for (i, (value, _)) in plan.series.iter().enumerate() {
            let text = truncate(value.unwrap_or("mean"), 14);
            let w = 24.0 + text.chars().count() as f64 * 6.6 + 12.0;
            if x > 0.0 && x + w > W {
                x = 0.0;
                y += 16.0;
            }
            legend.push((x, y, i));
            x += w;
        }
    }
    let legend_bottom = legend.last().map_or(20.0, |l| l.1 + 8.0);
    let show_n = days.len() <= 10;
    let top = legend_bottom + 10.0;
    let h = if legend.last().is_some_and(|l| l.1 > 50.0) {
        H + legend.last().map_or(0.0, |l| l.1 - 50.0)
    } else {
        H
    };
    let bottom = h - if show_n { 36.0 } else { 22.0 };
    let (left, right) = (44.0, W - 10.0);

    // Vertical scale over every drawn point.
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in series.iter().flatten() {
        let vals: [f64; 3] = if p.ok {
            [p.shown, p.ci.0, p.ci.1]
        } else {
            [p.shown; 3]
        };
        for v in vals.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let axis = if plan.proportion {
        Axis::proportion(hi)
    } else if lo.is_finite() {
        let pad = (hi - lo) * 0.1;
        Axis::values(lo - pad, hi + pad)
    } else {
        Axis::values(0.0, 1.0)
    };
    let sy = Scale {
        d0: axis.lo,
        d1: axis.hi,
        r0: bottom,
        r1: top,
    };
    let band = (right - left) / days.len().max(1) as f64;
    let xd = |day: usize| left + band * (day as f64 + 0.5);

    svg_open(out, W, h, &format!("{}.{}: per day", f.event, f.field));
    chart_title(out, "Per day");
    for (x, y, i) in &legend {
        let (value, colour) = plan.series[*i];
        let _ = write!(
            out,
            "<path d=\"M{} {}h18\" stroke=\"{colour}\" stroke-width=\"2\"/><circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\"/><text class=\"lbl\" x=\"{}\" y=\"{}\">{}</text>",
            C(*x),
            C(*y - 4.0),
            C(*x + 9.0),
            C(*y - 4.0),
            C(*x + 24.0),
            C(*y),
            escape(&truncate(value.unwrap_or("mean"), 14))
        );
    }
    for t in axis.ticks() {
        let y = sy.at(t);
        let _ = write!(
            out,
            "<path class=\"grid\" d=\"M{l} {y}H{r}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            C(left - 6.0),
            C(y + 4.0),
            escape(&axis.label(t, plan.proportion)),
            l = C(left),
            r = C(right),
            y = C(y),
        );
    }
    let _ = write!(
        out,
        "<path class=\"axis\" d=\"M{} {b}H{}\"/>",
        C(left),
        C(right),
        b = C(bottom)
    );
    let stride = days.len().div_ceil(8).max(1);
    for (i, day) in days.iter().enumerate() {
        if i % stride != 0 {
            continue;
        }
        let x = xd(i);
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            C(x),
            C(bottom + 15.0),
            escape(&day_label(*day))
        );
        if show_n {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
                C(x),
                C(bottom + 28.0),
                escape(&n_of_day[i].map_or_else(
                    || "no reports".to_owned(),
                    |n| format!("n = {}", thousands(n))
                ))
            );
        }
    }

    // Lines side by side at a day are nudged apart so their intervals stay readable.
    let k = plan.series.len() as f64;
    let nudge = (band * 0.5 / k.max(1.0)).min(5.0);
    // Intervals of many lines over many days would be a thicket: then only in the tooltips.
    let draw_ci = series.len() * days.len() <= 36;
    if !draw_ci {
        notes.push((
            false,
            "Per day: too many points to draw every 95% interval; each point's tooltip has it."
                .to_owned(),
        ));
    }
    let mut hollow: Vec<(EstimateStatus, usize)> = Vec::new();
    for (si, points) in series.iter().enumerate() {
        let colour = plan.series[si].1;
        let dx = (si as f64 - (k - 1.0) / 2.0) * nudge;
        // The line: through usable points on consecutive days.
        let mut d = String::new();
        let mut run = 0;
        let mut prev: Option<usize> = None;
        for p in points.iter().filter(|p| p.ok && p.shown.is_finite()) {
            let cmd = if prev.is_some_and(|q| q + 1 == p.day) {
                run += 1;
                'L'
            } else {
                'M'
            };
            let _ = write!(d, "{cmd}{} {}", C(xd(p.day) + dx), C(sy.at(p.shown)));
            prev = Some(p.day);
        }
        if run > 0 {
            let _ = write!(
                out,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>"
            );
        }
        for p in points {
            let x = xd(p.day) + dx;
            let label = plan.series[si].0.unwrap_or("mean");
            let finite = p.shown.is_finite();
            let y = if finite { sy.at(p.shown) } else { bottom };
            if p.ok && finite {
                let _ = write!(
                    out,
                    "<g><title>{}</title>",
                    escape(&format!(
                        "{} · {label}: {} (95% interval {} – {})",
                        days[p.day],
                        value_text(p.shown, plan.proportion),
                        value_text(p.ci.0, plan.proportion),
                        value_text(p.ci.1, plan.proportion)
                    ))
                );
                if draw_ci {
                    let (a, b) = (sy.at(p.ci.0), sy.at(p.ci.1));
                    let _ = write!(
                        out,
                        "<path d=\"M{x} {a}V{b}M{l} {a}H{r}M{l} {b}H{r}\" stroke=\"{colour}\" stroke-width=\"1.5\" opacity=\".6\"/>",
                        x = C(x),
                        a = C(a),
                        b = C(b),
                        l = C(x - 3.0),
                        r = C(x + 3.0),
                    );
                }
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"1.5\"/></g>",
                    C(x),
                    C(y)
                );
            } else {
                hollow.push((p.status, p.day));
                let _ = write!(
                    out,
                    "<g><title>{}</title>",
                    escape(&format!(
                        "{} · {label}: {} ({})",
                        days[p.day],
                        value_text(p.shown, plan.proportion),
                        p.status.note().unwrap_or("no usable estimate")
                    ))
                );
                if finite {
                    let _ = write!(
                        out,
                        "<circle class=\"hollow\" cx=\"{}\" cy=\"{}\" r=\"4\"/>",
                        C(x),
                        C(y)
                    );
                } else {
                    // No number at all: a hatched mark on the axis.
                    hatched(out, x - 4.5, bottom - 10.0, 9.0, 9.0);
                }
                out.push_str("</g>");
            }
            if !multi && days.len() <= 10 {
                let text = if p.ok && finite {
                    value_text(p.shown, plan.proportion)
                } else {
                    tag(p.status).to_owned()
                };
                let above = if p.ok && finite {
                    sy.at(p.ci.1).min(y)
                } else {
                    y - 4.0
                } - 6.0;
                let above = if finite { above } else { bottom - 16.0 };
                // Under the point when there is no room above it (up to just under the title).
                let at = if above >= top.min(30.0) - 9.0 {
                    above
                } else if p.ok {
                    sy.at(p.ci.0).max(y) + 15.0
                } else {
                    y + 18.0
                };
                let _ = write!(
                    out,
                    "<text class=\"val{}\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                    if p.ok { "" } else { " na" },
                    C(x),
                    C(at),
                    escape(&text)
                );
            }
        }
    }
    out.push_str("</svg>");

    for status in [EstimateStatus::TooFewReports, EstimateStatus::Uninformative] {
        let mut which: Vec<usize> = hollow
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, d)| *d)
            .collect();
        which.sort_unstable();
        which.dedup();
        if let (false, Some(note)) = (which.is_empty(), status.note()) {
            let when = if which.len() == days.len() && days.len() > 2 {
                "every day".to_owned()
            } else {
                day_ranges(&days, &which)
            };
            notes.push((
                true,
                format!(
                    "<b>Per day</b>, grey points ({}): {}",
                    escape(&when),
                    escape(note)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DayCount, DayEstimates};

    fn row(
        value: Option<&str>,
        shown: f64,
        se: f64,
        n: u64,
        status: EstimateStatus,
    ) -> AggregateRow {
        AggregateRow {
            event: "ev".into(),
            field: "f".into(),
            mechanism: if value.is_some() {
                MechanismKind::KRandomizedResponse
            } else {
                MechanismKind::DiscreteLaplace
            },
            epsilon: Some(1.0),
            value: value.map(str::to_owned),
            estimate: shown,
            shown,
            standard_error: se,
            ci95: (shown - 1.96 * se, shown + 1.96 * se),
            n,
            status,
        }
    }

    fn field(name: &str, estimates: Vec<AggregateRow>, days: &[Day]) -> FieldReport {
        let n = estimates.first().map_or(0, |r| r.n);
        FieldReport {
            event: "ev".into(),
            field: name.into(),
            description: Some("A <field> & \"its\" 'description'.".into()),
            values: Some("one of: a, b".into()),
            mechanism: estimates
                .first()
                .map_or(MechanismKind::RandomizedResponse, |r| r.mechanism),
            epsilon: Some(1.0),
            catalogued: true,
            n,
            trend: days
                .iter()
                .map(|d| DayEstimates {
                    day: *d,
                    n: n / days.len() as u64,
                    estimates: estimates.clone(),
                })
                .collect(),
            estimates,
        }
    }

    fn days() -> Vec<Day> {
        (1..=3).map(|d| Day::new(2025, 3, d).unwrap()).collect()
    }

    fn app(fields: Vec<FieldReport>) -> AppReport {
        AppReport {
            app: "acme <&> 'app'".into(),
            since: None,
            until: None,
            payloads: 300,
            days: days()
                .into_iter()
                .map(|day| DayCount { day, payloads: 100 })
                .collect(),
            fields,
        }
    }

    fn sample() -> Vec<AppReport> {
        let ok = EstimateStatus::Ok;
        vec![app(vec![
            field(
                "labels",
                vec![
                    row(Some("<script>alert(1)</script>"), 0.4, 0.02, 300, ok),
                    row(Some("b\"'&"), 0.6, 0.02, 300, ok),
                ],
                &days(),
            ),
            field("mean", vec![row(None, 12.5, 0.8, 300, ok)], &days()),
            field("nothing", vec![], &[]),
            field(
                "few",
                vec![row(
                    Some("true"),
                    1.0,
                    0.0,
                    1,
                    EstimateStatus::TooFewReports,
                )],
                &days()[..1],
            ),
        ])]
    }

    #[test]
    fn escapes_every_text_from_payloads() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        let page = to_html(&sample());
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("alert(1)</"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("b\"'&"));
        assert!(!page.contains("<field>"));
        assert!(!page.contains("acme <&>"));
    }

    #[test]
    fn one_figure_per_field_entry() {
        let reports = sample();
        let page = to_html(&reports);
        let fields: usize = reports.iter().map(|r| r.fields.len()).sum();
        assert_eq!(
            page.matches("<figure class=\"field-chart\"").count(),
            fields
        );
        assert_eq!(page.matches("</figure>").count(), fields);
        for fig in page.split("<figure class=\"field-chart\"").skip(1) {
            let fig = &fig[..fig.find("</figure>").unwrap()];
            assert!(fig.contains("<svg"), "{fig}");
        }
        assert!(page.contains("no reports in this period"));
        assert!(page.contains("ε = 1.00"));
        assert!(page.contains("n = 300 reports"));
        // The row that is not usable is hatched and its note is in the text.
        assert!(page.contains("class=\"hatch\""));
        assert!(page.contains(&escape(EstimateStatus::TooFewReports.note().unwrap())));
        assert!(to_html(&[]).contains("No payloads"));
    }

    #[test]
    fn no_external_references() {
        let page = to_html(&sample());
        for bad in [
            "http://", "https://", "src=", "<script", "@import", "url(", "<link",
        ] {
            assert!(!page.contains(bad), "{bad} in the page");
        }
    }

    #[test]
    fn deterministic() {
        assert_eq!(to_html(&sample()), to_html(&sample()));
    }

    /// Whether `inf` occurs as a number (not as part of a word like "informative").
    fn has_inf(s: &str) -> bool {
        s.match_indices("inf").any(|(i, _)| {
            let before = s[..i].chars().next_back();
            let after = s[i + 3..].chars().next();
            !before.is_some_and(char::is_alphabetic) && !after.is_some_and(char::is_alphabetic)
        })
    }

    #[test]
    fn non_finite_estimates_never_reach_coordinates() {
        let u = EstimateStatus::Uninformative;
        let mut nan = row(Some("a"), f64::NAN, f64::INFINITY, 50, u);
        nan.ci95 = (f64::NAN, f64::INFINITY);
        let mut inf = row(Some("b"), f64::INFINITY, f64::NAN, 50, u);
        inf.ci95 = (f64::NEG_INFINITY, f64::INFINITY);
        let mut mean = row(None, f64::NEG_INFINITY, f64::INFINITY, 50, u);
        mean.ci95 = (f64::NAN, f64::NAN);
        let mut ok_inf_ci = row(Some("c"), 0.3, 0.01, 50, EstimateStatus::Ok);
        ok_inf_ci.ci95 = (f64::NAN, f64::INFINITY);
        let reports = vec![app(vec![
            field("props", vec![nan.clone(), inf, ok_inf_ci], &days()),
            field("single", vec![nan], &days()),
            field("mean", vec![mean], &days()),
        ])];
        let page = to_html(&reports);
        assert!(!page.contains("NaN"), "{page}");
        assert!(!has_inf(&page), "{page}");
        assert!(has_inf("x=\"inf\"") && !has_inf("Uninformative"));
        assert!(page.contains(EstimateStatus::Uninformative.note().unwrap()));
    }

    #[test]
    fn many_labels_are_capped() {
        let rows: Vec<AggregateRow> = (0..20)
            .map(|i| {
                row(
                    Some(&format!("label{i}")),
                    f64::from(i) / 200.0,
                    0.01,
                    400,
                    EstimateStatus::Ok,
                )
            })
            .collect();
        let page = to_html(&[app(vec![field("many", rows, &days())])]);
        assert!(page.contains("The 12 largest of 20 values are drawn."));
        assert!(page.contains("lines for the 8 largest of 20 values"));
        assert!(page.contains(">label19<") && !page.contains(">label0<"));
    }

    #[test]
    fn axes_are_nice() {
        assert_eq!(Axis::proportion(0.99).hi, 1.0);
        assert_eq!(Axis::proportion(0.36).hi, 0.4);
        let a = Axis::values(3.2, 17.9);
        assert!(a.lo <= 3.2 && a.hi >= 17.9 && a.step == 5.0);
        assert_eq!(Axis::proportion(1.0).label(0.25, true), "25%");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(C(f64::NAN).to_string(), "0");
        assert_eq!(C(-0.04).to_string(), "0");
    }
}
