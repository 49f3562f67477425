//! The `edgetune` binary: parse, run, print the error chain, exit with the right code.

mod bounds;
mod cli;
mod options;
mod recorded;

use clap::Parser;
use cli::{Cli, Command, StudyCommand};
use edgetune::{app, error};

fn run(cli: Cli, merged: recorded::Merged) -> anyhow::Result<()> {
    let (study_args, opened) = (merged.record, merged.opened);
    let stdout = &mut std::io::stdout().lock();
    let cat = &cli.catalog;
    match &cli.command {
        Command::Tune(a) => {
            app::tune::run(&a.to_options(cat, study_args)?, opened, stdout).map(|_| ())
        }
        Command::Sweep(a) => app::sweep::run(&a.to_options(cat)?, stdout).map(|_| ()),
        Command::Measure(a) => app::measure::run(&a.to_options(cat)?, stdout).map(|_| ()),
        Command::Baseline(a) => app::measure::run(&a.to_options(cat)?, stdout).map(|_| ()),
        Command::Bench(a) => app::bench::run(
            cat.as_deref(),
            &a.to_options(),
            a.out.clone(),
            a.json,
            stdout,
        )
        .map(|_| ()),
        Command::Models(a) => app::list::models(cat.as_deref(), a.json, stdout),
        Command::Devices(a) => {
            let (board, explicit) = a.options();
            app::list::devices(cat.as_deref(), &board, explicit, a.json, stdout)
        }
        Command::Restore(a) => app::board::restore(&a.options(), a.json, stdout),
        Command::Apply(a) => {
            app::board::apply(cat.as_deref(), &a.options(), &a.profile, a.persist, stdout)
        }
        Command::Emulate(a) => app::emulate::emulate_cmd(cat.as_deref(), &a.to_options()),
        Command::EmulateInfer(a) => app::emulate::emulate_infer_cmd(
            cat.as_deref(),
            &a.root,
            &a.model,
            a.batch,
            a.inferences,
            stdout,
        ),
        Command::Infer(a) => app::torch::infer_cmd(cat.as_deref(), &a.to_options(), stdout),
        Command::BenchFleet(a) => app::bench_fleet::run(
            cat.as_deref(),
            &a.to_options()?,
            a.out.clone(),
            a.json,
            stdout,
        )
        .map(|_| ()),
        Command::Worker(a) => app::worker::run(&a.to_options(cat)?, opened, stdout).map(|_| ()),
        Command::Study(StudyCommand::Create(a)) => {
            app::study::create(&a.to_options(cat, study_args)?, stdout)
        }
        Command::Study(StudyCommand::List(a)) => app::study::list(&a.storage, a.json, stdout),
        Command::Study(StudyCommand::Report(a)) => {
            let view = edgetune::study::storage::OpenedStudy::open(&a.storage, &a.study)?.view;
            let o = recorded::stored_tune_options(cat, &view.header.args, &a.storage, &a.study)?;
            app::study::report(&o, &view, a.out.as_deref(), a.json, stdout).map(|_| ())
        }
        Command::Serve(a) => {
            let (cat, url) = (cat.clone(), a.storage.clone().unwrap_or_default());
            let options_of = move |v: &edgetune::study::storage::StudyView| {
                recorded::stored_tune_options(&cat, &v.header.args, &url, &v.name)
            };
            app::serve::run(&a.options(), Box::new(options_of), stdout)
        }
        Command::BenchTorch(a) => {
            app::torch::bench_torch_cmd(cat.as_deref(), &a.to_options()?, a.json, stdout)
                .map(|_| ())
        }
    }
}

fn main() {
    app::flags::name_options_by_flags();
    // Arguments that are not UTF-8 (a path) go to clap as they are, unrecorded.
    let utf8: Option<Vec<String>> = std::env::args_os().map(|a| a.into_string().ok()).collect();
    let parsed = match utf8 {
        Some(argv) => recorded::with_journal_args(argv).map(|mut m| {
            let cli = Cli::parse_from(std::mem::take(&mut m.argv));
            (cli, m)
        }),
        None => Ok((Cli::parse(), recorded::Merged::default())),
    };
    if let Err(e) = parsed.and_then(|(cli, merged)| run(cli, merged)) {
        // A closed pipe (`edgetune models | head -1`) is the reader's choice, not a failure.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            return;
        }
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(error::exit_code(&e));
    }
}
