//! The Quartermaster server (placeholder until written).
