//! Parser and decoder tests: known descriptors to exact layouts, malformed
//! descriptors to typed errors, property tests.

use proptest::prelude::*;

use super::decode::{extract_bits, insert_bits, sign_extend, FieldValue};
use super::model::{
    generic_desktop as gd, page, CollectionKind, Field, MainFlags, ReportDescriptor, ReportKind,
    Usage, UsageRange,
};
use super::parser::{ParseError, MAX_COLLECTION_DEPTH, MAX_PUSH_DEPTH};

#[rustfmt::skip]
const BOOT_MOUSE: [u8; 50] = [
    0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01,
    0x95, 0x03, 0x75, 0x01, 0x81, 0x02,             // 3 buttons
    0x95, 0x01, 0x75, 0x05, 0x81, 0x01,             // 5 bits padding
    0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x81, 0x25, 0x7f,
    0x75, 0x08, 0x95, 0x02, 0x81, 0x06,             // X, Y relative
    0xc0, 0xc0,
];

#[rustfmt::skip]
const BOOT_KEYBOARD: [u8; 63] = [
    0x05, 0x01, 0x09, 0x06, 0xa1, 0x01,
    0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x08, 0x81, 0x02,             // modifiers
    0x95, 0x01, 0x75, 0x08, 0x81, 0x01,             // reserved byte
    0x95, 0x05, 0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05,
    0x91, 0x02,                                     // 5 LEDs
    0x95, 0x01, 0x75, 0x03, 0x91, 0x01,             // LED padding
    0x95, 0x06, 0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07,
    0x19, 0x00, 0x29, 0x65, 0x81, 0x00,             // 6 key array
    0xc0,
];

#[rustfmt::skip]
const GAMEPAD: [u8; 79] = [
    0x05, 0x01, 0x09, 0x05, 0xa1, 0x01, 0x85, 0x01,
    0x05, 0x09, 0x19, 0x01, 0x29, 0x0a, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x0a, 0x81, 0x02,             // 10 buttons
    0x75, 0x06, 0x95, 0x01, 0x81, 0x03,             // padding
    0x05, 0x01, 0x09, 0x01, 0xa1, 0x00,
    0x09, 0x30, 0x09, 0x31, 0x09, 0x32, 0x09, 0x35,
    0x16, 0x00, 0x80, 0x26, 0xff, 0x7f, 0x75, 0x10, 0x95, 0x04,
    0x81, 0x02,                                     // X Y Z Rz, signed 16
    0xc0,
    0x09, 0x39, 0x15, 0x00, 0x25, 0x07, 0x35, 0x00, 0x46, 0x3b, 0x01,
    0x65, 0x14, 0x75, 0x04, 0x95, 0x01, 0x81, 0x42, // hat, null state, degrees
    0x81, 0x03,                                     // 4 bits padding
    0xc0,
];

fn parse(bytes: &[u8]) -> ReportDescriptor {
    ReportDescriptor::parse(bytes).unwrap()
}

fn range(page: u16, first: u16, last: u16) -> UsageRange {
    UsageRange {
        first: Usage::new(page, first),
        last: Usage::new(page, last),
    }
}

/// (offset, size, count, flags, usages, logical range) of each field.
type Shape = (u32, u32, u32, u32, Vec<UsageRange>, (i64, i64));

fn shape(f: &Field) -> Shape {
    (
        f.bit_offset,
        f.bit_size,
        f.count,
        f.flags.0,
        f.usages.clone(),
        (f.logical_min, f.logical_max),
    )
}

