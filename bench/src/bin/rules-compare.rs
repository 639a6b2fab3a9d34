//! `rules-compare`: the rule-evaluation benchmark's command line. `scripts/rules-compare.sh`
//! starts each server and calls `run` against it, then `report` over the results; the method
//! is in `strata_bench::rules`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use strata_bench::rules::{self, RulesResult, RunOptions};
use strata_testkit::dataset::DatasetSpec;

#[derive(Parser)]
#[command(about = "Measure what evaluating recording rules costs a Prometheus-compatible server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Print the benchmark's rule file.
    Rules {
        #[arg(long, default_value_t = 1000)]
        rules: usize,
        #[arg(long, default_value_t = 20)]
        groups: usize,
        #[arg(long, default_value_t = 15)]
        interval_s: u64,
    },
    /// Load the data, measure the baseline, add the rules, measure; write the result as JSON.
    Run {
        #[arg(long)]
        system: String,
        #[arg(long, default_value = "")]
        version: String,
        /// The server's base URL.
        #[arg(long)]
        url: String,
        #[arg(long)]
        server_pid: u32,
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// Time of the dataset's first scrape, ms since the epoch (the same for every system).
        #[arg(long)]
        start_ms: i64,
        #[arg(long, default_value_t = 1000)]
        rules: usize,
        #[arg(long, default_value_t = 20)]
        groups: usize,
        #[arg(long, default_value_t = 15)]
        interval_s: u64,
        #[arg(long, default_value_t = 120)]
        baseline_s: u64,
        #[arg(long, default_value_t = 240)]
        measure_s: u64,
        /// The server's configuration file: rewritten with the content of --config-with-rules
        /// (a file) before the reload.
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        config_with_rules: PathBuf,
        /// Where the rule file goes (the configuration names it).
        #[arg(long)]
        rules_path: PathBuf,
        /// Prefix of the server's rule-group metrics: strata or prometheus.
        #[arg(long)]
        metrics_prefix: String,
        /// Another system's result: evaluate its recorded rules here at their times and
        /// compare the values.
        #[arg(long)]
        compare: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// A table of results.
    Report { results: Vec<PathBuf> },
    /// Print a free loopback port.
    FreePort,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Rules {
            rules: n,
            groups,
            interval_s,
        } => {
            print!(
                "{}",
                rules::rule_file(
                    &rules::rules(&DatasetSpec::Generated, n),
                    groups,
                    interval_s
                )
            );
            Ok(())
        }
        Command::Run {
            system,
            version,
            url,
            server_pid,
            hosts,
            start_ms,
            rules: n,
            groups,
            interval_s,
            baseline_s,
            measure_s,
            config,
            config_with_rules,
            rules_path,
            metrics_prefix,
            compare,
            out,
        } => {
            let options = RunOptions {
                system,
                version,
                url: url.clone(),
                hosts,
                dataset: DatasetSpec::Generated,
                start_ms,
                rules: n,
                groups,
                interval_s,
                baseline_s,
                measure_s,
                server_pid,
                config,
                config_with_rules: std::fs::read_to_string(&config_with_rules)
                    .with_context(|| format!("reading {}", config_with_rules.display()))?,
                rules_path,
                metrics_prefix,
            };
            let mut result = rules::run(&options)?;
            // Written before the comparison, so a failure there keeps the measurement.
            std::fs::write(&out, serde_json::to_vec_pretty(&result)?)
                .with_context(|| format!("writing {}", out.display()))?;
            if let Some(other) = compare {
                let other: Vec<RulesResult> = strata_bench::read_results(&[other])?;
                if let Some(other) = other.first() {
                    let check = rules::check_values(&url, &DatasetSpec::Generated, other)?;
                    eprintln!(
                        "  values: {} rules of {} compared here, {} differ (max relative difference {:e})",
                        check.rules_compared,
                        other.system,
                        check.mismatched_rules,
                        check.max_relative_difference
                    );
                    result.values = Some(check);
                }
            }
            std::fs::write(&out, serde_json::to_vec_pretty(&result)?)
                .with_context(|| format!("writing {}", out.display()))?;
            Ok(())
        }
        Command::FreePort => strata_bench::print_free_port(),
        Command::Report { results } => {
            let results: Vec<RulesResult> = strata_bench::read_results(&results)?;
            print!("{}", rules::report(&results));
            Ok(())
        }
    }
}
