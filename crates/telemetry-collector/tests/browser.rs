//! The HTML report in a real browser: a store filled with three days of randomised reports (as
//! the client's mechanisms make them), `report::build`, `html::to_html`, then Debian's headless
//! Chromium renders the page to a screenshot and dumps its DOM.
//!
//! Chromium is required: `.ci/run` installs it (`apt-get install -y chromium`). The page,
//! screenshot and DOM are kept in the target directory (`collector-browser/`) for a look;
//! `COLLECTOR_SCREENSHOT_OUT=path` also writes a 1000×1400 screenshot there (how
//! `docs/images/collector-report.png` is made).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use telemetry_collector::report::{self, AppReport};
use telemetry_collector::store::sqlite::Sqlite;
use telemetry_collector::store::{Accepted, Query, ReportValue, Store, StoredReport};
use telemetry_schema::{
    Catalog, Day, EventSpec, FieldKind, FieldSpec, MechanismParams, NameVersion,
    k_rr_probabilities, params_key, rr_probabilities,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(60);

const COMMANDS: [&str; 6] = ["build", "test", "run", "fmt", "clippy", "doc"];
const THEMES: [&str; 3] = ["light", "dark", "system"];
const DURATION_BOUNDS_MS: [u64; 4] = [100, 1_000, 10_000, 60_000];
/// A redacted crash message as a hostile payload might send it: must show as text.
const HOSTILE: &str = "<script>alert(1)</script> in <path> & 'quotes'";

/// SplitMix64: deterministic reports without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index drawn with the given weights.
    fn pick(&mut self, weights: &[f64]) -> usize {
        let mut u = self.unit() * weights.iter().sum::<f64>();
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }

    /// Two-sided geometric noise, `P(z) ∝ α^|z|`.
    fn discrete_laplace(&mut self, alpha: f64) -> i64 {
        let mut geometric = || (self.unit().ln() / alpha.ln()).floor() as i64;
        geometric() - geometric()
    }

    /// k-ary randomised response of the label at `truth`.
    fn k_rr(&mut self, truth: usize, k: usize, epsilon: f64) -> usize {
        let (p, _) = k_rr_probabilities(epsilon, k);
        if self.chance(p) {
            truth
        } else {
            let other = (self.next() % (k as u64 - 1)) as usize;
            if other >= truth { other + 1 } else { other }
        }
    }

    /// Binary randomised response.
    fn rr(&mut self, truth: bool, epsilon: f64) -> bool {
        let (p, _) = rr_probabilities(epsilon);
        if self.chance(p) { truth } else { !truth }
    }
}

fn catalog() -> Catalog {
    let jobs = FieldSpec::new(
        "jobs",
        "Parallel jobs the command used.",
        FieldKind::Integer { min: 1, max: 32 },
        MechanismParams::one_bit_mean(1.0, 1, 32).expect("params"),
    )
    .expect("field");
    let events = vec![
        EventSpec::new(
            "command_run",
            "A command of the CLI ran.",
            vec![
                FieldSpec::enumeration("command", "Which command ran.", &COMMANDS, 2.0)
                    .expect("field"),
                FieldSpec::bool("success", "Whether the command succeeded.", 3f64.ln())
                    .expect("field"),
                FieldSpec::duration(
                    "duration",
                    "How long it took, as a bucket index (0: under 100 ms … 4: a minute or more).",
                    &DURATION_BOUNDS_MS,
                    1.0,
                )
                .expect("field"),
                jobs,
            ],
        )
        .expect("event"),
        EventSpec::new(
            "session_started",
            "The app started.",
            vec![
                FieldSpec::version("app_version", "Version of the app.").expect("field"),
                FieldSpec::enumeration("theme", "Colour theme in use.", &THEMES, 1.0)
                    .expect("field"),
                FieldSpec::bool("export_used", "Whether an export ran in the session.", 1.0)
                    .expect("field"),
            ],
        )
        .expect("event"),
        EventSpec::new(
            "crash_reported",
            "The app crashed.",
            vec![FieldSpec::text("message", "The panic message, redacted.", 80).expect("field")],
        )
        .expect("event"),
    ];
    let catalog = Catalog::new(
        Some(NameVersion::new("acme", "0.5.0").expect("name")),
        events,
    );
    catalog.check().expect("a valid catalogue");
    catalog
}