#[test]
fn boot_mouse() {
    let rd = parse(&BOOT_MOUSE);
    assert!(!rd.uses_report_ids());
    assert_eq!(rd.reports().len(), 1);
    let input = rd.input(0).unwrap();
    assert_eq!(
        (input.bit_len, input.data_len(), input.wire_len()),
        (24, 3, 3)
    );
    let shapes: Vec<Shape> = input.fields.iter().map(shape).collect();
    assert_eq!(
        shapes,
        vec![
            (0, 1, 3, 0x02, vec![range(page::BUTTON, 1, 3)], (0, 1)),
            (3, 5, 1, 0x01, vec![], (0, 1)),
            (
                8,
                8,
                2,
                0x06,
                vec![range(1, 0x30, 0x30), range(1, 0x31, 0x31)],
                (-127, 127)
            ),
        ]
    );
    assert!(input.fields[2].flags.is_relative() && input.fields[2].is_signed());
    assert!(input.fields[1].flags.is_constant());
    let c = rd.collections();
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0].kind, c[0].usage, c[0].parent, c[0].depth),
        (CollectionKind::Application, Some(gd::MOUSE), None, 0)
    );
    assert_eq!(
        (c[1].kind, c[1].usage, c[1].parent, c[1].depth),
        (CollectionKind::Physical, Some(gd::POINTER), Some(0), 1)
    );
    assert_eq!(input.fields[2].collection, Some(1));

    // Left button, X = -2, Y = 5.
    let (id, values) = rd.decode(ReportKind::Input, &[0b001, 0xfe, 5]).unwrap();
    assert_eq!(id, 0);
    let find = |u: Usage| values.iter().find(|v| v.usage == Some(u)).unwrap().value;
    assert_eq!(find(Usage::new(page::BUTTON, 1)), 1);
    assert_eq!(find(Usage::new(page::BUTTON, 2)), 0);
    assert_eq!(find(gd::X), -2);
    assert_eq!(find(gd::Y), 5);
    assert_eq!(values.len(), 5);
}

#[test]
fn boot_keyboard() {
    let rd = parse(&BOOT_KEYBOARD);
    let input = rd.input(0).unwrap();
    let output = rd.output(0).unwrap();
    assert_eq!((input.data_len(), output.data_len()), (8, 1));
    let shapes: Vec<Shape> = input.fields.iter().map(shape).collect();
    assert_eq!(
        shapes,
        vec![
            (
                0,
                1,
                8,
                0x02,
                vec![range(page::KEYBOARD, 0xe0, 0xe7)],
                (0, 1)
            ),
            (8, 8, 1, 0x01, vec![], (0, 1)),
            (
                16,
                8,
                6,
                0x00,
                vec![range(page::KEYBOARD, 0, 0x65)],
                (0, 0x65)
            ),
        ]
    );
    let shapes: Vec<Shape> = output.fields.iter().map(shape).collect();
    assert_eq!(
        shapes,
        vec![
            (0, 1, 5, 0x02, vec![range(page::LED, 1, 5)], (0, 1)),
            (5, 3, 1, 0x01, vec![], (0, 1)),
        ]
    );
    // Left shift and 'a' (0x04) + 'b' (0x05) pressed.
    let report = [0x02, 0, 0x04, 0x05, 0, 0, 0, 0];
    let values = input.decode(&report).unwrap();
    let keys: Vec<Usage> = values
        .iter()
        .filter(|v| v.field == 2)
        .filter_map(|v| v.usage)
        .collect();
    // Zeros select usage 0 (Reserved, "no event"), listed by the range.
    assert_eq!(
        keys,
        [4, 5, 0, 0, 0, 0].map(|id| Usage::new(page::KEYBOARD, id))
    );
    let shift = Usage::new(page::KEYBOARD, 0xe1);
    let a = Usage::new(page::KEYBOARD, 0x04);
    let b = Usage::new(page::KEYBOARD, 0x05);
    assert_eq!(
        input.encode_usages(&[(shift, 1), (a, 1), (b, 1)]).unwrap(),
        report
    );
    // Caps lock LED.
    assert_eq!(
        output
            .encode_usages(&[(Usage::new(page::LED, 2), 1)])
            .unwrap(),
        [0b10]
    );
}

