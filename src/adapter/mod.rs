//! Database adapters. (Being written: Postgres and the embedded local cluster.)
