//! Benchmark: issue/return over HTTP beside the library.
fn main() {}
