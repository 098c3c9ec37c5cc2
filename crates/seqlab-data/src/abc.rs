//! Tunes in ABC notation (O'Neill's 1850 collection in music21's corpus): header fields
//! parsed, the tune body kept with every header line and comment removed.

use crate::{DataError, LabelledText, read_text_files};
use std::path::Path;

/// One tune: its header fields and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbcTune {
    /// Reference number (`X:`).
    pub number: String,
    /// Header fields in order, as `(letter, value)`: `('T', "The Enchanted Valley")`,
    /// `('M', "2/4")`, `('K', "Gm")`, … Fields repeated inside the body (a key change) are
    /// listed too.
    pub fields: Vec<(char, String)>,
    /// The notes: every line that is not a field or a comment, joined with newlines.
    pub body: String,
}

impl AbcTune {
    /// The first value of field `letter`, if the tune has it.
    pub fn field(&self, letter: char) -> Option<&str> {
        self.fields
            .iter()
            .find(|(l, _)| *l == letter)
            .map(|(_, v)| v.as_str())
    }

    /// The title (`T:`).
    pub fn title(&self) -> Option<&str> {
        self.field('T')
    }

    /// The tune type from `R:`, lower-cased, with `slipjig` read as `slip jig`.
    pub fn tune_type(&self) -> Option<String> {
        let rhythm = self.field('R')?.trim().to_lowercase();
        match rhythm.as_str() {
            "" => None,
            "slipjig" => Some("slip jig".into()),
            _ => Some(rhythm),
        }
    }

    /// The mode of the first key (`K:`): `major`, `minor`, `mixolydian`, `dorian`, `phrygian`,
    /// `lydian`, `locrian`; `None` where it cannot be read.
    pub fn mode(&self) -> Option<&'static str> {
        key_mode(self.field('K')?)
    }

    /// The label called `name`: `type` ([`tune_type`](Self::tune_type)), `mode`
    /// ([`mode`](Self::mode)), or a field letter (`K`, `M`, `R`, …).
    pub fn label(&self, name: &str) -> Option<String> {
        match name {
            "type" => self.tune_type(),
            "mode" => self.mode().map(str::to_string),
            _ => {
                let mut letters = name.chars();
                let letter = letters.next().filter(|_| letters.next().is_none())?;
                self.field(letter)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            }
        }
    }
}

/// The mode of an ABC key such as `G`, `Gm`, `Ador`, `AMix`, `F#m`: `None` where it cannot be
/// read.
///
/// ```
/// use seqlab_data::key_mode;
/// assert_eq!(key_mode("G"), Some("major"));
/// assert_eq!(key_mode("F#m"), Some("minor"));
/// assert_eq!(key_mode("AMix"), Some("mixolydian"));
/// assert_eq!(key_mode("Bn"), None);
/// ```
pub fn key_mode(key: &str) -> Option<&'static str> {
    let key = key.trim();
    let mut chars = key.chars();
    if !matches!(chars.next()?, 'A'..='G') {
        return None;
    }
    let rest = chars.as_str().trim_start_matches(['#', 'b']);
    let mode = rest.split_whitespace().next().unwrap_or("").to_lowercase();
    let prefix = mode.get(..3.min(mode.len())).unwrap_or("");
    Some(match prefix {
        "" | "maj" | "ion" => "major",
        "m" | "min" | "aeo" => "minor",
        "mix" => "mixolydian",
        "dor" => "dorian",
        "phr" => "phrygian",
        "lyd" => "lydian",
        "loc" => "locrian",
        _ => return None,
    })
}

fn field_line(line: &str) -> Option<(char, String)> {
    let mut chars = line.chars();
    let letter = chars.next()?;
    (letter.is_ascii_alphabetic() && chars.next() == Some(':'))
        .then(|| (letter, chars.as_str().trim().to_string()))
}

