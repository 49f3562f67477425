//! A study's recorded arguments as input: `tune --resume DIR` and `worker` merge the options a
//! journal or a storage recorded under those given now (never taking the options that say what
//! runs or where edgetune writes, [`MACHINE_LOCAL`]), and `study report` parses a stored study's
//! options as `tune` would.

use crate::cli::{Cli, Command};
use clap::Parser;
use edgetune::app::tune::TuneOptions;
use edgetune::error::UsageError;
use edgetune::study::storage::OpenedStudy;
use edgetune::study::JournalError;
use std::path::PathBuf;

/// `tune` options that say how to show a study, not what it is: never recorded.
const NOT_RECORDED: [&str; 6] = ["out", "resume", "json", "quiet", "storage", "study"];

/// Options that say what runs on this machine and where it reads and writes: each run brings
/// its own, and stored arguments (a journal, a database) never supply them, so whoever can
/// write to a study cannot run a command or pick files on the boards that measure it. Never
/// recorded: stored arguments that carry one were changed outside edgetune, and are refused.
const MACHINE_LOCAL: [&str; 4] = ["workload_cmd", "sysfs_root", "state_file", "catalog"];

/// A command line with the arguments a study recorded merged in.
#[derive(Default)]
pub struct Merged {
    /// The command line to parse.
    pub argv: Vec<String>,
    /// For `tune` and `study create`: the study's arguments to record with it.
    pub record: Vec<String>,
    /// The stored study whose arguments were merged, read once and handed to the command.
    pub opened: Option<OpenedStudy>,
}

/// The command line with a study's recorded arguments merged in. `tune --resume DIR` takes
/// the arguments recorded in DIR's journal, `tune --storage URL --study NAME --resume` and
/// `worker` those recorded with the stored study; the ones given now replace those of the same
/// option (all values of a repeatable one).
pub fn with_journal_args(argv: Vec<String>) -> anyhow::Result<Merged> {
    use clap::CommandFactory;
    let path: &[&str] = match (
        argv.get(1).map(String::as_str),
        argv.get(2).map(String::as_str),
    ) {
        (Some("tune"), _) => &["tune"],
        (Some("worker"), _) => &["worker"],
        (Some("study"), Some("create")) => &["study", "create"],
        _ => {
            return Ok(Merged {
                argv,
                ..Merged::default()
            })
        }
    };
    let mut cmd = Cli::command();
    cmd.build();
    let mut sub = Some(&cmd);
    for name in path {
        sub = sub.and_then(|c| c.find_subcommand(name));
    }
    let Some(sub) = sub else {
        return Ok(Merged {
            argv,
            ..Merged::default()
        });
    };
    let skip = 1 + path.len();
    let now = groups(sub, &argv[skip..]);
    let value = |id: &str| {
        now.iter()
            .find(|(i, _)| i == id)
            .and_then(|(_, t)| option_value(t))
    };
    let has = |id: &str| now.iter().any(|(i, _)| i == id);
    let (earlier, opened) = earlier_args(path[0], has("resume"), has("help"), value)?;
    let earlier = groups(sub, &earlier);
    refuse_machine_local(&earlier)?;
    // A worker brings its backend too: a stored `--backend jetson` would otherwise drive the
    // board of a worker started for the twin.
    let local = |id: &str| MACHINE_LOCAL.contains(&id) || (path[0] == "worker" && id == "backend");
    let mut merged: Vec<(String, Vec<String>)> = earlier
        .into_iter()
        .filter(|(id, _)| !local(id))
        .filter(|(id, _)| now.iter().all(|(n, _)| n != id))
        .collect();
    merged.extend(now);
    let record = merged
        .iter()
        .filter(|(id, _)| {
            !NOT_RECORDED.contains(&id.as_str()) && !MACHINE_LOCAL.contains(&id.as_str())
        })
        .flat_map(|(id, t)| match (id.as_str(), option_value(t).as_deref()) {
            // A study keeps the prior's content, never the folder it came from.
            ("prior", Some(v)) if !["twin", "none", "stored"].contains(&v.trim()) => {
                vec!["--prior".to_string(), "stored".to_string()]
            }
            _ => t.clone(),
        })
        .collect();
    let parse = argv[..skip]
        .iter()
        .cloned()
        .chain(merged.into_iter().flat_map(|(_, t)| t))
        .collect();
    Ok(Merged {
        argv: parse,
        record,
        opened,
    })
}

