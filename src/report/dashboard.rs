//! The pages and JSON of `edgetune serve`: a study's live status, a study's or a tune's report,
//! the lists of both. Pages are askama templates (`templates/`), which escape every value they
//! show; their script only polls the JSON below and puts values in as text.

use super::Report;
use crate::study::storage::{redact, StudyListing, StudyView};
use crate::study::JournalRecord;
use askama::Template;
use serde::Serialize;

/// Where a stored study is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StudyState {
    /// Nothing recorded yet: no worker has started.
    Waiting,
    /// A worker holds a live claim.
    Running,
    /// Measurements are left but no worker holds a claim now.
    Stalled,
    /// The budget is measured and nothing is claimed.
    Done,
    /// The study could not be read.
    Unreadable,
}

impl StudyState {
    /// Its words on a page.
    pub fn words(&self) -> &'static str {
        match self {
            StudyState::Waiting => "waiting for workers",
            StudyState::Running => "running",
            StudyState::Stalled => "no worker now",
            StudyState::Done => "done",
            StudyState::Unreadable => "unreadable",
        }
    }
}

/// A configuration a worker is measuring now.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimStatus {
    /// The board measuring it.
    pub board: String,
    /// What it measures: the configuration as reports write it, and whether it is a run of a
    /// confirmation or of a DVFS baseline.
    pub config: String,
    /// Seconds until its lease runs out unless the worker renews it.
    pub lease_left_s: f64,
}

/// The recommendation as the study's report makes it now.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// The configuration.
    pub config: String,
    /// Its energy for the protocol's inferences, J.
    pub energy_j: f64,
    /// Measured again at the full protocol.
    pub confirmed: bool,
}

impl Recommendation {
    /// A report's recommendation.
    pub fn of(r: &Report) -> Option<Recommendation> {
        r.best.as_ref().map(|b| Recommendation {
            config: b.config.to_string(),
            energy_j: b.energy.energy_j,
            confirmed: r.best_confirmed,
        })
    }

    /// It in words (the page's script writes the same).
    pub fn words(&self) -> String {
        format!(
            "{}: {:.1} J{}",
            self.config,
            self.energy_j,
            if self.confirmed {
                ""
            } else {
                " (not confirmed)"
            }
        )
    }
}

/// A stored study as the list and its page show it (`/api/studies`, `/api/study/NAME`).
#[derive(Debug, Clone, Serialize)]
pub struct StudyStatus {
    /// Study name.
    pub name: String,
    /// Model id.
    pub model: String,
    /// Board kind.
    pub device: String,
    /// Strategy.
    pub strategy: String,
    /// Where it is.
    pub state: StudyState,
    /// Configurations measured (or failed).
    pub measured: usize,
    /// Measurement budget.
    pub budget: usize,
    /// Boards that recorded something.
    pub boards: usize,
    /// Records stored so far: a page redraws its report when this changes.
    pub records: usize,
    /// What workers are measuring now.
    pub claims: Vec<ClaimStatus>,
    /// The recommendation now (none before a baseline and a measurement).
    pub recommendation: Option<Recommendation>,
    /// Saving against the DVFS baseline at its batch, percent.
    pub saving_pct: Option<f64>,
    /// Saving against DVFS at the recommendation's batch (frequencies only), percent.
    pub saving_same_batch_pct: Option<f64>,
    /// Board time spent measuring, s.
    pub board_time_s: Option<f64>,
    /// Why the study or its report could not be read or made.
    pub problem: Option<String>,
}

