//! `edgetune serve`: a read-only web dashboard over a storage's studies and a folder of tune
//! outputs. Each page reads the storage when it is loaded; a study's report (plots, rows,
//! savings) is built by the same code as `study report`, into a private folder, once per new
//! record, however many pages ask for it at once. Pages poll their JSON each second.

use super::tune::TuneOptions;
use crate::error::UsageError;
use crate::report::dashboard::{ListPage, NotFoundPage, ReportPage, RunLine, StudyStatus};
use crate::report::{summary::summary, Report};
use crate::study::storage::{self, StudyListing, StudyView};
use anyhow::{Context, Result};
use askama::Template;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The address `serve` listens on unless `--bind` says otherwise: this machine only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8377";

/// What `serve` was asked to show.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The storage whose studies it shows.
    pub storage: Option<String>,
    /// The folder of tune outputs it lists.
    pub reports_dir: PathBuf,
    /// Where it listens.
    pub bind: String,
    /// Threads answering requests.
    pub threads: usize,
}

/// A stored study's options as `study report` takes them (the binary's merge of its recorded
/// arguments).
pub type StudyOptions = dyn Fn(&StudyView) -> Result<TuneOptions> + Send + Sync;

/// Files a page may link to, and their types; nothing else is ever read from a folder.
const FILES: [(&str, &str); 11] = [
    ("report.json", "application/json"),
    ("report.md", "text/markdown; charset=utf-8"),
    ("profile.toml", "application/toml"),
    ("nvpmodel.conf", "text/plain; charset=utf-8"),
    ("apply-profile.sh", "text/plain; charset=utf-8"),
    ("pareto.csv", "text/csv"),
    ("energy-vs-gpu.svg", "image/svg+xml"),
    ("heatmap.svg", "image/svg+xml"),
    ("convergence.svg", "image/svg+xml"),
    ("batch.svg", "image/svg+xml"),
    ("pareto.svg", "image/svg+xml"),
];

/// The page's script, served as a file so the pages' policy can forbid inline script.
const SCRIPT: &str = include_str!("../../templates/dashboard.js");

/// A study's report as last built.
struct Built {
    records: usize,
    dir: Option<PathBuf>,
    report: Result<Report, String>,
}

/// A study's last build, locked while it is rebuilt so that one build serves every page asking.
type Slot = Arc<Mutex<Option<Arc<Built>>>>;

struct Ctx {
    storage: Option<String>,
    reports_dir: PathBuf,
    options_of: Box<StudyOptions>,
    cache: tempfile::TempDir,
    builds: Mutex<HashMap<String, Slot>>,
    counter: AtomicUsize,
}

/// An answer.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
        }
    }
    fn json<T: serde::Serialize>(v: &T) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(v).expect("statuses serialise"),
        }
    }
}

