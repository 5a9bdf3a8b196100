//! Explosives safety tables and calculations (placeholder until written).
