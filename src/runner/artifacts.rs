//! run_results.json, written to the project's target folder.

use std::path::Path;

use crate::error::{Error, Result};
use crate::results::RunResults;

/// Write `<target_dir>/run_results.json`.
/// Streamed, and masked of secrets on the way out.
pub fn write_results(results: &RunResults, target_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(target_dir).map_err(|e| Error::io(target_dir, e))?;
    let path = target_dir.join("run_results.json");
    crate::base::atomic_file::write_with(&path, |file| {
        let scrub = crate::base::secrets::ScrubWriter::new(file);
        let mut writer = std::io::BufWriter::with_capacity(1 << 16, scrub);
        results
            .to_writer(&mut writer)
            .map_err(std::io::Error::other)?;
        writer.into_inner().map_err(|e| e.into_error())?.finish()?;
        Ok(())
    })
    .map_err(|e| Error::io(&path, e))
}