/// The arguments the study recorded: `command`'s `--storage` and `--study` (`value`) name a
/// stored study, read here (its options are the command's) and returned to hand over, or
/// `--resume DIR` a journal.
fn earlier_args(
    command: &str,
    resume: bool,
    help: bool,
    value: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(Vec<String>, Option<OpenedStudy>)> {
    let stored = |u: &str, n: &str| -> anyhow::Result<_> {
        let o = OpenedStudy::open(u, n)?;
        Ok((o.view.header.args.clone(), Some(o)))
    };
    match (command, value("storage"), value("study")) {
        ("study", ..) => Ok((Vec::new(), None)),
        // A worker has no options but the study's: a study that cannot be read is the error.
        ("worker", Some(u), Some(n)) => stored(&u, &n),
        ("worker", ..) if !help => Err(UsageError(
            "worker needs --storage URL and --study NAME: the study `edgetune study create` made"
                .into(),
        )
        .into()),
        (_, Some(u), Some(n)) if resume => stored(&u, &n),
        // `--resume DIR` takes its options from DIR's journal: none there is the error (not
        // the `--model` clap would miss without them).
        _ => match value("resume") {
            Some(d) => match edgetune::study::journal::recorded_header(d.as_ref())? {
                Some(h) => Ok((h.args, None)),
                None => Err(JournalError::Missing(PathBuf::from(d).join("journal.jsonl")).into()),
            },
            None => Ok((Vec::new(), None)),
        },
    }
}

/// Stored arguments that carry a machine-local option were written outside edgetune (it never
/// records them): the study is refused, before anything runs or is written.
fn refuse_machine_local(stored: &[(String, Vec<String>)]) -> anyhow::Result<()> {
    let flags: Vec<String> = stored
        .iter()
        .filter(|(id, _)| MACHINE_LOCAL.contains(&id.as_str()))
        .filter_map(|(_, t)| t.first().map(|f| f.split('=').next().unwrap_or(f).into()))
        .collect();
    if flags.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "the stored study carries {}, which edgetune never records (what runs on this machine and where it reads and writes come from this command line only): its journal or database was changed outside edgetune; nothing was run",
        flags.join(", ")
    ))
    .into())
}

/// The options of a stored study for its report: its recorded `tune` arguments, parsed as
/// `tune` parses them.
pub fn stored_tune_options(
    catalog: &Option<PathBuf>,
    args: &[String],
    url: &str,
    name: &str,
) -> anyhow::Result<TuneOptions> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    if let Some(tune) = cmd.find_subcommand("tune") {
        refuse_machine_local(&groups(tune, args))?;
    }
    let argv = ["edgetune", "tune"]
        .iter()
        .map(|s| s.to_string())
        .chain(args.iter().cloned())
        .chain([
            "--storage".into(),
            url.into(),
            "--study".into(),
            name.into(),
        ]);
    let cli = Cli::try_parse_from(argv)
        .map_err(|e| UsageError(format!("the stored study's options do not parse: {e}")))?;
    match cli.command {
        Command::Tune(t) => t.to_options(catalog, args.to_vec()),
        _ => unreachable!("parsed as tune"),
    }
}

/// The value of a one-option group (`--x v` or `--x=v`).
fn option_value(tokens: &[String]) -> Option<String> {
    match tokens {
        [_, v] => Some(v.clone()),
        [t] => t.split_once('=').map(|(_, v)| v.to_string()),
        _ => None,
    }
}

/// A subcommand's arguments as groups, each an option (by its clap id) with its value's tokens.
/// Tokens clap does not know form a group of their own (clap reports them when parsing).
fn groups(cmd: &clap::Command, args: &[String]) -> Vec<(String, Vec<String>)> {
    let arg_of = |short: char| cmd.get_arguments().find(|a| a.get_short() == Some(short));
    let mut args: std::collections::VecDeque<String> = args.iter().cloned().collect();
    let mut out = Vec::new();
    while let Some(t) = args.pop_front() {
        let (found, attached) = if let Some(long) = t.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            let a = cmd.get_arguments().find(|a| a.get_long() == Some(name));
            (a, long.contains('='))
        } else if let Some(short) = t.strip_prefix('-').and_then(|s| s.chars().next()) {
            (arg_of(short), t.len() > 2)
        } else {
            (None, false)
        };
        let takes_value = found.is_some_and(|a| a.get_action().takes_values());
        let id = found.map_or(t.clone(), |a| a.get_id().to_string());
        if found.is_some() && attached && !takes_value && !t.starts_with("--") {
            // Short flags written together (`-qm resnet18`), as clap reads them: this flag,
            // then the rest of the cluster.
            let rest = &t[1 + t[1..].chars().next().map_or(0, char::len_utf8)..];
            args.push_front(format!("-{rest}"));
            out.push((id, vec![t[..t.len() - rest.len()].to_string()]));
            continue;
        }
        let mut tokens = vec![t];
        // An option whose value may be left out (`--resume` with --storage) takes no flag.
        let optional = found
            .and_then(|a| a.get_num_args())
            .is_some_and(|r| r.min_values() == 0);
        let next_is_flag = args.front().is_some_and(|n| n.starts_with('-'));
        if takes_value && !attached && !(optional && next_is_flag) {
            tokens.extend(args.pop_front());
        }
        out.push((id, tokens));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn tune_groups(args: &[&str]) -> Vec<(String, Vec<String>)> {
        let mut cmd = Cli::command();
        cmd.build();
        let tune = cmd.find_subcommand("tune").unwrap().clone();
        groups(
            &tune,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn arguments_group_by_option_as_clap_reads_them() {
        let g = tune_groups(&[
            "-qm",
            "resnet18",
            "--fix=gpu=1",
            "--fix",
            "batch=8",
            "-dnano",
        ]);
        let ids: Vec<&str> = g.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["quiet", "model", "fix", "fix", "device"]);
        assert_eq!(g[1].1, ["-m", "resnet18"]);
        assert_eq!(g[3].1, ["--fix", "batch=8"]);
        assert_eq!(g[4].1, ["-dnano"]);
    }
}