#[test]
fn gamepad_with_signed_axes_and_hat() {
    let rd = parse(&GAMEPAD);
    assert!(rd.uses_report_ids());
    let input = rd.input(1).unwrap();
    assert_eq!((input.data_len(), input.wire_len()), (11, 12));
    let shapes: Vec<Shape> = input.fields.iter().map(shape).collect();
    assert_eq!(
        shapes,
        vec![
            (0, 1, 10, 0x02, vec![range(page::BUTTON, 1, 10)], (0, 1)),
            (10, 6, 1, 0x03, vec![], (0, 1)),
            (
                16,
                16,
                4,
                0x02,
                [0x30, 0x31, 0x32, 0x35].map(|u| range(1, u, u)).to_vec(),
                (-32768, 32767)
            ),
            (80, 4, 1, 0x42, vec![range(1, 0x39, 0x39)], (0, 7)),
            (84, 4, 1, 0x03, vec![], (0, 7)),
        ]
    );
    let hat = &input.fields[3];
    assert!(hat.flags.has_null_state());
    assert_eq!(
        (hat.physical_min, hat.physical_max, hat.unit),
        (0, 315, 0x14)
    );
    assert_eq!(hat.to_physical(2), Some(90.0));
    let axes = &input.fields[2];
    assert_eq!((axes.physical_min, axes.physical_max), (-32768, 32767));
    assert_eq!(axes.collection, Some(1));

    let mut wire = vec![1, 0b0000_0101, 0b10];
    for v in [-32768i16, 32767, -1, 1234] {
        wire.extend_from_slice(&v.to_le_bytes());
    }
    wire.push(0x06);
    let report = rd.decode_input(&wire);
    assert_eq!(report.error, None);
    assert_eq!(report.get(Usage::new(page::BUTTON, 1)), Some(1));
    assert_eq!(report.get(Usage::new(page::BUTTON, 2)), Some(0));
    assert_eq!(report.get(Usage::new(page::BUTTON, 10)), Some(1));
    assert_eq!(report.get(gd::X), Some(-32768));
    assert_eq!(report.get(gd::Y), Some(32767));
    assert_eq!(report.get(gd::Z), Some(-1));
    assert_eq!(report.get(gd::RZ), Some(1234));
    assert_eq!(report.get(gd::HAT_SWITCH), Some(6));
    assert_eq!(input.encode(&report.fields).unwrap(), wire[1..]);

    // Unknown ID and short reports come back undecoded, with the bytes.
    assert!(rd.decode_input(&[2, 0]).error.is_some());
    let short = rd.decode_input(&wire[..5]);
    assert_eq!(
        short.error,
        Some(super::decode::DecodeError::TooShort {
            id: 1,
            needed: 11,
            got: 4
        })
    );
    assert_eq!(short.raw, wire[..5]);
}

#[test]
fn vendor_descriptor_of_the_sim_and_the_vm_gadget() {
    let rd = parse(&usbdf::sim::DEFAULT_REPORT_DESCRIPTOR);
    assert!(rd.uses_report_ids());
    let vendor = |id| vec![range(0xff00, id, id)];
    let layouts: Vec<(ReportKind, u8, usize, Vec<Shape>)> = rd
        .reports()
        .iter()
        .map(|r| {
            (
                r.kind,
                r.id,
                r.wire_len(),
                r.fields.iter().map(shape).collect(),
            )
        })
        .collect();
    assert_eq!(
        layouts,
        vec![
            (
                ReportKind::Input,
                1,
                9,
                vec![(0, 8, 8, 0x02, vendor(2), (0, 255))]
            ),
            (
                ReportKind::Output,
                2,
                9,
                vec![(0, 8, 8, 0x02, vendor(3), (0, 255))]
            ),
            (
                ReportKind::Feature,
                3,
                5,
                vec![(0, 8, 4, 0x02, vendor(4), (0, 255))]
            ),
        ]
    );
    assert_eq!(
        rd.collections()[0].usage,
        Some(Usage::new(page::VENDOR_FIRST, 1))
    );
    assert_eq!(rd.max_wire_len(ReportKind::Input), 9);
}

