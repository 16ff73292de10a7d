//! Property tests: no parser panics on any bytes; built and parsed values round trip.

use proptest::collection::vec;
use proptest::prelude::*;

use super::fixtures::*;
use super::*;

/// Run every parser on `bytes`; none may panic.
fn parse_all(bytes: &[u8]) {
    let strict = ConfigurationDescriptor::parse(bytes);
    let lenient = ConfigurationDescriptor::parse_lenient(bytes);
    if strict.is_ok() {
        assert_eq!(lenient, strict);
    }
    let _ = ConfigurationDescriptor::total_length(bytes);
    let _ = DeviceDescriptor::parse(bytes);
    let _ = DeviceQualifierDescriptor::parse(bytes);
    let _ = EndpointDescriptor::parse(bytes);
    let _ = SsEndpointCompanion::parse(bytes);
    let _ = InterfaceDescriptor::parse(bytes);
    let _ = InterfaceAssociation::parse(bytes);
    let _ = BosDescriptor::parse(bytes);
    let _ = parse_string(bytes);
    let _ = parse_language_ids(bytes);
    let _ = HidDescriptor::parse(bytes);
    // The iterator ends: at most one item per 2 bytes, plus one error.
    assert!(Descriptors::new(bytes).count() <= bytes.len() / 2 + 1);
}

/// Parsing what `to_bytes` wrote gives the same structure (anomalies aside: counts are
/// corrected on write).
fn assert_config_stable(config: &ConfigurationDescriptor) {
    let again = ConfigurationDescriptor::parse(&config.to_bytes()).expect("re-parse");
    let strip = |c: &ConfigurationDescriptor| ConfigurationDescriptor {
        anomalies: Vec::new(),
        ..c.clone()
    };
    assert_eq!(strip(&again), strip(config));
}

/// A configuration header with a correct wTotalLength in front of `body`.
fn with_config_header(body: &[u8], num_interfaces: u8) -> Vec<u8> {
    let total = (body.len() + 9).min(usize::from(u16::MAX)) as u16;
    let [lo, hi] = total.to_le_bytes();
    let mut b = vec![9, CONFIGURATION, lo, hi, num_interfaces, 1, 0, 0x80, 50];
    b.extend_from_slice(body);
    b
}

/// A run of well-framed descriptors of types the configuration parser cares about.
fn descriptor_run() -> impl Strategy<Value = Vec<u8>> {
    let ty = prop_oneof![
        Just(INTERFACE),
        Just(ENDPOINT),
        Just(INTERFACE_ASSOCIATION),
        Just(SS_ENDPOINT_COMPANION),
        Just(CS_INTERFACE),
        Just(HID),
        any::<u8>(),
    ];
    // Mostly the right size for the type, sometimes shorter or longer.
    let len = prop_oneof![8 => Just(None), 1 => (0usize..12).prop_map(Some)];
    vec((ty, len, any::<[u8; 12]>()), 0..24).prop_map(|ds| {
        let mut out = Vec::new();
        for (ty, len, bytes) in ds {
            let len = len.unwrap_or(match ty {
                INTERFACE => 7,
                ENDPOINT => 5,
                INTERFACE_ASSOCIATION => 6,
                SS_ENDPOINT_COMPANION => 4,
                _ => 3,
            });
            out.push((len + 2) as u8);
            out.push(ty);
            out.extend(&bytes[..len]);
        }
        out
    })
}

/// Raw descriptors the configuration parser keeps raw (not structural types).
fn raw_owned() -> impl Strategy<Value = RawOwned> {
    let ty = any::<u8>().prop_filter("structural", |t| {
        ![
            INTERFACE,
            ENDPOINT,
            INTERFACE_ASSOCIATION,
            SS_ENDPOINT_COMPANION,
        ]
        .contains(t)
    });
    (ty, vec(any::<u8>(), 0..8)).prop_map(|(t, b)| RawOwned::new(t, b))
}

fn endpoint() -> impl Strategy<Value = EndpointDescriptor> {
    let companion =
        (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(m, a, b)| SsEndpointCompanion {
            max_burst: m,
            attributes: a,
            bytes_per_interval: b,
        });
    (
        (any::<u8>(), any::<u8>(), 0u16..2048, 0u8..4, any::<u8>()),
        vec(any::<u8>(), 0..3),
        proptest::option::of(companion),
        vec(raw_owned(), 0..3),
    )
        .prop_map(
            |((address, attributes, mps, add, interval), trailing, companion, extra)| {
                EndpointDescriptor {
                    address,
                    attributes,
                    max_packet_size: mps,
                    additional_transactions: add,
                    interval,
                    trailing_fields: trailing,
                    companion,
                    extra,
                }
            },
        )
}

fn setting() -> impl Strategy<Value = InterfaceDescriptor> {
    (
        (
            0u8..6,
            0u8..3,
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        ),
        vec(raw_owned(), 0..3),
        vec(endpoint(), 0..4),
    )
        .prop_map(|((n, alt, c, s, p, i), class_specific, endpoints)| {
            let mut d = InterfaceDescriptor::new(n, alt, c, s, p);
            d.string_index = std::num::NonZeroU8::new(i);
            d.class_specific = class_specific;
            d.endpoints = endpoints;
            d
        })
}

