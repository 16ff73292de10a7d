//! String descriptors on device-supplied bytes: `parse_string` and `parse_language_ids`
//! never panic; a decoded string re-encodes to a descriptor that decodes to a prefix of
//! it (encoding caps the length at 126 code units); LANGID lists round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usbdf::descriptor::{encode_language_ids, encode_string, parse_language_ids, parse_string};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse_string(data) {
        let again = parse_string(&encode_string(&s)).expect("re-parse");
        assert!(s.starts_with(&again), "{s:?} -> {again:?}");
    }
    if let Ok(ids) = parse_language_ids(data) {
        assert!(ids.len() <= 127);
        assert_eq!(
            parse_language_ids(&encode_language_ids(&ids)).expect("re-parse"),
            ids
        );
    }
});