#[test]
fn usage_pages_extended_usages_and_late_pages() {
    // Extended usage: its own page whatever the current one.
    let rd = parse(&[
        0x06, 0x00, 0xff, 0x0b, 0x30, 0x00, 0x01, 0x00, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02,
    ]);
    assert_eq!(
        rd.input(0).unwrap().fields[0].usages,
        [range(1, 0x30, 0x30)]
    );
    // A page given after the usage, before the main item, applies.
    let rd = parse(&[0x09, 0x30, 0x05, 0x01, 0x75, 0x08, 0x95, 0x01, 0x81, 0x02]);
    assert_eq!(
        rd.input(0).unwrap().fields[0].usages,
        [range(1, 0x30, 0x30)]
    );
    // ... but not to usages before an earlier one of that page (Linux).
    let rd = parse(&[
        0x05, 0x01, 0x09, 0x30, 0x05, 0x09, 0x19, 0x01, 0x29, 0x02, 0x75, 0x08, 0x95, 0x03, 0x81,
        0x02,
    ]);
    let f = &rd.input(0).unwrap().fields[0];
    assert_eq!(f.usages, [range(1, 0x30, 0x30), range(page::BUTTON, 1, 2)]);
    assert_eq!(f.element_usage(0), Some(gd::X));
    assert_eq!(f.element_usage(2), Some(Usage::new(page::BUTTON, 2)));
    assert_eq!(f.element_usage(99), Some(Usage::new(page::BUTTON, 2)));
    // Extended minimum, short maximum: one page.
    let rd = parse(&[
        0x1b, 0x01, 0x00, 0x09, 0x00, 0x29, 0x03, 0x75, 0x01, 0x95, 0x03, 0x81, 0x02,
    ]);
    assert_eq!(
        rd.input(0).unwrap().fields[0].usages,
        [range(page::BUTTON, 1, 3)]
    );
}

#[test]
fn globals_signs_units_push_pop() {
    let rd = parse(&[
        0x15, 0x00, 0x25, 0xff, // 0..255 (maximum read unsigned)
        0x55, 0x0e, // exponent -2 as a nibble
        0x75, 0x08, 0x95, 0x01, // 8 bits x 1
        0xa4, // push
        0x15, 0xff, 0x25, 0xff, // -1..-1
        0x55, 0xfd, // exponent -3 as a byte
        0x81, 0x02, 0xb4, // pop
        0x81, 0x02, // 0..255 again
        0xa4, 0x75, 0x10, 0xb4, 0x81, 0x02, // a size set between push and pop is forgotten
    ]);
    let f = &rd.input(0).unwrap().fields;
    assert_eq!(
        (f[0].logical_min, f[0].logical_max, f[0].unit_exponent),
        (-1, -1, -3)
    );
    assert_eq!(
        (f[1].logical_min, f[1].logical_max, f[1].unit_exponent),
        (0, 255, -2)
    );
    assert_eq!(
        f.iter()
            .map(|f| (f.bit_offset, f.bit_size))
            .collect::<Vec<_>>(),
        [(0, 8), (8, 8), (16, 8)]
    );
}

#[test]
fn long_items_are_skipped() {
    let mut bytes = vec![0xfe, 0x02, 0x10, 0xaa, 0xbb];
    bytes.extend_from_slice(&BOOT_MOUSE);
    assert_eq!(parse(&bytes), parse(&BOOT_MOUSE));
    assert_eq!(
        ReportDescriptor::parse(&[0xfe, 0x05, 0x10, 0xaa]),
        Err(ParseError::Truncated { offset: 0 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0x05, 0x01, 0xfe]),
        Err(ParseError::Truncated { offset: 2 })
    );
}

#[test]
fn truncated_at_every_prefix() {
    for desc in [&BOOT_MOUSE[..], &BOOT_KEYBOARD, &GAMEPAD] {
        // Item boundaries.
        let mut starts = vec![];
        let mut at = 0;
        while at < desc.len() {
            starts.push(at);
            at += 1 + [0, 1, 2, 4][usize::from(desc[at] & 3)];
        }
        for n in 0..desc.len() {
            let got = ReportDescriptor::parse(&desc[..n]);
            if starts.contains(&n) {
                assert!(
                    matches!(got, Ok(_) | Err(ParseError::UnclosedCollection { .. })),
                    "prefix {n}: {got:?}"
                );
            } else {
                let item = *starts.iter().rev().find(|&&s| s < n).unwrap();
                assert_eq!(
                    got,
                    Err(ParseError::Truncated { offset: item }),
                    "prefix {n}"
                );
            }
        }
    }
}

