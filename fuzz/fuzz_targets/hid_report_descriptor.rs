//! The HID report-descriptor parser on arbitrary bytes: it must never panic, never
//! hang, and everything it accepts must be decodable and encodable, bounded, with
//! variable fields surviving decode → encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usbdf_hid::{ReportDescriptor, ReportKind};

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = ReportDescriptor::parse(data) else {
        return;
    };
    for report in rd.reports() {
        assert!(report.wire_len() <= 16 * 1024);
        let mut offset = 0;
        for field in &report.fields {
            assert_eq!(field.bit_offset, offset);
            offset += u32::try_from(field.bit_len()).unwrap();
        }
        assert_eq!(offset, report.bit_len);

        // Report bytes taken from the input itself.
        let bytes: Vec<u8> = data
            .iter()
            .rev()
            .cycle()
            .take(report.data_len())
            .copied()
            .collect();
        let values = report.decode(&bytes).expect("a full-length report decodes");
        let encoded = report.encode(&values).expect("decoded values encode");
        assert_eq!(encoded.len(), report.data_len());
        let again = report.decode(&encoded).expect("an encoded report decodes");
        let variable = |v: &&usbdf_hid::FieldValue| report.fields[v.field].flags.is_variable();
        assert!(values
            .iter()
            .filter(variable)
            .eq(again.iter().filter(variable)));
        assert!(
            report
                .decode(&bytes[..report.data_len().saturating_sub(1)])
                .is_err()
                || report.data_len() == 0
        );
    }
    for kind in [ReportKind::Input, ReportKind::Output, ReportKind::Feature] {
        let _ = rd.decode(kind, data);
    }
    let _ = rd.decode_input(data);
});
