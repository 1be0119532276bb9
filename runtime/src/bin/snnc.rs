//! The `snnc` command-line program; see `snnc_runtime::cli`.

fn main() -> std::process::ExitCode {
    snnc_runtime::cli::main()
}