impl StudyStatus {
    /// The status of `view` (read now) with its report, when one could be made.
    pub fn of(view: &StudyView, report: Result<&Report, &str>) -> StudyStatus {
        let listing = StudyListing::of(view);
        let done = listing.measured >= listing.budget && view.claims.is_empty();
        let state = match () {
            _ if !view.claims.is_empty() => StudyState::Running,
            _ if view.records.is_empty() => StudyState::Waiting,
            _ if done => StudyState::Done,
            _ => StudyState::Stalled,
        };
        let claims = view
            .claims
            .iter()
            .map(|c| ClaimStatus {
                board: c.origin.board.clone(),
                config: c.key.describe(),
                lease_left_s: c.lease_left_s,
            })
            .collect();
        let rep = report.ok();
        StudyStatus {
            name: view.name.clone(),
            model: listing.model,
            device: listing.device,
            strategy: listing.strategy,
            state,
            measured: listing.measured,
            budget: listing.budget,
            boards: listing.boards,
            records: view.records.len(),
            claims,
            recommendation: rep.and_then(Recommendation::of),
            saving_pct: rep.and_then(|r| r.saving_pct),
            saving_same_batch_pct: rep.and_then(|r| r.saving_same_batch_pct),
            board_time_s: rep.map(|r| r.tuning_time_s),
            // A study without a baseline has no report yet, which is no problem.
            problem: report.err().filter(|_| baselined(view)).map(str::to_string),
        }
    }

    /// A study that could not be read.
    pub fn unreadable(l: &StudyListing) -> StudyStatus {
        StudyStatus {
            name: l.name.clone(),
            model: String::new(),
            device: String::new(),
            strategy: String::new(),
            state: StudyState::Unreadable,
            measured: 0,
            budget: 0,
            boards: 0,
            records: 0,
            claims: Vec::new(),
            recommendation: None,
            saving_pct: None,
            saving_same_batch_pct: None,
            board_time_s: None,
            problem: l.unreadable.clone(),
        }
    }

    /// The claims as one line of text (the page's script writes the same).
    pub fn claims_words(&self) -> String {
        let each: Vec<String> = self
            .claims
            .iter()
            .map(|c| format!("{}: {}, lease {:.0} s", c.board, c.config, c.lease_left_s))
            .collect();
        if each.is_empty() {
            "none".into()
        } else {
            each.join("; ")
        }
    }

    /// The recommendation in words.
    pub fn recommendation_words(&self) -> String {
        self.recommendation
            .as_ref()
            .map_or("none yet".into(), Recommendation::words)
    }

    /// The savings in words.
    pub fn saving_words(&self) -> String {
        let pct = |p: Option<f64>| p.map_or("-".to_string(), |p| format!("{p:.1} %"));
        format!(
            "{} (frequencies only: {})",
            pct(self.saving_pct),
            pct(self.saving_same_batch_pct)
        )
    }

    /// The state's class on a page (its JSON name).
    pub fn state_class(&self) -> &'static str {
        match self.state {
            StudyState::Waiting => "waiting",
            StudyState::Running => "running",
            StudyState::Stalled => "stalled",
            StudyState::Done => "done",
            StudyState::Unreadable => "unreadable",
        }
    }

    /// Board time in words.
    pub fn board_time_words(&self) -> String {
        self.board_time_s
            .map_or("-".into(), |s| format!("{:.1} min", s / 60.0))
    }
}

fn baselined(view: &StudyView) -> bool {
    view.records
        .iter()
        .any(|r| matches!(r.record, JournalRecord::Baseline { .. }))
}

/// A tune's output folder as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunLine {
    /// The folder's name under the reports folder.
    pub folder: String,
    /// Model id.
    pub model: String,
    /// Board.
    pub device: String,
    /// The recommendation in words.
    pub recommendation: String,
    /// Saving against DVFS, words.
    pub saving: String,
}

impl RunLine {
    /// The line of the report in `folder`.
    pub fn of(folder: &str, r: &Report) -> RunLine {
        RunLine {
            folder: folder.to_string(),
            model: r.model.clone(),
            device: r.device.clone(),
            recommendation: Recommendation::of(r).map_or("none".into(), |b| b.words()),
            saving: r.saving_pct.map_or("-".into(), |p| format!("{p:.1} %")),
        }
    }
}

/// The front page: the storage's studies and the reports folder's tunes.
#[derive(Template)]
#[template(path = "list.html")]
pub struct ListPage {
    /// The storage, its password hidden (none: no storage given).
    pub storage: Option<String>,
    /// Its studies.
    pub studies: Vec<StudyStatus>,
    /// Why the storage could not be read.
    pub storage_problem: Option<String>,
    /// The reports folder, as given.
    pub reports_dir: String,
    /// Its tunes.
    pub runs: Vec<RunLine>,
}

impl ListPage {
    /// The storage's URL as pages show it.
    pub fn shown(url: &str) -> String {
        redact(url)
    }

