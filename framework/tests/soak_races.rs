//! Race soak on the simulator: random interleavings of send, cancel, timeout and completion
//! on the Loopback and SourceSink models' four bulk pipes from six threads plus a canceller,
//! with byte accounting (the engine is `tests/src/soak.rs`, shared with the VM soak).
//!
//! `cargo test -p usbdf --test soak_races -- --nocapture` prints the seed and the counts;
//! `USBDF_SOAK_SEED=<seed>` replays a seed's choices, `USBDF_SOAK_ROUNDS=<n>` runs longer
//! (`cargo xtask soak --minutes N` loops it with fresh seeds).

#[path = "../../tests/src/soak.rs"]
#[allow(dead_code)]
mod soak;

use std::time::Duration;

use usbdf::sim::{Loopback, SimHost, SimOptions, SourceSink};
use usbdf::{Bulk, DeviceSelector, In, Out};

fn run_on_sim(seed: u64, rounds: u64, packets_per_ms: Option<u32>) -> soak::SoakReport {
    let sim = SimHost::with_options(SimOptions::new().seed(seed).packets_per_ms(packets_per_ms));
    let _lb = sim.plug(Loopback::default());
    let _ss = sim.plug(SourceSink::default());
    let host = sim.host();
    let lb = host.open(&DeviceSelector::id(0x0525, 0xa4a9)).unwrap();
    let ss = host.open(&DeviceSelector::id(0x0525, 0xa4a0)).unwrap();
    let lbi = lb.claim_interface(0).unwrap();
    let ssi = ss.claim_interface(0).unwrap();
    let pipes = soak::SoakPipes {
        lb_out: lbi.open_first::<Bulk, Out>().unwrap(),
        lb_in: lbi.open_first::<Bulk, In>().unwrap(),
        ss_out: ssi.open_first::<Bulk, Out>().unwrap(),
        ss_in: ssi.open_first::<Bulk, In>().unwrap(),
    };
    let max_packet = pipes.lb_in.info().max_packet_size;
    let cfg = soak::SoakConfig {
        seed,
        rounds,
        window: 8,
        max_len: 8 * max_packet,
        max_packet,
        deadline: Duration::from_secs(120),
        send_for: None,
    };
    let report = soak::run(&pipes, &cfg);
    for (name, n) in [
        ("loopback OUT", pipes.lb_out.in_flight()),
        ("loopback IN", pipes.lb_in.in_flight()),
        ("sourcesink OUT", pipes.ss_out.in_flight()),
        ("sourcesink IN", pipes.ss_in.in_flight()),
    ] {
        assert_eq!(n, 0, "{name}: in_flight() after the soak (seed {seed})");
    }
    report
}

/// ≥ 10,000 rounds at a throttled bus rate (transfers are caught mid-flight).
#[test]
fn soak_races_sim_throttled() {
    let seed = soak::seed_from_env();
    let rounds = soak::rounds_from_env(10_000);
    println!("soak_races_sim_throttled: USBDF_SOAK_SEED={seed} rounds {rounds}");
    let r = run_on_sim(seed, rounds, Some(40));
    println!("soak_races_sim_throttled: {r}");
    r.assert_ok();
    assert!(r.rounds >= rounds, "{r}");
}

/// Unthrottled: completions race cancels at full speed.
#[test]
fn soak_races_sim_unthrottled() {
    let seed = soak::seed_from_env();
    let rounds = soak::rounds_from_env(10_000);
    println!("soak_races_sim_unthrottled: USBDF_SOAK_SEED={seed} rounds {rounds}");
    let r = run_on_sim(seed, rounds, None);
    println!("soak_races_sim_unthrottled: {r}");
    r.assert_ok();
    assert!(r.rounds >= rounds, "{r}");
}
