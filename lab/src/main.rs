//! The `aspen-lab` command: validate, list and run scenarios, check histories, redraw reports.
//!
//! Exit codes: 0 success (a scenario skipped because this machine cannot run it counts as
//! success: `SKIP` with the reason); 1 the input is understood and something is wrong with it
//! (an invalid scenario, a history that is not linearizable, a run that failed); 2 the input
//! could not be used (unreadable file, malformed history, usage error) or the command is not
//! available; 3 the checker could not decide within its budget.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aspen_lab::checker::Outcome;
use aspen_lab::checker::linearizability::check_history;
use aspen_lab::history::History;
use aspen_lab::report::rebuild_report;
use aspen_lab::runner::{RunOptions, default_node_bin, run_scenario};
use aspen_lab::scenario::{Scenario, expand_paths, load_scenario, scenario_files};
use clap::{Parser, Subcommand};

/// Spawns real Aspen clusters from scenario files, injects faults, and checks them.
#[derive(Parser)]
#[command(name = "aspen-lab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scenario files (directories stand for their *.json files); exit 1 if any is
    /// invalid, naming the field.
    Validate {
        /// Scenario files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check a history.jsonl for linearizability: exit 0 if it is, 1 if not (with a witness),
    /// 2 on bad input, 3 if undecided.
    Check {
        /// The history file.
        history: PathBuf,
    },
    /// Rebuild report.html of a run directory from its other files.
    Report {
        /// The run directory.
        run_dir: PathBuf,
    },
    /// List scenarios and their descriptions.
    List {
        /// The directory to list.
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Run a scenario, or every scenario in a directory.
    Run {
        /// A scenario file or a directory of them.
        scenario: PathBuf,
        /// Seed for every random choice; overrides the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write run directories.
        #[arg(long, default_value = "lab-runs")]
        out: PathBuf,
        /// The aspen-node binary to start.
        #[arg(long)]
        node_bin: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { paths } => validate(&paths),
        Command::Check { history } => check(&history),
        Command::Report { run_dir } => report(&run_dir),
        Command::List { dir } => list(&dir),
        Command::Run { scenario, seed, out, node_bin } => {
            run(&scenario, seed, &out, node_bin.as_deref())
        }
    }
}

/// Loads every scenario named, printing each problem; the exit code if any was unusable.
fn load_all(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Scenario)>, ExitCode> {
    let files = expand_paths(paths).map_err(|error| {
        eprintln!("aspen-lab: {error}");
        ExitCode::from(2)
    })?;
    let mut scenarios = Vec::new();
    let mut invalid = false;
    for file in files {
        match load_scenario(&file) {
            Ok(scenario) => scenarios.push((file, scenario)),
            Err(error) => {
                eprintln!("{error}");
                invalid = true;
            }
        }
    }
    if invalid { Err(ExitCode::from(1)) } else { Ok(scenarios) }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    match load_all(paths) {
        Ok(scenarios) if scenarios.is_empty() => {
            eprintln!("aspen-lab: no scenario file found");
            ExitCode::from(2)
        }
        Ok(scenarios) => {
            for (file, _) in scenarios {
                println!("{}: ok", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn check(path: &Path) -> ExitCode {
    let history = std::fs::File::open(path).map_err(|error| error.to_string()).and_then(|file| {
        History::read_jsonl(std::io::BufReader::new(file)).map_err(|error| error.to_string())
    });
    let history = match history {
        Ok(history) => history,
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    let report = check_history(&history);
    for witness in &report.violations {
        print!("{witness}");
    }
    for (key, reason) in &report.unknown {
        println!("key {key:?}: undecided: {reason}");
    }
    let operations = history.operations().len();
    if !report.violations.is_empty() {
        println!(
            "not linearizable: {} of {} keys ({operations} operations)",
            report.violations.len(),
            report.keys
        );
        ExitCode::from(1)
    } else if !report.unknown.is_empty() {
        println!(
            "undecided: {} of {} keys ({operations} operations)",
            report.unknown.len(),
            report.keys
        );
        ExitCode::from(3)
    } else {
        println!("linearizable: {} keys, {operations} operations", report.keys);
        ExitCode::SUCCESS
    }
}

fn report(run_dir: &Path) -> ExitCode {
    match rebuild_report(run_dir) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("aspen-lab: {error}");
            ExitCode::from(2)
        }
    }
}

fn list(dir: &Path) -> ExitCode {
    let files = match scenario_files(dir) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("aspen-lab: {}: {error}", dir.display());
            return ExitCode::from(2);
        }
    };
    for file in files {
        let name =
            file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        match load_scenario(&file) {
            Ok(scenario) => println!("{name}\n    {}", scenario.description.trim()),
            Err(_) => {
                println!("{name}\n    (invalid: see `aspen-lab validate {}`)", file.display())
            }
        }
    }
    ExitCode::SUCCESS
}

fn run(path: &Path, seed: Option<u64>, out: &Path, node_bin: Option<&Path>) -> ExitCode {
    let scenarios = match load_all(&[path.to_path_buf()]) {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    if scenarios.is_empty() {
        eprintln!("aspen-lab: no scenario file found");
        return ExitCode::from(2);
    }
    let node_bin = node_bin.map_or_else(default_node_bin, Path::to_path_buf);
    let mut worst = ExitCode::SUCCESS;
    let mut tally: Vec<(String, &'static str)> = Vec::new();
    for (file, scenario) in &scenarios {
        let (seed, origin) = match (seed, scenario.seed) {
            (Some(seed), _) => (seed, "--seed"),
            (None, Some(seed)) => (seed, "scenario"),
            (None, None) => (drawn_seed(), "drawn"),
        };
        let name =
            file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        println!(
            "{}: {} nodes, {} steps, seed {seed} ({origin}), out {}",
            file.display(),
            scenario.nodes,
            scenario.steps.len(),
            out.display()
        );
        let options = RunOptions { seed, out: out.to_path_buf(), node_bin: node_bin.clone() };
        let started = std::time::Instant::now();
        let label = match run_scenario(&name, scenario, &options) {
            Ok(outcome) if outcome.skipped.is_some() => {
                let reason = outcome.skipped.unwrap_or_default();
                println!("{name}: SKIP: {reason}");
                "SKIP"
            }
            Ok(outcome) => {
                println!(
                    "{name}: {} (seed {seed}, {:.1} s) {}",
                    outcome.outcome.label(),
                    started.elapsed().as_secs_f64(),
                    outcome.run_dir.display()
                );
                if outcome.outcome != Outcome::Pass {
                    worst = ExitCode::from(1);
                }
                outcome.outcome.label()
            }
            Err(error) => {
                println!("{name}: ERROR (seed {seed}): {error:#}");
                worst = ExitCode::from(2);
                "ERROR"
            }
        };
        tally.push((name, label));
    }
    if tally.len() > 1 {
        println!("summary: {}", summary_line(&tally));
    }
    worst
}

/// `5 scenarios: 3 PASS, 1 FAIL (a.json), 1 SKIP (b.json)`.
fn summary_line(tally: &[(String, &'static str)]) -> String {
    let mut parts = Vec::new();
    for label in ["PASS", "FAIL", "UNKNOWN", "ERROR", "SKIP"] {
        let names: Vec<&str> =
            tally.iter().filter(|(_, l)| *l == label).map(|(n, _)| n.as_str()).collect();
        match (names.len(), label) {
            (0, _) => {}
            (count, "PASS") => parts.push(format!("{count} PASS")),
            (count, _) => parts.push(format!("{count} {label} ({})", names.join(", "))),
        }
    }
    format!("{} scenarios: {}", tally.len(), parts.join(", "))
}

/// A seed for a run that names none; printed, so the run can be repeated.
fn drawn_seed() -> u64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
}