    /// The JSON the page polls: the studies, when there is a storage.
    pub fn poll_url(&self) -> Option<&str> {
        self.storage.as_ref().map(|_| "/api/studies")
    }
}

/// One row of a report's measurements on a page.
pub struct RowView {
    /// Its number in the report.
    pub n: usize,
    /// The configuration.
    pub config: String,
    /// Energy, J (a screened run's at the full run's length).
    pub energy_j: f64,
    /// Time, s.
    pub time_s: f64,
    /// Runs.
    pub runs: usize,
    /// Coefficient of variation, percent.
    pub cv_pct: f64,
    /// The board whose figure it is.
    pub board: String,
    /// What is special about it: the recommendation, screened, infeasible.
    pub note: String,
}

/// A report on a page: a study's (live) or a tune's (its folder).
#[derive(Template)]
#[template(path = "report.html")]
pub struct ReportPage {
    /// Heading.
    pub title: String,
    /// The page's own path, ending in `/` (its files are under it).
    pub base: String,
    /// The live status of a stored study (none for a tune's folder).
    pub status: Option<StudyStatus>,
    /// The JSON this page polls (none: it does not update).
    pub poll: Option<String>,
    /// The report's summary, as `tune` prints it.
    pub summary: Option<String>,
    /// Why there is no report.
    pub problem: Option<String>,
    /// Plot files, under `base`.
    pub plots: Vec<String>,
    /// Measurements.
    pub rows: Vec<RowView>,
    /// Boards of a fleet's study.
    pub boards: Vec<super::BoardShare>,
    /// Files to download, under `base`.
    pub downloads: Vec<String>,
    /// What the plots' addresses end with, so a redrawn report is fetched anew.
    pub version: usize,
}

impl ReportPage {
    /// The JSON the page polls.
    pub fn poll_url(&self) -> Option<&str> {
        self.poll.as_deref()
    }

    /// The report's rows for the page.
    pub fn rows_of(r: &Report) -> Vec<RowView> {
        let best = r.best.as_ref().map(|b| b.config);
        r.measurements
            .iter()
            .map(|m| {
                let mut note = Vec::new();
                if Some(m.config) == best {
                    note.push("recommended".to_string());
                }
                if let Some(n) = m.screened_inferences {
                    note.push(format!("screened ({n} inferences)"));
                }
                if m.feasible == Some(false) {
                    note.push("over a limit".into());
                }
                RowView {
                    n: m.n,
                    config: m.config.to_string(),
                    energy_j: m.energy.energy_j,
                    time_s: m.energy.time_s,
                    runs: m.runs,
                    cv_pct: m.cv * 100.0,
                    board: m.board.clone().unwrap_or_default(),
                    note: note.join(", "),
                }
            })
            .collect()
    }
}

/// The page for a path that is not one.
#[derive(Template)]
#[template(path = "not_found.html")]
pub struct NotFoundPage {
    /// The path asked for.
    pub path: String,
}

impl NotFoundPage {
    /// Nothing to poll.
    pub fn poll_url(&self) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_name_is_shown_as_text_never_as_markup() {
        let evil = "<script>alert(1)</script>";
        let status = StudyStatus {
            name: evil.into(),
            model: "m\"><img src=x onerror=alert(2)>".into(),
            device: "nano".into(),
            strategy: "bayes".into(),
            state: StudyState::Running,
            measured: 1,
            budget: 2,
            boards: 1,
            records: 2,
            claims: Vec::new(),
            recommendation: None,
            saving_pct: None,
            saving_same_batch_pct: None,
            board_time_s: None,
            problem: None,
        };
        let page = ListPage {
            storage: Some("sqlite:x.db".into()),
            studies: vec![status],
            storage_problem: None,
            reports_dir: "reports".into(),
            runs: Vec::new(),
        }
        .render()
        .unwrap();
        assert!(!page.contains(evil), "{page}");
        assert!(
            page.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || page.contains("&lt;script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<img src=x"), "{page}");
        // The link's path is percent-encoded.
        assert!(
            page.contains("/study/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"),
            "{page}"
        );
        let nf = NotFoundPage { path: evil.into() }.render().unwrap();
        assert!(!nf.contains(evil));
    }
}
