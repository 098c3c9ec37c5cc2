//! Any bytes as a checkpoint folder: the input, split at each `\n--\n`, is `manifest.json`,
//! `config.json` and `weights.bin`. Loading gives the files back verified, or a typed error.
#![no_main]

mod scratch;

use libfuzzer_sys::fuzz_target;
use seqlab_train::Checkpoint;

const NAMES: [&str; 3] = ["manifest.json", "config.json", "weights.bin"];

fuzz_target!(|data: &[u8]| {
    let dir = scratch::scratch_file("checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the scratch folder is writable");
    let mut rest = data;
    for name in NAMES {
        let end = rest
            .windows(4)
            .position(|w| w == b"\n--\n")
            .unwrap_or(rest.len());
        std::fs::write(dir.join(name), &rest[..end]).expect("the scratch file is writable");
        rest = rest.get(end + 4..).unwrap_or(&[]);
    }
    if let Ok(checkpoint) = Checkpoint::load(&dir, "char-lm") {
        assert_eq!(checkpoint.kind(), "char-lm");
        for name in checkpoint.names() {
            assert!(checkpoint.file(name).is_ok());
        }
    }
});
