//! `launchway dataplane` (internal, not in the help): the data plane of
//! one reconciler data directory — every environment's stable address in
//! a process of its own, started and configured by the reconciler
//! (`launchway_proxy::plane`), so traffic outlives the reconciler.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DataplaneArgs {
    /// The reconciler's data directory (holds `dataplane.sock`).
    #[arg(long)]
    data: PathBuf,
}

pub fn main(args: &DataplaneArgs) -> u8 {
    let data = args.data.clone();
    crate::cmd_serve::block_on(async move {
        launchway_proxy::plane::run(&data, launchway_deploy::dataplane::IDLE_EXIT)
            .await
            .map_err(|e| e.to_string())
    })
}
