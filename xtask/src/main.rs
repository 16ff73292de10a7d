//! `cargo xtask`: usbdf's developer tasks.
//!
//! One binary, one module per subcommand (`test`, `gadgets`, `bench`, `fuzz`, `soak`). The same binary is also the
//! VM image's `/init`: run as PID 1 it becomes the guest agent (see `vm::agent`).

mod bench;
mod cmd;
mod flags;
mod fuzz;
mod gadgets;
mod soak;
mod test;
mod vm;

/// The VM layout (gadgets, modules), shared with `usbdf_tests::vm`: one declaration.
#[allow(dead_code)]
#[path = "../../tests/src/vm/layout.rs"]
mod layout;

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::process::id() == 1 && std::env::args_os().next().is_some_and(|a| a == "/init") {
        // We are /init inside the VM image (not just PID 1 in some container). Never returns.
        vm::agent::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("gadgets") => gadgets::run(&args[1..]),
        Some("fuzz") => fuzz::task(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            eprint!("{}", flags::USAGE);
            return if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{}", flags::USAGE).into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