/// Parses ABC text: a tune starts at each `X:` line and runs to the next. Lines before the
/// first `X:` (a file header) are skipped; `%` comments are removed.
///
/// ```
/// let tunes = seqlab_data::parse_abc("X: 1\nT: Air\nR: reel\nK:Gm\nG3-A Bcd |\n% a comment\nf4 g2 ||\n").unwrap();
/// assert_eq!(tunes[0].title(), Some("Air"));
/// assert_eq!(tunes[0].body, "G3-A Bcd |\nf4 g2 ||");
/// assert_eq!(tunes[0].mode(), Some("minor"));
/// ```
pub fn parse_abc(text: &str) -> Result<Vec<AbcTune>, DataError> {
    let mut tunes: Vec<AbcTune> = Vec::new();
    for line in text.lines() {
        let line = line.split('%').next().unwrap_or("").trim_end();
        let field = field_line(line);
        if let Some(('X', number)) = &field {
            tunes.push(AbcTune {
                number: number.clone(),
                fields: Vec::new(),
                body: String::new(),
            });
            continue;
        }
        let Some(tune) = tunes.last_mut() else {
            continue;
        };
        match field {
            Some(field) => tune.fields.push(field),
            None if line.trim().is_empty() => {}
            None => {
                if !tune.body.is_empty() {
                    tune.body.push('\n');
                }
                tune.body.push_str(line.trim());
            }
        }
    }
    if tunes.is_empty() {
        return Err(DataError::InvalidSetting(
            "no tunes: ABC text has an `X:` line at the start of each tune".into(),
        ));
    }
    Ok(tunes)
}

/// Reads every `.abc` file under `path` (a file or a folder), in name order, and parses the
/// tunes; tunes without notes are dropped.
pub fn read_abc(path: impl AsRef<Path>) -> Result<Vec<AbcTune>, DataError> {
    let path = path.as_ref();
    let files = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| DataError::TextFile {
                path: path.display().to_string(),
                message: format!("cannot list the folder: {e}"),
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("abc")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(DataError::TextFile {
                path: path.display().to_string(),
                message: "the folder has no .abc files".into(),
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut tunes = Vec::new();
    for file in &files {
        let text = read_text_files(std::slice::from_ref(file))?;
        let parsed = parse_abc(&text).map_err(|e| DataError::TextFile {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        tunes.extend(parsed.into_iter().filter(|t| !t.body.is_empty()));
    }
    Ok(tunes)
}

/// The tunes' bodies labelled by `label` (see [`AbcTune::label`]); tunes without that label
/// are left out.
pub fn label_tunes(tunes: &[AbcTune], label: &str) -> Vec<LabelledText> {
    tunes
        .iter()
        .filter_map(|tune| {
            Some(LabelledText {
                text: tune.body.clone(),
                label: tune.label(label)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TWO_TUNES: &str = "% file header\nX: 1\nT: The Enchanted Valley\nM: 2/4\nR:slipjig\nK:Gm\nG3-A (Bcd=e) | f4 (g2dB) |\n\nX: 2\nT: Fare You Well\nK:D\nf-g | a3-b ||\nK:Ador\nA2 | d3-e ||\n";

    #[test]
    fn fields_and_bodies_are_separated() {
        let tunes = parse_abc(TWO_TUNES).unwrap();
        assert_eq!(tunes.len(), 2);
        assert_eq!(tunes[0].number, "1");
        assert_eq!(tunes[0].field('M'), Some("2/4"));
        assert_eq!(tunes[0].tune_type().as_deref(), Some("slip jig"));
        assert_eq!(tunes[0].body, "G3-A (Bcd=e) | f4 (g2dB) |");
        // The key change inside the second tune is a field, not notes; the first key counts.
        assert_eq!(tunes[1].body, "f-g | a3-b ||\nA2 | d3-e ||");
        assert_eq!(tunes[1].mode(), Some("major"));
        assert_eq!(tunes[1].label("type"), None);
        assert_eq!(tunes[1].label("K").as_deref(), Some("D"));
        let labelled = label_tunes(&tunes, "mode");
        assert_eq!(labelled[0].label, "minor");
        assert!(parse_abc("no tunes here\n").is_err());
    }

    #[test]
    fn modes_are_read_from_the_keys_of_the_collection() {
        for (key, mode) in [
            ("G", "major"),
            ("Bb", "major"),
            ("Em", "minor"),
            ("F#m", "minor"),
            ("Dmix", "mixolydian"),
            ("DMix", "mixolydian"),
            ("Dmixm", "mixolydian"),
            ("Ador", "dorian"),
            ("GDor", "dorian"),
            ("Bphr", "phrygian"),
            ("Glyd", "lydian"),
            ("Gmaj", "major"),
            ("A minor", "minor"),
        ] {
            assert_eq!(key_mode(key), Some(mode), "{key}");
        }
        for key in ["Bn", "", "H", "none"] {
            assert_eq!(key_mode(key), None, "{key}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_bodies_hold_no_fields(text in "(X: ?[0-9]\n|[A-Z]: ?[a-z ]{0,5}\n|[a-g|0-9 ]{0,12}\n|%[a-z]*\n){0,20}") {
            if let Ok(tunes) = parse_abc(&text) {
                for tune in tunes {
                    for line in tune.body.lines() {
                        prop_assert!(field_line(line).is_none());
                    }
                }
            }
        }
    }
}
