//! Report descriptor items → the checked [`ReportDescriptor`] model.
//!
//! One pass over the bytes, one item at a time; every item advances by at
//! least one byte, every stack and size is bounded, and every arithmetic
//! step is checked, so no input makes it panic, loop or allocate without
//! bound (the fuzz target `hid_report_descriptor` holds it to that).

use std::collections::BTreeMap;

use super::model::{
    Collection, CollectionKind, Field, MainFlags, Report, ReportDescriptor, ReportKind, Usage,
    UsageRange,
};

/// Deepest collection nesting accepted.
pub const MAX_COLLECTION_DEPTH: usize = 32;
/// Deepest `Push` stack accepted.
pub const MAX_PUSH_DEPTH: usize = 16;
/// Largest `Report Size` accepted, in bits (Linux's limit).
pub const MAX_REPORT_SIZE: u32 = 256;
/// Largest report accepted, in data bytes (Linux's buffer is 16 KiB,
/// report ID included).
pub const MAX_REPORT_DATA_LEN: u32 = 16 * 1024 - 1;

/// Why a report descriptor was rejected. `offset` is the byte offset of
/// the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An item's data runs past the end of the descriptor.
    #[error("item at offset {offset} is truncated")]
    Truncated {
        /// Where the item starts.
        offset: usize,
    },
    /// A global item with an undefined tag.
    #[error("unknown global item tag {tag:#x} at offset {offset}")]
    UnknownGlobal {
        /// Where the item starts.
        offset: usize,
        /// The tag.
        tag: u8,
    },
    /// `Report ID` 0 (reserved) or above 255.
    #[error("report ID {id} at offset {offset} is not in 1..=255")]
    BadReportId {
        /// Where the item starts.
        offset: usize,
        /// The ID given.
        id: u32,
    },
    /// A descriptor that uses report IDs has a data item before the first
    /// `Report ID`, which no report ID could name.
    #[error("main item at offset {offset} precedes the first Report ID")]
    ReportIdMissing {
        /// Where the item starts.
        offset: usize,
    },
    /// `Report Size` above [`MAX_REPORT_SIZE`].
    #[error("report size {size} at offset {offset} exceeds {MAX_REPORT_SIZE} bits")]
    ReportSizeTooLarge {
        /// Where the main item using it starts.
        offset: usize,
        /// The size.
        size: u32,
    },
    /// A report grows past [`MAX_REPORT_DATA_LEN`] bytes.
    #[error("{kind:?} report {id} grows past {MAX_REPORT_DATA_LEN} bytes at offset {offset}")]
    ReportTooLong {
        /// Where the main item starts.
        offset: usize,
        /// The report's kind.
        kind: ReportKind,
        /// The report's ID.
        id: u8,
    },
    /// Collections nested deeper than [`MAX_COLLECTION_DEPTH`].
    #[error("collection at offset {offset} nests deeper than {MAX_COLLECTION_DEPTH}")]
    CollectionTooDeep {
        /// Where the item starts.
        offset: usize,
    },
    /// `End Collection` with no open collection.
    #[error("End Collection at offset {offset} closes nothing")]
    UnbalancedEndCollection {
        /// Where the item starts.
        offset: usize,
    },
    /// The descriptor ends with collections still open.
    #[error("{open} collection(s) still open at the end of the descriptor")]
    UnclosedCollection {
        /// How many.
        open: usize,
    },
    /// `Push` past [`MAX_PUSH_DEPTH`].
    #[error("Push at offset {offset} overflows the global stack")]
    PushOverflow {
        /// Where the item starts.
        offset: usize,
    },
    /// `Pop` with nothing pushed.
    #[error("Pop at offset {offset} with an empty global stack")]
    PopUnderflow {
        /// Where the item starts.
        offset: usize,
    },
    /// A `Usage Minimum`/`Usage Maximum` pair with the minimum above the
    /// maximum or on different pages.
    #[error("bad usage range at offset {offset}")]
    BadUsageRange {
        /// Where the item completing the pair starts.
        offset: usize,
    },
    /// A `Delimiter` opened inside another, or closed when none is open.
    #[error("unbalanced delimiter at offset {offset}")]
    BadDelimiter {
        /// Where the item starts.
        offset: usize,
    },
}

/// One item's header, decoded.
#[derive(Debug, Clone, Copy)]
struct Item {
    offset: usize,
    kind: u8,
    tag: u8,
    /// Data bytes (0, 1, 2 or 4).
    size: u8,
    data: u32,
}

