//! `edgetune serve` in a real browser: Debian's chromium, headless (scripts/setup-chromium.sh
//! installs it; the test script requires it with EDGETUNE_REQUIRE_CHROMIUM=1), driven through
//! the DevTools protocol. The list shows the studies, a study's page its plots and rows, the
//! measured count rises while a worker runs without the page being reloaded, a stored name that
//! is markup is shown as text, and unknown paths are 404.

mod common;

use common::{edgetune, std_edgetune};
use headless_chrome::{Browser, LaunchOptions, Tab};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const EVIL: &str = "<script>alert(1)</script>";

/// The browser, or `None` where none is installed and the test script did not require one.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("EDGETUNE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("EDGETUNE_REQUIRE_CHROMIUM").is_err(),
        "no chromium at {}: scripts/setup-chromium.sh installs it",
        path.display()
    );
    eprintln!("skipped: no chromium (scripts/setup-chromium.sh installs it)");
    None
}

/// A running `serve`, killed when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(storage: &str, reports: &Path) -> Served {
    serve_with(
        &["--storage", storage, "--bind", "127.0.0.1:0"],
        reports,
        Stdio::inherit(),
    )
}

/// `serve` with `args`, and the address its first line says it listens on.
fn serve_with(args: &[&str], reports: &Path, stderr: Stdio) -> Served {
    let mut child = std_edgetune()
        .arg("serve")
        .args(args)
        .arg("--reports")
        .arg(reports)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("serve said {line:?}"))
        .to_string();
    Served { child, addr }
}

/// The status code and body of a plain GET (no browser): what a script would see.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    (code, text)
}

fn create(url: &str, name: &str, extra: &[&str]) {
    edgetune()
        .args(["study", "create", "--storage", url, "--study", name])
        .args(["-m", "yolov4-tiny", "-d", "nano", "--inferences", "800"])
        .args(extra)
        .assert()
        .success();
}

fn worker(url: &str, name: &str, sleep: &str) -> Child {
    common::worker(url, name, "a")
        .args(["--twin-sleep", sleep])
        .spawn()
        .unwrap()
}

fn browser(path: PathBuf) -> Browser {
    let args: Vec<&std::ffi::OsStr> = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(std::ffi::OsStr::new)
    .collect();
    Browser::new(LaunchOptions {
        path: Some(path),
        headless: true,
        sandbox: false,
        window_size: Some((1400, 1100)),
        args,
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    })
    .unwrap()
}

/// Evaluates `js` in the page: its value.
fn eval(tab: &Tab, js: &str) -> serde_json::Value {
    tab.evaluate(js, true)
        .unwrap()
        .value
        .unwrap_or(serde_json::Value::Null)
}