fn association() -> impl Strategy<Value = InterfaceAssociation> {
    (0u8..8, any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
        .prop_map(|(f, n, c, s, p)| InterfaceAssociation::new(f, n, c, s, p))
}

fn built_config() -> impl Strategy<Value = ConfigurationDescriptor> {
    (
        (
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            any::<u8>(),
            any::<u8>(),
        ),
        vec(raw_owned(), 0..2),
        vec(association(), 0..3),
        vec(setting(), 0..5),
    )
        .prop_map(|((value, sp, rw, power, string), extra, iads, settings)| {
            let mut b = ConfigBuilder::new(value)
                .max_power_raw(power)
                .configuration_string(string);
            if sp {
                b = b.self_powered();
            }
            if rw {
                b = b.remote_wakeup();
            }
            for raw in extra {
                b = b.raw(raw);
            }
            for iad in iads {
                b = b.association(iad);
            }
            for s in settings {
                b = b.setting(s);
            }
            b.build()
        })
}

fn mutations(fixture: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (0..fixture.len(), any::<u8>()).prop_map(move |(i, v)| {
        let mut b = fixture.to_vec();
        b[i] = v;
        b
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        parse_all(&bytes);
    }

    #[test]
    fn arbitrary_body_behind_valid_header(body in vec(any::<u8>(), 0..200), n in any::<u8>()) {
        let bytes = with_config_header(&body, n);
        parse_all(&bytes);
        if let Ok(c) = ConfigurationDescriptor::parse(&bytes) {
            assert_config_stable(&c);
        }
    }

    #[test]
    fn framed_descriptors_parse_stably(run in descriptor_run(), n in any::<u8>()) {
        let bytes = with_config_header(&run, n);
        parse_all(&bytes);
        if let Ok(c) = ConfigurationDescriptor::parse(&bytes) {
            assert_config_stable(&c);
        }
    }

    #[test]
    fn builder_round_trip(config in built_config()) {
        let bytes = config.to_bytes();
        prop_assert_eq!(usize::from(u16::from_le_bytes([bytes[2], bytes[3]])), bytes.len());
        let parsed = ConfigurationDescriptor::parse(&bytes).unwrap();
        prop_assert_eq!(parsed, config);
    }

    #[test]
    fn one_byte_mutation_never_panics(
        b in prop_oneof![
            mutations(CONFIG_SOURCESINK),
            mutations(CONFIG_CDC_ACM),
            mutations(CONFIG_HID_MOUSE),
            mutations(CONFIG_SUPERSPEED),
            mutations(BOS_SS),
            mutations(BOS_FULL),
            mutations(DEVICE_FT232R),
        ]
    ) {
        parse_all(&b);
        if let Ok(c) = ConfigurationDescriptor::parse(&b) {
            assert_config_stable(&c);
        }
        if let Ok(bos) = BosDescriptor::parse(&b) {
            let again = BosDescriptor::parse(&bos.to_bytes()).unwrap();
            prop_assert_eq!(again.capabilities, bos.capabilities);
        }
    }

    #[test]
    fn device_round_trip(bytes in proptest::array::uniform16(any::<u8>()), tail in any::<[u8; 2]>()) {
        let mut b = vec![18, DEVICE];
        b.extend(&bytes[..14]);
        b.extend(tail);
        let d = DeviceDescriptor::parse(&b).unwrap();
        prop_assert_eq!(&d.to_bytes()[..], &b[..]);
    }

    #[test]
    fn string_round_trip(s in "\\PC{0,140}") {
        let decoded = parse_string(&encode_string(&s)).unwrap();
        prop_assert!(s.starts_with(&decoded));
    }

    #[test]
    fn bos_round_trip(caps in vec(prop_oneof![
        any::<u32>().prop_map(|a| DeviceCapability::Usb2Extension(Usb2Extension { attributes: a })),
        (any::<u8>(), any::<u16>(), any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(a, s, f, u1, u2)| {
            DeviceCapability::SuperSpeed(SuperSpeedCapability {
                attributes: a, speeds_supported: s, functionality_support: f,
                u1_exit_latency: u1, u2_exit_latency: u2,
            })
        }),
        any::<[u8; 16]>().prop_map(DeviceCapability::ContainerId),
        (any::<[u8; 16]>(), vec(any::<u8>(), 0..20))
            .prop_map(|(uuid, data)| DeviceCapability::Platform(PlatformCapability { uuid, data })),
        (6u8..=255, vec(any::<u8>(), 0..20))
            .prop_map(|(capability_type, data)| DeviceCapability::Unknown { capability_type, data }),
    ], 0..6)) {
        let bos = BosDescriptor { capabilities: caps, anomalies: Vec::new() };
        prop_assert_eq!(BosDescriptor::parse(&bos.to_bytes()).unwrap(), bos);
    }
}