impl Item {
    /// The data sign-extended from its size.
    fn signed(&self) -> i64 {
        match self.size {
            1 => i64::from(self.data as u8 as i8),
            2 => i64::from(self.data as u16 as i16),
            4 => i64::from(self.data as i32),
            _ => 0,
        }
    }
}

/// A value kept raw until the main item, when its sign can be decided.
#[derive(Debug, Clone, Copy, Default)]
struct Raw {
    data: u32,
    size: u8,
}

impl Raw {
    fn signed(self) -> i64 {
        Item {
            offset: 0,
            kind: 0,
            tag: 0,
            size: self.size,
            data: self.data,
        }
        .signed()
    }
}

#[derive(Debug, Clone, Default)]
struct Globals {
    usage_page: u16,
    logical_min: i64,
    logical_max: Raw,
    physical_min: i64,
    physical_max: Raw,
    unit_exponent: i32,
    unit: u32,
    report_size: u32,
    report_id: u8,
    report_count: u32,
}

/// A local usage (or range) and whether it was given without a page.
#[derive(Debug, Clone, Copy)]
struct LocalUsage {
    range: UsageRange,
    short: bool,
}

#[derive(Debug, Default)]
struct Locals {
    usages: Vec<LocalUsage>,
    /// A pending `Usage Minimum` / `Usage Maximum`: (value, size).
    min: Option<(u32, u8)>,
    max: Option<(u32, u8)>,
    delimiter_open: bool,
    delimiter_sets: u32,
}

struct Parser {
    globals: Globals,
    stack: Vec<Globals>,
    locals: Locals,
    open: Vec<usize>,
    collections: Vec<Collection>,
    reports: BTreeMap<(ReportKind, u8), Report>,
    uses_ids: bool,
    /// A data item was seen while no report ID was set.
    unnumbered_offset: Option<usize>,
}

/// Split the next item off `bytes` at `offset`: the item and its length.
fn next_item(bytes: &[u8], offset: usize) -> Result<Option<(Item, usize)>, ParseError> {
    let Some(&prefix) = bytes.get(offset) else {
        return Ok(None);
    };
    if prefix == 0xFE {
        // Long item: bDataSize, bLongItemTag, data. No long tags are
        // defined; skip it whole.
        let size = *bytes
            .get(offset + 1)
            .ok_or(ParseError::Truncated { offset })?;
        let len = 3 + usize::from(size);
        if bytes.len() - offset < len {
            return Err(ParseError::Truncated { offset });
        }
        let item = Item {
            offset,
            kind: 3,
            tag: 0xF,
            size: 0,
            data: 0,
        };
        return Ok(Some((item, len)));
    }
    let size = [0u8, 1, 2, 4][usize::from(prefix & 0x03)];
    let body = bytes
        .get(offset + 1..offset + 1 + usize::from(size))
        .ok_or(ParseError::Truncated { offset })?;
    let data = body
        .iter()
        .rev()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    let item = Item {
        offset,
        kind: (prefix >> 2) & 0x03,
        tag: prefix >> 4,
        size,
        data,
    };
    Ok(Some((item, 1 + usize::from(size))))
}

impl ReportDescriptor {
    /// Parse a report descriptor.
    ///
    /// ```
    /// use usbdf_hid::{ReportDescriptor, ReportKind};
    ///
    /// // Three buttons and X/Y, like a boot mouse.
    /// let rd = ReportDescriptor::parse(&[
    ///     0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x05, 0x09, 0x19, 0x01, 0x29, 0x03,
    ///     0x15, 0x00, 0x25, 0x01, 0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95, 0x01,
    ///     0x75, 0x05, 0x81, 0x01, 0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x81,
    ///     0x25, 0x7f, 0x75, 0x08, 0x95, 0x02, 0x81, 0x06, 0xc0,
    /// ])?;
    /// let input = rd.report(ReportKind::Input, 0).unwrap();
    /// assert_eq!(input.data_len(), 3);
    /// assert_eq!(input.fields[2].bit_offset, 8);
    /// # Ok::<(), usbdf_hid::ParseError>(())
    /// ```
    ///
    /// # Errors
    /// A [`ParseError`] naming the offending item.
    pub fn parse(bytes: &[u8]) -> Result<ReportDescriptor, ParseError> {
        let mut p = Parser {
            globals: Globals::default(),
            stack: Vec::new(),
            locals: Locals::default(),
            open: Vec::new(),
            collections: Vec::new(),
            reports: BTreeMap::new(),
            uses_ids: false,
            unnumbered_offset: None,
        };
        let mut offset = 0;
        while let Some((item, len)) = next_item(bytes, offset)? {
            match item.kind {
                0 => p.main(&item)?,
                1 => p.global(&item)?,
                2 => p.local(&item)?,
                _ => {} // reserved and long items: nothing defined
            }
            offset += len;
        }
        if !p.open.is_empty() {
            return Err(ParseError::UnclosedCollection { open: p.open.len() });
        }
        if p.uses_ids {
            if let Some(offset) = p.unnumbered_offset {
                return Err(ParseError::ReportIdMissing { offset });
            }
        }
        Ok(ReportDescriptor {
            reports: p.reports.into_values().collect(),
            collections: p.collections,
            uses_report_ids: p.uses_ids,
        })
    }
}

