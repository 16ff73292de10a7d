//! Gadget zero's data patterns (`f_sourcesink`'s `pattern` module parameter).

/// The data a SourceSink gadget sends and expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Pattern {
    /// `pattern=0`: all zeros.
    Zeros,
    /// `pattern=1`: byte `i` of each packet is `i % 63` (the gadget's
    /// `(i % maxpacket) % 63`; a transfer starts on a packet boundary).
    #[default]
    Mod63,
}

/// Where received data first differs from what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: expected {expected:#04x}, found {found:#04x}")]
pub struct Mismatch {
    /// Offset in the transfer.
    pub offset: usize,
    /// The expected byte.
    pub expected: u8,
    /// The byte received.
    pub found: u8,
}

impl Pattern {
    /// The pattern for the gadget's `pattern` parameter (0 or 1; 2 checks
    /// nothing and has no pattern).
    pub fn from_param(param: u8) -> Option<Pattern> {
        match param {
            0 => Some(Pattern::Zeros),
            1 => Some(Pattern::Mod63),
            _ => None,
        }
    }

    /// Byte `offset` of a transfer on a pipe with this max packet size.
    pub fn byte(self, offset: usize, max_packet: usize) -> u8 {
        match self {
            Pattern::Zeros => 0,
            Pattern::Mod63 => ((offset % max_packet.max(1)) % 63) as u8,
        }
    }

    /// `len` bytes of the pattern, from the start of a transfer.
    pub fn generate(self, len: usize, max_packet: usize) -> Vec<u8> {
        (0..len).map(|i| self.byte(i, max_packet)).collect()
    }

    /// Check a transfer's data against the pattern.
    ///
    /// # Errors
    /// The first [`Mismatch`].
    pub fn check(self, data: &[u8], max_packet: usize) -> Result<(), Mismatch> {
        match data
            .iter()
            .enumerate()
            .find(|&(i, &b)| b != self.byte(i, max_packet))
        {
            None => Ok(()),
            Some((offset, &found)) => Err(Mismatch {
                offset,
                expected: self.byte(offset, max_packet),
                found,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod63_restarts_every_packet() {
        let p = Pattern::Mod63;
        assert_eq!(p.byte(62, 512), 62);
        assert_eq!(p.byte(63, 512), 0);
        assert_eq!(p.byte(512, 512), 0);
        assert_eq!(p.byte(513, 512), 1);
        assert_eq!(p.byte(64 + 5, 64), 5);
    }

    #[test]
    fn generate_then_check_round_trips_and_catches_a_flip() {
        for p in [Pattern::Zeros, Pattern::Mod63] {
            let mut d = p.generate(3000, 512);
            assert_eq!(p.check(&d, 512), Ok(()));
            d[1234] ^= 0x40;
            let m = p.check(&d, 512).unwrap_err();
            assert_eq!(m.offset, 1234);
            assert_eq!(m.expected, p.byte(1234, 512));
            assert_eq!(m.found, m.expected ^ 0x40);
        }
        assert_eq!(Pattern::from_param(1), Some(Pattern::Mod63));
        assert_eq!(Pattern::from_param(2), None);
    }
}
