//! The demo on the simulator: the no-argument tour, every subcommand, and the binary.

use std::process::Command;

use usbdf::driver::RegistryEvent;
use usbdf::sim::{self, SimHost};
use usbdf::Timeout;
use usbdf_cdc_acm::{LineCoding, SerialState};
use usbdf_demo::cmd::hid::{self, HidArgs, ReportArg};
use usbdf_demo::cmd::list;
use usbdf_demo::cmd::loopback::{self, LoopbackArgs};
use usbdf_demo::cmd::serial::{self, SerialArgs};
use usbdf_demo::host::{self, Choice};
use usbdf_demo::{DemoError, DemoHost, HostMode, TourOptions};

#[test]
fn the_tour_passes_on_the_simulator() {
    let summary = usbdf_demo::run(true).expect("the tour passes");
    assert_eq!(summary.host, "simulator");
    let drivers: Vec<_> = summary.bindings.iter().map(|b| b.driver).collect();
    assert_eq!(
        drivers,
        ["usbdf-loopback", "usbdf-sourcesink", "cdc-acm", "usbdf-hid"]
    );
    let lb = summary.loopback.expect("loopback ran");
    assert_eq!(
        lb.verified_bytes,
        TourOptions::default().loopback_bytes as u64
    );
    assert!(lb.echoed > 0 && lb.mb_per_s() > 0.0);
    let ss = summary.sourcesink.expect("sourcesink ran");
    assert!(ss.checked_bytes >= TourOptions::default().sourcesink_bytes as u64);
    assert_eq!((ss.sink_bytes, ss.vendor_bytes), (4096, 64));
    let serial = summary.serial.expect("cdc-acm ran");
    assert_eq!(serial.line_coding_read, serial.line_coding_set);
    assert_eq!(serial.line_coding_read.rate, 115_200);
    assert_eq!(
        serial.bytes_echoed,
        Some(TourOptions::default().serial_bytes)
    );
    let hid = summary.hid.expect("hid ran");
    assert_eq!(hid.descriptor_reports, 3);
    assert_eq!(
        hid.output_received,
        Some(vec![2, 1, 2, 3, 4, 5, 6, 7, 8]),
        "output report 2 as the device side got it"
    );
    assert_eq!(hid.inputs.len(), TourOptions::default().hid_reports);
    for (n, r) in hid.inputs.iter().enumerate() {
        let want: Vec<i64> = (0..8).map(|i| (16 * n + i) as i64).collect();
        let got: Vec<i64> = r.fields.iter().map(|v| v.value).collect();
        assert_eq!((r.id, got), (1, want), "input report {n} decoded");
    }
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
}

#[test]
fn without_a_device_side_the_tour_says_what_it_skipped() {
    // `run_on`: real-device semantics (no peers) on the simulated devices.
    let host = DemoHost::simulated("test");
    let summary = usbdf_demo::run_on(host.host()).expect("the tour passes without peers");
    let serial = summary.serial.expect("cdc-acm ran");
    assert_eq!(serial.line_coding_read, serial.line_coding_set);
    assert_eq!(serial.bytes_echoed, None);
    assert_eq!(serial.bytes_written, TourOptions::default().serial_bytes);
    assert!(summary.hid.expect("hid ran").inputs.is_empty());
    assert_eq!(
        summary
            .skipped
            .iter()
            .map(|s| s.split(':').next().unwrap())
            .collect::<Vec<_>>(),
        ["cdc-acm echo", "hid input", "hid output"]
    );
}

#[test]
fn the_simulator_is_chosen_with_sim_and_says_why() {
    let host = DemoHost::choose(HostMode::Simulated).unwrap();
    assert_eq!(host.host().name(), "simulator");
    assert_eq!(
        host.choice(),
        &Choice::Simulated {
            reason: "--sim given".into()
        }
    );
    assert!(host.choice().to_string().contains("SIMULATED"));
}

#[test]
fn the_sample_devices_are_recognised() {
    let host = DemoHost::simulated("test");
    let devices = host.host().devices().unwrap();
    let mut found = host::recognised(&devices);
    found.sort();
    assert_eq!(
        found,
        [
            "CDC-ACM 0525:a4a7",
            "HID 0525:a4ac",
            "Loopback 0525:a4a9",
            "SourceSink 0525:a4a0"
        ]
    );
    // Another vendor's CDC-ACM port counts; a keyboard does not.
    let sim = SimHost::new();
    let _acm = sim.plug(sim::CdcAcm::new().with_ids(0x1234, 0x5678));
    let _kbd = sim.plug(sim::Hid::default().with_ids(0x1234, 0x0001));
    assert_eq!(
        host::recognised(&sim.host().devices().unwrap()),
        ["CDC-ACM 1234:5678"]
    );
}

#[test]
fn list_shows_all_four_bindings_and_unbound_interfaces() {
    let host = DemoHost::simulated("test");
    let listing = list::run(host.host()).expect("list");
    assert_eq!(
        listing.bound(),
        [
            ("usbdf-loopback", "0525:a4a9".to_owned()),
            ("usbdf-sourcesink", "0525:a4a0".to_owned()),
            ("cdc-acm", "0525:a4a7".to_owned()),
            ("cdc-acm", "0525:a4a7".to_owned()),
            ("usbdf-hid", "0525:a4ac".to_owned()),
        ]
    );
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);

    // A device no driver is for is listed with its interface unbound.
    let sim = SimHost::new();
    let _lb = sim.plug(sim::Loopback::default());
    let _other = sim.plug(sim::Loopback::default().with_ids(0x1234, 0x0001));
    let listing = list::run(&sim.host()).expect("list");
    let other = listing
        .devices
        .iter()
        .find(|d| d.vendor_id == 0x1234)
        .expect("the other device is listed");
    assert_eq!(other.interfaces.len(), 1);
    assert_eq!(other.interfaces[0].driver, None);
    assert!(listing.to_string().contains("-- unbound --"));
}

