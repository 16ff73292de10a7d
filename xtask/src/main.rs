//! `cargo xtask`: usbdf's developer tasks.
fn main() {
    eprintln!("usage: cargo xtask <test|bench>");
    std::process::exit(2);
}
