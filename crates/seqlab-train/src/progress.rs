//! A progress bar over an epoch's batches, shown only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Makes the bar for one epoch, hidden when stderr is not a terminal or `enabled` is false.
pub(crate) fn epoch_bar(batches: usize, epoch: usize, enabled: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(batches as u64),
        if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} [{elapsed} < {eta}]",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(epoch.to_string());
    bar
}
