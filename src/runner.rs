//! Runs a plan. (Being written.)