/// Three days of payloads from a few hundred installs each, randomised as the client does.
fn payloads(catalog: &Catalog) -> Vec<Vec<Accepted>> {
    let params = |event: &str, field: &str| {
        let spec = catalog.field(event, field).expect("catalogued");
        (
            params_key(&spec.mechanism),
            spec.mechanism.epsilon().unwrap_or(0.0),
        )
    };
    let (command, command_eps) = params("command_run", "command");
    let (success, success_eps) = params("command_run", "success");
    let (duration, duration_eps) = params("command_run", "duration");
    let (jobs, jobs_eps) = params("command_run", "jobs");
    let (version, _) = params("session_started", "app_version");
    let (theme, theme_eps) = params("session_started", "theme");
    let (message, _) = params("crash_reported", "message");
    let report = |event: &str, field: &str, params: &str, value: ReportValue| StoredReport {
        event: event.into(),
        field: field.into(),
        params: params.into(),
        value,
    };
    let mut rng = Rng(0x5EED_2025);
    let mut days = Vec::new();
    for (d, count) in [(0usize, 430usize), (1, 520), (2, 575)] {
        let day = Day::new(2025, 3, 3 + d as u8).expect("day");
        let command_weights = [
            [0.38, 0.22, 0.18, 0.10, 0.08, 0.04],
            [0.34, 0.27, 0.17, 0.10, 0.08, 0.04],
            [0.30, 0.32, 0.16, 0.09, 0.09, 0.04],
        ][d];
        let success_rate = [0.81, 0.86, 0.90][d];
        let mut batch = Vec::new();
        for i in 0..count {
            let mut reports = Vec::new();
            let c = rng.pick(&command_weights);
            let c = rng.k_rr(c, COMMANDS.len(), command_eps);
            reports.push(report(
                "command_run",
                "command",
                &command,
                ReportValue::Label(COMMANDS[c].into()),
            ));
            let ok = rng.chance(success_rate);
            reports.push(report(
                "command_run",
                "success",
                &success,
                ReportValue::Bit(rng.rr(ok, success_eps)),
            ));
            let bucket = rng.pick(&[0.15, 0.45, 0.25, 0.1, 0.05]) as i64;
            let alpha = (-duration_eps / DURATION_BOUNDS_MS.len() as f64).exp();
            reports.push(report(
                "command_run",
                "duration",
                &duration,
                ReportValue::Integer(bucket + rng.discrete_laplace(alpha)),
            ));
            let x = [2.0, 4.0, 8.0, 16.0][rng.pick(&[0.2, 0.4, 0.3, 0.1])];
            let (p, q) = rr_probabilities(jobs_eps);
            let one = rng.chance(q + (x - 1.0) / 31.0 * (p - q));
            reports.push(report("command_run", "jobs", &jobs, ReportValue::Bit(one)));
            if rng.chance(0.7) {
                let v = ["0.5.0", "0.4.2", "0.4.1"][rng.pick(&[0.4 + 0.2 * d as f64, 0.45, 0.1])];
                reports.push(report(
                    "session_started",
                    "app_version",
                    &version,
                    ReportValue::Label(v.into()),
                ));
                let t = rng.pick(&[0.45, 0.35, 0.2]);
                let t = rng.k_rr(t, THEMES.len(), theme_eps);
                reports.push(report(
                    "session_started",
                    "theme",
                    &theme,
                    ReportValue::Label(THEMES[t].into()),
                ));
            }
            if d == 2 && i == 0 {
                reports.push(report(
                    "crash_reported",
                    "message",
                    &message,
                    ReportValue::Label(HOSTILE.into()),
                ));
            }
            batch.push(Accepted {
                run_id: format!("0193a1b2-0000-7000-8000-{d:04}{i:08}"),
                app: "acme".into(),
                app_version: "0.5.0".into(),
                day,
                received: day,
                schema_version: "1.1.0".into(),
                body: b"{}".to_vec(),
                reports,
            });
        }
        days.push(batch);
    }
    days
}

fn build_reports(dir: &Path) -> (Vec<AppReport>, usize) {
    let store = Sqlite::open(&dir.join("store.sqlite")).expect("open the store");
    let catalog = catalog();
    let json = serde_json::to_string(&catalog).expect("catalogue JSON");
    store
        .register_catalog("acme", "0.5.0", &json)
        .expect("register the catalogue");
    for batch in payloads(&catalog) {
        let fresh = store.insert(&batch).expect("insert");
        assert!(fresh.iter().all(|f| *f));
    }
    let reports = report::build(&store, &Query::default()).expect("report");
    let fields = catalog.events.iter().map(|e| e.fields.len()).sum();
    (reports, fields)
}

/// Collects a child's pipe on a thread, chunk by chunk (a helper process that keeps the pipe
/// open must not make the test hang).
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

fn collect(rx: &mpsc::Receiver<Vec<u8>>, until: Instant) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => out.extend(chunk),
            Err(_) => return out,
        }
    }
}

