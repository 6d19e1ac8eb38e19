//! The pyo3 module `weir._core`. (Being written.)
