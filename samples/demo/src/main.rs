//! `cargo run -p usbdf-demo`: usbdf on real gadget-zero devices, or on the
//! built-in simulated ones when none is attached (`--sim` forces them).

fn main() {
    let force_sim = std::env::args().any(|a| a == "--sim");
    if let Err(e) = usbdf_demo::run(force_sim) {
        eprintln!("error: {e}");
        let mut src = e.source();
        while let Some(s) = src {
            eprintln!("  caused by: {s}");
            src = s.source();
        }
        std::process::exit(1);
    }
}
