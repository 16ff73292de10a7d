//! Notification reassembly on device-supplied interrupt transfers: the first byte of each
//! chunk says whether the transfer was full, the next its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usbdf_cdc_acm::{Assembler, Notification, HEADER_LEN, MAX_DATA_LEN};

fuzz_target!(|data: &[u8]| {
    let _ = Notification::parse(data);
    let mut assembler = Assembler::new();
    let mut rest = data;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        let full = flags & 1 != 0;
        assembler.push(chunk, full, |_| {});
        assert!(assembler.pending() < HEADER_LEN + MAX_DATA_LEN);
        if !full {
            assert_eq!(assembler.pending(), 0);
        }
        rest = next;
    }
});