impl Parser {
    fn global(&mut self, item: &Item) -> Result<(), ParseError> {
        let g = &mut self.globals;
        match item.tag {
            0x0 => g.usage_page = item.data as u16,
            0x1 => g.logical_min = item.signed(),
            0x2 => {
                g.logical_max = Raw {
                    data: item.data,
                    size: item.size,
                }
            }
            0x3 => g.physical_min = item.signed(),
            0x4 => {
                g.physical_max = Raw {
                    data: item.data,
                    size: item.size,
                }
            }
            0x5 => {
                // Many devices give the exponent as a 4-bit two's
                // complement nibble, others as a whole signed value.
                g.unit_exponent = if item.data & !0x0F == 0 {
                    ((item.data as i32) << 28) >> 28
                } else {
                    item.signed() as i32
                };
            }
            0x6 => g.unit = item.data,
            0x7 => g.report_size = item.data,
            0x8 => {
                if item.data == 0 || item.data > 0xFF {
                    return Err(ParseError::BadReportId {
                        offset: item.offset,
                        id: item.data,
                    });
                }
                g.report_id = item.data as u8;
                self.uses_ids = true;
            }
            0x9 => g.report_count = item.data,
            0xA => {
                if self.stack.len() >= MAX_PUSH_DEPTH {
                    return Err(ParseError::PushOverflow {
                        offset: item.offset,
                    });
                }
                self.stack.push(self.globals.clone());
            }
            0xB => {
                self.globals = self.stack.pop().ok_or(ParseError::PopUnderflow {
                    offset: item.offset,
                })?;
            }
            tag => {
                return Err(ParseError::UnknownGlobal {
                    offset: item.offset,
                    tag,
                })
            }
        }
        Ok(())
    }

    fn local(&mut self, item: &Item) -> Result<(), ParseError> {
        let l = &mut self.locals;
        let usage_item = matches!(item.tag, 0x0..=0x2);
        // After the first delimiter set, alternative usages are ignored.
        if usage_item && l.delimiter_sets > 1 {
            return Ok(());
        }
        match item.tag {
            0x0 => {
                let short = item.size < 4;
                let usage = self.complete(item.data, item.size);
                self.locals.usages.push(LocalUsage {
                    range: UsageRange {
                        first: usage,
                        last: usage,
                    },
                    short,
                });
            }
            0x1 => {
                l.min = Some((item.data, item.size));
                self.usage_pair(item.offset)?;
            }
            0x2 => {
                l.max = Some((item.data, item.size));
                self.usage_pair(item.offset)?;
            }
            0xA => {
                if item.data != 0 {
                    if l.delimiter_open {
                        return Err(ParseError::BadDelimiter {
                            offset: item.offset,
                        });
                    }
                    l.delimiter_open = true;
                    l.delimiter_sets += 1;
                } else {
                    if !l.delimiter_open {
                        return Err(ParseError::BadDelimiter {
                            offset: item.offset,
                        });
                    }
                    l.delimiter_open = false;
                }
            }
            // Designators and strings: not used by this driver.
            _ => {}
        }
        Ok(())
    }

    /// A usage item's value with the current page when it has none.
    fn complete(&self, data: u32, size: u8) -> Usage {
        if size == 4 {
            Usage(data)
        } else {
            Usage::new(self.globals.usage_page, data as u16)
        }
    }