#[test]
fn unbalanced_collections() {
    assert_eq!(
        ReportDescriptor::parse(&[0xc0]),
        Err(ParseError::UnbalancedEndCollection { offset: 0 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0xa1, 0x01, 0xa1, 0x00, 0xc0]),
        Err(ParseError::UnclosedCollection { open: 1 })
    );
    let deep: Vec<u8> = [0xa1, 0x00].repeat(MAX_COLLECTION_DEPTH);
    let mut closed = deep.clone();
    closed.extend(std::iter::repeat_n(0xc0, MAX_COLLECTION_DEPTH));
    assert_eq!(parse(&closed).collections().len(), MAX_COLLECTION_DEPTH);
    let mut too_deep = deep;
    too_deep.extend([0xa1, 0x00]);
    assert_eq!(
        ReportDescriptor::parse(&too_deep),
        Err(ParseError::CollectionTooDeep {
            offset: 2 * MAX_COLLECTION_DEPTH
        })
    );
}

#[test]
fn push_pop_bounds() {
    assert_eq!(
        ReportDescriptor::parse(&[0xb4]),
        Err(ParseError::PopUnderflow { offset: 0 })
    );
    let pushes = vec![0xa4; MAX_PUSH_DEPTH];
    assert!(ReportDescriptor::parse(&pushes).is_ok());
    let mut over = pushes;
    over.push(0xa4);
    assert_eq!(
        ReportDescriptor::parse(&over),
        Err(ParseError::PushOverflow {
            offset: MAX_PUSH_DEPTH
        })
    );
}

#[test]
fn huge_sizes_are_refused_without_overflow() {
    // 4-byte count and size at their maxima.
    assert!(matches!(
        ReportDescriptor::parse(&[
            0x77, 0xff, 0xff, 0xff, 0xff, 0x97, 0xff, 0xff, 0xff, 0xff, 0x81, 0x02
        ]),
        Err(ParseError::ReportSizeTooLarge {
            offset: 10,
            size: u32::MAX
        })
    ));
    assert_eq!(
        ReportDescriptor::parse(&[0x75, 0x20, 0x97, 0xff, 0xff, 0xff, 0xff, 0x81, 0x02]),
        Err(ParseError::ReportTooLong {
            offset: 7,
            kind: ReportKind::Input,
            id: 0
        })
    );
    // Each item fits; together they do not.
    let half = [0x75, 0x08, 0x96, 0x00, 0x30, 0x81, 0x02]; // 12288 bytes
    let mut twice = half.to_vec();
    assert!(ReportDescriptor::parse(&twice).is_ok());
    twice.extend([0x81, 0x02]);
    assert_eq!(
        ReportDescriptor::parse(&twice),
        Err(ParseError::ReportTooLong {
            offset: 7,
            kind: ReportKind::Input,
            id: 0
        })
    );
}

#[test]
fn report_ids_and_ranges_checked() {
    assert_eq!(
        ReportDescriptor::parse(&[0x85, 0x00]),
        Err(ParseError::BadReportId { offset: 0, id: 0 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0x86, 0x00, 0x01]),
        Err(ParseError::BadReportId { offset: 0, id: 256 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0x75, 0x08, 0x95, 0x01, 0x81, 0x02, 0x85, 0x01, 0x81, 0x02]),
        Err(ParseError::ReportIdMissing { offset: 4 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0x19, 0x05, 0x29, 0x01]),
        Err(ParseError::BadUsageRange { offset: 2 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0x1b, 0, 0, 1, 0, 0x2b, 3, 0, 2, 0]),
        Err(ParseError::BadUsageRange { offset: 5 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0xa9, 0x01, 0xa9, 0x01]),
        Err(ParseError::BadDelimiter { offset: 2 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0xa9, 0x00]),
        Err(ParseError::BadDelimiter { offset: 0 })
    );
    assert_eq!(
        ReportDescriptor::parse(&[0xf4]),
        Err(ParseError::UnknownGlobal {
            offset: 0,
            tag: 0xf
        })
    );
    // Delimited alternatives: only the first set's usages count.
    let rd = parse(&[
        0xa9, 0x01, 0x09, 0x30, 0xa9, 0x00, 0xa9, 0x01, 0x09, 0x31, 0xa9, 0x00, 0x75, 0x08, 0x95,
        0x01, 0x81, 0x02,
    ]);
    assert_eq!(
        rd.input(0).unwrap().fields[0].usages,
        [range(0, 0x30, 0x30)]
    );
}

