//! accumulator (being built).