    /// When both bounds of a usage range are known, record the range.
    fn usage_pair(&mut self, offset: usize) -> Result<(), ParseError> {
        let (Some((min, min_size)), Some((max, max_size))) = (self.locals.min, self.locals.max)
        else {
            return Ok(());
        };
        self.locals.min = None;
        self.locals.max = None;
        let mut first = self.complete(min, min_size);
        let mut last = self.complete(max, max_size);
        // A short bound takes the page of an extended one.
        if min_size == 4 && max_size < 4 {
            last = Usage::new(first.page(), last.id());
        } else if max_size == 4 && min_size < 4 {
            first = Usage::new(last.page(), first.id());
        }
        if first.page() != last.page() || first.id() > last.id() {
            return Err(ParseError::BadUsageRange { offset });
        }
        self.locals.usages.push(LocalUsage {
            range: UsageRange { first, last },
            short: min_size < 4 && max_size < 4,
        });
        Ok(())
    }

    /// The main item's usages: short usages given before a later `Usage
    /// Page` take that page (walking back until one already has it), as
    /// Linux does.
    fn take_usages(&mut self) -> Vec<UsageRange> {
        let page = self.globals.usage_page;
        let mut usages = std::mem::take(&mut self.locals.usages);
        for u in usages.iter_mut().rev() {
            if !u.short {
                continue;
            }
            if u.range.first.page() == page {
                break;
            }
            u.range.first = Usage::new(page, u.range.first.id());
            u.range.last = Usage::new(page, u.range.last.id());
        }
        self.locals = Locals::default();
        usages.into_iter().map(|u| u.range).collect()
    }

    fn main(&mut self, item: &Item) -> Result<(), ParseError> {
        match item.tag {
            0x8 => self.data_item(item, ReportKind::Input),
            0x9 => self.data_item(item, ReportKind::Output),
            0xB => self.data_item(item, ReportKind::Feature),
            0xA => {
                if self.open.len() >= MAX_COLLECTION_DEPTH {
                    return Err(ParseError::CollectionTooDeep {
                        offset: item.offset,
                    });
                }
                let usage = self.take_usages().first().map(|r| r.first);
                self.collections.push(Collection {
                    kind: CollectionKind::from_u8(item.data as u8),
                    usage,
                    parent: self.open.last().copied(),
                    depth: self.open.len(),
                });
                self.open.push(self.collections.len() - 1);
                Ok(())
            }
            0xC => {
                self.take_usages();
                self.open
                    .pop()
                    .map(|_| ())
                    .ok_or(ParseError::UnbalancedEndCollection {
                        offset: item.offset,
                    })
            }
            _ => {
                // Undefined main items carry no layout; drop the locals.
                self.take_usages();
                Ok(())
            }
        }
    }

    fn data_item(&mut self, item: &Item, kind: ReportKind) -> Result<(), ParseError> {
        let usages = self.take_usages();
        let g = &self.globals;
        if g.report_size > MAX_REPORT_SIZE {
            return Err(ParseError::ReportSizeTooLarge {
                offset: item.offset,
                size: g.report_size,
            });
        }
        if g.report_size == 0 || g.report_count == 0 {
            return Ok(());
        }
        if g.report_id == 0 && self.unnumbered_offset.is_none() {
            self.unnumbered_offset = Some(item.offset);
        }
        let too_long = ParseError::ReportTooLong {
            offset: item.offset,
            kind,
            id: g.report_id,
        };
        let report = self
            .reports
            .entry((kind, g.report_id))
            .or_insert_with(|| Report {
                kind,
                id: g.report_id,
                fields: Vec::new(),
                bit_len: 0,
            });
        let bits = u64::from(g.report_size) * u64::from(g.report_count);
        let end = u64::from(report.bit_len) + bits;
        if end > u64::from(MAX_REPORT_DATA_LEN) * 8 {
            return Err(too_long);
        }
        let resolve = |min: i64, max: Raw| {
            if min < 0 {
                max.signed()
            } else {
                i64::from(max.data)
            }
        };
        let logical_max = resolve(g.logical_min, g.logical_max);
        let (physical_min, physical_max) = match (g.physical_min, g.physical_max.data) {
            (0, 0) => (g.logical_min, logical_max),
            (min, _) => (min, resolve(min, g.physical_max)),
        };
        let mut ends = Vec::with_capacity(usages.len());
        let mut total = 0u64;
        for r in &usages {
            total += u64::from(r.len());
            ends.push(total);
        }
        report.fields.push(Field {
            bit_offset: report.bit_len,
            bit_size: g.report_size,
            count: g.report_count,
            flags: MainFlags(item.data),
            usages,
            logical_min: g.logical_min,
            logical_max,
            physical_min,
            physical_max,
            unit: g.unit,
            unit_exponent: g.unit_exponent,
            collection: self.open.last().copied(),
            ends,
        });
        // Checked above: `end` fits in the report limit, well below u32::MAX.
        report.bit_len = end as u32;
        Ok(())
    }
}
