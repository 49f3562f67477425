//! How fast `edgetune serve` answers: 50 page loads at once of a study with 500 measurements
//! (the page, its script and its plots, each load on its own connection as a browser's would),
//! first with the report not yet built, then built. Target: every load under 2 s on 2 cores.
//!
//! `cargo bench --bench dashboard` (release build); `-- --clients N --measurements M` to vary.

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn edgetune() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgetune"))
}

/// A GET on a new connection: its status and body length.
fn get(addr: &str, path: &str) -> (u16, usize) {
    let mut s = std::net::TcpStream::connect(addr).expect("the dashboard answers");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    let code = std::str::from_utf8(&body[9..12]).unwrap().parse().unwrap();
    (code, body.len())
}

/// One page load: the page, then what it links (script, plots), as a browser fetches them.
fn load(addr: &str, page: &str) -> Duration {
    let t0 = Instant::now();
    let (code, _) = get(addr, page);
    assert_eq!(code, 200, "{page}");
    for sub in [
        "/dashboard.js",
        "energy-vs-gpu.svg",
        "heatmap.svg",
        "convergence.svg",
        "batch.svg",
    ] {
        let path = if sub.starts_with('/') {
            sub.to_string()
        } else {
            format!("{page}{sub}")
        };
        let (code, _) = get(addr, &path);
        assert_eq!(code, 200, "{path}");
    }
    let (code, _) = get(addr, "/api/study/big");
    assert_eq!(code, 200);
    t0.elapsed()
}

fn wave(addr: &str, clients: usize) -> Vec<f64> {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let addr = addr.to_string();
            std::thread::spawn(move || load(&addr, "/study/big/").as_secs_f64())
        })
        .collect();
    let mut t: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    t.sort_by(f64::total_cmp);
    t
}

fn main() {
    // `cargo test --all-targets` runs this once, small, as a check that it works; `cargo bench`
    // passes --bench.
    let full = std::env::args().any(|a| a == "--bench");
    let clients = arg("--clients", if full { 50 } else { 4 });
    let measurements = arg("--measurements", if full { 500 } else { 20 });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    let budget = measurements.to_string();
    let ok = edgetune()
        .args(["study", "create", "--storage", &url, "--study", "big"])
        .args([
            "-m",
            "yolov4-tiny",
            "-d",
            "nano",
            "--strategy",
            "random",
            "--budget",
            &budget,
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    // Two boards at once, so the page has a fleet's boards table and rows of both.
    let workers: Vec<_> = ["a", "b"]
        .iter()
        .map(|board| {
            edgetune()
                .args([
                    "worker",
                    "-q",
                    "--storage",
                    &url,
                    "--study",
                    "big",
                    "--board-id",
                    board,
                ])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    let mut child = edgetune()
        .args([
            "serve",
            "--storage",
            &url,
            "--bind",
            "127.0.0.1:0",
            "--reports",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "edgetune serve: {clients} page loads at once of a {measurements}-measurement study (page, script, 4 plots, its JSON), {cores} cores"
    );
    println!("| wave | median (s) | 95th percentile (s) | slowest (s) |");
    println!("|---|---|---|---|");
    for (name, times) in [
        (
            "first (report built by the first load)",
            wave(&addr, clients),
        ),
        ("again (report built)", wave(&addr, clients)),
    ] {
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            at(0.5),
            at(0.95),
            times[times.len() - 1]
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
