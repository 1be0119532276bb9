//! `snnc check` and `snnc emit`: a model's diagnostics, and its compiled forms.

use super::{EXIT_MODEL_ERROR, EXIT_USAGE, load, lower, plural};
use snnc_compiler::diagnostic::{Severity, emit_to_stderr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints to standard output; a reader that stopped early (`snnc emit --asm | head`)
/// is not an error.
fn out(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub(super) fn emit(path: &std::path::Path, ir: bool, clif: bool, asm: bool, rust: bool) -> ExitCode {
    let result = load(path).and_then(|(source, model)| {
        let module = lower(path, &source, &model)?;
        if ir {
            out(&module.to_string());
        }
        if rust {
            let rust = snnc_compiler::backends::rust::generate_formatted(
                &module,
                &snnc_compiler::backends::rust::runtime_abi(),
            );
            match rust {
                Ok(text) => out(&text),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(ExitCode::from(EXIT_MODEL_ERROR));
                }
            }
        }
        if clif || asm {
            let text = if asm {
                snnc_compiler::backends::cranelift::asm_text(&module)
            } else {
                snnc_compiler::backends::cranelift::clif_text(&module)
            };
            match text {
                Ok(text) => out(&text),
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

pub(super) fn check(files: &[PathBuf], dump: bool) -> ExitCode {
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
