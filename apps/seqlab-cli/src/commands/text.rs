//! Where labelled texts and tokenizers come from, for `seqlab tokenize`, `seqlab classify`
//! and `seqlab lm`: fetched datasets by name, or the user's files.

use super::common::{DiskArgs, fetched_dataset};
use clap::Args as ClapArgs;
use seqlab::data::{
    LabelledColumns, LabelledTable, LabelledText, Tokenizer, label_tunes, read_abc,
};
use std::error::Error;
use std::path::{Path, PathBuf};

/// Which texts to read.
#[derive(ClapArgs, Debug, Clone)]
pub struct DataArgs {
    /// imdb or rotten-tomatoes (datasets/fetch movie-reviews), tunes (datasets/fetch tunes),
    /// a .csv/.tsv/.jsonl file, or a folder or file of ABC tunes; for `lm train`, also a .txt
    /// file of plain text (read in order, its tail held out).
    #[arg(long, value_name = "NAME|PATH")]
    pub data: String,
    /// The column holding the text (tables).
    #[arg(long, default_value = "text")]
    pub text_col: String,
    /// The column holding the label; for tunes `type` (from R:), `mode` (from K:) or a field
    /// letter. Default: `label`, or `type` for tunes.
    #[arg(long)]
    pub label_col: Option<String>,
    /// Keep only the rows where COLUMN=VALUE (tables).
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filter: Option<String>,
}

/// Where `--data` points: a collection of ABC tunes, or a table and the columns to read.
enum Source {
    Tunes(PathBuf),
    Table(PathBuf, LabelledColumns),
}

impl DataArgs {
    fn source(&self) -> Result<Source, Box<dyn Error>> {
        let (path, mut filter) = match self.data.as_str() {
            "imdb" | "rotten-tomatoes" => (
                fetched_dataset("movie-reviews")?.join("combined_movie_reviews.csv"),
                Some(("source".to_string(), self.data.replace('-', "_"))),
            ),
            "tunes" => (fetched_dataset("tunes")?, None),
            path => (PathBuf::from(path), None),
        };
        if let Some(filter_text) = &self.filter {
            let (column, value) = filter_text
                .split_once('=')
                .ok_or_else(|| format!("--where takes COLUMN=VALUE, got {filter_text:?}"))?;
            filter = Some((column.to_string(), value.to_string()));
        }
        if is_abc(&path) {
            return Ok(Source::Tunes(path));
        }
        let mut columns =
            LabelledColumns::new(&self.text_col, self.label_col.as_deref().unwrap_or("label"));
        columns.filter = filter;
        Ok(Source::Table(path, columns))
    }

    /// Reads the labelled texts. ABC tunes without the label are left out (all tunes are
    /// read when `all_tunes`, for language-model training, labelled with `""`).
    pub fn read(&self, all_tunes: bool) -> Result<Vec<LabelledText>, Box<dyn Error>> {
        let path = match self.source()? {
            Source::Table(path, columns) => return Ok(columns.read(&path)?),
            Source::Tunes(path) => path,
        };
        let tunes = read_abc(&path)?;
        if all_tunes {
            return Ok(tunes
                .into_iter()
                .map(|tune| LabelledText {
                    text: tune.body,
                    label: String::new(),
                })
                .collect());
        }
        let label = self.label_col.as_deref().unwrap_or("type");
        let rows = label_tunes(&tunes, label);
        if rows.is_empty() {
            return Err(format!(
                "none of the {} tunes in {} has a {label:?} label",
                tunes.len(),
                path.display()
            )
            .into());
        }
        Ok(rows)
    }

    /// The table `--data` names, indexed to be read from disk a row at a time when `disk`
    /// says so (asked for, or a file over 1 GiB); `None` when it is read into memory. ABC
    /// tunes are always read into memory: `--from-disk` with them is an error.
    pub fn table_on_disk(&self, disk: &DiskArgs) -> Result<Option<LabelledTable>, Box<dyn Error>> {
        match self.source()? {
            Source::Tunes(path) if disk.from_disk => Err(format!(
                "{}: ABC tunes are read into memory; --from-disk reads tables (.csv, .tsv, .jsonl) and plain text",
                path.display()
            )
            .into()),
            Source::Table(path, columns) if disk.reads_from_disk(std::slice::from_ref(&path)) => {
                Ok(Some(columns.index(&path)?))
            }
            _ => Ok(None),
        }
    }
}

/// The first texts of `table`, up to about `bytes`: what a tokenizer is trained on when the
/// table is read from disk.
pub fn head_rows(table: &LabelledTable, bytes: usize) -> Result<Vec<String>, Box<dyn Error>> {
    let mut texts = Vec::new();
    let mut read = 0;
    for row in 0..table.len() {
        if read >= bytes {
            break;
        }
        let text = table.text(row)?;
        read += text.len();
        texts.push(text);
    }
    Ok(texts)
}

fn is_abc(path: &Path) -> bool {
    path.is_dir()
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("abc"))
}

/// Which tokenizer to use.
#[derive(ClapArgs, Debug, Clone)]
pub struct TokenizerArgs {
    /// word, char or whitespace (built from the training texts; whitespace keeps tokens as
    /// written and ends every line with <eos>, as the Penn Treebank), wordpiece or bpe
    /// (trained on them with Hugging Face's trainers), bert (datasets/fetch bert), or a
    /// tokenizer.json file.
    #[arg(long, default_value = "word")]
    pub tokenizer: String,
    /// The most tokens a built or trained tokenizer keeps.
    #[arg(long, default_value_t = 30000)]
    pub vocab_size: usize,
    /// The fewest times a token must appear to be kept (built or trained tokenizers).
    #[arg(long, default_value_t = 2)]
    pub min_freq: usize,
}

impl TokenizerArgs {
    /// The tokenizer, built or trained on `texts` where it is not read from a file.
    pub fn tokenizer<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Tokenizer, Box<dyn Error>> {
        if self.vocab_size < 2 {
            return Err("--vocab-size must be at least 2".into());
        }
        let (size, freq) = (self.vocab_size, self.min_freq);
        Ok(match self.tokenizer.as_str() {
            "word" => Tokenizer::word(texts, size, freq),
            "char" => Tokenizer::char(texts, size, freq),
            "whitespace" => Tokenizer::whitespace(texts, size, freq),
            "wordpiece" => Tokenizer::train_wordpiece(texts, size, freq as u64)?,
            "bpe" => Tokenizer::train_bpe(texts, size, freq as u64)?,
            other => read_tokenizer(other)?,
        })
    }
}

/// `bert` (the fetched bert-base-uncased tokenizer) or a tokenizer file.
pub fn read_tokenizer(name: &str) -> Result<Tokenizer, Box<dyn Error>> {
    let path = match name {
        "bert" => fetched_dataset("bert")?.join("tokenizer.json"),
        path => PathBuf::from(path),
    };
    Ok(Tokenizer::from_file(path)?)
}

/// Describes a tokenizer in one line.
pub fn describe(tokenizer: &Tokenizer) -> String {
    let specials: Vec<String> = tokenizer
        .special_tokens()
        .into_iter()
        .map(|(token, id)| format!("{token}={id}"))
        .collect();
    format!(
        "tokenizer: {}, {} tokens, special {}",
        tokenizer.kind().name(),
        tokenizer.vocab_size(),
        specials.join(" ")
    )
}
