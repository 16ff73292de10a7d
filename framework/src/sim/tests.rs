//! Model-level unit tests: packets in, packets out, no host involved.

use super::*;
use crate::target::Speed;

fn attach<M: DeviceModel>(mut m: M) -> M {
    m.attach(Notifier::detached(Speed::High));
    m
}

fn drain_in(m: &mut dyn DeviceModel, ep: u8) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut buf = [0u8; 512];
    while let InReply::Data(n) = m.in_packet(ep, &mut buf) {
        packets.push(buf[..n].to_vec());
    }
    packets
}

#[test]
fn loopback_holds_a_full_packet_request_until_it_completes() {
    let mut lb = attach(Loopback::new(4, 4096));
    assert_eq!(lb.out_packet(0x01, &[1; 512]), OutReply::Ack);
    assert!(drain_in(&mut lb, 0x81).is_empty(), "not echoed yet");
    assert_eq!(lb.out_packet(0x01, &[2; 10]), OutReply::Ack);
    let p = drain_in(&mut lb, 0x81);
    assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [512, 10]);
}

#[test]
fn loopback_echo_ends_with_zlp_only_when_short_request_was_whole_packets() {
    let mut lb = attach(Loopback::new(4, 1024));
    // 512 + ZLP: a short request of whole packets -> echo 512 + ZLP.
    lb.out_packet(0x01, &[1; 512]);
    lb.out_packet(0x01, &[]);
    let p = drain_in(&mut lb, 0x81);
    assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [512, 0]);
    // A full request (1024) -> echo without ZLP.
    lb.out_packet(0x01, &[3; 512]);
    lb.out_packet(0x01, &[3; 512]);
    let p = drain_in(&mut lb, 0x81);
    assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [512, 512]);
}

#[test]
fn loopback_naks_out_when_every_buffer_waits_to_echo() {
    let mut lb = attach(Loopback::new(2, 64));
    assert_eq!(lb.out_packet(0x01, &[1; 5]), OutReply::Ack);
    assert_eq!(lb.out_packet(0x01, &[2; 5]), OutReply::Ack);
    assert_eq!(lb.out_packet(0x01, &[3; 5]), OutReply::Nak);
    let mut buf = [0u8; 512];
    assert_eq!(lb.in_packet(0x81, &mut buf), InReply::Data(5));
    assert_eq!(lb.out_packet(0x01, &[3; 5]), OutReply::Ack);
}

#[test]
fn sourcesink_pattern_restarts_per_request() {
    let mut ss = attach(SourceSink::new(Pattern::Mod63, 1000));
    let p = drain_in_n(&mut ss, 3);
    assert_eq!(p[0].len(), 512);
    assert_eq!(p[1].len(), 488);
    assert_eq!(p[2][..3], [0, 1, 2]);
    assert_eq!(p[0][100], 100 % 63);
}

fn drain_in_n(m: &mut dyn DeviceModel, n: usize) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 512];
    (0..n)
        .map(|_| match m.in_packet(0x81, &mut buf) {
            InReply::Data(k) => buf[..k].to_vec(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn fault_injector_counts_packets_before_stalling() {
    let fi = FaultInjector::new(attach(SourceSink::default()), 5);
    let faults = fi.faults();
    let mut fi = fi;
    faults.stall_after_packets(0x81, 2);
    let mut buf = [0u8; 512];
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Data(512));
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Data(512));
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Stall);
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Data(512));
    faults.short_packet(0x81, 7);
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Data(7));
    faults.nak_forever(0x81, true);
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Nak);
    faults.clear();
    assert_eq!(fi.in_packet(0x81, &mut buf), InReply::Data(512));
}

#[test]
fn descriptors_parse_at_every_speed() {
    use crate::descriptor::ConfigurationDescriptor;
    let models: Vec<Box<dyn DeviceModel>> = vec![
        Box::new(Loopback::default()),
        Box::new(SourceSink::default()),
        Box::new(CdcAcm::new()),
        Box::new(Hid::default()),
    ];
    for speed in [Speed::Full, Speed::High, Speed::Super] {
        for m in &models {
            let d = m.descriptors(speed);
            for raw in &d.configurations {
                let c = ConfigurationDescriptor::parse(raw).unwrap();
                assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
            }
        }
    }
}

#[test]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<SimHost>();
    is::<SimDeviceHandle>();
    is::<Faults>();
    is::<AcmPort>();
    is::<HidDevice>();
    is::<Notifier>();
}
