//! SQL for each materialization. (Being written.)