/// Waits (up to `s` seconds) until `js` is true in the page.
#[track_caller]
fn wait_until(tab: &Tab, js: &str, s: u64, what: &str) {
    let t0 = Instant::now();
    while eval(tab, js) != serde_json::Value::Bool(true) {
        assert!(
            t0.elapsed() < Duration::from_secs(s),
            "{what}: never ({js})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn measured_of(tab: &Tab) -> u64 {
    let v = eval(
        tab,
        "document.querySelector('#status [data-field=measured]').textContent",
    );
    v.as_str()
        .and_then(|t| t.split('/').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("measured reads {v}"))
}

#[test]
fn the_dashboard_in_a_real_browser_lists_shows_updates_escapes_and_404s() {
    let Some(chrome) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("studies.db").display());
    let reports = dir.path().join("reports");
    // A finished study, and one whose stored name is markup (names are checked when made, so
    // the database is edited as an attacker with access to it would).
    create(&url, "done", &["--budget", "12"]);
    assert!(worker(&url, "done", "0").wait().unwrap().success());
    create(&url, "evil", &["--budget", "12"]);
    let db = rusqlite::Connection::open(dir.path().join("studies.db")).unwrap();
    db.execute(
        "UPDATE edgetune_studies SET name = ?1 WHERE name = 'evil'",
        [EVIL],
    )
    .unwrap();
    drop(db);
    // A tune's output folder.
    edgetune()
        .args([
            "tune", "-q", "-m", "alexnet", "-d", "nano", "--budget", "10", "--out",
        ])
        .arg(reports.join("tune-1"))
        .assert()
        .success();
    create(&url, "live", &["--budget", "30", "--strategy", "random"]);
    let served = serve(&url, &reports);
    let base = format!("http://{}", served.addr);
    let browser = browser(chrome);
    let tab = browser.new_tab().unwrap();

    // The list: three studies, the markup name as text, the tune's folder.
    tab.navigate_to(&format!("{base}/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("#studies").unwrap();
    let names = eval(
        &tab,
        "Array.from(document.querySelectorAll('#studies tbody tr td:first-child a')).map(a => a.textContent).join('|')",
    );
    assert_eq!(names, serde_json::json!(format!("done|{EVIL}|live")));
    assert_eq!(
        eval(&tab, "document.querySelectorAll('main script').length"),
        0
    );
    let runs = eval(&tab, "document.querySelector('#runs').innerText");
    assert!(runs.as_str().unwrap().contains("tune-1"), "{runs}");
    let done_row = eval(
        &tab,
        "document.querySelector('tr[data-study=done]').innerText",
    );
    assert!(done_row.as_str().unwrap().contains("12/12"), "{done_row}");

    // The markup-named study's own page: its name is the heading's text.
    tab.navigate_to(&format!("{base}/study/{}/", pct(EVIL)))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("h1").unwrap();
    assert_eq!(
        eval(&tab, "document.querySelector('h1').textContent"),
        serde_json::json!(format!("study {EVIL}"))
    );
    assert_eq!(
        eval(&tab, "document.querySelectorAll('main script').length"),
        0
    );

    // A finished study's page: its plots load, its rows name the board, sorting works.
    tab.navigate_to(&format!("{base}/study/done/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    wait_until(
        &tab,
        "Array.from(document.querySelectorAll('.plots img')).length >= 2 && Array.from(document.querySelectorAll('.plots img')).every(i => i.complete && i.naturalWidth > 0)",
        20,
        "the plots load",
    );
    let rows = eval(
        &tab,
        "document.querySelectorAll('#measurements tbody tr').length",
    );
    assert_eq!(rows, serde_json::json!(12));
    tab.find_element("#measurements th:nth-child(3)")
        .unwrap()
        .click()
        .unwrap();
    let sorted = eval(
        &tab,
        "(() => { const v = Array.from(document.querySelectorAll('#measurements tbody tr td:nth-child(3)')).map(c => Number(c.dataset.v)); return v.every((x, i) => i == 0 || v[i - 1] <= x); })()",
    );
    assert_eq!(sorted, serde_json::Value::Bool(true));
    let links = eval(
        &tab,
        "Array.from(document.querySelectorAll('a[download]')).map(a => a.textContent).join(' ')",
    );
    assert!(
        links.as_str().unwrap().contains("report.json")
            && links.as_str().unwrap().contains("profile.toml"),
        "{links}"
    );

    // Live: the page of a study a worker is measuring counts up without being reloaded.
    tab.navigate_to(&format!("{base}/study/live/"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("#status").unwrap();
    eval(&tab, "window.notReloaded = true");
    let before = measured_of(&tab);
    let mut w = worker(&url, "live", "0.0015");
    let t0 = Instant::now();
    while measured_of(&tab) <= before {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the measured count never rose from {before}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        eval(&tab, "window.notReloaded === true"),
        serde_json::Value::Bool(true)
    );
    // The state and claims are live too while it runs; then it finishes.
    wait_until(
        &tab,
        "document.querySelector('#status [data-field=state]').textContent === 'running'",
        30,
        "running shows",
    );
    assert!(w.wait().unwrap().success());
    wait_until(
        &tab,
        "document.querySelector('#status [data-field=measured]').textContent === '30/30'",
        20,
        "the study's end shows",
    );
    if std::env::var("EDGETUNE_SCREENSHOT").is_ok() {
        wait_until(
            &tab,
            "document.querySelectorAll('.plots img').length >= 2",
            30,
            "plots for the screenshot",
        );
        // The README's picture: EDGETUNE_SCREENSHOT=docs/dashboard.png cargo test --test dashboard
        std::thread::sleep(Duration::from_millis(1500));
        let png = tab
            .capture_screenshot(
                headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption::Png,
                None,
                None,
                true,
            )
            .unwrap();
        std::fs::write(std::env::var("EDGETUNE_SCREENSHOT").unwrap(), png).unwrap();
    }

    // Unknown paths, and files no page links to.
    for path in [
        "/nope",
        "/study/nope/",
        "/run/tune-1/../../etc/passwd",
        "/run/tune-1/journal.jsonl",
        "/study/done/x.svg",
    ] {
        let (code, _) = get(&served.addr, path);
        assert_eq!(code, 404, "{path}");
    }
    tab.navigate_to(&format!("{base}/nope"))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert_eq!(
        eval(&tab, "document.querySelector('h1').textContent"),
        serde_json::json!("Not found")
    );
    let (code, json) = get(&served.addr, "/api/studies");
    assert_eq!(code, 200);
    assert!(json.contains("\"name\":\"live\""), "{json}");
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn serve_refuses_bad_input_with_exit_2_and_warns_when_it_listens_beyond_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("s.db").display());
    for (args, says) in [
        (vec!["--bind", "localhost"], "not an address and port"),
        (vec!["--storage", "mysql://x"], "sqlite:PATH"),
        (vec!["--storage", &db], "there is no database there"),
        (vec!["--threads", "0"], "1..=256"),
    ] {
        let o = edgetune().arg("serve").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Every address: it serves, and says that anyone who reaches the machine can read it.
    let mut served = serve_with(&["--bind", "0.0.0.0:0"], dir.path(), Stdio::piped());
    let port = served.addr.rsplit(':').next().unwrap().to_string();
    let (code, page) = get(&format!("127.0.0.1:{port}"), "/");
    assert_eq!(code, 200);
    assert!(page.contains("No storage given"), "{page}");
    let (code, _) = get(&format!("127.0.0.1:{port}"), "/api/studies");
    assert_eq!(code, 404);
    // A storage that goes away under it: the list says why, the JSON is a 503 that says why.
    let db_path = dir.path().join("gone.db");
    let gone = format!("sqlite:{}", db_path.display());
    create(&gone, "x", &["--budget", "2"]);
    let other = serve_with(
        &["--storage", &gone, "--bind", "127.0.0.1:0"],
        dir.path(),
        Stdio::null(),
    );
    std::fs::remove_file(&db_path).unwrap();
    let (code, body) = get(&other.addr, "/api/studies");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("there is no database there"), "{body}");
    let (code, body) = get(&other.addr, "/");
    assert_eq!(code, 200);
    assert!(body.contains("class=\"problem\""), "{body}");
    drop(other);
    common::signal(served.child.id(), "-INT");
    let status = served.child.wait().unwrap();
    let mut err = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("warning: listening on 0.0.0.0:"), "{err}");
    assert!(err.contains("no login"), "{err}");
    assert!(status.success(), "{err}");
}
