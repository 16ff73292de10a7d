//! The race soak on the real Loopback and SourceSink gadgets: random interleavings of send,
//! cancel (from the sender and from another thread, sometimes twice), short
//! `SendOptions::timeout`s and completions on all four bulk pipes at once, with byte
//! accounting (the engine is `usbdf_tests::soak`, the same as the simulator soak
//! `framework/tests/soak_races.rs`).
//!
//! Default: 1,500 rounds, bounded to 60 s. `USBDF_SOAK_ROUNDS` / `USBDF_SOAK_SECS` /
//! `USBDF_SOAK_SEED` change it (`cargo xtask soak --vm` passes them on the kernel command
//! line, which the agent's children inherit).

use std::time::Duration;

use usbdf_tests::gadget;
use usbdf_tests::soak::{self, SoakConfig, SoakPipes};
use usbdf_tests::vm::{self, LOOPBACK, SOURCE_SINK};

#[test]
fn soak_races_on_loopback_and_sourcesink() {
    vm::require_vm();
    let seed = soak::seed_from_env();
    // USBDF_SOAK_SECS: a time-bound soak (as many rounds as fit); else 1,500 rounds
    // bounded to 60 s.
    let timed: Option<u64> = std::env::var("USBDF_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let rounds = soak::rounds_from_env(if timed.is_some() { u64::MAX / 8 } else { 1_500 });
    let secs = timed.unwrap_or(60);
    println!("vm soak: USBDF_SOAK_SEED={seed} rounds {rounds} bound {secs} s");
    let lb = gadget::open_bulk_pair(&LOOPBACK);
    let stale = gadget::drain_loopback(&lb);
    println!("vm soak: {stale} stale loopback bytes drained");
    let ss = gadget::open_bulk_pair(&SOURCE_SINK);
    let max_packet = lb.max_packet();
    assert_eq!(ss.max_packet(), max_packet);
    let pipes = SoakPipes {
        lb_out: lb.out,
        lb_in: lb.inp,
        ss_out: ss.out,
        ss_in: ss.inp,
    };
    let cfg = SoakConfig {
        seed,
        rounds,
        window: 8,
        max_len: gadget::bulk_buflen(&LOOPBACK).min(8 * max_packet),
        max_packet,
        deadline: Duration::from_secs(secs),
        send_for: timed.map(Duration::from_secs),
    };
    let report = soak::run(&pipes, &cfg);
    println!("vm soak: {report}");
    report.assert_ok();
    let wanted = if timed.is_some() { 1_000 } else { rounds };
    assert!(
        report.rounds >= wanted,
        "only {} of {wanted} rounds within {secs} s: {report}",
        report.rounds
    );
    for (name, n) in [
        ("loopback OUT", pipes.lb_out.in_flight()),
        ("loopback IN", pipes.lb_in.in_flight()),
        ("sourcesink OUT", pipes.ss_out.in_flight()),
        ("sourcesink IN", pipes.ss_in.in_flight()),
    ] {
        assert_eq!(n, 0, "{name}: in_flight() after the soak");
    }
    assert_eq!(
        pipes.ss_out.halted(),
        None,
        "SourceSink OUT halted: a wrong byte reached it"
    );
}