#[test]
fn bits_extract_insert_and_sign() {
    let data = [0b1010_1100, 0b0101_0011, 0xff];
    assert_eq!(extract_bits(&data, 2, 4), 0b1011);
    assert_eq!(extract_bits(&data, 6, 6), 0b00_1110);
    assert_eq!(extract_bits(&data, 20, 8), 0x0f); // past the end reads 0
    let mut out = [0u8; 3];
    insert_bits(&mut out, 6, 6, 0b00_1110);
    assert_eq!(out, [0b1000_0000, 0b0000_0011, 0]);
    assert_eq!(sign_extend(0b1111, 4), -1);
    assert_eq!(sign_extend(0b0111, 4), 7);
    assert_eq!(sign_extend(0x80, 8), -128);
    assert_eq!(sign_extend(u64::MAX, 64), -1);
    assert!(!MainFlags(0x02).is_array() && MainFlags(0).is_array());
}

/// A descriptor of variable input fields with these (size, count, signed).
fn descriptor_of(fields: &[(u8, u8, bool)]) -> Vec<u8> {
    let mut d = vec![0x05, 0x01, 0xa1, 0x01];
    for (i, &(size, count, signed)) in fields.iter().enumerate() {
        let usage = 0x30 + i as u8;
        d.extend([0x09, usage]);
        if signed {
            let min = -(1i64 << (size - 1));
            let max = (1i64 << (size - 1)) - 1;
            d.push(0x17);
            d.extend((min as i32).to_le_bytes());
            d.push(0x27);
            d.extend((max as i32).to_le_bytes());
        } else {
            d.extend([0x15, 0x00, 0x27]);
            d.extend((((1u64 << size) - 1) as u32).to_le_bytes());
        }
        d.extend([0x75, size, 0x95, count, 0x81, 0x02]);
    }
    d.push(0xc0);
    d
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(rd) = ReportDescriptor::parse(&bytes) {
            for report in rd.reports() {
                let data = vec![0xa5; report.data_len()];
                let values = report.decode(&data).unwrap();
                let _ = report.encode(&values);
                prop_assert!(report.wire_len() <= 16 * 1024);
            }
        }
    }

    #[test]
    fn items_shaped_bytes_never_panic(
        items in proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..4)), 0..64)
    ) {
        // Mostly well-formed items, so the parser gets deep.
        let mut bytes = Vec::new();
        for (prefix, data) in items {
            let size = [0, 1, 2, 4][usize::from(prefix & 3)];
            bytes.push(prefix);
            bytes.extend(data.iter().cycle().take(size));
        }
        if let Ok(rd) = ReportDescriptor::parse(&bytes) {
            for report in rd.reports() {
                let values = report.decode(&vec![0xff; report.data_len()]).unwrap();
                let _ = report.encode(&values);
            }
        }
    }

    #[test]
    fn decode_encode_round_trip(
        fields in proptest::collection::vec((1u8..=32, 1u8..=4, any::<bool>()), 1..6),
        seed in any::<u64>(),
    ) {
        let rd = ReportDescriptor::parse(&descriptor_of(&fields)).unwrap();
        let report = rd.input(0).unwrap();
        prop_assert_eq!(report.fields.len(), fields.len());
        let mut x = seed | 1;
        let mut values = Vec::new();
        for (fi, f) in report.fields.iter().enumerate() {
            for index in 0..f.count {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                let raw = x & ((1u64 << f.bit_size) - 1);
                let value = if f.is_signed() { sign_extend(raw, f.bit_size) } else { raw as i64 };
                prop_assert!(value >= f.logical_min && value <= f.logical_max);
                values.push(FieldValue { field: fi, index, usage: Some(Usage::new(1, 0x30 + fi as u16)), value });
            }
        }
        let data = report.encode(&values).unwrap();
        prop_assert_eq!(data.len(), report.data_len());
        prop_assert_eq!(report.decode(&data).unwrap(), values);
    }
}
