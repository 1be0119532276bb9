//! The `snnc` command-line program.

use clap::{Parser, Subcommand};
use snnc_compiler::diagnostic::{Severity, emit_to_stderr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: the model has errors.
const EXIT_MODEL_ERROR: u8 = 1;
/// Exit status: bad usage, or a file could not be read.
const EXIT_USAGE: u8 = 2;

/// snnc: a compiler for spiking neural network models.
#[derive(Parser, Debug)]
#[command(name = "snnc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check model files; print diagnostics.
    ///
    /// Exit status: 0 when every file is correct (warnings allowed), 1 when a
    /// model has errors, 2 on bad usage or a file that can not be read.
    Check {
        /// Print the checked model: groups, variables with dimensions and kinds, equations.
        #[arg(long)]
        dump: bool,
        /// Model files (`.snn`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a compiled form of a model: the kernel IR (`--ir`) or Cranelift's functions (`--clif`).
    Emit {
        /// Print the kernel IR.
        #[arg(long, conflicts_with = "clif")]
        ir: bool,
        /// Print the Cranelift IR of every kernel.
        #[arg(long)]
        clif: bool,
        /// The model file.
        file: PathBuf,
    },
}

/// Runs the program with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Check { dump, files } => check(&files, dump),
        Command::Emit { ir, clif, file } => emit(&file, ir || !clif, clif),
    }
}

/// Reads and checks a model, printing diagnostics; `Err` carries the exit status.
fn load(path: &std::path::Path) -> Result<(String, snnc_compiler::Model), ExitCode> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read `{name}`: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    let (model, diagnostics) = snnc_compiler::check(&source);
    emit_to_stderr(&diagnostics, &name, &source);
    match model {
        Some(model) => Ok((source, model)),
        None => Err(ExitCode::from(EXIT_MODEL_ERROR)),
    }
}

/// Lowers a checked model to kernels, printing diagnostics.
fn lower(
    path: &std::path::Path,
    source: &str,
    model: &snnc_compiler::Model,
) -> Result<snnc_compiler::ir::Module, ExitCode> {
    snnc_compiler::ir::lower(model).map_err(|diagnostics| {
        emit_to_stderr(&diagnostics, &path.display().to_string(), source);
        ExitCode::from(EXIT_MODEL_ERROR)
    })
}

fn emit(path: &std::path::Path, ir: bool, clif: bool) -> ExitCode {
    let result = load(path).and_then(|(source, model)| {
        let module = lower(path, &source, &model)?;
        if ir {
            print!("{module}");
        }
        if clif {
            match snnc_compiler::backends::cranelift::clif_text(&module) {
                Ok(text) => print!("{text}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(ExitCode::from(EXIT_MODEL_ERROR));
                }
            }
        }
        Ok(())
    });
    result.err().unwrap_or(ExitCode::SUCCESS)
}

fn check(files: &[PathBuf], dump: bool) -> ExitCode {
    let mut status = 0u8;
    for path in files {
        let name = path.display().to_string();
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("error: cannot read `{name}`: {e}");
                status = status.max(EXIT_USAGE);
                continue;
            }
        };
        let (model, diagnostics) = snnc_compiler::check(&source);
        emit_to_stderr(&diagnostics, &name, &source);
        let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let warnings = diagnostics.len() - errors;
        match model {
            Some(model) => {
                if dump {
                    print!("{}", snnc_compiler::dump::dump(&model));
                }
                let note =
                    if warnings > 0 { format!(" ({warnings} warning{})", plural(warnings)) } else { String::new() };
                eprintln!("{name}: ok{note}");
            }
            None => {
                eprintln!("{name}: {errors} error{}", plural(errors));
                status = status.max(EXIT_MODEL_ERROR);
            }
        }
    }
    ExitCode::from(status)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
