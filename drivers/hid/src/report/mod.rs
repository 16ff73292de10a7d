//! Report descriptors: the parser, the model it builds, and decoding and
//! encoding of reports.

pub mod decode;
pub mod model;
pub mod parser;

#[cfg(test)]
mod tests;
