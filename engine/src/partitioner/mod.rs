//! partitioner (being built).