/// Runs the dashboard until an interrupt; `out` gets the address it listens on.
pub fn run(o: &ServeOptions, options_of: Box<StudyOptions>, out: &mut dyn Write) -> Result<()> {
    let addr: SocketAddr = o.bind.parse().map_err(|_| {
        UsageError(format!(
            "--bind {}: not an address and port; give one such as {DEFAULT_BIND}, or 0.0.0.0:8377 to let other machines in",
            o.bind
        ))
    })?;
    if let Some(url) = &o.storage {
        storage::open(url)?;
    }
    if !(1..=256).contains(&o.threads) {
        return Err(UsageError(format!("--threads {}: give 1 to 256", o.threads)).into());
    }
    let server = tiny_http::Server::http(addr).map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}; choose another port with --bind")
    })?;
    let shown = server
        .server_addr()
        .to_ip()
        .map_or(addr.to_string(), |a| a.to_string());
    if !addr.ip().is_loopback() {
        eprintln!("warning: listening on {shown}: anyone who can reach this machine can read these studies (their names, boards and figures); the dashboard has no login. Without --bind it listens on {DEFAULT_BIND} only.");
    }
    let cache = tempfile::Builder::new()
        .prefix("edgetune-serve-")
        .tempdir()
        .context("making the dashboard's folder for rendered reports")?;
    writeln!(
        out,
        "serving the dashboard at http://{shown}/ (Ctrl-C stops it)"
    )?;
    out.flush()?;
    let ctx = Arc::new(Ctx {
        storage: o.storage.clone(),
        reports_dir: o.reports_dir.clone(),
        options_of,
        cache,
        builds: Mutex::new(HashMap::new()),
        counter: AtomicUsize::new(0),
    });
    super::signals::on_interrupt("stopping the dashboard");
    let stop = super::signals::interrupt_flag();
    let server = Arc::new(server);
    let workers: Vec<_> = (0..o.threads)
        .map(|_| {
            let (server, ctx, stop) = (server.clone(), ctx.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv_timeout(std::time::Duration::from_millis(200)) {
                        Ok(Some(req)) => answer(&ctx, req),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn answer(ctx: &Ctx, req: tiny_http::Request) {
    use tiny_http::{Header, Method, Response};
    let reply = match req.method() {
        Method::Get | Method::Head => route(ctx, req.url()),
        _ => Reply {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            body: b"the dashboard is read-only: GET only\n".to_vec(),
        },
    };
    let header = |k: &str, v: &str| Header::from_bytes(k, v).expect("ASCII headers");
    let policy = if reply.content_type.starts_with("image/svg") {
        "default-src 'none'; style-src 'unsafe-inline'"
    } else {
        "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    };
    let response = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", reply.content_type))
        .with_header(header("Content-Security-Policy", policy))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Cache-Control", "no-store"));
    // A browser that went away is no error of ours.
    let _ = req.respond(response);
}

/// The path's segments, percent-decoded; `None` for one that is not UTF-8.
fn segments(url: &str) -> Option<Vec<String>> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    path.split('/')
        .skip(1)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

fn route(ctx: &Ctx, url: &str) -> Reply {
    let not_found = || {
        let page = NotFoundPage {
            path: url.split('?').next().unwrap_or("").to_string(),
        };
        Reply::html(404, page.render().unwrap_or_default())
    };
    let Some(seg) = segments(url) else {
        return not_found();
    };
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let reply = match seg.as_slice() {
        [""] => Some(list_page(ctx)),
        ["dashboard.js"] => Some(Reply {
            status: 200,
            content_type: "text/javascript; charset=utf-8",
            body: SCRIPT.as_bytes().to_vec(),
        }),
        ["api", "studies"] => ctx.storage.as_deref().map(|u| match statuses(u, ctx) {
            Ok(s) => Reply::json(&s),
            // The page keeps its last values; a script sees why.
            Err(e) => Reply {
                status: 503,
                ..Reply::json(&serde_json::json!({ "error": e.to_string() }))
            },
        }),
        ["api", "study", name] => study_status(ctx, name).map(|(s, _)| Reply::json(&s)),
        ["study", name] | ["study", name, ""] => study_page(ctx, name),
        ["study", name, file] => study_file(ctx, name, file),
        ["run", folder] | ["run", folder, ""] => run_page(ctx, folder),
        ["run", folder, file] => run_dir(ctx, folder).and_then(|d| file_reply(&d, file)),
        _ => None,
    };
    reply.unwrap_or_else(not_found)
}

/// Each study's status (an unreadable one says why), or why the storage could not be read.
fn statuses(url: &str, ctx: &Ctx) -> Result<Vec<StudyStatus>, storage::StorageError> {
    let mut db = storage::open(url)?;
    let names = db.names()?;
    // Each study read once, for its status and (when its records changed) its report.
    Ok(names
        .iter()
        .map(|name| match db.study(name) {
            Ok(view) => {
                let built = built(ctx, &view);
                StudyStatus::of(&view, built.report.as_ref().map_err(String::as_str))
            }
            Err(e) => StudyStatus::unreadable(&StudyListing::unreadable(name, &e)),
        })
        .collect())
}

fn list_page(ctx: &Ctx) -> Reply {
    let (studies, storage_problem) = match ctx.storage.as_deref().map(|u| statuses(u, ctx)) {
        Some(Ok(s)) => (s, None),
        Some(Err(e)) => (Vec::new(), Some(e.to_string())),
        None => (Vec::new(), None),
    };
    let page = ListPage {
        storage: ctx.storage.as_deref().map(ListPage::shown),
        studies,
        storage_problem,
        reports_dir: ctx.reports_dir.display().to_string(),
        runs: runs(&ctx.reports_dir),
    };
    Reply::html(200, page.render().unwrap_or_default())
}

/// The study `name` as read now, with its report (built when its records changed).
fn study_status(ctx: &Ctx, name: &str) -> Option<(StudyStatus, Arc<Built>)> {
    let mut db = storage::open(ctx.storage.as_ref()?).ok()?;
    let view = db.study(name).ok()?;
    let built = built(ctx, &view);
    let status = StudyStatus::of(&view, built.report.as_ref().map_err(String::as_str));
    Some((status, built))
}

fn study_page(ctx: &Ctx, name: &str) -> Option<Reply> {
    let (status, built) = study_status(ctx, name)?;
    let base = format!("/study/{}/", encode(name));
    let page = report_page(
        format!("study {name}"),
        base.clone(),
        built.dir.as_deref(),
        built.report.as_ref().map_err(|e| {
            if status.problem.is_some() {
                e.clone()
            } else {
                "no report yet: the study has no DVFS baseline (start a worker)".into()
            }
        }),
        built.records,
    );
    Some(Reply::html(
        200,
        ReportPage {
            status: Some(status),
            poll: Some(format!("/api/study/{}", encode(name))),
            ..page
        }
        .render()
        .unwrap_or_default(),
    ))
}

fn study_file(ctx: &Ctx, name: &str, file: &str) -> Option<Reply> {
    // The page that links the file was rendered from the study's latest build: its files are
    // there, without reading the storage again (a page load asks for five of them).
    let slot = ctx
        .builds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .cloned();
    let cached = slot.and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone());
    let built = match cached {
        Some(b) => b,
        None => study_status(ctx, name)?.1,
    };
    file_reply(built.dir.as_deref()?, file)
}

/// The page of a report whose files are in `dir`.
fn report_page(
    title: String,
    base: String,
    dir: Option<&Path>,
    report: Result<&Report, String>,
    version: usize,
) -> ReportPage {
    let (plots, downloads): (Vec<String>, Vec<String>) = FILES
        .iter()
        .map(|(f, _)| f.to_string())
        .filter(|f| dir.is_some_and(|d| d.join(f).is_file()))
        .partition(|f| f.ends_with(".svg"));
    let (summary_text, problem, rows, boards) = match report {
        Ok(r) => (
            Some(summary(r)),
            None,
            ReportPage::rows_of(r),
            r.boards.clone(),
        ),
        Err(e) => (None, Some(e), Vec::new(), Vec::new()),
    };
    ReportPage {
        title,
        base,
        status: None,
        poll: None,
        summary: summary_text,
        problem,
        plots,
        rows,
        boards,
        downloads,
        version,
    }
}

/// The report of a stored study, built once per new record however many ask at once.
fn built(ctx: &Ctx, view: &StudyView) -> Arc<Built> {
    let slot = {
        let mut m = ctx.builds.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(view.name.clone()).or_default().clone()
    };
    let mut held = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = held.as_ref() {
        // A page that read the storage a moment before another one's build is not older news.
        if b.records >= view.records.len() {
            return b.clone();
        }
    }
    let n = ctx.counter.fetch_add(1, Ordering::SeqCst);
    let mut made_dir = None;
    let report = (ctx.options_of)(view).and_then(|o| {
        super::study::build_report(&o, view, &mut || {
            // Named by a counter, never by the study: stored names decide nothing on disk.
            let d = ctx.cache.path().join(format!("b{n}"));
            std::fs::create_dir(&d).with_context(|| format!("making {}", d.display()))?;
            made_dir = Some(d.clone());
            Ok(d)
        })
    });
    let built = Arc::new(match report {
        Ok((rep, dir)) => Built {
            records: view.records.len(),
            dir: Some(dir),
            report: Ok(rep),
        },
        Err(e) => Built {
            records: view.records.len(),
            dir: made_dir,
            report: Err(format!("{e:#}")),
        },
    });
    if let Some(old) = held.replace(built.clone()) {
        if let Some(d) = &old.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    built
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A file of `dir` that pages link to; nothing else.
fn file_reply(dir: &Path, file: &str) -> Option<Reply> {
    let (name, content_type) = FILES.iter().find(|(f, _)| *f == file)?;
    let body = std::fs::read(dir.join(name)).ok()?;
    Some(Reply {
        status: 200,
        content_type,
        body,
    })
}

/// The tune outputs under the reports folder: each folder with a report.json, newest first.
fn runs(dir: &Path) -> Vec<RunLine> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, RunLine)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let folder = e.file_name().into_string().ok()?;
            let path = e.path().join("report.json");
            let when = path.metadata().and_then(|m| m.modified()).ok()?;
            let rep = read_report(&path).ok()?;
            Some((when, RunLine::of(&folder, &rep)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.folder.cmp(&b.1.folder)));
    found.into_iter().take(500).map(|(_, r)| r).collect()
}

fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a report.json: {e}", path.display()))
}

/// The folder of the reports folder named `folder`: only a name listed there, never a path.
fn run_dir(ctx: &Ctx, folder: &str) -> Option<PathBuf> {
    if folder.is_empty() || folder == "." || folder == ".." || folder.contains(['/', '\\']) {
        return None;
    }
    std::fs::read_dir(&ctx.reports_dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_str() == Some(folder))
        .map(|e| e.path())
        .filter(|p| p.join("report.json").is_file())
}

fn run_page(ctx: &Ctx, folder: &str) -> Option<Reply> {
    let dir = run_dir(ctx, folder)?;
    let report = read_report(&dir.join("report.json"));
    let page = report_page(
        format!("tune {folder}"),
        format!("/run/{}/", encode(folder)),
        Some(&dir),
        report.as_ref().map_err(|e| e.clone()),
        0,
    );
    Some(Reply::html(200, page.render().unwrap_or_default()))
}