#[test]
fn loopback_counts_the_bytes_it_verified() {
    let host = DemoHost::simulated("test");
    let args = LoopbackArgs {
        size: 8192,
        total: (1 << 20) + 100,
        depth: 4,
    };
    let outcome = loopback::run(host.host(), &args).expect("loopback");
    assert_eq!(
        outcome.verified_bytes,
        1 << 20,
        "rounded down to whole requests"
    );
    assert!(outcome.mb_per_s() > 0.0);
    for bad in [
        LoopbackArgs {
            size: 1000,
            ..LoopbackArgs::default()
        },
        LoopbackArgs {
            depth: 0,
            ..LoopbackArgs::default()
        },
        LoopbackArgs {
            total: 10,
            ..LoopbackArgs::default()
        },
    ] {
        assert!(matches!(
            loopback::run(host.host(), &bad),
            Err(DemoError::Argument(_))
        ));
    }
}

#[test]
fn serial_round_trip_through_the_simulated_port() {
    let host = DemoHost::simulated("test");
    let args = SerialArgs {
        baud: 57_600,
        dtr: true,
        rts: true,
        linger_ms: 2000,
        ..SerialArgs::default()
    };
    let input: Vec<u8> = b"AT\r\n"
        .iter()
        .copied()
        .chain((0..5000u32).map(|i| (i % 253) as u8))
        .collect();
    let mut output = Vec::new();
    let outcome = serial::run_with(host.host(), &args, &mut input.as_slice(), &mut output)
        .expect("serial session");
    assert!(output == input, "the far end echoes byte for byte");
    assert_eq!((outcome.sent, outcome.received), (5004, 5004));
    assert_eq!(
        outcome.line_coding,
        LineCoding {
            rate: 57_600,
            ..LineCoding::default()
        }
    );
    assert_eq!(
        outcome.states,
        [SerialState(SerialState::DCD | SerialState::DSR)],
        "the simulated modem answers DTR"
    );
    let other = SerialArgs {
        device: Some("1234:5678".parse().unwrap()),
        ..args
    };
    assert!(matches!(
        serial::run_with(host.host(), &other, &mut &b""[..], &mut Vec::new()),
        Err(DemoError::NoDevice(_))
    ));
}

#[test]
fn hid_decodes_reports_and_sends_output_and_feature_reports() {
    let host = DemoHost::simulated("test");
    let args = HidArgs {
        output: vec!["2:de:ad:be:ef".parse().unwrap()],
        feature_set: vec![ReportArg {
            id: 3,
            data: vec![9, 8, 7, 6],
        }],
        feature_get: vec![3],
        count: 4,
        wait_ms: 2000,
        ..HidArgs::default()
    };
    let outcome = hid::run(host.host(), &args, &mut host.peers()).expect("hid");
    assert_eq!(outcome.outputs_sent, 1);
    assert_eq!(outcome.features, [(3, vec![9, 8, 7, 6])]);
    assert_eq!(outcome.inputs.len(), 4);
    let usage = usbdf_hid::Usage::new(0xff00, 0x02);
    for (n, r) in outcome.inputs.iter().enumerate() {
        assert_eq!(r.get(usage), Some(16 * n as i64), "report {n}");
        assert_eq!(hid::describe_input(r).split(" = ").count(), 2);
    }
    // An unknown report is the driver's error, with the step named.
    let bad = HidArgs {
        output: vec!["9:00".parse().unwrap()],
        count: 0,
        ..HidArgs::default()
    };
    let e = hid::run(host.host(), &bad, &mut host.peers()).unwrap_err();
    assert!(
        usbdf_demo::error::chain(&e)
            .contains("send output report 9\n  caused by: no Output report with ID 9"),
        "{}",
        usbdf_demo::error::chain(&e)
    );
}

#[test]
fn a_handle_outlives_a_surprise_removal() {
    let sim = SimHost::new();
    let gadget = sim.plug(sim::Loopback::default());
    let bound = usbdf_demo::bind(&sim.host()).expect("bind");
    let lb = bound.loopbacks[0].clone();
    assert_eq!(
        lb.get().echo(b"ping", Timeout::millis(2000)).unwrap(),
        b"ping"
    );
    gadget.unplug();
    let removed = bound.binder().wait_for(Timeout::millis(5000), |e| {
        matches!(e, RegistryEvent::Removed { .. })
    });
    assert!(removed.is_some(), "the registry saw the removal");
    assert!(bound.bindings().is_empty());
    assert!(lb.get().echo(b"ping", Timeout::millis(500)).is_err());
}

#[test]
fn the_binary_runs_the_tour_on_the_simulator() {
    let out = Command::new(env!("CARGO_BIN_EXE_usbdf-demo"))
        .arg("--sim")
        .output()
        .expect("run usbdf-demo --sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("Using the built-in SIMULATED devices (--sim given)"));
    assert!(stdout.contains("Bindings (4):"));
    assert!(stdout.contains("1000 bytes echoed by the device side"));
    assert!(stdout.contains("All demos passed on the simulator host."));
    assert!(
        !stdout.contains('\x1b'),
        "no progress bar without a terminal"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_usbdf-demo"))
        .args(["--sim", "loopback", "--size", "1000"])
        .output()
        .expect("run usbdf-demo --sim loopback");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: invalid argument: --size 1000"));
}
