//! Meaning-based matching: a word-embedding model an operator points the node at
//! (`search_embeddings`), read once at start from a local file (nothing is fetched). Each word of
//! a query is then also matched by the model's words nearest it in meaning, weighted by how near
//! they are, so `journal` finds a package described as a `logging` library. Without a model,
//! search is lexical and complete.
//!
//! The file is word2vec's text format, which GloVe and fastText vectors also come in: one word and
//! its vector's components a line, separated by spaces, every vector of one length; a first line
//! of two numbers (words, dimensions) is a header.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// The most neighbours a query word is given.
const NEIGHBOURS: usize = 3;
/// The least cosine similarity a neighbour has.
const MIN_SIMILARITY: f32 = 0.6;
/// Query words whose neighbours are remembered (the cache is emptied when full).
const CACHED_WORDS: usize = 10_000;

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingsError {
    /// The file could not be read.
    #[error("search_embeddings {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a word and a vector of the model's length.
    #[error("search_embeddings {path}, line {line}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No word has a vector.
    #[error("search_embeddings {0}: no word vectors")]
    Empty(String),
}

/// A word-embedding model: unit vectors by word.
pub struct Embeddings {
    words: Vec<String>,
    by_word: HashMap<String, usize>,
    /// Every word's unit vector, one after another.
    vectors: Vec<f32>,
    dimensions: usize,
    cache: Mutex<HashMap<String, Vec<(String, f32)>>>,
}

impl std::fmt::Debug for Embeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embeddings")
            .field("words", &self.words.len())
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

impl Embeddings {
    /// Reads the model in `path`.
    pub fn load(path: &Path) -> Result<Embeddings, EmbeddingsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| EmbeddingsError::Read {
            path: shown.clone(),
            source,
        })?;
        Embeddings::parse(&text).map_err(|(line, reason)| match reason {
            None => EmbeddingsError::Empty(shown.clone()),
            Some(reason) => EmbeddingsError::Malformed {
                path: shown.clone(),
                line,
                reason,
            },
        })
    }

    /// The model in `text`; an error is the line and what is wrong with it (`None`: no vectors).
    fn parse(text: &str) -> Result<Embeddings, (usize, Option<String>)> {
        let mut model = Embeddings {
            words: Vec::new(),
            by_word: HashMap::new(),
            vectors: Vec::new(),
            dimensions: 0,
            cache: Mutex::default(),
        };
        for (number, line) in text.lines().enumerate() {
            let mut parts = line.split_whitespace();
            let Some(word) = parts.next() else {
                continue;
            };
            let values: Result<Vec<f32>, _> = parts.map(str::parse::<f32>).collect();
            let mut vector =
                values.map_err(|error| (number + 1, Some(format!("not a number: {error}"))))?;
            if number == 0 && vector.len() == 1 && word.parse::<u64>().is_ok() {
                continue;
            }
            if vector.is_empty() {
                return Err((number + 1, Some(format!("{word:?} has no vector"))));
            }
            if model.dimensions == 0 {
                model.dimensions = vector.len();
            } else if vector.len() != model.dimensions {
                return Err((
                    number + 1,
                    Some(format!(
                        "{word:?} has {} components where the first vector has {}",
                        vector.len(),
                        model.dimensions
                    )),
                ));
            }
            let length = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            if length > 0.0 {
                vector.iter_mut().for_each(|x| *x /= length);
            }
            let word = word.to_lowercase();
            if model.by_word.contains_key(&word) {
                continue;
            }
            model.by_word.insert(word.clone(), model.words.len());
            model.words.push(word);
            model.vectors.extend(vector);
        }
        if model.words.is_empty() {
            return Err((0, None));
        }
        Ok(model)
    }

    fn vector(&self, index: usize) -> &[f32] {
        &self.vectors[index * self.dimensions..(index + 1) * self.dimensions]
    }

    /// The words nearest `word` in meaning (not itself), nearest first, with their cosine
    /// similarity: at most [`NEIGHBOURS`], each at least [`MIN_SIMILARITY`].
    pub fn neighbours(&self, word: &str) -> Vec<(String, f32)> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = cache.get(word) {
            return known.clone();
        }
        let found = match self.by_word.get(word) {
            Some(&own) => {
                let target = self.vector(own);
                let mut scored: Vec<(usize, f32)> = (0..self.words.len())
                    .filter(|&other| other != own)
                    .map(|other| {
                        let similarity = target
                            .iter()
                            .zip(self.vector(other))
                            .map(|(a, b)| a * b)
                            .sum::<f32>();
                        (other, similarity)
                    })
                    .filter(|(_, similarity)| *similarity >= MIN_SIMILARITY)
                    .collect();
                scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                scored
                    .into_iter()
                    .take(NEIGHBOURS)
                    .map(|(other, similarity)| (self.words[other].clone(), similarity))
                    .collect()
            }
            None => Vec::new(),
        };
        if cache.len() >= CACHED_WORDS {
            cache.clear();
        }
        cache.insert(word.to_string(), found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str =
        "5 3\nlogging 1 0 0\nJournal 0.95 0.05 0\nlogger 0.9 0.1 0\npad 0 1 0\nzebra 0 0 1\n";

    #[test]
    fn the_nearest_words_come_first_and_far_ones_not_at_all() {
        let model = Embeddings::parse(MODEL).expect("a model");
        let near = model.neighbours("journal");
        let words: Vec<&str> = near.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["logging", "logger"]);
        assert!(near[0].1 > near[1].1 && near[1].1 >= MIN_SIMILARITY);
        assert!(model.neighbours("zebra").is_empty());
        assert!(model.neighbours("unknown").is_empty());
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        assert_eq!(
            Embeddings::parse("a 1 2\nb 1\n")
                .err()
                .map(|(line, _)| line),
            Some(2)
        );
        assert_eq!(
            Embeddings::parse("a 1 x\n").err().map(|(line, _)| line),
            Some(1)
        );
        assert!(matches!(Embeddings::parse("\n\n"), Err((0, None))));
        assert!(matches!(Embeddings::parse("word\n"), Err((1, Some(_)))));
    }
}