/// Runs Chromium headless on `page` with `args`, in its own process group (killed, whole, after
/// [`TIMEOUT`] or once it is done); returns its stdout.
fn chromium(home: &Path, page: &Path, args: &[String]) -> Vec<u8> {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser test needs Debian's Chromium (`.ci/run` installs it \
         with `apt-get install -y chromium`)"
    );
    let profile = tempfile::tempdir_in(home).expect("profile dir");
    let mut cmd = Command::new(CHROMIUM);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--disable-crash-reporter",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start chromium");
    let group = child.id();
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let mut out = Vec::new();
    let status = loop {
        out.extend(collect(
            &stdout,
            Instant::now() + Duration::from_millis(100),
        ));
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            break None;
        }
    };
    // Whatever is left of it (renderer, crash handler) goes with the group.
    let _ = Command::new("/bin/kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .env_clear()
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    out.extend(collect(&stdout, Instant::now() + Duration::from_secs(2)));
    let err = collect(&stderr, Instant::now() + Duration::from_secs(1));
    let err = String::from_utf8_lossy(&err);
    match status {
        None => panic!("chromium did not finish within {TIMEOUT:?}; stderr:\n{err}"),
        Some(s) if !s.success() => panic!("chromium failed ({s}); stderr:\n{err}"),
        Some(_) => out,
    }
}

/// Checks a screenshot is a rendered page, not a blank one; returns (share of non-background
/// pixels, distinct colours).
fn check_screenshot(path: &Path, width: u32, height: u32) -> (f64, usize) {
    let file = std::fs::File::open(path).expect("the screenshot exists");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    assert_eq!(
        (info.width, info.height),
        (width, height),
        "screenshot size"
    );
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "a colour screenshot, got {:?}",
        info.color_type
    );
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let (background, bg_count) = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(p, n)| (*p, *n))
        .expect("pixels");
    let share = 1.0 - bg_count as f64 / pixels.len() as f64;
    // Colours used by at least a few pixels (anti-aliasing alone makes many rare ones).
    let distinct = counts.values().filter(|n| **n >= 20).count();
    assert!(
        share >= 0.02,
        "the screenshot is (almost) blank: {:.2}% of pixels differ from the background {background:?}",
        share * 100.0
    );
    assert!(distinct >= 8, "the screenshot has only {distinct} colours");
    // The palette's first colour (bars, points) is there.
    assert!(
        counts.contains_key(&[0x3b, 0x6f, 0xb6]),
        "no bar colour in the screenshot"
    );
    (share, distinct)
}

#[test]
fn report_renders_in_chromium() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let (reports, catalogued) = build_reports(tmp.path());
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].payloads, 430 + 520 + 575);
    assert_eq!(
        reports[0].fields.len(),
        catalogued,
        "one entry per catalogued field"
    );

    let html = telemetry_collector::html::to_html(&reports);
    for bad in ["http://", "https://", "src=", "<script", "@import", "url("] {
        assert!(!html.contains(bad), "{bad} in the page");
    }
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("collector-browser");
    std::fs::create_dir_all(&keep).expect("output dir");
    let page = keep.join("report.html");
    std::fs::write(&page, &html).expect("write the page");

    let shot = keep.join("shot.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        tmp.path(),
        &page,
        &[
            "--window-size=1000,1600".into(),
            format!("--screenshot={}", shot.display()),
        ],
    );
    let (share, colours) = check_screenshot(&shot, 1000, 1600);

    let dom = chromium(tmp.path(), &page, &["--dump-dom".into()]);
    let dom = String::from_utf8(dom).expect("UTF-8 DOM");
    std::fs::write(keep.join("dom.html"), &dom).expect("write the DOM");
    assert!(dom.contains("<svg"), "no SVG in the DOM:\n{dom}");
    let figures: Vec<&str> = dom.split("class=\"field-chart\"").skip(1).collect();
    assert_eq!(
        figures.len(),
        catalogued,
        "one figure per catalogued field in the rendered DOM"
    );
    for fig in &figures {
        let end = fig.find("</figure>").expect("figure closed");
        assert!(
            fig[..end].contains("<svg"),
            "a figure without a chart:\n{}",
            &fig[..end]
        );
    }
    // The hostile redacted text is shown as text, never parsed as markup.
    assert!(
        !dom.contains("<script"),
        "markup from a payload reached the DOM"
    );
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        dom.contains("no reports in this period"),
        "export_used has no reports"
    );

    if let Some(out) = std::env::var_os("COLLECTOR_SCREENSHOT_OUT") {
        let out = PathBuf::from(out);
        chromium(
            tmp.path(),
            &page,
            &[
                "--window-size=1000,1400".into(),
                format!("--screenshot={}", out.display()),
            ],
        );
        check_screenshot(&out, 1000, 1400);
    }
    eprintln!(
        "browser report: {} figures, {:.1}% of pixels drawn, {colours} colours, {:.1} s; page and \
         screenshot in {}",
        figures.len(),
        share * 100.0,
        started.elapsed().as_secs_f64(),
        keep.display()
    );
}
